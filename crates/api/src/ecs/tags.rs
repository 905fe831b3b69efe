//! Tags on any ECS resource: TagResource, UntagResource, ListTagsForResource.

use berth_ecs::EcsTag;
use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ecs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<EcsTag>,
}

pub(super) async fn tag_resource(
    ctx: &AwsContext,
    req: TagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    ctx.app
        .ecs
        .tag_resource(&ctx.scope, &req.resource_arn, &req.tags)
        .map_err(ecs_error)?;
    Ok(EmptyResponse {})
}

pub(super) async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    ctx.app
        .ecs
        .untag_resource(&ctx.scope, &req.resource_arn, &req.tag_keys)
        .map_err(ecs_error)?;
    Ok(EmptyResponse {})
}

pub(super) async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, AwsError> {
    let tags = ctx
        .app
        .ecs
        .resource_tags(&ctx.scope, &req.resource_arn)
        .map_err(ecs_error)?;
    Ok(ListTagsForResourceResponse { tags })
}
