//! CloudWatch Logs filter patterns (to be written).
