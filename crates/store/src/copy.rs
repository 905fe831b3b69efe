//! `berth store copy`: every key of one store into another, empty one.

use crate::{Op, Store, StoreError, TxnOutcome, scan};

/// Keys per destination transaction: well under etcd's default `--max-txn-ops` (128) and
/// its 1.5 MiB request limit for Berth's records.
const BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the destination already holds keys (first: {0:?}); copy only into an empty store")]
    NotEmpty(String),
    #[error("the destination changed during the copy (key {0:?})")]
    Raced(String),
}

/// Copies every key of `from` into `to`, in key order, a batch per transaction, each key
/// created only if absent (so a concurrent writer on `to` is detected, never overwritten).
/// Values are copied as they are; revisions are the destination's own (no record holds a
/// store revision). Returns how many keys were copied.
pub fn copy_all(from: &dyn Store, to: &dyn Store) -> Result<usize, CopyError> {
    if let Some(kv) = to.range("", None, 1)?.into_iter().next() {
        return Err(CopyError::NotEmpty(kv.key));
    }
    let mut copied = 0;
    let mut batch: Vec<(String, Vec<u8>)> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<(String, Vec<u8>)>| -> Result<usize, CopyError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let compares: Vec<_> = batch
            .iter()
            .map(|(k, _)| crate::Compare::ModRevision(k.clone(), 0))
            .collect();
        let ops: Vec<_> = batch.iter().map(|(k, v)| Op::put(k, v.clone())).collect();
        match to.txn(&compares, &ops)? {
            TxnOutcome::Committed(_) => {
                let n = batch.len();
                batch.clear();
                Ok(n)
            }
            TxnOutcome::Conflict => Err(CopyError::Raced(batch[0].0.clone())),
        }
    };
    scan::<CopyError>(from, "", None, |kv| {
        batch.push((kv.key.clone(), kv.value.clone()));
        if batch.len() == BATCH {
            copied += flush(&mut batch)?;
        }
        Ok(true)
    })?;
    copied += flush(&mut batch)?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStore;

    #[test]
    fn copies_every_key_once_into_an_empty_store_only() {
        let from = MemStore::new();
        for i in 0..300 {
            from.put(&format!("k/{i:04}"), format!("v{i}").as_bytes())
                .unwrap();
        }
        let to = MemStore::new();
        assert_eq!(copy_all(&from, &to).unwrap(), 300);
        let copied = to.range("", None, 0).unwrap();
        assert_eq!(copied.len(), 300);
        assert_eq!(copied[7].key, "k/0007");
        assert_eq!(copied[7].value, b"v7");
        assert!(matches!(copy_all(&from, &to), Err(CopyError::NotEmpty(k)) if k == "k/0000"));
    }
}
