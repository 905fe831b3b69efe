use super::*;

fn logs() -> (tempfile::TempDir, Arc<dyn Store>, Logs) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(berth_store::MemStore::new());
    let logs = Logs::open(store.clone(), &dir.path().join("logs")).unwrap();
    (dir, store, logs)
}

fn scope() -> LogScope {
    LogScope {
        account: "000000000000".into(),
        region: "us-east-1".into(),
    }
}

/// Group `g` with stream `s`; returns the scope they are in.
fn group_g_with_stream_s(logs: &Logs) -> LogScope {
    let s = scope();
    logs.create_log_group(&s, "g", Default::default(), None, None)
        .unwrap();
    logs.create_log_stream(&s, "g", "s").unwrap();
    s
}

/// The first page of a stream of group `g`, from its head.
fn head(logs: &Logs, stream: &str) -> EventsPage {
    let q = GetLogEvents {
        group: "g".into(),
        stream: stream.into(),
        start_from_head: true,
        ..Default::default()
    };
    logs.get_log_events(&scope(), &q).unwrap()
}

fn ev(ts: i64, m: &str) -> InputEvent {
    InputEvent {
        timestamp: ts,
        message: m.into(),
    }
}

#[test]
fn groups_and_streams_have_aws_errors() {
    let (_d, _s, logs) = logs();
    let s = scope();
    logs.create_log_group(&s, "/ecs/app", Default::default(), None, None)
        .unwrap();
    assert!(matches!(
        logs.create_log_group(&s, "/ecs/app", Default::default(), None, None),
        Err(LogsError::ResourceAlreadyExists(_))
    ));
    assert!(matches!(
        logs.create_log_group(&s, "bad:name", Default::default(), None, None),
        Err(LogsError::InvalidParameter(_))
    ));
    assert!(matches!(
        logs.create_log_stream(&s, "/missing", "a"),
        Err(LogsError::ResourceNotFound(m)) if m == "The specified log group does not exist."
    ));
    logs.create_log_stream(&s, "/ecs/app", "web/app/1").unwrap();
    assert!(matches!(
        logs.create_log_stream(&s, "/ecs/app", "web/app/1"),
        Err(LogsError::ResourceAlreadyExists(_))
    ));
    assert!(matches!(
        logs.put_log_events(&s, "/ecs/app", "nope", vec![ev(now_ms(), "x")], None),
        Err(LogsError::ResourceNotFound(m)) if m == "The specified log stream does not exist."
    ));
    // Another region sees nothing.
    let other = LogScope {
        region: "eu-west-1".into(),
        ..scope()
    };
    assert!(logs.log_group(&other, "/ecs/app").is_err());
    let (groups, _) = logs
        .describe_log_groups(&s, Some("/ecs"), None, None, 50)
        .unwrap();
    assert_eq!(groups.len(), 1);
}

#[test]
fn put_checks_order_and_reports_rejected_events() {
    let (_d, _s, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    let now = now_ms();
    assert!(matches!(
        logs.put_log_events(&s, "g", "s", vec![ev(now, "b"), ev(now - 1, "a")], None),
        Err(LogsError::InvalidParameter(m)) if m.contains("chronological order")
    ));
    let put = logs
        .put_log_events(
            &s,
            "g",
            "s",
            vec![
                ev(now - 15 * DAY_MS, "too old"),
                ev(now, "kept"),
                ev(now + 3 * HOUR_MS, "too new"),
            ],
            None,
        )
        .unwrap();
    // One event kept: the stream's sequence is 1.
    assert_eq!(put.sequence, 1);
    let rejected = put.rejected;
    assert_eq!(rejected.too_old_end, Some(1));
    assert_eq!(rejected.too_new_start, Some(2));
    let page = head(&logs, "s");
    let messages: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["kept"]);
}

#[test]
fn tokens_walk_forward_and_backward_and_stay_at_the_end() {
    let (_d, _s, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    let now = now_ms();
    let events: Vec<InputEvent> = (0..25).map(|i| ev(now + i, &format!("m{i}"))).collect();
    logs.put_log_events(&s, "g", "s", events, None).unwrap();
    let q = |token: Option<String>, head: bool| GetLogEvents {
        group: "g".into(),
        stream: "s".into(),
        next_token: token,
        limit: Some(10),
        start_from_head: head,
        ..Default::default()
    };
    // Default: the newest events.
    let last = logs.get_log_events(&s, &q(None, false)).unwrap();
    assert_eq!(last.events.first().unwrap().message, "m15");
    let earlier = logs
        .get_log_events(&s, &q(Some(last.next_backward_token.clone()), false))
        .unwrap();
    assert_eq!(earlier.events.first().unwrap().message, "m5");
    assert_eq!(earlier.events.last().unwrap().message, "m14");
    // Forward from the head to the end; at the end the token repeats.
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = logs.get_log_events(&s, &q(token.clone(), true)).unwrap();
        seen.extend(page.events.iter().map(|e| e.message.clone()));
        if token.as_deref() == Some(page.next_forward_token.as_str()) {
            break;
        }
        token = Some(page.next_forward_token);
    }
    assert_eq!(seen, (0..25).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[test]
fn filter_interleaves_streams_and_pages_with_tokens() {
    let (_d, _s, logs) = logs();
    let s = scope();
    logs.create_log_group(&s, "g", Default::default(), None, None)
        .unwrap();
    let now = now_ms();
    for stream in ["a", "b"] {
        logs.create_log_stream(&s, "g", stream).unwrap();
        let events = (0..10)
            .map(|i| {
                ev(
                    now + i * 2 + i64::from(stream == "b"),
                    &format!("{stream} {i} {}", if i % 2 == 0 { "even" } else { "odd" }),
                )
            })
            .collect();
        logs.put_log_events(&s, "g", stream, events, None).unwrap();
    }
    let mut q = FilterLogEvents {
        group: "g".into(),
        pattern: Some("even".into()),
        limit: Some(3),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = logs.filter_log_events(&s, &q).unwrap();
        seen.extend(page.events.iter().map(|e| e.message.clone()));
        match page.next_token {
            Some(t) => q.next_token = Some(t),
            None => break,
        }
    }
    let want: Vec<String> = (0..10)
        .step_by(2)
        .flat_map(|i| [format!("a {i} even"), format!("b {i} even")])
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn retention_hides_then_removes_old_segments_and_delete_removes_files() {
    let (dir, store, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    let now = now_ms();
    logs.put_log_events(&s, "g", "s", vec![ev(now - 3 * DAY_MS, "old")], None)
        .unwrap();
    logs.put_log_events(&s, "g", "s", vec![ev(now, "new")], None)
        .unwrap();
    logs.put_retention_policy(&s, "g", 1).unwrap();
    let page = head(&logs, "s");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].message, "new");
    let (streams, _) = logs
        .describe_log_streams(&s, "g", None, StreamOrder::LogStreamName, false, None, 50)
        .unwrap();
    assert_eq!(streams[0].stats.first_event, Some(now));
    assert!(matches!(
        logs.put_retention_policy(&s, "g", 2),
        Err(LogsError::InvalidParameter(_))
    ));
    // Events older than the retention period are refused from now on.
    let rejected = logs
        .put_log_events(&s, "g", "s", vec![ev(now - 2 * DAY_MS, "late")], None)
        .unwrap()
        .rejected;
    assert_eq!(rejected.expired_end, Some(1));
    let root = dir.path().join("logs");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
    logs.delete_log_group(&s, "g").unwrap();
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    // A directory left behind by a crash is removed at the next start.
    std::fs::create_dir_all(root.join("orphan")).unwrap();
    drop(logs);
    let _logs = Logs::open(store, &root).unwrap();
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn the_shipper_cursor_is_kept_with_the_stream() {
    let (_d, store, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    logs.put_log_events(&s, "g", "s", vec![ev(now_ms(), "x")], Some("cursor-7"))
        .unwrap();
    let root = _d.path().join("logs");
    drop(logs);
    let logs = Logs::open(store, &root).unwrap();
    let (streams, _) = logs
        .describe_log_streams(
            &s,
            "g",
            Some("s"),
            StreamOrder::LogStreamName,
            false,
            None,
            50,
        )
        .unwrap();
    assert_eq!(streams[0].stats.cursor.as_deref(), Some("cursor-7"));
}

#[test]
fn batches_out_of_time_order_are_read_back_in_time_order() {
    let (_d, _s, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    let t0 = now_ms() - 3_600_000;
    // Two writers on one stream, their batches interleaved: each batch is in order, the
    // stream is not (as with parallel PutLogEvents calls).
    for round in 0..40i64 {
        for writer in 0..2i64 {
            let events = (0..50)
                .map(|i| {
                    let ts = t0 + (round * 50 + i) * 2 + writer;
                    ev(ts, &format!("w{writer} {ts}"))
                })
                .collect();
            logs.put_log_events(&s, "g", "s", events, None).unwrap();
        }
    }
    let q = |token: Option<String>, head: bool, start: Option<i64>| GetLogEvents {
        group: "g".into(),
        stream: "s".into(),
        next_token: token,
        limit: Some(333),
        start_from_head: head,
        start_time: start,
        ..Default::default()
    };
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = logs
            .get_log_events(&s, &q(token.clone(), true, None))
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.timestamp));
        if token.as_deref() == Some(page.next_forward_token.as_str()) {
            break;
        }
        token = Some(page.next_forward_token);
    }
    let want: Vec<i64> = (0..4000).map(|i| t0 + i).collect();
    assert_eq!(seen, want);
    // Backward from the end, and a start time in the middle.
    let mut token = None;
    let mut back = Vec::new();
    for _ in 0..3 {
        let page = logs
            .get_log_events(&s, &q(token.clone(), false, None))
            .unwrap();
        back.splice(0..0, page.events.iter().map(|e| e.timestamp));
        token = Some(page.next_backward_token);
    }
    assert_eq!(back, want[4000 - 999..]);
    let page = logs
        .get_log_events(&s, &q(None, true, Some(t0 + 1234)))
        .unwrap();
    assert_eq!(page.events.first().unwrap().timestamp, t0 + 1234);
    assert!(
        page.events
            .windows(2)
            .all(|w| w[1].timestamp == w[0].timestamp + 1)
    );
    // FilterLogEvents too.
    let mut fq = FilterLogEvents {
        group: "g".into(),
        pattern: Some("w1".into()),
        limit: Some(77),
        ..Default::default()
    };
    let mut filtered = Vec::new();
    loop {
        let page = logs.filter_log_events(&s, &fq).unwrap();
        filtered.extend(page.events.iter().map(|e| e.timestamp));
        match page.next_token {
            Some(t) => fq.next_token = Some(t),
            None => break,
        }
    }
    let odd: Vec<i64> = want.iter().copied().filter(|t| (t - t0) % 2 == 1).collect();
    assert_eq!(filtered, odd);
}

#[test]
fn a_batch_repeated_with_its_cursor_is_stored_once_and_filter_end_time_is_inclusive() {
    let (_d, _s, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    let now = now_ms();
    let batch = || vec![ev(now, "a"), ev(now + 1, "b")];
    logs.put_log_events(&s, "g", "s", batch(), Some("n=1"))
        .unwrap();
    assert!(matches!(
        logs.put_log_events(&s, "g", "s", batch(), Some("n=1")),
        Err(LogsError::DataAlreadyAccepted)
    ));
    logs.put_log_events(&s, "g", "s", vec![ev(now + 2, "c")], Some("n=2"))
        .unwrap();
    let q = FilterLogEvents {
        group: "g".into(),
        end_time: Some(now + 1),
        ..Default::default()
    };
    let found: Vec<String> = logs
        .filter_log_events(&s, &q)
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(found, ["a", "b"]);
}

#[test]
fn idle_streams_are_closed_past_the_limit_and_reopen_intact() {
    let (_d, _s, logs) = logs();
    let s = scope();
    logs.create_log_group(&s, "g", Default::default(), None, None)
        .unwrap();
    let now = now_ms();
    let n = MAX_OPEN_STREAMS + 10;
    for i in 0..n {
        let name = format!("s{i}");
        logs.create_log_stream(&s, "g", &name).unwrap();
        logs.put_log_events(&s, "g", &name, vec![ev(now, &name)], None)
            .unwrap();
    }
    let open = logs.open.lock().unwrap().len();
    assert!(open <= MAX_OPEN_STREAMS, "{open} streams open");
    // A closed stream reads back and takes writes after it reopens.
    logs.put_log_events(&s, "g", "s0", vec![ev(now + 1, "again")], None)
        .unwrap();
    let page = head(&logs, "s0");
    let messages: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["s0", "again"]);
}

#[test]
fn describe_log_streams_pages_by_name_and_by_last_event_time() {
    let (_d, _s, logs) = logs();
    let s = scope();
    logs.create_log_group(&s, "g", Default::default(), None, None)
        .unwrap();
    let now = now_ms();
    for (i, name) in ["c", "a", "b"].iter().enumerate() {
        logs.create_log_stream(&s, "g", name).unwrap();
        logs.put_log_events(&s, "g", name, vec![ev(now + i as i64, name)], None)
            .unwrap();
    }
    let names = |order, descending, after: Option<&str>| {
        let (page, token) = logs
            .describe_log_streams(&s, "g", None, order, descending, after, 2)
            .unwrap();
        let names: Vec<String> = page.into_iter().map(|p| p.name).collect();
        (names, token)
    };
    let (first, token) = names(StreamOrder::LogStreamName, false, None);
    assert_eq!(first, ["a", "b"]);
    let (rest, token2) = names(StreamOrder::LogStreamName, false, token.as_deref());
    assert_eq!((rest, token2), (vec!["c".to_string()], None));
    assert_eq!(names(StreamOrder::LogStreamName, true, None).0, ["c", "b"]);
    assert_eq!(names(StreamOrder::LastEventTime, true, None).0, ["b", "a"]);
    assert_eq!(names(StreamOrder::LastEventTime, false, None).0, ["c", "a"]);
    // Tokens carry the last stream's sort key, both orders, both directions.
    let (_, token) = names(StreamOrder::LastEventTime, true, None);
    assert_eq!(
        names(StreamOrder::LastEventTime, true, token.as_deref()),
        (vec!["c".to_string()], None)
    );
    let (_, token) = names(StreamOrder::LogStreamName, true, None);
    assert_eq!(
        names(StreamOrder::LogStreamName, true, token.as_deref()).0,
        ["a"]
    );
    assert!(
        logs.describe_log_streams(
            &s,
            "g",
            None,
            StreamOrder::LogStreamName,
            false,
            Some("2"),
            2
        )
        .is_err(),
        "an offset is not a token"
    );
}

fn transformation(value: &str) -> MetricTransformation {
    MetricTransformation {
        metric_name: "M".into(),
        metric_namespace: "N".into(),
        metric_value: value.into(),
        default_value: None,
        dimensions: Default::default(),
        unit: None,
    }
}

/// Every stored batch is counted per filter; a deleted filter's counts go with it, and a
/// deleted group takes its filters along.
#[test]
fn metric_filters_count_stored_batches() {
    let (_dir, store, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    logs.put_metric_filter(&s, "g", "errors", "ERROR", vec![transformation("2")], false)
        .unwrap();
    logs.put_metric_filter(
        &s,
        "g",
        "bytes",
        "[..., bytes]",
        vec![transformation("$bytes")],
        false,
    )
    .unwrap();
    let now = now_ms();
    logs.put_log_events(
        &s,
        "g",
        "s",
        vec![ev(now, "ERROR 10"), ev(now, "ok 5"), ev(now, "ERROR x")],
        None,
    )
    .unwrap();
    let counts = logs.metric_filter_counts(&s, Some("g")).unwrap();
    let by_name: std::collections::HashMap<String, MetricFilterCounts> = counts
        .into_iter()
        .map(|(f, c)| (f.filter_name, c))
        .collect();
    assert_eq!(by_name["errors"].matched_events, 2);
    assert_eq!(by_name["errors"].metric_value_sum, 4.0);
    // "x" is not a number: matched, adds nothing.
    assert_eq!(by_name["bytes"].matched_events, 3);
    assert_eq!(by_name["bytes"].metric_value_sum, 15.0);
    assert_eq!(logs.metric_filter_count(&s, "g").unwrap(), 2);

    logs.delete_metric_filter(&s, "g", "errors").unwrap();
    assert_eq!(logs.metric_filter_counts(&s, Some("g")).unwrap().len(), 1);
    logs.delete_log_group(&s, "g").unwrap();
    let mut left = Vec::new();
    berth_store::scan(store.as_ref(), "logs/", None, |kv| {
        left.push(kv.key.clone());
        Ok::<_, LogsError>(true)
    })
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn metric_filters_are_limited_to_100_per_group() {
    let (_dir, _store, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    for n in 0..100 {
        logs.put_metric_filter(
            &s,
            "g",
            &format!("f{n:03}"),
            "",
            vec![transformation("1")],
            false,
        )
        .unwrap();
    }
    // Replacing one is fine; a 101st is not.
    logs.put_metric_filter(&s, "g", "f000", "x", vec![transformation("1")], false)
        .unwrap();
    let e = logs
        .put_metric_filter(&s, "g", "f100", "", vec![transformation("1")], false)
        .unwrap_err();
    assert!(matches!(e, LogsError::LimitExceeded(_)), "{e}");
    let q = DescribeMetricFilters {
        group: Some("g".into()),
        limit: 50,
        ..Default::default()
    };
    let (page, token) = logs.describe_metric_filters(&s, &q).unwrap();
    assert_eq!(page.len(), 50);
    let q = DescribeMetricFilters {
        next_token: token,
        ..q
    };
    let (page, token) = logs.describe_metric_filters(&s, &q).unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page[49].filter_name, "f099");
    assert!(token.is_none());
}

/// Without a group, filters of every group in filter name order; `filterNamePrefix` only
/// counts with a group (API reference, DescribeMetricFilters).
#[test]
fn metric_filters_of_every_group_sort_by_filter_name() {
    let (_dir, _store, logs) = logs();
    let s = group_g_with_stream_s(&logs);
    logs.create_log_group(&s, "h", Default::default(), None, None)
        .unwrap();
    logs.put_metric_filter(&s, "g", "b", "", vec![transformation("1")], false)
        .unwrap();
    logs.put_metric_filter(&s, "h", "a", "", vec![transformation("1")], false)
        .unwrap();
    let q = DescribeMetricFilters {
        name_prefix: Some("b".into()),
        limit: 1,
        ..Default::default()
    };
    let (page, token) = logs.describe_metric_filters(&s, &q).unwrap();
    assert_eq!(page[0].filter_name, "a");
    assert_eq!(page[0].log_group_name, "h");
    let q = DescribeMetricFilters {
        next_token: token,
        ..q
    };
    let (page, token) = logs.describe_metric_filters(&s, &q).unwrap();
    assert_eq!(page[0].filter_name, "b");
    assert!(token.is_none());
}
