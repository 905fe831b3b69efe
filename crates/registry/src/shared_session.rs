//! The state of an upload session staged in the bucket, as its `upload/{id}` record keeps
//! it (apart from `shared_uploads.rs`, which acts on it, so that the record's types do not
//! depend on the code that streams the bytes).

use berth_model::{Digest, DigestAlgorithm, Hasher};
use serde::{Deserialize, Serialize};

use crate::now_epoch;
use crate::s3::StagedPart;

/// The state of a session staged in the bucket (in its `upload/{id}` record).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SharedUpload {
    /// S3's id of the multipart upload on the staging key; None until the first part.
    #[serde(default)]
    pub multipart_id: Option<String>,
    /// The committed parts, in ascending numbers (with gaps where a request reserved
    /// numbers and never committed).
    #[serde(default)]
    pub parts: Vec<StagedPart>,
    /// The next part number to reserve (0: after the last part).
    #[serde(default)]
    pub next_part: u64,
    /// Bytes received: the parts' and the tail's.
    pub size: u64,
    /// The bytes after the last part, waiting for the next chunk.
    #[serde(default)]
    pub tail: Option<Tail>,
    /// The running sha256 of the `size` bytes (`Hasher::state_hex`).
    pub sha256: String,
    pub updated_at: f64,
    /// Set when a PUT verified the digest and began completing: no chunk is taken any more.
    #[serde(default)]
    pub completing: Option<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tail {
    /// The tail object's name: unique per write, so that racing replicas never overwrite
    /// each other's.
    pub name: String,
    pub size: u64,
}

impl SharedUpload {
    pub(crate) fn new() -> SharedUpload {
        SharedUpload {
            multipart_id: None,
            parts: Vec::new(),
            next_part: 0,
            size: 0,
            tail: None,
            sha256: Hasher::new(DigestAlgorithm::Sha256).state_hex(),
            updated_at: now_epoch(),
            completing: None,
        }
    }

    pub(crate) fn next_number(&self) -> u64 {
        let after_parts = self.parts.last().map_or(1, |p| u64::from(p.number) + 1);
        self.next_part.max(after_parts)
    }
}
