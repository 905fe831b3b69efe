//! CloudWatch Logs, in-process through the HTTP stack: 10,000 numbered events read back once
//! each and in order, FilterLogEvents with a JSON pattern, retention expiring old events (and
//! their segment files), tags, AWS's errors. (StartLiveTail through the aws CLI and `kill -9`
//! of the server stay in the e2e tier, tests/tests/e2e/logs_api.rs.)

use berth_testkit::logs::{filter_all, group_and_stream, put, read_all};
use berth_testkit::{ACCOUNT_ID, REGION, TestServer, now_ms};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn numbered(n: usize, t0: i64) -> Value {
    let level = if n.is_multiple_of(7) { "error" } else { "info" };
    json!({
        "timestamp": t0 + n as i64,
        "message": json!({"n": n, "level": level, "msg": format!("line {n}")}).to_string(),
    })
}

#[test]
fn ten_thousand_events_once_in_order_and_a_json_filter_finds_exactly_the_matches() {
    let s = TestServer::start();
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
    let newest = s
        .logs(
            "GetLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "limit": 3}),
        )
        .ok();
    let tail: Vec<&str> = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(tail[2].contains("\"n\":9999"), "{tail:?}");

    // JSON pattern: exactly the events with level error (every 7th), in order, over
    // several pages of 500 (the CLI's --page-size 500; nextToken followed to the end, as the
    // CLI does).
    let (found, pages) = filter_all(
        &s,
        json!({"logGroupName": group, "filterPattern": "{ $.level = \"error\" }", "limit": 500}),
    );
    assert!(
        pages > 1,
        "1429 matches in pages of 500 came in {pages} page"
    );
    let ns: Vec<u64> = found
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
    let (ranged, _) = filter_all(
        &s,
        json!({"logGroupName": group, "filterPattern": "\"line 42\"",
               "startTime": t0 + 40, "endTime": t0 + 500}),
    );
    let messages: Vec<&str> = ranged
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    // "line 42" and "line 420".."line 429" fall in [t0+40, t0+500).
    assert_eq!(messages.len(), 11, "{messages:?}");

    let streams = s
        .logs(
            "DescribeLogStreams",
            json!({"logGroupName": group, "orderBy": "LastEventTime", "descending": true}),
        )
        .ok();
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
    let s = TestServer::start();
    let (group, stream) = group_and_stream(&s);
    s.logs("CreateLogGroup", json!({"logGroupName": group}))
        .expect_error("ResourceAlreadyExistsException");
    s.logs(
        "CreateLogStream",
        json!({"logGroupName": "/nope", "logStreamName": "x"}),
    )
    .expect_error("ResourceNotFoundException");
    s.logs(
        "GetLogEvents",
        json!({"logGroupName": group, "logStreamName": "nope"}),
    )
    .expect_error("ResourceNotFoundException");
    let t = now_ms();
    s.logs(
        "PutLogEvents",
        json!({"logGroupName": group, "logStreamName": stream,
               "logEvents": [{"timestamp": t, "message": "b"}, {"timestamp": t - 5, "message": "a"}]}),
    )
    .expect_error("InvalidParameterException");
    s.logs(
        "PutRetentionPolicy",
        json!({"logGroupName": group, "retentionInDays": 2}),
    )
    .expect_error("InvalidParameterException");
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
    s.logs(
        "TagResource",
        json!({"resourceArn": arn, "tags": {"team": "core", "env": "ci"}}),
    )
    .ok();
    s.logs(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["env"]}),
    )
    .ok();
    let tags = s
        .logs("ListTagsForResource", json!({"resourceArn": arn}))
        .ok();
    assert_eq!(tags["tags"], json!({"team": "core"}));
    let groups = s
        .logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}))
        .ok();
    assert_eq!(groups["logGroups"][0]["logGroupArn"], arn.as_str());
    assert_eq!(groups["logGroups"][0]["arn"], format!("{arn}:*"));

    s.logs(
        "DeleteLogStream",
        json!({"logGroupName": group, "logStreamName": stream}),
    )
    .ok();
    s.logs(
        "GetLogEvents",
        json!({"logGroupName": group, "logStreamName": stream}),
    )
    .expect_error("ResourceNotFoundException");
    s.logs("DeleteLogGroup", json!({"logGroupName": group}))
        .ok();
    let groups = s
        .logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}))
        .ok();
    assert_eq!(groups["logGroups"], json!([]));
}

/// Segment files of the server's log streams (a segment is `.seg` while written to and
/// `.segz` once sealed; both names exist for a moment while it is sealed).
fn segment_files(s: &TestServer) -> usize {
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
    let s = TestServer::start();
    let (group, stream) = group_and_stream(&s);
    let retention = |days: u32| {
        s.logs(
            "PutRetentionPolicy",
            json!({"logGroupName": group, "retentionInDays": days}),
        )
        .ok();
    };
    let described = || {
        s.logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}))
            .ok()["logGroups"][0]
            .clone()
    };
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

    retention(3);
    let left: Vec<String> = read_all(&s, &group, &stream)
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["two days old", "fresh"]);
    assert_eq!(segment_files(&s), 2);
    assert_eq!(described()["retentionInDays"], 3);

    retention(1);
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
    s.logs("DeleteRetentionPolicy", json!({"logGroupName": group}))
        .ok();
    assert!(described().get("retentionInDays").is_none());
}

/// Berth's shipper asks for its resume cursor as a put of no events (`berthCursorLookup`),
/// so it needs only `logs:PutLogEvents`: the cursor stored with the last batch, whether the
/// stream exists, nothing written; a missing group is ResourceNotFoundException as for any put.
#[test]
fn a_cursor_lookup_put_answers_the_stored_cursor_and_writes_nothing() {
    let s = TestServer::start();
    let (group, stream) = group_and_stream(&s);
    let lookup = |stream: &str| {
        s.logs(
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": [],
                   "berthCursorLookup": true}),
        )
    };
    let empty = lookup(&stream).ok();
    assert_eq!(empty["berthStreamFound"], true, "{empty}");
    assert!(empty.get("berthShipperCursor").is_none(), "{empty}");

    let t0 = now_ms() - 1_000;
    s.logs(
        "PutLogEvents",
        json!({"logGroupName": group, "logStreamName": stream,
               "logEvents": [{"timestamp": t0, "message": "one"}],
               "berthShipperCursor": "n=1"}),
    )
    .ok();
    let after = lookup(&stream).ok();
    assert_eq!(after["berthStreamFound"], true, "{after}");
    assert_eq!(after["berthShipperCursor"], "n=1", "{after}");
    assert_eq!(
        read_all(&s, &group, &stream).len(),
        1,
        "a lookup wrote events"
    );

    // A stream the name only prefixes is not the stream.
    let missing = lookup(&stream[..stream.len() - 1]).ok();
    assert_eq!(missing["berthStreamFound"], false, "{missing}");
    let no_group = s.logs(
        "PutLogEvents",
        json!({"logGroupName": "no-such-group", "logStreamName": stream, "logEvents": [],
               "berthCursorLookup": true}),
    );
    assert_eq!(no_group.error(), "ResourceNotFoundException");
}
