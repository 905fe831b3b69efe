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
    let acks = run_writer_child_and_kill(CRASH_TEST, WRITER_ENV, path, acks_before_kill, round);
    acks.last().map_or((0, 0), |ack| {
        let (i, rev) = ack.split_once(' ').unwrap();
        (i.parse().unwrap(), rev.parse().unwrap())
    })
}

/// Starts this test binary as a writer child (`test` run with `env` set to `path`), reads
/// `acks_before_kill` of its "ack ..." lines, SIGKILLs it and returns every acknowledgement it
/// printed, including those still in the pipe after the kill.
fn run_writer_child_and_kill(
    test: &str,
    env: &str,
    path: &Path,
    acks_before_kill: usize,
    round: usize,
) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    let keep_ack = |acks: &mut Vec<String>, line: String| {
        if let Some(rest) = line.strip_prefix("ack ") {
            acks.push(rest.to_string());
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.len() < acks_before_kill {
        assert!(Instant::now() < deadline, "writer too slow");
        keep_ack(
            &mut acks,
            lines.next().expect("writer exited early").unwrap(),
        );
    }
    // Vary the moment of the kill within a commit.
    std::thread::sleep(Duration::from_micros(300 * round as u64));
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines {
        keep_ack(&mut acks, line.unwrap());
    }
    acks
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

const GROUP_WRITER_ENV: &str = "BERTH_STORE_CRASH_GROUP_WRITER_DB";
const GROUP_CRASH_TEST: &str = "kill_9_mid_group_commit_loses_no_acknowledged_txn";
const GROUP_WRITERS: u64 = 8;

/// As above with 8 writer threads, so that transactions are group-committed: every
/// transaction a thread saw acknowledged must survive, each at the revision it was given, and
/// the revisions must be exactly 1..=current, one per transaction.
#[test]
fn kill_9_mid_group_commit_loses_no_acknowledged_txn() {
    if let Some(path) = std::env::var_os(GROUP_WRITER_ENV) {
        run_group_writers(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    for (round, acks_before_kill) in [60usize, 5, 200, 1, 130].into_iter().enumerate() {
        let acks = run_writer_child_and_kill(
            GROUP_CRASH_TEST,
            GROUP_WRITER_ENV,
            &path,
            acks_before_kill,
            round,
        );
        let s = RedbStore::open(&path).unwrap();
        for ack in &acks {
            let (key, rev) = ack.split_once(' ').unwrap();
            let kv = s.get(key).unwrap();
            assert_eq!(
                kv.map(|kv| kv.mod_revision),
                Some(rev.parse().unwrap()),
                "acknowledged {key} at {rev}"
            );
        }
        let mut revs = Vec::new();
        for t in 0..GROUP_WRITERS {
            let written = s.range(&format!("crash/g/{t}/"), None, 0).unwrap();
            let numbers: Vec<u64> = written.iter().map(|kv| parse_u64(&kv.value)).collect();
            assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
            revs.extend(written.iter().map(|kv| kv.mod_revision));
        }
        revs.sort_unstable();
        let current = s.current_revision().unwrap();
        assert_eq!(
            revs,
            (1..=current).collect::<Vec<_>>(),
            "one revision per txn"
        );
        eprintln!(
            "round {round}: killed after {} acks, store at revision {current}",
            acks.len()
        );
    }
}

/// Group writer mode: each thread creates numbered keys of its own forever, printing
/// "ack KEY REVISION" for each acknowledged one.
fn run_group_writers(path: &Path) -> ! {
    let s = std::sync::Arc::new(RedbStore::open(path).unwrap());
    let writers: Vec<_> = (0..GROUP_WRITERS)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let prefix = format!("crash/g/{t}/");
                let mut i = s.range(&prefix, None, 0).unwrap().len() as u64;
                let deadline = Instant::now() + Duration::from_secs(120);
                while Instant::now() < deadline {
                    i += 1;
                    let key = format!("{prefix}{i:010}");
                    let outcome = s
                        .txn(
                            &[Compare::CreateRevision(key.clone(), 0)],
                            &[Op::put(key.clone(), i.to_string())],
                        )
                        .unwrap();
                    let TxnOutcome::Committed(rev) = outcome else {
                        panic!("{key} existed already")
                    };
                    println!("ack {key} {rev}");
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
    // The parent never lets it get here; exit rather than loop if it died.
    std::process::exit(0)
}

fn parse_u64(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw).unwrap().parse().unwrap()
}
