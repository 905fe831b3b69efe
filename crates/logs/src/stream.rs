//! One log stream's events on disk: a directory of segment files (see `segment`) and an
//! in-memory index of blocks, rebuilt from the frame headers when the stream is opened.
//!
//! Every event has an *ordinal*, its position in the stream (0, 1, 2, ... in the order the
//! events were accepted). Reads are in time order, ties by ordinal (`EventKey`): each batch
//! is in time order, but parallel writers may interleave batches, so a read takes blocks
//! in the order of their earliest (latest, backward) timestamp and stops when no block
//! left can hold an event before the last it keeps. A block is a run of whole frames in
//! one segment (up to `BLOCK_TARGET` bytes, or one larger frame) with its ordinal range and
//! its smallest and largest timestamp, so that a time range skips blocks unseen; for a
//! stream written in time order a page reads one or two blocks.
//!
//! Segments roll at `SEGMENT_TARGET` bytes and when a batch's UTC day differs from the
//! segment's, so that retention removes whole files. A segment no longer written to is
//! *sealed* (`seal_pending`, run by a background worker): its blocks are compressed with
//! LZ4 into a `.segz` file (block header + compressed frames), written beside it, synced,
//! renamed into place, and only then is the `.seg` removed; a crash in between leaves one
//! of the two whole, and the `.segz` wins at the next open.
//!
//! Writers take `append` (one put at a time per stream: write, then `fdatasync`), then
//! publish the frame in `index`; readers copy the block list they need out of `index`
//! and read the files with positioned reads, never waiting for a sync.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::segment::{self, EventRef, FrameHeader, InputEvent};

pub mod read;
pub use read::{BlockSource, Source};

pub const BLOCK_TARGET: u64 = 128 << 10;
/// A sealed block's header: magic u32 | raw_len u32 | comp_len u32 | crc32(compressed)
/// u32 | first_ordinal u64 | count u32 | min_ts i64 | max_ts i64.
const SEALED_HEADER: usize = 4 + 4 + 4 + 4 + 8 + 4 + 8 + 8;
const SEALED_MAGIC: u32 = 0xB3C7_1072;
pub const SEGMENT_TARGET: u64 = 64 << 20;
const DAY_MS: i64 = 86_400_000;

/// Where an event sorts in its stream: its timestamp, then its ordinal.
pub type EventKey = (i64, u64);

/// An event read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub ordinal: u64,
    pub timestamp: i64,
    pub ingestion: i64,
    pub message: String,
}

impl From<EventRef<'_>> for StoredEvent {
    fn from(e: EventRef<'_>) -> StoredEvent {
        StoredEvent {
            ordinal: e.ordinal,
            timestamp: e.timestamp,
            ingestion: e.ingestion,
            message: e.message.to_string(),
        }
    }
}

/// A run of whole frames (stored as frames, or LZ4-compressed when sealed) with its
/// ordinal range and time bounds.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    /// The frames' size once decompressed; 0 when the block is stored as frames.
    pub(crate) raw_len: u64,
    pub(crate) first_ordinal: u64,
    pub(crate) count: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
}

impl Block {
    pub(crate) fn end_ordinal(&self) -> u64 {
        self.first_ordinal + self.count
    }

    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.max_ts >= start && self.min_ts < end
    }
}

/// A segment file. Handles are opened per read (under the index's read lock, so the name
/// is current), not kept: a server with thousands of streams does not hold thousands of
/// descriptors.
struct Segment {
    path: PathBuf,
    len: u64,
    max_ts: i64,
    sealed: bool,
}

/// What DescribeLogStreams shows of a stream's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: u64,
    pub events: u64,
    /// The last shipper cursor stored with a batch (Berth's extension for exactly-once
    /// delivery by the agent's awslogs driver).
    pub cursor: Option<String>,
}

#[derive(Default)]
struct Index {
    segments: BTreeMap<u64, Segment>,
    blocks: Vec<Block>,
    stats: StreamStats,
}

struct Appender {
    /// The segment being written: its id (the first ordinal in it), handle, length, day.
    active: Option<(u64, File, u64, i64)>,
    next_ordinal: u64,
    /// A failed write could not be taken back: refuse writes until the next open.
    broken: bool,
}

/// Why `append` stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The batch carries the cursor the stream's last batch was stored with.
    #[error("the batch was already accepted")]
    AlreadyAccepted,
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct StreamStore {
    dir: PathBuf,
    append: Mutex<Appender>,
    index: RwLock<Index>,
    /// Sealing and expiry change files under the readers: one at a time.
    maintenance: Mutex<()>,
    /// A segment was rolled (or found unsealed at open): `seal_pending` has work.
    needs_seal: std::sync::atomic::AtomicBool,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn sealed_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.segz"))
}

/// Reads a block's frames (decompressing a sealed block).
fn read_block(block: &Block, file: &File) -> io::Result<Vec<u8>> {
    let data = segment::read_at(file, block.offset, block.len as usize)?;
    if block.raw_len == 0 {
        return Ok(data);
    }
    lz4_flex::block::decompress(&data, block.raw_len as usize)
        .map_err(|e| io::Error::other(format!("corrupt sealed log block: {e}")))
}

/// The cursor of the last frame in `frames` that carries one.
fn last_cursor_in(mut frames: &[u8]) -> Option<String> {
    let mut found = None;
    while frames.len() >= segment::HEADER_LEN {
        let header = FrameHeader::parse(frames[..segment::HEADER_LEN].try_into().ok()?)?;
        if header.cursor_len > 0 {
            found = segment::frame_cursor(frames).map(str::to_string);
        }
        frames = frames.get(header.frame_len() as usize..)?;
    }
    found
}

impl StreamStore {
    /// Opens (creating if needed) the stream stored in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path) -> io::Result<StreamStore> {
        fs::create_dir_all(dir)?;
        let mut raw = Vec::new();
        let mut sealed = std::collections::BTreeSet::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".tmp") {
                fs::remove_file(entry.path())?; // a seal that did not finish
            } else if let Some(id) = name.strip_suffix(".segz").and_then(|i| i.parse().ok()) {
                sealed.insert(id);
            } else if let Some(id) = name
                .strip_suffix(".seg")
                .and_then(|i| i.parse::<u64>().ok())
            {
                raw.push(id);
            }
        }
        // A sealed copy is complete once renamed: the frames it replaced can go.
        raw.retain(|id| {
            if sealed.contains(id) {
                let _ = fs::remove_file(segment_path(dir, *id));
                false
            } else {
                true
            }
        });
        let mut ids: Vec<(u64, bool)> = raw
            .iter()
            .map(|id| (*id, false))
            .chain(sealed.iter().map(|id| (*id, true)))
            .collect();
        ids.sort_unstable();
        let last_id = ids.last().map(|(id, _)| *id);
        let mut index = Index::default();
        let mut next_ordinal = 0;
        // Newest last: where each segment's last cursor frame is.
        let mut cursors: Vec<(u64, Option<(u64, u16)>)> = Vec::new();
        for &(id, is_sealed) in &ids {
            let segment = if is_sealed {
                let path = sealed_path(dir, id);
                let file = File::open(&path)?;
                let len = file.metadata()?.len();
                let mut max_ts = i64::MIN;
                for block in read_sealed_headers(&file, id)? {
                    max_ts = max_ts.max(block.max_ts);
                    next_ordinal = next_ordinal.max(block.end_ordinal());
                    index.publish_block(block, 0);
                }
                cursors.push((id, None));
                Segment {
                    path,
                    len,
                    max_ts,
                    sealed: true,
                }
            } else {
                let path = segment_path(dir, id);
                let file = OpenOptions::new().read(true).write(true).open(&path)?;
                let (headers, valid_len) = scan_segment(&file, Some(id) == last_id)?;
                if valid_len < file.metadata()?.len() {
                    tracing::warn!(path = %path.display(), valid_len, "cutting off an unacknowledged torn write");
                    file.set_len(valid_len)?;
                    file.sync_all()?;
                }
                let mut max_ts = i64::MIN;
                let mut cursor = None;
                for (offset, h) in headers {
                    if h.cursor_len > 0 {
                        cursor = Some((offset, h.cursor_len));
                    }
                    if h.count > 0 {
                        max_ts = max_ts.max(h.max_ts);
                        next_ordinal = next_ordinal.max(h.first_ordinal + u64::from(h.count));
                    }
                    index.publish(id, offset, &h);
                }
                cursors.push((id, cursor));
                Segment {
                    path,
                    len: valid_len,
                    max_ts,
                    sealed: false,
                }
            };
            index.segments.insert(id, segment);
        }
        index.stats.cursor = Self::find_cursor(&index, &cursors)?;
        let unsealed = ids
            .iter()
            .filter(|(id, s)| !s && Some(*id) != last_id)
            .count();
        Ok(StreamStore {
            dir: dir.to_path_buf(),
            append: Mutex::new(Appender {
                active: None,
                next_ordinal,
                broken: false,
            }),
            index: RwLock::new(index),
            maintenance: Mutex::new(()),
            needs_seal: (unsealed > 0).into(),
        })
    }

    /// The newest cursor: from the newest segment that has one.
    fn find_cursor(
        index: &Index,
        cursors: &[(u64, Option<(u64, u16)>)],
    ) -> io::Result<Option<String>> {
        for (id, at) in cursors.iter().rev() {
            let segment = &index.segments[id];
            let file = File::open(&segment.path)?;
            if let Some((offset, len)) = at {
                let bytes =
                    segment::read_at(&file, *offset, segment::HEADER_LEN + usize::from(*len))?;
                return Ok(segment::frame_cursor(&bytes).map(str::to_string));
            }
            if segment.sealed {
                for block in index.blocks.iter().rev().filter(|b| b.segment == *id) {
                    if let Some(c) = last_cursor_in(&read_block(block, &file)?) {
                        return Ok(Some(c));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether a rolled segment waits to be sealed.
    pub fn needs_seal(&self) -> bool {
        self.needs_seal.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn stats(&self) -> StreamStats {
        self.index.read().unwrap().stats.clone()
    }

    /// The ordinal the next accepted event gets.
    pub fn end_ordinal(&self) -> u64 {
        self.index
            .read()
            .unwrap()
            .blocks
            .last()
            .map_or(0, Block::end_ordinal)
    }

    /// Appends one batch (in chronological order) durably; returns its first ordinal.
    pub fn append(
        &self,
        events: &[InputEvent],
        ingestion: i64,
        cursor: Option<&str>,
    ) -> Result<u64, AppendError> {
        if events.is_empty() && cursor.is_none() {
            return Ok(self.end_ordinal());
        }
        let mut appender = self.append.lock().unwrap();
        if appender.broken {
            return Err(AppendError::Io(io::Error::other(
                "the stream's last write failed and could not be undone; restart to recover",
            )));
        }
        // The same batch again (a shipper retrying a put whose answer it lost): stored once.
        if let Some(cursor) = cursor
            && self.index.read().unwrap().stats.cursor.as_deref() == Some(cursor)
        {
            return Err(AppendError::AlreadyAccepted);
        }
        let first = appender.next_ordinal;
        let frame = segment::encode_frame(events, first, ingestion, cursor);
        let day = events.first().map_or(0, |e| e.timestamp.div_euclid(DAY_MS));
        let roll = match &appender.active {
            None => true,
            Some((_, _, len, active_day)) => {
                *len + frame.len() as u64 > SEGMENT_TARGET
                    || (*active_day != day && !events.is_empty())
            }
        };
        if roll {
            if appender.active.is_some() {
                self.needs_seal
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let path = segment_path(&self.dir, first);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)?;
            // A segment holding no events yet (only a cursor) may already exist under this
            // name: append after what the index knows it holds, cutting off anything else.
            let known = self
                .index
                .read()
                .unwrap()
                .segments
                .get(&first)
                .map_or(0, |s| s.len);
            if file.metadata()?.len() != known {
                file.set_len(known)?;
            }
            file.sync_all()?;
            File::open(&self.dir)?.sync_all()?; // the new file's directory entry
            self.index
                .write()
                .unwrap()
                .segments
                .entry(first)
                .or_insert(Segment {
                    path,
                    len: known,
                    max_ts: i64::MIN,
                    sealed: false,
                });
            appender.active = Some((first, file, known, day));
        }
        let Appender { active, broken, .. } = &mut *appender;
        let (id, file, len, _) = active.as_mut().expect("a segment is open");
        let offset = *len;
        if let Err(e) = file.write_all(&frame).and_then(|()| file.sync_data()) {
            // Unacknowledged: take back whatever part of the frame reached the file, so
            // that later frames never follow a torn one (which the next open would cut off
            // together with them). If that fails too, the stream takes no more writes.
            if file.set_len(offset).and_then(|()| file.sync_all()).is_err() {
                *broken = true;
            }
            return Err(AppendError::Io(e));
        }
        *len += frame.len() as u64;
        let id = *id;
        let header = FrameHeader::parse(frame[..segment::HEADER_LEN].try_into().unwrap())
            .expect("own frame");
        appender.next_ordinal += events.len() as u64;
        let mut index = self.index.write().unwrap();
        if let Some(segment) = index.segments.get_mut(&id) {
            segment.len = offset + frame.len() as u64;
            if !events.is_empty() {
                segment.max_ts = segment.max_ts.max(header.max_ts);
            }
        }
        // Also a frame of no events (only a cursor): sealing copies blocks, and the cursor
        // must survive it.
        index.publish(id, offset, &header);
        if let Some(cursor) = cursor {
            index.stats.cursor = Some(cursor.to_string());
        }
        Ok(first)
    }

    /// Events with `lower <= (timestamp, ordinal) < upper` and a timestamp in `start..end`,
    /// in time order (see `read::page`).
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        &self,
        lower: EventKey,
        upper: EventKey,
        start: i64,
        end: i64,
        limit: usize,
        max_bytes: usize,
        forward: bool,
    ) -> io::Result<Vec<StoredEvent>> {
        read::page(self, lower, upper, start, end, limit, max_bytes, forward)
    }

    /// The first `limit` matching events in time order (see `read::scan_matching`).
    pub fn scan_matching(
        &self,
        start: i64,
        end: i64,
        literals: Option<&[memchr::memmem::Finder<'_>]>,
        matches: &(dyn Fn(&EventRef<'_>) -> bool + Sync),
        limit: usize,
    ) -> io::Result<Vec<StoredEvent>> {
        read::scan_matching(self, start, end, literals, matches, limit)
    }

    /// Compresses every segment no longer written to into its sealed form; returns how
    /// many were sealed.
    pub fn seal_pending(&self) -> io::Result<usize> {
        let _maintenance = self.maintenance.lock().unwrap();
        self.needs_seal
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let candidates: Vec<u64> = {
            let appender = self.append.lock().unwrap();
            let index = self.index.read().unwrap();
            // Without an open segment the newest one may be written to next.
            let writing = appender
                .active
                .as_ref()
                .map(|(id, ..)| *id)
                .or_else(|| index.segments.keys().next_back().copied());
            index
                .segments
                .iter()
                .filter(|(id, s)| !s.sealed && Some(**id) != writing && s.len > 0)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in &candidates {
            self.seal(*id)?;
        }
        Ok(candidates.len())
    }

    fn seal(&self, id: u64) -> io::Result<()> {
        let (blocks, file) = {
            let index = self.index.read().unwrap();
            let Some(segment) = index.segments.get(&id) else {
                return Ok(());
            };
            let blocks: Vec<Block> = index
                .blocks
                .iter()
                .filter(|b| b.segment == id)
                .copied()
                .collect();
            (blocks, File::open(&segment.path)?)
        };
        let tmp = self.dir.join(format!("{id:020}.segz.tmp"));
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        let mut placed = Vec::with_capacity(blocks.len());
        let mut offset = 0u64;
        for block in &blocks {
            let raw = read_block(block, &file)?;
            let sealed = encode_sealed_block(block, &raw);
            out.write_all(&sealed)?;
            placed.push(Block {
                offset: offset + SEALED_HEADER as u64,
                len: (sealed.len() - SEALED_HEADER) as u64,
                raw_len: raw.len() as u64,
                ..*block
            });
            offset += sealed.len() as u64;
        }
        let out = out.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        drop(out);
        let path = sealed_path(&self.dir, id);
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        let raw_path = {
            let mut index = self.index.write().unwrap();
            let mut next = placed.into_iter();
            for b in index.blocks.iter_mut().filter(|b| b.segment == id) {
                if let Some(p) = next.next() {
                    *b = p;
                }
            }
            let segment = index
                .segments
                .get_mut(&id)
                .expect("segments leave only under maintenance");
            let raw_path = std::mem::replace(&mut segment.path, path);
            segment.len = offset;
            segment.sealed = true;
            index.restat();
            raw_path
        };
        // Readers holding the old handle finish on it; the name goes now.
        fs::remove_file(raw_path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// The blocks to read, each with its segment's file, opened while the index is read
    /// locked (sealing and expiry change names only under its write lock).
    fn blocks_between(
        &self,
        from: u64,
        to: u64,
        start: i64,
        end: i64,
    ) -> io::Result<Vec<(Block, Source)>> {
        let index = self.index.read().unwrap();
        let first = index.blocks.partition_point(|b| b.end_ordinal() <= from);
        let mut files: BTreeMap<u64, Arc<File>> = BTreeMap::new();
        let mut out = Vec::new();
        for b in index.blocks[first..]
            .iter()
            .take_while(|b| b.first_ordinal < to)
            .filter(|b| b.overlaps(start, end))
        {
            let Some(segment) = index.segments.get(&b.segment) else {
                continue;
            };
            let file = match files.get(&b.segment) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(&segment.path)?);
                    files.insert(b.segment, f.clone());
                    f
                }
            };
            out.push((*b, Source::File(file)));
        }
        Ok(out)
    }

    /// Removes every segment whose events are all older than `cutoff`; returns how many.
    pub fn expire(&self, cutoff: i64) -> io::Result<usize> {
        let _maintenance = self.maintenance.lock().unwrap();
        let mut appender = self.append.lock().unwrap();
        let doomed: Vec<(u64, PathBuf)> = {
            let index = self.index.read().unwrap();
            index
                .segments
                .iter()
                .filter(|(_, s)| s.len > 0 && s.max_ts < cutoff)
                .map(|(id, s)| (*id, s.path.clone()))
                .collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        if appender
            .active
            .as_ref()
            .is_some_and(|(id, ..)| doomed.iter().any(|(d, _)| d == id))
        {
            appender.active = None;
        }
        {
            // Out of the index first: a reader opens files under the read lock, so none
            // opens one of these once they are gone from it (one already open reads on).
            let mut index = self.index.write().unwrap();
            for (id, _) in &doomed {
                index.segments.remove(id);
            }
            index
                .blocks
                .retain(|b| !doomed.iter().any(|(d, _)| *d == b.segment));
            index.restat();
        }
        for (_, path) in &doomed {
            fs::remove_file(path)?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(doomed.len())
    }

    /// Segment files on disk (for tests and stored-bytes accounting).
    pub fn segment_count(&self) -> usize {
        self.index.read().unwrap().segments.len()
    }
}

impl Index {
    fn publish(&mut self, segment: u64, offset: u64, h: &FrameHeader) {
        let frame_len = h.frame_len();
        let count = u64::from(h.count);
        // A frame of no events (a cursor alone) has no time range: it never overlaps one.
        let (min_ts, max_ts) = if count > 0 {
            (h.min_ts, h.max_ts)
        } else {
            (i64::MAX, i64::MIN)
        };
        match self.blocks.last_mut() {
            Some(b)
                if b.segment == segment
                    && b.offset + b.len == offset
                    && b.len + frame_len <= BLOCK_TARGET
                    && b.end_ordinal() == h.first_ordinal =>
            {
                b.len += frame_len;
                b.count += count;
                b.min_ts = b.min_ts.min(min_ts);
                b.max_ts = b.max_ts.max(max_ts);
            }
            _ => self.blocks.push(Block {
                segment,
                offset,
                len: frame_len,
                raw_len: 0,
                first_ordinal: h.first_ordinal,
                count,
                min_ts,
                max_ts,
            }),
        }
        self.count(min_ts, max_ts, Some(h.ingestion), frame_len, count);
    }

    /// Adds a sealed block read at open (its ingestion time is not in its header).
    fn publish_block(&mut self, block: Block, ingestion: i64) {
        self.count(
            block.min_ts,
            block.max_ts,
            (ingestion > 0).then_some(ingestion),
            block.len + SEALED_HEADER as u64,
            block.count,
        );
        self.blocks.push(block);
    }

    fn count(&mut self, min_ts: i64, max_ts: i64, ingestion: Option<i64>, bytes: u64, events: u64) {
        let s = &mut self.stats;
        s.stored_bytes += bytes;
        if events == 0 {
            return;
        }
        s.first_event = Some(s.first_event.map_or(min_ts, |t| t.min(min_ts)));
        s.last_event = Some(s.last_event.map_or(max_ts, |t| t.max(max_ts)));
        if let Some(ingestion) = ingestion {
            s.last_ingestion = Some(s.last_ingestion.map_or(ingestion, |t| t.max(ingestion)));
        }
        s.events += events;
    }

    /// Recomputes the stats after blocks went away (ingestion times are kept).
    fn restat(&mut self) {
        let s = &mut self.stats;
        let with_events = || self.blocks.iter().filter(|b| b.count > 0);
        s.first_event = with_events().map(|b| b.min_ts).min();
        s.last_event = with_events().map(|b| b.max_ts).max();
        s.stored_bytes = self
            .blocks
            .iter()
            .map(|b| {
                b.len
                    + if b.raw_len > 0 {
                        SEALED_HEADER as u64
                    } else {
                        0
                    }
            })
            .sum();
        s.events = self.blocks.iter().map(|b| b.count).sum();
    }
}

/// One sealed block: its header and `raw` (whole frames, `block`'s) LZ4-compressed.
pub(crate) fn encode_sealed_block(block: &Block, raw: &[u8]) -> Vec<u8> {
    let compressed = lz4_flex::block::compress(raw);
    let mut out = Vec::with_capacity(SEALED_HEADER + compressed.len());
    out.extend_from_slice(&SEALED_MAGIC.to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&segment::crc32(&compressed).to_le_bytes());
    out.extend_from_slice(&block.first_ordinal.to_le_bytes());
    out.extend_from_slice(&(block.count as u32).to_le_bytes());
    out.extend_from_slice(&block.min_ts.to_le_bytes());
    out.extend_from_slice(&block.max_ts.to_le_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// A sealed block's header read at `offset` (the block's bytes follow it); its checksum.
fn parse_sealed_header(h: &[u8], offset: u64, segment: u64) -> io::Result<(Block, u32)> {
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
    if h.len() < SEALED_HEADER || u32_at(0) != SEALED_MAGIC {
        return Err(io::Error::other(
            "corrupt sealed log segment: bad block magic",
        ));
    }
    let block = Block {
        segment,
        offset: offset + SEALED_HEADER as u64,
        len: u64::from(u32_at(8)),
        raw_len: u64::from(u32_at(4)),
        first_ordinal: u64_at(16),
        count: u64::from(u32_at(24)),
        min_ts: u64_at(28) as i64,
        max_ts: u64_at(36) as i64,
    };
    Ok((block, u32_at(12)))
}

/// The blocks of a sealed segment held in memory (checking each block's checksum).
pub(crate) fn parse_sealed(bytes: &[u8], segment: u64) -> io::Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    while (offset as usize) < bytes.len() {
        let h = bytes
            .get(offset as usize..offset as usize + SEALED_HEADER)
            .ok_or_else(|| io::Error::other("corrupt sealed log segment: short header"))?;
        let (block, crc) = parse_sealed_header(h, offset, segment)?;
        let compressed = bytes
            .get(block.offset as usize..(block.offset + block.len) as usize)
            .ok_or_else(|| io::Error::other("corrupt sealed log segment: short block"))?;
        if segment::crc32(compressed) != crc {
            return Err(io::Error::other(
                "corrupt sealed log segment: block checksum",
            ));
        }
        out.push(block);
        offset = block.offset + block.len;
    }
    Ok(out)
}

/// Reads a sealed segment's block headers (checking each block's checksum).
fn read_sealed_headers(file: &File, segment: u64) -> io::Result<Vec<Block>> {
    let total = file.metadata()?.len();
    let mut out = Vec::new();
    let mut offset = 0u64;
    while offset < total {
        let h = segment::read_at(file, offset, SEALED_HEADER)?;
        let (block, crc) = parse_sealed_header(&h, offset, segment)?;
        let compressed = segment::read_at(file, block.offset, block.len as usize)?;
        if segment::crc32(&compressed) != crc {
            return Err(io::Error::other(
                "corrupt sealed log segment: block checksum",
            ));
        }
        out.push(block);
        offset = block.offset + block.len;
    }
    Ok(out)
}

impl BlockSource for StreamStore {
    fn blocks(&self, start: i64, end: i64) -> io::Result<Vec<(Block, Source)>> {
        self.blocks_between(0, u64::MAX, start, end)
    }
}

/// Reads a segment's frame headers (and, for the last segment, checks every frame's
/// checksum); returns them with their offsets and the length of the intact prefix.
fn scan_segment(file: &File, verify: bool) -> io::Result<(Vec<(u64, FrameHeader)>, u64)> {
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut headers = Vec::new();
    let mut offset = 0u64;
    while offset < total {
        let Some(h) = segment::read_header(&mut reader)? else {
            break;
        };
        if offset + h.frame_len() > total {
            break;
        }
        if verify {
            let frame = segment::read_at(file, offset, h.frame_len() as usize)?;
            if !segment::frame_intact(&frame) {
                break;
            }
        }
        reader.seek_relative(i64::from(h.body_len))?;
        headers.push((offset, h));
        offset += h.frame_len();
    }
    Ok((headers, offset))
}

#[cfg(test)]
mod tests;
