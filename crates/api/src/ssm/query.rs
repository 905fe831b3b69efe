//! Many parameters at once: GetParametersByPath and DescribeParameters.

use berth_ssm::Filter;
use serde::{Deserialize, Serialize};

use super::parameters::ParameterShown;
use super::{VersionDetails, opened, ssm_error, ssm_scope};
use crate::protocol::{AwsContext, AwsError};

/// A `ParameterStringFilter` (and the older `ParametersFilter`, which has no `Option`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterRequest {
    pub key: String,
    #[serde(default)]
    pub option: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

fn filters(given: Vec<FilterRequest>) -> Vec<Filter> {
    given
        .into_iter()
        .map(|f| Filter {
            key: f.key,
            option: f.option,
            values: f.values,
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersByPathRequest {
    pub path: String,
    #[serde(default)]
    pub recursive: Option<bool>,
    #[serde(default)]
    pub parameter_filters: Vec<FilterRequest>,
    #[serde(default)]
    pub with_decryption: Option<bool>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersByPathResponse {
    pub parameters: Vec<ParameterShown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn get_parameters_by_path(
    ctx: &AwsContext,
    req: GetParametersByPathRequest,
) -> Result<GetParametersByPathResponse, AwsError> {
    let scope = ssm_scope(ctx);
    let page = ctx
        .app
        .ssm
        .parameters_by_path(
            &scope,
            &req.path,
            req.recursive.unwrap_or(false),
            &filters(req.parameter_filters),
            false,
            req.max_results,
            req.next_token.as_deref(),
        )
        .map_err(ssm_error)?;
    let found = opened(ctx, &scope, page.items, req.with_decryption)?;
    Ok(GetParametersByPathResponse {
        parameters: found.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeParametersRequest {
    #[serde(default)]
    pub filters: Vec<FilterRequest>,
    #[serde(default)]
    pub parameter_filters: Vec<FilterRequest>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterMetadata {
    pub name: String,
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(flatten)]
    pub details: VersionDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeParametersResponse {
    pub parameters: Vec<ParameterMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn describe_parameters(
    ctx: &AwsContext,
    req: DescribeParametersRequest,
) -> Result<DescribeParametersResponse, AwsError> {
    let page = ctx
        .app
        .ssm
        .describe_parameters(
            &ssm_scope(ctx),
            &filters(req.filters),
            &filters(req.parameter_filters),
            req.max_results,
            req.next_token.as_deref(),
        )
        .map_err(ssm_error)?;
    Ok(DescribeParametersResponse {
        parameters: page
            .items
            .into_iter()
            .map(|p| ParameterMetadata {
                details: VersionDetails::split(p.version).0,
                arn: p.arn,
                name: p.name,
            })
            .collect(),
        next_token: page.next_token,
    })
}
