//! The typed read-modify-write every domain does on one record: read it, decide, write it
//! back under a compare on the revision read, and start again if someone else wrote in
//! between. Records are JSON (serde), as every domain crate stores them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Compare, Op, Store, StoreError};

/// What to do with the record a read-modify-write read.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// Write this value.
    Put(T),
    /// Delete the record.
    Delete,
    /// Leave it as it is (nothing is written).
    Keep,
}

/// Reads the record at `key` (`None` if absent), asks `decide` what to do with it, and
/// applies that under a compare on the revision read, retrying from the read when another
/// writer got there first; `decide` may be called more than once and should only compute.
/// Returns what is stored afterwards. A record that does not decode is
/// `StoreError::Corrupt`.
pub fn update<T, E>(
    store: &dyn Store,
    key: &str,
    mut decide: impl FnMut(Option<T>) -> Result<Change<T>, E>,
) -> Result<Option<T>, E>
where
    T: Serialize + DeserializeOwned + Clone,
    E: From<StoreError>,
{
    loop {
        let current = store.get(key)?;
        let revision = current.as_ref().map_or(0, |kv| kv.mod_revision);
        let value = current
            .map(|kv| {
                serde_json::from_slice::<T>(&kv.value)
                    .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
            })
            .transpose()?;
        let (op, stored) = match decide(value.clone())? {
            Change::Keep => return Ok(value),
            Change::Delete => (Op::delete(key), None),
            Change::Put(value) => {
                let bytes = serde_json::to_vec(&value)
                    .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
                (Op::put(key, bytes), Some(value))
            }
        };
        let compare = Compare::ModRevision(key.to_owned(), revision);
        if store.txn(&[compare], &[op])?.is_committed() {
            return Ok(stored);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::MemStore;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Counter {
        n: u32,
    }

    #[test]
    fn creates_changes_keeps_and_deletes() {
        let store = MemStore::new();
        let bump = |c: Option<Counter>| -> Result<Change<Counter>, StoreError> {
            Ok(Change::Put(Counter {
                n: c.map_or(0, |c| c.n) + 1,
            }))
        };
        assert_eq!(update(&store, "k", bump).unwrap(), Some(Counter { n: 1 }));
        assert_eq!(update(&store, "k", bump).unwrap(), Some(Counter { n: 2 }));
        let keep = |_| Ok::<_, StoreError>(Change::Keep);
        assert_eq!(update(&store, "k", keep).unwrap(), Some(Counter { n: 2 }));
        let delete = |_| Ok::<_, StoreError>(Change::<Counter>::Delete);
        assert_eq!(update(&store, "k", delete).unwrap(), None);
        assert!(store.get("k").unwrap().is_none());
    }

    #[test]
    fn concurrent_updates_are_all_applied() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        update(&*store, "k", |c: Option<Counter>| {
                            Ok::<_, StoreError>(Change::Put(Counter {
                                n: c.map_or(0, |c| c.n) + 1,
                            }))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let last = update(&*store, "k", |_| {
            Ok::<_, StoreError>(Change::<Counter>::Keep)
        });
        assert_eq!(last.unwrap(), Some(Counter { n: 400 }));
    }

    #[test]
    fn a_record_that_does_not_decode_is_corrupt() {
        let store = MemStore::new();
        store
            .txn(&[], &[Op::put("k", b"not json".to_vec())])
            .unwrap();
        let got = update(&store, "k", |_: Option<Counter>| Ok(Change::Keep));
        assert!(matches!(got, Err(StoreError::Corrupt(_))));
    }
}
