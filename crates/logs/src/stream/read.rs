//! Reading a stream's events in time order from its blocks, wherever they are: the local
//! segment files of `StreamStore`, or (on a shared store) sealed values and journal entries
//! held in memory (`crate::journal`). Both hand their blocks over as a `BlockSource`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use super::{Block, EventKey, StoredEvent};
use crate::segment::{self, EventRef};

/// Where a block's bytes are.
#[derive(Clone)]
pub enum Source {
    /// A segment file (frames, or a sealed file's compressed block).
    File(Arc<File>),
    /// Bytes in memory: `block.offset..+len` of them.
    Bytes(Arc<[u8]>),
}

impl Source {
    /// The block's frames (decompressed when the block is sealed).
    pub fn read(&self, block: &Block) -> io::Result<Vec<u8>> {
        match self {
            Source::File(file) => super::read_block(block, file),
            Source::Bytes(bytes) => {
                let data = bytes
                    .get(block.offset as usize..(block.offset + block.len) as usize)
                    .ok_or_else(|| io::Error::other("a log block past its value's end"))?;
                if block.raw_len == 0 {
                    return Ok(data.to_vec());
                }
                lz4_flex::block::decompress(data, block.raw_len as usize)
                    .map_err(|e| io::Error::other(format!("corrupt sealed log block: {e}")))
            }
        }
    }
}

/// A stream's blocks whose time range overlaps `start..end`, each with where it is.
pub trait BlockSource {
    fn blocks(&self, start: i64, end: i64) -> io::Result<Vec<(Block, Source)>>;
}

/// Events with `lower <= (timestamp, ordinal) < upper` and a timestamp in `start..end`,
/// in time order (ties by ordinal, the order they were accepted in): forward, the first
/// `limit` of them (and at most `max_bytes`, counting 26 bytes per event as AWS does);
/// backward, the last ones. Always returned in ascending order.
#[allow(clippy::too_many_arguments)]
pub fn page(
    source: &dyn BlockSource,
    lower: EventKey,
    upper: EventKey,
    start: i64,
    end: i64,
    limit: usize,
    max_bytes: usize,
    forward: bool,
) -> io::Result<Vec<StoredEvent>> {
    let within = |e: &EventRef<'_>| {
        let key = (e.timestamp, e.ordinal);
        key >= lower && key < upper
    };
    let start = start.max(lower.0);
    let end = end.min(upper.0.saturating_add(1));
    let mut events = select(source, start, end, None, &within, limit, forward, false)?;
    let mut bytes = 0usize;
    let mut fits = |e: &StoredEvent| {
        bytes += e.message.len() + 26;
        bytes <= max_bytes
    };
    if forward {
        let keep = events.iter().take_while(|e| fits(e)).count();
        events.truncate(keep);
    } else {
        let keep = events.iter().rev().take_while(|e| fits(e)).count();
        events.drain(..events.len() - keep);
    }
    Ok(events)
}

/// The first `limit` events in time order (ties by ordinal) with a timestamp in
/// `start..end` that `matches`, reading only blocks that hold one of `literals` (when
/// given). Blocks are read, decompressed and matched on all cores.
pub fn scan_matching(
    source: &dyn BlockSource,
    start: i64,
    end: i64,
    literals: Option<&[memchr::memmem::Finder<'_>]>,
    matches: &(dyn Fn(&EventRef<'_>) -> bool + Sync),
    limit: usize,
) -> io::Result<Vec<StoredEvent>> {
    select(source, start, end, literals, matches, limit, true, true)
}

/// The core of `page` and `scan_matching`. Blocks are taken in the order of their
/// earliest timestamp (forward; latest, backward), so that a stream written in time
/// order is read from the right place on, and the search stops once `limit` events are
/// held and no block left can hold an earlier (later) one. Rounds of blocks grow, so a
/// search satisfied early reads little; with `parallel`, a round is shared by all cores.
#[allow(clippy::too_many_arguments)]
fn select(
    source: &dyn BlockSource,
    start: i64,
    end: i64,
    literals: Option<&[memchr::memmem::Finder<'_>]>,
    matches: &(dyn Fn(&EventRef<'_>) -> bool + Sync),
    limit: usize,
    forward: bool,
    parallel: bool,
) -> io::Result<Vec<StoredEvent>> {
    if limit == 0 || start >= end {
        return Ok(Vec::new());
    }
    let mut blocks = source.blocks(start, end)?;
    if forward {
        blocks.sort_by_key(|(b, _)| (b.min_ts, b.first_ordinal));
    } else {
        blocks.sort_by_key(|(b, _)| std::cmp::Reverse((b.max_ts, b.first_ordinal)));
    }
    let key = |e: &StoredEvent| (e.timestamp, e.ordinal);
    // Sorts `events` into the direction's order and keeps the first `limit`.
    let keep_best = |events: &mut Vec<StoredEvent>| {
        if forward {
            events.sort_unstable_by_key(key);
        } else {
            events.sort_unstable_by_key(|e| std::cmp::Reverse(key(e)));
        }
        events.truncate(limit);
    };
    let search = |(block, from): &(Block, Source)| -> io::Result<Vec<StoredEvent>> {
        let data = from.read(block)?;
        if let Some(literals) = literals
            && !literals.iter().any(|f| f.find(&data).is_some())
        {
            return Ok(Vec::new());
        }
        let mut found: Vec<EventRef<'_>> = Vec::new();
        segment::decode_frames(&data, |e| {
            if e.timestamp >= start && e.timestamp < end && matches(&e) {
                found.push(e);
            }
            true
        })
        .map_err(io::Error::other)?;
        // Only this block's best `limit` can be among the answer's.
        if found.len() > limit {
            let by = |e: &EventRef<'_>| (e.timestamp, e.ordinal);
            if forward {
                found.select_nth_unstable_by_key(limit, by);
            } else {
                found.select_nth_unstable_by_key(limit, |e| std::cmp::Reverse(by(e)));
            }
            found.truncate(limit);
        }
        Ok(found.into_iter().map(StoredEvent::from).collect())
    };
    let threads = if parallel {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    } else {
        1
    };
    let mut out: Vec<StoredEvent> = Vec::new();
    // Once `limit` events are held: the timestamp of the last kept (possibly stale, so
    // later than the true one forward — stopping on it is late, never wrong).
    let mut threshold: Option<i64> = None;
    // Takes the next block's events in order; `false` once no block left can hold an
    // event that sorts before the last kept.
    let mut take = |k: usize, found: Vec<StoredEvent>| -> bool {
        out.extend(found);
        if out.len() >= limit && (threshold.is_none() || out.len() >= 2 * limit) {
            keep_best(&mut out);
            threshold = out.last().map(|e| e.timestamp);
        }
        match (threshold, blocks.get(k + 1)) {
            (Some(t), Some((next, _))) => {
                !((forward && next.min_ts > t) || (!forward && next.max_ts < t))
            }
            (_, next) => next.is_some(),
        }
    };
    if threads == 1 || blocks.len() < 2 {
        for (k, block) in blocks.iter().enumerate() {
            if !take(k, search(block)?) {
                break;
            }
        }
    } else {
        // Workers take blocks in order, at most `window` ahead of the consumer, which
        // takes their results in block order and stops them when it has enough.
        let window = threads * 4;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        let consumed = (Mutex::new(0usize), std::sync::Condvar::new());
        let (tx, rx) = std::sync::mpsc::channel::<(usize, io::Result<Vec<StoredEvent>>)>();
        let outcome = std::thread::scope(|scope| {
            for _ in 0..threads {
                let tx = tx.clone();
                let (next, done, consumed, blocks, search) =
                    (&next, &done, &consumed, &blocks, &search);
                scope.spawn(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    loop {
                        let i = next.fetch_add(1, SeqCst);
                        if i >= blocks.len() || done.load(SeqCst) {
                            return;
                        }
                        let mut c = consumed.0.lock().unwrap();
                        while i >= *c + window && !done.load(SeqCst) {
                            c = consumed.1.wait(c).unwrap();
                        }
                        drop(c);
                        // A panic (a bug in a matcher, say) becomes this block's error
                        // rather than a block that never arrives.
                        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            search(&blocks[i])
                        }))
                        .unwrap_or_else(|_| Err(io::Error::other("a log scan worker panicked")));
                        if done.load(SeqCst) || tx.send((i, found)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let mut pending = BTreeMap::new();
            let mut result = Ok(());
            for k in 0..blocks.len() {
                let found = loop {
                    if let Some(found) = pending.remove(&k) {
                        break found;
                    }
                    let (i, found) = rx.recv().expect("a log scan worker panicked");
                    pending.insert(i, found);
                };
                let more = match found {
                    Ok(found) => take(k, found),
                    Err(e) => {
                        result = Err(e);
                        false
                    }
                };
                *consumed.0.lock().unwrap() = k + 1;
                consumed.1.notify_all();
                if !more {
                    break;
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            consumed.1.notify_all();
            result
        });
        outcome?;
    }
    keep_best(&mut out);
    if !forward {
        out.reverse();
    }
    Ok(out)
}
