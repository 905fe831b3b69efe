//! Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams.

use berth_logs::{LogScope, LogStream, StreamOrder};
use serde::{Deserialize, Serialize};

use super::{Empty, group_of, limit, log_scope, logs_error, sequence_token};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
}

pub(super) async fn create_log_stream(
    ctx: &AwsContext,
    req: LogStreamRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .create_log_stream(&log_scope(ctx), &req.log_group_name, &req.log_stream_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

pub(super) async fn delete_log_stream(
    ctx: &AwsContext,
    req: LogStreamRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_log_stream(&log_scope(ctx), &req.log_group_name, &req.log_stream_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name_prefix: Option<String>,
    pub order_by: Option<String>,
    #[serde(default)]
    pub descending: bool,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamWire {
    pub log_stream_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    pub upload_sequence_token: String,
    pub arn: String,
    pub stored_bytes: u64,
    /// Berth's extension: the awslogs driver's cursor stored with the last batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub berth_shipper_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    pub log_streams: Vec<LogStreamWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

fn stream_wire(scope: &LogScope, group: &str, s: LogStream) -> LogStreamWire {
    LogStreamWire {
        arn: scope.stream_arn(group, &s.name),
        log_stream_name: s.name,
        creation_time: s.creation_time,
        first_event_timestamp: s.stats.first_event,
        last_event_timestamp: s.stats.last_event,
        last_ingestion_time: s.stats.last_ingestion,
        upload_sequence_token: sequence_token(s.stats.events),
        // Deprecated in CloudWatch Logs (always 0 there); Berth shows the bytes on disk.
        stored_bytes: s.stats.stored_bytes,
        berth_shipper_cursor: s.stats.cursor,
    }
}

pub(super) async fn describe_log_streams(
    ctx: &AwsContext,
    req: DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of(&scope, &req.log_group_name, &req.log_group_identifier)?;
    let order = match req.order_by.as_deref() {
        None | Some("LogStreamName") => StreamOrder::LogStreamName,
        Some("LastEventTime") => StreamOrder::LastEventTime,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )));
        }
    };
    if order == StreamOrder::LastEventTime && req.log_stream_name_prefix.is_some() {
        return Err(AwsError::invalid_parameter(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let limit = limit("limit", req.limit, 50)?.unwrap_or(50);
    let (streams, next_token) = ctx
        .app
        .logs
        .describe_log_streams(
            &scope,
            &group,
            req.log_stream_name_prefix.as_deref(),
            order,
            req.descending,
            req.next_token.as_deref(),
            limit,
        )
        .map_err(logs_error)?;
    Ok(DescribeLogStreamsResponse {
        log_streams: streams
            .into_iter()
            .map(|s| stream_wire(&scope, &group, s))
            .collect(),
        next_token,
    })
}
