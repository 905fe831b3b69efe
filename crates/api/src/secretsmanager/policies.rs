//! Resource policies: Put/Get/DeleteResourcePolicy and ValidateResourcePolicy. A policy is
//! parsed as IAM parses resource-based policies before it is kept; the request path makes
//! it part of every decision on the secret (`authz::secret_policy`). `BlockPublicPolicy` is
//! accepted and ignored: Berth has no public principals.

use berth_iam::policy::{Policy, PolicyType};
use serde::{Deserialize, Serialize};

use super::{ArnAndName, SecretIdRequest, secret_scope, secrets_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutResourcePolicyRequest {
    pub secret_id: String,
    pub resource_policy: String,
    pub block_public_policy: Option<bool>,
}

fn check_policy(document: &str) -> Result<(), AwsError> {
    Policy::parse(document, PolicyType::Resource)
        .map(|_| ())
        .map_err(|e| {
            AwsError::client(
                "MalformedPolicyDocumentException",
                format!(
                    "This resource policy contains an unsupported principal or syntax error: {e}"
                ),
            )
        })
}

pub(super) async fn put_resource_policy(
    ctx: &AwsContext,
    req: PutResourcePolicyRequest,
) -> Result<ArnAndName, AwsError> {
    let _ = req.block_public_policy;
    check_policy(&req.resource_policy)?;
    let s = ctx
        .app
        .secrets
        .set_policy(
            &secret_scope(ctx),
            &req.secret_id,
            Some(&req.resource_policy),
        )
        .map_err(secrets_error)?;
    Ok(s.into())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
}

pub(super) async fn get_resource_policy(
    ctx: &AwsContext,
    req: SecretIdRequest,
) -> Result<GetResourcePolicyResponse, AwsError> {
    let s = ctx
        .app
        .secrets
        .describe(&secret_scope(ctx), &req.secret_id)
        .map_err(secrets_error)?;
    Ok(GetResourcePolicyResponse {
        arn: s.arn,
        name: s.name,
        resource_policy: s.policy,
    })
}

pub(super) async fn delete_resource_policy(
    ctx: &AwsContext,
    req: SecretIdRequest,
) -> Result<ArnAndName, AwsError> {
    let s = ctx
        .app
        .secrets
        .set_policy(&secret_scope(ctx), &req.secret_id, None)
        .map_err(secrets_error)?;
    Ok(s.into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidateResourcePolicyRequest {
    pub secret_id: Option<String>,
    pub resource_policy: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidationErrorWire {
    pub check_name: String,
    pub error_message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidateResourcePolicyResponse {
    pub policy_validation_passed: bool,
    pub validation_errors: Vec<ValidationErrorWire>,
}

pub(super) async fn validate_resource_policy(
    ctx: &AwsContext,
    req: ValidateResourcePolicyRequest,
) -> Result<ValidateResourcePolicyResponse, AwsError> {
    if let Some(id) = &req.secret_id {
        ctx.app
            .secrets
            .describe(&secret_scope(ctx), id)
            .map_err(secrets_error)?;
    }
    let validation_errors: Vec<ValidationErrorWire> =
        match Policy::parse(&req.resource_policy, PolicyType::Resource) {
            Ok(_) => Vec::new(),
            Err(e) => vec![ValidationErrorWire {
                check_name: "SYNTAX_CHECK".into(),
                error_message: e.to_string(),
            }],
        };
    Ok(ValidateResourcePolicyResponse {
        policy_validation_passed: validation_errors.is_empty(),
        validation_errors,
    })
}
