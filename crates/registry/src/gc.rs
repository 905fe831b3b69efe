//! Garbage collection: delete blobs no manifest references, stale uploads, and files whose
//! record was never committed.
//!
//! Safety against concurrent pushes: a manifest put rewrites the record of every blob it
//! references (bumping its mod revision) under a compare on the record's create revision
//! (still the same incarnation), and GC deletes a blob record only under a compare on the
//! mod revision it saw when it found the blob unreferenced. Whichever commits
//! first wins; the other sees a conflict (the push retries and finds the blob gone, GC skips
//! the blob). Blobs younger than the grace period are kept, so layers uploaded just before
//! their manifest are safe too.
//!
//! Safety against other replicas writing the same bytes: each deletion of a digest's bytes
//! is announced in the transaction that deletes its record (or, for bytes without a
//! record, while none exists), and a writer's record commit conflicts with any deletion
//! that began after it wrote (`blob_deletions.rs`). Nothing here is process-local, so
//! every replica may run garbage collection at once.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use berth_model::Digest;
use berth_store::{Compare, Op};

use crate::uploads::{BlobRecord, UploadRecord};
use crate::{Registry, Result, blob_deletions, decode, keys, now_epoch};

/// How long past the grace period another replica's upload is left to that replica.
const FOREIGN_UPLOAD_AGE: Duration = Duration::from_secs(7 * 86400);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_deleted: usize,
    pub bytes_freed: u64,
    pub uploads_deleted: usize,
    pub orphan_files_deleted: usize,
}

impl Registry {
    /// Collect garbage older than `grace`.
    pub async fn gc(&self, grace: Duration) -> Result<GcReport> {
        let mut report = GcReport::default();
        let cutoff = now_epoch() - grace.as_secs_f64();

        // The blob records first, with their revisions: a manifest put that commits after
        // this read rewrites the records it references and so fails GC's compare below; one
        // that committed before it is in the image records read next.
        let blob_records = self.store.range(keys::BLOBS, None, 0)?;

        // Everything a manifest references, in any repository of any scope, and the links,
        // grouped by digest, so a deleted blob takes its links with it.
        let mut referenced: HashSet<Digest> = HashSet::new();
        let mut links: Vec<(Digest, String)> = Vec::new();
        for kv in self.store.range("ecr/", None, 0)? {
            if kv.key.contains("/img/") {
                let image: crate::ImageRecord = decode(&kv)?;
                referenced.insert(image.digest);
                referenced.extend(image.blobs);
            } else if kv.key.contains("/link/")
                && let Some(d) = keys::trailing_digest(&kv.key)
            {
                links.push((d, kv.key));
            }
        }

        let mut known: HashSet<Digest> = HashSet::new();
        for kv in blob_records {
            let Ok(digest) = kv.key[keys::BLOBS.len()..].parse::<Digest>() else {
                continue;
            };
            known.insert(digest.clone());
            let record: BlobRecord = decode(&kv)?;
            if referenced.contains(&digest) || record.last_used() > cutoff {
                continue;
            }
            // The record goes and the deletion is announced in one transaction; a
            // writer of the same bytes waits for it, or has its commit fail after it.
            let Some((marker_compare, marker_op)) = self.deletion_ops(&digest)? else {
                continue; // another collector is deleting it
            };
            let mut ops = vec![Op::delete(kv.key.clone()), marker_op];
            ops.extend(
                links
                    .iter()
                    .filter(|(d, _)| d == &digest)
                    .map(|(_, k)| Op::delete(k.clone())),
            );
            let outcome = self.store.txn(
                &[
                    Compare::ModRevision(kv.key.clone(), kv.mod_revision),
                    marker_compare,
                ],
                &ops,
            )?;
            if let Some(deletion) = self.deletion_from(&digest, outcome) {
                self.finish_deletion(&digest, deletion).await?;
                report.blobs_deleted += 1;
                report.bytes_freed += record.size;
                known.remove(&digest);
            }
        }

        // Bytes without a record: a crash between their write and their record's commit
        // (or a commit that lost to a deletion). Only old ones, announced as above while no
        // record exists.
        let grace_time = SystemTime::now() - grace;
        for (digest, modified) in self.blobs.list().await? {
            if known.contains(&digest) || modified > grace_time {
                continue;
            }
            let Some((marker_compare, marker_op)) = self.deletion_ops(&digest)? else {
                continue;
            };
            let outcome = self.store.txn(
                &[
                    Compare::CreateRevision(keys::blob(&digest), 0),
                    marker_compare,
                ],
                &[marker_op],
            )?;
            if let Some(deletion) = self.deletion_from(&digest, outcome) {
                self.finish_deletion(&digest, deletion).await?;
                report.orphan_files_deleted += 1;
            }
        }
        self.remove_old_deletion_markers()?;

        // Stale uploads: untouched (file not written) for the grace period, and not in the
        // middle of a request (its lock is free). A staged session's id is not a file here,
        // and never in `live_uploads`: the staging directory has no file of it.
        let mut live_uploads = HashSet::new();
        for kv in self.store.range(keys::UPLOADS, None, 0)? {
            let id = kv.key[keys::UPLOADS.len()..].to_string();
            let record: UploadRecord = decode(&kv)?;
            // A session staged in the bucket is any replica's to collect: by its last
            // committed chunk, under a compare on the record.
            if let Some(state) = &record.shared {
                if self.collect_shared(&id, &kv, state, cutoff).await? {
                    report.uploads_deleted += 1;
                }
                continue;
            }
            let last_write = std::fs::metadata(self.staging.path(&id))
                .and_then(|m| m.modified())
                .ok();
            // An upload staged on another replica is that replica's to collect, unless it
            // is so old that its replica must be gone for good.
            let foreign = last_write.is_none()
                && record
                    .replica
                    .as_deref()
                    .is_some_and(|r| r != &*self.replica)
                && record.started_at > cutoff - FOREIGN_UPLOAD_AGE.as_secs_f64();
            let active =
                foreign || record.started_at > cutoff || last_write.is_some_and(|t| t > grace_time);
            let Some(guard) = (!active).then(|| self.uploads.try_lock(&id)).flatten() else {
                live_uploads.insert(id);
                continue;
            };
            let outcome = self.store.txn(
                &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                &[Op::delete(kv.key)],
            )?;
            if outcome.is_committed() {
                let _ = tokio::fs::remove_file(self.staging.path(&id)).await;
                report.uploads_deleted += 1;
            }
            drop(guard);
            self.uploads.forget(&id);
        }
        for entry in std::fs::read_dir(self.staging.dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            // Other files here are the blob store's temporary files (a manifest being
            // written), which live only while their writer is at it.
            let kept_after = if uuid::Uuid::parse_str(&name).is_ok() {
                grace_time
            } else {
                grace_time.min(SystemTime::now() - blob_deletions::DELETION_TTL)
            };
            if live_uploads.contains(&name) || entry.metadata()?.modified()? > kept_after {
                continue;
            }
            if self.store.get(&keys::upload(&name))?.is_none() {
                let _ = std::fs::remove_file(entry.path());
                report.orphan_files_deleted += 1;
            }
        }
        Ok(report)
    }
}
