//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget and tags.

use std::collections::BTreeMap;

use berth_app_autoscaling::{RegisterScalableTarget, ScalableTarget, SuspendedState, TargetFilter};
use serde::{Deserialize, Serialize};

use super::{
    DIMENSION, Dimension, Empty, TargetId, autoscaling_error, check_namespace, max_results,
};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterScalableTargetRequest {
    #[serde(flatten)]
    pub id: TargetId,
    pub min_capacity: Option<i64>,
    pub max_capacity: Option<i64>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    pub suspended_state: Option<SuspendedState>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterScalableTargetResponse {
    #[serde(rename = "ScalableTargetARN")]
    pub scalable_target_arn: String,
}

pub async fn register_scalable_target(
    ctx: &AwsContext,
    req: RegisterScalableTargetRequest,
) -> Result<RegisterScalableTargetResponse, AwsError> {
    req.id.check()?;
    let target = ctx
        .app
        .app_autoscaling
        .register_scalable_target(
            &ctx.scope,
            RegisterScalableTarget {
                resource_id: req.id.resource_id,
                min_capacity: req.min_capacity,
                max_capacity: req.max_capacity,
                role_arn: req.role_arn,
                suspended_state: req.suspended_state,
                tags: req.tags,
            },
        )
        .map_err(autoscaling_error)?;
    ctx.app.ensure_service_linked_role(
        ctx.scope.account.as_str(),
        "ecs.application-autoscaling.amazonaws.com",
    );
    Ok(RegisterScalableTargetResponse {
        scalable_target_arn: target.arn,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalableTargetsRequest {
    pub service_namespace: String,
    #[serde(default)]
    pub resource_ids: Vec<String>,
    pub scalable_dimension: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetWire {
    #[serde(flatten)]
    pub dimension: Dimension,
    pub resource_id: String,
    pub min_capacity: i64,
    pub max_capacity: i64,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    pub creation_time: f64,
    pub suspended_state: SuspendedState,
    #[serde(rename = "ScalableTargetARN")]
    pub scalable_target_arn: String,
}

impl From<ScalableTarget> for ScalableTargetWire {
    fn from(t: ScalableTarget) -> Self {
        ScalableTargetWire {
            dimension: DIMENSION,
            resource_id: t.resource_id,
            min_capacity: t.min_capacity,
            max_capacity: t.max_capacity,
            role_arn: t.role_arn,
            creation_time: t.creation_time,
            suspended_state: t.suspended_state,
            scalable_target_arn: t.arn,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalableTargetsResponse {
    pub scalable_targets: Vec<ScalableTargetWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn describe_scalable_targets(
    ctx: &AwsContext,
    req: DescribeScalableTargetsRequest,
) -> Result<DescribeScalableTargetsResponse, AwsError> {
    check_namespace(&req.service_namespace, req.scalable_dimension.as_deref())?;
    let filter = TargetFilter {
        resource_ids: req.resource_ids,
        max_results: max_results(req.max_results)?,
        next_token: req.next_token,
    };
    let (targets, next_token) = ctx
        .app
        .app_autoscaling
        .describe_scalable_targets(&ctx.scope, &filter)
        .map_err(autoscaling_error)?;
    Ok(DescribeScalableTargetsResponse {
        scalable_targets: targets.into_iter().map(Into::into).collect(),
        next_token,
    })
}

pub async fn deregister_scalable_target(
    ctx: &AwsContext,
    req: TargetId,
) -> Result<Empty, AwsError> {
    req.check()?;
    ctx.app
        .app_autoscaling
        .deregister_scalable_target(&ctx.scope, &req.resource_id)
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    pub tags: BTreeMap<String, String>,
}

pub async fn tag_resource(ctx: &AwsContext, req: TagResourceRequest) -> Result<Empty, AwsError> {
    ctx.app
        .app_autoscaling
        .tag_resource(&ctx.scope, &req.resource_arn, req.tags)
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

pub async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .app_autoscaling
        .untag_resource(&ctx.scope, &req.resource_arn, &req.tag_keys)
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceRequest {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceResponse {
    pub tags: BTreeMap<String, String>,
}

pub async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, AwsError> {
    let tags = ctx
        .app
        .app_autoscaling
        .list_tags_for_resource(&ctx.scope, &req.resource_arn)
        .map_err(autoscaling_error)?;
    Ok(ListTagsForResourceResponse { tags })
}
