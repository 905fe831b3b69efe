//! Repositories and the registry: Create/Describe/DeleteRepository, tag mutability and scan
//! settings, tags, repository policies, DescribeRegistry, GetAuthorizationToken.

use berth_model::RepositoryName;
use berth_registry::{
    CreateRepository, EcrTag, EncryptionConfiguration, TagMutability, TagMutabilityExclusionFilter,
};
use serde::{Deserialize, Serialize};

use super::{
    EmptyResponse, ImageScanningConfiguration, RepositoryResponse, RepositoryWire, check_registry,
    ecr_error, max_results, repository_name, repository_wire,
};
use crate::auth::TokenIssuer;
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    pub authorization_token: String,
    pub expires_at: i64,
    pub proxy_endpoint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub policy_text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    #[serde(default)]
    pub tags: Vec<EcrTag>,
    pub image_tag_mutability: Option<String>,
    #[serde(default)]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
    pub image_scanning_configuration: Option<ImageScanningConfiguration>,
    pub encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesRequest {
    pub registry_id: Option<String>,
    pub repository_names: Option<Vec<String>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesResponse {
    pub repositories: Vec<RepositoryWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenRequest {
    pub registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    pub authorization_data: Vec<AuthorizationData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_tag_mutability: String,
    #[serde(default)]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub image_tag_mutability: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageScanningConfigurationRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_scanning_configuration: ImageScanningConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageScanningConfigurationResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub image_scanning_configuration: ImageScanningConfiguration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: Vec<EcrTag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<EcrTag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetRepositoryPolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub policy_text: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
}

#[derive(Debug, Deserialize)]
pub struct DescribeRegistryRequest {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRegistryResponse {
    pub registry_id: String,
    pub replication_configuration: serde_json::Value,
}

pub(super) async fn create_repository(
    ctx: &AwsContext,
    req: CreateRepositoryRequest,
) -> Result<RepositoryResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let mut encryption = req.encryption_configuration.unwrap_or_default();
    match encryption.encryption_type.as_str() {
        "AES256" if encryption.kms_key.is_some() => {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter: kmsKey can only be specified when encryptionType is 'KMS' or 'KMS_DSSE'",
            ));
        }
        "KMS" | "KMS_DSSE" if encryption.kms_key.is_none() => {
            // "If no key is specified, the default Amazon Web Services managed KMS key for
            // Amazon ECR will be used" (EncryptionConfiguration): the `aws/ecr` key of the
            // repository's account and region, named by its alias (no KMS runs here to
            // give it a key id).
            encryption.kms_key = Some(format!(
                "arn:aws:kms:{}:{}:alias/aws/ecr",
                ctx.scope.region, ctx.scope.account
            ));
        }
        "AES256" | "KMS" | "KMS_DSSE" => {}
        other => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy constraint: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]' (got '{other}')"
            )));
        }
    }
    let request = CreateRepository {
        name: repository_name(&req.repository_name)?,
        image_tag_mutability: match req.image_tag_mutability.as_deref() {
            None => TagMutability::Mutable,
            Some(m) => TagMutability::parse(m).map_err(ecr_error)?,
        },
        image_tag_mutability_exclusion_filters: req.image_tag_mutability_exclusion_filters,
        scan_on_push: req
            .image_scanning_configuration
            .is_some_and(|c| c.scan_on_push),
        encryption,
        tags: req.tags,
    };
    let repo = ctx
        .app
        .registry
        .create_repository(&ctx.scope, request)
        .map_err(ecr_error)?;
    Ok(RepositoryResponse {
        repository: repository_wire(ctx, &repo),
    })
}

pub(super) async fn describe_repositories(
    ctx: &AwsContext,
    req: DescribeRepositoriesRequest,
) -> Result<DescribeRepositoriesResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let max = max_results(req.max_results, 1000, 100)?;
    if let Some(names) = req.repository_names {
        if req.next_token.is_some() || req.max_results.is_some() {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter: nextToken and maxResults cannot be used with repositoryNames",
            ));
        }
        let mut repositories = Vec::new();
        for name in names {
            let repo = ctx
                .app
                .registry
                .repository(&ctx.scope, &repository_name(&name)?)
                .map_err(ecr_error)?;
            repositories.push(repository_wire(ctx, &repo));
        }
        return Ok(DescribeRepositoriesResponse {
            repositories,
            next_token: None,
        });
    }
    let (repos, next_token) = ctx
        .app
        .registry
        .list_repositories(&ctx.scope, req.next_token.as_deref(), max)
        .map_err(ecr_error)?;
    Ok(DescribeRepositoriesResponse {
        repositories: repos.iter().map(|r| repository_wire(ctx, r)).collect(),
        next_token,
    })
}

pub(super) async fn delete_repository(
    ctx: &AwsContext,
    req: DeleteRepositoryRequest,
) -> Result<RepositoryResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = ctx
        .app
        .registry
        .delete_repository(
            &ctx.scope,
            &repository_name(&req.repository_name)?,
            req.force,
        )
        .map_err(ecr_error)?;
    Ok(RepositoryResponse {
        repository: repository_wire(ctx, &repo),
    })
}

pub(super) async fn get_authorization_token(
    ctx: &AwsContext,
    req: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, AwsError> {
    // One token is good for every registry of the installation (each pull or push is
    // authorized on its repository): other accounts' ids name registries too.
    let ids: Vec<String> = req.registry_ids.into_iter().flatten().collect();
    if !ids.is_empty() {
        let app = ctx.app.clone();
        let unknown = crate::protocol::json::blocking(move || {
            Ok(ids.into_iter().find(|id| !app.is_account(id)))
        })
        .await?;
        check_registry(ctx, &unknown)?;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (password, expires_at) = ctx.app.tokens.issue_for(
        &ctx.scope.account,
        &ctx.scope.region,
        Some(&ctx.principal),
        now,
    );
    Ok(GetAuthorizationTokenResponse {
        authorization_data: vec![AuthorizationData {
            authorization_token: TokenIssuer::authorization_token(&password),
            expires_at,
            // As ECR: `https://` + the registry host. The official ECS agent accepts a
            // token only for images under this prefix; Docker itself still talks plain HTTP
            // to a registry on 127.0.0.0/8.
            proxy_endpoint: format!("https://{}", ctx.app.registry_host()),
        }],
    })
}

pub(super) async fn put_image_tag_mutability(
    ctx: &AwsContext,
    req: PutImageTagMutabilityRequest,
) -> Result<PutImageTagMutabilityResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let mutability = TagMutability::parse(&req.image_tag_mutability).map_err(ecr_error)?;
    let r = ctx
        .app
        .registry
        .put_image_tag_mutability(
            &ctx.scope,
            &repo,
            mutability,
            &req.image_tag_mutability_exclusion_filters,
        )
        .map_err(ecr_error)?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        image_tag_mutability: r.image_tag_mutability.as_str(),
        image_tag_mutability_exclusion_filters: r.image_tag_mutability_exclusion_filters,
    })
}

pub(super) async fn put_image_scanning_configuration(
    ctx: &AwsContext,
    req: PutImageScanningConfigurationRequest,
) -> Result<PutImageScanningConfigurationResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let r = ctx
        .app
        .registry
        .put_image_scanning_configuration(
            &ctx.scope,
            &repo,
            req.image_scanning_configuration.scan_on_push,
        )
        .map_err(ecr_error)?;
    Ok(PutImageScanningConfigurationResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        image_scanning_configuration: ImageScanningConfiguration {
            scan_on_push: r.scan_on_push,
        },
    })
}

/// The repository named by an ECR repository ARN of this account and region.
pub(super) fn repository_from_arn(ctx: &AwsContext, arn: &str) -> Result<RepositoryName, AwsError> {
    let invalid = || {
        AwsError::invalid_parameter(format!(
            "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN' (got '{arn}')"
        ))
    };
    let prefix = format!(
        "arn:aws:ecr:{}:{}:repository/",
        ctx.scope.region, ctx.scope.account
    );
    let name = arn.strip_prefix(&prefix).ok_or_else(invalid)?;
    name.parse().map_err(|_| invalid())
}

pub(super) async fn tag_resource(
    ctx: &AwsContext,
    req: TagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    let repo = repository_from_arn(ctx, &req.resource_arn)?;
    ctx.app
        .registry
        .tag_repository(&ctx.scope, &repo, &req.tags)
        .map_err(ecr_error)?;
    Ok(EmptyResponse {})
}

pub(super) async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    let repo = repository_from_arn(ctx, &req.resource_arn)?;
    ctx.app
        .registry
        .untag_repository(&ctx.scope, &repo, &req.tag_keys)
        .map_err(ecr_error)?;
    Ok(EmptyResponse {})
}

pub(super) async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, AwsError> {
    let repo = repository_from_arn(ctx, &req.resource_arn)?;
    let r = ctx
        .app
        .registry
        .repository(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(ListTagsForResourceResponse { tags: r.tags })
}

pub(super) async fn set_repository_policy(
    ctx: &AwsContext,
    req: SetRepositoryPolicyRequest,
) -> Result<RepositoryPolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    check_principals(ctx, &req.policy_text)?;
    ctx.app
        .registry
        .set_repository_policy(&ctx.scope, &repo, &req.policy_text)
        .map_err(ecr_error)?;
    Ok(RepositoryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        policy_text: req.policy_text,
    })
}

pub(super) async fn get_repository_policy(
    ctx: &AwsContext,
    req: RepositoryPolicyRequest,
) -> Result<RepositoryPolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let policy_text = ctx
        .app
        .registry
        .get_repository_policy(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(RepositoryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        policy_text,
    })
}

pub(super) async fn delete_repository_policy(
    ctx: &AwsContext,
    req: RepositoryPolicyRequest,
) -> Result<RepositoryPolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let policy_text = ctx
        .app
        .registry
        .delete_repository_policy(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(RepositoryPolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        policy_text,
    })
}

pub(super) async fn describe_registry(
    ctx: &AwsContext,
    _req: DescribeRegistryRequest,
) -> Result<DescribeRegistryResponse, AwsError> {
    Ok(DescribeRegistryResponse {
        registry_id: ctx.scope.account.to_string(),
        replication_configuration: serde_json::json!({"rules": []}),
    })
}

/// ECR refuses a repository policy naming an IAM user or role that does not exist. Berth
/// knows the users and roles of its own accounts only: principals of other accounts, and
/// accounts themselves, are taken as written.
fn check_principals(ctx: &AwsContext, policy_text: &str) -> Result<(), AwsError> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy_text) else {
        return Ok(()); // the registry says what is wrong with it
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.iter().collect(),
        s @ serde_json::Value::Object(_) => vec![s],
        _ => Vec::new(),
    };
    let as_list = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let arns = statements
        .iter()
        .flat_map(|s| ["Principal", "NotPrincipal"].map(|k| as_list(&s[k]["AWS"])))
        .flatten();
    for arn in arns {
        let Some((account, resource)) = arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(':'))
        else {
            continue;
        };
        let name = resource.rsplit('/').next().unwrap_or_default();
        let iam = &ctx.app.iam;
        let exists = match resource.split_once('/') {
            Some(("user", _)) if ctx.app.is_account(account) => {
                iam.get_user(account, name).is_ok_and(|u| u.arn == arn)
            }
            Some(("role", _)) if ctx.app.is_account(account) => {
                iam.get_role(account, name).is_ok_and(|r| r.arn == arn)
            }
            _ => true,
        };
        if !exists {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'",
            ));
        }
    }
    Ok(())
}
