//! CloudWatch Logs' JSON API (`Logs_20140328.*`): typed requests and responses with AWS's
//! field names, and the mapping of `LogsError` to CloudWatch Logs' exceptions.
//! StartLiveTail answers with an event stream (`logs_tail`).

mod events;
mod groups;
mod metric_filters;
mod query_definitions;
mod resource_policies;
mod streams;
mod tags;

use berth_logs::{LogScope, LogsError};
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupNameRequest {
    pub log_group_name: String,
}

/// A stream's sequence as CloudWatch Logs writes its tokens: 56 digits. (CloudWatch Logs
/// ignores the tokens it is sent since 2023; it still answers with them.)
fn sequence_token(sequence: u64) -> String {
    format!("{sequence:056}")
}

crate::aws_actions! {
    LogsAction, "CloudWatch Logs";
    CreateLogGroup(groups::CreateLogGroupRequest) => blocking groups::create_log_group,
    DeleteLogGroup(LogGroupNameRequest) => blocking groups::delete_log_group,
    DescribeLogGroups(groups::DescribeLogGroupsRequest) => blocking groups::describe_log_groups,
    PutRetentionPolicy(groups::PutRetentionPolicyRequest) => blocking groups::put_retention_policy,
    DeleteRetentionPolicy(LogGroupNameRequest) => blocking groups::delete_retention_policy,
    TagResource(tags::TagResourceRequest) => blocking tags::tag_resource,
    UntagResource(tags::UntagResourceRequest) => blocking tags::untag_resource,
    ListTagsForResource(tags::ListTagsForResourceRequest) => blocking tags::list_tags_for_resource,
    TagLogGroup(tags::TagLogGroupRequest) => blocking tags::tag_log_group,
    UntagLogGroup(tags::UntagLogGroupRequest) => blocking tags::untag_log_group,
    ListTagsLogGroup(LogGroupNameRequest) => blocking tags::list_tags_log_group,
    CreateLogStream(streams::LogStreamRequest) => blocking streams::create_log_stream,
    DeleteLogStream(streams::LogStreamRequest) => blocking streams::delete_log_stream,
    DescribeLogStreams(streams::DescribeLogStreamsRequest) => blocking streams::describe_log_streams,
    PutLogEvents(berth_agent_protocol::logs::PutLogEventsRequest) => blocking events::put_log_events,
    GetLogEvents(events::GetLogEventsRequest) => blocking events::get_log_events,
    FilterLogEvents(events::FilterLogEventsRequest) => blocking events::filter_log_events,
    AssociateKmsKey(groups::KmsKeyRequest) => blocking groups::associate_kms_key,
    DisassociateKmsKey(groups::KmsKeyRequest) => blocking groups::disassociate_kms_key,
    PutMetricFilter(metric_filters::PutMetricFilterRequest) => blocking metric_filters::put_metric_filter,
    DeleteMetricFilter(metric_filters::DeleteMetricFilterRequest) => blocking metric_filters::delete_metric_filter,
    DescribeMetricFilters(metric_filters::DescribeMetricFiltersRequest) => blocking metric_filters::describe_metric_filters,
    TestMetricFilter(metric_filters::TestMetricFilterRequest) => inline metric_filters::test_metric_filter,
    PutQueryDefinition(query_definitions::PutQueryDefinitionRequest) => blocking query_definitions::put_query_definition,
    DescribeQueryDefinitions(query_definitions::DescribeQueryDefinitionsRequest) => blocking query_definitions::describe_query_definitions,
    DeleteQueryDefinition(query_definitions::DeleteQueryDefinitionRequest) => blocking query_definitions::delete_query_definition,
    PutResourcePolicy(resource_policies::PutResourcePolicyRequest) => blocking resource_policies::put_resource_policy,
    DescribeResourcePolicies(resource_policies::DescribeResourcePoliciesRequest) => blocking resource_policies::describe_resource_policies,
    DeleteResourcePolicy(resource_policies::DeleteResourcePolicyRequest) => blocking resource_policies::delete_resource_policy,
}
