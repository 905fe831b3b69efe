//! The caller's identity policies, parsed, kept between requests: authorizing a request
//! of a user or a role session would otherwise read its record, every attached managed
//! policy, and parse every document, each time.
//!
//! Staleness is ruled out by a per-account IAM generation: the key
//! `iam/{account}/generation`, rewritten (no compare, so IAM writers never conflict on it)
//! in the same transaction as every write to the account's users, roles or managed
//! policies — by [`Generations`], the store IAM writes through, so no writer can forget it.
//! Its `mod_revision` is the generation. A cached set is stamped with the generation read
//! *before* its records were read and is used only while the key still has that revision:
//! one `get` per request instead of the records' (1 + attached policies) `get`s and parses.
//! Because the store's reads are linearizable (redb: one process; etcd: quorum reads), a
//! change committed through any replica applies to every request that starts after the
//! change was acknowledged, on every replica — no TTL, no watch lag.
//!
//! A process that is its store's only writer (the embedded store; `Iam::sole_writer`) need
//! not read the key: its own count of IAM writes, bumped after each, is the generation, so
//! a cached set is checked in memory and the request path decides on its async worker
//! without a trip to the blocking pool.
//!
//! Memory is bounded: at most [`MAX_SETS`] principals and [`MAX_DOCUMENTS`] parsed
//! documents are kept; a full map is emptied (entries are cheap to make again, and a
//! principal's set shares its parsed documents with every other set that holds them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use berth_store::{Compare, KeyValue, Op, Revision, Store, StoreError, TxnOutcome, Watcher};

use crate::Principal;
use crate::policy::{Policy, PolicyError, PolicyType};

/// Principals whose parsed identity policies are kept, at most.
pub const MAX_SETS: usize = 4096;
/// Parsed documents kept (by their text), at most.
pub const MAX_DOCUMENTS: usize = 1024;

/// IAM record writes (users, roles, policies, access keys; not sessions) committed (or
/// attempted) by this process, through any `Iam`: the
/// generation of a process that is its store's only writer (the embedded store, which one
/// process holds locked), read from memory instead of the store. Bumped *after* the
/// transaction, so a reader that saw the old count may hold old records (and is refused at
/// its next call) but one that saw the new count reads the new records.
static LOCAL_WRITES: AtomicU64 = AtomicU64::new(0);

/// This process's IAM write count (see [`LOCAL_WRITES`]).
pub(crate) fn local_generation() -> Revision {
    LOCAL_WRITES.load(Ordering::SeqCst)
}

/// The key whose `mod_revision` is `account`'s IAM generation.
pub(crate) fn generation_key(account: &str) -> String {
    format!("iam/{account}/generation")
}

/// The account whose policies a key's record can change: its users, roles (and groups)
/// and managed policies. Access keys and sessions change no one's policies.
fn account_of(key: &str) -> Option<&str> {
    let (account, rest) = key.strip_prefix("iam/")?.split_once('/')?;
    ["users/", "roles/", "groups/", "policies/"]
        .iter()
        .any(|kind| rest.starts_with(kind))
        .then_some(account)
}

/// The store IAM writes through: a transaction that puts or deletes a user, role or
/// managed policy also puts its account's generation key (once per account). Reads,
/// watches and everything else pass through unchanged.
pub(crate) struct Generations {
    inner: Arc<dyn Store>,
}

impl Generations {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Generations {
        Generations { inner }
    }
}

impl Store for Generations {
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
        // Any IAM record but sessions (which no cache holds) counts as a local write.
        let counted = ops
            .iter()
            .any(|op| op.key().starts_with("iam/") && !op.key().starts_with("iam/sessions/"));
        let mut accounts: Vec<&str> = ops.iter().filter_map(|op| account_of(op.key())).collect();
        if accounts.is_empty() {
            let outcome = self.inner.txn(compares, ops);
            if counted {
                LOCAL_WRITES.fetch_add(1, Ordering::SeqCst);
            }
            return outcome;
        }
        accounts.sort_unstable();
        accounts.dedup();
        let mut all = ops.to_vec();
        all.extend(
            accounts
                .into_iter()
                .map(|account| Op::put(generation_key(account), b"{}".to_vec())),
        );
        let outcome = self.inner.txn(compares, &all);
        // Whatever the outcome (an error may hide a commit).
        LOCAL_WRITES.fetch_add(1, Ordering::SeqCst);
        outcome
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

/// Whose policies a cached set is: a user or a role, by account, lowercased name (IAM
/// names are case-insensitive) and unique id (a user made again under the same name is
/// another user).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Holder {
    pub account: String,
    pub role: bool,
    pub name: String,
    pub id: String,
}

/// A principal's parsed identity policies as of an IAM generation.
struct CachedSet {
    generation: Revision,
    policies: Arc<[Arc<Policy>]>,
}

/// Parsed identity policies by principal, and parsed documents by text.
#[derive(Default)]
pub(crate) struct PolicyCache {
    sets: RwLock<HashMap<Holder, CachedSet>>,
    /// Content-addressed: a document's text always compiles to the same policy, so an
    /// entry never needs invalidating.
    documents: RwLock<HashMap<PolicyType, ByText>>,
    /// SigV4 lookups by access key id (sole writer only): the secret and owner, or that the
    /// key is unknown or inactive, as of a local generation.
    signing_keys: RwLock<HashMap<String, (Revision, SigningKey)>>,
}

/// Parsed policies by their document's text.
type ByText = HashMap<Box<str>, Arc<Policy>>;

/// What `Iam::signing_key` answers: an active key's secret and owner, or `None`.
pub(crate) type SigningKey = Option<(String, Principal)>;

impl PolicyCache {
    /// The set kept for `holder` if it was made at `generation`.
    pub(crate) fn set(&self, holder: &Holder, generation: Revision) -> Option<Arc<[Arc<Policy>]>> {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
        sets.get(holder)
            .filter(|s| s.generation == generation)
            .map(|s| s.policies.clone())
    }

    pub(crate) fn keep_set(
        &self,
        holder: Holder,
        generation: Revision,
        policies: Arc<[Arc<Policy>]>,
    ) {
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        if sets.len() >= MAX_SETS && !sets.contains_key(&holder) {
            sets.clear();
        }
        // A request that read an older generation may finish after one that read a newer
        // one: keep the newer. (An older entry would only be refused and remade.)
        if sets
            .get(&holder)
            .is_none_or(|kept| kept.generation <= generation)
        {
            sets.insert(
                holder,
                CachedSet {
                    generation,
                    policies,
                },
            );
        }
    }

    /// `document` compiled as a policy of `kind`, parsed once per distinct text.
    pub(crate) fn parsed(
        &self,
        document: &str,
        kind: PolicyType,
    ) -> Result<Arc<Policy>, PolicyError> {
        if let Some(policy) = self
            .documents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind)
            .and_then(|of_kind| of_kind.get(document))
        {
            return Ok(policy.clone());
        }
        let policy = Arc::new(Policy::parse(document, kind)?);
        let mut documents = self.documents.write().unwrap_or_else(|e| e.into_inner());
        if documents.values().map(HashMap::len).sum::<usize>() >= MAX_DOCUMENTS {
            documents.clear();
        }
        documents
            .entry(kind)
            .or_default()
            .insert(document.into(), policy.clone());
        Ok(policy)
    }

    /// The SigV4 lookup kept for `id`, if made at `generation`.
    pub(crate) fn signing_key(&self, id: &str, generation: Revision) -> Option<SigningKey> {
        let keys = self.signing_keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(id)
            .filter(|(made, _)| *made == generation)
            .map(|(_, found)| found.clone())
    }

    pub(crate) fn keep_signing_key(&self, id: &str, generation: Revision, found: SigningKey) {
        let mut keys = self.signing_keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_SETS && !keys.contains_key(id) {
            keys.clear();
        }
        if keys.get(id).is_none_or(|(made, _)| *made <= generation) {
            keys.insert(id.to_string(), (generation, found));
        }
    }

    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (
            self.sets.read().unwrap().len(),
            self.documents
                .read()
                .unwrap()
                .values()
                .map(HashMap::len)
                .sum(),
        )
    }
}

#[cfg(test)]
mod tests;
