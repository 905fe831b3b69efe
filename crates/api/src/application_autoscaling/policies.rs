//! PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy.

use berth_app_autoscaling::{
    AlarmRef, AutoScalingError, PolicyType, PutScalingPolicy, ScalingPolicy,
    StepScalingConfiguration, TargetTrackingConfiguration,
};
use serde::{Deserialize, Serialize};

use super::{
    DIMENSION, Dimension, Empty, TargetId, autoscaling_error, check_namespace, max_results,
};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScalingPolicyRequest {
    pub policy_name: String,
    #[serde(flatten)]
    pub id: TargetId,
    pub policy_type: Option<String>,
    pub step_scaling_policy_configuration: Option<StepScalingConfiguration>,
    pub target_tracking_scaling_policy_configuration: Option<TargetTrackingConfiguration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScalingPolicyResponse {
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmRef>,
}

fn policy_type(value: Option<&str>) -> Result<PolicyType, AwsError> {
    match value.unwrap_or("StepScaling") {
        "StepScaling" => Ok(PolicyType::StepScaling),
        "TargetTrackingScaling" => Ok(PolicyType::TargetTrackingScaling),
        "PredictiveScaling" => Err(autoscaling_error(AutoScalingError::Validation(
            "Unsupported policy type PredictiveScaling for service namespace ecs".into(),
        ))),
        other => Err(AwsError::client(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{other}' at 'policyType' failed to satisfy constraint: Member must satisfy enum value set: [StepScaling, TargetTrackingScaling, PredictiveScaling]"
            ),
        )),
    }
}

pub async fn put_scaling_policy(
    ctx: &AwsContext,
    req: PutScalingPolicyRequest,
) -> Result<PutScalingPolicyResponse, AwsError> {
    req.id.check()?;
    if req.policy_name.is_empty() || req.policy_name.len() > 256 {
        return Err(AwsError::client(
            "ValidationException",
            "1 validation error detected: Value at 'policyName' failed to satisfy constraint: Member must have length between 1 and 256",
        ));
    }
    let policy = ctx
        .app
        .app_autoscaling
        .put_scaling_policy(
            &ctx.scope,
            PutScalingPolicy {
                policy_name: req.policy_name,
                resource_id: req.id.resource_id,
                policy_type: policy_type(req.policy_type.as_deref())?,
                step: req.step_scaling_policy_configuration,
                target_tracking: req.target_tracking_scaling_policy_configuration,
            },
        )
        .map_err(autoscaling_error)?;
    Ok(PutScalingPolicyResponse {
        policy_arn: policy.policy_arn,
        alarms: policy.alarms,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalingPoliciesRequest {
    pub service_namespace: String,
    #[serde(default)]
    pub policy_names: Vec<String>,
    pub resource_id: Option<String>,
    pub scalable_dimension: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicyWire {
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    pub policy_name: String,
    #[serde(flatten)]
    pub dimension: Dimension,
    pub resource_id: String,
    pub policy_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepScalingConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTrackingConfiguration>,
    pub alarms: Vec<AlarmRef>,
    pub creation_time: f64,
}

impl From<ScalingPolicy> for ScalingPolicyWire {
    fn from(p: ScalingPolicy) -> Self {
        ScalingPolicyWire {
            policy_arn: p.policy_arn,
            policy_name: p.policy_name,
            dimension: DIMENSION,
            resource_id: p.resource_id,
            policy_type: p.policy_type.as_str(),
            step_scaling_policy_configuration: p.step,
            target_tracking_scaling_policy_configuration: p.target_tracking,
            alarms: p.alarms,
            creation_time: p.creation_time,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalingPoliciesResponse {
    pub scaling_policies: Vec<ScalingPolicyWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn describe_scaling_policies(
    ctx: &AwsContext,
    req: DescribeScalingPoliciesRequest,
) -> Result<DescribeScalingPoliciesResponse, AwsError> {
    check_namespace(&req.service_namespace, req.scalable_dimension.as_deref())?;
    let (policies, next_token) = ctx
        .app
        .app_autoscaling
        .describe_scaling_policies(
            &ctx.scope,
            req.resource_id.as_deref(),
            &req.policy_names,
            max_results(req.max_results)?,
            req.next_token.as_deref(),
        )
        .map_err(autoscaling_error)?;
    Ok(DescribeScalingPoliciesResponse {
        scaling_policies: policies.into_iter().map(Into::into).collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteScalingPolicyRequest {
    pub policy_name: String,
    #[serde(flatten)]
    pub id: TargetId,
}

pub async fn delete_scaling_policy(
    ctx: &AwsContext,
    req: DeleteScalingPolicyRequest,
) -> Result<Empty, AwsError> {
    req.id.check()?;
    ctx.app
        .app_autoscaling
        .delete_scaling_policy(&ctx.scope, &req.id.resource_id, &req.policy_name)
        .map_err(autoscaling_error)?;
    Ok(Empty {})
}
