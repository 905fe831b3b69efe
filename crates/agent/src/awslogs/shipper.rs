//! A shipper: one tokio task per container that follows its log from Docker and delivers
//! it, exactly once, resuming from the stored cursor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_runtime::{
    ContainerId, ContainerRuntime, ContainerState, LogFrame, LogStream, RuntimeError,
};
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::api::{
    DATA_ALREADY_ACCEPTED, InputLogEvent, LogsApi, PutLogEventsRequest, RESOURCE_NOT_FOUND,
    RejectedLogEventsInfo, StreamLookup, prepare,
};
use super::assembly::{Assembler, Event};
use super::batch::{Buffer, batch_cursor};
use super::cursor::{Cursor, ReadPosition};
use super::options::{AwslogsOptions, DeliveryMode};
use crate::backoff::Backoff;
use crate::client::ClientError;

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
        berth_shipper_cursor: Some(cursor),
        berth_cursor_lookup: false,
    };
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut uncertain = false;
    loop {
        if uncertain {
            match logs
                .find_log_stream(&options.region, &options.group, &stream)
                .await
            {
                Ok(StreamLookup::Found(stored))
                    if stored.is_some() && stored == request.berth_shipper_cursor =>
                {
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
