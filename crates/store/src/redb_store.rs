//! The durable embedded `Store`: a versioned key-value layer over one redb file, in the shape
//! k3s's kine gives SQL stores. One global revision counter is bumped inside the same redb write
//! transaction that changes the keys and appends the changelog, and every commit is fsynced
//! (`Durability::Immediate`) before `txn` returns, so a crash leaves either the old state or the
//! new one, never a torn transaction.
//!
//! Concurrent `txn`s are group-committed: callers queue their transactions, one of them (the
//! leader) applies everything queued in one redb write transaction and one fsync, each keeping
//! its own revision, changelog entry and events, exactly as if they had run one after another.

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
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
/// The page cache's ceiling (redb's own default is 1 GiB). Small on purpose: every page a
/// transaction writes enters this cache, so a large one fills with pages written once and
/// rarely read again (watch history, superseded task records) and the server's memory grows
/// with its write volume up to the ceiling, while the kernel's page cache holds the file
/// anyway. The B-tree's branch pages, what every lookup reads, fit many times over.
/// Measured (BENCHMARKS.md, "Service throttle: the storm"): at 64 MiB a storm of failing
/// services grew the server's RSS 1.5× within two minutes; 10,000 tasks on 200 agents reach
/// RUNNING as fast with a few MiB as with 64 MiB, for ~10 % more server CPU and 65 MiB less
/// peak RSS. `BERTH_STORE_CACHE_BYTES` sets another ceiling (README): reads of records that
/// fell out of the cache cost CPU (DescribeTasks ~1.3× server CPU per call at 2 MiB against
/// 64 MiB, "After issue 15").
const CACHE_BYTES: usize = 2 << 20;
const FORMAT_VERSION: u64 = 1;
/// The most transactions one group commit applies, and the most key and value bytes (a group
/// always takes at least one transaction): bounds on the write transaction's size and on how
/// long the callers in a group wait for the slowest of them.
const MAX_GROUP_TXNS: usize = 256;
const MAX_GROUP_BYTES: usize = 8 << 20;

/// (prefix, after, sender): `after` can be ahead of the current revision.
type WatcherList = Vec<(String, Revision, UnboundedSender<WatchEvent>)>;

/// The durable `Store`. Open it once per process and share it (`Arc`); every `txn` waits for
/// an fsync, so async callers should run it on a blocking thread.
pub struct RedbStore {
    db: Database,
    /// How many revisions of changelog automatic compaction keeps.
    history: u64,
    /// The commit lock. Every group's write transaction runs, commits and notifies watchers
    /// while holding it, and `watch` replays history and registers while holding it, so a
    /// watcher sees each commit exactly once: either in its replay or live, in revision order.
    /// A std Mutex is fine: it is held across fsync but never across an `.await`.
    watchers: Mutex<WatcherList>,
    /// Transactions waiting for a group commit. Lock order: this may be taken while holding the
    /// commit lock, never the other way round.
    queue: Mutex<CommitQueue>,
    txns: AtomicU64,
    commits: AtomicU64,
}

/// Counters of `RedbStore::txn` since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// `txn` calls answered: committed, conflicted or failed.
    pub txns: u64,
    /// redb write transactions committed for them, one fsync each (`compact` not counted).
    pub commits: u64,
}

#[derive(Default)]
struct CommitQueue {
    /// In arrival order, which is the order a group applies them in.
    pending: VecDeque<Pending>,
    /// A leader is at work or has been told to lead. Whenever `pending` is not empty this is
    /// true, so every queued transaction has a leader coming for it.
    leading: bool,
}

/// One caller's transaction, owned: the leader applying it runs on another thread.
struct Pending {
    compares: Vec<Compare>,
    ops: Vec<Op>,
    reply: Sender<Reply>,
}

impl Pending {
    fn bytes(&self) -> usize {
        let ops: usize = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => key.len() + value.len(),
                Op::Delete { key } => key.len(),
            })
            .sum();
        ops + self.compares.iter().map(|c| c.key().len()).sum::<usize>()
    }
}

enum Reply {
    Done(Result<TxnOutcome, StoreError>),
    /// The previous leader has finished and this transaction is now first in the queue: lead
    /// the next group (which includes it).
    Lead,
}

/// What applying one transaction inside a group's write transaction produced.
type Applied = Option<(Revision, Vec<WatchEvent>)>;

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
            .set_cache_size(
                std::env::var("BERTH_STORE_CACHE_BYTES")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(CACHE_BYTES),
            )
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
            queue: Mutex::new(CommitQueue::default()),
            txns: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        })
    }

    /// How many transactions were answered and how many fsynced commits that took: with
    /// concurrent callers, group commit makes the second smaller than the first.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            txns: self.txns.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
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

    fn lock_queue(&self) -> MutexGuard<'_, CommitQueue> {
        // Followers block on their replies, never on this lock, so a panic cannot leave the
        // queue half-edited in a way that matters.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leads one group: under the commit lock, takes the queued transactions (its own is the
    /// first), applies and commits them with one fsync, publishes their events in revision
    /// order, and only then answers each caller. Leadership passes on when this returns or
    /// unwinds.
    fn lead_group(&self) {
        let _leadership = Leadership(self);
        let mut watchers = self.lock_watchers();
        // Taken under the commit lock, so that everything queued while it was busy joins.
        let mut group = self.take_group();
        let mut failed = Vec::new();
        let applied = self.apply_group(&mut group, &mut failed);
        let answers: Vec<Result<TxnOutcome, StoreError>> = match applied {
            Ok(applied) => {
                for (rev, events) in applied.iter().flatten() {
                    publish(&mut watchers, *rev, events);
                }
                applied
                    .into_iter()
                    .map(|a| {
                        Ok(a.map_or(TxnOutcome::Conflict, |(rev, _)| TxnOutcome::Committed(rev)))
                    })
                    .collect()
            }
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        };
        drop(watchers);
        self.txns
            .fetch_add((group.len() + failed.len()) as u64, Ordering::Relaxed);
        // A send fails only if its caller is gone, and a caller waits for its answer.
        for (pending, answer) in group.into_iter().zip(answers) {
            let _ = pending.reply.send(Reply::Done(answer));
        }
        for (pending, e) in failed {
            let _ = pending.reply.send(Reply::Done(Err(e)));
        }
    }

    /// Dequeues the next group, in arrival order, within the group limits.
    fn take_group(&self) -> Vec<Pending> {
        let mut queue = self.lock_queue();
        let (mut group, mut bytes) = (Vec::new(), 0);
        while let Some(next) = queue.pending.front() {
            let size = next.bytes();
            if !group.is_empty()
                && (group.len() == MAX_GROUP_TXNS || bytes + size > MAX_GROUP_BYTES)
            {
                break;
            }
            bytes += size;
            group.extend(queue.pending.pop_front());
        }
        group
    }

    /// Applies `group` in order in one write transaction, each seeing the writes of those
    /// before it, and commits it if any of them wrote. A transaction whose apply fails with a
    /// storage error moves to `failed` with its error and the write transaction is aborted;
    /// the rest are applied again from the start without it, so one bad transaction (say, a
    /// corrupt record it compares on) fails alone, as it would have on its own. Failing to
    /// begin or to commit fails the whole group: nothing in it was acknowledged.
    fn apply_group(
        &self,
        group: &mut Vec<Pending>,
        failed: &mut Vec<(Pending, StoreError)>,
    ) -> Result<Vec<Applied>, StoreError> {
        loop {
            let wtx = begin_write(&self.db)?;
            let mut applied = Vec::with_capacity(group.len());
            let mut error = None;
            for (i, pending) in group.iter().enumerate() {
                match self.apply_txn(&wtx, &pending.compares, &pending.ops) {
                    Ok(a) => applied.push(a),
                    Err(e) => {
                        error = Some((i, e));
                        break;
                    }
                }
            }
            if let Some((i, e)) = error {
                // Dropping the write transaction aborts it; an abort error changes nothing.
                let _ = wtx.abort();
                failed.push((group.remove(i), e));
                continue;
            }
            // Conflicts and read-only transactions change nothing, and need no fsync.
            let wrote = group
                .iter()
                .zip(&applied)
                .any(|(p, a)| a.is_some() && !p.ops.is_empty());
            if wrote {
                wtx.commit().map_err(store_err)?;
                self.commits.fetch_add(1, Ordering::Relaxed);
            } else {
                wtx.abort().map_err(store_err)?;
            }
            return Ok(applied);
        }
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
        let (reply, answer) = mpsc::channel();
        let mut lead = {
            let mut queue = self.lock_queue();
            queue.pending.push_back(Pending {
                compares: compares.to_vec(),
                ops: ops.to_vec(),
                reply,
            });
            // With no leader the queue was empty: this transaction is first and leads.
            !std::mem::replace(&mut queue.leading, true)
        };
        loop {
            if lead {
                // Answers this transaction too: a leader's group starts with its own.
                self.lead_group();
            }
            match answer.recv() {
                Ok(Reply::Done(outcome)) => return outcome,
                Ok(Reply::Lead) => lead = true,
                Err(_) => {
                    return Err(StoreError::Io(
                        "the group commit leader panicked before answering".into(),
                    ));
                }
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
        Ok(Watcher::new(rx))
    }

    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        let _commit_lock = self.lock_watchers();
        let wtx = begin_write(&self.db)?;
        compact_in(&wtx, keep_after)?;
        wtx.commit().map_err(store_err)
    }
}

/// Hands leadership to the first queued transaction, or, with none, stands the leader down.
/// A guard, so that a leader that panics does not strand the queue.
struct Leadership<'a>(&'a RedbStore);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock_queue();
        while let Some(next) = queue.pending.front() {
            if next.reply.send(Reply::Lead).is_ok() {
                return;
            }
            queue.pending.pop_front();
        }
        queue.leading = false;
    }
}

/// Sends a committed revision's events to the watchers whose prefix they fall under, dropping
/// watchers whose receiver is gone. Called under the commit lock, in revision order.
fn publish(watchers: &mut WatcherList, rev: Revision, events: &[WatchEvent]) {
    watchers.retain(|(prefix, after, tx)| {
        !tx.is_closed()
            && (rev <= *after
                || events
                    .iter()
                    .filter(|e| e.kv.key.starts_with(prefix.as_str()))
                    .all(|e| tx.send(e.clone()).is_ok()))
    });
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
    use std::time::{Duration, Instant};

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

    fn open() -> (RedbStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("berth.redb")).unwrap();
        (store, dir)
    }

    /// Waits until `n` transactions are queued; a deadline only so that a bug fails, not hangs.
    fn wait_queued(store: &RedbStore, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while store.lock_queue().pending.len() < n {
            assert!(Instant::now() < deadline, "{n} transactions never queued");
            std::thread::yield_now();
        }
    }

    /// Runs each transaction on its own thread, queued one after another in the given order
    /// while the test holds the commit lock, so that they all land in one group in that order;
    /// returns their answers in the same order.
    fn run_as_one_group(
        store: &RedbStore,
        txns: &[(Vec<Compare>, Vec<Op>)],
    ) -> Vec<Result<TxnOutcome, StoreError>> {
        let commit_lock = store.lock_watchers();
        std::thread::scope(|scope| {
            let callers: Vec<_> = txns
                .iter()
                .enumerate()
                .map(|(i, (compares, ops))| {
                    let caller = scope.spawn(move || store.txn(compares, ops));
                    wait_queued(store, i + 1);
                    caller
                })
                .collect();
            drop(commit_lock);
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        })
    }

    fn outcomes(answers: Vec<Result<TxnOutcome, StoreError>>) -> Vec<TxnOutcome> {
        answers.into_iter().map(Result::unwrap).collect()
    }

    #[test]
    fn a_group_commits_once_with_one_revision_per_txn_in_queue_order() {
        let (store, _dir) = open();
        let mut watcher = store.watch("g/", 0).unwrap();
        let txns: Vec<_> = (0..16)
            .map(|i| (Vec::new(), vec![Op::put(format!("g/{i:02}"), vec![i])]))
            .collect();
        let got = outcomes(run_as_one_group(&store, &txns));
        let expected: Vec<_> = (1..=16).map(TxnOutcome::Committed).collect();
        assert_eq!(got, expected);
        assert_eq!(
            store.commit_stats(),
            CommitStats {
                txns: 16,
                commits: 1
            }
        );
        let events: Vec<_> = std::iter::from_fn(|| watcher.try_recv().ok()).collect();
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.kv.key.clone(), e.kv.mod_revision))
            .collect();
        let expected: Vec<_> = (0..16u64).map(|i| (format!("g/{i:02}"), i + 1)).collect();
        assert_eq!(seen, expected, "each event once, in revision order");
        // Each revision has its own changelog entry: a watch from the middle replays the rest.
        let mut from_8 = store.watch("g/", 8).unwrap();
        let replayed: Vec<_> = std::iter::from_fn(|| from_8.try_recv().ok())
            .map(|e| e.kv.mod_revision)
            .collect();
        assert_eq!(replayed, (9..=16).collect::<Vec<_>>());
    }

    #[test]
    fn txns_in_a_group_see_the_writes_of_those_before_them() {
        let (store, _dir) = open();
        let absent = |k: &str| vec![Compare::CreateRevision(k.into(), 0)];
        let txns = [
            (absent("k"), vec![Op::put("k", "first")]),
            // Also creates "k": the first already has, in the same write transaction.
            (absent("k"), vec![Op::put("k", "second")]),
            // Compares on the revision the first got.
            (
                vec![Compare::ModRevision("k".into(), 1)],
                vec![Op::put("k", "third")],
            ),
            // Read-only: holds at the third's revision and commits nothing new.
            (vec![Compare::ModRevision("k".into(), 2)], Vec::new()),
            (Vec::new(), vec![Op::delete("k")]),
            (absent("k"), vec![Op::put("k", "again")]),
        ];
        let got = outcomes(run_as_one_group(&store, &txns));
        use TxnOutcome::{Committed, Conflict};
        assert_eq!(
            got,
            [
                Committed(1),
                Conflict,
                Committed(2),
                Committed(2),
                Committed(3),
                Committed(4)
            ]
        );
        let kv = store.get("k").unwrap().unwrap();
        assert_eq!(
            (kv.value.as_slice(), kv.create_revision),
            (&b"again"[..], 4)
        );
        assert_eq!(store.commit_stats().commits, 1);

        // A group that only conflicts or reads writes nothing and needs no commit.
        let txns = [
            (absent("k"), vec![Op::put("k", "x")]),
            (vec![Compare::ModRevision("k".into(), 4)], Vec::new()),
        ];
        let got = outcomes(run_as_one_group(&store, &txns));
        assert_eq!(got, [Conflict, Committed(4)]);
        assert_eq!(
            store.commit_stats(),
            CommitStats {
                txns: 8,
                commits: 1
            }
        );
    }

    #[test]
    fn a_txn_failing_with_a_storage_error_fails_alone() {
        let (store, _dir) = open();
        // A record too short to decode: comparing on it is a storage error.
        let wtx = store.db.begin_write().unwrap();
        wtx.open_table(KV)
            .unwrap()
            .insert("bad", &[1u8, 2, 3][..])
            .unwrap();
        wtx.commit().unwrap();
        let txns = [
            (Vec::new(), vec![Op::put("a", "1")]),
            (
                vec![Compare::ModRevision("bad".into(), 0)],
                vec![Op::put("c", "never")],
            ),
            (Vec::new(), vec![Op::put("b", "2")]),
        ];
        let got = run_as_one_group(&store, &txns);
        assert!(matches!(got[0], Ok(TxnOutcome::Committed(1))), "{got:?}");
        assert!(matches!(got[1], Err(StoreError::Corrupt(_))), "{got:?}");
        assert!(matches!(got[2], Ok(TxnOutcome::Committed(2))), "{got:?}");
        assert!(store.get("c").unwrap().is_none());
        assert_eq!(store.get("b").unwrap().unwrap().mod_revision, 2);
        assert_eq!(store.current_revision().unwrap(), 2);
        assert_eq!(
            store.commit_stats(),
            CommitStats {
                txns: 3,
                commits: 1
            }
        );
    }

    #[test]
    fn automatic_compaction_runs_inside_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_with_history(&dir.path().join("berth.redb"), 5).unwrap();
        let txns: Vec<_> = (0..20)
            .map(|i| (Vec::new(), vec![Op::put("h", vec![i])]))
            .collect();
        run_as_one_group(&store, &txns);
        assert_eq!(store.commit_stats().commits, 1);
        let compacted = store.compacted_revision().unwrap();
        assert!((20 - 5 - 1..=20 - 5).contains(&compacted), "{compacted}");
        let mut w = store.watch("h", compacted).unwrap();
        let revs: Vec<_> = std::iter::from_fn(|| w.try_recv().ok())
            .map(|e| e.kv.mod_revision)
            .collect();
        assert_eq!(revs, (compacted + 1..=20).collect::<Vec<_>>());
    }
}
