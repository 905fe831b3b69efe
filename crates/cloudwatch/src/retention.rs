//! Retention: each resolution's chunks past its retention are deleted from the front of
//! that resolution's keys (they sort by time), and metrics without data for the longest
//! retention are forgotten. Reads hide expired buckets at once; this frees the disk.

use berth_store::{Op, decode, scan};

use crate::put::MetricRecord;
use crate::{CloudWatch, CloudWatchError, Result, TIERS, keys};

/// Deletions per transaction.
const DELETE_BATCH: usize = 100;

impl CloudWatch {
    /// Deletes what is past retention at `now_ms`; returns how many records went.
    pub fn expire_at(&self, now_ms: i64) -> Result<usize> {
        let now_s = now_ms.div_euclid(1000);
        let mut gone = Vec::new();
        for (tier, prefix) in TIERS
            .iter()
            .flat_map(|t| [(t, keys::tier_data(t)), (t, keys::tier_dist(t))])
        {
            scan(self.store(), &prefix, None, |kv| {
                let expired = keys::chunk_start_of(&prefix, &kv.key)
                    .is_some_and(|start| !tier.keeps(start + tier.chunk - tier.seconds, now_s));
                if expired {
                    gone.push(kv.key.clone());
                }
                // Chunks sort by start: the first one kept ends the scan.
                Ok::<_, CloudWatchError>(expired)
            })?;
        }
        let longest = TIERS[TIERS.len() - 1].retention * 1000;
        scan(self.store(), keys::METRIC_ROOT, None, |kv| {
            let record: MetricRecord = decode(kv)?;
            if record.last_put_ms < now_ms - longest {
                gone.push(kv.key.clone());
            }
            Ok::<_, CloudWatchError>(true)
        })?;
        for batch in gone.chunks(DELETE_BATCH) {
            let ops: Vec<Op> = batch.iter().map(Op::delete).collect();
            self.store().txn(&[], &ops)?;
        }
        Ok(gone.len())
    }

    /// Retention now.
    pub fn expire(&self) -> Result<usize> {
        self.expire_at(crate::now_ms())
    }
}
