//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents.

use berth_agent_protocol::logs::{
    PutLogEventsRequest, PutLogEventsResponse, RejectedLogEventsInfo,
};
use berth_logs::{FilterLogEvents, GetLogEvents, InputEvent};
use serde::{Deserialize, Serialize};

use super::{group_of, limit, log_scope, logs_error, sequence_token};
use crate::protocol::{AwsContext, AwsError};

pub(super) async fn put_log_events(
    ctx: &AwsContext,
    req: PutLogEventsRequest,
) -> Result<PutLogEventsResponse, AwsError> {
    if req.berth_cursor_lookup {
        return cursor_lookup(ctx, &req.log_group_name, &req.log_stream_name);
    }
    let events = req
        .log_events
        .into_iter()
        .map(|e| InputEvent {
            timestamp: e.timestamp,
            message: e.message,
        })
        .collect();
    let put = ctx
        .app
        .logs
        .put_log_events(
            &log_scope(ctx),
            &req.log_group_name,
            &req.log_stream_name,
            events,
            req.berth_shipper_cursor.as_deref(),
        )
        .map_err(logs_error)?;
    let rejected = put.rejected;
    Ok(PutLogEventsResponse {
        next_sequence_token: Some(sequence_token(put.sequence)),
        rejected_log_events_info: rejected.any().then_some(RejectedLogEventsInfo {
            too_new_log_event_start_index: rejected.too_new_start,
            too_old_log_event_end_index: rejected.too_old_end,
            expired_log_event_end_index: rejected.expired_end,
        }),
        ..PutLogEventsResponse::default()
    })
}

/// Berth's shipper asking, as a put, for the cursor stored with the stream's last batch
/// (`berthCursorLookup`): nothing is written.
fn cursor_lookup(
    ctx: &AwsContext,
    group: &str,
    stream: &str,
) -> Result<PutLogEventsResponse, AwsError> {
    // The exact name sorts first among the names it prefixes.
    let (streams, _) = ctx
        .app
        .logs
        .describe_log_streams(
            &log_scope(ctx),
            group,
            Some(stream),
            berth_logs::StreamOrder::LogStreamName,
            false,
            None,
            1,
        )
        .map_err(logs_error)?;
    let found = streams.into_iter().find(|s| s.name == stream);
    Ok(PutLogEventsResponse {
        berth_stream_found: Some(found.is_some()),
        berth_shipper_cursor: found.and_then(|s| s.stats.cursor),
        ..PutLogEventsResponse::default()
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
    #[serde(default)]
    pub start_from_head: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse {
    pub events: Vec<OutputLogEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

pub(super) async fn get_log_events(
    ctx: &AwsContext,
    req: GetLogEventsRequest,
) -> Result<GetLogEventsResponse, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of(&scope, &req.log_group_name, &req.log_group_identifier)?;
    let page = ctx
        .app
        .logs
        .get_log_events(
            &scope,
            &GetLogEvents {
                group,
                stream: req.log_stream_name,
                start_time: req.start_time,
                end_time: req.end_time,
                next_token: req.next_token,
                limit: limit("limit", req.limit, 10_000)?,
                start_from_head: req.start_from_head,
            },
        )
        .map_err(logs_error)?;
    Ok(GetLogEventsResponse {
        events: page
            .events
            .into_iter()
            .map(|e| OutputLogEvent {
                timestamp: e.timestamp,
                message: e.message,
                ingestion_time: e.ingestion,
            })
            .collect(),
        next_forward_token: page.next_forward_token,
        next_backward_token: page.next_backward_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_names: Option<Vec<String>>,
    pub log_stream_name_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub filter_pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    pub log_stream_name: String,
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    pub event_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse {
    pub events: Vec<FilteredLogEvent>,
    pub searched_log_streams: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn filter_log_events(
    ctx: &AwsContext,
    req: FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of(&scope, &req.log_group_name, &req.log_group_identifier)?;
    let page = ctx
        .app
        .logs
        .filter_log_events(
            &scope,
            &FilterLogEvents {
                group,
                stream_names: req.log_stream_names,
                stream_prefix: req.log_stream_name_prefix,
                start_time: req.start_time,
                end_time: req.end_time,
                pattern: req.filter_pattern,
                next_token: req.next_token,
                limit: limit("limit", req.limit, 10_000)?,
            },
        )
        .map_err(logs_error)?;
    Ok(FilterLogEventsResponse {
        events: page
            .events
            .into_iter()
            .map(|e| FilteredLogEvent {
                // 56 digits as CloudWatch's: time, the stream (hashed), position in it.
                event_id: format!(
                    "{:020}{:016}{:020}",
                    e.timestamp.max(0),
                    stream_hash(&e.stream) % 10_000_000_000_000_000,
                    e.ordinal
                ),
                log_stream_name: e.stream,
                timestamp: e.timestamp,
                message: e.message,
                ingestion_time: e.ingestion,
            })
            .collect(),
        searched_log_streams: Vec::new(),
        next_token: page.next_token,
    })
}

/// FNV-1a of a stream name: tells apart events of different streams in `eventId`.
fn stream_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
