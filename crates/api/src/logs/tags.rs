//! Tags on log groups: the ARN-based TagResource family and the older *LogGroup calls.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Empty, LogGroupNameRequest, group_of_arn, log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: BTreeMap<String, String>,
}

pub(super) async fn tag_resource(
    ctx: &AwsContext,
    req: TagResourceRequest,
) -> Result<Empty, AwsError> {
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

pub(super) async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<Empty, AwsError> {
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

pub(super) async fn list_tags_for_resource(
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

pub(super) async fn tag_log_group(
    ctx: &AwsContext,
    req: TagLogGroupRequest,
) -> Result<Empty, AwsError> {
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

pub(super) async fn untag_log_group(
    ctx: &AwsContext,
    req: UntagLogGroupRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .untag_log_group(&log_scope(ctx), &req.log_group_name, &req.tags)
        .map_err(logs_error)?;
    Ok(Empty {})
}

pub(super) async fn list_tags_log_group(
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
