//! StartLiveTail: a response in AWS's event-stream encoding
//! (`application/vnd.amazon.eventstream`) that stays open and carries, after the
//! `initial-response` and one `sessionStart`, a `sessionUpdate` for events as soon as they
//! are stored (and an empty one every second, as CloudWatch sends), until the client goes
//! away or three hours pass (`SessionTimeoutException`).
//!
//! The SDKs send StartLiveTail to the `stream-` host prefix; with `--endpoint-url` pointing
//! at Berth that needs `AWS_DISABLE_HOST_PREFIX_INJECTION=true` (or a name that resolves).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use berth_logs::{FilterPattern, Ingested, LogScope};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::logs::{log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

/// Events per update, as CloudWatch caps them (more are sampled).
const MAX_PER_UPDATE: usize = 500;
const SESSION_LIMIT: Duration = Duration::from_secs(3 * 3600);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLiveTailRequest {
    pub log_group_identifiers: Vec<String>,
    pub log_stream_names: Option<Vec<String>>,
    pub log_stream_name_prefixes: Option<Vec<String>>,
    pub log_event_filter_pattern: Option<String>,
}

/// One event-stream message: prelude (total and header lengths, their CRC), headers
/// (string-typed), payload, CRC of everything before it.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = berth_logs::segment::crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = berth_logs::segment::crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn event(kind: &str, payload: serde_json::Value) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    encode_message(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

struct Session {
    scope: LogScope,
    /// (group name, identifier as the request gave it)
    groups: Vec<(String, String)>,
    names: Option<Vec<String>>,
    prefixes: Option<Vec<String>>,
    pattern: Option<FilterPattern>,
}

impl Session {
    fn wants(&self, batch: &Ingested) -> Option<&str> {
        if batch.scope != self.scope {
            return None;
        }
        let (_, identifier) = self.groups.iter().find(|(g, _)| *g == batch.group)?;
        if self
            .names
            .as_ref()
            .is_some_and(|n| !n.contains(&batch.stream))
        {
            return None;
        }
        if self
            .prefixes
            .as_ref()
            .is_some_and(|p| !p.iter().any(|p| batch.stream.starts_with(p.as_str())))
        {
            return None;
        }
        Some(identifier)
    }
}

pub async fn start_live_tail(ctx: &AwsContext, body: &[u8]) -> Result<Response, AwsError> {
    let req: StartLiveTailRequest = crate::protocol::parse_body(body)?;
    let scope = log_scope(ctx);
    if req.log_group_identifiers.is_empty() || req.log_group_identifiers.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "1 validation error detected: Value at 'logGroupIdentifiers' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    if req.log_stream_names.is_some() && req.log_stream_name_prefixes.is_some() {
        return Err(AwsError::invalid_parameter(
            "logStreamNames and logStreamNamePrefixes cannot both be specified.",
        ));
    }
    if (req.log_stream_names.is_some() || req.log_stream_name_prefixes.is_some())
        && req.log_group_identifiers.len() > 1
    {
        return Err(AwsError::invalid_parameter(
            "logStreamNames and logStreamNamePrefixes can only be specified with a single log group.",
        ));
    }
    let mut groups = Vec::new();
    for identifier in &req.log_group_identifiers {
        if identifier.ends_with('*') {
            return Err(AwsError::invalid_parameter(
                "Log group identifiers can't end with an asterisk (*).",
            ));
        }
        let group = scope
            .group_from_identifier(identifier)
            .map_err(logs_error)?;
        ctx.app.logs.log_group(&scope, &group).map_err(logs_error)?;
        groups.push((group, identifier.clone()));
    }
    let pattern = req
        .log_event_filter_pattern
        .as_deref()
        .map(FilterPattern::parse)
        .transpose()
        .map_err(|e| AwsError::invalid_parameter(e.to_string()))?
        .filter(|p| !p.matches_everything());
    let request_id = uuid::Uuid::new_v4().to_string();
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut start = json!({
        "requestId": request_id,
        "sessionId": session_id,
        "logGroupIdentifiers": req.log_group_identifiers,
    });
    if let Some(n) = &req.log_stream_names {
        start["logStreamNames"] = json!(n);
    }
    if let Some(p) = &req.log_stream_name_prefixes {
        start["logStreamNamePrefixes"] = json!(p);
    }
    if let Some(p) = &req.log_event_filter_pattern {
        start["logEventFilterPattern"] = json!(p);
    }
    let session = Session {
        scope,
        groups,
        names: req.log_stream_names,
        prefixes: req.log_stream_name_prefixes,
        pattern,
    };
    let receiver = ctx.app.logs.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(run_session(session, receiver, tx, start));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, std::io::Error>(bytes::Bytes::from(frame)), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    Ok(response)
}

async fn run_session(
    session: Session,
    mut receiver: tokio::sync::broadcast::Receiver<Arc<Ingested>>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    start: serde_json::Value,
) {
    if tx.send(event("initial-response", json!({}))).await.is_err()
        || tx.send(event("sessionStart", start)).await.is_err()
    {
        return;
    }
    let deadline = tokio::time::Instant::now() + SESSION_LIMIT;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        let mut results = Vec::new();
        let mut sampled = false;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                let _ = tx.send(exception("SessionTimeoutException", "Session timed out after 3 hours.")).await;
                return;
            }
            _ = tick.tick() => {}
            got = receiver.recv() => {
                match got {
                    Ok(batch) => collect(&session, &batch, &mut results, &mut sampled),
                    Err(RecvError::Lagged(_)) => sampled = true,
                    Err(RecvError::Closed) => return,
                }
                // Whatever else is already waiting goes in the same update.
                loop {
                    match receiver.try_recv() {
                        Ok(batch) => collect(&session, &batch, &mut results, &mut sampled),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => sampled = true,
                        Err(_) => break,
                    }
                }
                if results.is_empty() && !sampled {
                    continue;
                }
                tick.reset();
            }
        }
        let update = json!({
            "sessionMetadata": {"sampled": sampled},
            "sessionResults": results,
        });
        if tx.send(event("sessionUpdate", update)).await.is_err() {
            return; // the client went away
        }
    }
}

fn collect(
    session: &Session,
    batch: &Ingested,
    results: &mut Vec<serde_json::Value>,
    sampled: &mut bool,
) {
    let Some(identifier) = session.wants(batch) else {
        return;
    };
    for e in &batch.events {
        if session
            .pattern
            .as_ref()
            .is_some_and(|p| !p.matches(&e.message))
        {
            continue;
        }
        if results.len() == MAX_PER_UPDATE {
            *sampled = true;
            return;
        }
        results.push(json!({
            "logStreamName": batch.stream,
            "logGroupIdentifier": identifier,
            "message": e.message,
            "timestamp": e.timestamp,
            "ingestionTime": batch.ingestion,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_lengths_and_checksums() {
        let m = encode_message(&[(":event-type", "x")], b"{}");
        let total = u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        let headers = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(headers, 1 + 11 + 1 + 2 + 1);
        let prelude_crc = u32::from_be_bytes(m[8..12].try_into().unwrap());
        assert_eq!(prelude_crc, berth_logs::segment::crc32(&m[..8]));
        let crc = u32::from_be_bytes(m[total - 4..].try_into().unwrap());
        assert_eq!(crc, berth_logs::segment::crc32(&m[..total - 4]));
        assert_eq!(&m[12 + headers..total - 4], b"{}");
    }
}
