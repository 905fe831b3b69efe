//! What only the durable engine promises: data, revision and history survive a reopen, the file
//! is locked against a second opener, history is bounded, and a `kill -9` mid-write loses no
//! acknowledged transaction and tears none.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_store::{Compare, Op, RedbStore, Store, StoreError, TxnOutcome};

#[test]
fn reopen_keeps_data_revision_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    {
        let s = RedbStore::open(&path).unwrap();
        s.put("r/1", b"one").unwrap();
        s.put("r/2", b"two").unwrap();
        s.put("r/1", b"uno").unwrap();
        s.delete("r/2").unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.current_revision().unwrap(), 4);
    let kv = s.get("r/1").unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"uno"[..], 1, 3)
    );
    assert!(s.get("r/2").unwrap().is_none());
    let mut w = s.watch("r/", 0).unwrap();
    let revs: Vec<_> = std::iter::from_fn(|| w.try_recv().ok())
        .map(|e| e.kv.mod_revision)
        .collect();
    assert_eq!(revs, [1, 2, 3, 4]);
    assert_eq!(s.put("r/3", b"three").unwrap(), 5, "the counter continues");
}

#[test]
fn second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let first = RedbStore::open(&path).unwrap();
    assert!(matches!(RedbStore::open(&path), Err(StoreError::Io(_))));
    drop(first);
    RedbStore::open(&path).unwrap();
}

#[test]
fn automatic_compaction_bounds_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let s = RedbStore::open_with_history(&path, 20).unwrap();
    for i in 0..100u32 {
        s.put("h/k", &i.to_le_bytes()).unwrap();
    }
    let compacted = s.compacted_revision().unwrap();
    // At least the last 20 revisions are kept, and at most a batch more than that.
    assert!(
        (100 - 20 - 2..=100 - 20).contains(&compacted),
        "{compacted}"
    );
    assert!(matches!(
        s.watch("h/", 0),
        Err(StoreError::Compacted { requested: 0, oldest }) if oldest == compacted
    ));
    let mut w = s.watch("h/", 80).unwrap();
    let revs: Vec<_> = std::iter::from_fn(|| w.try_recv().ok())
        .map(|e| e.kv.mod_revision)
        .collect();
    assert_eq!(revs, (81..=100).collect::<Vec<_>>());
    drop(s);
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.compacted_revision().unwrap(), compacted, "durable too");
}

const WRITER_ENV: &str = "BERTH_STORE_CRASH_WRITER_DB";
const CRASH_TEST: &str = "kill_9_mid_write_loses_no_acknowledged_txn";

/// The parent runs rounds of: start a writer child (this test binary re-executed in writer
/// mode), read some of its acknowledgements, SIGKILL it, reopen and check.
#[test]
fn kill_9_mid_write_loses_no_acknowledged_txn() {
    if let Some(path) = std::env::var_os(WRITER_ENV) {
        run_writer(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    for (round, acks_before_kill) in [7usize, 40, 113, 25, 1, 64, 3, 90].into_iter().enumerate() {
        let (last_i, last_rev) = run_child_and_kill(&path, acks_before_kill, round);
        let s = RedbStore::open(&path).unwrap();
        let rev = s.current_revision().unwrap();
        assert!(rev >= last_rev, "revision {rev} < acknowledged {last_rev}");
        let a = s.get("crash/a").unwrap().unwrap();
        let b = s.get("crash/b").unwrap().unwrap();
        assert_eq!(a.value, b.value, "torn transaction");
        assert_eq!(a.mod_revision, b.mod_revision, "torn transaction");
        let i = parse_u64(&a.value);
        assert!(i >= last_i, "write {last_i} acknowledged, store holds {i}");
        // One revision per transaction and no other writers: the counter equals the count.
        assert_eq!(rev, i);
        assert_eq!(a.mod_revision, rev);
        let numbered = s.range("crash/n/", None, 0).unwrap();
        let got: Vec<u64> = numbered.iter().map(|kv| parse_u64(&kv.value)).collect();
        assert_eq!(
            got,
            (1..=i).collect::<Vec<_>>(),
            "every acknowledged write present"
        );
        for kv in &numbered {
            assert_eq!(kv.mod_revision, parse_u64(&kv.value));
        }
        // The changelog committed with the keys: three events per revision, in order.
        let mut w = s.watch("crash/", 0).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| w.try_recv().ok()).collect();
        assert_eq!(events.len() as u64, 3 * i);
        assert!(
            events
                .windows(2)
                .all(|p| p[0].kv.mod_revision <= p[1].kv.mod_revision)
        );
        eprintln!("round {round}: killed after ack {last_i}, store at revision {rev}");
    }
}

/// Returns the last acknowledged (write number, revision), counting acknowledgements still in
/// the pipe after the kill: they were printed, so the child had committed them.
fn run_child_and_kill(path: &Path, acks_before_kill: usize, round: usize) -> (u64, u64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = (0, 0);
    let mut seen = 0;
    let mut parse = |line: String| {
        if let Some(rest) = line.strip_prefix("ack ") {
            let (i, rev) = rest.split_once(' ').unwrap();
            last = (i.parse().unwrap(), rev.parse().unwrap());
            true
        } else {
            false
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < acks_before_kill {
        assert!(Instant::now() < deadline, "writer too slow");
        let line = lines.next().expect("writer exited early").unwrap();
        seen += usize::from(parse(line));
    }
    // Vary the moment of the kill within a commit.
    std::thread::sleep(Duration::from_micros(300 * round as u64));
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines {
        parse(line.unwrap());
    }
    last
}

/// Writer mode: commit numbered transactions forever, printing each acknowledged one. Each
/// writes two keys that must always match plus one key per write number.
fn run_writer(path: &Path) -> ! {
    let s = RedbStore::open(path).unwrap();
    let (mut i, mut rev_a) = match s.get("crash/a").unwrap() {
        Some(kv) => (parse_u64(&kv.value), kv.mod_revision),
        None => (0, 0),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        i += 1;
        let v = i.to_string();
        let outcome = s
            .txn(
                &[Compare::ModRevision("crash/a".into(), rev_a)],
                &[
                    Op::put("crash/a", v.clone()),
                    Op::put(format!("crash/n/{i:010}"), v.clone()),
                    Op::put("crash/b", v),
                ],
            )
            .unwrap();
        let TxnOutcome::Committed(rev) = outcome else {
            panic!("conflict with no other writer")
        };
        rev_a = rev;
        println!("ack {i} {rev}");
    }
    // The parent never lets it get here; exit rather than loop if it died.
    std::process::exit(0)
}

fn parse_u64(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw).unwrap().parse().unwrap()
}
