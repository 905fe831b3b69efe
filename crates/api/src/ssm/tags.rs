//! Tags on parameters: AddTagsToResource, RemoveTagsFromResource, ListTagsForResource
//! (`ResourceType` `Parameter`, `ResourceId` the parameter's name).

use serde::{Deserialize, Serialize};

use super::{Empty, Tag, ssm_error, ssm_scope};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
    pub tags: Vec<Tag>,
}

pub(super) async fn add_tags_to_resource(
    ctx: &AwsContext,
    req: AddTagsToResourceRequest,
) -> Result<Empty, AwsError> {
    let tags: Vec<(String, String)> = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    ctx.app
        .ssm
        .add_tags(&ssm_scope(ctx), &req.resource_type, &req.resource_id, &tags)
        .map_err(ssm_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
    pub tag_keys: Vec<String>,
}

pub(super) async fn remove_tags_from_resource(
    ctx: &AwsContext,
    req: RemoveTagsFromResourceRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .ssm
        .remove_tags(
            &ssm_scope(ctx),
            &req.resource_type,
            &req.resource_id,
            &req.tag_keys,
        )
        .map_err(ssm_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceResponse {
    pub tag_list: Vec<Tag>,
}

pub(super) async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, AwsError> {
    let tags = ctx
        .app
        .ssm
        .list_tags(&ssm_scope(ctx), &req.resource_type, &req.resource_id)
        .map_err(ssm_error)?;
    Ok(ListTagsForResourceResponse {
        tag_list: tags
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
    })
}
