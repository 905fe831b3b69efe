//! Secret values: GetSecretValue, PutSecretValue and BatchGetSecretValue (which checks
//! `secretsmanager:GetSecretValue` on each secret it reads, as Secrets Manager does, and
//! reports what it could not read in `Errors`).

use base64::Engine as _;
use berth_secrets::{Secret, SecretValue, VersionValue};
use serde::{Deserialize, Serialize};

use super::{max_results, secret_scope, secrets_error, value_of};
use crate::authz;
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueRequest {
    pub secret_id: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretValueWire {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<String>,
    pub version_stages: Vec<String>,
    pub created_date: f64,
}

impl std::fmt::Debug for SecretValueWire {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValueWire")
            .field("arn", &self.arn)
            .field("version_id", &self.version_id)
            .field("version_stages", &self.version_stages)
            .field("secret_string", &super::hidden(&self.secret_string))
            .field("secret_binary", &super::hidden(&self.secret_binary))
            .finish_non_exhaustive()
    }
}

impl From<VersionValue> for SecretValueWire {
    fn from(v: VersionValue) -> Self {
        let (secret_string, secret_binary) = match v.value {
            SecretValue::String(s) => (Some(s), None),
            SecretValue::Binary(b) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(b)),
            ),
        };
        SecretValueWire {
            arn: v.arn,
            name: v.name,
            version_id: v.version_id,
            secret_string,
            secret_binary,
            version_stages: v.stages,
            created_date: v.created_date,
        }
    }
}

pub(super) async fn get_secret_value(
    ctx: &AwsContext,
    req: GetSecretValueRequest,
) -> Result<SecretValueWire, AwsError> {
    let value = ctx
        .app
        .secrets
        .get_value(
            &secret_scope(ctx),
            &req.secret_id,
            req.version_id.as_deref(),
            req.version_stage.as_deref(),
        )
        .map_err(secrets_error)?;
    Ok(value.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
    pub version_stages: Option<Vec<String>>,
}

impl std::fmt::Debug for PutSecretValueRequest {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretValueRequest")
            .field("secret_id", &self.secret_id)
            .field("version_stages", &self.version_stages)
            .field("secret_string", &super::hidden(&self.secret_string))
            .field("secret_binary", &super::hidden(&self.secret_binary))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub version_stages: Vec<String>,
}

pub(super) async fn put_secret_value(
    ctx: &AwsContext,
    req: PutSecretValueRequest,
) -> Result<PutSecretValueResponse, AwsError> {
    let Some(value) = value_of(req.secret_string, req.secret_binary)? else {
        return Err(AwsError::client(
            "InvalidRequestException",
            "You must provide either SecretString or SecretBinary.",
        ));
    };
    let (secret, version) = ctx
        .app
        .secrets
        .put_value(
            &secret_scope(ctx),
            &req.secret_id,
            req.client_request_token.as_deref(),
            &value,
            req.version_stages.as_deref(),
        )
        .map_err(secrets_error)?;
    let version_stages = secret
        .versions
        .get(&version)
        .map(|v| v.stages.clone())
        .unwrap_or_default();
    Ok(PutSecretValueResponse {
        arn: secret.arn,
        name: secret.name,
        version_id: version,
        version_stages,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueRequest {
    pub secret_id_list: Option<Vec<String>>,
    pub filters: Option<Vec<super::secrets::FilterWire>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorWire {
    pub secret_id: String,
    pub error_code: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueResponse {
    pub secret_values: Vec<SecretValueWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub errors: Vec<ApiErrorWire>,
}

pub(super) async fn batch_get_secret_value(
    ctx: &AwsContext,
    req: BatchGetSecretValueRequest,
) -> Result<BatchGetSecretValueResponse, AwsError> {
    let scope = secret_scope(ctx);
    let secrets = &ctx.app.secrets;
    let mut out = BatchGetSecretValueResponse {
        secret_values: Vec::new(),
        next_token: None,
        errors: Vec::new(),
    };
    let mut record = |id: &str, result: Result<VersionValue, AwsError>| match result {
        Ok(v) => out.secret_values.push(v.into()),
        Err(e) => out.errors.push(ApiErrorWire {
            secret_id: id.to_string(),
            error_code: e.code,
            message: e.message,
        }),
    };
    match (req.secret_id_list, req.filters) {
        (Some(ids), None) => {
            if req.max_results.is_some() || req.next_token.is_some() {
                return Err(AwsError::invalid_parameter(
                    "MaxResults and NextToken can be used only with Filters.",
                ));
            }
            if ids.is_empty() || ids.len() > 20 {
                return Err(AwsError::invalid_parameter(
                    "1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length between 1 and 20",
                ));
            }
            for id in &ids {
                let read = secrets
                    .describe(&scope, id)
                    .map_err(secrets_error)
                    .and_then(|secret| read_authorized(ctx, &secret));
                record(id, read);
            }
        }
        (None, Some(filters)) => {
            let filters = super::secrets::filters_of(Some(filters))?;
            let limit = max_results(req.max_results, 20)?.unwrap_or(20);
            let (found, next) = secrets
                .list(&scope, &filters, false, req.next_token.as_deref(), limit)
                .map_err(secrets_error)?;
            for secret in found {
                let arn = secret.arn.clone();
                record(&arn, read_authorized(ctx, &secret));
            }
            out.next_token = next;
        }
        _ => {
            return Err(AwsError::invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
            ));
        }
    }
    Ok(out)
}

/// The current value of `secret`, when the caller may `secretsmanager:GetSecretValue` it
/// (its identity policies with the secret's resource policy, as for GetSecretValue itself).
fn read_authorized(ctx: &AwsContext, secret: &Secret) -> Result<VersionValue, AwsError> {
    let policy = authz::ResourcePolicy {
        account: ctx.scope.account.to_string(),
        document: secret.policy.clone(),
    };
    let tags = || {
        let pairs: Vec<(String, String)> = secret
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        authz::resource_tag_keys(super::SERVICE, &pairs)
    };
    authz::authorize_on(
        &ctx.app.iam,
        &ctx.principal,
        "secretsmanager:GetSecretValue",
        std::slice::from_ref(&secret.arn),
        &ctx.keys,
        authz::Refusal::Json,
        authz::OnResource {
            policy: Some(&policy),
            tags: Some(&tags),
        },
    )?;
    ctx.app
        .secrets
        .get_value(&secret_scope(ctx), &secret.arn, None, None)
        .map_err(secrets_error)
}
