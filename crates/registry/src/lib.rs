//! ECR's domain: repositories, images (manifests and tags), blobs, uploads, referrers and
//! garbage collection. Metadata lives in the versioned `Store`; blob bytes live in a
//! content-addressed `BlobStore` (the filesystem's `FsBlobStore`, or an S3-compatible
//! bucket's `S3BlobStore`). Both the ECR JSON API and the OCI `/v2/` routes are thin
//! adapters over the `Registry` defined here.

mod blob_deletions;
mod blobs;
mod error;
mod gc;
mod images;
mod keys;
pub mod lifecycle;
mod lifecycle_run;
mod manifest;
mod repository;
mod s3;
#[cfg(feature = "testing")]
pub mod s3_testing;
mod settings;
mod shared_session;
mod shared_uploads;
mod uploads;

use std::path::Path;
use std::sync::Arc;

pub use berth_model::Scope;
use berth_store::{KeyValue, Store};
pub(crate) use berth_store::{encode, now_epoch};

pub use blobs::{BlobFuture, BlobStore, BlobStream, FsBlobStore};
pub use error::{RegistryError, Result};
pub use gc::GcReport;
pub use images::{
    ImageDetail, ImageFailure, ImageIdentifier, ImageRecord, ListImagesFilter, ManifestContent,
    PutManifestOutcome, Referrer,
};
pub use lifecycle_run::{LifecyclePolicyState, LifecyclePreview, PreviewResult, PreviewStatus};
pub use manifest::{MAX_MANIFEST_SIZE, media_types};
pub use repository::{
    CreateRepository, EcrTag, EncryptionConfiguration, Repository, TagMutability,
    TagMutabilityExclusionFilter, check_tag_mutability,
};
pub use s3::{DEFAULT_PART_SIZE, S3BlobStore, S3Config, parse_s3_location};
pub use settings::{
    RegistryScanningConfiguration, RegistryScanningRule, RepositoryScanning,
    ScanningRepositoryFilter,
};
pub use uploads::{BlobRead, UploadStatus};

/// The registry: ECR semantics over a store and a blob store.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    staging: Arc<blobs::Staging>,
    uploads: Arc<uploads::UploadTable>,
    /// This process among the replicas sharing the store: uploads it stages carry it.
    replica: Arc<str>,
    /// The bucket that stages uploads when the blobs are in S3 and the store is shared
    /// by replicas: then any replica continues any upload (`shared_uploads.rs`).
    shared_staging: Option<S3BlobStore>,
}

impl Registry {
    /// The same registry writing through `store` (a leader's fenced store, for garbage
    /// collection and lifecycle policies).
    pub fn with_store(&self, store: Arc<dyn Store>) -> Registry {
        Registry {
            store,
            ..self.clone()
        }
    }

    /// A registry whose blobs live under `data_dir/blobs` and uploads under `data_dir/uploads`.
    pub fn open(store: Arc<dyn Store>, data_dir: &Path) -> Result<Registry> {
        let blobs = Arc::new(FsBlobStore::open(data_dir)?);
        Registry::with_blobs(store, data_dir, blobs)
    }

    /// A registry whose blobs live in `blobs`, staging uploads under `data_dir/uploads`.
    pub fn with_blobs(
        store: Arc<dyn Store>,
        data_dir: &Path,
        blobs: Arc<dyn BlobStore>,
    ) -> Result<Registry> {
        Ok(Registry {
            store,
            blobs,
            staging: Arc::new(blobs::Staging::open(data_dir)?),
            uploads: Arc::new(uploads::UploadTable::default()),
            replica: uuid::Uuid::new_v4().to_string().into(),
            shared_staging: None,
        })
    }

    /// A registry whose blobs live in the bucket `s3`. With `shared_store` (a store that
    /// several replicas share: etcd), uploads are staged in the bucket too, so that any
    /// replica continues any upload; otherwise they are staged under `data_dir/uploads`
    /// (fewer S3 requests, and no server-side copy).
    pub fn with_s3_blobs(
        store: Arc<dyn Store>,
        data_dir: &Path,
        s3: S3BlobStore,
        shared_store: bool,
    ) -> Result<Registry> {
        let mut registry = Registry::with_blobs(store, data_dir, Arc::new(s3.clone()))?;
        registry.shared_staging = shared_store.then_some(s3);
        Ok(registry)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Pagination over a key prefix with an opaque `nextToken` (the hex of the last key
/// returned), as every ECR List/Describe operation pages.
pub(crate) fn page(
    store: &dyn Store,
    prefix: &str,
    next_token: Option<&str>,
    max_results: usize,
) -> Result<(Vec<KeyValue>, Option<String>)> {
    let after = match next_token {
        None => None,
        Some(token) => {
            let key = berth_store::page_token::decode(token)
                .filter(|k| k.starts_with(prefix))
                .ok_or_else(|| {
                    RegistryError::InvalidParameter("Invalid parameter at 'nextToken'".into())
                })?;
            Some(key)
        }
    };
    let mut items = store.range(prefix, after.as_deref(), max_results + 1)?;
    let next = if items.len() > max_results {
        items.truncate(max_results);
        items
            .last()
            .map(|kv| berth_store::page_token::encode(&kv.key))
    } else {
        None
    };
    Ok((items, next))
}

/// `berth_store::decode` with this crate's error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    Ok(berth_store::decode(kv)?)
}
