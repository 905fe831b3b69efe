//! CloudWatch Logs fixtures for the in-process contract tests: a group with a stream,
//! PutLogEvents, and reading a stream or a filter to the end through the API's tokens.

use serde_json::{Value, json};

use crate::{TestServer, unique};

/// A new log group `/berth/g…` with the stream `app/web/0123456789abcdef` in it.
#[track_caller]
pub fn group_and_stream(s: &TestServer) -> (String, String) {
    let group = format!("/berth/{}", unique("g"));
    let stream = "app/web/0123456789abcdef".to_owned();
    s.logs("CreateLogGroup", json!({"logGroupName": group}))
        .ok();
    s.logs(
        "CreateLogStream",
        json!({"logGroupName": group, "logStreamName": stream}),
    )
    .ok();
    (group, stream)
}

/// PutLogEvents of `events`; its answer.
#[track_caller]
pub fn put(s: &TestServer, group: &str, stream: &str, events: &[Value]) -> Value {
    s.logs(
        "PutLogEvents",
        json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
    )
    .ok()
}

/// Every event of the stream from the head (GetLogEvents with `startFromHead`), following
/// `nextForwardToken` until it comes back unchanged.
#[track_caller]
pub fn read_all(s: &TestServer, group: &str, stream: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request =
            json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
        if let Some(t) = &token {
            request["nextToken"] = Value::from(t.as_str());
        }
        let page = s.logs("GetLogEvents", request).ok();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        let next = page["nextForwardToken"].as_str().unwrap().to_owned();
        if token.as_deref() == Some(next.as_str()) {
            return events;
        }
        token = Some(next);
    }
}

/// FilterLogEvents of `request`, following `nextToken` to the last page (what the aws CLI
/// does for `filter-log-events`); every page's events in order and the number of pages.
#[track_caller]
pub fn filter_all(s: &TestServer, request: Value) -> (Vec<Value>, usize) {
    let mut events = Vec::new();
    let mut pages = 0;
    let mut request = request;
    loop {
        let page = s.logs("FilterLogEvents", request.clone()).ok();
        pages += 1;
        assert!(pages < 1000, "FilterLogEvents pagination does not end");
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) => request["nextToken"] = Value::from(t),
            None => return (events, pages),
        }
    }
}
