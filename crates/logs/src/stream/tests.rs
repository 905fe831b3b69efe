use super::*;

fn ev(ts: i64, m: &str) -> InputEvent {
    InputEvent {
        timestamp: ts,
        message: m.to_string(),
    }
}

fn batch(from: usize, n: usize, ts: i64) -> Vec<InputEvent> {
    (from..from + n)
        .map(|i| ev(ts + i as i64, &format!("line {i}")))
        .collect()
}

fn messages(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.message.clone()).collect()
}

#[test]
fn pages_forward_and_backward_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    {
        let s = StreamStore::open(dir.path()).unwrap();
        for b in 0..30 {
            assert_eq!(
                s.append(&batch(b * 100, 100, t0), t0, None).unwrap(),
                b as u64 * 100
            );
        }
        assert_eq!(s.end_ordinal(), 3000);
    }
    let s = StreamStore::open(dir.path()).unwrap();
    assert_eq!(s.end_ordinal(), 3000);
    let stats = s.stats();
    assert_eq!(
        (stats.first_event, stats.last_event, stats.events),
        (Some(t0), Some(t0 + 2999), 3000)
    );
    let head = s
        .page(0, u64::MAX, i64::MIN, i64::MAX, 5, usize::MAX, true)
        .unwrap();
    assert_eq!(
        messages(&head),
        ["line 0", "line 1", "line 2", "line 3", "line 4"]
    );
    let mid = s
        .page(1234, u64::MAX, i64::MIN, i64::MAX, 2, usize::MAX, true)
        .unwrap();
    assert_eq!(messages(&mid), ["line 1234", "line 1235"]);
    let tail = s
        .page(0, 3000, i64::MIN, i64::MAX, 3, usize::MAX, false)
        .unwrap();
    assert_eq!(messages(&tail), ["line 2997", "line 2998", "line 2999"]);
    let before = s
        .page(0, 10, i64::MIN, i64::MAX, 100, usize::MAX, false)
        .unwrap();
    assert_eq!(before.len(), 10);
    // Time range: [start, end).
    let ranged = s
        .page(0, u64::MAX, t0 + 500, t0 + 503, 100, usize::MAX, true)
        .unwrap();
    assert_eq!(messages(&ranged), ["line 500", "line 501", "line 502"]);
    // Byte cap: 26 bytes of overhead per event, as AWS counts.
    let capped = s
        .page(0, u64::MAX, i64::MIN, i64::MAX, 100, 3 * (6 + 26), true)
        .unwrap();
    assert_eq!(capped.len(), 3);
    // Appending after reopen continues the ordinals.
    assert_eq!(s.append(&batch(3000, 1, t0), t0, None).unwrap(), 3000);
}

#[test]
fn a_torn_tail_is_cut_off_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    {
        let s = StreamStore::open(dir.path()).unwrap();
        s.append(&batch(0, 10, t0), t0, Some("c1")).unwrap();
        s.append(&batch(10, 10, t0), t0, Some("c2")).unwrap();
    }
    let seg = fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = fs::metadata(&seg).unwrap().len();
    // A half-written third frame (the process died before its fsync was acknowledged).
    let frame = segment::encode_frame(&batch(20, 10, t0), 20, t0, Some("c3"));
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(f);
    let s = StreamStore::open(dir.path()).unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), len);
    assert_eq!(s.end_ordinal(), 20);
    assert_eq!(s.stats().cursor.as_deref(), Some("c2"));
    s.append(&batch(20, 1, t0), t0, Some("c3")).unwrap();
    let all = s
        .page(0, u64::MAX, i64::MIN, i64::MAX, 1000, usize::MAX, true)
        .unwrap();
    assert_eq!(all.len(), 21);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.ordinal == i as u64 && e.message == format!("line {i}"))
    );
    drop(s);
    assert_eq!(
        StreamStore::open(dir.path())
            .unwrap()
            .stats()
            .cursor
            .as_deref(),
        Some("c3")
    );
}

#[test]
fn segments_roll_by_day_and_expire_whole() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let t0 = 1_700_000_000_000 / day * day;
    let s = StreamStore::open(dir.path()).unwrap();
    s.append(&batch(0, 5, t0), t0, None).unwrap();
    s.append(&batch(5, 5, t0 + 10), t0, None).unwrap();
    s.append(&batch(10, 5, t0 + day), t0, None).unwrap();
    s.append(&batch(15, 5, t0 + 2 * day), t0, None).unwrap();
    assert_eq!(s.segment_count(), 3);
    assert_eq!(s.expire(t0 + day).unwrap(), 1);
    assert_eq!(s.segment_count(), 2);
    let left = s
        .page(0, u64::MAX, i64::MIN, i64::MAX, 100, usize::MAX, true)
        .unwrap();
    assert_eq!(left.first().unwrap().message, "line 10");
    assert_eq!(left.len(), 10);
    assert_eq!(s.stats().first_event, Some(t0 + day + 10));
    // Expiring the segment being written to: the next put starts a new one.
    assert_eq!(s.expire(t0 + 3 * day).unwrap(), 2);
    s.append(&batch(20, 1, t0 + 3 * day), t0, None).unwrap();
    drop(s);
    let s = StreamStore::open(dir.path()).unwrap();
    let left = s
        .page(0, u64::MAX, i64::MIN, i64::MAX, 100, usize::MAX, true)
        .unwrap();
    assert_eq!(messages(&left), ["line 20"]);
    assert_eq!(left[0].ordinal, 20);
}

#[test]
fn scan_skips_blocks_without_the_literal() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    let s = StreamStore::open(dir.path()).unwrap();
    for b in 0..50 {
        let mut events = batch(b * 1000, 1000, t0);
        if b == 37 {
            events[500].message = "needle here".into();
        }
        s.append(&events, t0, None).unwrap();
    }
    let finder = [memchr::memmem::Finder::new(b"needle")];
    let mut decoded = 0;
    let mut hits = Vec::new();
    s.scan(0, i64::MIN, i64::MAX, Some(&finder), |e| {
        decoded += 1;
        if e.message.contains("needle") {
            hits.push(e.ordinal);
        }
        true
    })
    .unwrap();
    assert_eq!(hits, [37_500]);
    assert!(decoded < 50_000 / 4, "decoded {decoded} events");
}
