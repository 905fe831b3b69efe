//! The secret itself: CreateSecret, DescribeSecret, UpdateSecret, ListSecrets,
//! DeleteSecret, RestoreSecret, tags, and rotation settings (kept, never run: Berth has no
//! Lambda).

use std::collections::BTreeMap;

use berth_secrets::{CreateSecret, Filter, FilterKey, RotationRules, Secret, UpdateSecret};
use serde::{Deserialize, Serialize};

use super::{
    ArnAndName, Empty, SecretIdRequest, TagWire, max_results, secret_scope, secrets_error, tags_in,
    tags_out, value_of,
};
use crate::protocol::{AwsContext, AwsError};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretRequest {
    pub name: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
    pub tags: Option<Vec<TagWire>>,
}

impl std::fmt::Debug for CreateSecretRequest {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSecretRequest")
            .field("name", &self.name)
            .field("kms_key_id", &self.kms_key_id)
            .field("secret_string", &super::hidden(&self.secret_string))
            .field("secret_binary", &super::hidden(&self.secret_binary))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl CreateSecretResponse {
    /// The answer of a call that wrote the secret (and, given a value, a version).
    fn written(secret: Secret, version_id: Option<String>) -> Self {
        CreateSecretResponse {
            arn: secret.arn,
            name: secret.name,
            version_id,
        }
    }
}

pub(super) async fn create_secret(
    ctx: &AwsContext,
    req: CreateSecretRequest,
) -> Result<CreateSecretResponse, AwsError> {
    let value = value_of(req.secret_string, req.secret_binary)?;
    let (secret, version_id) = ctx
        .app
        .secrets
        .create(
            &secret_scope(ctx),
            CreateSecret {
                name: req.name,
                description: req.description,
                kms_key_id: req.kms_key_id,
                value,
                tags: tags_in(req.tags),
                version_id: req.client_request_token,
            },
        )
        .map_err(secrets_error)?;
    Ok(CreateSecretResponse::written(secret, version_id))
}

/// DescribeSecret's answer, and (with `SecretVersionsToStages` for the map) a ListSecrets
/// entry. KmsKeyId only when one was given, as Secrets Manager shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretWire {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub rotation_enabled: bool,
    #[serde(rename = "RotationLambdaARN", skip_serializing_if = "Option::is_none")]
    pub rotation_lambda_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_rules: Option<RotationRulesWire>,
    pub last_changed_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_ids_to_stages: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_versions_to_stages: Option<BTreeMap<String, Vec<String>>>,
    pub created_date: f64,
}

impl SecretWire {
    fn describe(s: Secret) -> SecretWire {
        let stages = s.versions_to_stages();
        SecretWire {
            version_ids_to_stages: Some(stages),
            ..SecretWire::listed(s, None)
        }
    }

    fn listed(s: Secret, stages: Option<BTreeMap<String, Vec<String>>>) -> SecretWire {
        SecretWire {
            tags: tags_out(&s.tags),
            arn: s.arn,
            name: s.name,
            description: s.description,
            kms_key_id: s.kms_key_id,
            rotation_enabled: s.rotation_enabled,
            rotation_lambda_arn: s.rotation_lambda_arn,
            rotation_rules: s.rotation_rules.map(Into::into),
            last_changed_date: s.last_changed_date,
            last_accessed_date: s.last_accessed_date,
            deleted_date: s.deleted_date,
            version_ids_to_stages: None,
            secret_versions_to_stages: stages,
            created_date: s.created_date,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationRulesWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

impl From<RotationRulesWire> for RotationRules {
    fn from(r: RotationRulesWire) -> Self {
        RotationRules {
            automatically_after_days: r.automatically_after_days,
            duration: r.duration,
            schedule_expression: r.schedule_expression,
        }
    }
}

impl From<RotationRules> for RotationRulesWire {
    fn from(r: RotationRules) -> Self {
        RotationRulesWire {
            automatically_after_days: r.automatically_after_days,
            duration: r.duration,
            schedule_expression: r.schedule_expression,
        }
    }
}

pub(super) async fn describe_secret(
    ctx: &AwsContext,
    req: SecretIdRequest,
) -> Result<SecretWire, AwsError> {
    let secret = ctx
        .app
        .secrets
        .describe(&secret_scope(ctx), &req.secret_id)
        .map_err(secrets_error)?;
    Ok(SecretWire::describe(secret))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub secret_string: Option<String>,
    pub secret_binary: Option<String>,
}

impl std::fmt::Debug for UpdateSecretRequest {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateSecretRequest")
            .field("secret_id", &self.secret_id)
            .field("kms_key_id", &self.kms_key_id)
            .field("secret_string", &super::hidden(&self.secret_string))
            .field("secret_binary", &super::hidden(&self.secret_binary))
            .finish_non_exhaustive()
    }
}

pub(super) async fn update_secret(
    ctx: &AwsContext,
    req: UpdateSecretRequest,
) -> Result<CreateSecretResponse, AwsError> {
    let value = value_of(req.secret_string, req.secret_binary)?;
    let (secret, version_id) = ctx
        .app
        .secrets
        .update(
            &secret_scope(ctx),
            &req.secret_id,
            UpdateSecret {
                description: req.description,
                kms_key_id: req.kms_key_id,
                value,
                version_id: req.client_request_token,
            },
        )
        .map_err(secrets_error)?;
    Ok(CreateSecretResponse::written(secret, version_id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterWire {
    pub key: Option<String>,
    pub values: Option<Vec<String>>,
}

pub(super) fn filters_of(filters: Option<Vec<FilterWire>>) -> Result<Vec<Filter>, AwsError> {
    filters
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let key = FilterKey::parse(f.key.as_deref().unwrap_or("")).map_err(secrets_error)?;
            Ok(Filter {
                key,
                values: f.values.unwrap_or_default(),
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsRequest {
    pub include_planned_deletion: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub filters: Option<Vec<FilterWire>>,
    pub sort_order: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsResponse {
    pub secret_list: Vec<SecretWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn list_secrets(
    ctx: &AwsContext,
    req: ListSecretsRequest,
) -> Result<ListSecretsResponse, AwsError> {
    let filters = filters_of(req.filters)?;
    let limit = max_results(req.max_results, 100)?.unwrap_or(100);
    let (secrets, next_token) = ctx
        .app
        .secrets
        .list(
            &secret_scope(ctx),
            &filters,
            req.include_planned_deletion.unwrap_or(false),
            req.next_token.as_deref(),
            limit,
        )
        .map_err(secrets_error)?;
    let mut secret_list: Vec<SecretWire> = secrets
        .into_iter()
        .map(|s| {
            let stages = s.versions_to_stages();
            SecretWire::listed(s, Some(stages))
        })
        .collect();
    // SortOrder orders a page by creation date (pages themselves follow name order).
    if let Some(order) = req.sort_order.as_deref() {
        secret_list.sort_by(|a, b| a.created_date.total_cmp(&b.created_date));
        if order == "desc" {
            secret_list.reverse();
        }
    }
    Ok(ListSecretsResponse {
        secret_list,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretRequest {
    pub secret_id: String,
    pub recovery_window_in_days: Option<i64>,
    pub force_delete_without_recovery: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub deletion_date: f64,
}

pub(super) async fn delete_secret(
    ctx: &AwsContext,
    req: DeleteSecretRequest,
) -> Result<DeleteSecretResponse, AwsError> {
    let secret = ctx
        .app
        .secrets
        .delete(
            &secret_scope(ctx),
            &req.secret_id,
            req.recovery_window_in_days,
            req.force_delete_without_recovery.unwrap_or(false),
        )
        .map_err(secrets_error)?;
    Ok(DeleteSecretResponse {
        arn: secret.arn,
        name: secret.name,
        deletion_date: secret.deletion_date.unwrap_or_default(),
    })
}

pub(super) async fn restore_secret(
    ctx: &AwsContext,
    req: SecretIdRequest,
) -> Result<ArnAndName, AwsError> {
    let s = ctx
        .app
        .secrets
        .restore(&secret_scope(ctx), &req.secret_id)
        .map_err(secrets_error)?;
    Ok(s.into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub secret_id: String,
    pub tags: Vec<TagWire>,
}

pub(super) async fn tag_resource(
    ctx: &AwsContext,
    req: TagResourceRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .secrets
        .tag(&secret_scope(ctx), &req.secret_id, &tags_in(Some(req.tags)))
        .map_err(secrets_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    pub secret_id: String,
    pub tag_keys: Vec<String>,
}

pub(super) async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .secrets
        .untag(&secret_scope(ctx), &req.secret_id, &req.tag_keys)
        .map_err(secrets_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretRequest {
    pub secret_id: String,
    #[serde(rename = "RotationLambdaARN")]
    pub rotation_lambda_arn: Option<String>,
    pub rotation_rules: Option<RotationRulesWire>,
}

pub(super) async fn rotate_secret(
    ctx: &AwsContext,
    req: RotateSecretRequest,
) -> Result<ArnAndName, AwsError> {
    let s = ctx
        .app
        .secrets
        .rotate(
            &secret_scope(ctx),
            &req.secret_id,
            req.rotation_lambda_arn.as_deref(),
            req.rotation_rules.map(Into::into),
        )
        .map_err(secrets_error)?;
    Ok(s.into())
}

pub(super) async fn cancel_rotate_secret(
    ctx: &AwsContext,
    req: SecretIdRequest,
) -> Result<ArnAndName, AwsError> {
    let s = ctx
        .app
        .secrets
        .cancel_rotate(&secret_scope(ctx), &req.secret_id)
        .map_err(secrets_error)?;
    Ok(s.into())
}
