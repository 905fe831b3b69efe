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
    /// Berth's extension: a put of no events that only asks for the cursor stored with the
    /// stream's last batch (where a restarted shipper resumes), answered in
    /// `berthShipperCursor` and `berthStreamFound`. Authorized as the put it is, so a
    /// shipper needs no more than ECS's instance and execution roles grant
    /// (`logs:CreateLogStream`, `logs:PutLogEvents`), not `logs:DescribeLogStreams`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub berth_cursor_lookup: bool,
}

impl PutLogEventsRequest {
    /// The cursor lookup of `stream` in `group`.
    pub fn cursor_lookup(group: &str, stream: &str) -> PutLogEventsRequest {
        PutLogEventsRequest {
            log_group_name: group.to_owned(),
            log_stream_name: stream.to_owned(),
            log_events: Vec::new(),
            berth_shipper_cursor: None,
            berth_cursor_lookup: true,
        }
    }
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
    /// A cursor lookup's answer: whether the group has the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_stream_found: Option<bool>,
    /// A cursor lookup's answer: the cursor stored with the stream's last batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_shipper_cursor: Option<String>,
}
