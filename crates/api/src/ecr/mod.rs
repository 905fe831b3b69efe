//! ECR's JSON API (`AmazonEC2ContainerRegistry_V20150921.*`): one typed request and
//! response per operation, AWS field names, and the mapping of registry errors to ECR's
//! exceptions.
//! One module per resource (repositories, images, layers); this one holds the action table,
//! the error mapping and what they share.

mod images;
mod layers;
mod lifecycle;
mod referrers;
mod registry;
mod repositories;

use berth_model::{Digest, RepositoryName};
use berth_registry::{
    EncryptionConfiguration, RegistryError, Repository, TagMutabilityExclusionFilter,
};
use serde::{Deserialize, Serialize};

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
        E::LifecyclePolicyNotFound { .. } => "LifecyclePolicyNotFoundException",
        E::LifecyclePolicyPreviewNotFound { .. } => "LifecyclePolicyPreviewNotFoundException",
        E::RegistryPolicyNotFound { .. } => "RegistryPolicyNotFoundException",
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

/// AWS's text for a name that fails the pattern, as captured from CreateRepository by other
/// emulators' tests ("Invalid parameter at 'repositoryName' failed to satisfy constraint:
/// 'must satisfy regular expression '...''", the current API reference's pattern, no value
/// echoed); AWS's text for a name outside 2..=256 characters was not found, so the same
/// message answers it.
fn repository_name(name: &str) -> Result<RepositoryName, AwsError> {
    name.parse().map_err(|_| {
        AwsError::invalid_parameter(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*''",
        )
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
    pub image_scanning_configuration: ImageScanningConfiguration,
    pub encryption_configuration: EncryptionConfiguration,
}

fn repository_wire(ctx: &AwsContext, r: &Repository) -> RepositoryWire {
    RepositoryWire {
        repository_arn: r.arn(&ctx.scope),
        registry_id: ctx.scope.account.to_string(),
        repository_name: r.name.to_string(),
        repository_uri: ctx.app.repository_uri(&ctx.scope.account, r.name.as_str()),
        created_at: r.created_at,
        image_tag_mutability: r.image_tag_mutability.as_str(),
        image_tag_mutability_exclusion_filters: r.image_tag_mutability_exclusion_filters.clone(),
        image_scanning_configuration: ImageScanningConfiguration {
            scan_on_push: r.scan_on_push,
        },
        encryption_configuration: r.encryption.clone(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryResponse {
    pub repository: RepositoryWire,
}

#[derive(Debug, Serialize)]
pub struct EmptyResponse {}

crate::aws_actions! {
    EcrAction, "ECR";
    CreateRepository(repositories::CreateRepositoryRequest) => blocking repositories::create_repository,
    DescribeRepositories(repositories::DescribeRepositoriesRequest) => blocking repositories::describe_repositories,
    DeleteRepository(repositories::DeleteRepositoryRequest) => blocking repositories::delete_repository,
    GetAuthorizationToken(repositories::GetAuthorizationTokenRequest) => inline repositories::get_authorization_token,
    DescribeImages(images::DescribeImagesRequest) => blocking images::describe_images,
    ListImages(images::ListImagesRequest) => blocking images::list_images,
    BatchGetImage(images::BatchGetImageRequest) => blocking images::batch_get_image,
    BatchDeleteImage(images::BatchDeleteImageRequest) => blocking images::batch_delete_image,
    PutImage(images::PutImageRequest) => blocking images::put_image,
    BatchCheckLayerAvailability(layers::BatchCheckLayerAvailabilityRequest) => blocking layers::batch_check_layer_availability,
    InitiateLayerUpload(layers::InitiateLayerUploadRequest) => blocking layers::initiate_layer_upload,
    UploadLayerPart(layers::UploadLayerPartRequest) => blocking layers::upload_layer_part,
    CompleteLayerUpload(layers::CompleteLayerUploadRequest) => blocking layers::complete_layer_upload,
    GetDownloadUrlForLayer(layers::GetDownloadUrlForLayerRequest) => blocking layers::get_download_url_for_layer,
    PutImageTagMutability(repositories::PutImageTagMutabilityRequest) => blocking repositories::put_image_tag_mutability,
    PutImageScanningConfiguration(repositories::PutImageScanningConfigurationRequest) => blocking repositories::put_image_scanning_configuration,
    TagResource(repositories::TagResourceRequest) => blocking repositories::tag_resource,
    UntagResource(repositories::UntagResourceRequest) => blocking repositories::untag_resource,
    ListTagsForResource(repositories::ListTagsForResourceRequest) => blocking repositories::list_tags_for_resource,
    SetRepositoryPolicy(repositories::SetRepositoryPolicyRequest) => blocking repositories::set_repository_policy,
    GetRepositoryPolicy(repositories::RepositoryPolicyRequest) => blocking repositories::get_repository_policy,
    DeleteRepositoryPolicy(repositories::RepositoryPolicyRequest) => blocking repositories::delete_repository_policy,
    DescribeRegistry(repositories::DescribeRegistryRequest) => blocking repositories::describe_registry,
    PutLifecyclePolicy(lifecycle::PutLifecyclePolicyRequest) => blocking lifecycle::put_lifecycle_policy,
    GetLifecyclePolicy(lifecycle::LifecyclePolicyRequest) => blocking lifecycle::get_lifecycle_policy,
    DeleteLifecyclePolicy(lifecycle::LifecyclePolicyRequest) => blocking lifecycle::delete_lifecycle_policy,
    StartLifecyclePolicyPreview(lifecycle::StartLifecyclePolicyPreviewRequest) => blocking lifecycle::start_lifecycle_policy_preview,
    GetLifecyclePolicyPreview(lifecycle::GetLifecyclePolicyPreviewRequest) => blocking lifecycle::get_lifecycle_policy_preview,
    ListImageReferrers(referrers::ListImageReferrersRequest) => blocking referrers::list_image_referrers,
    PutRegistryPolicy(registry::PutRegistryPolicyRequest) => blocking registry::put_registry_policy,
    GetRegistryPolicy(registry::RegistryRequest) => blocking registry::get_registry_policy,
    DeleteRegistryPolicy(registry::RegistryRequest) => blocking registry::delete_registry_policy,
    PutRegistryScanningConfiguration(registry::PutRegistryScanningConfigurationRequest) => blocking registry::put_registry_scanning_configuration,
    GetRegistryScanningConfiguration(registry::RegistryRequest) => blocking registry::get_registry_scanning_configuration,
    BatchGetRepositoryScanningConfiguration(registry::BatchGetRepositoryScanningConfigurationRequest) => blocking registry::batch_get_repository_scanning_configuration,
}
