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

/// A [`Change`] to the record and what else commits with it in the same transaction:
/// compares on other records the decision read (a retry reads them again), and operations
/// on other keys (index entries, markers, related records).
#[derive(Debug, Clone, PartialEq)]
pub struct Update<T> {
    pub change: Change<T>,
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl<T> Update<T> {
    /// Also apply `op` (to another key) in the same transaction.
    pub fn also(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Also require `compare` (on another record the decision read).
    pub fn provided(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }
}

impl<T> From<Change<T>> for Update<T> {
    fn from(change: Change<T>) -> Self {
        Update {
            change,
            compares: Vec::new(),
            ops: Vec::new(),
        }
    }
}

/// Reads the record at `key` (`None` if absent), asks `decide` what to do with it (a
/// [`Change`], or an [`Update`] with more compares and operations), and applies that under a
/// compare on the revision read, retrying from the read when another writer got there
/// first; `decide` may be called more than once and should only compute (and read). A
/// `Keep` without other operations writes nothing. Returns what is stored afterwards. A
/// record that does not decode is `StoreError::Corrupt`.
pub fn update<T, E, U>(
    store: &dyn Store,
    key: &str,
    mut decide: impl FnMut(Option<T>) -> Result<U, E>,
) -> Result<Option<T>, E>
where
    T: Serialize + DeserializeOwned + Clone,
    E: From<StoreError>,
    U: Into<Update<T>>,
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
        let Update {
            change,
            mut compares,
            mut ops,
        } = decide(value.clone())?.into();
        let stored = match change {
            Change::Keep if ops.is_empty() => return Ok(value),
            Change::Keep => value,
            Change::Delete => {
                ops.push(Op::delete(key));
                None
            }
            Change::Put(value) => {
                let bytes = serde_json::to_vec(&value)
                    .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
                ops.push(Op::put(key, bytes));
                Some(value)
            }
        };
        compares.push(Compare::ModRevision(key.to_owned(), revision));
        if store.txn(&compares, &ops)?.is_committed() {
            return Ok(stored);
        }
    }
}

/// [`update`] that always writes: `make` returns the new value from the current one.
pub fn upsert<T, E>(
    store: &dyn Store,
    key: &str,
    mut make: impl FnMut(Option<T>) -> Result<T, E>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned + Clone,
    E: From<StoreError>,
{
    let stored = update(store, key, |current| make(current).map(Change::Put))?;
    Ok(stored.expect("a Put leaves its value stored"))
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
    fn an_update_commits_its_other_operations_with_the_record_or_not_at_all() {
        let store = MemStore::new();
        let with_marker = |c: Option<Counter>| {
            Ok::<_, StoreError>(
                Update::from(Change::Put(Counter {
                    n: c.map_or(0, |c| c.n) + 1,
                }))
                .also(Op::put("marker", b"1".to_vec()))
                .provided(Compare::ModRevision("other".into(), 0)),
            )
        };
        assert_eq!(
            update(&store, "k", with_marker).unwrap(),
            Some(Counter { n: 1 })
        );
        assert!(store.get("marker").unwrap().is_some());
        // The decision read "other" absent; once it exists the compare fails and the next
        // round decides again (here: to keep, and delete the marker instead).
        store.put("other", b"x").unwrap();
        let mut rounds = 0;
        let got = update(&store, "k", |c: Option<Counter>| {
            rounds += 1;
            let update = if rounds == 1 {
                Update::from(Change::Put(Counter { n: 99 }))
                    .provided(Compare::ModRevision("other".into(), 0))
            } else {
                Update::from(Change::Keep).also(Op::delete("marker"))
            };
            let _ = c;
            Ok::<_, StoreError>(update)
        })
        .unwrap();
        assert_eq!((rounds, got), (2, Some(Counter { n: 1 })));
        assert!(store.get("marker").unwrap().is_none());
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
