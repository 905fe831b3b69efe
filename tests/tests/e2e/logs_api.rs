//! CloudWatch Logs in the e2e tier: StartLiveTail followed by the real `aws logs
//! start-live-tail` (botocore's event-stream decoding), and `kill -9` of the `berth` binary
//! losing no acknowledged event. Setup and reads go over raw signed JSON calls; the API
//! contract tests (reads, filters, retention, tags, errors) run in-process in
//! crates/testkit/tests/contract/logs_api.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use berth_e2e::{BerthServer, now_ms, unique};
use serde_json::{Value, json};

/// One CloudWatch Logs call over raw signed JSON; its answer (fails the test on an error).
#[track_caller]
fn logs(s: &BerthServer, operation: &str, body: Value) -> Value {
    let r = s
        .aws_json("logs", &format!("Logs_20140328.{operation}"), &body)
        .unwrap_or_else(|e| panic!("{operation}: {e}"));
    assert_eq!(r.status, 200, "{operation}: {}", r.describe());
    r.json()
}

fn group_and_stream(s: &BerthServer) -> (String, String) {
    let group = format!("/berth/{}", unique("g"));
    let stream = "app/web/0123456789abcdef".to_string();
    logs(s, "CreateLogGroup", json!({"logGroupName": group}));
    logs(
        s,
        "CreateLogStream",
        json!({"logGroupName": group, "logStreamName": stream}),
    );
    (group, stream)
}

fn put(s: &BerthServer, group: &str, stream: &str, events: &[Value]) -> Value {
    logs(
        s,
        "PutLogEvents",
        json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
    )
}

/// Every event of the stream from the head, following nextForwardToken until it repeats.
fn read_all(s: &BerthServer, group: &str, stream: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request =
            json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
        if let Some(t) = &token {
            request["nextToken"] = Value::from(t.as_str());
        }
        let page = logs(s, "GetLogEvents", request);
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        let next = page["nextForwardToken"].as_str().unwrap().to_string();
        if token.as_deref() == Some(next.as_str()) {
            return events;
        }
        token = Some(next);
    }
}

#[test]
fn start_live_tail_follows_new_events() {
    let s = BerthServer::start();
    let (group, stream) = group_and_stream(&s);
    let tail = s.start_live_tail(&group);
    // Write a numbered line every 200 ms until the tail shows one, then 20 more.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let (port_group, port_stream) = (group.clone(), stream.clone());
        let client = s.json_client();
        thread::spawn(move || {
            let mut sent = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let body = json!({
                    "logGroupName": port_group,
                    "logStreamName": port_stream,
                    "logEvents": [{"timestamp": now_ms(), "message": format!("tail {n}")}],
                });
                let r = client
                    .call("logs", "Logs_20140328.PutLogEvents", &body)
                    .unwrap();
                assert_eq!(r.status, 200, "{}", r.describe());
                sent.push((n, now_ms()));
                n += 1;
                written.store(n, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
            }
            sent
        })
    };
    let mut seen: Vec<(u64, i64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok((line, at)) = tail.lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let Some(n) = line
            .strip_prefix("tail ")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            panic!("unexpected live tail line {line:?}");
        };
        seen.push((n, at));
        if seen.len() == 21 {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sent = writer.join().unwrap();
    drop(tail);
    assert_eq!(seen.len(), 21, "live tail showed {seen:?}");
    // Once following, every line arrives, in order, exactly once.
    let first = seen[0].0;
    let ns: Vec<u64> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(ns, (first..first + 21).collect::<Vec<_>>());
    // How long each line took from its acknowledged put to the CLI's stdout (reported,
    // not asserted: the CLI itself prints once a second).
    let mut delays: Vec<i64> = seen
        .iter()
        .filter_map(|(n, at)| {
            let (_, put_at) = sent.iter().find(|(m, _)| m == n)?;
            Some(at - put_at)
        })
        .collect();
    delays.sort_unstable();
    eprintln!(
        "live tail delay put→stdout over {} lines: median {} ms, max {} ms",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
}

#[test]
fn kill_9_loses_no_acknowledged_event() {
    let mut s = BerthServer::start();
    let (group, stream) = group_and_stream(&s);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let handle = s.json_client();
        let (group, stream) = (group.clone(), stream.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let t = now_ms();
                let events: Vec<Value> = (n..n + 100)
                    .map(|i| json!({"timestamp": t, "message": format!("event {i}")}))
                    .collect();
                let body =
                    json!({"logGroupName": group, "logStreamName": stream, "logEvents": events});
                match handle.call("logs", "Logs_20140328.PutLogEvents", &body) {
                    Ok(r) if r.status == 200 => {
                        n += 100;
                        acked.store(n, Ordering::SeqCst);
                    }
                    // The server is down or going down: the batch was not acknowledged.
                    _ => return n,
                }
            }
            n
        })
    };
    while acked.load(Ordering::SeqCst) < 3_000 {
        thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    stop.store(true, Ordering::SeqCst);
    let acknowledged = writer.join().unwrap();
    s.restart();
    let events = read_all(&s, &group, &stream);
    assert!(
        events.len() as u64 >= acknowledged,
        "{} events survived, {acknowledged} were acknowledged",
        events.len()
    );
    // What survived is a prefix of what was sent, each once (an unacknowledged batch
    // may or may not have been stored, but never in part).
    assert_eq!(events.len() % 100, 0, "a batch was stored in part");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["message"], format!("event {i}"));
    }
    // Writing goes on after the restart.
    put(
        &s,
        &group,
        &stream,
        &[json!({"timestamp": now_ms(), "message": "after"})],
    );
    assert_eq!(read_all(&s, &group, &stream).len(), events.len() + 1);
}
