use super::*;

const LO: EventKey = (i64::MIN, 0);
const HI: EventKey = (i64::MAX, u64::MAX);

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
        .page(LO, HI, i64::MIN, i64::MAX, 5, usize::MAX, true)
        .unwrap();
    assert_eq!(
        messages(&head),
        ["line 0", "line 1", "line 2", "line 3", "line 4"]
    );
    let mid = s
        .page(
            (t0 + 1234, 1234),
            HI,
            i64::MIN,
            i64::MAX,
            2,
            usize::MAX,
            true,
        )
        .unwrap();
    assert_eq!(messages(&mid), ["line 1234", "line 1235"]);
    let tail = s
        .page(LO, HI, i64::MIN, i64::MAX, 3, usize::MAX, false)
        .unwrap();
    assert_eq!(messages(&tail), ["line 2997", "line 2998", "line 2999"]);
    let before = s
        .page(
            LO,
            (t0 + 10, 10),
            i64::MIN,
            i64::MAX,
            100,
            usize::MAX,
            false,
        )
        .unwrap();
    assert_eq!(before.len(), 10);
    // Time range: [start, end).
    let ranged = s
        .page(LO, HI, t0 + 500, t0 + 503, 100, usize::MAX, true)
        .unwrap();
    assert_eq!(messages(&ranged), ["line 500", "line 501", "line 502"]);
    // Byte cap: 26 bytes of overhead per event, as AWS counts.
    let capped = s
        .page(LO, HI, i64::MIN, i64::MAX, 100, 3 * (6 + 26), true)
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
        .page(LO, HI, i64::MIN, i64::MAX, 1000, usize::MAX, true)
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
        .page(LO, HI, i64::MIN, i64::MAX, 100, usize::MAX, true)
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
        .page(LO, HI, i64::MIN, i64::MAX, 100, usize::MAX, true)
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
    let decoded = std::sync::atomic::AtomicUsize::new(0);
    let matches = |e: &EventRef<'_>| {
        decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        e.message.contains("needle")
    };
    let hits = s
        .scan_matching(i64::MIN, i64::MAX, Some(&finder), &matches, 10)
        .unwrap();
    assert_eq!(hits.iter().map(|e| e.ordinal).collect::<Vec<_>>(), [37_500]);
    let decoded = decoded.into_inner();
    assert!(decoded < 50_000 / 4, "decoded {decoded} events");
    // Without the literal every block is read; the limit and the order hold.
    let every_thousandth = |e: &EventRef<'_>| e.ordinal.is_multiple_of(1000);
    let hits = s
        .scan_matching(t0 + 5_000, i64::MAX, None, &every_thousandth, 7)
        .unwrap();
    let ordinals: Vec<u64> = hits.iter().map(|e| e.ordinal).collect();
    assert_eq!(
        ordinals,
        [5_000, 6_000, 7_000, 8_000, 9_000, 10_000, 11_000]
    );
}

fn files(dir: &Path, suffix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .count()
}

#[test]
fn rolled_segments_are_sealed_compressed_and_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let t0 = 1_700_000_000_000 / day * day;
    let s = StreamStore::open(dir.path()).unwrap();
    // Two days of repetitive lines (compressible), the cursor in the sealed day's last frame.
    for b in 0..20 {
        let events: Vec<InputEvent> = (0..500)
            .map(|i| {
                ev(
                    t0 + b * 500 + i,
                    &format!("GET /api/items/{} 200 {}ms user=alice", b * 500 + i, i % 17),
                )
            })
            .collect();
        s.append(&events, t0, Some(&format!("c{b}"))).unwrap();
    }
    s.append(&batch(10_000, 10, t0 + day), t0, None).unwrap();
    assert!(s.needs_seal());
    let before = s
        .page(LO, HI, i64::MIN, i64::MAX, 20_000, usize::MAX, true)
        .unwrap();
    let raw_bytes = s.stats().stored_bytes;
    assert_eq!(s.seal_pending().unwrap(), 1);
    assert!(!s.needs_seal());
    assert_eq!(
        (files(dir.path(), ".seg"), files(dir.path(), ".segz")),
        (1, 1)
    );
    let sealed_bytes = s.stats().stored_bytes;
    assert!(
        sealed_bytes * 3 < raw_bytes,
        "sealed {sealed_bytes} bytes of {raw_bytes}"
    );
    let after = s
        .page(LO, HI, i64::MIN, i64::MAX, 20_000, usize::MAX, true)
        .unwrap();
    assert_eq!(before, after);
    let back = s
        .page(LO, HI, i64::MIN, i64::MAX, 3, usize::MAX, false)
        .unwrap();
    assert_eq!(messages(&back), ["line 10007", "line 10008", "line 10009"]);
    let hit = |e: &EventRef<'_>| e.message.contains("/items/4321 ");
    let found = s.scan_matching(i64::MIN, i64::MAX, None, &hit, 10).unwrap();
    assert_eq!(found.iter().map(|e| e.ordinal).collect::<Vec<_>>(), [4321]);
    drop(s);
    // Reopened: the same events, the cursor from the sealed segment, appends continue.
    let s = StreamStore::open(dir.path()).unwrap();
    assert_eq!(s.stats().cursor.as_deref(), Some("c19"));
    assert_eq!(s.end_ordinal(), 10_010);
    let reopened = s
        .page(LO, HI, i64::MIN, i64::MAX, 20_000, usize::MAX, true)
        .unwrap();
    assert_eq!(after, reopened);
    assert_eq!(s.stats().events, 10_010);
    // Retention removes the sealed file whole.
    assert_eq!(s.expire(t0 + day).unwrap(), 1);
    assert_eq!(files(dir.path(), ".segz"), 0);
}

#[test]
fn a_seal_cut_short_leaves_the_frames_and_a_finished_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let t0 = 1_700_000_000_000 / day * day;
    {
        let s = StreamStore::open(dir.path()).unwrap();
        s.append(&batch(0, 100, t0), t0, None).unwrap();
        s.append(&batch(100, 1, t0 + day), t0, None).unwrap();
        s.seal_pending().unwrap();
    }
    // A crash after the rename, before the frames were removed: both are there.
    let raw = segment_path(dir.path(), 0);
    fs::write(&raw, segment::encode_frame(&batch(0, 100, t0), 0, t0, None)).unwrap();
    // A crash mid-seal: a temporary file.
    fs::write(dir.path().join("00000000000000000100.segz.tmp"), b"partial").unwrap();
    let s = StreamStore::open(dir.path()).unwrap();
    assert!(!raw.exists());
    assert_eq!(files(dir.path(), ".tmp"), 0);
    let all = s
        .page(LO, HI, i64::MIN, i64::MAX, 1_000, usize::MAX, true)
        .unwrap();
    assert_eq!(all.len(), 101);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.message == format!("line {i}"))
    );
}

#[test]
fn a_cursor_stored_without_events_survives_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let t0 = 1_700_000_000_000 / day * day;
    {
        let s = StreamStore::open(dir.path()).unwrap();
        s.append(&batch(0, 10, t0), t0, Some("c1")).unwrap();
        // A put whose events were all refused still moves the shipper's cursor.
        s.append(&[], t0, Some("c2")).unwrap();
        s.append(&batch(10, 10, t0 + day), t0, None).unwrap();
        assert_eq!(s.seal_pending().unwrap(), 1);
        assert_eq!(s.stats().first_event, Some(t0));
        assert_eq!(s.stats().events, 20);
    }
    let s = StreamStore::open(dir.path()).unwrap();
    assert_eq!(s.stats().cursor.as_deref(), Some("c2"));
    assert_eq!(s.stats().first_event, Some(t0));
    let all = s
        .page(LO, HI, i64::MIN, i64::MAX, 100, usize::MAX, true)
        .unwrap();
    assert_eq!(all.len(), 20);
}
