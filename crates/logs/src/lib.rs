//! CloudWatch Logs for Berth: log groups and streams, durable and compact event storage
//! indexed by stream and time, filter patterns, retention and live tail.
//!
//! Groups and streams (names, creation times, retention, tags) are records in Berth's store
//! under `logs/{account}/{region}/`; a stream's events live in their own directory of
//! segment files (`stream`, `segment`) under the logs root, named by the stream's id, so
//! that deleting a group or a stream is one store transaction followed by removing files
//! (directories no record names are removed at start).

pub mod filter_metrics;
mod journal;
pub mod metric_filters;
pub mod pattern;
pub mod query_definitions;
pub mod resource_policies;
pub mod segment;
pub mod stream;
mod tokens;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::{Compare, KeyValue, Op, Store, StoreError, TxnOutcome};
use serde::{Deserialize, Serialize};

pub use metric_filters::{
    DescribeMetricFilters, MetricFilter, MetricFilterCounts, MetricFilterMatch,
    MetricTransformation,
};
pub use pattern::{FilterPattern, PatternError};
pub use query_definitions::{PutQueryDefinition, QueryDefinition};
pub use resource_policies::{PolicyScope, ResourcePolicy};
pub use segment::InputEvent;
pub use stream::{StoredEvent, StreamStats, StreamStore};
use validate::check_tags;
pub use validate::{check_group_name, check_kms_key, check_stream_name};

/// Retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_EVENT_BYTES: usize = 1_048_576 - EVENT_OVERHEAD;
pub const MAX_TAGS: usize = 50;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidOperation(String),
    #[error("The given batch of log events has already been accepted.")]
    DataAlreadyAccepted,
    #[error("log storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("corrupt logs record {0}")]
    Corrupt(String),
}

pub type Result<T, E = LogsError> = std::result::Result<T, E>;

fn group_missing() -> LogsError {
    LogsError::ResourceNotFound("The specified log group does not exist.".into())
}

fn stream_missing() -> LogsError {
    LogsError::ResourceNotFound("The specified log stream does not exist.".into())
}

/// Whose resources: an account in a region, as the request's signature names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogScope {
    pub account: String,
    pub region: String,
}

impl LogScope {
    fn prefix(&self) -> String {
        format!("logs/{}/{}/", self.account, self.region)
    }
    fn group_key(&self, group: &str) -> String {
        format!("{}group/{group}", self.prefix())
    }
    fn streams_prefix(&self, group: &str) -> String {
        // Group names cannot hold '|', so a group's streams are exactly this prefix.
        format!("{}stream/{group}|", self.prefix())
    }
    fn stream_key(&self, group: &str, stream: &str) -> String {
        format!("{}{stream}", self.streams_prefix(group))
    }
    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME` (without the `:*` DescribeLogGroups adds).
    pub fn group_arn(&self, group: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{group}",
            self.region, self.account
        )
    }
    pub fn stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.group_arn(group))
    }
    /// The group a name or ARN (`logGroupIdentifier`) names.
    pub fn group_from_identifier(&self, identifier: &str) -> Result<String> {
        let Some(rest) = identifier.strip_prefix("arn:") else {
            return Ok(identifier.to_string());
        };
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        match parts.as_slice() {
            [_, "logs", region, account, name] | [_, "logs", region, account, name, ..]
                if name.starts_with("log-group") =>
            {
                if *region != self.region || *account != self.account {
                    return Err(group_missing());
                }
                let name = rest
                    .splitn(5, ':')
                    .nth(4)
                    .and_then(|n| n.strip_prefix("log-group:"))
                    .unwrap_or("");
                let name = name.strip_suffix(":*").unwrap_or(name);
                Ok(name.to_string())
            }
            _ => Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '{identifier}' at 'logGroupIdentifier' failed to satisfy constraint: Member must be a log group name or ARN"
            ))),
        }
    }
}

/// A log group as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i64>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(default = "standard")]
    pub log_group_class: String,
    /// The KMS key (ARN) the group's data is said to be encrypted with. Berth has no KMS:
    /// the ARN is checked for its shape and region, kept and shown, never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

fn standard() -> String {
    "STANDARD".into()
}

impl LogGroup {
    /// Events older than this (ms since the epoch) are expired, if the group has a policy.
    pub fn cutoff(&self, now: i64) -> i64 {
        self.retention_in_days
            .map_or(i64::MIN, |days| now - days * DAY_MS)
    }
}

/// A log stream as stored: its events live in the directory named by `id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct StreamRecord {
    name: String,
    creation_time: i64,
    id: String,
}

/// A stream as DescribeLogStreams shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    pub name: String,
    pub creation_time: i64,
    pub stats: StreamStats,
}

/// What PutLogEvents did with the events it did not store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
}

/// What a PutLogEvents stored: the events it refused, and the stream's sequence after the
/// batch (its count of events, the digits of PutLogEvents' `nextSequenceToken` and of
/// DescribeLogStreams' `uploadSequenceToken`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Put {
    pub rejected: Rejected,
    pub sequence: u64,
}

impl Rejected {
    pub fn any(&self) -> bool {
        self.too_new_start.is_some() || self.too_old_end.is_some() || self.expired_end.is_some()
    }
}

/// Events just stored, as live tail sessions receive them.
#[derive(Debug)]
pub struct Ingested {
    pub scope: LogScope,
    pub group: String,
    pub stream: String,
    pub ingestion: i64,
    pub events: Vec<InputEvent>,
}

/// GetLogEvents' question.
#[derive(Debug, Clone, Default)]
pub struct GetLogEvents {
    pub group: String,
    pub stream: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub next_token: Option<String>,
    pub limit: Option<usize>,
    pub start_from_head: bool,
}

#[derive(Debug, Clone)]
pub struct EventsPage {
    pub events: Vec<StoredEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

/// FilterLogEvents' question.
#[derive(Debug, Clone, Default)]
pub struct FilterLogEvents {
    pub group: String,
    pub stream_names: Option<Vec<String>>,
    pub stream_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredEvent {
    pub stream: String,
    pub ordinal: u64,
    pub timestamp: i64,
    pub ingestion: i64,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct FilteredPage {
    pub events: Vec<FilteredEvent>,
    pub next_token: Option<String>,
}

/// How DescribeLogStreams orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    LogStreamName,
    LastEventTime,
}

type StreamSlot = Arc<Mutex<Option<Arc<StreamStore>>>>;

/// Streams kept open (each written one holds its segment's file open) before idle ones
/// are closed; they reopen from their files when next used.
const MAX_OPEN_STREAMS: usize = 1024;

/// Over the limit, closes streams no request (and no sealing) is using, down to 3/4 of it.
fn evict_idle(open: &mut HashMap<String, StreamSlot>) {
    if open.len() < MAX_OPEN_STREAMS {
        return;
    }
    let mut excess = open.len() - MAX_OPEN_STREAMS * 3 / 4;
    open.retain(|_, slot| {
        if excess == 0 || Arc::strong_count(slot) > 1 {
            return true;
        }
        let in_use = match slot.try_lock() {
            Ok(stream) => stream.as_ref().is_some_and(|s| Arc::strong_count(s) > 1),
            Err(_) => true,
        };
        if !in_use {
            excess -= 1;
        }
        in_use
    });
}

pub struct Logs {
    store: Arc<dyn Store>,
    root: PathBuf,
    /// Streams in use, by id. A slot is filled once, under its own lock, so two requests
    /// never open one stream's files twice (opening cuts torn tails and removes leftovers).
    open: Mutex<HashMap<String, StreamSlot>>,
    tail: tokio::sync::broadcast::Sender<Arc<Ingested>>,
    /// Streams with a rolled segment to seal, for the sealing thread.
    sealer: Mutex<std::sync::mpsc::Sender<Arc<StreamStore>>>,
    /// On a shared store (replicas): events are journal entries and sealed runs in the
    /// store (`journal`), not local segment files.
    journal: Option<Arc<journal::Journal>>,
    /// Where metric filters' metrics go, once the server sets it (`filter_metrics.rs`).
    metric_sink: std::sync::OnceLock<Arc<dyn filter_metrics::MetricSink>>,
}

/// The sealing thread: compresses rolled segments off the request path, one stream at a
/// time, until the service is dropped.
fn run_sealer(queue: std::sync::mpsc::Receiver<Arc<StreamStore>>) {
    while let Ok(stream) = queue.recv() {
        if let Err(e) = stream.seal_pending() {
            tracing::warn!(error = %e, "sealing a log segment failed (kept uncompressed)");
        }
    }
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value).map_err(|e| LogsError::Corrupt(format!("{}: {e}", kv.key)))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn committed(outcome: TxnOutcome) -> bool {
    matches!(outcome, TxnOutcome::Committed(_))
}

/// `berth_store::scan` with this crate's error.
fn scan(
    store: &dyn Store,
    prefix: &str,
    after: Option<String>,
    visit: impl FnMut(&KeyValue) -> Result<bool>,
) -> Result<()> {
    berth_store::scan(store, prefix, after, visit)
}

impl Logs {
    /// The logs service over `store`, keeping event data under `root`.
    pub fn open(store: Arc<dyn Store>, root: &Path) -> Result<Logs> {
        Logs::open_with(store, root, false)
    }

    /// The logs service over a store that replicas share (etcd): events are kept in the
    /// store itself (`journal`), so every replica reads them and they outlive any one.
    pub fn open_shared(store: Arc<dyn Store>, root: &Path) -> Result<Logs> {
        Logs::open_with(store, root, true)
    }

    fn open_with(store: Arc<dyn Store>, root: &Path, shared: bool) -> Result<Logs> {
        std::fs::create_dir_all(root)?;
        let (sealer, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("log-sealer".into())
            .spawn(move || run_sealer(queue))?;
        let logs = Logs {
            store: store.clone(),
            root: root.to_path_buf(),
            open: Mutex::default(),
            tail: tokio::sync::broadcast::channel(1024).0,
            sealer: Mutex::new(sealer),
            journal: shared.then(|| Arc::new(journal::Journal::new(store.clone()))),
            metric_sink: std::sync::OnceLock::new(),
        };
        logs.remove_orphans()?;
        Ok(logs)
    }

    /// Metric filters emit their metrics into `sink` from now on (set once).
    pub fn set_metric_sink(&self, sink: Arc<dyn filter_metrics::MetricSink>) {
        let _ = self.metric_sink.set(sink);
    }

    /// Removes stream directories no stream record names (a crash between deleting the
    /// records and the files).
    fn remove_orphans(&self) -> Result<()> {
        let mut known = std::collections::HashSet::new();
        scan(self.store.as_ref(), "logs/", None, |kv| {
            if kv.key.contains("/stream/") {
                known.insert(decode::<StreamRecord>(kv)?.id);
            }
            Ok(true)
        })?;
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !known.contains(&name) && entry.file_type()?.is_dir() {
                tracing::info!(dir = %name, "removing the events of a deleted log stream");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// New live-tail subscription: every batch stored from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Ingested>> {
        self.tail.subscribe()
    }

    // ---- groups ----

    pub fn create_log_group(
        &self,
        scope: &LogScope,
        name: &str,
        tags: std::collections::BTreeMap<String, String>,
        class: Option<&str>,
        kms_key_id: Option<&str>,
    ) -> Result<LogGroup> {
        check_group_name(name)?;
        check_tags(&tags)?;
        if let Some(key) = kms_key_id {
            check_kms_key(scope, name, key)?;
        }
        let class = match class {
            None | Some("STANDARD") => "STANDARD",
            Some("INFREQUENT_ACCESS") => "INFREQUENT_ACCESS",
            Some(other) => {
                return Err(LogsError::InvalidParameter(format!(
                    "1 validation error detected: Value '{other}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [INFREQUENT_ACCESS, STANDARD]"
                )));
            }
        };
        let group = LogGroup {
            name: name.to_string(),
            creation_time: now_ms(),
            retention_in_days: None,
            tags,
            log_group_class: class.to_string(),
            kms_key_id: kms_key_id.map(str::to_string),
        };
        let key = scope.group_key(name);
        if !committed(self.store.put_if_revision(&key, &encode(&group), 0)?) {
            return Err(LogsError::ResourceAlreadyExists(
                "The specified log group already exists".into(),
            ));
        }
        Ok(group)
    }

    pub fn log_group(&self, scope: &LogScope, name: &str) -> Result<LogGroup> {
        Ok(self.group_with_revision(scope, name)?.0)
    }

    fn group_with_revision(&self, scope: &LogScope, name: &str) -> Result<(LogGroup, u64)> {
        // A name no group can have is refused as AWS refuses it, before any lookup.
        check_group_name(name)?;
        let kv = self
            .store
            .get(&scope.group_key(name))?
            .ok_or_else(group_missing)?;
        Ok((decode(&kv)?, kv.mod_revision))
    }

    /// Changes a group with `change` (retried if it changed meanwhile).
    fn update_group(
        &self,
        scope: &LogScope,
        name: &str,
        change: impl Fn(&mut LogGroup) -> Result<()>,
    ) -> Result<LogGroup> {
        loop {
            let (mut group, revision) = self.group_with_revision(scope, name)?;
            change(&mut group)?;
            if committed(self.store.put_if_revision(
                &scope.group_key(name),
                &encode(&group),
                revision,
            )?) {
                return Ok(group);
            }
        }
    }

    pub fn delete_log_group(&self, scope: &LogScope, name: &str) -> Result<()> {
        let (_, revision) = self.group_with_revision(scope, name)?;
        let streams = self.stream_records(scope, name)?;
        let mut ops = vec![Op::delete(scope.group_key(name))];
        ops.extend(
            streams
                .iter()
                .map(|s| Op::delete(scope.stream_key(name, &s.name))),
        );
        // Its metric filters, their counts and its resource policy go with it.
        ops.push(Op::delete(scope.resource_policy_key(name)));
        for prefix in [
            scope.metric_filters_prefix(name),
            scope.metric_counts_prefix(name),
        ] {
            scan(self.store.as_ref(), &prefix, None, |kv| {
                ops.push(Op::delete(kv.key.clone()));
                Ok(true)
            })?;
        }
        let compares = [Compare::ModRevision(scope.group_key(name), revision)];
        if !committed(self.store.txn(&compares, &ops)?) {
            return Err(LogsError::InvalidOperation(
                "The log group changed while it was being deleted; try again.".into(),
            ));
        }
        for s in streams {
            self.drop_stream_data(&s.id)?;
        }
        Ok(())
    }

    /// Groups in name order, after `after`, at most `limit`.
    pub fn describe_log_groups(
        &self,
        scope: &LogScope,
        name_prefix: Option<&str>,
        name_pattern: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LogGroup>, Option<String>)> {
        let base = format!("{}group/", scope.prefix());
        let prefix = format!("{base}{}", name_prefix.unwrap_or(""));
        let after = after
            .map(|t| berth_store::page_token::decode(t).ok_or_else(tokens::bad_token))
            .transpose()?;
        let mut out = Vec::new();
        let mut more = false;
        scan(
            self.store.as_ref(),
            &prefix,
            after.map(|a| format!("{base}{a}")),
            |kv| {
                let group: LogGroup = decode(kv)?;
                if name_pattern
                    .is_some_and(|p| !group.name.to_lowercase().contains(&p.to_lowercase()))
                {
                    return Ok(true);
                }
                if out.len() == limit {
                    more = true;
                    return Ok(false);
                }
                out.push(group);
                Ok(true)
            },
        )?;
        let token = more
            .then(|| out.last())
            .flatten()
            .map(|g: &LogGroup| berth_store::page_token::encode(&g.name));
        Ok((out, token))
    }

    pub fn put_retention_policy(&self, scope: &LogScope, name: &str, days: i64) -> Result<()> {
        if !RETENTION_DAYS.contains(&days) {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
            )));
        }
        let group = self.update_group(scope, name, |g| {
            g.retention_in_days = Some(days);
            Ok(())
        })?;
        self.expire_group(scope, &group)?;
        Ok(())
    }

    pub fn delete_retention_policy(&self, scope: &LogScope, name: &str) -> Result<()> {
        self.update_group(scope, name, |g| {
            g.retention_in_days = None;
            Ok(())
        })?;
        Ok(())
    }

    pub fn tag_log_group(
        &self,
        scope: &LogScope,
        name: &str,
        tags: std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        self.update_group(scope, name, |g| {
            let mut merged = g.tags.clone();
            merged.extend(tags.clone());
            check_tags(&merged)?;
            g.tags = merged;
            Ok(())
        })?;
        Ok(())
    }

    /// AssociateKmsKey.
    pub fn associate_kms_key(&self, scope: &LogScope, name: &str, key: &str) -> Result<()> {
        check_group_name(name)?;
        check_kms_key(scope, name, key)?;
        self.update_group(scope, name, |g| {
            g.kms_key_id = Some(key.to_string());
            Ok(())
        })?;
        Ok(())
    }

    /// DisassociateKmsKey.
    pub fn disassociate_kms_key(&self, scope: &LogScope, name: &str) -> Result<()> {
        self.update_group(scope, name, |g| {
            g.kms_key_id = None;
            Ok(())
        })?;
        Ok(())
    }

    pub fn untag_log_group(&self, scope: &LogScope, name: &str, keys: &[String]) -> Result<()> {
        self.update_group(scope, name, |g| {
            for k in keys {
                g.tags.remove(k);
            }
            Ok(())
        })?;
        Ok(())
    }

    // ---- streams ----

    pub fn create_log_stream(&self, scope: &LogScope, group: &str, name: &str) -> Result<()> {
        check_stream_name(name)?;
        let group_kv = self
            .store
            .get(&scope.group_key(group))?
            .ok_or_else(group_missing)?;
        let record = StreamRecord {
            name: name.to_string(),
            creation_time: now_ms(),
            id: uuid_like(),
        };
        let key = scope.stream_key(group, name);
        // The group must still be the same one when the stream is added.
        let compares = [
            Compare::ModRevision(key.clone(), 0),
            Compare::CreateRevision(scope.group_key(group), group_kv.create_revision),
        ];
        if committed(
            self.store
                .txn(&compares, &[Op::put(key.clone(), encode(&record))])?,
        ) {
            return Ok(());
        }
        if self.store.get(&key)?.is_some() {
            Err(LogsError::ResourceAlreadyExists(
                "The specified log stream already exists".into(),
            ))
        } else {
            Err(group_missing())
        }
    }

    pub fn delete_log_stream(&self, scope: &LogScope, group: &str, name: &str) -> Result<()> {
        self.log_group(scope, group)?;
        let record = self.stream_record(scope, group, name)?;
        self.store.delete(&scope.stream_key(group, name))?;
        self.drop_stream_data(&record.id)
    }

    fn drop_stream_data(&self, id: &str) -> Result<()> {
        if let Some(journal) = &self.journal {
            journal.drop_stream(self.store.as_ref(), id)?;
        }
        self.open.lock().unwrap().remove(id);
        match std::fs::remove_dir_all(self.root.join(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn stream_record(&self, scope: &LogScope, group: &str, name: &str) -> Result<StreamRecord> {
        Ok(self.stream_record_at(scope, group, name)?.0)
    }

    /// The stream's record and its create revision.
    fn stream_record_at(
        &self,
        scope: &LogScope,
        group: &str,
        name: &str,
    ) -> Result<(StreamRecord, u64)> {
        check_stream_name(name)?;
        let kv = self
            .store
            .get(&scope.stream_key(group, name))?
            .ok_or_else(stream_missing)?;
        Ok((decode(&kv)?, kv.create_revision))
    }

    fn stream_records(&self, scope: &LogScope, group: &str) -> Result<Vec<StreamRecord>> {
        let mut out = Vec::new();
        scan(
            self.store.as_ref(),
            &scope.streams_prefix(group),
            None,
            |kv| {
                out.push(decode(kv)?);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    fn stream_data(&self, id: &str) -> Result<Arc<StreamStore>> {
        let slot = {
            let mut open = self.open.lock().unwrap();
            if !open.contains_key(id) {
                evict_idle(&mut open);
            }
            open.entry(id.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap();
        if let Some(stream) = &*slot {
            return Ok(stream.clone());
        }
        let stream = Arc::new(StreamStore::open(&self.root.join(id))?);
        *slot = Some(stream.clone());
        drop(slot);
        self.seal_if_needed(&stream);
        Ok(stream)
    }

    fn seal_if_needed(&self, stream: &Arc<StreamStore>) {
        if stream.needs_seal() {
            let _ = self.sealer.lock().unwrap().send(stream.clone());
        }
    }

    /// Seals every open stream's rolled segments now (tests; the sealing thread does this
    /// in the background).
    pub fn seal_now(&self) -> Result<usize> {
        let slots: Vec<_> = self.open.lock().unwrap().values().cloned().collect();
        let streams: Vec<Arc<StreamStore>> = slots
            .iter()
            .filter_map(|s| s.lock().unwrap().clone())
            .collect();
        let mut sealed = 0;
        for s in streams {
            sealed += s.seal_pending()?;
        }
        Ok(sealed)
    }

    /// Streams of a group in the asked order, after `after` (a stream name; for
    /// LastEventTime order an offset), at most `limit`.
    #[allow(clippy::too_many_arguments)]
    pub fn describe_log_streams(
        &self,
        scope: &LogScope,
        group: &str,
        name_prefix: Option<&str>,
        order: StreamOrder,
        descending: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LogStream>, Option<String>)> {
        self.log_group(scope, group)?;
        let mut records = self.stream_records(scope, group)?;
        if let Some(p) = name_prefix {
            records.retain(|r| r.name.starts_with(p));
        }
        // The token is the last stream's sort key (berth_store::page_token).
        let after = after
            .map(|t| berth_store::page_token::decode(t).ok_or_else(tokens::bad_token))
            .transpose()?;
        let by_time = |last_event: Option<i64>, name: &str| {
            format!("{:020}/{name}", last_event.unwrap_or(0).max(0))
        };
        // Where the page starts among `keys` (in the listed order): after the token's key.
        let start = |keys: &[String]| {
            after.as_ref().map_or(0, |after| {
                keys.partition_point(|k| if descending { k >= after } else { k <= after })
            })
        };
        let with_stats = |r: StreamRecord| {
            let stats = self.stream_stats(&r.id)?;
            Ok(LogStream {
                name: r.name,
                creation_time: r.creation_time,
                stats,
            })
        };
        let (page, more) = if order == StreamOrder::LogStreamName {
            // Records come in name order: only the page's streams are opened.
            if descending {
                records.reverse();
            }
            let keys: Vec<String> = records.iter().map(|r| r.name.clone()).collect();
            let skip = start(&keys);
            let more = records.len() > skip + limit;
            let page = records
                .into_iter()
                .skip(skip)
                .take(limit)
                .map(with_stats)
                .collect::<Result<Vec<_>>>()?;
            (page, more)
        } else {
            let mut streams = records
                .into_iter()
                .map(with_stats)
                .collect::<Result<Vec<_>>>()?;
            streams.sort_by(|a, b| {
                a.stats
                    .last_event
                    .cmp(&b.stats.last_event)
                    .then_with(|| a.name.cmp(&b.name))
            });
            if descending {
                streams.reverse();
            }
            let keys: Vec<String> = streams
                .iter()
                .map(|s| by_time(s.stats.last_event, &s.name))
                .collect();
            let skip = start(&keys);
            let more = streams.len() > skip + limit;
            (streams.into_iter().skip(skip).take(limit).collect(), more)
        };
        let token = more
            .then(|| page.last())
            .flatten()
            .map(|s: &LogStream| match order {
                StreamOrder::LogStreamName => berth_store::page_token::encode(&s.name),
                _ => berth_store::page_token::encode(&by_time(s.stats.last_event, &s.name)),
            });
        Ok((page, token))
    }

    /// Bytes a group's events take on disk.
    pub fn stored_bytes(&self, scope: &LogScope, group: &str) -> Result<u64> {
        let mut total = 0;
        for r in self.stream_records(scope, group)? {
            total += self.stream_stats(&r.id)?.stored_bytes;
        }
        Ok(total)
    }

    // ---- events ----

    /// Stores a batch, after AWS's checks; events too new, too old or expired are left
    /// out and reported.
    pub fn put_log_events(
        &self,
        scope: &LogScope,
        group: &str,
        stream: &str,
        events: Vec<InputEvent>,
        cursor: Option<&str>,
    ) -> Result<Put> {
        if events.is_empty() {
            return Err(LogsError::InvalidParameter(
                "1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        if events.len() > MAX_BATCH_EVENTS {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS}"
            )));
        }
        let size: usize = events
            .iter()
            .map(|e| e.message.len() + EVENT_OVERHEAD)
            .sum();
        if size > MAX_BATCH_BYTES {
            return Err(LogsError::InvalidParameter(format!(
                "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
            )));
        }
        if events.iter().any(|e| e.message.is_empty()) {
            return Err(LogsError::InvalidParameter(
                "1 validation error detected: Value '' at 'logEvents.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
            return Err(LogsError::InvalidParameter(
                "Log events in a single PutLogEvents request must be in chronological order."
                    .into(),
            ));
        }
        if cursor.is_some_and(|c| c.len() > 512) {
            return Err(LogsError::InvalidParameter(
                "berthShipperCursor must be at most 512 bytes".into(),
            ));
        }
        let group_record = self.log_group(scope, group)?;
        let (record, record_revision) = self.stream_record_at(scope, group, stream)?;
        let now = now_ms();
        let too_old = now - 14 * DAY_MS;
        let expired = group_record.cutoff(now);
        let too_new = now + 2 * HOUR_MS;
        let mut rejected = Rejected::default();
        // Sorted, so the rejected ones are a prefix (old) and a suffix (new).
        let first_kept = events
            .iter()
            .position(|e| e.timestamp >= too_old && e.timestamp >= expired)
            .unwrap_or(events.len());
        if first_kept > 0 {
            let last_old = events[..first_kept]
                .iter()
                .rposition(|e| e.timestamp < too_old);
            let last_expired = events[..first_kept]
                .iter()
                .rposition(|e| e.timestamp < expired);
            rejected.too_old_end = last_old.map(|i| i + 1);
            rejected.expired_end = last_expired.map(|i| i + 1);
        }
        let end_kept = events
            .iter()
            .position(|e| e.timestamp > too_new)
            .unwrap_or(events.len());
        if end_kept < events.len() {
            rejected.too_new_start = Some(end_kept);
        }
        let mut events = events;
        events.truncate(end_kept.max(first_kept));
        let kept: Vec<InputEvent> = events.split_off(first_kept.min(events.len()));
        if let (Some(first), Some(last)) = (kept.first(), kept.last())
            && last.timestamp - first.timestamp > DAY_MS
        {
            return Err(LogsError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
            ));
        }
        let sequence = match &self.journal {
            Some(journal) => {
                let target = journal::Target {
                    scope,
                    group,
                    stream,
                    id: &record.id,
                    stream_key: scope.stream_key(group, stream),
                    stream_revision: record_revision,
                };
                journal.append(&target, &kept, now, cursor)?
            }
            None => {
                let data = self.stream_data(&record.id)?;
                data.append(&kept, now, cursor).map_err(|e| match e {
                    stream::AppendError::AlreadyAccepted => LogsError::DataAlreadyAccepted,
                    stream::AppendError::Io(e) => LogsError::Io(e),
                })?;
                self.seal_if_needed(&data);
                data.stats().events
            }
        };
        match self.count_metric_filters(scope, group, &kept, now) {
            Ok(filters) => self.publish_filter_metrics(scope, group, &filters, &kept, now),
            // The batch is stored and acknowledged; only its counts are lost.
            Err(e) => {
                tracing::warn!(error = %e, group, "counting a batch for metric filters failed")
            }
        }
        // A stream deleted while we wrote: its files are gone with it. On a shared store
        // live tails are fed by the journal's watch (`follow_journal`), on every replica.
        if !kept.is_empty() && self.journal.is_none() && self.tail.receiver_count() > 0 {
            let _ = self.tail.send(Arc::new(Ingested {
                scope: scope.clone(),
                group: group.to_string(),
                stream: stream.to_string(),
                ingestion: now,
                events: kept,
            }));
        }
        Ok(Put { rejected, sequence })
    }

    pub fn get_log_events(&self, scope: &LogScope, q: &GetLogEvents) -> Result<EventsPage> {
        let group = self.log_group(scope, &q.group)?;
        let record = self.stream_record(scope, &q.group, &q.stream)?;
        let data = self.events(&record.id)?;
        let limit = q.limit.unwrap_or(MAX_BATCH_EVENTS);
        let start = q.start_time.unwrap_or(i64::MIN).max(group.cutoff(now_ms()));
        let end = q.end_time.unwrap_or(i64::MAX);
        const HEAD: stream::EventKey = (i64::MIN, 0);
        const END: stream::EventKey = (i64::MAX, u64::MAX);
        let (forward, position) = match &q.next_token {
            Some(t) => tokens::parse_events_token(t)?,
            None if q.start_from_head => (true, HEAD),
            None => (false, END),
        };
        let (lower, upper) = if forward {
            (position, END)
        } else {
            (HEAD, position)
        };
        let events = stream::read::page(
            data.source(),
            lower,
            upper,
            start,
            end,
            limit,
            MAX_BATCH_BYTES,
            forward,
        )?;
        let (next_forward, next_backward) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (
                (last.timestamp, last.ordinal + 1),
                (first.timestamp, first.ordinal),
            ),
            _ => (position, position),
        };
        Ok(EventsPage {
            events,
            next_forward_token: tokens::events_token(true, next_forward),
            next_backward_token: tokens::events_token(false, next_backward),
        })
    }

    pub fn filter_log_events(&self, scope: &LogScope, q: &FilterLogEvents) -> Result<FilteredPage> {
        let group = self.log_group(scope, &q.group)?;
        if q.stream_names.is_some() && q.stream_prefix.is_some() {
            return Err(LogsError::InvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive".into(),
            ));
        }
        let pattern = match q.pattern.as_deref() {
            Some(p) => Some(
                FilterPattern::parse(p).map_err(|e| LogsError::InvalidParameter(e.to_string()))?,
            ),
            None => None,
        };
        let pattern = pattern.filter(|p| !p.matches_everything());
        let literals = pattern.as_ref().and_then(FilterPattern::required_literals);
        let finders: Option<Vec<memchr::memmem::Finder<'_>>> = literals
            .as_ref()
            .map(|l| l.iter().map(memchr::memmem::Finder::new).collect());
        let limit = q.limit.unwrap_or(MAX_BATCH_EVENTS);
        let start = q.start_time.unwrap_or(i64::MIN).max(group.cutoff(now_ms()));
        // FilterLogEvents' endTime is inclusive (GetLogEvents' is not).
        let end = q.end_time.map_or(i64::MAX, |t| t.saturating_add(1));
        let resume = q
            .next_token
            .as_deref()
            .map(tokens::parse_filter_token)
            .transpose()?;
        let mut records = self.stream_records(scope, &q.group)?;
        if let Some(names) = &q.stream_names {
            records.retain(|r| names.contains(&r.name));
        }
        if let Some(p) = &q.stream_prefix {
            records.retain(|r| r.name.starts_with(p.as_str()));
        }
        let mut found: Vec<FilteredEvent> = Vec::new();
        for r in &records {
            let data = self.events(&r.id)?;
            let from_ts = resume.as_ref().map_or(start, |t| start.max(t.timestamp));
            let matches = |e: &segment::EventRef<'_>| {
                // Past where the previous page ended (in the order pages are cut in) ...
                resume.as_ref().is_none_or(|t| {
                    (e.timestamp, r.name.as_str(), e.ordinal)
                        > (t.timestamp, t.stream.as_str(), t.ordinal)
                }) && pattern.as_ref().is_none_or(|p| p.matches(e.message))
            };
            // One more than a page tells whether there is more.
            let events = stream::read::scan_matching(
                data.source(),
                from_ts,
                end,
                finders.as_deref(),
                &matches,
                limit + 1,
            )?;
            found.extend(events.into_iter().map(|e| FilteredEvent {
                stream: r.name.clone(),
                ordinal: e.ordinal,
                timestamp: e.timestamp,
                ingestion: e.ingestion,
                message: e.message,
            }));
            // Nothing past a page (and one more event) can be returned: hold no more, however
            // many streams the group has.
            sort_filtered(&mut found);
            let mut bytes = 0usize;
            let held = found
                .iter()
                .take(limit + 1)
                .take_while(|e| {
                    let within = bytes <= MAX_BATCH_BYTES;
                    bytes += e.message.len() + EVENT_OVERHEAD;
                    within
                })
                .count();
            found.truncate(held);
        }
        sort_filtered(&mut found);
        let mut bytes = 0usize;
        let mut keep = 0usize;
        for e in &found {
            if keep == limit || bytes + e.message.len() + EVENT_OVERHEAD > MAX_BATCH_BYTES {
                break;
            }
            bytes += e.message.len() + EVENT_OVERHEAD;
            keep += 1;
        }
        let more = found.len() > keep;
        found.truncate(keep);
        let next_token = more
            .then(|| found.last().map(tokens::filter_token))
            .flatten();
        Ok(FilteredPage {
            events: found,
            next_token,
        })
    }

    // ---- retention ----

    fn expire_group(&self, scope: &LogScope, group: &LogGroup) -> Result<usize> {
        let cutoff = group.cutoff(now_ms());
        if cutoff == i64::MIN {
            return Ok(0);
        }
        let mut removed = 0;
        for r in self.stream_records(scope, &group.name)? {
            removed += match &self.journal {
                Some(journal) => journal.expire(&r.id, cutoff)?,
                None => self.stream_data(&r.id)?.expire(cutoff)?,
            };
        }
        Ok(removed)
    }

    /// Removes the segments every retention policy has expired; returns how many.
    pub fn expire_all(&self) -> Result<usize> {
        let mut groups = Vec::new();
        scan(self.store.as_ref(), "logs/", None, |kv| {
            if kv.key.contains("/group/") {
                let group: LogGroup = decode(kv)?;
                if group.retention_in_days.is_some() {
                    let mut parts = kv.key.splitn(4, '/').skip(1);
                    let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
                        return Ok(true);
                    };
                    let scope = LogScope {
                        account: account.to_string(),
                        region: region.to_string(),
                    };
                    groups.push((scope, group));
                }
            }
            Ok(true)
        })?;
        let mut removed = 0;
        for (scope, group) in groups {
            removed += self.expire_group(&scope, &group)?;
        }
        Ok(removed)
    }
}

/// FilterLogEvents' order: time, then stream name, then position in the stream.
fn sort_filtered(events: &mut [FilteredEvent]) {
    events.sort_by(|a, b| {
        (a.timestamp, &a.stream, a.ordinal).cmp(&(b.timestamp, &b.stream, b.ordinal))
    });
}

fn uuid_like() -> String {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

#[cfg(test)]
mod tests;
