//! CloudWatch Logs for Berth: log groups and streams, durable and compact event storage
//! indexed by stream and time, filter patterns, retention and live tail.

pub mod pattern;
