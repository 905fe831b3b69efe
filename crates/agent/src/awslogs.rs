//! The `awslogs` log driver, done by the agent instead of Docker: a container whose task
//! definition asks for `awslogs` is created with Docker's `json-file` driver (Docker's log
//! file is the durable buffer), and a shipper — one tokio task per container, off the task
//! engine's path — reads its stdout and stderr back from Docker and sends them to the
//! control plane's CloudWatch Logs API (PutLogEvents, signed for service `logs` in the
//! `awslogs-region`).
//!
//! **Exactly once.** Every PutLogEvents carries Berth's `berthShipperCursor`, which the
//! server stores with the batch in one durable write: where in Docker's log the shipped
//! events end, per stream (the timestamp of the last entry shipped and how many entries of
//! that stream carry exactly that timestamp). A (re)started shipper reads the cursor back
//! (DescribeLogStreams), asks Docker for the log from the earliest time it names and skips
//! what it covers; a put whose answer was lost is checked against the stored cursor before
//! it is sent again.
//!
//! Assembly follows Docker's driver: partial entries (lines over 16 KiB) are joined back;
//! `awslogs-multiline-pattern` / `awslogs-datetime-format` (strftime, turned into a regex as
//! Docker does) join lines into events (per stream, unlike Docker, which mixes the two);
//! events over CloudWatch's size are split; batches respect PutLogEvents' limits and leave
//! at most every [`FLUSH_INTERVAL`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_runtime::{
    ContainerId, ContainerRuntime, ContainerState, LogFrame, LogSource, LogStream, RuntimeError,
};
use futures_util::StreamExt;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::client::{AwsClient, ClientError, ControlFuture};

pub const DRIVER: &str = "awslogs";
/// PutLogEvents' limits, counted as CloudWatch Logs counts them.
const MAX_EVENTS_PER_PUT: usize = 10_000;
const MAX_BYTES_PER_PUT: usize = 1_048_576;
const PER_EVENT_BYTES: usize = 26;
/// CloudWatch Logs' largest event (1 MiB since 2025; Docker's driver still splits at 256 KiB).
pub const MAX_BYTES_PER_EVENT: usize = MAX_BYTES_PER_PUT - PER_EVENT_BYTES;
const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// How long an event may wait for company before it is sent. Docker's driver waits 5 s;
/// short here, so that `aws logs tail --follow` shows a line within a second.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// A multiline event nothing was added to for this long is complete.
pub const MULTILINE_IDLE: Duration = Duration::from_secs(1);
/// When a stopped task is cleaned up, a shipper that made no progress for this long is
/// given up on (what it still held is lost, with a warning).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BUFFER_SIZE: usize = 1 << 20;
/// How much earlier than an entry of the other stream that Docker wrote before it an entry
/// may be timestamped (each stream is timestamped by its own reader before the entry is
/// written): the margin of the cursor's floor.
const INTERLEAVE_MARGIN_NANOS: i128 = 60 * 1_000_000_000;
const CURSOR_VERSION: &str = "v1";
/// What Docker's json-file driver keeps of an awslogs container: enough for the shipper to
/// fall far behind (control plane away) without filling the host's disk.
pub const JSON_FILE_MAX_SIZE: &str = "100m";
pub const JSON_FILE_MAX_FILES: &str = "5";

const LOGS_TARGET_PREFIX: &str = "Logs_20140328";
const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_ALREADY_EXISTS: &str = "ResourceAlreadyExistsException";
const DATA_ALREADY_ACCEPTED: &str = "DataAlreadyAcceptedException";

// ---- options ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Nothing is dropped: when the shipper's buffer is full it stops reading Docker's log
    /// (which keeps the rest on disk). Unlike ECS, the container itself never blocks.
    Blocking,
    /// The buffer holds at most `max-buffer-size`; when full, the oldest events go.
    NonBlocking,
}

/// Why a container's awslogs options are refused, in Docker's words (the task stops with
/// `CannotCreateContainerError: Error response from daemon: {this}`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OptionsError {
    #[error("unknown log opt '{0}' for {driver} log driver", driver = DRIVER)]
    Unknown(String),
    #[error("must specify a value for log opt 'awslogs-group'")]
    NoGroup,
    #[error("strconv.ParseBool: parsing \"{0}\": invalid syntax")]
    Bool(String),
    #[error("logger: logging mode not supported: {0}")]
    Mode(String),
    #[error("invalid size: '{0}'")]
    Size(String),
    #[error(
        "you cannot configure log opt 'awslogs-datetime-format' and \
         'awslogs-multiline-pattern' at the same time"
    )]
    BothMultiline,
    #[error("awslogs could not parse multiline pattern key \"{pattern}\": {source}")]
    Pattern {
        pattern: String,
        source: regex::Error,
    },
}

/// A container's awslogs options, checked as Docker checks them.
#[derive(Debug, Clone)]
pub struct AwslogsOptions {
    pub group: String,
    pub region: String,
    pub stream_prefix: Option<String>,
    /// Docker's `awslogs-stream`: the stream's name as given.
    pub stream: Option<String>,
    pub create_group: bool,
    pub mode: DeliveryMode,
    pub max_buffer_size: usize,
    /// Starts a new event (from `awslogs-multiline-pattern` or `awslogs-datetime-format`).
    pub multiline: Option<Regex>,
}

/// Options Docker's awslogs driver (and ECS) accept. Those not listed in the module
/// documentation are accepted and ignored.
const KNOWN_OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-stream",
    "awslogs-create-group",
    "awslogs-create-stream",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "awslogs-endpoint",
    "awslogs-credentials-endpoint",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "awslogs-format",
    "mode",
    "max-buffer-size",
    "tag",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
];

impl AwslogsOptions {
    /// Reads the options; the error is Docker's message. Without `awslogs-region` the
    /// agent's own region is used (Docker would ask the EC2 metadata service).
    pub fn parse(
        options: &BTreeMap<String, String>,
        default_region: &str,
    ) -> Result<AwslogsOptions, OptionsError> {
        if let Some(unknown) = options
            .keys()
            .find(|k| !KNOWN_OPTIONS.contains(&k.as_str()))
        {
            return Err(OptionsError::Unknown(unknown.clone()));
        }
        let get = |key: &str| {
            options
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let group = get("awslogs-group")
            .ok_or(OptionsError::NoGroup)?
            .to_owned();
        let create_group = match get("awslogs-create-group") {
            None => false,
            Some(value) => parse_bool(value).ok_or_else(|| OptionsError::Bool(value.to_owned()))?,
        };
        let mode = match get("mode") {
            None | Some("blocking") => DeliveryMode::Blocking,
            Some("non-blocking") => DeliveryMode::NonBlocking,
            Some(other) => return Err(OptionsError::Mode(other.to_owned())),
        };
        let max_buffer_size = match get("max-buffer-size") {
            None => DEFAULT_MAX_BUFFER_SIZE,
            Some(size) => parse_size(size)
                .filter(|s| *s > 0)
                .ok_or_else(|| OptionsError::Size(size.to_owned()))?,
        };
        let datetime = get("awslogs-datetime-format");
        let pattern = get("awslogs-multiline-pattern");
        let multiline = match (datetime, pattern) {
            (Some(_), Some(_)) => return Err(OptionsError::BothMultiline),
            (Some(format), None) => Some(datetime_format_regex(format)),
            (None, Some(pattern)) => Some(pattern.to_owned()),
            (None, None) => None,
        };
        let multiline = multiline
            .map(|pattern| {
                Regex::new(&pattern).map_err(|source| OptionsError::Pattern { pattern, source })
            })
            .transpose()?;
        Ok(AwslogsOptions {
            group,
            region: get("awslogs-region").unwrap_or(default_region).to_owned(),
            stream_prefix: get("awslogs-stream-prefix").map(str::to_owned),
            stream: get("awslogs-stream").map(str::to_owned),
            create_group,
            mode,
            max_buffer_size,
            multiline,
        })
    }

    /// The stream's name as ECS makes it: `prefix/container-name/task-id` with a prefix,
    /// else Docker's default, the container's id.
    pub fn stream_name(&self, container_name: &str, task_arn: &str, container_id: &str) -> String {
        match (&self.stream_prefix, &self.stream) {
            (Some(prefix), _) => {
                let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
                format!("{prefix}/{container_name}/{task_id}")
            }
            (None, Some(stream)) => stream.clone(),
            (None, None) => container_id.to_owned(),
        }
    }
}

/// Go's `strconv.ParseBool`, which Docker uses.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's size syntax (`units.RAMInBytes`): a number, an optional space, an optional
/// binary unit `k`/`m`/`g`/`t`/`p` (any case) and an optional `i`/`b`: `4m`, `25MiB`, `1024`.
pub fn parse_size(text: &str) -> Option<usize> {
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let bytes = number * 1024f64.powi(power);
    (bytes.is_finite() && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// `awslogs-datetime-format` as Docker turns it into a pattern: each `%X` becomes a regex
/// (an unknown one nothing), everything else stays as written (a `.` matches any character).
pub fn datetime_format_regex(format: &str) -> String {
    let mut pattern = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            pattern.push(c);
            continue;
        }
        let Some(directive) = chars.next() else {
            pattern.push('%');
            break;
        };
        pattern.push_str(match directive {
            'a' => r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            'A' => r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            'w' => r"[0-6]",
            'd' => r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
            'b' => r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            'B' => {
                r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
            }
            'm' => r"(?:0[1-9]|1[0-2])",
            'Y' => r"\d{4}",
            'y' => r"\d{2}",
            'H' => r"(?:[0,1][0-9]|2[0-3])",
            'I' => r"(?:0[0-9]|1[0-2])",
            'p' => r"[A,P]M",
            'M' => r"[0-5][0-9]",
            'S' => r"[0-5][0-9]",
            'f' => r"\d{6}",
            'z' => r"[+-]\d{4}",
            'Z' => r"[A-Z]{1,4}T",
            'j' => r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            'L' => r"\.\d{3}",
            _ => "",
        });
    }
    pattern
}

// ---- the cursor ----

/// Where an entry sits in one stream of Docker's log: its timestamp, and how many entries
/// of that stream carry exactly that timestamp up to and including it (Docker stamps the
/// pieces of a long line alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub nanos: i128,
    pub seen: u32,
}

/// What the server holds of a stream's delivery (`berthShipperCursor`): the last entry
/// shipped of stdout and of stderr, and a floor — no entry of a stream without a position
/// is older — plus a batch number, so that every put's cursor differs from the last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub batch: u64,
    pub stdout: Option<Position>,
    pub stderr: Option<Position>,
    pub floor: Option<i128>,
}

fn index(source: LogSource) -> usize {
    match source {
        LogSource::Stdout => 0,
        LogSource::Stderr => 1,
    }
}

fn format_nanos(nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| nanos.to_string())
}

fn parse_nanos(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

impl Cursor {
    pub fn position(&self, source: LogSource) -> Option<Position> {
        match source {
            LogSource::Stdout => self.stdout,
            LogSource::Stderr => self.stderr,
        }
    }

    fn set_position(&mut self, source: LogSource, position: Position) {
        match source {
            LogSource::Stdout => self.stdout = Some(position),
            LogSource::Stderr => self.stderr = Some(position),
        }
    }

    /// `v1 n=12 o=2024-05-01T12:00:00.123456789Z/1 e=…/2 f=…`: well under 512 bytes.
    pub fn encode(&self) -> String {
        let mut text = format!("{CURSOR_VERSION} n={}", self.batch);
        for (key, position) in [("o", self.stdout), ("e", self.stderr)] {
            if let Some(p) = position {
                text.push_str(&format!(" {key}={}/{}", format_nanos(p.nanos), p.seen));
            }
        }
        if let Some(floor) = self.floor {
            text.push_str(&format!(" f={}", format_nanos(floor)));
        }
        text
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.split(' ');
        if parts.next()? != CURSOR_VERSION {
            return None;
        }
        let mut cursor = Cursor::default();
        for part in parts {
            let (key, value) = part.split_once('=')?;
            let position = || -> Option<Position> {
                let (time, seen) = value.rsplit_once('/')?;
                Some(Position {
                    nanos: parse_nanos(time)?,
                    seen: seen.parse().ok()?,
                })
            };
            match key {
                "n" => cursor.batch = value.parse().ok()?,
                "o" => cursor.stdout = Some(position()?),
                "e" => cursor.stderr = Some(position()?),
                "f" => cursor.floor = Some(parse_nanos(value)?),
                _ => {}
            }
        }
        Some(cursor)
    }
}

/// Which entries of Docker's log are new, across reads of it: the position of the last
/// entry taken from each stream, and a floor for a stream nothing was taken from yet.
///
/// A read (`begin_pass`) starts at [`ReadPosition::since`]; each stream's entries come in
/// the order they were written, so within a pass the entries of a stream taken before are
/// a prefix: they are skipped until the first one past the stream's position, and from
/// then on everything of that stream is new.
#[derive(Debug, Clone, Default)]
pub struct ReadPosition {
    taken: [Option<Position>; 2],
    floor: Option<i128>,
    catching_up: [bool; 2],
    last_in_pass: [Option<Position>; 2],
}

impl ReadPosition {
    /// Resuming from what the server holds.
    pub fn from_cursor(cursor: &Cursor) -> ReadPosition {
        ReadPosition {
            taken: [cursor.stdout, cursor.stderr],
            floor: cursor.floor,
            ..ReadPosition::default()
        }
    }

    /// Where a read must start (nanoseconds since the epoch) to see every entry not taken
    /// yet; `None`: from the start.
    pub fn since(&self) -> Option<i128> {
        let mut since: Option<i128> = None;
        for taken in self.taken {
            let from = taken.map(|p| p.nanos).or(self.floor)?;
            since = Some(since.map_or(from, |s| s.min(from)));
        }
        since
    }

    pub fn floor(&self) -> Option<i128> {
        self.floor
    }

    pub fn begin_pass(&mut self) {
        self.catching_up = self.taken.map(|t| t.is_some());
        self.last_in_pass = [None; 2];
    }

    /// Takes an entry of the current pass: its position if it is new, `None` if an earlier
    /// read took it.
    pub fn admit(&mut self, source: LogSource, nanos: i128) -> Option<Position> {
        let i = index(source);
        let position = match self.last_in_pass[i] {
            Some(last) if last.nanos == nanos => Position {
                nanos,
                seen: last.seen + 1,
            },
            _ => Position { nanos, seen: 1 },
        };
        self.last_in_pass[i] = Some(position);
        // Entries written after this one are timestamped no earlier than this, less the
        // interleaving margin: a stream nothing was taken from has nothing older.
        let floor = nanos - INTERLEAVE_MARGIN_NANOS;
        self.floor = Some(self.floor.map_or(floor, |f| f.max(floor)));
        if self.catching_up[i] {
            if self.taken[i].is_some_and(|taken| position <= taken) {
                return None;
            }
            self.catching_up[i] = false;
        }
        self.taken[i] = Some(position);
        Some(position)
    }
}

// ---- assembly: entries → lines → events ----

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

// ---- the buffer and batches ----

/// Events waiting to be sent, in the order they were completed.
#[derive(Debug)]
pub struct Buffer {
    events: VecDeque<(Instant, Event)>,
    bytes: usize,
    capacity: usize,
    mode: DeliveryMode,
    dropped: u64,
}

fn event_size(event: &Event) -> usize {
    event.message.len() + PER_EVENT_BYTES
}

impl Buffer {
    pub fn new(mode: DeliveryMode, capacity: usize) -> Buffer {
        Buffer {
            events: VecDeque::new(),
            bytes: 0,
            capacity,
            mode,
            dropped: 0,
        }
    }

    /// Adds an event; in non-blocking mode the oldest ones make room for it.
    pub fn push(&mut self, event: Event, now: Instant) {
        let size = event_size(&event);
        if self.mode == DeliveryMode::NonBlocking {
            while self.bytes + size > self.capacity
                && let Some((_, old)) = self.events.pop_front()
            {
                self.bytes -= event_size(&old);
                self.dropped += 1;
            }
        }
        self.bytes += size;
        self.events.push_back((now, event));
    }

    /// Blocking mode: no more reading until a batch has left.
    pub fn is_full(&self) -> bool {
        self.bytes >= self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Events dropped so far (non-blocking mode).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The earliest entry held (nanoseconds).
    pub fn held_since(&self) -> Option<i128> {
        self.events.iter().map(|(_, e)| e.start_nanos).min()
    }

    /// When a batch should leave even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.events.front().map(|(at, _)| *at + FLUSH_INTERVAL)
    }

    /// Whether to send now: the oldest event has waited long enough, a full batch is
    /// there, or nothing more will come.
    pub fn ready(&self, now: Instant, last_call: bool) -> bool {
        if self.events.is_empty() {
            return false;
        }
        last_call
            || self.deadline().is_some_and(|d| now >= d)
            || self.events.len() >= MAX_EVENTS_PER_PUT
            || self.bytes >= MAX_BYTES_PER_PUT
    }

    /// The next batch: PutLogEvents' limits on count, bytes and time span, and the pieces
    /// of one split event kept together unless they alone overflow a batch.
    pub fn take_batch(&mut self) -> Vec<Event> {
        let mut count = 0;
        let mut bytes = 0;
        let mut span: Option<(i64, i64)> = None;
        for (_, event) in &self.events {
            let size = event_size(event);
            let (low, high) = span.map_or((event.timestamp, event.timestamp), |(l, h)| {
                (l.min(event.timestamp), h.max(event.timestamp))
            });
            if count > 0
                && (count == MAX_EVENTS_PER_PUT
                    || bytes + size > MAX_BYTES_PER_PUT
                    || high - low > MAX_BATCH_SPAN_MS)
            {
                break;
            }
            count += 1;
            bytes += size;
            span = Some((low, high));
        }
        if count < self.events.len() && self.events[count - 1].1.end.is_none() {
            let piece_of = |i: usize| {
                let (_, e) = &self.events[i];
                let (_, before) = &self.events[i - 1];
                before.end.is_none() && before.source == e.source
            };
            let mut start = count - 1;
            while start > 0 && piece_of(start) {
                start -= 1;
            }
            if start > 0 {
                count = start;
            }
        }
        let batch: Vec<Event> = self.events.drain(..count).map(|(_, e)| e).collect();
        self.bytes -= batch.iter().map(event_size).sum::<usize>();
        batch
    }
}

/// The cursor a batch leaves behind once stored: `acked` moved past its events, and the
/// floor under everything still held (`held_since`) or not read yet (`read_floor`).
pub fn batch_cursor(
    acked: &Cursor,
    batch: &[Event],
    read_floor: Option<i128>,
    held_since: Option<i128>,
) -> Cursor {
    let mut cursor = acked.clone();
    cursor.batch += 1;
    for event in batch {
        if let Some(end) = event.end {
            cursor.set_position(event.source, end);
        }
    }
    cursor.floor = match (read_floor, held_since) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    cursor
}

// ---- the CloudWatch Logs calls ----

/// A log event on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLogEvent {
    pub timestamp: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
    pub log_events: Vec<InputLogEvent>,
    /// Berth's extension, stored with the events in one durable write.
    pub berth_shipper_cursor: String,
}

/// Events the service refused (too old, expired, too new), by index ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    pub too_new_log_event_start_index: Option<usize>,
    pub too_old_log_event_end_index: Option<usize>,
    pub expired_log_event_end_index: Option<usize>,
}

/// What DescribeLogStreams says of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamLookup {
    /// The group has no such stream.
    Missing,
    /// The stream exists, with the cursor stored by the last put that carried one.
    Found(Option<String>),
}

/// The CloudWatch Logs calls the shipper makes: `AwsClient` in production (the control
/// plane's endpoint, service `logs`), a fake in tests.
pub trait LogsApi: Send + Sync {
    /// ResourceAlreadyExistsException is success.
    fn create_log_group<'a>(&'a self, region: &'a str, group: &'a str) -> ControlFuture<'a, ()>;
    /// ResourceAlreadyExistsException is success.
    fn create_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, ()>;
    /// ResourceNotFoundException when the group does not exist.
    fn find_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, StreamLookup>;
    fn put_log_events<'a>(
        &'a self,
        region: &'a str,
        request: &'a PutLogEventsRequest,
    ) -> ControlFuture<'a, RejectedLogEventsInfo>;
}

fn already_exists(result: Result<Value, ClientError>) -> Result<(), ClientError> {
    match result {
        Ok(_) => Ok(()),
        Err(ClientError::Aws { code, .. }) if code == RESOURCE_ALREADY_EXISTS => Ok(()),
        Err(e) => Err(e),
    }
}

impl LogsApi for AwsClient {
    fn create_log_group<'a>(&'a self, region: &'a str, group: &'a str) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            already_exists(
                self.logs_call(
                    region,
                    &format!("{LOGS_TARGET_PREFIX}.CreateLogGroup"),
                    &serde_json::json!({"logGroupName": group}),
                )
                .await,
            )
        })
    }

    fn create_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            already_exists(
                self.logs_call(
                    region,
                    &format!("{LOGS_TARGET_PREFIX}.CreateLogStream"),
                    &serde_json::json!({"logGroupName": group, "logStreamName": stream}),
                )
                .await,
            )
        })
    }

    fn find_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, StreamLookup> {
        Box::pin(async move {
            // The exact name sorts first among the names it prefixes: the first page has it.
            let answer = self
                .logs_call(
                    region,
                    &format!("{LOGS_TARGET_PREFIX}.DescribeLogStreams"),
                    &serde_json::json!({"logGroupName": group, "logStreamNamePrefix": stream}),
                )
                .await?;
            let found = answer["logStreams"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["logStreamName"] == stream);
            Ok(match found {
                Some(s) => StreamLookup::Found(s["berthShipperCursor"].as_str().map(str::to_owned)),
                None => StreamLookup::Missing,
            })
        })
    }

    fn put_log_events<'a>(
        &'a self,
        region: &'a str,
        request: &'a PutLogEventsRequest,
    ) -> ControlFuture<'a, RejectedLogEventsInfo> {
        Box::pin(async move {
            let answer = self
                .logs_call(
                    region,
                    &format!("{LOGS_TARGET_PREFIX}.PutLogEvents"),
                    request,
                )
                .await?;
            Ok(serde_json::from_value(answer["rejectedLogEventsInfo"].clone()).unwrap_or_default())
        })
    }
}

/// The log group or stream could not be made before the container starts; the Display is
/// the task's stopped reason, as ECS words it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "CannotStartContainerError: Error response from daemon: failed to initialize logging \
         driver: failed to create Cloudwatch log group: {}",
        aws_cause(.0)
    )]
    Group(ClientError),
    #[error(
        "CannotStartContainerError: Error response from daemon: failed to initialize logging \
         driver: failed to create Cloudwatch log stream: {}",
        aws_cause(.0)
    )]
    Stream(ClientError),
}

/// An AWS error as Docker's driver quotes it: `code: message`.
fn aws_cause(error: &ClientError) -> String {
    match error {
        ClientError::Aws { code, message, .. } => format!("{code}: {message}"),
        other => other.to_string(),
    }
}

/// Before the container starts: the group (with `awslogs-create-group`) and the stream, as
/// Docker's driver makes them when it starts.
pub async fn prepare(
    logs: &dyn LogsApi,
    options: &AwslogsOptions,
    stream: &str,
) -> Result<(), PrepareError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let give_up = Instant::now() + DRAIN_LIMIT;
    // The control plane being away for a moment should not fail the task.
    let retry = |e: &ClientError, backoff: &mut Backoff| {
        (e.is_retryable() && Instant::now() < give_up).then(|| backoff.next_delay())
    };
    if options.create_group {
        loop {
            match logs.create_log_group(&options.region, &options.group).await {
                Ok(()) => break,
                Err(e) => match retry(&e, &mut backoff) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(PrepareError::Group(e)),
                },
            }
        }
    }
    loop {
        match logs
            .create_log_stream(&options.region, &options.group, stream)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) => match retry(&e, &mut backoff) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(PrepareError::Stream(e)),
            },
        }
    }
}

// ---- the shipper ----

/// A running shipper as its task sees it: when it last made progress (read or delivered),
/// so that a stopped task's cleanup can tell a slow drain from a stuck one.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// Progress made now (a shipper starting).
    pub fn now() -> Progress {
        let progress = Progress::default();
        progress.touch();
        progress
    }

    fn touch(&self) {
        self.0.store(epoch_millis(), Ordering::Relaxed);
    }

    /// How long since it last made progress.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(epoch_millis().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Ships one container's log until it has ended and all of it was delivered, or the agent
/// shuts down (the next agent resumes from the stored cursor).
pub struct Shipper {
    pub logs: Arc<dyn LogsApi>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub container: ContainerId,
    pub options: AwslogsOptions,
    pub stream: String,
    pub progress: Progress,
    pub shutdown: watch::Receiver<bool>,
}

enum Input {
    /// Open the log (again) at this time; following it, or for a last read once the
    /// container has stopped.
    Closed {
        at: Instant,
        follow: bool,
    },
    Reading {
        log: LogStream,
        follow: bool,
    },
    /// The container has ended and its whole log was read.
    Done,
}

type Delivery = std::pin::Pin<Box<dyn std::future::Future<Output = Delivered> + Send>>;

enum Delivered {
    Stored,
    /// The service will not take the batch (it is dropped).
    Refused(ClientError),
}

impl Shipper {
    pub async fn run(self) {
        self.progress.touch();
        let mut shutdown = self.shutdown.clone();
        let Some(mut acked) = self.resume_cursor(&mut shutdown).await else {
            return;
        };
        tracing::debug!(container = %self.container, stream = %self.stream, cursor = %acked.encode(), "shipping logs");
        let mut read = ReadPosition::from_cursor(&acked);
        let mut assembler = Assembler::new(self.options.multiline.clone());
        let mut buffer = Buffer::new(self.options.mode, self.options.max_buffer_size);
        let mut input = Input::Closed {
            at: Instant::now(),
            follow: true,
        };
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut in_flight: Option<(Cursor, usize, Delivery)> = None;
        let mut dropped_warned = 0;
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            if *shutdown.borrow() {
                return;
            }
            if let Input::Closed { at, follow } = input
                && now >= at
            {
                input = self.open(&mut read, &mut backoff, follow).await;
                continue;
            }
            assembler.flush_idle(now, &mut events);
            for event in events.drain(..) {
                buffer.push(event, now);
            }
            if buffer.dropped() > dropped_warned {
                tracing::warn!(container = %self.container, stream = %self.stream, dropped = buffer.dropped() - dropped_warned, total = buffer.dropped(), "awslogs non-blocking buffer full: oldest log events dropped");
                dropped_warned = buffer.dropped();
            }
            let done = matches!(input, Input::Done);
            if in_flight.is_none() && buffer.ready(now, done) {
                let batch = buffer.take_batch();
                let held = match (buffer.held_since(), assembler.held_since()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let cursor = batch_cursor(&acked, &batch, read.floor(), held);
                let count = batch.len();
                let delivery = deliver(
                    self.logs.clone(),
                    self.options.clone(),
                    self.stream.clone(),
                    batch,
                    cursor.encode(),
                );
                in_flight = Some((cursor, count, Box::pin(delivery)));
            }
            if done && in_flight.is_none() && buffer.is_empty() && assembler.is_empty() {
                tracing::debug!(container = %self.container, stream = %self.stream, "log shipped to its end");
                return;
            }
            let wake = [
                buffer.deadline(),
                assembler.idle_deadline(),
                match input {
                    Input::Closed { at, .. } => Some(at),
                    _ => None,
                },
            ]
            .into_iter()
            .flatten()
            .min();
            let may_read = matches!(input, Input::Reading { .. })
                && (self.options.mode == DeliveryMode::NonBlocking || !buffer.is_full());
            let delivering = in_flight.is_some();
            tokio::select! {
                frame = next_frame(&mut input), if may_read => {
                    match frame {
                        Some(Ok(frame)) => {
                            self.progress.touch();
                            backoff.reset();
                            let nanos = frame.timestamp.unix_timestamp_nanos();
                            if let Some(position) = read.admit(frame.source, nanos) {
                                assembler.push(frame.source, position, &frame.bytes, Instant::now(), &mut events);
                            }
                        }
                        Some(Err(RuntimeError::NotFound(_))) => {
                            input = self.finish(&mut assembler, &mut events);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(container = %self.container, error = %e, "reading the container's log failed; resuming");
                            let follow = matches!(input, Input::Reading { follow: true, .. });
                            input = Input::Closed { at: Instant::now() + backoff.next_delay(), follow };
                        }
                        None => {
                            let follow = matches!(input, Input::Reading { follow: true, .. });
                            input = self.log_ended(follow, &mut assembler, &mut events, &mut backoff).await;
                        }
                    }
                }
                delivered = async { in_flight.as_mut().expect("in flight").2.as_mut().await }, if delivering => {
                    let (cursor, count, _) = in_flight.take().expect("in flight");
                    self.progress.touch();
                    if let Delivered::Refused(e) = delivered {
                        tracing::error!(container = %self.container, stream = %self.stream, events = count, error = %e, "CloudWatch Logs refused a batch of log events; they are dropped");
                    }
                    acked = cursor;
                }
                _ = sleep_until(wake) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The stored cursor, creating the stream if it is missing (retried while the control
    /// plane is away); `None` on shutdown.
    async fn resume_cursor(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Cursor> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let options = &self.options;
        loop {
            let found = self
                .logs
                .find_log_stream(&options.region, &options.group, &self.stream)
                .await;
            let error = match found {
                Ok(StreamLookup::Found(None)) => return Some(Cursor::default()),
                Ok(StreamLookup::Found(Some(text))) => {
                    return Some(Cursor::decode(&text).unwrap_or_else(|| {
                        tracing::warn!(stream = %self.stream, cursor = %text, "unreadable shipper cursor; shipping the whole log again");
                        Cursor::default()
                    }));
                }
                Ok(StreamLookup::Missing) => {
                    match prepare(&*self.logs, options, &self.stream).await {
                        Ok(()) => continue,
                        Err(e) => e.to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            tracing::warn!(container = %self.container, group = %options.group, stream = %self.stream, error = %error, "cannot find the log stream yet; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = shutdown.changed() => return None,
            }
        }
    }

    async fn open(&self, read: &mut ReadPosition, backoff: &mut Backoff, follow: bool) -> Input {
        let since = read
            .since()
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok());
        match self.runtime.logs(&self.container, since, follow).await {
            Ok(log) => {
                read.begin_pass();
                Input::Reading { log, follow }
            }
            Err(RuntimeError::NotFound(_)) => {
                tracing::warn!(container = %self.container, "the container is gone; its log ends here");
                Input::Done
            }
            Err(e) => {
                tracing::warn!(container = %self.container, error = %e, "cannot read the container's log yet");
                Input::Closed {
                    at: Instant::now() + backoff.next_delay(),
                    follow,
                }
            }
        }
    }

    /// A read came to its end: a followed log ends with its container (or when Docker
    /// drops the request), so the container decides; once it has stopped, one more read
    /// without following picks up what the follow missed (Docker may end it a little
    /// early), and then the log is complete.
    async fn log_ended(
        &self,
        follow: bool,
        assembler: &mut Assembler,
        events: &mut Vec<Event>,
        backoff: &mut Backoff,
    ) -> Input {
        if !follow {
            return self.finish(assembler, events);
        }
        match self.runtime.inspect_container(&self.container).await {
            Ok(status)
                if matches!(
                    status.state,
                    ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
                ) =>
            {
                Input::Closed {
                    at: Instant::now() + backoff.next_delay(),
                    follow: true,
                }
            }
            Ok(_) => Input::Closed {
                at: Instant::now(),
                follow: false,
            },
            Err(RuntimeError::NotFound(_)) => self.finish(assembler, events),
            Err(e) => {
                tracing::warn!(container = %self.container, error = %e, "cannot inspect the container");
                Input::Closed {
                    at: Instant::now() + backoff.next_delay(),
                    follow: true,
                }
            }
        }
    }

    fn finish(&self, assembler: &mut Assembler, events: &mut Vec<Event>) -> Input {
        assembler.flush_all(Instant::now(), events);
        Input::Done
    }
}

async fn next_frame(input: &mut Input) -> Option<Result<LogFrame, RuntimeError>> {
    match input {
        Input::Reading { log, .. } => log.next().await,
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends one batch until it is stored: retried (after checking whether a put whose answer
/// was lost was stored after all) while the control plane is away or failing, the stream
/// made again if it was deleted.
async fn deliver(
    logs: Arc<dyn LogsApi>,
    options: AwslogsOptions,
    stream: String,
    mut batch: Vec<Event>,
    cursor: String,
) -> Delivered {
    // Chronological, as PutLogEvents wants; stable, so each stream keeps its order.
    batch.sort_by_key(|e| e.timestamp);
    let request = PutLogEventsRequest {
        log_group_name: options.group.clone(),
        log_stream_name: stream.clone(),
        log_events: batch
            .into_iter()
            .map(|e| InputLogEvent {
                timestamp: e.timestamp,
                message: e.message,
            })
            .collect(),
        berth_shipper_cursor: cursor,
    };
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut uncertain = false;
    loop {
        if uncertain {
            match logs
                .find_log_stream(&options.region, &options.group, &stream)
                .await
            {
                Ok(StreamLookup::Found(Some(stored))) if stored == request.berth_shipper_cursor => {
                    return Delivered::Stored;
                }
                Ok(_) => uncertain = false,
                Err(_) => {
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            }
        }
        let error = match logs.put_log_events(&options.region, &request).await {
            Ok(rejected) => {
                if rejected != RejectedLogEventsInfo::default() {
                    tracing::warn!(stream = %stream, ?rejected, "CloudWatch Logs left out log events too old or too new");
                }
                return Delivered::Stored;
            }
            Err(ClientError::Aws { code, .. }) if code == DATA_ALREADY_ACCEPTED => {
                return Delivered::Stored;
            }
            Err(ClientError::Aws { code, .. }) if code == RESOURCE_NOT_FOUND => {
                // Deleted meanwhile: make it again (the group too, if allowed).
                if let Err(e) = prepare(&*logs, &options, &stream).await {
                    let delay = backoff.next_delay();
                    tracing::warn!(stream = %stream, error = %e, ?delay, "the log stream is gone and cannot be made again; retrying");
                    tokio::time::sleep(delay).await;
                }
                continue;
            }
            Err(e) if e.is_retryable() => e,
            Err(e) => return Delivered::Refused(e),
        };
        // The put may have been stored with its answer lost.
        uncertain = true;
        let delay = backoff.next_delay();
        tracing::warn!(stream = %stream, error = %error, ?delay, "PutLogEvents failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests;
