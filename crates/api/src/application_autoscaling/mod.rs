//! Application Auto Scaling's AWS JSON 1.1 API (`AnyScaleFrontendService.*`, signing name and
//! IAM prefix `application-autoscaling`): typed requests and answers with AWS's field names,
//! a module per resource, and the mapping of `AutoScalingError` to its exceptions.
//! Authorization (`application-autoscaling:<Operation>` on `*`) happens in `front.rs`.

mod activities;
mod policies;
mod scheduled;
mod targets;

use berth_app_autoscaling::{AutoScalingError, ECS_DIMENSION, ECS_NAMESPACE};
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "AnyScaleFrontendService";
pub const SERVICE: &str = "application-autoscaling";

pub fn autoscaling_error(e: AutoScalingError) -> AwsError {
    let code = match &e {
        AutoScalingError::Validation(_) => "ValidationException",
        AutoScalingError::ObjectNotFound(_) => "ObjectNotFoundException",
        AutoScalingError::ResourceNotFound { resource, .. } => {
            return AwsError::client("ResourceNotFoundException", e.to_string())
                .with_field("ResourceName", resource.clone());
        }
        AutoScalingError::LimitExceeded(_) => "LimitExceededException",
        AutoScalingError::InvalidNextToken(_) => "InvalidNextTokenException",
        AutoScalingError::TooManyTags(_) => "TooManyTagsException",
        AutoScalingError::Port(_) | AutoScalingError::Store(_) => {
            return AwsError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceException",
                e.to_string(),
            );
        }
    };
    AwsError::client(code, e.to_string())
}

/// The (namespace, resource id, dimension) every target-scoped request names: an ECS
/// service's desired count, else AWS's validation error.
fn check_target(namespace: &str, resource_id: &str, dimension: &str) -> Result<(), AwsError> {
    berth_app_autoscaling::check_target_id(namespace, resource_id, dimension)
        .map_err(autoscaling_error)
}

/// A namespace (and optional dimension) of a Describe request.
fn check_namespace(namespace: &str, dimension: Option<&str>) -> Result<(), AwsError> {
    berth_app_autoscaling::check_namespace(namespace).map_err(autoscaling_error)?;
    match dimension {
        Some(d) if d != ECS_DIMENSION => Err(autoscaling_error(AutoScalingError::Validation(
            "Unsupported service namespace, resource type or scalable dimension".into(),
        ))),
        _ => Ok(()),
    }
}

fn max_results(value: Option<i64>) -> Result<Option<usize>, AwsError> {
    match value {
        None => Ok(None),
        Some(n) if (1..=50).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(AwsError::client(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 50"
                }
            ),
        )),
    }
}

/// A timestamp as the JSON protocol sends it (seconds since the epoch), or an ISO 8601 text.
fn timestamp(value: &Option<serde_json::Value>, field: &str) -> Result<Option<f64>, AwsError> {
    let Some(value) = value else { return Ok(None) };
    let parsed = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => {
            let s = s.trim_end_matches('Z');
            let s = s.split(['.', '+']).next().unwrap_or(s);
            berth_app_autoscaling::schedule::parse_datetime(s).map(|t| t as f64)
        }
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        AwsError::client(
            "ValidationException",
            format!("{field} is not a valid timestamp"),
        )
    })
}

#[derive(Debug, Serialize)]
pub struct Empty {}

/// The resource a request names: namespace, id and dimension.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetId {
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
}

impl TargetId {
    fn check(&self) -> Result<(), AwsError> {
        check_target(
            &self.service_namespace,
            &self.resource_id,
            &self.scalable_dimension,
        )
    }
}

/// Every answer names the namespace and dimension (Berth has one of each).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub service_namespace: &'static str,
    pub scalable_dimension: &'static str,
}

const DIMENSION: Dimension = Dimension {
    service_namespace: ECS_NAMESPACE,
    scalable_dimension: ECS_DIMENSION,
};

crate::aws_actions! {
    AppAutoScalingAction, "Application Auto Scaling";
    RegisterScalableTarget(targets::RegisterScalableTargetRequest) => blocking targets::register_scalable_target,
    DescribeScalableTargets(targets::DescribeScalableTargetsRequest) => blocking targets::describe_scalable_targets,
    DeregisterScalableTarget(TargetId) => blocking targets::deregister_scalable_target,
    TagResource(targets::TagResourceRequest) => blocking targets::tag_resource,
    UntagResource(targets::UntagResourceRequest) => blocking targets::untag_resource,
    ListTagsForResource(targets::ListTagsForResourceRequest) => blocking targets::list_tags_for_resource,
    PutScalingPolicy(policies::PutScalingPolicyRequest) => blocking policies::put_scaling_policy,
    DescribeScalingPolicies(policies::DescribeScalingPoliciesRequest) => blocking policies::describe_scaling_policies,
    DeleteScalingPolicy(policies::DeleteScalingPolicyRequest) => blocking policies::delete_scaling_policy,
    PutScheduledAction(scheduled::PutScheduledActionRequest) => blocking scheduled::put_scheduled_action,
    DescribeScheduledActions(scheduled::DescribeScheduledActionsRequest) => blocking scheduled::describe_scheduled_actions,
    DeleteScheduledAction(scheduled::DeleteScheduledActionRequest) => blocking scheduled::delete_scheduled_action,
    DescribeScalingActivities(activities::DescribeScalingActivitiesRequest) => blocking activities::describe_scaling_activities,
}

/// Serves one operation; a request body missing a required member is AWS's
/// ValidationException here (the shared parser's code is ECS's InvalidParameterException).
pub async fn serve(ctx: AwsContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    dispatch(ctx, operation, body).await.map_err(|mut e| {
        if e.code == "InvalidParameterException" || e.code == "SerializationException" {
            e.code = "ValidationException".into();
        }
        e
    })
}
