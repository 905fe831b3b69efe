//! Where the shipped events end in Docker's log: the cursor the server stores with each
//! batch (`berthShipperCursor`), and which entries of a (re)read of the log are new.

use berth_runtime::LogSource;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How much earlier than an entry of the other stream that Docker wrote before it an entry
/// may be timestamped (each stream is timestamped by its own reader before the entry is
/// written): the margin of the cursor's floor.
pub(super) const INTERLEAVE_MARGIN_NANOS: i128 = 60 * 1_000_000_000;
const CURSOR_VERSION: &str = "v1";

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

pub(super) fn index(source: LogSource) -> usize {
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

    pub(super) fn set_position(&mut self, source: LogSource, position: Position) {
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
