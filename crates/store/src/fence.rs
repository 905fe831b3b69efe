//! Fencing: the store a leader's controllers write through. Every transaction carries one
//! more comparison, that the leader key is still the incarnation this replica created when
//! it was elected (its create revision, the term's fencing token). A replica that lost the
//! lead, even one that has not noticed yet, cannot commit anything: the store refuses.

use std::sync::Arc;

use crate::{Compare, KeyValue, Op, Revision, Store, StoreError, TxnOutcome, Watcher};

pub struct FencedStore {
    inner: Arc<dyn Store>,
    key: String,
    token: Revision,
}

impl FencedStore {
    /// Writes through `inner` only while `key`'s create revision is `token`.
    pub fn new(inner: Arc<dyn Store>, key: impl Into<String>, token: Revision) -> FencedStore {
        FencedStore {
            inner,
            key: key.into(),
            token,
        }
    }

    fn fence(&self) -> Compare {
        Compare::CreateRevision(self.key.clone(), self.token)
    }
}

impl Store for FencedStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key)
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.range(prefix, start_after, limit)
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        let mut fenced = Vec::with_capacity(compares.len() + 1);
        fenced.extend_from_slice(compares);
        fenced.push(self.fence());
        match self.inner.txn(&fenced, ops)? {
            TxnOutcome::Committed(rev) => Ok(TxnOutcome::Committed(rev)),
            TxnOutcome::Conflict => {
                // Whose comparison failed: the caller's (retry as usual) or the fence's.
                let held = self.inner.get(&self.key)?;
                if held.is_some_and(|kv| kv.create_revision == self.token) {
                    Ok(TxnOutcome::Conflict)
                } else {
                    Err(StoreError::Fenced {
                        key: self.key.clone(),
                    })
                }
            }
        }
    }

    fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision()
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError> {
        self.inner.watch(prefix, after)
    }

    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        self.inner.compact(keep_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStore;

    #[test]
    fn a_deposed_leaders_writes_are_refused_and_a_callers_conflicts_stay_conflicts() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let token = store.put("leader", b"a").unwrap();
        let fenced = FencedStore::new(store.clone(), "leader", token);
        assert!(fenced.put("x", b"1").is_ok());
        // The caller's own comparison failing is an ordinary conflict.
        assert_eq!(
            fenced.put_if_revision("x", b"2", 999).unwrap(),
            TxnOutcome::Conflict
        );
        // Another replica is elected: the leader key is a new incarnation.
        store.delete("leader").unwrap();
        store.put("leader", b"b").unwrap();
        assert!(matches!(
            fenced.txn(&[], &[Op::put("x", "3")]),
            Err(StoreError::Fenced { .. })
        ));
        assert_eq!(store.get("x").unwrap().unwrap().value, b"1");
    }
}
