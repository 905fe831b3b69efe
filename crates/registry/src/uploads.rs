//! Blob uploads: monolithic or chunked, resumable after a dropped connection, verified
//! against the client's digest before the blob becomes visible.
//!
//! Bytes stream from the request body to a dedicated blocking writer that appends to the
//! upload file and hashes as it goes, so network, disk and hashing overlap and a 1 GiB layer
//! is never held in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_model::{Digest, DigestAlgorithm, Hasher, RepositoryName};
use berth_store::{Compare, Op};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::blob_deletions::BlobWrite;
use crate::blobs::{AppendWriter, BlobStream};
use crate::s3::S3BlobStore;
use crate::shared_session::SharedUpload;
use crate::{Registry, RegistryError, Result, Scope, decode, encode, keys, now_epoch};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadRecord {
    pub account: String,
    pub region: String,
    pub repository: RepositoryName,
    pub started_at: f64,
    /// The replica whose staging directory holds the bytes (absent in records written
    /// before replicas): another replica's garbage collection leaves the upload alone.
    #[serde(default)]
    pub replica: Option<String>,
    /// A session staged in the bucket, which any replica continues (S3 blobs on a shared
    /// store: `shared_uploads.rs`); None: a local staging file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedUpload>,
}

/// The bytes of a verified upload, to be stored under its digest.
pub(crate) enum Staged<'a> {
    /// A local staging file (fsynced).
    File(&'a std::path::Path),
    /// A completed staging object of the bucket, copied inside S3.
    Object { s3: &'a S3BlobStore, id: &'a str },
    /// A small upload held in memory.
    Bytes(Bytes),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlobRecord {
    pub size: u64,
    pub created_at: f64,
    /// Last time an upload, mount or manifest put used the blob; GC's grace period counts
    /// from here.
    #[serde(default)]
    pub used_at: Option<f64>,
}

impl BlobRecord {
    pub(crate) fn new(size: u64) -> BlobRecord {
        BlobRecord {
            size,
            created_at: now_epoch(),
            used_at: None,
        }
    }

    pub(crate) fn last_used(&self) -> f64 {
        self.used_at.unwrap_or(self.created_at).max(self.created_at)
    }
}

/// The operations that mark an existing blob as used now, fenced against garbage
/// collection: the rewrite moves the record's mod revision (which GC compares on), and the
/// compare on its create revision fails if GC deleted it meanwhile.
pub(crate) fn touch_blob(kv: &berth_store::KeyValue) -> Result<(Compare, Op)> {
    let mut record: BlobRecord = decode(kv)?;
    record.used_at = Some(now_epoch());
    Ok((
        Compare::CreateRevision(kv.key.clone(), kv.create_revision),
        Op::put(kv.key.clone(), encode(&record)),
    ))
}

/// In-memory state of an upload in progress. The sha256 state is kept while the file has
/// been written contiguously by this process; after a restart it is recomputed from the file.
pub(crate) struct UploadState {
    size: u64,
    sha256: Option<Hasher>,
}

/// A std Mutex guards the table (never held across `.await`); each upload has its own
/// async mutex so concurrent PATCHes to one upload are serialised.
#[derive(Default)]
pub(crate) struct UploadTable {
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<UploadState>>>>>,
}

impl UploadTable {
    fn entry(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<UploadState>>> {
        self.uploads
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// The upload's lock if no request holds it now.
    pub(crate) fn try_lock(
        &self,
        id: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<Option<UploadState>>> {
        self.entry(id).try_lock_owned().ok()
    }

    pub(crate) fn forget(&self, id: &str) {
        self.uploads.lock().unwrap().remove(id);
    }
}

/// A blob being read: its whole size, the inclusive byte range being sent (None: all of
/// it), and the bytes.
pub struct BlobRead {
    pub size: u64,
    pub range: Option<(u64, u64)>,
    pub stream: BlobStream,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub size: u64,
}

const WRITE_BUFFER: usize = 1 << 20;
/// Commits of a blob lost to garbage collection or concurrent pushes before giving up.
const MAX_COMMIT_ATTEMPTS: usize = 8;

impl Registry {
    /// Start an upload session in a repository; returns its id.
    pub fn start_upload(&self, scope: &Scope, repo: &RepositoryName) -> Result<String> {
        self.repository(scope, repo)?;
        let id = uuid::Uuid::new_v4().to_string();
        let shared = self.shared_staging.is_some();
        if !shared {
            std::fs::File::create(self.staging.path(&id))?;
        }
        let record = UploadRecord {
            account: scope.account.to_string(),
            region: scope.region.to_string(),
            repository: repo.clone(),
            started_at: now_epoch(),
            replica: (!shared).then(|| self.replica.to_string()),
            shared: shared.then(SharedUpload::new),
        };
        self.store.put(&keys::upload(&id), &encode(&record))?;
        Ok(id)
    }

    fn upload_record(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<(berth_store::KeyValue, UploadRecord)> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(RegistryError::UploadUnknown);
        }
        let kv = self
            .store
            .get(&keys::upload(id))?
            .ok_or(RegistryError::UploadUnknown)?;
        let record: UploadRecord = decode(&kv)?;
        if record.account != scope.account.as_str()
            || record.region != scope.region.as_str()
            || &record.repository != repo
        {
            return Err(RegistryError::UploadUnknown);
        }
        Ok((kv, record))
    }

    pub async fn upload_status(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<UploadStatus> {
        let (_, record) = self.upload_record(scope, repo, id)?;
        if let Some(state) = &record.shared {
            return self.shared_status(id, state);
        }
        let entry = self.uploads.entry(id);
        let mut state = entry.lock().await;
        let size = self.load_state(id, &mut state).await?.size;
        Ok(UploadStatus {
            id: id.to_string(),
            size,
        })
    }

    async fn load_state<'a>(
        &self,
        id: &str,
        state: &'a mut Option<UploadState>,
    ) -> Result<&'a mut UploadState> {
        if state.is_none() {
            let size = match tokio::fs::metadata(self.staging.path(id)).await {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RegistryError::UploadUnknown);
                }
                Err(e) => return Err(e.into()),
            };
            *state = Some(UploadState {
                size,
                sha256: (size == 0).then(|| Hasher::new(DigestAlgorithm::Sha256)),
            });
        }
        Ok(state.as_mut().expect("just filled"))
    }

    /// Lock an upload of `repo` for writing, with its state loaded, checking that a
    /// client-given `offset` is where the upload stands.
    async fn lock_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        offset: Option<u64>,
    ) -> Result<tokio::sync::OwnedMutexGuard<Option<UploadState>>> {
        self.upload_record(scope, repo, id)?;
        let mut guard = self.uploads.entry(id).lock_owned().await;
        let state = self.load_state(id, &mut guard).await?;
        if let Some(offset) = offset
            && offset != state.size
        {
            return Err(RegistryError::RangeInvalid {
                offset,
                size: state.size,
            });
        }
        Ok(guard)
    }

    /// Append a chunk. `offset`, when the client sent a Content-Range, must equal the bytes
    /// received so far. Returns the new size. If the body breaks off, what was received is
    /// kept and the client may resume from the size reported by the status call.
    pub async fn append_upload<S, E>(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        offset: Option<u64>,
        body: S,
    ) -> Result<UploadStatus>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        // Only a registry staging in the bucket reads the record first (the local path
        // reads it under the upload's lock, below).
        if self.shared_staging.is_some() {
            let (kv, record) = self.upload_record(scope, repo, id)?;
            if record.shared.is_some() {
                return self.append_shared(id, kv, record, offset, body).await;
            }
        }
        let mut guard = self.lock_upload(scope, repo, id, offset).await?;
        let state = guard.as_mut().expect("lock_upload loads the state");
        let result = self.write_stream(id, state, body).await;
        let size = state.size;
        result.map(|()| UploadStatus {
            id: id.to_string(),
            size,
        })
    }

    /// Stream `body` onto the end of the upload file through a blocking writer thread.
    async fn write_stream<S, E>(&self, id: &str, state: &mut UploadState, mut body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let path = self.staging.path(id);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let hasher = state.sha256.take();
        let start = state.size;
        let writer = tokio::task::spawn_blocking(move || {
            let mut hasher = hasher;
            let mut out = AppendWriter::open(&path, start)?;
            let mut written = 0u64;
            let mut result: std::io::Result<()> = Ok(());
            while let Some(chunk) = rx.blocking_recv() {
                if let Err(e) = out.write(&chunk) {
                    result = Err(e);
                    break;
                }
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk);
                }
                written += chunk.len() as u64;
            }
            match result.and_then(|()| out.finish()) {
                Ok(()) => Ok((written, hasher)),
                Err(e) => {
                    // Keep the file consistent with what was counted: cut a torn tail.
                    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
                    f.set_len(start)?;
                    Err(e)
                }
            }
        });
        let mut body_error = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Err(e) => {
                    body_error = Some(e.to_string());
                    break;
                }
            }
        }
        drop(tx);
        let (written, hasher) = writer
            .await
            .map_err(|e| RegistryError::Io(std::io::Error::other(e)))??;
        state.size = start + written;
        state.sha256 = hasher;
        match body_error {
            Some(e) => Err(RegistryError::Body(e)),
            None => Ok(()),
        }
    }

    /// Finish an upload: append the final chunk, verify the digest, make the blob visible in
    /// the repository. The upload is gone afterwards.
    pub async fn complete_upload<S, E>(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        digest: &Digest,
        offset: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if self.shared_staging.is_some() {
            let (kv, record) = self.upload_record(scope, repo, id)?;
            if record.shared.is_some() {
                return self
                    .complete_shared(scope, repo, id, kv, record, digest, offset, body)
                    .await;
            }
        }
        let mut guard = self.lock_upload(scope, repo, id, offset).await?;
        let state = guard.as_mut().expect("lock_upload loads the state");
        self.write_stream(id, state, body).await?;
        let size = state.size;
        let path = self.staging.path(id);
        let hasher = state.sha256.clone();
        let algorithm = digest.algorithm();
        let p = path.clone();
        let actual = tokio::task::spawn_blocking(move || -> std::io::Result<Digest> {
            let file = std::fs::File::open(&p)?;
            file.sync_all()?;
            match hasher {
                Some(h) if algorithm == DigestAlgorithm::Sha256 => Ok(h.finish()),
                _ => hash_file(file, algorithm),
            }
        })
        .await
        .map_err(|e| RegistryError::Io(std::io::Error::other(e)))??;
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        self.commit_blob(scope, repo, digest, size, &Staged::File(&path))
            .await?;
        let _ = tokio::fs::remove_file(&path).await;
        self.store.delete(&keys::upload(id))?;
        *guard = None;
        drop(guard);
        self.uploads.forget(id);
        Ok(size)
    }

    /// The repository's record key and create revision, for compares that must fail if
    /// the repository is deleted (or deleted and re-created) before a commit.
    fn repository_incarnation(&self, scope: &Scope, repo: &RepositoryName) -> Result<Compare> {
        let key = keys::repo(scope, repo);
        match self.store.get(&key)? {
            Some(kv) => Ok(Compare::CreateRevision(key, kv.create_revision)),
            None => Err(RegistryError::RepositoryNotFound {
                name: repo.clone(),
                registry: scope.account.to_string(),
            }),
        }
    }

    /// Put verified bytes (an fsynced file, a completed staging object) into the blob
    /// store and link them to the repository. Bytes already stored are reused; new bytes
    /// are written, then their record is committed under a fence against garbage
    /// collection's deletions of the digest (`blob_deletions.rs`): a deletion that began
    /// meanwhile fails the commit and the bytes are written again. The caller removes
    /// what was staged.
    pub(crate) async fn commit_blob(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        staged: &Staged<'_>,
    ) -> Result<()> {
        let blob_key = keys::blob(digest);
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let repository = self.repository_incarnation(scope, repo)?;
            let link = Op::put(keys::link(scope, repo, digest), b"{}".to_vec());
            let (compares, ops) = match self.prepare_blob_write(digest).await? {
                // Deduplicated: the same bytes are already stored; mark them used.
                BlobWrite::Exists(kv) => {
                    let (compare, op) = touch_blob(&kv)?;
                    (vec![repository, compare], vec![link, op])
                }
                BlobWrite::New(fence) => {
                    match staged {
                        Staged::File(file) => self.blobs.commit_file(file, digest).await?,
                        Staged::Object { s3, id } => {
                            s3.copy_staging_to_blob(id, digest, size).await?
                        }
                        Staged::Bytes(bytes) => {
                            self.blobs.write_whole(digest, bytes.to_vec()).await?
                        }
                    }
                    (
                        vec![
                            repository,
                            fence.compare(),
                            Compare::CreateRevision(blob_key.clone(), 0),
                        ],
                        vec![
                            link,
                            Op::put(blob_key.clone(), encode(&BlobRecord::new(size))),
                        ],
                    )
                }
            };
            // A conflict: the repository went (the next round says so), garbage
            // collection took the blob or began deleting its bytes, or another push
            // committed the same blob first: look again.
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(());
            }
        }
        self.repository_incarnation(scope, repo)?;
        Err(RegistryError::Store(berth_store::StoreError::Io(
            "too much contention on the blob; retry".into(),
        )))
    }

    /// Cancel an upload. Waits for a PATCH in progress on it to finish first.
    pub async fn cancel_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<()> {
        let (kv, record) = self.upload_record(scope, repo, id)?;
        if record.shared.is_some() {
            return self.cancel_shared(id, kv, record).await;
        }
        let mut guard = self.uploads.entry(id).lock_owned().await;
        self.upload_record(scope, repo, id)?; // it may have completed while we waited
        self.store.delete(&keys::upload(id))?;
        let _ = std::fs::remove_file(self.staging.path(id));
        *guard = None;
        drop(guard);
        self.uploads.forget(id);
        Ok(())
    }

    /// Size of a blob that is usable from `repo`, or `BlobUnknown`.
    pub fn blob_size(&self, scope: &Scope, repo: &RepositoryName, digest: &Digest) -> Result<u64> {
        self.repository(scope, repo)?;
        if self.store.get(&keys::link(scope, repo, digest))?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        let kv = self
            .store
            .get(&keys::blob(digest))?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        Ok(decode::<BlobRecord>(&kv)?.size)
    }

    /// Read a blob usable from `repo`: its size, and a stream of the bytes in `range`
    /// (inclusive byte positions, already checked against the size by the caller), or of
    /// the whole blob.
    pub fn read_blob(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        range: impl FnOnce(u64) -> Option<(u64, u64)>,
    ) -> Result<BlobRead> {
        let size = self.blob_size(scope, repo, digest)?;
        let range = range(size);
        let (start, len) = match range {
            Some((a, b)) => (a, b - a + 1),
            None => (0, size),
        };
        let stream = self.blobs.stream(digest, start, len).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                RegistryError::BlobUnknown(digest.clone())
            } else {
                e.into()
            }
        })?;
        Ok(BlobRead {
            size,
            range,
            stream,
        })
    }

    /// Cross-repository mount: make a blob of `from` usable from `to` without copying.
    /// Returns false when the source does not have it (the client then uploads).
    pub fn mount_blob(
        &self,
        scope: &Scope,
        to: &RepositoryName,
        from: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        let repository = self.repository_incarnation(scope, to)?;
        match self.blob_size(scope, from, digest) {
            Ok(size) => {
                let Some(kv) = self.store.get(&keys::blob(digest))? else {
                    return Ok(None);
                };
                let (touched, op) = touch_blob(&kv)?;
                let ok = self.store.txn(
                    &[repository, touched],
                    &[Op::put(keys::link(scope, to, digest), b"{}".to_vec()), op],
                )?;
                Ok(ok.is_committed().then_some(size))
            }
            Err(RegistryError::BlobUnknown(_) | RegistryError::RepositoryNotFound { .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Registry {
    /// OCI 1.1's mount without `from`: make a blob that some repository of this account
    /// and region already has usable from `to` (never a blob only another account has:
    /// blobs are deduplicated across accounts, their use is not). None when none has it.
    pub fn mount_blob_from_scope(
        &self,
        scope: &Scope,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        if self.store.get(&keys::blob(digest))?.is_none() {
            return Ok(None);
        }
        let prefix = keys::all_links(scope);
        let suffix = format!("@{digest}");
        for kv in self.store.range(&prefix, None, 0)? {
            // link/{repo}@{digest}: repository names never hold '@'.
            let Some(name) = kv.key[prefix.len()..].strip_suffix(&suffix) else {
                continue;
            };
            let Ok(from) = name.parse::<RepositoryName>() else {
                continue;
            };
            if let Some(size) = self.mount_blob(scope, to, &from, digest)? {
                return Ok(Some(size));
            }
        }
        Ok(None)
    }
}

fn hash_file(file: std::fs::File, algorithm: DigestAlgorithm) -> std::io::Result<Digest> {
    use std::io::Read;
    let mut reader = std::io::BufReader::with_capacity(WRITE_BUFFER, file);
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; WRITE_BUFFER];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}
