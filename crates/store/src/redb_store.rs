//! The durable embedded `Store`: a versioned key-value layer over one redb file, in the shape
//! k3s's kine gives SQL stores. One global revision counter is bumped inside the same redb write
//! transaction that changes the keys and appends the changelog, and every commit is fsynced
//! (`Durability::Immediate`) before `txn` returns, so a crash leaves either the old state or the
//! new one, never a torn transaction.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::{
    Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, TxnOutcome, WatchEvent, Watcher,
};

/// key -> create_revision (u64 LE) ++ mod_revision (u64 LE) ++ value.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// revision -> the events that revision produced, encoded by `encode_events`.
const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_FORMAT: &str = "format";
const META_REVISION: &str = "revision";
/// Changelog entries at or below this revision have been deleted.
const META_COMPACTED: &str = "compacted";
/// The page cache's ceiling (redb's own default is 1 GiB).
const CACHE_BYTES: usize = 64 << 20;
const FORMAT_VERSION: u64 = 1;

/// (prefix, after, sender): `after` can be ahead of the current revision.
type WatcherList = Vec<(String, Revision, UnboundedSender<WatchEvent>)>;

/// The durable `Store`. Open it once per process and share it (`Arc`); every `txn` fsyncs, so
/// async callers should run it on a blocking thread.
pub struct RedbStore {
    db: Database,
    /// How many revisions of changelog automatic compaction keeps.
    history: u64,
    /// The commit lock. Every write transaction runs and then notifies watchers while holding
    /// it, and `watch` replays history and registers while holding it, so a watcher sees each
    /// commit exactly once: either in its replay or live, in revision order. A std Mutex is
    /// fine: it is held across fsync but never across an `.await`.
    watchers: Mutex<WatcherList>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Revisions of watch history kept by automatic compaction.
    pub const DEFAULT_HISTORY: u64 = 10_000;

    /// Opens (creating if needed) the database file at `path`. The file is locked: a second
    /// open, from this process or another, fails until the first `RedbStore` is dropped.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        RedbStore::open_with_history(path, RedbStore::DEFAULT_HISTORY)
    }

    /// Like `open`, keeping at least the last `history` revisions of watch history (minimum 1).
    pub fn open_with_history(path: &Path, history: u64) -> Result<RedbStore, StoreError> {
        // redb's default page cache may grow to 1 GiB; metadata needs far less.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(store_err)?;
        let wtx = begin_write(&db)?;
        {
            wtx.open_table(KV).map_err(store_err)?;
            wtx.open_table(CHANGELOG).map_err(store_err)?;
            let mut meta = wtx.open_table(META).map_err(store_err)?;
            let format = meta.get(META_FORMAT).map_err(store_err)?.map(|g| g.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION)
                        .map_err(store_err)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Corrupt(format!(
                        "unknown store format {other} (expected {FORMAT_VERSION})"
                    )));
                }
            }
        }
        wtx.commit().map_err(store_err)?;
        Ok(RedbStore {
            db,
            history: history.max(1),
            watchers: Mutex::new(Vec::new()),
        })
    }

    /// The revision history has been compacted through: `watch(_, after)` needs
    /// `after >= compacted_revision()`.
    pub fn compacted_revision(&self) -> Result<Revision, StoreError> {
        let rtx = self.db.begin_read().map_err(store_err)?;
        let meta = rtx.open_table(META).map_err(store_err)?;
        read_meta(&meta, META_COMPACTED)
    }

    fn lock_watchers(&self) -> MutexGuard<'_, WatcherList> {
        // The list stays valid whatever panicked while holding the lock.
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a transaction inside `wtx`: `None` on a failed comparison, otherwise the new
    /// revision (unchanged when `ops` is empty) and the events to publish.
    fn apply_txn(
        &self,
        wtx: &WriteTransaction,
        compares: &[Compare],
        ops: &[Op],
    ) -> Result<Option<(Revision, Vec<WatchEvent>)>, StoreError> {
        let mut kv = wtx.open_table(KV).map_err(store_err)?;
        for compare in compares {
            let key = compare.key();
            let current = match kv.get(key).map_err(store_err)? {
                Some(v) => {
                    let kv = decode_kv(key, v.value())?;
                    Some((kv.create_revision, kv.mod_revision))
                }
                None => None,
            };
            if !compare.holds(current) {
                return Ok(None);
            }
        }
        let mut meta = wtx.open_table(META).map_err(store_err)?;
        let current = read_meta(&meta, META_REVISION)?;
        if ops.is_empty() {
            return Ok(Some((current, Vec::new())));
        }
        let rev = current + 1;
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    let create_revision = match kv.get(key.as_str()).map_err(store_err)? {
                        Some(old) => decode_kv(key, old.value())?.create_revision,
                        None => rev,
                    };
                    let kv_new = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: rev,
                    };
                    kv.insert(key.as_str(), encode_kv(&kv_new).as_slice())
                        .map_err(store_err)?;
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv: kv_new,
                    });
                }
                Op::Delete { key } => {
                    let old = kv.remove(key.as_str()).map_err(store_err)?;
                    if let Some(old) = old {
                        let old = decode_kv(key, old.value())?;
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
        meta.insert(META_REVISION, rev).map_err(store_err)?;
        if !events.is_empty() {
            let mut log = wtx.open_table(CHANGELOG).map_err(store_err)?;
            log.insert(rev, encode_events(&events).as_slice())
                .map_err(store_err)?;
        }
        // Compact in batches of a tenth of the history so that most commits delete nothing.
        let compacted = read_meta(&meta, META_COMPACTED)?;
        if rev - compacted > self.history + (self.history / 10).max(1) {
            drop(meta);
            compact_in(wtx, rev - self.history)?;
        }
        Ok(Some((rev, events)))
    }
}

impl Store for RedbStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let rtx = self.db.begin_read().map_err(store_err)?;
        let kv = rtx.open_table(KV).map_err(store_err)?;
        match kv.get(key).map_err(store_err)? {
            Some(v) => Ok(Some(decode_kv(key, v.value())?)),
            None => Ok(None),
        }
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let rtx = self.db.begin_read().map_err(store_err)?;
        let kv = rtx.open_table(KV).map_err(store_err)?;
        let lower = match start_after {
            Some(s) if s >= prefix => Bound::Excluded(s),
            _ => Bound::Included(prefix),
        };
        let mut out = Vec::new();
        for entry in kv
            .range::<&str>((lower, Bound::Unbounded))
            .map_err(store_err)?
        {
            let (k, v) = entry.map_err(store_err)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            out.push(decode_kv(key, v.value())?);
            if limit != 0 && out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        let mut watchers = self.lock_watchers();
        let wtx = begin_write(&self.db)?;
        match self.apply_txn(&wtx, compares, ops)? {
            None => {
                wtx.abort().map_err(store_err)?;
                Ok(TxnOutcome::Conflict)
            }
            Some((rev, _)) if ops.is_empty() => {
                wtx.abort().map_err(store_err)?;
                Ok(TxnOutcome::Committed(rev))
            }
            Some((rev, events)) => {
                wtx.commit().map_err(store_err)?;
                // Durable now; publish while still holding the commit lock so that the next
                // commit's events cannot overtake these.
                watchers.retain(|(prefix, after, tx)| {
                    !tx.is_closed()
                        && (rev <= *after
                            || events
                                .iter()
                                .filter(|e| e.kv.key.starts_with(prefix.as_str()))
                                .all(|e| tx.send(e.clone()).is_ok()))
                });
                Ok(TxnOutcome::Committed(rev))
            }
        }
    }

    fn current_revision(&self) -> Result<Revision, StoreError> {
        let rtx = self.db.begin_read().map_err(store_err)?;
        let meta = rtx.open_table(META).map_err(store_err)?;
        read_meta(&meta, META_REVISION)
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError> {
        // Holding the commit lock: nothing commits between the replay snapshot and the
        // registration, so there is no gap and no duplicate at the seam.
        let mut watchers = self.lock_watchers();
        let rtx = self.db.begin_read().map_err(store_err)?;
        let meta = rtx.open_table(META).map_err(store_err)?;
        let compacted = read_meta(&meta, META_COMPACTED)?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        let (tx, rx) = unbounded_channel();
        let log = rtx.open_table(CHANGELOG).map_err(store_err)?;
        for entry in log
            .range::<u64>((Bound::Excluded(after), Bound::Unbounded))
            .map_err(store_err)?
        {
            let (rev, events) = entry.map_err(store_err)?;
            for event in decode_events(rev.value(), events.value())? {
                if event.kv.key.starts_with(prefix) {
                    // The receiver is still in hand, so the send cannot fail.
                    let _ = tx.send(event);
                }
            }
        }
        watchers.push((prefix.to_string(), after, tx));
        Ok(rx)
    }

    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        let _commit_lock = self.lock_watchers();
        let wtx = begin_write(&self.db)?;
        compact_in(&wtx, keep_after)?;
        wtx.commit().map_err(store_err)
    }
}

fn begin_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut wtx = db.begin_write().map_err(store_err)?;
    // The default already, spelled out because the whole design rests on it.
    wtx.set_durability(Durability::Immediate)
        .map_err(store_err)?;
    Ok(wtx)
}

/// Deletes changelog entries at or below `keep_after` (clamped to the current revision).
fn compact_in(wtx: &WriteTransaction, keep_after: Revision) -> Result<(), StoreError> {
    let mut meta = wtx.open_table(META).map_err(store_err)?;
    let target = keep_after.min(read_meta(&meta, META_REVISION)?);
    if target <= read_meta(&meta, META_COMPACTED)? {
        return Ok(());
    }
    let mut log = wtx.open_table(CHANGELOG).map_err(store_err)?;
    log.retain_in::<u64, _>(..=target, |_, _| false)
        .map_err(store_err)?;
    meta.insert(META_COMPACTED, target).map_err(store_err)?;
    tracing::debug!(compacted = target, "store history compacted");
    Ok(())
}

fn read_meta(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(meta.get(key).map_err(store_err)?.map_or(0, |g| g.value()))
}

fn store_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => StoreError::Corrupt(msg),
        other => StoreError::Io(other.to_string()),
    }
}

fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 + kv.value.len());
    buf.extend_from_slice(&kv.create_revision.to_le_bytes());
    buf.extend_from_slice(&kv.mod_revision.to_le_bytes());
    buf.extend_from_slice(&kv.value);
    buf
}

fn decode_kv(key: &str, raw: &[u8]) -> Result<KeyValue, StoreError> {
    let mut r = Reader {
        buf: raw,
        what: key,
    };
    let create_revision = r.u64()?;
    let mod_revision = r.u64()?;
    Ok(KeyValue {
        key: key.to_string(),
        value: r.buf.to_vec(),
        create_revision,
        mod_revision,
    })
}

/// Per event: kind (0 put, 1 delete), create_revision, key length and bytes, value length and
/// bytes. The mod revision is the changelog key.
fn encode_events(events: &[WatchEvent]) -> Vec<u8> {
    let mut buf = Vec::new();
    for e in events {
        buf.push(match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        buf.extend_from_slice(&e.kv.create_revision.to_le_bytes());
        for bytes in [e.kv.key.as_bytes(), e.kv.value.as_slice()] {
            buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            buf.extend_from_slice(bytes);
        }
    }
    buf
}

fn decode_events(rev: Revision, raw: &[u8]) -> Result<Vec<WatchEvent>, StoreError> {
    let what = format!("changelog revision {rev}");
    let mut r = Reader {
        buf: raw,
        what: &what,
    };
    let mut events = Vec::new();
    while !r.buf.is_empty() {
        let kind = match r.take(1)?[0] {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            other => return Err(r.corrupt(&format!("event kind {other}"))),
        };
        let create_revision = r.u64()?;
        let key =
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| r.corrupt("key is not UTF-8"))?;
        let value = r.bytes()?.to_vec();
        events.push(WatchEvent {
            kind,
            kv: KeyValue {
                key,
                value,
                create_revision,
                mod_revision: rev,
            },
        });
    }
    Ok(events)
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, detail: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {detail}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(self.corrupt("record truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let raw = self.take(8)?;
        Ok(u64::from_le_bytes(raw.try_into().expect("took 8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = usize::try_from(self.u64()?).map_err(|_| self.corrupt("length overflow"))?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_encoding_round_trips() {
        let events = vec![
            WatchEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: "a/é".into(),
                    value: vec![0, 1, 2],
                    create_revision: 3,
                    mod_revision: 7,
                },
            },
            WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: "b".into(),
                    value: Vec::new(),
                    create_revision: 5,
                    mod_revision: 7,
                },
            },
        ];
        assert_eq!(decode_events(7, &encode_events(&events)).unwrap(), events);
        let kv = &events[0].kv;
        assert_eq!(&decode_kv(&kv.key, &encode_kv(kv)).unwrap(), kv);
    }

    #[test]
    fn truncated_records_are_corrupt_not_panics() {
        let raw = encode_events(&[WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: "k".into(),
                value: b"v".to_vec(),
                create_revision: 1,
                mod_revision: 1,
            },
        }]);
        for cut in 1..raw.len() {
            let r = decode_events(1, &raw[..cut]);
            assert!(matches!(r, Err(StoreError::Corrupt(_))), "cut {cut}");
        }
        assert!(matches!(
            decode_kv("k", &[0; 9]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
