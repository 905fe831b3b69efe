//! PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction.

use berth_app_autoscaling::{PutScheduledAction, ScalableTargetAction, ScheduledAction};
use serde::{Deserialize, Serialize};

use super::{
    DIMENSION, Dimension, Empty, TargetId, autoscaling_error, check_namespace, max_results,
    timestamp,
};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScheduledActionRequest {
    pub scheduled_action_name: String,
    #[serde(flatten)]
    pub id: TargetId,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub start_time: Option<serde_json::Value>,
    pub end_time: Option<serde_json::Value>,
    pub scalable_target_action: Option<ScalableTargetAction>,
}

pub async fn put_scheduled_action(
    ctx: &AwsContext,
    req: PutScheduledActionRequest,
) -> Result<Empty, AwsError> {
    req.id.check()?;
    let start_time = timestamp(&req.start_time, "StartTime")?;
    let end_time = timestamp(&req.end_time, "EndTime")?;
    ctx.app
        .app_autoscaling
        .put_scheduled_action(
            &ctx.scope,
            PutScheduledAction {
                name: req.scheduled_action_name,
                resource_id: req.id.resource_id,
                schedule: req.schedule,
                timezone: req.timezone,
                start_time,
                end_time,
                action: req.scalable_target_action,
            },
        )
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScheduledActionsRequest {
    pub service_namespace: String,
    #[serde(default)]
    pub scheduled_action_names: Vec<String>,
    pub resource_id: Option<String>,
    pub scalable_dimension: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledActionWire {
    pub scheduled_action_name: String,
    #[serde(rename = "ScheduledActionARN")]
    pub scheduled_action_arn: String,
    #[serde(flatten)]
    pub dimension: Dimension,
    pub schedule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub scalable_target_action: ScalableTargetAction,
    pub creation_time: f64,
}

impl From<ScheduledAction> for ScheduledActionWire {
    fn from(a: ScheduledAction) -> Self {
        ScheduledActionWire {
            scheduled_action_name: a.name,
            scheduled_action_arn: a.arn,
            dimension: DIMENSION,
            schedule: a.schedule,
            timezone: a.timezone,
            resource_id: a.resource_id,
            start_time: a.start_time,
            end_time: a.end_time,
            scalable_target_action: a.action,
            creation_time: a.creation_time,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScheduledActionsResponse {
    pub scheduled_actions: Vec<ScheduledActionWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn describe_scheduled_actions(
    ctx: &AwsContext,
    req: DescribeScheduledActionsRequest,
) -> Result<DescribeScheduledActionsResponse, AwsError> {
    check_namespace(&req.service_namespace, req.scalable_dimension.as_deref())?;
    let (actions, next_token) = ctx
        .app
        .app_autoscaling
        .describe_scheduled_actions(
            &ctx.scope,
            req.resource_id.as_deref(),
            &req.scheduled_action_names,
            max_results(req.max_results)?,
            req.next_token.as_deref(),
        )
        .map_err(autoscaling_error)?;
    Ok(DescribeScheduledActionsResponse {
        scheduled_actions: actions.into_iter().map(Into::into).collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteScheduledActionRequest {
    pub scheduled_action_name: String,
    #[serde(flatten)]
    pub id: TargetId,
}

pub async fn delete_scheduled_action(
    ctx: &AwsContext,
    req: DeleteScheduledActionRequest,
) -> Result<Empty, AwsError> {
    req.id.check()?;
    ctx.app
        .app_autoscaling
        .delete_scheduled_action(&ctx.scope, &req.id.resource_id, &req.scheduled_action_name)
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}
