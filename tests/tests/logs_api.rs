//! CloudWatch Logs with the real `aws` CLI: 10,000 numbered events read back once each and
//! in order, FilterLogEvents with a JSON pattern, retention expiring old events (and their
//! segment files), StartLiveTail following new events, tags, AWS's errors, and `kill -9`
//! of the server losing no acknowledged event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use berth_e2e::{ACCOUNT_ID, BerthServer, REGION, assert_aws_error, now_ms, ok_json, unique};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn group_and_stream(s: &BerthServer) -> (String, String) {
    let group = format!("/berth/{}", unique("g"));
    let stream = "app/web/0123456789abcdef".to_string();
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", &group]));
    ok_json(&s.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        &group,
        "--log-stream-name",
        &stream,
    ]));
    (group, stream)
}

/// `aws logs put-log-events` with the events in a JSON file.
fn put(s: &BerthServer, group: &str, stream: &str, events: &[Value]) -> Value {
    let file = s.scratch(&unique("events")).join("events.json");
    std::fs::write(&file, serde_json::to_vec(events).unwrap()).unwrap();
    ok_json(&s.aws(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        stream,
        "--log-events",
        &format!("file://{}", file.display()),
    ]))
}

/// Every event of the stream from the head, following nextForwardToken until it repeats.
fn read_all(s: &BerthServer, group: &str, stream: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            "logs",
            "get-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            stream,
            "--start-from-head",
        ];
        if let Some(t) = &token {
            args.extend(["--next-token", t]);
        }
        let page = ok_json(&s.aws(&args));
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        let next = page["nextForwardToken"].as_str().unwrap().to_string();
        if token.as_deref() == Some(next.as_str()) {
            return events;
        }
        token = Some(next);
    }
}

fn numbered(n: usize, t0: i64) -> Value {
    let level = if n.is_multiple_of(7) { "error" } else { "info" };
    json!({
        "timestamp": t0 + n as i64,
        "message": json!({"n": n, "level": level, "msg": format!("line {n}")}).to_string(),
    })
}

#[test]
fn ten_thousand_events_once_in_order_and_a_json_filter_finds_exactly_the_matches() {
    let s = BerthServer::start();
    let (group, stream) = group_and_stream(&s);
    let t0 = now_ms() - 60_000;
    let events: Vec<Value> = (0..10_000).map(|n| numbered(n, t0)).collect();
    for chunk in events.chunks(2_500) {
        let answer = put(&s, &group, &stream, chunk);
        assert!(answer.get("rejectedLogEventsInfo").is_none(), "{answer}");
    }
    let read = read_all(&s, &group, &stream);
    assert_eq!(read.len(), 10_000);
    for (n, e) in read.iter().enumerate() {
        let m: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
        assert_eq!(m["n"], n, "event {n} out of order or missing");
        assert_eq!(e["timestamp"], t0 + n as i64);
        assert!(e["ingestionTime"].as_i64().unwrap() >= t0);
    }
    // The newest events by default; a backward token pages towards the head.
    let newest = ok_json(&s.aws(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        &group,
        "--log-stream-name",
        &stream,
        "--limit",
        "3",
    ]));
    let tail: Vec<&str> = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(tail[2].contains("\"n\":9999"), "{tail:?}");

    // JSON pattern: exactly the events with level error (every 7th), in order, over
    // several pages (the CLI follows nextToken).
    let found = ok_json(&s.aws(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        &group,
        "--filter-pattern",
        "{ $.level = \"error\" }",
        "--page-size",
        "500",
    ]));
    let ns: Vec<u64> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["logStreamName"], stream.as_str());
            let m: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
            m["n"].as_u64().unwrap()
        })
        .collect();
    let want: Vec<u64> = (0..10_000u64).filter(|n| n.is_multiple_of(7)).collect();
    assert_eq!(ns.len(), want.len(), "events matching the JSON pattern");
    assert!(ns == want, "the matching events, in order");
    // A term and a time range.
    let ranged = ok_json(&s.aws(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        &group,
        "--filter-pattern",
        "\"line 42\"",
        "--start-time",
        &(t0 + 40).to_string(),
        "--end-time",
        &(t0 + 500).to_string(),
    ]));
    let messages: Vec<&str> = ranged["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    // "line 42" and "line 420".."line 429" fall in [t0+40, t0+500).
    assert_eq!(messages.len(), 11, "{messages:?}");

    let streams = ok_json(&s.aws(&[
        "logs",
        "describe-log-streams",
        "--log-group-name",
        &group,
        "--order-by",
        "LastEventTime",
        "--descending",
    ]));
    let st = &streams["logStreams"][0];
    assert_eq!(st["logStreamName"], stream.as_str());
    assert_eq!(st["firstEventTimestamp"], t0);
    assert_eq!(st["lastEventTimestamp"], t0 + 9_999);
    assert_eq!(
        st["arn"],
        format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}:log-stream:{stream}")
    );
}

#[test]
fn errors_tags_and_deletion_as_aws_answers() {
    let s = BerthServer::start();
    let (group, stream) = group_and_stream(&s);
    assert_aws_error(
        &s.aws(&["logs", "create-log-group", "--log-group-name", &group]),
        "ResourceAlreadyExistsException",
    );
    assert_aws_error(
        &s.aws(&[
            "logs",
            "create-log-stream",
            "--log-group-name",
            "/nope",
            "--log-stream-name",
            "x",
        ]),
        "ResourceNotFoundException",
    );
    assert_aws_error(
        &s.aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            &group,
            "--log-stream-name",
            "nope",
        ]),
        "ResourceNotFoundException",
    );
    let t = now_ms();
    let file = s.scratch("unordered").join("events.json");
    std::fs::write(
        &file,
        json!([{"timestamp": t, "message": "b"}, {"timestamp": t - 5, "message": "a"}]).to_string(),
    )
    .unwrap();
    assert_aws_error(
        &s.aws(&[
            "logs",
            "put-log-events",
            "--log-group-name",
            &group,
            "--log-stream-name",
            &stream,
            "--log-events",
            &format!("file://{}", file.display()),
        ]),
        "InvalidParameterException",
    );
    assert_aws_error(
        &s.aws(&[
            "logs",
            "put-retention-policy",
            "--log-group-name",
            &group,
            "--retention-in-days",
            "2",
        ]),
        "InvalidParameterException",
    );
    // Too old and too new events are left out and reported, the rest stored.
    let answer = put(
        &s,
        &group,
        &stream,
        &[
            json!({"timestamp": t - 15 * DAY_MS, "message": "ancient"}),
            json!({"timestamp": t, "message": "now"}),
            json!({"timestamp": t + 3 * 3_600_000, "message": "future"}),
        ],
    );
    assert_eq!(answer["rejectedLogEventsInfo"]["tooOldLogEventEndIndex"], 1);
    assert_eq!(
        answer["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"],
        2
    );
    assert_eq!(read_all(&s, &group, &stream).len(), 1);

    let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}");
    ok_json(&s.aws(&[
        "logs",
        "tag-resource",
        "--resource-arn",
        &arn,
        "--tags",
        "team=core,env=ci",
    ]));
    ok_json(&s.aws(&[
        "logs",
        "untag-resource",
        "--resource-arn",
        &arn,
        "--tag-keys",
        "env",
    ]));
    let tags = ok_json(&s.aws(&["logs", "list-tags-for-resource", "--resource-arn", &arn]));
    assert_eq!(tags["tags"], json!({"team": "core"}));
    let groups = ok_json(&s.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        &group,
    ]));
    assert_eq!(groups["logGroups"][0]["logGroupArn"], arn.as_str());
    assert_eq!(groups["logGroups"][0]["arn"], format!("{arn}:*"));

    ok_json(&s.aws(&[
        "logs",
        "delete-log-stream",
        "--log-group-name",
        &group,
        "--log-stream-name",
        &stream,
    ]));
    assert_aws_error(
        &s.aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            &group,
            "--log-stream-name",
            &stream,
        ]),
        "ResourceNotFoundException",
    );
    ok_json(&s.aws(&["logs", "delete-log-group", "--log-group-name", &group]));
    let groups = ok_json(&s.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        &group,
    ]));
    assert_eq!(groups["logGroups"], json!([]));
}

/// Segment files of the server's log streams (a segment is `.seg` while written to and
/// `.segz` once sealed; both names exist for a moment while it is sealed).
fn segment_files(s: &BerthServer) -> usize {
    let root = s.data_dir().join("logs");
    let mut segments = std::collections::BTreeSet::new();
    for stream in std::fs::read_dir(&root).unwrap().flatten() {
        for f in std::fs::read_dir(stream.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if let Some(id) = name
                .strip_suffix(".seg")
                .or_else(|| name.strip_suffix(".segz"))
            {
                segments.insert((stream.file_name(), id.to_string()));
            }
        }
    }
    segments.len()
}

#[test]
fn retention_expires_old_events_and_removes_their_segments() {
    let s = BerthServer::start();
    let (group, stream) = group_and_stream(&s);
    let now = now_ms();
    put(
        &s,
        &group,
        &stream,
        &[json!({"timestamp": now - 5 * DAY_MS, "message": "five days old"})],
    );
    put(
        &s,
        &group,
        &stream,
        &[json!({"timestamp": now - 2 * DAY_MS, "message": "two days old"})],
    );
    put(
        &s,
        &group,
        &stream,
        &[json!({"timestamp": now, "message": "fresh"})],
    );
    assert_eq!(read_all(&s, &group, &stream).len(), 3);
    assert_eq!(segment_files(&s), 3, "one segment per day of events");

    ok_json(&s.aws(&[
        "logs",
        "put-retention-policy",
        "--log-group-name",
        &group,
        "--retention-in-days",
        "3",
    ]));
    let left: Vec<String> = read_all(&s, &group, &stream)
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["two days old", "fresh"]);
    assert_eq!(segment_files(&s), 2);
    let groups = ok_json(&s.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        &group,
    ]));
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 3);

    ok_json(&s.aws(&[
        "logs",
        "put-retention-policy",
        "--log-group-name",
        &group,
        "--retention-in-days",
        "1",
    ]));
    let left = read_all(&s, &group, &stream);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["message"], "fresh");
    assert_eq!(segment_files(&s), 1);
    // Events older than the retention period are refused from now on.
    let answer = put(
        &s,
        &group,
        &stream,
        &[json!({"timestamp": now - 2 * DAY_MS, "message": "late"})],
    );
    assert_eq!(
        answer["rejectedLogEventsInfo"]["expiredLogEventEndIndex"],
        1
    );
    ok_json(&s.aws(&[
        "logs",
        "delete-retention-policy",
        "--log-group-name",
        &group,
    ]));
    let groups = ok_json(&s.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        &group,
    ]));
    assert!(groups["logGroups"][0].get("retentionInDays").is_none());
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
