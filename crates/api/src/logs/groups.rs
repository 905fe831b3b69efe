//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups, retention policies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Empty, LogGroupNameRequest, limit, log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupRequest {
    pub log_group_name: String,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub log_group_class: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

pub(super) async fn create_log_group(
    ctx: &AwsContext,
    req: CreateLogGroupRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .create_log_group(
            &log_scope(ctx),
            &req.log_group_name,
            req.tags.unwrap_or_default(),
            req.log_group_class.as_deref(),
            req.kms_key_id.as_deref(),
        )
        .map_err(logs_error)?;
    Ok(Empty {})
}

pub(super) async fn delete_log_group(
    ctx: &AwsContext,
    req: LogGroupNameRequest,
) -> Result<Empty, AwsError> {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
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

pub(super) async fn describe_log_groups(
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
            let metric_filter_count = ctx
                .app
                .logs
                .metric_filter_count(&scope, &g.name)
                .unwrap_or(0) as i64;
            LogGroupWire {
                arn: format!("{}:*", scope.group_arn(&g.name)),
                log_group_arn: scope.group_arn(&g.name),
                log_group_name: g.name,
                creation_time: g.creation_time,
                retention_in_days: g.retention_in_days,
                metric_filter_count,
                kms_key_id: g.kms_key_id,
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

pub(super) async fn put_retention_policy(
    ctx: &AwsContext,
    req: PutRetentionPolicyRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .put_retention_policy(&log_scope(ctx), &req.log_group_name, req.retention_in_days)
        .map_err(logs_error)?;
    Ok(Empty {})
}

pub(super) async fn delete_retention_policy(
    ctx: &AwsContext,
    req: LogGroupNameRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_retention_policy(&log_scope(ctx), &req.log_group_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

/// AssociateKmsKey / DisassociateKmsKey: the group by `logGroupName` or by
/// `resourceIdentifier` (a log group's ARN; Berth has no other resource a key applies to).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeyRequest {
    pub log_group_name: Option<String>,
    pub resource_identifier: Option<String>,
    pub kms_key_id: Option<String>,
}

fn kms_group(ctx: &AwsContext, req: &KmsKeyRequest) -> Result<String, AwsError> {
    let scope = log_scope(ctx);
    match (&req.log_group_name, &req.resource_identifier) {
        (Some(name), None) => Ok(name.clone()),
        (None, Some(arn)) => super::group_of_arn(&scope, arn),
        // The API reference: "You must specify either logGroupName or resourceIdentifier,
        // but not both" (its exact error text is not published).
        _ => Err(AwsError::invalid_parameter(
            "Either logGroupName or resourceIdentifier must be specified, but not both.",
        )),
    }
}

pub(super) async fn associate_kms_key(
    ctx: &AwsContext,
    req: KmsKeyRequest,
) -> Result<Empty, AwsError> {
    let group = kms_group(ctx, &req)?;
    let Some(key) = req.kms_key_id.as_deref() else {
        return Err(AwsError::invalid_parameter(
            "1 validation error detected: Value null at 'kmsKeyId' failed to satisfy constraint: Member must not be null",
        ));
    };
    ctx.app
        .logs
        .associate_kms_key(&log_scope(ctx), &group, key)
        .map_err(logs_error)?;
    Ok(Empty {})
}

pub(super) async fn disassociate_kms_key(
    ctx: &AwsContext,
    req: KmsKeyRequest,
) -> Result<Empty, AwsError> {
    let group = kms_group(ctx, &req)?;
    ctx.app
        .logs
        .disassociate_kms_key(&log_scope(ctx), &group)
        .map_err(logs_error)?;
    Ok(Empty {})
}
