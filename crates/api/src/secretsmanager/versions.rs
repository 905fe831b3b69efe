//! Versions: ListSecretVersionIds and UpdateSecretVersionStage.

use berth_secrets::SecretsError;
use serde::{Deserialize, Serialize};

use super::{ArnAndName, max_results, secret_scope, secrets_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsRequest {
    pub secret_id: String,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub include_deprecated: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionWire {
    pub version_id: String,
    pub version_stages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    pub created_date: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsResponse {
    pub versions: Vec<VersionWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

pub(super) async fn list_secret_version_ids(
    ctx: &AwsContext,
    req: ListSecretVersionIdsRequest,
) -> Result<ListSecretVersionIdsResponse, AwsError> {
    let limit = max_results(req.max_results, 100)?.unwrap_or(100);
    let secret = ctx
        .app
        .secrets
        .describe(&secret_scope(ctx), &req.secret_id)
        .map_err(secrets_error)?;
    let after = match req.next_token.as_deref() {
        Some(t) => Some(berth_store::page_token::decode(t).ok_or_else(|| {
            secrets_error(SecretsError::InvalidParameter("Invalid NextToken.".into()))
        })?),
        None => None,
    };
    let deprecated = req.include_deprecated.unwrap_or(false);
    let mut versions: Vec<VersionWire> = secret
        .versions
        .iter()
        .filter(|(id, v)| {
            (deprecated || !v.stages.is_empty()) && after.as_ref().is_none_or(|a| *id > a)
        })
        .map(|(id, v)| VersionWire {
            version_id: id.clone(),
            version_stages: v.stages.clone(),
            last_accessed_date: v.last_accessed_date,
            created_date: v.created_date,
        })
        .take(limit + 1)
        .collect();
    let next_token = (versions.len() > limit).then(|| {
        versions.truncate(limit);
        berth_store::page_token::encode(&versions[limit - 1].version_id)
    });
    Ok(ListSecretVersionIdsResponse {
        versions,
        next_token,
        arn: secret.arn,
        name: secret.name,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretVersionStageRequest {
    pub secret_id: String,
    pub version_stage: String,
    pub remove_from_version_id: Option<String>,
    pub move_to_version_id: Option<String>,
}

pub(super) async fn update_secret_version_stage(
    ctx: &AwsContext,
    req: UpdateSecretVersionStageRequest,
) -> Result<ArnAndName, AwsError> {
    let s = ctx
        .app
        .secrets
        .update_version_stage(
            &secret_scope(ctx),
            &req.secret_id,
            &req.version_stage,
            req.remove_from_version_id.as_deref(),
            req.move_to_version_id.as_deref(),
        )
        .map_err(secrets_error)?;
    Ok(s.into())
}
