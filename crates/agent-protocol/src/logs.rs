//! CloudWatch Logs' PutLogEvents as the agent's `awslogs` shipper sends it and the server
//! reads it, with Berth's `berthShipperCursor` extension: where the shipper has got to in the
//! container's log, stored with the batch in one durable write, so that a restarted agent
//! resumes exactly after what was stored.

use serde::{Deserialize, Serialize};

/// A log event on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLogEvent {
    pub timestamp: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
    pub log_events: Vec<InputLogEvent>,
    /// Berth's extension (absent from other clients' requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_shipper_cursor: Option<String>,
}

/// Events the service refused (too old, expired, too new), by index ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_new_log_event_start_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_old_log_event_end_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_log_event_end_index: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    /// Ignored by CloudWatch Logs since 2023 when sent back, still answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sequence_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_log_events_info: Option<RejectedLogEventsInfo>,
}
