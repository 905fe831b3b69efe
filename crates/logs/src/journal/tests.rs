use std::sync::Arc;

use berth_store::Store;

use crate::{FilterLogEvents, GetLogEvents, InputEvent, LogScope, Logs, LogsError, now_ms};

/// Two replicas' logs services over one store.
fn replicas() -> (tempfile::TempDir, Arc<dyn Store>, Logs, Logs) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(berth_store::MemStore::new());
    let a = Logs::open_shared(store.clone(), &dir.path().join("a")).unwrap();
    let b = Logs::open_shared(store.clone(), &dir.path().join("b")).unwrap();
    (dir, store, a, b)
}

fn scope() -> LogScope {
    LogScope {
        account: "000000000000".into(),
        region: "us-east-1".into(),
    }
}

fn batch(from: i64, n: usize, tag: &str) -> Vec<InputEvent> {
    (0..n)
        .map(|i| InputEvent {
            timestamp: from + i as i64,
            message: format!("{tag} {i}"),
        })
        .collect()
}

fn all(logs: &Logs) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut q = GetLogEvents {
        group: "g".into(),
        stream: "s".into(),
        start_from_head: true,
        limit: Some(7),
        ..Default::default()
    };
    loop {
        let page = logs.get_log_events(&scope(), &q).unwrap();
        if page.events.is_empty() {
            return out;
        }
        out.extend(page.events.into_iter().map(|e| (e.ordinal, e.message)));
        q.next_token = Some(page.next_forward_token);
    }
}

fn filtered(logs: &Logs, pattern: Option<&str>) -> Vec<String> {
    let page = logs
        .filter_log_events(
            &scope(),
            &FilterLogEvents {
                group: "g".into(),
                pattern: pattern.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.next_token.is_none());
    page.events.into_iter().map(|e| e.message).collect()
}

fn keys(store: &dyn Store, prefix: &str) -> usize {
    store.range(prefix, None, 0).unwrap().len()
}

fn setup(a: &Logs) {
    a.create_log_group(&scope(), "g", Default::default(), None, None)
        .unwrap();
    a.create_log_stream(&scope(), "g", "s").unwrap();
}

#[test]
fn a_batch_put_through_one_replica_is_read_through_another_and_sequences_continue() {
    let (_dir, store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    let put = a
        .put_log_events(&scope(), "g", "s", batch(now, 3, "one"), None)
        .unwrap();
    assert_eq!(put.sequence, 3);
    let put = b
        .put_log_events(&scope(), "g", "s", batch(now + 10, 2, "two"), None)
        .unwrap();
    assert_eq!(
        put.sequence, 5,
        "one sequence whichever replica takes a batch"
    );
    let expected: Vec<(u64, String)> = vec![
        (0, "one 0".into()),
        (1, "one 1".into()),
        (2, "one 2".into()),
        (3, "two 0".into()),
        (4, "two 1".into()),
    ];
    assert_eq!(all(&a), expected);
    assert_eq!(all(&b), expected);
    assert_eq!(filtered(&b, Some("one")).len(), 3);
    let (streams, _) = b
        .describe_log_streams(
            &scope(),
            "g",
            None,
            crate::StreamOrder::LogStreamName,
            false,
            None,
            50,
        )
        .unwrap();
    assert_eq!(streams[0].stats.events, 5);
    assert_eq!(streams[0].stats.last_event, Some(now + 11));
    assert_eq!(keys(store.as_ref(), "logs-journal/"), 2);
    // Nothing on either replica's disk.
    assert!(!a.is_shared() || keys(store.as_ref(), "logs-sealed/") == 0);
}

#[test]
fn sealed_runs_and_the_journal_read_as_one_stream_exactly_once() {
    let (_dir, store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    for i in 0..5 {
        a.put_log_events(
            &scope(),
            "g",
            "s",
            batch(now + i * 100, 4, &format!("b{i}")),
            None,
        )
        .unwrap();
    }
    let before = all(&b);
    assert_eq!(before.len(), 20);
    // Young entries are left alone; with no minimum age they are sealed.
    assert_eq!(
        a.seal_journal(store.as_ref(), std::time::Duration::from_secs(60))
            .unwrap(),
        0
    );
    assert_eq!(
        a.seal_journal(store.as_ref(), std::time::Duration::ZERO)
            .unwrap(),
        1
    );
    assert_eq!(keys(store.as_ref(), "logs-journal/"), 0);
    assert_eq!(keys(store.as_ref(), "logs-sealed/"), 1);
    assert_eq!(all(&b), before);
    // More after the seal: both read together, in order.
    b.put_log_events(&scope(), "g", "s", batch(now + 1000, 3, "late"), None)
        .unwrap();
    let after = all(&a);
    assert_eq!(after.len(), 23);
    assert_eq!(after[20], (20, "late 0".into()));
    assert_eq!(filtered(&a, Some("late")).len(), 3);
    assert_eq!(filtered(&a, None).len(), 23);
    // A second seal adds a run.
    assert_eq!(
        b.seal_journal(store.as_ref(), std::time::Duration::ZERO)
            .unwrap(),
        1
    );
    assert_eq!(all(&b), after);
    assert_eq!(keys(store.as_ref(), "logs-sealed/"), 2);
}

#[test]
fn a_retried_batch_is_refused_by_every_replica() {
    let (_dir, _store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    a.put_log_events(&scope(), "g", "s", batch(now, 1, "x"), Some("c1"))
        .unwrap();
    let again = b.put_log_events(&scope(), "g", "s", batch(now, 1, "x"), Some("c1"));
    assert!(
        matches!(again, Err(LogsError::DataAlreadyAccepted)),
        "{again:?}"
    );
    let (streams, _) = b
        .describe_log_streams(
            &scope(),
            "g",
            None,
            crate::StreamOrder::LogStreamName,
            false,
            None,
            50,
        )
        .unwrap();
    assert_eq!(streams[0].stats.cursor.as_deref(), Some("c1"));
}

#[test]
fn racing_replicas_take_distinct_ordinals() {
    let (_dir, _store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let logs = if t % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                for i in 0..10 {
                    logs.put_log_events(
                        &scope(),
                        "g",
                        "s",
                        batch(now + i, 2, &format!("t{t}-{i}")),
                        None,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let events = all(&a);
    assert_eq!(events.len(), 80);
    let mut ordinals: Vec<u64> = events.iter().map(|(o, _)| *o).collect();
    ordinals.sort_unstable();
    assert_eq!(ordinals, (0..80).collect::<Vec<_>>());
}

#[test]
fn deleting_a_stream_or_expiring_runs_removes_their_keys() {
    let (_dir, store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    a.put_log_events(
        &scope(),
        "g",
        "s",
        batch(now - 3 * crate::DAY_MS, 2, "old"),
        None,
    )
    .unwrap();
    a.seal_journal(store.as_ref(), std::time::Duration::ZERO)
        .unwrap();
    a.put_log_events(&scope(), "g", "s", batch(now, 2, "new"), None)
        .unwrap();
    a.seal_journal(store.as_ref(), std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(keys(store.as_ref(), "logs-sealed/"), 2);
    b.put_retention_policy(&scope(), "g", 1).unwrap();
    assert_eq!(keys(store.as_ref(), "logs-sealed/"), 1);
    assert_eq!(all(&a).len(), 2);
    a.put_log_events(&scope(), "g", "s", batch(now, 2, "more"), None)
        .unwrap();
    b.delete_log_stream(&scope(), "g", "s").unwrap();
    for prefix in [
        "logs-journal/",
        "logs-sealed/",
        "logs-head/",
        "logs-segments/",
    ] {
        assert_eq!(keys(store.as_ref(), prefix), 0, "{prefix}");
    }
    let gone = a.put_log_events(&scope(), "g", "s", batch(now, 1, "x"), None);
    assert!(
        matches!(gone, Err(LogsError::ResourceNotFound(_))),
        "{gone:?}"
    );
}

#[test]
fn a_long_journal_seals_into_several_runs_and_a_deleted_streams_leftovers_go() {
    let (_dir, store, a, b) = replicas();
    setup(&a);
    let now = now_ms();
    // 2,500 small batches: more than one run's worth of entries.
    for i in 0..2500 {
        a.put_log_events(
            &scope(),
            "g",
            "s",
            batch(now + i, 1, &format!("n{i}")),
            None,
        )
        .unwrap();
    }
    assert_eq!(
        a.seal_journal(store.as_ref(), std::time::Duration::ZERO)
            .unwrap(),
        2
    );
    let read = all(&b);
    assert_eq!(read.len(), 2500);
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, (o, m))| *o == i as u64 && *m == format!("n{i} 0"))
    );
    // A stream record deleted behind the service's back (a deletion cut short after its
    // records went): the next sealing pass removes what it left.
    a.put_log_events(&scope(), "g", "s", batch(now + 3000, 1, "x"), None)
        .unwrap();
    store.delete(&scope().stream_key("g", "s")).unwrap();
    a.seal_journal(store.as_ref(), std::time::Duration::ZERO)
        .unwrap();
    for prefix in [
        "logs-journal/",
        "logs-sealed/",
        "logs-head/",
        "logs-segments/",
    ] {
        assert_eq!(keys(store.as_ref(), prefix), 0, "{prefix}");
    }
}
