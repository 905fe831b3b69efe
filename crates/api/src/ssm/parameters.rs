//! One parameter at a time: PutParameter, GetParameter(s), DeleteParameter(s),
//! GetParameterHistory, LabelParameterVersion, UnlabelParameterVersion.

use berth_ssm::{Parameter, PutParameter};
use serde::{Deserialize, Serialize};

use super::{Empty, Tag, VersionDetails, opened, ssm_error, ssm_scope, timestamp};
use crate::protocol::{AwsContext, AwsError};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutParameterRequest {
    pub name: String,
    pub value: String,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub overwrite: Option<bool>,
    #[serde(default)]
    pub allowed_pattern: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub policies: Option<String>,
    #[serde(default)]
    pub data_type: Option<String>,
}

impl std::fmt::Debug for PutParameterRequest {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutParameterRequest")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("overwrite", &self.overwrite)
            .field("value", &"<hidden>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutParameterResponse {
    pub version: u64,
    pub tier: &'static str,
}

pub(super) async fn put_parameter(
    ctx: &AwsContext,
    req: PutParameterRequest,
) -> Result<PutParameterResponse, AwsError> {
    let put = PutParameter {
        name: req.name,
        value: req.value,
        kind: req.kind,
        description: req.description,
        key_id: req.key_id,
        overwrite: req.overwrite.unwrap_or(false),
        allowed_pattern: req.allowed_pattern,
        tags: req.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        tier: req.tier,
        policies: req.policies,
        data_type: req.data_type,
        user: ctx.principal.arn(),
    };
    let outcome = ctx
        .app
        .ssm
        .put_parameter(&ssm_scope(ctx), put)
        .map_err(ssm_error)?;
    Ok(PutParameterResponse {
        version: outcome.version,
        tier: outcome.tier.as_str(),
    })
}

/// A parameter as GetParameter(s) and GetParametersByPath show it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterShown {
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub value: String,
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub last_modified_date: f64,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub data_type: String,
}

impl std::fmt::Debug for ParameterShown {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterShown")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("version", &self.version)
            .field("value", &super::shown_value(self.kind, &self.value))
            .finish_non_exhaustive()
    }
}

impl From<Parameter> for ParameterShown {
    fn from(p: Parameter) -> ParameterShown {
        ParameterShown {
            kind: p.version.kind.as_str(),
            value: p.version.value,
            version: p.version.version,
            selector: p.selector,
            last_modified_date: timestamp(p.version.last_modified_ms),
            arn: p.arn,
            data_type: p.version.data_type,
            name: p.name,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterRequest {
    pub name: String,
    #[serde(default)]
    pub with_decryption: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterResponse {
    pub parameter: ParameterShown,
}

pub(super) async fn get_parameter(
    ctx: &AwsContext,
    req: GetParameterRequest,
) -> Result<GetParameterResponse, AwsError> {
    let scope = ssm_scope(ctx);
    let found = ctx
        .app
        .ssm
        .get_parameter(&scope, &req.name, false)
        .map_err(ssm_error)?;
    let mut found = opened(ctx, &scope, vec![found], req.with_decryption)?;
    Ok(GetParameterResponse {
        parameter: found.remove(0).into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersRequest {
    pub names: Vec<String>,
    #[serde(default)]
    pub with_decryption: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersResponse {
    pub parameters: Vec<ParameterShown>,
    pub invalid_parameters: Vec<String>,
}

pub(super) async fn get_parameters(
    ctx: &AwsContext,
    req: GetParametersRequest,
) -> Result<GetParametersResponse, AwsError> {
    let scope = ssm_scope(ctx);
    let (found, invalid) = ctx
        .app
        .ssm
        .get_parameters(&scope, &req.names, false)
        .map_err(ssm_error)?;
    let found = opened(ctx, &scope, found, req.with_decryption)?;
    Ok(GetParametersResponse {
        parameters: found.into_iter().map(Into::into).collect(),
        invalid_parameters: invalid,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameRequest {
    pub name: String,
}

pub(super) async fn delete_parameter(
    ctx: &AwsContext,
    req: NameRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .ssm
        .delete_parameter(&ssm_scope(ctx), &req.name)
        .map_err(ssm_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamesRequest {
    pub names: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParametersResponse {
    pub deleted_parameters: Vec<String>,
    pub invalid_parameters: Vec<String>,
}

pub(super) async fn delete_parameters(
    ctx: &AwsContext,
    req: NamesRequest,
) -> Result<DeleteParametersResponse, AwsError> {
    let (deleted, invalid) = ctx
        .app
        .ssm
        .delete_parameters(&ssm_scope(ctx), &req.names)
        .map_err(ssm_error)?;
    Ok(DeleteParametersResponse {
        deleted_parameters: deleted,
        invalid_parameters: invalid,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterHistoryRequest {
    pub name: String,
    #[serde(default)]
    pub with_decryption: Option<bool>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterHistory {
    pub name: String,
    pub value: String,
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub details: VersionDetails,
}

impl std::fmt::Debug for ParameterHistory {
    // A secret value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterHistory")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("value", &super::shown_value(self.details.kind, &self.value))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterHistoryResponse {
    pub parameters: Vec<ParameterHistory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn get_parameter_history(
    ctx: &AwsContext,
    req: GetParameterHistoryRequest,
) -> Result<GetParameterHistoryResponse, AwsError> {
    let max = match req.max_results {
        None => 50,
        Some(n) if (1..=50).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::client(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                    if n < 1 {
                        "greater than or equal to 1"
                    } else {
                        "less than or equal to 50"
                    }
                ),
            ));
        }
    };
    let scope = ssm_scope(ctx);
    let (found, next_token) = ctx
        .app
        .ssm
        .parameter_history(&scope, &req.name, false, max, req.next_token.as_deref())
        .map_err(ssm_error)?;
    let found = opened(ctx, &scope, found, req.with_decryption)?;
    Ok(GetParameterHistoryResponse {
        parameters: found
            .into_iter()
            .map(|p| {
                let (details, value, labels) = VersionDetails::split(p.version);
                ParameterHistory {
                    name: p.name,
                    value,
                    labels,
                    details,
                }
            })
            .collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelParameterVersionRequest {
    pub name: String,
    #[serde(default)]
    pub parameter_version: Option<u64>,
    pub labels: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelParameterVersionResponse {
    pub invalid_labels: Vec<String>,
    pub parameter_version: u64,
}

pub(super) async fn label_parameter_version(
    ctx: &AwsContext,
    req: LabelParameterVersionRequest,
) -> Result<LabelParameterVersionResponse, AwsError> {
    let outcome = ctx
        .app
        .ssm
        .label_parameter_version(
            &ssm_scope(ctx),
            &req.name,
            req.parameter_version,
            &req.labels,
        )
        .map_err(ssm_error)?;
    Ok(LabelParameterVersionResponse {
        invalid_labels: outcome.invalid_labels,
        parameter_version: outcome.version,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlabelParameterVersionRequest {
    pub name: String,
    pub parameter_version: u64,
    pub labels: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlabelParameterVersionResponse {
    pub removed_labels: Vec<String>,
    pub invalid_labels: Vec<String>,
}

pub(super) async fn unlabel_parameter_version(
    ctx: &AwsContext,
    req: UnlabelParameterVersionRequest,
) -> Result<UnlabelParameterVersionResponse, AwsError> {
    let outcome = ctx
        .app
        .ssm
        .unlabel_parameter_version(
            &ssm_scope(ctx),
            &req.name,
            req.parameter_version,
            &req.labels,
        )
        .map_err(ssm_error)?;
    Ok(UnlabelParameterVersionResponse {
        removed_labels: outcome.removed_labels,
        invalid_labels: outcome.invalid_labels,
    })
}
