//! DescribeScalingActivities.

use berth_app_autoscaling::{ActivityFilter, NotScaledReason, ScalingActivity, StatusCode};
use serde::{Deserialize, Serialize};

use super::{DIMENSION, Dimension, autoscaling_error, check_namespace, max_results};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalingActivitiesRequest {
    pub service_namespace: String,
    pub resource_id: Option<String>,
    pub scalable_dimension: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    #[serde(default)]
    pub include_not_scaled_activities: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingActivityWire {
    pub activity_id: String,
    #[serde(flatten)]
    pub dimension: Dimension,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub status_code: StatusCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_scaled_reasons: Vec<NotScaledReason>,
}

impl From<ScalingActivity> for ScalingActivityWire {
    fn from(a: ScalingActivity) -> Self {
        ScalingActivityWire {
            activity_id: a.activity_id,
            dimension: DIMENSION,
            resource_id: a.resource_id,
            description: a.description,
            cause: a.cause,
            start_time: a.start_time,
            end_time: a.end_time,
            status_code: a.status_code,
            status_message: a.status_message,
            details: a.details,
            not_scaled_reasons: a.not_scaled_reasons,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalingActivitiesResponse {
    pub scaling_activities: Vec<ScalingActivityWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn describe_scaling_activities(
    ctx: &AwsContext,
    req: DescribeScalingActivitiesRequest,
) -> Result<DescribeScalingActivitiesResponse, AwsError> {
    check_namespace(&req.service_namespace, req.scalable_dimension.as_deref())?;
    let filter = ActivityFilter {
        resource_id: req.resource_id,
        include_not_scaled: req.include_not_scaled_activities,
        max_results: max_results(req.max_results)?,
        next_token: req.next_token,
    };
    let (activities, next_token) = ctx
        .app
        .app_autoscaling
        .describe_scaling_activities(&ctx.scope, &filter)
        .map_err(autoscaling_error)?;
    Ok(DescribeScalingActivitiesResponse {
        scaling_activities: activities.into_iter().map(Into::into).collect(),
        next_token,
    })
}
