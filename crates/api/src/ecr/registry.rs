//! The registry's settings: Put/Get/DeleteRegistryPolicy, Put/GetRegistryScanningConfiguration
//! and BatchGetRepositoryScanningConfiguration.

use berth_registry::{
    RegistryScanningConfiguration, RegistryScanningRule, ScanningRepositoryFilter,
};
use serde::{Deserialize, Serialize};

use super::{ecr_error, repository_name};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryPolicyRequest {
    pub policy_text: String,
}

#[derive(Debug, Deserialize)]
pub struct RegistryRequest {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicyResponse {
    pub registry_id: String,
    pub policy_text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryScanningConfigurationRequest {
    pub scan_type: Option<String>,
    #[serde(default)]
    pub rules: Vec<RegistryScanningRule>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryScanningConfigurationResponse {
    pub registry_scanning_configuration: RegistryScanningConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRegistryScanningConfigurationResponse {
    pub registry_id: String,
    pub scanning_configuration: RegistryScanningConfiguration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetRepositoryScanningConfigurationRequest {
    pub repository_names: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryScanningConfigurationWire {
    pub repository_arn: String,
    pub repository_name: String,
    pub scan_on_push: bool,
    pub scan_frequency: String,
    pub applied_scan_filters: Vec<ScanningRepositoryFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanningConfigurationFailure {
    pub repository_name: String,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetRepositoryScanningConfigurationResponse {
    pub scanning_configurations: Vec<RepositoryScanningConfigurationWire>,
    pub failures: Vec<ScanningConfigurationFailure>,
}

pub(super) async fn put_registry_policy(
    ctx: &AwsContext,
    req: PutRegistryPolicyRequest,
) -> Result<RegistryPolicyResponse, AwsError> {
    ctx.app
        .registry
        .put_registry_policy(&ctx.scope, &req.policy_text)
        .map_err(ecr_error)?;
    Ok(RegistryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        policy_text: req.policy_text,
    })
}

pub(super) async fn get_registry_policy(
    ctx: &AwsContext,
    _req: RegistryRequest,
) -> Result<RegistryPolicyResponse, AwsError> {
    let policy_text = ctx
        .app
        .registry
        .get_registry_policy(&ctx.scope)
        .map_err(ecr_error)?;
    Ok(RegistryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        policy_text,
    })
}

pub(super) async fn delete_registry_policy(
    ctx: &AwsContext,
    _req: RegistryRequest,
) -> Result<RegistryPolicyResponse, AwsError> {
    let policy_text = ctx
        .app
        .registry
        .delete_registry_policy(&ctx.scope)
        .map_err(ecr_error)?;
    Ok(RegistryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        policy_text,
    })
}

pub(super) async fn put_registry_scanning_configuration(
    ctx: &AwsContext,
    req: PutRegistryScanningConfigurationRequest,
) -> Result<PutRegistryScanningConfigurationResponse, AwsError> {
    let config = RegistryScanningConfiguration {
        scan_type: req.scan_type.unwrap_or_else(|| "BASIC".into()),
        rules: req.rules,
    };
    let registry_scanning_configuration = ctx
        .app
        .registry
        .put_registry_scanning_configuration(&ctx.scope, config)
        .map_err(ecr_error)?;
    Ok(PutRegistryScanningConfigurationResponse {
        registry_scanning_configuration,
    })
}

pub(super) async fn get_registry_scanning_configuration(
    ctx: &AwsContext,
    _req: RegistryRequest,
) -> Result<GetRegistryScanningConfigurationResponse, AwsError> {
    let scanning_configuration = ctx
        .app
        .registry
        .registry_scanning_configuration(&ctx.scope)
        .map_err(ecr_error)?;
    Ok(GetRegistryScanningConfigurationResponse {
        registry_id: ctx.scope.account.to_string(),
        scanning_configuration,
    })
}

pub(super) async fn batch_get_repository_scanning_configuration(
    ctx: &AwsContext,
    req: BatchGetRepositoryScanningConfigurationRequest,
) -> Result<BatchGetRepositoryScanningConfigurationResponse, AwsError> {
    if req.repository_names.is_empty() || req.repository_names.len() > 25 {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must have length between 1 and 25'",
        ));
    }
    let names = req
        .repository_names
        .iter()
        .map(|n| repository_name(n))
        .collect::<Result<Vec<_>, _>>()?;
    let (found, missing) = ctx
        .app
        .registry
        .repository_scanning(&ctx.scope, &names)
        .map_err(ecr_error)?;
    Ok(BatchGetRepositoryScanningConfigurationResponse {
        scanning_configurations: found
            .into_iter()
            .map(|r| RepositoryScanningConfigurationWire {
                repository_arn: format!(
                    "arn:aws:ecr:{}:{}:repository/{}",
                    ctx.scope.region, ctx.scope.account, r.name
                ),
                repository_name: r.name.to_string(),
                scan_on_push: r.scan_on_push,
                scan_frequency: r.scan_frequency,
                applied_scan_filters: r.applied_scan_filters,
            })
            .collect(),
        failures: missing
            .into_iter()
            .map(|e| {
                let name = match &e {
                    berth_registry::RegistryError::RepositoryNotFound { name, .. } => {
                        name.to_string()
                    }
                    _ => String::new(),
                };
                ScanningConfigurationFailure {
                    repository_name: name,
                    failure_code: "REPOSITORY_NOT_FOUND",
                    failure_reason: e.to_string(),
                }
            })
            .collect(),
    })
}
