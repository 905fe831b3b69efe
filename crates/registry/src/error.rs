//! The registry's errors, in domain terms. The HTTP edge maps each to ECR's JSON error
//! (`__type`) and to the OCI distribution error code; neither protocol leaks in here.

use berth_model::{Digest, RepositoryName};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "The repository with name '{name}' does not exist in the registry with id '{registry}'"
    )]
    RepositoryNotFound {
        name: RepositoryName,
        registry: String,
    },
    #[error(
        "The repository with name '{name}' already exists in the registry with id '{registry}'"
    )]
    RepositoryAlreadyExists {
        name: RepositoryName,
        registry: String,
    },
    #[error(
        "The repository with name '{name}' in registry with id '{registry}' cannot be deleted because it still contains images"
    )]
    RepositoryNotEmpty {
        name: RepositoryName,
        registry: String,
    },
    #[error(
        "Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry}'"
    )]
    RepositoryPolicyNotFound {
        name: RepositoryName,
        registry: String,
    },
    #[error(
        "Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry}'"
    )]
    LifecyclePolicyNotFound {
        name: RepositoryName,
        registry: String,
    },
    // No published AWS text found; worded as ECR's other "does not exist" messages.
    #[error(
        "Lifecycle policy preview does not exist for the repository with name '{name}' in the registry with id '{registry}'"
    )]
    LifecyclePolicyPreviewNotFound {
        name: RepositoryName,
        registry: String,
    },
    #[error("Registry policy does not exist in the registry with id '{registry}'")]
    RegistryPolicyNotFound { registry: String },
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error(
        "The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the tag is immutable."
    )]
    ImageTagAlreadyExists {
        tag: String,
        repository: RepositoryName,
    },
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(Digest),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("Range {offset} is out of order; the upload is at {size}")]
    RangeInvalid { offset: u64, size: u64 },
    #[error("provided digest did not match uploaded content: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references a blob that is not in the repository: {0}")]
    ManifestBlobUnknown(Digest),
    #[error("the index references a manifest that is not in the repository: {0}")]
    ManifestChildUnknown(Digest),
    #[error("Requested image referenced by manifest list: {0:?}")]
    ImageReferencedByManifestList(Vec<Digest>),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("manifest is larger than the {limit} byte limit")]
    ManifestTooLarge { limit: usize },
    #[error(
        "Invalid parameter at 'policyText' failed to satisfy constraint: 'Invalid repository policy provided': {0}"
    )]
    InvalidPolicy(String),
    #[error("{0}")]
    InvalidTagParameter(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("storage: {0}")]
    Store(#[from] berth_store::StoreError),
    #[error("blob storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upload body could not be read: {0}")]
    Body(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
