//! Keeping a replica's write of a digest's bytes apart from another replica's deletion of
//! them. The bytes of a digest live at one place (`blobs/sha256/{hex}`), so a write that
//! lands before a concurrent garbage collection's delete, with its record committed after,
//! would leave a record naming nothing.
//!
//! Garbage collection announces each deletion in the store: a *deletion marker*
//! `blobdel/{digest}` is put in the transaction that deletes the blob's record (or, for
//! bytes without a record, while none exists) in state `deleting`; the bytes are deleted;
//! the marker is then put again in state `deleted`. Every step moves the marker's mod
//! revision. A writer of new bytes reads the marker before writing (waiting while it says
//! `deleting`) and commits the blob's record under a compare on the marker's revision it
//! read: if any deletion of the digest began after that read, the commit conflicts and the
//! writer writes the bytes again (it keeps them until its record is committed). So a
//! record is only ever committed for bytes written after the last deletion of them ended.
//!
//! The writer's side costs one store read, no write: new blobs and manifests commit in
//! one transaction as before. A marker `deleting` older than [`DELETION_TTL`] was left by
//! a replica that died and no longer holds writers off; a collector deletes bytes only
//! while its marker is younger than half of that (a lease's assumption: no process stalls
//! for minutes between that check and its request). Markers are removed by a later
//! collection once old; a writer that read one then just writes again.
//!
//! Blobs whose record exists are reused without writing: that reuse is fenced by
//! `touch_blob` (a compare on the record's create revision).

use std::time::{Duration, Instant};

use berth_model::Digest;
use berth_store::{Compare, KeyValue, Op, Revision, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::{Registry, Result, decode, encode, keys, now_epoch};

/// A `deleting` marker older than this was left by a replica that died (or stalled).
pub(crate) const DELETION_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletionMarker {
    /// `deleting` or `deleted`.
    state: String,
    since: f64,
}

impl DeletionMarker {
    fn is_live_deletion(&self) -> bool {
        self.state == "deleting" && now_epoch() - self.since < DELETION_TTL.as_secs_f64()
    }
}

fn marker(state: &str) -> Vec<u8> {
    encode(&DeletionMarker {
        state: state.to_owned(),
        since: now_epoch(),
    })
}

/// What a writer of a digest finds.
pub(crate) enum BlobWrite {
    /// The blob's record exists: its bytes are stored; reuse them (`touch_blob`).
    Exists(KeyValue),
    /// Write the bytes, then commit the record with [`WriteFence::compare`] among the
    /// transaction's compares (and `CreateRevision(blob, 0)`).
    New(WriteFence),
}

/// The deletion marker's revision a writer saw before writing.
pub(crate) struct WriteFence {
    key: String,
    revision: Revision,
}

impl WriteFence {
    /// Fails the record's commit if a deletion of the digest began since.
    pub(crate) fn compare(&self) -> Compare {
        Compare::ModRevision(self.key.clone(), self.revision)
    }
}

/// A deletion this collector announced.
pub(crate) struct Deletion {
    key: String,
    revision: Revision,
    started: Instant,
}

impl Registry {
    /// Before writing a blob's bytes: its record if it exists, else the fence to commit
    /// the new record under, once no deletion of the digest is in flight.
    pub(crate) async fn prepare_blob_write(&self, digest: &Digest) -> Result<BlobWrite> {
        let marker_key = keys::blob_deletion(digest);
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(kv) = self.store.get(&keys::blob(digest))? {
                return Ok(BlobWrite::Exists(kv));
            }
            let revision = match self.store.get(&marker_key)? {
                None => 0,
                Some(kv) => {
                    if decode::<DeletionMarker>(&kv)?.is_live_deletion() {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(250));
                        continue;
                    }
                    kv.mod_revision
                }
            };
            return Ok(BlobWrite::New(WriteFence {
                key: marker_key,
                revision,
            }));
        }
    }

    /// The deletion marker's state for a collector about to delete: `None` while another
    /// collector's deletion is in flight, else the compare and the op that announce this
    /// one (to go into the transaction that deletes the record).
    pub(crate) fn deletion_ops(&self, digest: &Digest) -> Result<Option<(Compare, Op)>> {
        let key = keys::blob_deletion(digest);
        let revision = match self.store.get(&key)? {
            None => 0,
            Some(kv) if decode::<DeletionMarker>(&kv)?.is_live_deletion() => return Ok(None),
            Some(kv) => kv.mod_revision,
        };
        Ok(Some((
            Compare::ModRevision(key.clone(), revision),
            Op::put(key, marker("deleting")),
        )))
    }

    /// The deletion a committed transaction with [`Registry::deletion_ops`] announced.
    pub(crate) fn deletion_from(&self, digest: &Digest, outcome: TxnOutcome) -> Option<Deletion> {
        match outcome {
            TxnOutcome::Committed(revision) => Some(Deletion {
                key: keys::blob_deletion(digest),
                revision,
                started: Instant::now(),
            }),
            TxnOutcome::Conflict => None,
        }
    }

    /// Deletes the bytes of an announced deletion and marks it done. Past half the
    /// marker's lifetime the bytes are left (an orphan for a later sweep) rather than
    /// deleted after writers may have stopped waiting.
    pub(crate) async fn finish_deletion(&self, digest: &Digest, deletion: Deletion) -> Result<()> {
        let removed = if deletion.started.elapsed() < DELETION_TTL / 2 {
            self.blobs.remove(digest).await
        } else {
            Ok(())
        };
        // Marked done even when the removal failed: the record is gone already, so a
        // writer will put the bytes afresh; a `deleting` marker would only stall it.
        self.store.txn(
            &[Compare::ModRevision(
                deletion.key.clone(),
                deletion.revision,
            )],
            &[Op::put(deletion.key, marker("deleted"))],
        )?;
        Ok(removed?)
    }

    /// Removes deletion markers past [`DELETION_TTL`] (done ones, and ones a replica that
    /// died left `deleting`); returns how many. A writer that read one conflicts at its
    /// commit and writes again.
    pub(crate) fn remove_old_deletion_markers(&self) -> Result<usize> {
        let mut removed = 0;
        for kv in self.store.range(keys::BLOB_DELETIONS, None, 0)? {
            let marker: DeletionMarker = decode(&kv)?;
            let age = now_epoch() - marker.since;
            let done = marker.state == "deleted" && age > DELETION_TTL.as_secs_f64();
            let abandoned = age > 2.0 * DELETION_TTL.as_secs_f64();
            if (done || abandoned)
                && self
                    .store
                    .txn(
                        &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                        &[Op::delete(kv.key)],
                    )?
                    .is_committed()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;

    fn registry() -> (Registry, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(berth_store::MemStore::new());
        (Registry::open(store, dir.path()).unwrap(), dir)
    }

    fn announce(r: &Registry, digest: &Digest) -> Deletion {
        let (compare, op) = r
            .deletion_ops(digest)
            .unwrap()
            .expect("no deletion in flight");
        r.deletion_from(digest, r.store.txn(&[compare], &[op]).unwrap())
            .unwrap()
    }

    /// While a deletion is in flight a writer waits; once it is done the writer writes,
    /// fenced on the finished marker.
    #[tokio::test]
    async fn a_deletion_in_flight_holds_writers_off() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let deletion = announce(&r, &digest);
        assert!(
            r.deletion_ops(&digest).unwrap().is_none(),
            "two collectors at once"
        );
        let mut writer = Box::pin(r.prepare_blob_write(&digest));
        assert!(
            (&mut writer).now_or_never().is_none(),
            "wrote during a deletion"
        );
        r.finish_deletion(&digest, deletion).await.unwrap();
        let BlobWrite::New(fence) = writer.await.unwrap() else {
            panic!("no record exists");
        };
        assert!(r.store.txn(&[fence.compare()], &[]).unwrap().is_committed());
    }

    /// A deletion that begins after a writer read the marker makes the writer's commit
    /// conflict (its bytes may be gone), though the deletion is over by then.
    #[tokio::test]
    async fn a_deletion_between_write_and_commit_fails_the_commit() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let BlobWrite::New(fence) = r.prepare_blob_write(&digest).await.unwrap() else {
            panic!("no record exists");
        };
        let deletion = announce(&r, &digest);
        r.finish_deletion(&digest, deletion).await.unwrap();
        assert!(!r.store.txn(&[fence.compare()], &[]).unwrap().is_committed());
    }

    /// Markers of replicas that died stop holding writers off and are removed later.
    #[tokio::test]
    async fn old_markers_expire() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let old = |state: &str, age: f64| {
            encode(&DeletionMarker {
                state: state.into(),
                since: now_epoch() - age,
            })
        };
        let ttl = DELETION_TTL.as_secs_f64();
        r.store
            .put(&keys::blob_deletion(&digest), &old("deleting", ttl + 1.0))
            .unwrap();
        assert!(matches!(
            r.prepare_blob_write(&digest).now_or_never(),
            Some(Ok(BlobWrite::New(_)))
        ));
        let done = Digest::sha256_of(b"done");
        let fresh = Digest::sha256_of(b"fresh");
        r.store
            .put(&keys::blob_deletion(&done), &old("deleted", ttl + 1.0))
            .unwrap();
        r.store
            .put(&keys::blob_deletion(&fresh), &old("deleted", 1.0))
            .unwrap();
        assert_eq!(r.remove_old_deletion_markers().unwrap(), 1);
        assert!(r.store.get(&keys::blob_deletion(&done)).unwrap().is_none());
        assert!(r.store.get(&keys::blob_deletion(&fresh)).unwrap().is_some());
    }
}
