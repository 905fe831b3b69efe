//! The shipper's buffer (blocking or non-blocking when full) and the batches it leaves in,
//! within PutLogEvents' limits, with the cursor each leaves behind once stored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::api::{MAX_BATCH_SPAN_MS, MAX_BYTES_PER_PUT, MAX_EVENTS_PER_PUT, PER_EVENT_BYTES};
use super::assembly::Event;
use super::cursor::Cursor;
use super::options::DeliveryMode;

/// How long an event may wait for company before it is sent. Docker's driver waits 5 s;
/// short here, so that `aws logs tail --follow` shows a line within a second.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

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
