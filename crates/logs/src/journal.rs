//! Log events on a shared store (replicas on etcd): a PutLogEvents batch is acknowledged
//! once it is a key of the store, so every replica reads it at once and it survives the
//! replica that took it. The key layout, all of it here:
//!
//! - `logs-head/{stream-id}`: the stream's next ordinal, last shipper cursor and running
//!   stats, with the names of the stream (for live tails on other replicas). Every put
//!   compares its mod revision, so ordinals and sequence tokens are one sequence whichever
//!   replica takes a batch: of two racing replicas the loser re-reads and takes the next.
//! - `logs-journal/{stream-id}/{first-ordinal:020}`: one batch as one segment frame
//!   (`segment::encode_frame`), created under a compare on its absence.
//! - `logs-sealed/{stream-id}/{first-ordinal:020}`: a sealed run of journal entries, LZ4
//!   blocks in the sealed segment format (`stream::encode_sealed_block`). Kept as a store
//!   value, not in the object store (docs/replicas.md says why and what it costs).
//! - `logs-segments/{stream-id}`: the list of the stream's sealed runs (ordinal range,
//!   time bounds, size).
//!
//! Sealing (`seal_all`, the leader's controller through its fenced store) writes a sealed
//! value, adds it to the list and deletes the journal keys it holds in one transaction, so
//! a reader sees each event in exactly one of the two.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use berth_store::{Compare, KeyValue, Op, Store, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::segment::{self, FrameHeader, InputEvent};
use crate::stream::{self, Block, BlockSource, Source, StreamStats};
use crate::{LogScope, LogsError, Result, decode, encode, now_ms};

const JOURNAL: &str = "logs-journal/";
/// A sealed run holds up to this many bytes of frames (compressed, it is one store value).
const SEAL_TARGET: usize = 1 << 20;
/// ... and at most this many journal entries: its transaction has two operations per entry
/// (a compare and a delete), within etcd's `--max-txn-ops 10000` (docs/replicas.md).
const SEAL_ENTRIES: usize = 2000;
/// Sealed values a replica keeps in memory for reads.
const CACHE_BYTES: usize = 256 << 20;

fn journal_prefix(id: &str) -> String {
    format!("{JOURNAL}{id}/")
}
fn journal_key(id: &str, first: u64) -> String {
    format!("{JOURNAL}{id}/{first:020}")
}
fn head_key(id: &str) -> String {
    format!("logs-head/{id}")
}
fn segments_key(id: &str) -> String {
    format!("logs-segments/{id}")
}
fn sealed_prefix(id: &str) -> String {
    format!("logs-sealed/{id}/")
}
fn sealed_key(id: &str, first: u64) -> String {
    format!("logs-sealed/{id}/{first:020}")
}

/// A stream's head: where its next batch goes, and what DescribeLogStreams shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    next: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    events: u64,
    first_event: Option<i64>,
    last_event: Option<i64>,
    last_ingestion: Option<i64>,
    stored_bytes: u64,
    account: String,
    region: String,
    group: String,
    stream: String,
    /// The stream record's key and create revision: a put or a seal commits only while it
    /// is the same stream.
    stream_key: String,
    stream_revision: u64,
}

impl Head {
    fn stats(&self) -> StreamStats {
        StreamStats {
            first_event: self.first_event,
            last_event: self.last_event,
            last_ingestion: self.last_ingestion,
            stored_bytes: self.stored_bytes,
            events: self.events,
            cursor: self.cursor.clone(),
        }
    }
}

/// One sealed run, as the stream's segment list records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedRun {
    first: u64,
    count: u64,
    min_ts: i64,
    max_ts: i64,
    bytes: u64,
}

impl SealedRun {
    fn holds(&self, ordinal: u64) -> bool {
        ordinal >= self.first && ordinal < self.first + self.count
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Segments {
    sealed: Vec<SealedRun>,
}

/// The stream a put goes to: its names and its record's key and create revision.
pub(crate) struct Target<'a> {
    pub scope: &'a LogScope,
    pub group: &'a str,
    pub stream: &'a str,
    pub id: &'a str,
    pub stream_key: String,
    pub stream_revision: u64,
}

/// A sealed value and its blocks.
type Sealed = (Arc<[u8]>, Arc<Vec<Block>>);

/// Sealed values read, by key, with how many events each holds (a value rewritten since
/// holds more and is read again).
#[derive(Default)]
struct Cache {
    values: HashMap<String, (u64, Sealed)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Cache {
    /// Drops the eviction order's entries for values no longer held.
    fn forget_removed(&mut self) {
        let Cache { values, order, .. } = self;
        order.retain(|k| values.contains_key(k));
    }
}

pub(crate) struct Journal {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
}

/// A stream's events as a read sees them: sealed runs and journal entries.
pub(crate) struct View {
    blocks: Vec<(Block, Source)>,
}

impl BlockSource for View {
    fn blocks(&self, start: i64, end: i64) -> std::io::Result<Vec<(Block, Source)>> {
        Ok(self
            .blocks
            .iter()
            .filter(|(b, _)| b.overlaps(start, end))
            .cloned()
            .collect())
    }
}

fn header_of(frame: &[u8]) -> Result<FrameHeader> {
    frame
        .get(..segment::HEADER_LEN)
        .and_then(|h| FrameHeader::parse(h.try_into().ok()?))
        .ok_or_else(|| LogsError::Corrupt("a log journal entry".into()))
}

/// A block of one journal frame, or of frames laid end to end.
fn frames_block(h: &FrameHeader, offset: u64, len: u64) -> Block {
    Block {
        segment: u64::MAX,
        offset,
        len,
        raw_len: 0,
        first_ordinal: h.first_ordinal,
        count: u64::from(h.count),
        min_ts: h.min_ts,
        max_ts: h.max_ts,
    }
}

impl Journal {
    pub(crate) fn new(store: Arc<dyn Store>) -> Journal {
        Journal {
            store,
            cache: Mutex::default(),
        }
    }

    fn head(&self, id: &str) -> Result<(Option<Head>, u64)> {
        Ok(match self.store.get(&head_key(id))? {
            Some(kv) => (Some(decode(&kv)?), kv.mod_revision),
            None => (None, 0),
        })
    }

    /// Stores one batch (in chronological order; empty with a cursor: the cursor alone) as
    /// a journal entry; returns the stream's sequence after it.
    pub(crate) fn append(
        &self,
        t: &Target<'_>,
        events: &[InputEvent],
        ingestion: i64,
        cursor: Option<&str>,
    ) -> Result<u64> {
        loop {
            let (head, revision) = self.head(t.id)?;
            let mut head = head.unwrap_or_else(|| Head {
                account: t.scope.account.clone(),
                region: t.scope.region.clone(),
                group: t.group.to_string(),
                stream: t.stream.to_string(),
                stream_key: t.stream_key.clone(),
                stream_revision: t.stream_revision,
                ..Head::default()
            });
            if events.is_empty() && cursor.is_none() {
                return Ok(head.next);
            }
            // The same batch again (a shipper retrying a put whose answer it lost).
            if cursor.is_some() && head.cursor.as_deref() == cursor {
                return Err(LogsError::DataAlreadyAccepted);
            }
            let mut compares = vec![
                Compare::ModRevision(head_key(t.id), revision),
                Compare::CreateRevision(t.stream_key.clone(), t.stream_revision),
            ];
            let mut ops = Vec::with_capacity(2);
            if let (Some(first), Some(last)) = (events.first(), events.last()) {
                let frame = segment::encode_frame(events, head.next, ingestion, cursor);
                let key = journal_key(t.id, head.next);
                head.stored_bytes += frame.len() as u64;
                head.events += events.len() as u64;
                head.next += events.len() as u64;
                let max_ts = events
                    .iter()
                    .map(|e| e.timestamp)
                    .max()
                    .unwrap_or(last.timestamp);
                head.first_event = Some(
                    head.first_event
                        .map_or(first.timestamp, |t| t.min(first.timestamp)),
                );
                head.last_event = Some(head.last_event.map_or(max_ts, |t| t.max(max_ts)));
                head.last_ingestion =
                    Some(head.last_ingestion.map_or(ingestion, |t| t.max(ingestion)));
                compares.push(Compare::ModRevision(key.clone(), 0));
                ops.push(Op::put(key, frame));
            }
            if let Some(cursor) = cursor {
                head.cursor = Some(cursor.to_string());
            }
            ops.push(Op::put(head_key(t.id), encode(&head)));
            match self.store.txn(&compares, &ops)? {
                TxnOutcome::Committed(_) => return Ok(head.next),
                TxnOutcome::Conflict => {
                    let record = self.store.get(&t.stream_key)?;
                    if record.is_none_or(|kv| kv.create_revision != t.stream_revision) {
                        return Err(crate::stream_missing());
                    }
                    // Another replica took this ordinal: take the next.
                }
            }
        }
    }

    pub(crate) fn stats(&self, id: &str) -> Result<StreamStats> {
        Ok(self.head(id)?.0.map(|h| h.stats()).unwrap_or_default())
    }

    /// The stream's events as of now: its sealed runs and unsealed journal entries.
    pub(crate) fn view(&self, id: &str) -> Result<View> {
        // A listed sealed value may be gone (expired, or rewritten by a seal since): read
        // again, the list has changed.
        for _ in 0..16 {
            if let Some(view) = self.try_view(id)? {
                return Ok(view);
            }
        }
        Err(LogsError::InvalidOperation(
            "The log stream kept changing while it was being read; try again.".into(),
        ))
    }

    fn try_view(&self, id: &str) -> Result<Option<View>> {
        // The journal first, then the list of sealed runs: a seal committed in between
        // moves entries from the first to the second (and they are dropped from the
        // journal's side below). Read the other way round, they would be missed.
        let journal = self.store.range(&journal_prefix(id), None, 0)?;
        let segments: Segments = match self.store.get(&segments_key(id))? {
            Some(kv) => decode(&kv)?,
            None => Segments::default(),
        };
        let mut blocks = Vec::new();
        for run in &segments.sealed {
            let Some((bytes, sealed)) = self.sealed(id, run)? else {
                return Ok(None);
            };
            blocks.extend(sealed.iter().map(|b| (*b, Source::Bytes(bytes.clone()))));
        }
        for kv in journal {
            let h = header_of(&kv.value)?;
            if segments.sealed.iter().any(|r| r.holds(h.first_ordinal)) {
                continue;
            }
            let len = kv.value.len() as u64;
            blocks.push((frames_block(&h, 0, len), Source::Bytes(kv.value.into())));
        }
        blocks.sort_by_key(|(b, _)| b.first_ordinal);
        Ok(Some(View { blocks }))
    }

    /// A sealed run's value and blocks, from the cache or the store; `None` when the value
    /// is not the one the list names (gone, or rewritten since).
    fn sealed(&self, id: &str, run: &SealedRun) -> Result<Option<Sealed>> {
        let key = sealed_key(id, run.first);
        if let Some((count, (bytes, blocks))) = self.cache.lock().unwrap().values.get(&key)
            && *count == run.count
        {
            return Ok(Some((bytes.clone(), blocks.clone())));
        }
        let Some(kv) = self.store.get(&key)? else {
            return Ok(None);
        };
        let blocks = stream::parse_sealed(&kv.value, run.first)?;
        if blocks.iter().map(|b| b.count).sum::<u64>() != run.count {
            return Ok(None);
        }
        let (bytes, blocks): (Arc<[u8]>, _) = (kv.value.into(), Arc::new(blocks));
        let mut cache = self.cache.lock().unwrap();
        if let Some((_, (old, _))) = cache
            .values
            .insert(key.clone(), (run.count, (bytes.clone(), blocks.clone())))
        {
            cache.bytes -= old.len();
        } else {
            cache.order.push_back(key);
        }
        cache.bytes += bytes.len();
        while cache.bytes > CACHE_BYTES {
            let Some(oldest) = cache.order.pop_front() else {
                break;
            };
            if let Some((_, (old, _))) = cache.values.remove(&oldest) {
                cache.bytes -= old.len();
            }
        }
        Ok(Some((bytes, blocks)))
    }

    /// Seals every stream's journal entries older than `min_age_ms` (or, together, a block's
    /// worth), through `store` (the leader's fenced store); returns how many runs were
    /// sealed.
    pub(crate) fn seal_all(&self, store: &dyn Store, min_age_ms: i64, now: i64) -> Result<usize> {
        let mut streams: BTreeMap<String, Vec<KeyValue>> = BTreeMap::new();
        crate::scan(store, JOURNAL, None, |kv| {
            if let Some(id) = kv.key[JOURNAL.len()..].split('/').next() {
                streams.entry(id.to_string()).or_default().push(kv.clone());
            }
            Ok(true)
        })?;
        let mut sealed = 0;
        for (id, entries) in streams {
            sealed += self.seal_stream(store, &id, entries, min_age_ms, now)?;
        }
        Ok(sealed)
    }

    fn seal_stream(
        &self,
        store: &dyn Store,
        id: &str,
        entries: Vec<KeyValue>,
        min_age_ms: i64,
        now: i64,
    ) -> Result<usize> {
        let Some(head) = self.head(id)?.0 else {
            return Ok(0);
        };
        let record = store.get(&head.stream_key)?;
        if record.is_none_or(|kv| kv.create_revision != head.stream_revision) {
            // The stream was deleted (its deletion removes these too; this is a deletion
            // that stopped half way).
            self.drop_stream(store, id)?;
            return Ok(0);
        }
        let total: usize = entries.iter().map(|kv| kv.value.len()).sum();
        let oldest = entries
            .iter()
            .map(|kv| header_of(&kv.value).map(|h| h.ingestion))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .min()
            .unwrap_or(now);
        if now - oldest < min_age_ms && (total as u64) < stream::BLOCK_TARGET {
            return Ok(0);
        }
        let mut sealed = 0;
        let mut rest = &entries[..];
        while !rest.is_empty() {
            let mut size = 0;
            let take = rest
                .iter()
                .take(SEAL_ENTRIES)
                .take_while(|kv| {
                    size += kv.value.len();
                    size <= SEAL_TARGET
                })
                .count()
                .max(1);
            let (run, more) = rest.split_at(take);
            rest = more;
            if !self.seal_run(store, id, &head, run)? {
                break;
            }
            sealed += 1;
        }
        Ok(sealed)
    }

    /// One sealed value from `run` (journal entries in ordinal order), committed with the
    /// segment list and the entries' deletion; `false` if something changed meanwhile.
    fn seal_run(&self, store: &dyn Store, id: &str, head: &Head, run: &[KeyValue]) -> Result<bool> {
        let mut value = Vec::new();
        let mut block: Option<(Block, Vec<u8>)> = None;
        let flush = |block: Option<(Block, Vec<u8>)>, value: &mut Vec<u8>| {
            if let Some((b, raw)) = block {
                value.extend(stream::encode_sealed_block(&b, &raw));
            }
        };
        let mut record: Option<SealedRun> = None;
        for kv in run {
            let h = header_of(&kv.value)?;
            let b = frames_block(&h, 0, kv.value.len() as u64);
            let r = record.get_or_insert(SealedRun {
                first: h.first_ordinal,
                count: 0,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                bytes: 0,
            });
            r.count += b.count;
            if b.count > 0 {
                r.min_ts = r.min_ts.min(b.min_ts);
                r.max_ts = r.max_ts.max(b.max_ts);
            }
            block = match block.take() {
                Some((mut current, mut raw))
                    if current.len + b.len <= stream::BLOCK_TARGET
                        && current.end_ordinal() == b.first_ordinal =>
                {
                    current.len += b.len;
                    current.count += b.count;
                    current.min_ts = current.min_ts.min(b.min_ts);
                    current.max_ts = current.max_ts.max(b.max_ts);
                    raw.extend_from_slice(&kv.value);
                    Some((current, raw))
                }
                previous => {
                    flush(previous, &mut value);
                    Some((b, kv.value.clone()))
                }
            };
        }
        flush(block, &mut value);
        let Some(mut record) = record else {
            return Ok(true);
        };
        record.bytes = value.len() as u64;
        let (mut segments, revision) = match store.get(&segments_key(id))? {
            Some(kv) => (decode::<Segments>(&kv)?, kv.mod_revision),
            None => (Segments::default(), 0),
        };
        let key = sealed_key(id, record.first);
        segments.sealed.push(record);
        let mut compares = vec![
            Compare::ModRevision(segments_key(id), revision),
            Compare::ModRevision(key.clone(), 0),
            Compare::CreateRevision(head.stream_key.clone(), head.stream_revision),
        ];
        compares.extend(
            run.iter()
                .map(|kv| Compare::ModRevision(kv.key.clone(), kv.mod_revision)),
        );
        let mut ops = vec![
            Op::put(key, value),
            Op::put(segments_key(id), encode(&segments)),
        ];
        ops.extend(run.iter().map(|kv| Op::delete(kv.key.clone())));
        Ok(store.txn(&compares, &ops)?.is_committed())
    }

    /// Removes the sealed runs whose events are all older than `cutoff`; returns how many.
    pub(crate) fn expire(&self, id: &str, cutoff: i64) -> Result<usize> {
        loop {
            let Some(kv) = self.store.get(&segments_key(id))? else {
                return Ok(0);
            };
            let mut segments: Segments = decode(&kv)?;
            let (doomed, kept): (Vec<SealedRun>, Vec<SealedRun>) = segments
                .sealed
                .into_iter()
                .partition(|r| r.count > 0 && r.max_ts < cutoff);
            if doomed.is_empty() {
                return Ok(0);
            }
            segments.sealed = kept;
            let mut ops = vec![Op::put(segments_key(id), encode(&segments))];
            ops.extend(doomed.iter().map(|r| Op::delete(sealed_key(id, r.first))));
            let compares = [Compare::ModRevision(segments_key(id), kv.mod_revision)];
            if self.store.txn(&compares, &ops)?.is_committed() {
                let mut cache = self.cache.lock().unwrap();
                for r in &doomed {
                    if let Some((_, (old, _))) = cache.values.remove(&sealed_key(id, r.first)) {
                        cache.bytes -= old.len();
                    }
                }
                cache.forget_removed();
                return Ok(doomed.len());
            }
        }
    }

    /// Removes every key of a deleted stream (its record is already gone).
    pub(crate) fn drop_stream(&self, store: &dyn Store, id: &str) -> Result<()> {
        for prefix in [journal_prefix(id), sealed_prefix(id)] {
            loop {
                let keys = store.range(&prefix, None, 64)?;
                if keys.is_empty() {
                    break;
                }
                let ops: Vec<Op> = keys.iter().map(|kv| Op::delete(kv.key.clone())).collect();
                store.txn(&[], &ops)?;
            }
        }
        store.txn(
            &[],
            &[Op::delete(head_key(id)), Op::delete(segments_key(id))],
        )?;
        let prefix = sealed_prefix(id);
        let mut cache = self.cache.lock().unwrap();
        let mut freed = 0;
        cache.values.retain(|k, (_, (bytes, _))| {
            let keep = !k.starts_with(&prefix);
            if !keep {
                freed += bytes.len();
            }
            keep
        });
        cache.bytes -= freed;
        cache.forget_removed();
        Ok(())
    }

    /// Watches every stream's journal from now on and hands each new batch to `send`,
    /// until `shutdown`: live tails on this replica see batches put through any replica.
    pub(crate) async fn follow(
        self: Arc<Self>,
        send: impl Fn(crate::Ingested),
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut names: HashMap<String, (LogScope, String, String)> = HashMap::new();
        while !*shutdown.borrow() {
            let journal = self.clone();
            let watcher = tokio::task::spawn_blocking(move || {
                let from = journal.store.current_revision()?;
                journal.store.watch(JOURNAL, from)
            })
            .await;
            let mut watcher = match watcher {
                Ok(Ok(w)) => w,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot watch the log journal; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            loop {
                let event = tokio::select! {
                    _ = shutdown.changed() => return,
                    event = watcher.recv() => event,
                };
                // The watch ended (history compacted while it was cut off): watch again.
                let Some(event) = event else { break };
                if event.kind != berth_store::EventKind::Put {
                    continue;
                }
                let Some(id) = event.kv.key[JOURNAL.len()..]
                    .split('/')
                    .next()
                    .map(str::to_string)
                else {
                    continue;
                };
                if !names.contains_key(&id) {
                    let journal = self.clone();
                    let lookup = id.clone();
                    let head = tokio::task::spawn_blocking(move || journal.head(&lookup)).await;
                    let Ok(Ok((Some(head), _))) = head else {
                        continue;
                    };
                    let scope = LogScope {
                        account: head.account,
                        region: head.region,
                    };
                    names.insert(id.clone(), (scope, head.group, head.stream));
                }
                let (scope, group, stream) = names[&id].clone();
                let Ok(h) = header_of(&event.kv.value) else {
                    continue;
                };
                let mut events = Vec::with_capacity(h.count as usize);
                let decoded = segment::decode_frames(&event.kv.value, |e| {
                    events.push(InputEvent {
                        timestamp: e.timestamp,
                        message: e.message.to_string(),
                    });
                    true
                });
                if decoded.is_ok() && !events.is_empty() {
                    send(crate::Ingested {
                        scope,
                        group,
                        stream,
                        ingestion: h.ingestion,
                        events,
                    });
                }
            }
            // Not at once: a store that keeps ending watches is not to be spun on.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A stream's events to read: local segments, or (on a shared store) the store's view.
pub(crate) enum Events {
    Local(Arc<crate::StreamStore>),
    Shared(View),
}

impl Events {
    pub(crate) fn source(&self) -> &dyn stream::BlockSource {
        match self {
            Events::Local(s) => s.as_ref(),
            Events::Shared(v) => v,
        }
    }
}

impl crate::Logs {
    pub(crate) fn stream_stats(&self, id: &str) -> Result<StreamStats> {
        match &self.journal {
            Some(journal) => journal.stats(id),
            None => Ok(self.stream_data(id)?.stats()),
        }
    }

    pub(crate) fn events(&self, id: &str) -> Result<Events> {
        Ok(match &self.journal {
            Some(journal) => Events::Shared(journal.view(id)?),
            None => Events::Local(self.stream_data(id)?),
        })
    }

    /// On a shared store: seals every stream's journal entries older than `min_age` (or a
    /// block's worth) into sealed runs, writing through `store` (the leader's fenced
    /// store); returns how many runs were sealed. Nothing to do on an embedded store.
    pub fn seal_journal(&self, store: &dyn Store, min_age: std::time::Duration) -> Result<usize> {
        match &self.journal {
            Some(journal) => journal.seal_all(store, min_age.as_millis() as i64, now_ms()),
            None => Ok(0),
        }
    }

    /// On a shared store: feeds this replica's live tails with every batch any replica
    /// stores, until `shutdown`. Returns at once on an embedded store (puts feed them).
    pub async fn follow_journal(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        let tail = self.tail.clone();
        journal
            .follow(
                move |ingested| {
                    if tail.receiver_count() > 0 {
                        let _ = tail.send(Arc::new(ingested));
                    }
                },
                shutdown,
            )
            .await;
    }

    /// Whether events are kept in a shared store (`open_shared`).
    pub fn is_shared(&self) -> bool {
        self.journal.is_some()
    }
}

#[cfg(test)]
mod tests;
