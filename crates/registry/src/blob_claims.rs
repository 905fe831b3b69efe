//! Who may write or delete the bytes of a digest, across every replica sharing the store
//! and the blob store. The bytes of a digest live at one place (`blobs/sha256/{hex}`), so a
//! replica's upload writing them must never interleave with another replica's garbage
//! collection deleting them: a write that lands before a delete, with its record committed
//! after, would leave a record naming nothing.
//!
//! A *claim* `blobclaim/{digest}` is created under compare-and-swap by whoever is about to
//! put or delete the bytes, and removed in the same transaction that commits the outcome:
//! - a writer claims only while no blob record exists, writes, then in one transaction
//!   creates the record and drops its claim (compare on the claim's revision);
//! - garbage collection deletes the record and takes the claim in one transaction (compare
//!   on the record's mod revision), deletes the bytes, then drops the claim; the orphan
//!   sweep claims a digest that has no record the same way;
//! - a writer that finds the digest claimed waits for the claim to go. A claim older than
//!   [`CLAIM_TTL`] was left by a replica that died and is broken; a holder acts on the
//!   blob store only while its claim is younger than half of that, so a broken claim's
//!   holder has long stopped acting (as a lease holder does).
//!
//! Blobs whose record exists are reused without a claim: their reuse is fenced against
//! garbage collection by `touch_blob` (a compare on the record's create revision).

use std::time::{Duration, Instant};

use berth_model::Digest;
use berth_store::{Compare, KeyValue, Op, Revision, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::{Registry, RegistryError, Result, decode, encode, keys, now_epoch};

/// A claim older than this was left by a replica that died (or stalled) and may be broken.
pub(crate) const CLAIM_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimRecord {
    /// `write` or `delete`.
    purpose: String,
    since: f64,
}

/// A claim held by this process.
#[derive(Debug)]
pub(crate) struct Claim {
    key: String,
    revision: Revision,
    taken: Instant,
}

impl Claim {
    /// Fails a transaction if the claim was broken meanwhile.
    pub(crate) fn compare(&self) -> Compare {
        Compare::ModRevision(self.key.clone(), self.revision)
    }

    /// Drops the claim in the transaction that commits the outcome.
    pub(crate) fn release_op(&self) -> Op {
        Op::delete(self.key.clone())
    }

    /// Whether it is still safe to act on the blob store under this claim: nobody breaks
    /// it before [`CLAIM_TTL`], and the holder stops at half of that.
    pub(crate) fn is_fresh(&self) -> bool {
        self.taken.elapsed() < CLAIM_TTL / 2
    }
}

/// What a writer finds.
pub(crate) enum WriteClaim {
    /// The blob's record exists: its bytes are stored; reuse them (`touch_blob`).
    Exists(KeyValue),
    /// Nobody has the bytes: write them, then commit the record with the claim.
    Claimed(Claim),
}

pub(crate) fn claim_value(purpose: &str) -> Vec<u8> {
    encode(&ClaimRecord {
        purpose: purpose.to_owned(),
        since: now_epoch(),
    })
}

pub(crate) fn claim_from(key: String, outcome: TxnOutcome) -> Option<Claim> {
    match outcome {
        TxnOutcome::Committed(revision) => Some(Claim {
            key,
            revision,
            taken: Instant::now(),
        }),
        TxnOutcome::Conflict => None,
    }
}

impl Registry {
    /// Before writing a blob's bytes: its record if it exists, else a claim on writing
    /// them, waiting while another replica (or request) holds the digest.
    pub(crate) async fn claim_blob_write(&self, digest: &Digest) -> Result<WriteClaim> {
        let blob_key = keys::blob(digest);
        let claim_key = keys::blob_claim(digest);
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(kv) = self.store.get(&blob_key)? {
                return Ok(WriteClaim::Exists(kv));
            }
            let outcome = self.store.txn(
                &[
                    Compare::CreateRevision(blob_key.clone(), 0),
                    Compare::CreateRevision(claim_key.clone(), 0),
                ],
                &[Op::put(claim_key.clone(), claim_value("write"))],
            )?;
            if let Some(claim) = claim_from(claim_key.clone(), outcome) {
                return Ok(WriteClaim::Claimed(claim));
            }
            if let Some(kv) = self.store.get(&claim_key)? {
                let held: ClaimRecord = decode(&kv)?;
                if now_epoch() - held.since > CLAIM_TTL.as_secs_f64() {
                    tracing::warn!(%digest, purpose = %held.purpose, "breaking a blob claim older than {CLAIM_TTL:?}");
                    self.store.txn(
                        &[Compare::ModRevision(claim_key.clone(), kv.mod_revision)],
                        &[Op::delete(claim_key.clone())],
                    )?;
                    continue;
                }
            }
            if started.elapsed() > CLAIM_TTL * 2 {
                return Err(RegistryError::Io(std::io::Error::other(format!(
                    "blob {digest} stayed claimed by another writer or garbage collection"
                ))));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Breaks every claim older than [`CLAIM_TTL`] (left by replicas that died), so that the
    /// orphan sweep can take their digests; returns how many.
    pub(crate) fn break_stale_claims(&self) -> Result<usize> {
        let mut broken = 0;
        for kv in self.store.range(keys::BLOB_CLAIMS, None, 0)? {
            let held: ClaimRecord = decode(&kv)?;
            if now_epoch() - held.since > CLAIM_TTL.as_secs_f64()
                && self
                    .store
                    .txn(
                        &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                        &[Op::delete(kv.key)],
                    )?
                    .is_committed()
            {
                broken += 1;
            }
        }
        Ok(broken)
    }

    /// Drops a claim that no transaction dropped (the commit failed); a claim broken
    /// meanwhile is left to its new holder.
    pub(crate) fn release_claim(&self, claim: &Claim) -> Result<()> {
        self.store.txn(&[claim.compare()], &[claim.release_op()])?;
        Ok(())
    }

    /// Deletes the bytes of a digest under a claim taken by the caller's transaction,
    /// then drops the claim. Past the claim's fresh half-life the bytes are left (an
    /// orphan for a later sweep) rather than deleted after someone may have broken it.
    pub(crate) async fn remove_claimed(&self, digest: &Digest, claim: &Claim) -> Result<()> {
        let removed = if claim.is_fresh() {
            self.blobs.remove(digest).await
        } else {
            Ok(())
        };
        // Dropped even when the removal failed: the record is gone already, so a writer
        // will put the bytes afresh; holding the claim would only stall it.
        self.release_claim(claim)?;
        Ok(removed?)
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

    /// A second writer of a digest waits while the first holds the claim, then gets the
    /// record the first committed (nothing to write).
    #[tokio::test]
    async fn a_writer_waits_for_the_claim_and_then_reuses_the_blob() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let WriteClaim::Claimed(first) = r.claim_blob_write(&digest).await.unwrap() else {
            panic!("nobody had the blob");
        };
        let mut second = Box::pin(r.claim_blob_write(&digest));
        assert!((&mut second).now_or_never().is_none(), "claimed twice");
        // The first writer commits its record and drops the claim in one transaction.
        let committed = r
            .store
            .txn(
                &[first.compare()],
                &[
                    Op::put(
                        keys::blob(&digest),
                        b"{\"size\":5,\"createdAt\":0}".to_vec(),
                    ),
                    first.release_op(),
                ],
            )
            .unwrap();
        assert!(committed.is_committed());
        assert!(matches!(second.await.unwrap(), WriteClaim::Exists(_)));
    }

    /// While garbage collection holds a digest (deleting its bytes), a writer waits; once
    /// the claim is dropped the writer claims it and writes afresh.
    #[tokio::test]
    async fn a_deletion_in_flight_holds_writers_off() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let key = keys::blob_claim(&digest);
        let outcome = r
            .store
            .txn(
                &[Compare::CreateRevision(key.clone(), 0)],
                &[Op::put(key.clone(), claim_value("delete"))],
            )
            .unwrap();
        let deleting = claim_from(key, outcome).unwrap();
        let mut writer = Box::pin(r.claim_blob_write(&digest));
        assert!(
            (&mut writer).now_or_never().is_none(),
            "wrote during a deletion"
        );
        r.release_claim(&deleting).unwrap();
        assert!(matches!(writer.await.unwrap(), WriteClaim::Claimed(_)));
    }

    /// A claim left by a replica that died is broken, by a writer and by GC's sweep.
    #[tokio::test]
    async fn stale_claims_are_broken() {
        let (r, _dir) = registry();
        let digest = Digest::sha256_of(b"layer");
        let stale = encode(&ClaimRecord {
            purpose: "write".into(),
            since: now_epoch() - CLAIM_TTL.as_secs_f64() - 1.0,
        });
        r.store.put(&keys::blob_claim(&digest), &stale).unwrap();
        assert!(matches!(
            r.claim_blob_write(&digest).await.unwrap(),
            WriteClaim::Claimed(_)
        ));
        let other = Digest::sha256_of(b"other");
        r.store.put(&keys::blob_claim(&other), &stale).unwrap();
        assert_eq!(r.break_stale_claims().unwrap(), 1, "only the stale one");
        assert!(r.store.get(&keys::blob_claim(&other)).unwrap().is_none());
        assert!(r.store.get(&keys::blob_claim(&digest)).unwrap().is_some());
    }
}
