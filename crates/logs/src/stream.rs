//! One log stream's events on disk: a directory of segment files (see `segment`) and an
//! in-memory index of blocks, rebuilt from the frame headers when the stream is opened.
//!
//! Every event has an *ordinal*, its position in the stream (0, 1, 2, ... in the order the
//! events were accepted); GetLogEvents' tokens are ordinals. A block is a run of whole
//! frames in one segment (up to `BLOCK_TARGET` bytes, or one larger frame) with its
//! ordinal range and its smallest and largest timestamp, so that a page is found by a
//! binary search and a time range skips blocks unseen.
//!
//! Segments roll at `SEGMENT_TARGET` bytes and when a batch's UTC day differs from the
//! segment's, so that retention removes whole files.
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

pub const BLOCK_TARGET: u64 = 128 << 10;
pub const SEGMENT_TARGET: u64 = 64 << 20;
const DAY_MS: i64 = 86_400_000;

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

#[derive(Debug, Clone, Copy)]
struct Block {
    segment: u64,
    offset: u64,
    len: u64,
    first_ordinal: u64,
    count: u64,
    min_ts: i64,
    max_ts: i64,
}

impl Block {
    fn end_ordinal(&self) -> u64 {
        self.first_ordinal + self.count
    }

    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.max_ts >= start && self.min_ts < end
    }
}

struct Segment {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    max_ts: i64,
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
}

pub struct StreamStore {
    dir: PathBuf,
    append: Mutex<Appender>,
    index: RwLock<Index>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

impl StreamStore {
    /// Opens (creating if needed) the stream stored in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path) -> io::Result<StreamStore> {
        fs::create_dir_all(dir)?;
        let mut ids: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut index = Index::default();
        let mut next_ordinal = 0;
        let mut last_cursor: Option<(u64, u64, u16)> = None; // segment, offset, len
        for (i, &id) in ids.iter().enumerate() {
            let is_last = i + 1 == ids.len();
            let path = segment_path(dir, id);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let (headers, valid_len) = scan_segment(&file, is_last)?;
            if valid_len < file.metadata()?.len() {
                tracing::warn!(path = %path.display(), valid_len, "cutting off an unacknowledged torn write");
                file.set_len(valid_len)?;
                file.sync_all()?;
            }
            let file = Arc::new(file);
            let mut max_ts = i64::MIN;
            for (offset, h) in headers {
                if h.count == 0 {
                    continue;
                }
                if h.cursor_len > 0 {
                    last_cursor = Some((id, offset, h.cursor_len));
                }
                max_ts = max_ts.max(h.max_ts);
                next_ordinal = next_ordinal.max(h.first_ordinal + u64::from(h.count));
                index.publish(id, offset, &h);
            }
            index.segments.insert(
                id,
                Segment {
                    file,
                    path,
                    len: valid_len,
                    max_ts,
                },
            );
        }
        if let Some((id, offset, len)) = last_cursor {
            let file = &index.segments[&id].file;
            let bytes = segment::read_at(file, offset, segment::HEADER_LEN + usize::from(len))?;
            index.stats.cursor = segment::frame_cursor(&bytes).map(str::to_string);
        }
        Ok(StreamStore {
            dir: dir.to_path_buf(),
            append: Mutex::new(Appender {
                active: None,
                next_ordinal,
            }),
            index: RwLock::new(index),
        })
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
    ) -> io::Result<u64> {
        if events.is_empty() && cursor.is_none() {
            return Ok(self.end_ordinal());
        }
        let mut appender = self.append.lock().unwrap();
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
            let path = segment_path(&self.dir, first);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)?;
            File::open(&self.dir)?.sync_all()?; // the new file's directory entry
            // A segment holding no events yet (only a cursor) may already exist under
            // this name: append after what it holds.
            let existing = file.metadata()?.len();
            let reader = Arc::new(file.try_clone()?);
            self.index
                .write()
                .unwrap()
                .segments
                .entry(first)
                .or_insert(Segment {
                    file: reader,
                    path,
                    len: existing,
                    max_ts: i64::MIN,
                });
            appender.active = Some((first, file, existing, day));
        }
        let (id, file, len, _) = appender.active.as_mut().expect("a segment is open");
        let offset = *len;
        if let Err(e) = file.write_all(&frame).and_then(|()| file.sync_data()) {
            // Whatever part of the frame reached the file is cut off at the next open;
            // start a fresh segment for the next put.
            appender.active = None;
            return Err(e);
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
        if header.count > 0 {
            index.publish(id, offset, &header);
        }
        if let Some(cursor) = cursor {
            index.stats.cursor = Some(cursor.to_string());
        }
        Ok(first)
    }

    /// Events with ordinals in `from..to` and timestamps in `start..end`, skipping those
    /// before `not_before` (retention): forward, the first `limit` (and at most
    /// `max_bytes`, counting 26 bytes per event as AWS does); backward, the last ones.
    /// Always in ascending ordinal order.
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        &self,
        from: u64,
        to: u64,
        start: i64,
        end: i64,
        limit: usize,
        max_bytes: usize,
        forward: bool,
    ) -> io::Result<Vec<StoredEvent>> {
        let blocks = self.blocks_between(from, to, start, end);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let wanted = |e: &EventRef<'_>| {
            e.ordinal >= from && e.ordinal < to && e.timestamp >= start && e.timestamp < end
        };
        let full =
            |bytes: usize, n: usize, next: usize| n >= limit || bytes + next + 26 > max_bytes;
        if forward {
            'blocks: for (block, file) in &blocks {
                let data = segment::read_at(file, block.offset, block.len as usize)?;
                let mut stop = false;
                segment::decode_frames(&data, |e| {
                    if wanted(&e) {
                        if full(bytes, out.len(), e.message.len()) {
                            stop = true;
                            return false;
                        }
                        bytes += e.message.len() + 26;
                        out.push(StoredEvent::from(e));
                    }
                    true
                })
                .map_err(io::Error::other)?;
                if stop {
                    break 'blocks;
                }
            }
        } else {
            'blocks: for (block, file) in blocks.iter().rev() {
                let data = segment::read_at(file, block.offset, block.len as usize)?;
                let mut in_block = Vec::new();
                segment::decode_frames(&data, |e| {
                    if wanted(&e) {
                        in_block.push(e);
                    }
                    true
                })
                .map_err(io::Error::other)?;
                for e in in_block.into_iter().rev() {
                    if full(bytes, out.len(), e.message.len()) {
                        break 'blocks;
                    }
                    bytes += e.message.len() + 26;
                    out.push(StoredEvent::from(e));
                }
            }
            out.reverse();
        }
        Ok(out)
    }

    /// Visits, in ordinal order, every event with a timestamp in `start..end` and an
    /// ordinal from `from`, in blocks that may hold one of `literals` (when given); `visit`
    /// returns `false` to stop.
    pub fn scan(
        &self,
        from: u64,
        start: i64,
        end: i64,
        literals: Option<&[memchr::memmem::Finder<'_>]>,
        mut visit: impl FnMut(EventRef<'_>) -> bool,
    ) -> io::Result<()> {
        let blocks = self.blocks_between(from, u64::MAX, start, end);
        for (block, file) in &blocks {
            let data = segment::read_at(file, block.offset, block.len as usize)?;
            if let Some(literals) = literals
                && !literals.iter().any(|f| f.find(&data).is_some())
            {
                continue;
            }
            let mut stop = false;
            segment::decode_frames(&data, |e| {
                if e.ordinal >= from && e.timestamp >= start && e.timestamp < end && !visit(e) {
                    stop = true;
                    return false;
                }
                true
            })
            .map_err(io::Error::other)?;
            if stop {
                break;
            }
        }
        Ok(())
    }

    fn blocks_between(&self, from: u64, to: u64, start: i64, end: i64) -> Vec<(Block, Arc<File>)> {
        let index = self.index.read().unwrap();
        let first = index.blocks.partition_point(|b| b.end_ordinal() <= from);
        index.blocks[first..]
            .iter()
            .take_while(|b| b.first_ordinal < to)
            .filter(|b| b.overlaps(start, end))
            .filter_map(|b| Some((*b, index.segments.get(&b.segment)?.file.clone())))
            .collect()
    }

    /// Removes every segment whose events are all older than `cutoff`; returns how many.
    pub fn expire(&self, cutoff: i64) -> io::Result<usize> {
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
        for (_, path) in &doomed {
            fs::remove_file(path)?;
        }
        File::open(&self.dir)?.sync_all()?;
        let mut index = self.index.write().unwrap();
        for (id, _) in &doomed {
            index.segments.remove(id);
        }
        index
            .blocks
            .retain(|b| !doomed.iter().any(|(d, _)| *d == b.segment));
        index.restat();
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
        match self.blocks.last_mut() {
            Some(b)
                if b.segment == segment
                    && b.offset + b.len == offset
                    && b.len + frame_len <= BLOCK_TARGET
                    && b.end_ordinal() == h.first_ordinal =>
            {
                b.len += frame_len;
                b.count += count;
                b.min_ts = b.min_ts.min(h.min_ts);
                b.max_ts = b.max_ts.max(h.max_ts);
            }
            _ => self.blocks.push(Block {
                segment,
                offset,
                len: frame_len,
                first_ordinal: h.first_ordinal,
                count,
                min_ts: h.min_ts,
                max_ts: h.max_ts,
            }),
        }
        let s = &mut self.stats;
        s.first_event = Some(s.first_event.map_or(h.min_ts, |t| t.min(h.min_ts)));
        s.last_event = Some(s.last_event.map_or(h.max_ts, |t| t.max(h.max_ts)));
        s.last_ingestion = Some(s.last_ingestion.map_or(h.ingestion, |t| t.max(h.ingestion)));
        s.stored_bytes += frame_len;
        s.events += count;
    }

    /// Recomputes the stats after blocks went away (ingestion times are kept).
    fn restat(&mut self) {
        let s = &mut self.stats;
        s.first_event = self.blocks.iter().map(|b| b.min_ts).min();
        s.last_event = self.blocks.iter().map(|b| b.max_ts).max();
        s.stored_bytes = self.blocks.iter().map(|b| b.len).sum();
        s.events = self.blocks.iter().map(|b| b.count).sum();
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
