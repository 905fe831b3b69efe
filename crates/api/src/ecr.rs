//! ECR's JSON API (`AmazonEC2ContainerRegistry_V20150921.*`): one typed request and
//! response per operation, AWS field names, and the mapping of registry errors to ECR's
//! exceptions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_model::{Digest, RepositoryName, Tag};
use berth_registry::{
    CreateRepository, EncryptionConfiguration, ImageDetail, ImageIdentifier, ListImagesFilter,
    RegistryError, Repository, ResourceTag, TagMutability,
};
use serde::{Deserialize, Serialize};

use crate::auth::TokenIssuer;
use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";

/// ECR's generic mapping from registry errors to exceptions. Operations where ECR names a
/// more specific exception map those cases themselves before falling back to this.
pub fn ecr_error(e: RegistryError) -> AwsError {
    use RegistryError as E;
    let code = match &e {
        E::RepositoryNotFound { .. } => "RepositoryNotFoundException",
        E::RepositoryAlreadyExists { .. } => "RepositoryAlreadyExistsException",
        E::RepositoryNotEmpty { .. } => "RepositoryNotEmptyException",
        E::RepositoryPolicyNotFound { .. } => "RepositoryPolicyNotFoundException",
        E::ImageNotFound(_) | E::ManifestUnknown(_) => "ImageNotFoundException",
        E::ImageTagAlreadyExists { .. } => "ImageTagAlreadyExistsException",
        E::BlobUnknown(_) | E::ManifestBlobUnknown(_) => "LayersNotFoundException",
        E::UploadUnknown => "UploadNotFoundException",
        E::RangeInvalid { .. } => "InvalidLayerPartException",
        E::ManifestChildUnknown(_) => "ReferencedImagesNotFoundException",
        E::DigestMismatch { .. } => "ImageDigestDoesNotMatchException",
        E::InvalidTagParameter(_) => "InvalidTagParameterException",
        E::TooManyTags(_) => "TooManyTagsException",
        E::InvalidParameter(_)
        | E::InvalidPolicy(_)
        | E::ImageReferencedByManifestList(_)
        | E::ManifestInvalid(_)
        | E::ManifestTooLarge { .. }
        | E::Body(_) => "InvalidParameterException",
        E::Store(_) | E::Io(_) | E::Corrupt(_) => return AwsError::server(e.to_string()),
    };
    AwsError::client(code, e.to_string())
}

fn repository_name(name: &str) -> Result<RepositoryName, AwsError> {
    name.parse().map_err(|_| {
        AwsError::invalid_parameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (got '{name}')"
        ))
    })
}

fn parse_digest(field: &str, value: &str) -> Result<Digest, AwsError> {
    value.parse().map_err(|_| {
        AwsError::invalid_parameter(format!(
            "Invalid parameter at '{field}' failed to satisfy constraint: 'must be a valid digest' (got '{value}')"
        ))
    })
}

fn check_registry(ctx: &AwsContext, registry_id: &Option<String>) -> Result<(), AwsError> {
    match registry_id {
        Some(id) if id != ctx.scope.account.as_str() => Err(AwsError::invalid_parameter(format!(
            "Invalid parameter at 'registryId': the registry '{id}' is not this registry ('{}')",
            ctx.scope.account
        ))),
        _ => Ok(()),
    }
}

fn max_results(value: Option<i64>, limit: i64, default: usize) -> Result<usize, AwsError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=limit).contains(&n) => Ok(n as usize),
        Some(n) => Err(AwsError::invalid_parameter(format!(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and {limit}' (got {n})"
        ))),
    }
}

fn tag_status(filter: &Option<ImageFilter>) -> Result<ListImagesFilter, AwsError> {
    match filter.as_ref().and_then(|f| f.tag_status.as_deref()) {
        None | Some("ANY") => Ok(ListImagesFilter::Any),
        Some("TAGGED") => Ok(ListImagesFilter::Tagged),
        Some("UNTAGGED") => Ok(ListImagesFilter::Untagged),
        Some(other) => Err(AwsError::invalid_parameter(format!(
            "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' (got '{other}')"
        ))),
    }
}

// ---- wire shapes shared by several operations ----

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanningConfiguration {
    #[serde(default)]
    pub scan_on_push: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryWire {
    pub repository_arn: String,
    pub registry_id: String,
    pub repository_name: String,
    pub repository_uri: String,
    pub created_at: f64,
    pub image_tag_mutability: &'static str,
    pub image_scanning_configuration: ImageScanningConfiguration,
    pub encryption_configuration: EncryptionConfiguration,
}

fn repository_wire(ctx: &AwsContext, r: &Repository) -> RepositoryWire {
    RepositoryWire {
        repository_arn: r.arn(&ctx.scope),
        registry_id: ctx.scope.account.to_string(),
        repository_name: r.name.to_string(),
        repository_uri: format!("{}/{}", ctx.app.registry_host(), r.name),
        created_at: r.created_at,
        image_tag_mutability: r.image_tag_mutability.as_str(),
        image_scanning_configuration: ImageScanningConfiguration {
            scan_on_push: r.scan_on_push,
        },
        encryption_configuration: r.encryption.clone(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFilter {
    pub tag_status: Option<String>,
}

// ---- requests and responses ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    #[serde(default)]
    pub tags: Vec<ResourceTag>,
    pub image_tag_mutability: Option<String>,
    pub image_scanning_configuration: Option<ImageScanningConfiguration>,
    pub encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryResponse {
    pub repository: RepositoryWire,
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
pub struct AuthorizationData {
    pub authorization_token: String,
    pub expires_at: i64,
    pub proxy_endpoint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    pub authorization_data: Vec<AuthorizationData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    pub image_details: Vec<ImageDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesResponse {
    pub image_ids: Vec<ImageIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
    pub accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageWire {
    pub registry_id: String,
    pub repository_name: String,
    pub image_id: ImageIdentifier,
    pub image_manifest: String,
    pub image_manifest_media_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageResponse {
    pub images: Vec<ImageWire>,
    pub failures: Vec<berth_registry::ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageResponse {
    pub image_ids: Vec<ImageIdentifier>,
    pub failures: Vec<berth_registry::ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_manifest: String,
    pub image_manifest_media_type: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageResponse {
    pub image: ImageWire,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub layer_digests: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub layer_digest: String,
    pub layer_availability: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerFailure {
    pub layer_digest: String,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityResponse {
    pub layers: Vec<Layer>,
    pub failures: Vec<LayerFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadResponse {
    pub upload_id: String,
    pub part_size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub upload_id: String,
    pub part_first_byte: u64,
    pub part_last_byte: u64,
    pub layer_part_blob: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub last_byte_received: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub upload_id: String,
    pub layer_digests: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub layer_digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub layer_digest: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerResponse {
    pub download_url: String,
    pub layer_digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_tag_mutability: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub image_tag_mutability: &'static str,
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
    pub tags: Vec<ResourceTag>,
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
    pub tags: Vec<ResourceTag>,
}

#[derive(Debug, Serialize)]
pub struct EmptyResponse {}

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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub policy_text: String,
}

#[derive(Debug, Deserialize)]
pub struct DescribeRegistryRequest {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRegistryResponse {
    pub registry_id: String,
    pub replication_configuration: serde_json::Value,
}

// ---- the typed action and its dispatch ----

crate::aws_actions! {
    EcrAction, "ECR";
    CreateRepository(CreateRepositoryRequest) => blocking create_repository,
    DescribeRepositories(DescribeRepositoriesRequest) => blocking describe_repositories,
    DeleteRepository(DeleteRepositoryRequest) => blocking delete_repository,
    GetAuthorizationToken(GetAuthorizationTokenRequest) => inline get_authorization_token,
    DescribeImages(DescribeImagesRequest) => blocking describe_images,
    ListImages(ListImagesRequest) => blocking list_images,
    BatchGetImage(BatchGetImageRequest) => blocking batch_get_image,
    BatchDeleteImage(BatchDeleteImageRequest) => blocking batch_delete_image,
    PutImage(PutImageRequest) => blocking put_image,
    BatchCheckLayerAvailability(BatchCheckLayerAvailabilityRequest) => blocking batch_check_layer_availability,
    InitiateLayerUpload(InitiateLayerUploadRequest) => blocking initiate_layer_upload,
    UploadLayerPart(UploadLayerPartRequest) => blocking upload_layer_part,
    CompleteLayerUpload(CompleteLayerUploadRequest) => blocking complete_layer_upload,
    GetDownloadUrlForLayer(GetDownloadUrlForLayerRequest) => blocking get_download_url_for_layer,
    PutImageTagMutability(PutImageTagMutabilityRequest) => blocking put_image_tag_mutability,
    PutImageScanningConfiguration(PutImageScanningConfigurationRequest) => blocking put_image_scanning_configuration,
    TagResource(TagResourceRequest) => blocking tag_resource,
    UntagResource(UntagResourceRequest) => blocking untag_resource,
    ListTagsForResource(ListTagsForResourceRequest) => blocking list_tags_for_resource,
    SetRepositoryPolicy(SetRepositoryPolicyRequest) => blocking set_repository_policy,
    GetRepositoryPolicy(RepositoryPolicyRequest) => blocking get_repository_policy,
    DeleteRepositoryPolicy(RepositoryPolicyRequest) => blocking delete_repository_policy,
    DescribeRegistry(DescribeRegistryRequest) => blocking describe_registry,
}

// ---- handlers ----

async fn create_repository(
    ctx: &AwsContext,
    req: CreateRepositoryRequest,
) -> Result<RepositoryResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let encryption = req.encryption_configuration.unwrap_or_default();
    match encryption.encryption_type.as_str() {
        "AES256" if encryption.kms_key.is_some() => {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter: kmsKey can only be specified when encryptionType is 'KMS' or 'KMS_DSSE'",
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

async fn describe_repositories(
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

async fn delete_repository(
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

async fn get_authorization_token(
    ctx: &AwsContext,
    req: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, AwsError> {
    for id in req.registry_ids.iter().flatten() {
        check_registry(ctx, &Some(id.clone()))?;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (password, expires_at) = ctx
        .app
        .tokens
        .issue(&ctx.scope.account, &ctx.scope.region, now);
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

async fn describe_images(
    ctx: &AwsContext,
    req: DescribeImagesRequest,
) -> Result<DescribeImagesResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let filter = tag_status(&req.filter)?;
    if let Some(ids) = &req.image_ids {
        if req.next_token.is_some() || req.max_results.is_some() {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter: nextToken and maxResults cannot be used with imageIds",
            ));
        }
        let image_details = ctx
            .app
            .registry
            .describe_images_by_id(&ctx.scope, &repo, ids)
            .map_err(ecr_error)?;
        return Ok(DescribeImagesResponse {
            image_details,
            next_token: None,
        });
    }
    let max = max_results(req.max_results, 1000, 100)?;
    let (image_details, next_token) = ctx
        .app
        .registry
        .describe_images(&ctx.scope, &repo, filter, req.next_token.as_deref(), max)
        .map_err(ecr_error)?;
    Ok(DescribeImagesResponse {
        image_details,
        next_token,
    })
}

async fn list_images(
    ctx: &AwsContext,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let filter = tag_status(&req.filter)?;
    let max = max_results(req.max_results, 1000, 100)?;
    let (image_ids, next_token) = ctx
        .app
        .registry
        .list_images(&ctx.scope, &repo, filter, req.next_token.as_deref(), max)
        .map_err(ecr_error)?;
    Ok(ListImagesResponse {
        image_ids,
        next_token,
    })
}

fn image_wire(
    ctx: &AwsContext,
    repo: &RepositoryName,
    id: ImageIdentifier,
    content: berth_registry::ManifestContent,
) -> ImageWire {
    ImageWire {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        image_id: id,
        image_manifest: String::from_utf8_lossy(&content.bytes).into_owned(),
        image_manifest_media_type: content.media_type,
    }
}

fn check_image_ids(ids: &[ImageIdentifier]) -> Result<(), AwsError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and 100'",
        ));
    }
    Ok(())
}

async fn batch_get_image(
    ctx: &AwsContext,
    req: BatchGetImageRequest,
) -> Result<BatchGetImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    check_image_ids(&req.image_ids)?;
    let repo = repository_name(&req.repository_name)?;
    let (found, mut failures) = ctx
        .app
        .registry
        .batch_get_image(&ctx.scope, &repo, &req.image_ids)
        .await
        .map_err(ecr_error)?;
    let mut images = Vec::new();
    for (id, content) in found {
        // ECR does not convert manifests: one outside the accepted types is a failure.
        if let Some(accepted) = &req.accepted_media_types
            && !accepted.iter().any(|a| a == &content.media_type)
        {
            failures.push(berth_registry::ImageFailure {
                image_id: id,
                failure_code: "UnsupportedImageType",
                failure_reason: format!(
                    "Image of media type '{}' is not among the accepted media types",
                    content.media_type
                ),
            });
            continue;
        }
        images.push(image_wire(ctx, &repo, id, content));
    }
    Ok(BatchGetImageResponse { images, failures })
}

async fn batch_delete_image(
    ctx: &AwsContext,
    req: BatchDeleteImageRequest,
) -> Result<BatchDeleteImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    check_image_ids(&req.image_ids)?;
    let repo = repository_name(&req.repository_name)?;
    let (image_ids, failures) = ctx
        .app
        .registry
        .batch_delete_image(&ctx.scope, &repo, &req.image_ids)
        .map_err(ecr_error)?;
    Ok(BatchDeleteImageResponse {
        image_ids,
        failures,
    })
}

async fn put_image(ctx: &AwsContext, req: PutImageRequest) -> Result<PutImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let tag: Option<Tag> = match &req.image_tag {
        Some(t) => Some(t.parse().map_err(|_| {
            AwsError::invalid_parameter(format!(
                "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must be a valid tag' (got '{t}')"
            ))
        })?),
        None => None,
    };
    let expected = match &req.image_digest {
        Some(d) => Some(parse_digest("imageDigest", d)?),
        None => None,
    };
    let registry = &ctx.app.registry;
    let outcome = registry
        .put_manifest(
            &ctx.scope,
            &repo,
            tag.as_ref(),
            expected.as_ref(),
            req.image_manifest_media_type.as_deref(),
            req.image_manifest.clone().into_bytes(),
        )
        .await
        .map_err(|e| match e {
            RegistryError::ManifestInvalid(m) => AwsError::invalid_parameter(format!(
                "Invalid parameter at 'imageManifest' failed to satisfy constraint: '{m}'"
            )),
            other => ecr_error(other),
        })?;
    // ECR refuses a PutImage that changes nothing (the same manifest, under the same tag
    // or untagged, is already there). Storing it again was harmless.
    if !outcome.changed {
        return Err(AwsError::client(
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{}' and tag '{}' already exists in the repository with name '{repo}' in registry with id '{}'",
                outcome.digest,
                req.image_tag.as_deref().unwrap_or(""),
                ctx.scope.account
            ),
        ));
    }
    Ok(PutImageResponse {
        image: ImageWire {
            registry_id: ctx.scope.account.to_string(),
            repository_name: repo.to_string(),
            image_id: ImageIdentifier {
                image_digest: Some(outcome.digest.to_string()),
                image_tag: req.image_tag,
            },
            image_manifest: req.image_manifest,
            image_manifest_media_type: outcome.media_type,
        },
    })
}

async fn batch_check_layer_availability(
    ctx: &AwsContext,
    req: BatchCheckLayerAvailabilityRequest,
) -> Result<BatchCheckLayerAvailabilityResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    ctx.app
        .registry
        .repository(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for raw in req.layer_digests {
        let Ok(digest) = raw.parse::<Digest>() else {
            failures.push(LayerFailure {
                layer_digest: raw,
                failure_code: "InvalidLayerDigest",
                failure_reason: "Invalid layer digest".into(),
            });
            continue;
        };
        match ctx
            .app
            .registry
            .layer_availability(&ctx.scope, &repo, &digest)
            .map_err(ecr_error)?
        {
            Some(size) => layers.push(Layer {
                layer_digest: raw,
                layer_availability: "AVAILABLE",
                layer_size: Some(size),
                media_type: None,
            }),
            None => failures.push(LayerFailure {
                layer_digest: raw,
                failure_code: "MissingLayerDigest",
                failure_reason: "Could not find layer".into(),
            }),
        }
    }
    Ok(BatchCheckLayerAvailabilityResponse { layers, failures })
}

/// The part size ECR advertises for layer uploads.
const LAYER_PART_SIZE: u64 = 10 << 20;

async fn initiate_layer_upload(
    ctx: &AwsContext,
    req: InitiateLayerUploadRequest,
) -> Result<InitiateLayerUploadResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let upload_id = ctx
        .app
        .registry
        .start_upload(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(InitiateLayerUploadResponse {
        upload_id,
        part_size: LAYER_PART_SIZE,
    })
}

async fn upload_layer_part(
    ctx: &AwsContext,
    req: UploadLayerPartRequest,
) -> Result<UploadLayerPartResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let blob = STANDARD
        .decode(req.layer_part_blob.as_bytes())
        .map_err(|_| {
            AwsError::invalid_parameter("Invalid parameter at 'layerPartBlob': not valid base64")
        })?;
    let declared = req
        .part_last_byte
        .checked_sub(req.part_first_byte)
        .and_then(|n| n.checked_add(1));
    if blob.is_empty() || declared != Some(blob.len() as u64) {
        return Err(AwsError::client(
            "InvalidLayerPartException",
            format!(
                "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload: part {}-{} carries {} bytes",
                req.part_first_byte,
                req.part_last_byte,
                blob.len()
            ),
        ));
    }
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(blob))]);
    let status = ctx
        .app
        .registry
        .append_upload(
            &ctx.scope,
            &repo,
            &req.upload_id,
            Some(req.part_first_byte),
            body,
        )
        .await
        .map_err(|e| match e {
            RegistryError::RangeInvalid { offset, size } => AwsError::client(
                "InvalidLayerPartException",
                format!(
                    "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload: first byte {offset}, expected {size}"
                ),
            ),
            other => ecr_error(other),
        })?;
    Ok(UploadLayerPartResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        upload_id: req.upload_id,
        last_byte_received: status.size.saturating_sub(1),
    })
}

async fn complete_layer_upload(
    ctx: &AwsContext,
    req: CompleteLayerUploadRequest,
) -> Result<CompleteLayerUploadResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let [digest] = req.layer_digests.as_slice() else {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'layerDigests': exactly one digest is supported",
        ));
    };
    let digest = parse_digest("layerDigests", digest)?;
    let registry = &ctx.app.registry;
    let status = registry
        .upload_status(&ctx.scope, &repo, &req.upload_id)
        .await
        .map_err(ecr_error)?;
    if status.size == 0 {
        return Err(AwsError::client(
            "EmptyUploadException",
            format!(
                "The upload with id '{}' contains no layer parts",
                req.upload_id
            ),
        ));
    }
    if registry
        .layer_availability(&ctx.scope, &repo, &digest)
        .map_err(ecr_error)?
        .is_some()
    {
        let _ = registry
            .cancel_upload(&ctx.scope, &repo, &req.upload_id)
            .await;
        return Err(AwsError::client(
            "LayerAlreadyExistsException",
            format!("The layer '{digest}' already exists in the repository '{repo}'"),
        ));
    }
    let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
    registry
        .complete_upload(&ctx.scope, &repo, &req.upload_id, &digest, None, empty)
        .await
        .map_err(|e| match e {
            RegistryError::DigestMismatch { expected, actual } => AwsError::client(
                "InvalidLayerException",
                format!("The layer digest calculation performed by Amazon ECR ({actual}) does not match the digest specified ({expected})"),
            ),
            other => ecr_error(other),
        })?;
    Ok(CompleteLayerUploadResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        upload_id: req.upload_id,
        layer_digest: digest.to_string(),
    })
}

async fn get_download_url_for_layer(
    ctx: &AwsContext,
    req: GetDownloadUrlForLayerRequest,
) -> Result<GetDownloadUrlForLayerResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let digest = parse_digest("layerDigest", &req.layer_digest)?;
    if ctx
        .app
        .registry
        .layer_availability(&ctx.scope, &repo, &digest)
        .map_err(ecr_error)?
        .is_none()
    {
        return Err(AwsError::client(
            "LayersNotFoundException",
            format!("The layer '{digest}' does not exist in the repository '{repo}'"),
        ));
    }
    // Like ECR's presigned S3 URL, the link carries its own short-lived credential, good
    // for this one layer only.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = ctx.app.tokens.issue_download(
        &ctx.scope.account,
        &ctx.scope.region,
        &format!("{repo}@{digest}"),
        now,
    );
    Ok(GetDownloadUrlForLayerResponse {
        download_url: format!(
            "{}/v2/{repo}/blobs/{digest}?{}={token}",
            ctx.endpoint,
            crate::oci::TOKEN_QUERY
        ),
        layer_digest: digest.to_string(),
    })
}

async fn put_image_tag_mutability(
    ctx: &AwsContext,
    req: PutImageTagMutabilityRequest,
) -> Result<PutImageTagMutabilityResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let mutability = TagMutability::parse(&req.image_tag_mutability).map_err(ecr_error)?;
    let r = ctx
        .app
        .registry
        .put_image_tag_mutability(&ctx.scope, &repo, mutability)
        .map_err(ecr_error)?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        image_tag_mutability: r.image_tag_mutability.as_str(),
    })
}

async fn put_image_scanning_configuration(
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
fn repository_from_arn(ctx: &AwsContext, arn: &str) -> Result<RepositoryName, AwsError> {
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

async fn tag_resource(
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

async fn untag_resource(
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

async fn list_tags_for_resource(
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

async fn set_repository_policy(
    ctx: &AwsContext,
    req: SetRepositoryPolicyRequest,
) -> Result<RepositoryPolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
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

async fn get_repository_policy(
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

async fn delete_repository_policy(
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

async fn describe_registry(
    ctx: &AwsContext,
    _req: DescribeRegistryRequest,
) -> Result<DescribeRegistryResponse, AwsError> {
    Ok(DescribeRegistryResponse {
        registry_id: ctx.scope.account.to_string(),
        replication_configuration: serde_json::json!({"rules": []}),
    })
}
