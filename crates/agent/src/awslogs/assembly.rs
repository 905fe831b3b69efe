//! Docker's log entries → lines (partial entries joined) → events (multiline patterns, per
//! stream), split where an event is over CloudWatch's size.

use std::time::{Duration, Instant};

use berth_runtime::LogSource;
use regex::Regex;

use super::api::MAX_BYTES_PER_EVENT;
use super::cursor::{Position, index};

/// A multiline event nothing was added to for this long is complete.
pub const MULTILINE_IDLE: Duration = Duration::from_secs(1);

/// One CloudWatch event, with where its last entry sits in Docker's log (`None` for all but
/// the last piece of an event split for size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub source: LogSource,
    /// Milliseconds since the epoch: its first entry's time.
    pub timestamp: i64,
    pub message: String,
    /// Its first entry's time, to the nanosecond.
    pub start_nanos: i128,
    pub end: Option<Position>,
}

#[derive(Debug, Default)]
struct StreamAssembly {
    /// A line whose entries so far were partial.
    partial: Vec<u8>,
    partial_start: i128,
    partial_end: Option<Position>,
    /// A multiline event open for more lines.
    open: Option<OpenEvent>,
}

#[derive(Debug)]
struct OpenEvent {
    message: String,
    start_nanos: i128,
    end: Position,
    touched: Instant,
}

/// Joins partial entries into lines and (with a multiline pattern) lines into events, per
/// stream.
#[derive(Debug)]
pub struct Assembler {
    multiline: Option<Regex>,
    streams: [StreamAssembly; 2],
}

impl Assembler {
    pub fn new(multiline: Option<Regex>) -> Assembler {
        Assembler {
            multiline,
            streams: Default::default(),
        }
    }

    /// Takes one new entry; completed events go to `out`.
    pub fn push(
        &mut self,
        source: LogSource,
        position: Position,
        bytes: &[u8],
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        let (body, complete) = match bytes.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (bytes, false),
        };
        let stream = &mut self.streams[index(source)];
        // A line grown past an event's size goes in pieces cut at entry boundaries, each
        // with its own position.
        if !stream.partial.is_empty() && stream.partial.len() + body.len() > MAX_BYTES_PER_EVENT {
            self.take_partial(source, now, out);
        }
        let stream = &mut self.streams[index(source)];
        if stream.partial.is_empty() {
            stream.partial_start = position.nanos;
        }
        stream.partial.extend_from_slice(body);
        stream.partial_end = Some(position);
        if complete {
            self.take_partial(source, now, out);
        }
    }

    fn take_partial(&mut self, source: LogSource, now: Instant, out: &mut Vec<Event>) {
        let stream = &mut self.streams[index(source)];
        let Some(end) = stream.partial_end.take() else {
            return;
        };
        let line = String::from_utf8_lossy(&std::mem::take(&mut stream.partial)).into_owned();
        let start = stream.partial_start;
        self.line(source, start, end, line, now, out);
    }

    fn line(
        &mut self,
        source: LogSource,
        start_nanos: i128,
        end: Position,
        line: String,
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        let Some(pattern) = &self.multiline else {
            emit(source, start_nanos, end, line, out);
            return;
        };
        let starts = pattern.is_match(&line);
        let stream = &mut self.streams[index(source)];
        if let Some(open) = &stream.open
            && (starts || open.message.len() + 1 + line.len() > MAX_BYTES_PER_EVENT)
        {
            let open = stream.open.take().expect("open");
            emit(source, open.start_nanos, open.end, open.message, out);
        }
        match &mut stream.open {
            Some(open) => {
                open.message.push('\n');
                open.message.push_str(&line);
                open.end = end;
                open.touched = now;
            }
            None => {
                stream.open = Some(OpenEvent {
                    message: line,
                    start_nanos,
                    end,
                    touched: now,
                })
            }
        }
    }

    /// Closes multiline events nothing was added to for [`MULTILINE_IDLE`].
    pub fn flush_idle(&mut self, now: Instant, out: &mut Vec<Event>) {
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let stream = &mut self.streams[index(source)];
            if stream
                .open
                .as_ref()
                .is_some_and(|open| now >= open.touched + MULTILINE_IDLE)
            {
                let open = stream.open.take().expect("open");
                emit(source, open.start_nanos, open.end, open.message, out);
            }
        }
    }

    /// Everything held, as events: the container has ended.
    pub fn flush_all(&mut self, now: Instant, out: &mut Vec<Event>) {
        for source in [LogSource::Stdout, LogSource::Stderr] {
            self.take_partial(source, now, out);
            if let Some(open) = self.streams[index(source)].open.take() {
                emit(source, open.start_nanos, open.end, open.message, out);
            }
        }
    }

    /// When the next multiline event falls idle.
    pub fn idle_deadline(&self) -> Option<Instant> {
        self.streams
            .iter()
            .filter_map(|s| s.open.as_ref().map(|o| o.touched + MULTILINE_IDLE))
            .min()
    }

    /// The earliest entry held (nanoseconds).
    pub fn held_since(&self) -> Option<i128> {
        self.streams
            .iter()
            .flat_map(|s| {
                let partial = s.partial_end.map(|_| s.partial_start);
                partial
                    .into_iter()
                    .chain(s.open.as_ref().map(|o| o.start_nanos))
            })
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.partial_end.is_none() && s.open.is_none())
    }
}

/// An event for `out`: none for an empty message (CloudWatch refuses them), several for one
/// over the size limit (cut at character boundaries; only the last carries the position).
fn emit(
    source: LogSource,
    start_nanos: i128,
    end: Position,
    message: String,
    out: &mut Vec<Event>,
) {
    if message.is_empty() {
        return;
    }
    let timestamp = i64::try_from(start_nanos.div_euclid(1_000_000)).unwrap_or(i64::MAX);
    let mut rest = message.as_str();
    while rest.len() > MAX_BYTES_PER_EVENT {
        let mut cut = MAX_BYTES_PER_EVENT;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(Event {
            source,
            timestamp,
            message: rest[..cut].to_owned(),
            start_nanos,
            end: None,
        });
        rest = &rest[cut..];
    }
    out.push(Event {
        source,
        timestamp,
        message: rest.to_owned(),
        start_nanos,
        end: Some(end),
    });
}
