//! CloudWatch Logs' JSON API (`Logs_20140328.*`): typed requests and responses with AWS's
//! field names, and the mapping of `LogsError` to CloudWatch Logs' exceptions.
//! StartLiveTail answers with an event stream (`logs_tail`).

use std::collections::BTreeMap;

use berth_logs::{
    FilterLogEvents, GetLogEvents, InputEvent, LogScope, LogStream, LogsError, StreamOrder,
};
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "Logs_20140328";

pub fn logs_error(e: LogsError) -> AwsError {
    let code = match &e {
        LogsError::ResourceNotFound(_) => "ResourceNotFoundException",
        LogsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
        LogsError::InvalidParameter(_) => "InvalidParameterException",
        LogsError::LimitExceeded(_) => "LimitExceededException",
        LogsError::InvalidOperation(_) => "InvalidOperationException",
        LogsError::DataAlreadyAccepted => "DataAlreadyAcceptedException",
        LogsError::Io(_) | LogsError::Store(_) | LogsError::Corrupt(_) => {
            return AwsError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceUnavailableException",
                e.to_string(),
            );
        }
    };
    AwsError::client(code, e.to_string())
}

pub(crate) fn log_scope(ctx: &AwsContext) -> LogScope {
    LogScope {
        account: ctx.scope.account.to_string(),
        region: ctx.scope.region.to_string(),
    }
}

fn limit(field: &str, value: Option<i64>, max: i64) -> Result<Option<usize>, AwsError> {
    match value {
        None => Ok(None),
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(AwsError::invalid_parameter(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value {}",
            if n < 1 {
                "greater than or equal to 1".to_string()
            } else {
                format!("less than or equal to {max}")
            }
        ))),
    }
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (exactly one).
fn group_of(
    scope: &LogScope,
    name: &Option<String>,
    identifier: &Option<String>,
) -> Result<String, AwsError> {
    match (name, identifier) {
        (Some(name), None) => Ok(name.clone()),
        (None, Some(identifier)) => scope.group_from_identifier(identifier).map_err(logs_error),
        (Some(_), Some(_)) => Err(AwsError::invalid_parameter(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(AwsError::invalid_parameter(
            "Should provide either name or ARN of the log group.",
        )),
    }
}

/// The group a tagging ARN names (`arn:aws:logs:REGION:ACCOUNT:log-group:NAME`).
fn group_of_arn(scope: &LogScope, arn: &str) -> Result<String, AwsError> {
    if !arn.starts_with("arn:") || !arn.contains(":log-group:") {
        return Err(AwsError::invalid_parameter(format!(
            "1 validation error detected: Value '{arn}' at 'resourceArn' failed to satisfy constraint: Member must be the ARN of a log group"
        )));
    }
    scope.group_from_identifier(arn).map_err(logs_error)
}

#[derive(Debug, Serialize)]
pub struct Empty {}

// ---- groups ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupRequest {
    pub log_group_name: String,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub log_group_class: Option<String>,
}

async fn create_log_group(ctx: &AwsContext, req: CreateLogGroupRequest) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .create_log_group(
            &log_scope(ctx),
            &req.log_group_name,
            req.tags.unwrap_or_default(),
            req.log_group_class.as_deref(),
        )
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupNameRequest {
    pub log_group_name: String,
}

async fn delete_log_group(ctx: &AwsContext, req: LogGroupNameRequest) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_log_group(&log_scope(ctx), &req.log_group_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsRequest {
    pub log_group_name_prefix: Option<String>,
    pub log_group_name_pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupWire {
    pub log_group_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i64>,
    pub metric_filter_count: i64,
    pub arn: String,
    pub stored_bytes: u64,
    pub log_group_class: String,
    pub log_group_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    pub log_groups: Vec<LogGroupWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

async fn describe_log_groups(
    ctx: &AwsContext,
    req: DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, AwsError> {
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(AwsError::invalid_parameter(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    let scope = log_scope(ctx);
    let limit = limit("limit", req.limit, 50)?.unwrap_or(50);
    let (groups, next_token) = ctx
        .app
        .logs
        .describe_log_groups(
            &scope,
            req.log_group_name_prefix.as_deref(),
            req.log_group_name_pattern.as_deref(),
            req.next_token.as_deref(),
            limit,
        )
        .map_err(logs_error)?;
    let log_groups = groups
        .into_iter()
        .map(|g| {
            let stored_bytes = ctx.app.logs.stored_bytes(&scope, &g.name).unwrap_or(0);
            LogGroupWire {
                arn: format!("{}:*", scope.group_arn(&g.name)),
                log_group_arn: scope.group_arn(&g.name),
                log_group_name: g.name,
                creation_time: g.creation_time,
                retention_in_days: g.retention_in_days,
                metric_filter_count: 0,
                stored_bytes,
                log_group_class: g.log_group_class,
            }
        })
        .collect();
    Ok(DescribeLogGroupsResponse {
        log_groups,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicyRequest {
    pub log_group_name: String,
    pub retention_in_days: i64,
}

async fn put_retention_policy(
    ctx: &AwsContext,
    req: PutRetentionPolicyRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .put_retention_policy(&log_scope(ctx), &req.log_group_name, req.retention_in_days)
        .map_err(logs_error)?;
    Ok(Empty {})
}

async fn delete_retention_policy(
    ctx: &AwsContext,
    req: LogGroupNameRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_retention_policy(&log_scope(ctx), &req.log_group_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

// ---- tags ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: BTreeMap<String, String>,
}

async fn tag_resource(ctx: &AwsContext, req: TagResourceRequest) -> Result<Empty, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of_arn(&scope, &req.resource_arn)?;
    ctx.app
        .logs
        .tag_log_group(&scope, &group, req.tags)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

async fn untag_resource(ctx: &AwsContext, req: UntagResourceRequest) -> Result<Empty, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of_arn(&scope, &req.resource_arn)?;
    ctx.app
        .logs
        .untag_log_group(&scope, &group, &req.tag_keys)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct TagsResponse {
    pub tags: BTreeMap<String, String>,
}

async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<TagsResponse, AwsError> {
    let scope = log_scope(ctx);
    let group = group_of_arn(&scope, &req.resource_arn)?;
    let group = ctx.app.logs.log_group(&scope, &group).map_err(logs_error)?;
    Ok(TagsResponse { tags: group.tags })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLogGroupRequest {
    pub log_group_name: String,
    pub tags: BTreeMap<String, String>,
}

async fn tag_log_group(ctx: &AwsContext, req: TagLogGroupRequest) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .tag_log_group(&log_scope(ctx), &req.log_group_name, req.tags)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagLogGroupRequest {
    pub log_group_name: String,
    pub tags: Vec<String>,
}

async fn untag_log_group(ctx: &AwsContext, req: UntagLogGroupRequest) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .untag_log_group(&log_scope(ctx), &req.log_group_name, &req.tags)
        .map_err(logs_error)?;
    Ok(Empty {})
}

async fn list_tags_log_group(
    ctx: &AwsContext,
    req: LogGroupNameRequest,
) -> Result<TagsResponse, AwsError> {
    let group = ctx
        .app
        .logs
        .log_group(&log_scope(ctx), &req.log_group_name)
        .map_err(logs_error)?;
    Ok(TagsResponse { tags: group.tags })
}

// ---- streams ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
}

async fn create_log_stream(ctx: &AwsContext, req: LogStreamRequest) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .create_log_stream(&log_scope(ctx), &req.log_group_name, &req.log_stream_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

async fn delete_log_stream(ctx: &AwsContext, req: LogStreamRequest) -> Result<Empty, AwsError> {
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

async fn describe_log_streams(
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

// ---- events ----

use berth_agent_protocol::logs::{
    PutLogEventsRequest, PutLogEventsResponse, RejectedLogEventsInfo,
};

/// A stream's sequence as CloudWatch Logs writes its tokens: 56 digits. (CloudWatch Logs
/// ignores the tokens it is sent since 2023; it still answers with them.)
fn sequence_token(sequence: u64) -> String {
    format!("{sequence:056}")
}

async fn put_log_events(
    ctx: &AwsContext,
    req: PutLogEventsRequest,
) -> Result<PutLogEventsResponse, AwsError> {
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

async fn get_log_events(
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

async fn filter_log_events(
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

crate::aws_actions! {
    LogsAction, "CloudWatch Logs";
    CreateLogGroup(CreateLogGroupRequest) => blocking create_log_group,
    DeleteLogGroup(LogGroupNameRequest) => blocking delete_log_group,
    DescribeLogGroups(DescribeLogGroupsRequest) => blocking describe_log_groups,
    PutRetentionPolicy(PutRetentionPolicyRequest) => blocking put_retention_policy,
    DeleteRetentionPolicy(LogGroupNameRequest) => blocking delete_retention_policy,
    TagResource(TagResourceRequest) => blocking tag_resource,
    UntagResource(UntagResourceRequest) => blocking untag_resource,
    ListTagsForResource(ListTagsForResourceRequest) => blocking list_tags_for_resource,
    TagLogGroup(TagLogGroupRequest) => blocking tag_log_group,
    UntagLogGroup(UntagLogGroupRequest) => blocking untag_log_group,
    ListTagsLogGroup(LogGroupNameRequest) => blocking list_tags_log_group,
    CreateLogStream(LogStreamRequest) => blocking create_log_stream,
    DeleteLogStream(LogStreamRequest) => blocking delete_log_stream,
    DescribeLogStreams(DescribeLogStreamsRequest) => blocking describe_log_streams,
    PutLogEvents(PutLogEventsRequest) => blocking put_log_events,
    GetLogEvents(GetLogEventsRequest) => blocking get_log_events,
    FilterLogEvents(FilterLogEventsRequest) => blocking filter_log_events,
}
