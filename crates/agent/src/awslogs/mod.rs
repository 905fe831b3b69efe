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
//! (a PutLogEvents of no events with `berthCursorLookup`: authorized as the put, so the
//! shipper needs only `logs:PutLogEvents`), asks Docker for the log from the earliest time it names and skips
//! what it covers; a put whose answer was lost is checked against the stored cursor before
//! it is sent again.
//!
//! Assembly follows Docker's driver: partial entries (lines over 16 KiB) are joined back;
//! `awslogs-multiline-pattern` / `awslogs-datetime-format` (strftime, turned into a regex as
//! Docker does) join lines into events (per stream, unlike Docker, which mixes the two);
//! events over CloudWatch's size are split; batches respect PutLogEvents' limits and leave
//! at most every [`FLUSH_INTERVAL`].
//!
//! Files, from the bottom up: `options`, `cursor`, `api` (the CloudWatch Logs calls and
//! their limits), `assembly`, `batch`, `shipper`. This file only re-exports them.

mod api;
mod assembly;
mod batch;
mod cursor;
mod options;
mod shipper;

pub use api::{
    DRAIN_LIMIT, InputLogEvent, LogsApi, MAX_BYTES_PER_EVENT, PrepareError, PutLogEventsRequest,
    RejectedLogEventsInfo, StreamLookup, already_exists, logs_target, prepare, rejected,
    stream_lookup,
};
pub use assembly::{Assembler, Event, MULTILINE_IDLE};
pub use batch::{Buffer, FLUSH_INTERVAL, batch_cursor};
pub use cursor::{Cursor, Position, ReadPosition};
pub use options::{
    AwslogsOptions, DRIVER, DeliveryMode, JSON_FILE_MAX_FILES, JSON_FILE_MAX_SIZE, OptionsError,
    datetime_format_regex, parse_size,
};
pub use shipper::{Progress, Shipper};

#[cfg(test)]
mod tests;
