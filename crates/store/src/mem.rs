//! An in-memory `Store` for unit tests of the layers above. Same semantics as the durable
//! engine, no durability.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{
    Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, TxnOutcome, WatchEvent, Watcher,
};

#[derive(Default)]
struct Inner {
    revision: Revision,
    /// History at or below this revision has been dropped by `compact`.
    compacted: Revision,
    data: BTreeMap<String, KeyValue>,
    history: Vec<WatchEvent>,
    watchers: Vec<WatcherEntry>,
}

/// (prefix, after, sender): `after` can be ahead of the current revision.
type WatcherEntry = (
    String,
    Revision,
    tokio::sync::mpsc::UnboundedSender<WatchEvent>,
);

/// A std Mutex is fine here: no `.await` happens while it is held.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.inner.lock().unwrap().data.get(key).cloned())
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let inner = self.inner.lock().unwrap();
        let iter = inner
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|s| k.as_str() > s))
            .map(|(_, v)| v.clone());
        Ok(if limit == 0 {
            iter.collect()
        } else {
            iter.take(limit).collect()
        })
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        let mut inner = self.inner.lock().unwrap();
        for c in compares {
            let current = inner
                .data
                .get(c.key())
                .map(|kv| (kv.create_revision, kv.mod_revision));
            if !c.holds(current) {
                return Ok(TxnOutcome::Conflict);
            }
        }
        if ops.is_empty() {
            return Ok(TxnOutcome::Committed(inner.revision));
        }
        inner.revision += 1;
        let rev = inner.revision;
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    let create_revision = inner.data.get(key).map_or(rev, |kv| kv.create_revision);
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: rev,
                    };
                    inner.data.insert(key.clone(), kv.clone());
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                    });
                }
                Op::Delete { key } => {
                    if let Some(old) = inner.data.remove(key) {
                        events.push(WatchEvent {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key: key.clone(),
                                value: Vec::new(),
                                create_revision: old.create_revision,
                                mod_revision: rev,
                            },
                        });
                    }
                }
            }
        }
        inner.watchers.retain(|(prefix, after, tx)| {
            rev <= *after
                || events
                    .iter()
                    .filter(|e| e.kv.key.starts_with(prefix.as_str()))
                    .all(|e| tx.send(e.clone()).is_ok())
        });
        inner.history.extend(events);
        Ok(TxnOutcome::Committed(rev))
    }

    fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.lock().unwrap().revision)
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError> {
        let mut inner = self.inner.lock().unwrap();
        if after < inner.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: inner.compacted,
            });
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for e in &inner.history {
            if e.kv.mod_revision > after && e.kv.key.starts_with(prefix) {
                let _ = tx.send(e.clone());
            }
        }
        inner.watchers.push((prefix.to_string(), after, tx));
        Ok(Watcher::new(rx))
    }

    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap();
        let target = keep_after.min(inner.revision);
        if target > inner.compacted {
            inner.history.retain(|e| e.kv.mod_revision > target);
            inner.compacted = target;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_and_range() {
        let s = MemStore::new();
        assert_eq!(
            s.put_if_revision("a/1", b"x", 0).unwrap(),
            TxnOutcome::Committed(1)
        );
        assert_eq!(
            s.put_if_revision("a/1", b"y", 0).unwrap(),
            TxnOutcome::Conflict
        );
        assert_eq!(
            s.put_if_revision("a/1", b"y", 1).unwrap(),
            TxnOutcome::Committed(2)
        );
        s.put("a/2", b"z").unwrap();
        s.put("b/1", b"w").unwrap();
        let r = s.range("a/", None, 0).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].value, b"y");
        assert_eq!(r[0].create_revision, 1);
        assert_eq!(s.range("a/", Some("a/1"), 0).unwrap().len(), 1);
        assert_eq!(s.delete("a/1").unwrap(), 5);
        assert!(s.get("a/1").unwrap().is_none());
    }

    #[tokio::test]
    async fn watch_replays_then_follows() {
        let s = MemStore::new();
        s.put("a/1", b"x").unwrap();
        s.put("b/1", b"x").unwrap();
        let mut w = s.watch("a/", 0).unwrap();
        s.put("a/2", b"y").unwrap();
        assert_eq!(w.recv().await.unwrap().kv.key, "a/1");
        assert_eq!(w.recv().await.unwrap().kv.key, "a/2");
    }
}
