//! The versioned key-value store every piece of Berth state lives in.
//!
//! The interface is deliberately narrow and shaped like etcd's (one global revision, per-key
//! create/mod revisions, compare-and-swap transactions, range by prefix, watch from a
//! revision) so that a distributed engine can back it later without touching callers.

mod copy;
mod etcd;
mod fence;
mod mem;
pub mod page_token;
mod record;
mod redb_store;
#[cfg(feature = "testing")]
pub mod testing;
mod update;

pub use copy::{CopyError, copy_all};
pub use etcd::{EtcdConfig, EtcdStore, EtcdTls, LeaseId};
pub use fence::FencedStore;
pub use mem::MemStore;
pub use record::{decode, encode, now_epoch};
pub use redb_store::{CommitStats, RedbStore};
pub use update::{Change, Update, update, upsert};

/// A global, monotonically increasing revision. Every committed write transaction bumps it
/// by one. Revision 0 means "the key does not exist" in comparisons.
pub type Revision = u64;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Io(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// `watch(_, requested)` asked for history that compaction removed; `oldest` is the
    /// smallest `after` a watch can start from now.
    #[error("watch revision {requested} has been compacted (oldest kept is {oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// A controller's write refused because its replica no longer leads (another replica
    /// was elected since): it must stop acting.
    #[error("this replica no longer leads (leader key {key} is another term's)")]
    Fenced { key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// A condition checked atomically before a transaction's operations are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod revision equals the given one; `0` means the key must not exist.
    ModRevision(String, Revision),
    /// The key's create revision equals the given one (etcd's `CreateRevision`): the key is
    /// the same incarnation, however often it was rewritten since; `0` means absent.
    CreateRevision(String, Revision),
}

impl Compare {
    pub fn key(&self) -> &str {
        match self {
            Compare::ModRevision(key, _) | Compare::CreateRevision(key, _) => key,
        }
    }

    /// Whether the comparison holds for the key's current (create, mod) revisions, `None`
    /// when the key is absent.
    pub fn holds(&self, current: Option<(Revision, Revision)>) -> bool {
        let (create, modified) = current.unwrap_or((0, 0));
        match self {
            Compare::ModRevision(_, expected) => modified == *expected,
            Compare::CreateRevision(_, expected) => create == *expected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete { key: key.into() }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// All comparisons held; the operations were committed durably at this revision.
    Committed(Revision),
    /// A comparison failed; nothing was written.
    Conflict,
}

impl TxnOutcome {
    pub fn is_committed(self) -> bool {
        matches!(self, TxnOutcome::Committed(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watcher. For deletes, `kv.value` is empty, `kv.mod_revision` is
/// the revision of the delete and `kv.create_revision` is not specified (etcd sends none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

/// Receives the events of every committed transaction touching the watched prefix, in
/// revision order. Dropping it ends the watch (and whatever the engine holds open for it: a
/// remote engine's stream is closed). The channel closing while the watcher is held means
/// the engine could not follow any longer (a remote stream lost and history compacted
/// meanwhile): the holder re-reads, as after `Compacted`.
pub struct Watcher {
    events: tokio::sync::mpsc::UnboundedReceiver<WatchEvent>,
    _held: Option<Box<dyn Send + Sync>>,
}

impl Watcher {
    pub fn new(events: tokio::sync::mpsc::UnboundedReceiver<WatchEvent>) -> Watcher {
        Watcher {
            events,
            _held: None,
        }
    }

    /// A watcher that keeps `held` alive as long as it lives (its drop ends the stream).
    pub fn holding(
        events: tokio::sync::mpsc::UnboundedReceiver<WatchEvent>,
        held: Box<dyn Send + Sync>,
    ) -> Watcher {
        Watcher {
            events,
            _held: Some(held),
        }
    }

    /// The next event; `None` once the watch has ended.
    pub async fn recv(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }

    pub fn try_recv(&mut self) -> Result<WatchEvent, tokio::sync::mpsc::error::TryRecvError> {
        self.events.try_recv()
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

/// Visits the keys under `prefix` (strictly after `after`, when given) in key order,
/// reading the store a chunk at a time so a large keyspace is never held in memory at
/// once; `visit` returns `false` to stop early.
pub fn scan<E: From<StoreError>>(
    store: &dyn Store,
    prefix: &str,
    after: Option<String>,
    mut visit: impl FnMut(&KeyValue) -> Result<bool, E>,
) -> Result<(), E> {
    const CHUNK: usize = 256;
    let mut cursor = after;
    loop {
        let chunk = store.range(prefix, cursor.as_deref(), CHUNK)?;
        for kv in &chunk {
            if !visit(kv)? {
                return Ok(());
            }
        }
        match chunk.last() {
            Some(kv) if chunk.len() == CHUNK => cursor = Some(kv.key.clone()),
            _ => return Ok(()),
        }
    }
}

/// The store interface. Methods are synchronous: implementations commit with fsync, which
/// callers on an async runtime should treat as blocking I/O.
pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, in key order, strictly after `start_after` when given,
    /// at most `limit` of them (0 = no limit).
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;

    /// Atomically: if every comparison holds, apply every operation and commit durably.
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError>;

    /// The revision of the last committed transaction.
    fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Events for keys under `prefix` with revision > `after`, first replaying history, then
    /// live. Fails with `Compacted` when history that old is no longer kept.
    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError>;

    /// Forget watch history up to and including `keep_after` (clamped to the current
    /// revision): afterwards `watch(_, after)` with `after < keep_after` fails with
    /// `Compacted`. Keys and values are untouched; compacting backwards is a no-op. The
    /// default does nothing, for stores that keep all history or bound it themselves.
    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        let _ = keep_after;
        Ok(())
    }

    /// Unconditional put.
    fn put(&self, key: &str, value: &[u8]) -> Result<Revision, StoreError> {
        match self.txn(&[], &[Op::put(key, value)])? {
            TxnOutcome::Committed(rev) => Ok(rev),
            TxnOutcome::Conflict => {
                unreachable!("a transaction without comparisons cannot conflict")
            }
        }
    }

    /// Put only if the key's mod revision is `expected` (0: only if absent).
    fn put_if_revision(
        &self,
        key: &str,
        value: &[u8],
        expected: Revision,
    ) -> Result<TxnOutcome, StoreError> {
        self.txn(
            &[Compare::ModRevision(key.to_string(), expected)],
            &[Op::put(key, value)],
        )
    }

    /// Delete a key; deleting an absent key commits nothing and returns the current revision.
    fn delete(&self, key: &str) -> Result<Revision, StoreError> {
        if self.get(key)?.is_none() {
            return self.current_revision();
        }
        match self.txn(&[], &[Op::delete(key)])? {
            TxnOutcome::Committed(rev) => Ok(rev),
            TxnOutcome::Conflict => {
                unreachable!("a transaction without comparisons cannot conflict")
            }
        }
    }
}
