//! Resource policies: PutResourcePolicy, DescribeResourcePolicies, DeleteResourcePolicy
//! (with the `resourceArn` / `policyScope` / `revisionId` members the installed botocore
//! sends and reads).

use berth_logs::{PolicyScope, ResourcePolicy};
use serde::{Deserialize, Serialize};

use super::{Empty, limit, log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicyWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    pub policy_document: String,
    pub last_updated_time: i64,
    pub policy_scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    pub revision_id: String,
}

impl From<ResourcePolicy> for ResourcePolicyWire {
    fn from(p: ResourcePolicy) -> Self {
        ResourcePolicyWire {
            policy_name: p.policy_name,
            policy_document: p.policy_document,
            last_updated_time: p.last_updated_time,
            policy_scope: p.policy_scope.as_str(),
            resource_arn: p.resource_arn,
            revision_id: p.revision_id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutResourcePolicyRequest {
    pub policy_name: Option<String>,
    pub policy_document: Option<String>,
    pub resource_arn: Option<String>,
    pub expected_revision_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutResourcePolicyResponse {
    pub resource_policy: ResourcePolicyWire,
    pub revision_id: String,
}

pub(super) async fn put_resource_policy(
    ctx: &AwsContext,
    req: PutResourcePolicyRequest,
) -> Result<PutResourcePolicyResponse, AwsError> {
    let Some(document) = req.policy_document.as_deref() else {
        return Err(AwsError::invalid_parameter(
            "1 validation error detected: Value null at 'policyDocument' failed to satisfy constraint: Member must not be null",
        ));
    };
    let policy = ctx
        .app
        .logs
        .put_resource_policy(
            &log_scope(ctx),
            req.policy_name.as_deref(),
            document,
            req.resource_arn.as_deref(),
            req.expected_revision_id.as_deref(),
        )
        .map_err(logs_error)?;
    Ok(PutResourcePolicyResponse {
        revision_id: policy.revision_id.clone(),
        resource_policy: policy.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeResourcePoliciesRequest {
    pub next_token: Option<String>,
    pub limit: Option<i64>,
    pub resource_arn: Option<String>,
    pub policy_scope: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeResourcePoliciesResponse {
    pub resource_policies: Vec<ResourcePolicyWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn describe_resource_policies(
    ctx: &AwsContext,
    req: DescribeResourcePoliciesRequest,
) -> Result<DescribeResourcePoliciesResponse, AwsError> {
    let policy_scope = match req.policy_scope.as_deref() {
        None => None,
        Some("ACCOUNT") => Some(PolicyScope::Account),
        Some("RESOURCE") => Some(PolicyScope::Resource),
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'policyScope' failed to satisfy constraint: Member must satisfy enum value set: [ACCOUNT, RESOURCE]"
            )));
        }
    };
    let (policies, next_token) = ctx
        .app
        .logs
        .describe_resource_policies(
            &log_scope(ctx),
            req.resource_arn.as_deref(),
            policy_scope,
            req.next_token.as_deref(),
            limit("limit", req.limit, 50)?.unwrap_or(50),
        )
        .map_err(logs_error)?;
    Ok(DescribeResourcePoliciesResponse {
        resource_policies: policies.into_iter().map(Into::into).collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResourcePolicyRequest {
    pub policy_name: Option<String>,
    pub resource_arn: Option<String>,
    pub expected_revision_id: Option<String>,
}

pub(super) async fn delete_resource_policy(
    ctx: &AwsContext,
    req: DeleteResourcePolicyRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_resource_policy(
            &log_scope(ctx),
            req.policy_name.as_deref(),
            req.resource_arn.as_deref(),
            req.expected_revision_id.as_deref(),
        )
        .map_err(logs_error)?;
    Ok(Empty {})
}
