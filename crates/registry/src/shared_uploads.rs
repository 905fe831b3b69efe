//! Upload sessions that any replica can continue: S3 blobs on a store the replicas share.
//! The session's bytes are a multipart upload on a staging key of the bucket (parts sent
//! as the chunks stream in, a tail shorter than S3's 5 MiB minimum kept as a small object
//! until the next chunk); its state — S3's upload id, the parts' ETags, the size, the tail
//! and the running sha256 serialised — is the `upload/{id}` record. Each PATCH commits by
//! one compare-and-swap on that record's mod revision, so of two replicas appending to one
//! session only one commits; the other answers 416 with the session's real size (OCI's
//! resume). Part numbers are reserved the same way before a part is sent, so two requests
//! never write one part number: a loser's parts are never the winner's. A verified upload is completed, copied inside S3 to the blob's key under the
//! same deletion fence as a local upload (`commit_blob`), and its staging objects deleted.
//! Nothing of a session is held by a process: no lock, no file, no in-memory hasher.

use berth_model::{Digest, DigestAlgorithm, Hasher, RepositoryName};
use berth_store::{Compare, KeyValue, Op, Revision, TxnOutcome};
use bytes::{Bytes, BytesMut};
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};

use crate::s3::{S3BlobStore, StagedPart};
use crate::shared_session::{SharedUpload, Tail};
use crate::uploads::{Staged, UploadRecord, UploadStatus};
use crate::{Registry, RegistryError, Result, Scope, encode, now_epoch};

/// Parts of one chunk in flight to S3 at once (each holds a part's bytes in memory).
const PART_CONCURRENCY: usize = 4;

/// A session as one request holds it: its record's key, the revision of the last write
/// it saw or made (its part reservations move it), the record as written then, and the
/// size the session had when the request began.
struct Session {
    key: String,
    revision: Revision,
    record: UploadRecord,
    started_at: u64,
}

impl Session {
    fn new(kv: &KeyValue, record: UploadRecord) -> Session {
        let started_at = record.shared.as_ref().map_or(0, |s| s.size);
        Session {
            key: kv.key.clone(),
            revision: kv.mod_revision,
            record,
            started_at,
        }
    }

    fn state(&self) -> &SharedUpload {
        self.record.shared.as_ref().expect("a staged session")
    }
}

/// What a request streamed: the session's new state (not yet committed; its tail, if
/// any, is the one this request wrote), the bytes past the last part (a PUT's small
/// blob; a PATCH stores them as its tail), and the hasher.
struct Streamed {
    state: SharedUpload,
    rest: Bytes,
    hasher: Hasher,
}

impl Registry {
    /// The bucket that stages this session's bytes.
    fn staging_bucket(&self) -> Result<&S3BlobStore> {
        // A session started while the blobs were in S3 on a shared store, seen by a
        // registry configured otherwise, cannot be continued.
        self.shared_staging
            .as_ref()
            .ok_or(RegistryError::UploadUnknown)
    }

    /// The status of a staged session.
    pub(crate) fn shared_status(&self, id: &str, state: &SharedUpload) -> Result<UploadStatus> {
        if state.completing.is_some() {
            return Err(RegistryError::UploadUnknown);
        }
        Ok(UploadStatus {
            id: id.to_string(),
            size: state.size,
        })
    }

    fn check_shared_offset(state: &SharedUpload, offset: Option<u64>) -> Result<()> {
        if state.completing.is_some() {
            return Err(RegistryError::UploadUnknown);
        }
        match offset {
            Some(offset) if offset != state.size => Err(RegistryError::RangeInvalid {
                offset,
                size: state.size,
            }),
            _ => Ok(()),
        }
    }

    /// The answer of a request that lost its session to another: 416 with where the
    /// session stands now, or unknown if it is gone or being completed.
    fn lost_race(&self, session: &Session) -> RegistryError {
        let size = self
            .store
            .get(&session.key)
            .ok()
            .flatten()
            .and_then(|kv| crate::decode::<UploadRecord>(&kv).ok())
            .and_then(|r| r.shared)
            .filter(|s| s.completing.is_none())
            .map(|s| s.size);
        match size {
            Some(size) => RegistryError::RangeInvalid {
                offset: session.started_at,
                size,
            },
            None => RegistryError::UploadUnknown,
        }
    }

    /// Writes the session's record under a compare on the revision the request last
    /// saw; the new revision, or the request lost the session.
    fn write_session(&self, session: &mut Session) -> Result<()> {
        let outcome = self.store.txn(
            &[Compare::ModRevision(session.key.clone(), session.revision)],
            &[Op::put(session.key.clone(), encode(&session.record))],
        )?;
        match outcome {
            TxnOutcome::Committed(revision) => {
                session.revision = revision;
                Ok(())
            }
            TxnOutcome::Conflict => Err(self.lost_race(session)),
        }
    }

    /// PATCH: stream a chunk into parts, keep its short tail, commit the new state.
    pub(crate) async fn append_shared<S, E>(
        &self,
        id: &str,
        kv: KeyValue,
        record: UploadRecord,
        offset: Option<u64>,
        body: S,
    ) -> Result<UploadStatus>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let s3 = self.staging_bucket()?;
        let mut session = Session::new(&kv, record);
        let old_tail = session.state().tail.clone();
        Self::check_shared_offset(session.state(), offset)?;
        let mut streamed = self.stream_parts(s3, id, &mut session, body, false).await?;
        // The tail goes up under a fresh name; the old one is dropped once the new state
        // is committed.
        if !streamed.rest.is_empty() {
            let name = uuid::Uuid::new_v4().simple().to_string();
            let size = streamed.rest.len() as u64;
            s3.put_tail(id, &name, streamed.rest.clone()).await?;
            streamed.state.tail = Some(Tail { name, size });
        }
        let size = streamed.state.size;
        session.record.shared = Some(streamed.state.clone());
        if let Err(e) = self.write_session(&mut session) {
            self.undo_stream(s3, id, &streamed).await;
            return Err(e);
        }
        if let Some(old) = &old_tail {
            let _ = s3.delete_tail(id, &old.name).await;
        }
        Ok(UploadStatus {
            id: id.to_string(),
            size,
        })
    }

    /// Removes the tail a request wrote and did not commit (best effort: the session's
    /// removal, or the bucket's lifecycle rule, takes what this misses). Its parts stay in
    /// the multipart upload, which drops them at completion (they are not named).
    async fn undo_stream(&self, s3: &S3BlobStore, id: &str, streamed: &Streamed) {
        if let Some(tail) = &streamed.state.tail {
            let _ = s3.delete_tail(id, &tail.name).await;
        }
    }

    /// Streams `body` after the session's bytes: the old tail first, then the body, cut
    /// into parts of the staging part size sent a few at a time (each number reserved in
    /// the record first) while a hashing thread continues the session's sha256. What
    /// remains under a part at the end is returned (a PATCH sends it as a part if it is
    /// big enough, a PUT as the last part if there are parts).
    async fn stream_parts<S, E>(
        &self,
        s3: &S3BlobStore,
        id: &str,
        session: &mut Session,
        mut body: S,
        last: bool,
    ) -> Result<Streamed>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let state = session.state().clone();
        let hasher = Hasher::from_state_hex(DigestAlgorithm::Sha256, &state.sha256)
            .ok_or_else(|| RegistryError::Corrupt(format!("upload {id}: hasher state")))?;
        let part_size = s3.staging_part_size() as usize;
        let mut buf = BytesMut::new();
        if let Some(tail) = &state.tail {
            match s3.read_tail(id, &tail.name, tail.size).await {
                Ok(bytes) => buf.extend_from_slice(&bytes),
                // Another request committed after this one read the record, and dropped
                // the tail it took in: this one has lost the session.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return match self.lost_race(session) {
                        RegistryError::RangeInvalid { size, .. } if size == state.size => {
                            Err(e.into())
                        }
                        lost => Err(lost),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut parts = Parts {
            registry: self,
            s3,
            id,
            session,
            in_flight: FuturesUnordered::new(),
            done: Vec::new(),
        };

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let hashing = tokio::task::spawn_blocking(move || {
            let mut hasher = hasher;
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher
        });
        let mut size = state.size;
        let mut failure: Option<RegistryError> = None;
        while let Some(item) = body.next().await {
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    failure = Some(RegistryError::Body(e.to_string()));
                    break;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            size += chunk.len() as u64;
            buf.extend_from_slice(&chunk);
            let _ = tx.send(chunk).await;
            while buf.len() >= part_size {
                let part = buf.split_to(part_size).freeze();
                if let Err(e) = parts.send(part).await {
                    failure = Some(e);
                    break;
                }
            }
            if failure.is_some() {
                break;
            }
        }
        drop(tx);
        let hasher = hashing
            .await
            .map_err(|e| RegistryError::Io(std::io::Error::other(e)))?;
        // What is left: a PATCH sends it as a part if S3 takes it as one (5 MiB or more),
        // else keeps it as the tail; a PUT sends it as the last part if there are parts,
        // else it is the whole (small) blob, put under its digest directly.
        let as_part = if last {
            parts.session.state().multipart_id.is_some()
        } else {
            buf.len() as u64 >= s3.min_part_size()
        };
        let rest = if failure.is_none() && !buf.is_empty() && as_part {
            let part = buf.split().freeze();
            if let Err(e) = parts.send(part).await {
                failure = Some(e);
            }
            Bytes::new()
        } else {
            buf.freeze()
        };
        let finished = parts.finish().await;
        drop(parts);
        if let Some(e) = failure {
            return Err(e);
        }
        // The state as reserved (multipart upload, next part number) plus what came.
        let mut new = session.state().clone();
        new.parts.extend(finished?);
        new.size = size;
        new.tail = None;
        new.sha256 = hasher.state_hex();
        new.updated_at = now_epoch();
        Ok(Streamed {
            state: new,
            rest,
            hasher,
        })
    }

    /// PUT: the last chunk, the digest checked, the session claimed, completed and copied
    /// to the blob's key under the deletion fence, the staging objects deleted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn complete_shared<S, E>(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        kv: KeyValue,
        record: UploadRecord,
        digest: &Digest,
        offset: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let s3 = self.staging_bucket()?;
        let mut session = Session::new(&kv, record);
        let old_tail = session.state().tail.clone();
        Self::check_shared_offset(session.state(), offset)?;
        let streamed = self.stream_parts(s3, id, &mut session, body, true).await?;
        let size = streamed.state.size;
        let verify_now = digest.algorithm() == DigestAlgorithm::Sha256;
        if verify_now {
            let actual = streamed.hasher.clone().finish();
            if &actual != digest {
                let _ = self.store.txn(
                    &[Compare::ModRevision(session.key.clone(), session.revision)],
                    &[Op::delete(session.key.clone())],
                );
                let ended = SharedUpload {
                    tail: old_tail,
                    ..streamed.state.clone()
                };
                self.remove_staged(s3, id, &ended).await;
                return Err(RegistryError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        // Claim the session: from here no PATCH or other PUT of it commits.
        let mut claimed = streamed.state.clone();
        claimed.completing = Some(digest.clone());
        session.record.shared = Some(claimed);
        self.write_session(&mut session)?;
        let finished = self
            .finish_shared(scope, repo, s3, id, digest, size, &streamed, !verify_now)
            .await;
        // Done or failed, the session is over (a failure leaves the client to upload
        // again): its record, staging object and old tail go.
        let _ = self.store.delete(&session.key);
        let _ = s3.delete_staging(id).await;
        if let Some(tail) = &old_tail {
            let _ = s3.delete_tail(id, &tail.name).await;
        }
        finished.map(|()| size)
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_shared(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        s3: &S3BlobStore,
        id: &str,
        digest: &Digest,
        size: u64,
        streamed: &Streamed,
        verify_after: bool,
    ) -> Result<()> {
        let state = &streamed.state;
        let staged = match &state.multipart_id {
            Some(upload_id) => {
                if let Err(e) = s3.complete_staging(id, upload_id, &state.parts).await {
                    s3.abort_staging(id, upload_id).await;
                    return Err(e.into());
                }
                Staged::Object { s3, id }
            }
            None => Staged::Bytes(streamed.rest.clone()),
        };
        if verify_after {
            // Only sha256 is continued across requests; another algorithm's digest is
            // checked by reading the completed bytes back.
            let actual = match &staged {
                Staged::Bytes(b) => {
                    let mut h = Hasher::new(digest.algorithm());
                    h.update(b);
                    h.finish()
                }
                _ => s3.hash_staging(id, size, digest.algorithm()).await?,
            };
            if &actual != digest {
                return Err(RegistryError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        self.commit_blob(scope, repo, digest, size, &staged).await
    }

    /// What a session staged: its multipart upload, staging object and tail.
    async fn remove_staged(&self, s3: &S3BlobStore, id: &str, state: &SharedUpload) {
        if let Some(upload_id) = &state.multipart_id {
            s3.abort_staging(id, upload_id).await;
        }
        let _ = s3.delete_staging(id).await;
        if let Some(tail) = &state.tail {
            let _ = s3.delete_tail(id, &tail.name).await;
        }
    }

    /// DELETE: the record goes first (a PATCH in flight elsewhere then fails its commit),
    /// then what the session staged.
    pub(crate) async fn cancel_shared(
        &self,
        id: &str,
        kv: KeyValue,
        record: UploadRecord,
    ) -> Result<()> {
        let s3 = self.staging_bucket()?;
        let state = record.shared.expect("a staged session");
        let outcome = self.store.txn(
            &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
            &[Op::delete(kv.key.clone())],
        )?;
        if !outcome.is_committed() {
            // A chunk or the completion committed meanwhile: look again.
            return Err(RegistryError::UploadUnknown);
        }
        self.remove_staged(s3, id, &state).await;
        Ok(())
    }

    /// Garbage collection of a staged session untouched since before `cutoff` (any
    /// replica's): true if it was removed.
    pub(crate) async fn collect_shared(
        &self,
        id: &str,
        kv: &KeyValue,
        state: &SharedUpload,
        cutoff: f64,
    ) -> Result<bool> {
        if state.updated_at > cutoff {
            return Ok(false);
        }
        let outcome = self.store.txn(
            &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
            &[Op::delete(kv.key.clone())],
        )?;
        if !outcome.is_committed() {
            return Ok(false);
        }
        if let Some(s3) = &self.shared_staging {
            self.remove_staged(s3, id, state).await;
        }
        Ok(true)
    }
}

/// The parts a request sends, at most `PART_CONCURRENCY` in flight. Each part's number is
/// reserved in the session's record first (with the multipart upload, created on the
/// first part of a session): a request that finds the record moved has lost the session
/// and sends nothing more.
struct Parts<'a> {
    registry: &'a Registry,
    s3: &'a S3BlobStore,
    id: &'a str,
    session: &'a mut Session,
    in_flight: FuturesUnordered<
        std::pin::Pin<
            Box<dyn std::future::Future<Output = std::io::Result<StagedPart>> + Send + 'a>,
        >,
    >,
    done: Vec<StagedPart>,
}

impl Parts<'_> {
    async fn send(&mut self, bytes: Bytes) -> Result<()> {
        let (upload_id, number) = self.reserve().await?;
        let (s3, id) = (self.s3, self.id);
        self.in_flight.push(Box::pin(async move {
            s3.upload_staging_part(id, &upload_id, number, bytes).await
        }));
        while self.in_flight.len() >= PART_CONCURRENCY {
            let part = self.in_flight.next().await.expect("parts in flight")?;
            self.done.push(part);
        }
        Ok(())
    }

    /// The next part number, reserved by a compare-and-swap on the record.
    async fn reserve(&mut self) -> Result<(String, u16)> {
        let state = self.session.state();
        let number = state.next_number();
        if number > self.s3.max_parts() {
            return Err(RegistryError::Io(std::io::Error::other(format!(
                "the upload has reached S3's {} parts",
                self.s3.max_parts()
            ))));
        }
        let mut created = None;
        let upload_id = match &state.multipart_id {
            Some(u) => u.clone(),
            None => {
                let u = self.s3.create_staging(self.id).await?;
                created = Some(u.clone());
                u
            }
        };
        let state = self
            .session
            .record
            .shared
            .as_mut()
            .expect("a staged session");
        state.multipart_id = Some(upload_id.clone());
        state.next_part = number + 1;
        if let Err(e) = self.registry.write_session(self.session) {
            if let Some(u) = created {
                self.s3.abort_staging(self.id, &u).await;
            }
            return Err(e);
        }
        Ok((
            upload_id,
            u16::try_from(number).expect("at most 10,000 parts"),
        ))
    }

    /// Waits for the parts in flight; all parts sent, in order.
    async fn finish(&mut self) -> Result<Vec<StagedPart>> {
        while let Some(part) = self.in_flight.next().await {
            self.done.push(part?);
        }
        let mut done = std::mem::take(&mut self.done);
        done.sort_by_key(|p| p.number);
        Ok(done)
    }
}
