//! The CloudWatch Logs calls the driver makes (`LogsApi`: the control plane's endpoint in
//! production, a fake in tests), PutLogEvents' limits, and making the group and stream
//! before a container starts.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::options::AwslogsOptions;
use crate::backoff::Backoff;
use crate::client::{AwsClient, ClientError, ControlFuture};

/// PutLogEvents' limits, counted as CloudWatch Logs counts them.
pub(super) const MAX_EVENTS_PER_PUT: usize = 10_000;
pub(super) const MAX_BYTES_PER_PUT: usize = 1_048_576;
pub(super) const PER_EVENT_BYTES: usize = 26;
/// CloudWatch Logs' largest event (1 MiB since 2025; Docker's driver still splits at 256 KiB).
pub const MAX_BYTES_PER_EVENT: usize = MAX_BYTES_PER_PUT - PER_EVENT_BYTES;
pub(super) const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// When a stopped task is cleaned up, a shipper that made no progress for this long is
/// given up on (what it still held is lost, with a warning).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
const LOGS_TARGET_PREFIX: &str = "Logs_20140328";
pub(super) const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_ALREADY_EXISTS: &str = "ResourceAlreadyExistsException";
pub(super) const DATA_ALREADY_ACCEPTED: &str = "DataAlreadyAcceptedException";

pub use berth_agent_protocol::logs::{InputLogEvent, PutLogEventsRequest, RejectedLogEventsInfo};

/// What a cursor lookup says of one stream.
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

/// The target of CloudWatch Logs operation `operation`.
pub fn logs_target(operation: &str) -> String {
    format!("{LOGS_TARGET_PREFIX}.{operation}")
}

/// What a cursor lookup's answer (`PutLogEventsRequest::cursor_lookup`) says.
pub fn stream_lookup(answer: &Value) -> StreamLookup {
    if answer["berthStreamFound"] == true {
        StreamLookup::Found(answer["berthShipperCursor"].as_str().map(str::to_owned))
    } else {
        StreamLookup::Missing
    }
}

/// PutLogEvents' `rejectedLogEventsInfo`.
pub fn rejected(answer: &Value) -> RejectedLogEventsInfo {
    serde_json::from_value(answer["rejectedLogEventsInfo"].clone()).unwrap_or_default()
}

/// A create call's answer: ResourceAlreadyExistsException is success.
pub fn already_exists(result: Result<Value, ClientError>) -> Result<(), ClientError> {
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
                    None,
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
                    None,
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
            let answer = self
                .logs_call(
                    region,
                    &format!("{LOGS_TARGET_PREFIX}.PutLogEvents"),
                    &PutLogEventsRequest::cursor_lookup(group, stream),
                    None,
                )
                .await?;
            Ok(stream_lookup(&answer))
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
                    None,
                )
                .await?;
            Ok(rejected(&answer))
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
