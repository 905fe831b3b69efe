//! One behavioural suite for every `Store` engine: each check is written once, generic over
//! `impl Store`, and instantiated per engine by `suite!`, so the in-memory fake and the durable
//! engine cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::testing::EtcdCluster;
use berth_store::{
    Compare, EtcdStore, EventKind, MemStore, Op, RedbStore, Revision, Store, StoreError,
    TxnOutcome, WatchEvent, Watcher,
};

fn make_mem() -> Option<(MemStore, ())> {
    Some((MemStore::new(), ()))
}

fn make_redb() -> Option<(RedbStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("berth.redb")).unwrap();
    Some((store, dir))
}

/// A store on its own three-member etcd cluster (Debian's etcd-server, which the test
/// command installs); `None`, said plainly, where etcd is not installed.
fn make_etcd() -> Option<(EtcdStore, EtcdCluster)> {
    let Some(cluster) = EtcdCluster::start(3) else {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
        return None;
    };
    let store = EtcdStore::open(cluster.config()).unwrap();
    Some((store, cluster))
}

macro_rules! suite {
    ($engine:ident, $make:path) => {
        mod $engine {
            use super::*;

            #[test]
            fn cas_create_and_mod_revisions() {
                if let Some((store, _guard)) = $make() {
                    check_cas_create_and_mod_revisions(&store);
                }
            }

            #[test]
            fn compare_on_create_revision() {
                if let Some((store, _guard)) = $make() {
                    check_compare_on_create_revision(&store);
                }
            }

            #[test]
            fn range_by_prefix_paginates_in_byte_order() {
                if let Some((store, _guard)) = $make() {
                    check_range_by_prefix_paginates_in_byte_order(&store);
                }
            }

            #[test]
            fn txn_is_all_or_nothing() {
                if let Some((store, _guard)) = $make() {
                    check_txn_is_all_or_nothing(&store);
                }
            }

            #[test]
            fn delete_semantics() {
                if let Some((store, _guard)) = $make() {
                    check_delete_semantics(&store);
                }
            }

            #[test]
            fn watch_replays_then_follows() {
                if let Some((store, _guard)) = $make() {
                    check_watch_replays_then_follows(&store);
                }
            }

            #[test]
            fn watch_survives_dropped_watchers() {
                if let Some((store, _guard)) = $make() {
                    check_watch_survives_dropped_watchers(&store);
                }
            }

            #[test]
            fn compaction() {
                if let Some((store, _guard)) = $make() {
                    check_compaction(&store);
                }
            }

            #[test]
            fn watch_has_no_gaps_or_duplicates_under_concurrent_writers() {
                if let Some((store, _guard)) = $make() {
                    check_watch_under_concurrent_writers(Arc::new(store));
                }
            }

            #[test]
            fn concurrent_compare_and_swap_increments_are_exact() {
                if let Some((store, _guard)) = $make() {
                    check_concurrent_increments(&Arc::new(store));
                }
            }
        }
    };
}

suite!(mem, make_mem);
suite!(redb, make_redb);
suite!(etcd, make_etcd);

/// The durable engine group-commits: concurrent callers share fsyncs.
#[test]
fn redb_concurrent_txns_share_commits() {
    let (store, _guard) = make_redb().unwrap();
    let store = Arc::new(store);
    check_concurrent_increments(&store);
    let stats = store.commit_stats();
    assert!(stats.commits < stats.txns, "{stats:?}");
}

fn committed(outcome: TxnOutcome) -> Revision {
    match outcome {
        TxnOutcome::Committed(rev) => rev,
        TxnOutcome::Conflict => panic!("unexpected conflict"),
    }
}

/// Collects exactly `n` events, failing after a generous deadline rather than hanging.
fn recv_n(w: &mut Watcher, n: usize) -> Vec<WatchEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match w.try_recv() {
            Ok(e) => out.push(e),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("got {} of {n} events: {e}", out.len()),
        }
    }
    out
}

/// Asserts nothing more is queued.
fn assert_drained(w: &mut Watcher) {
    if let Ok(e) = w.try_recv() {
        panic!("unexpected extra event {e:?}");
    }
}

fn check_cas_create_and_mod_revisions(s: &impl Store) {
    // An engine's first revision is its own (etcd starts at 1): count from it.
    let base = s.current_revision().unwrap();
    assert_eq!(
        s.put_if_revision("a/1", b"x", 0).unwrap(),
        TxnOutcome::Committed(base + 1)
    );
    assert_eq!(
        s.put_if_revision("a/1", b"y", 0).unwrap(),
        TxnOutcome::Conflict
    );
    assert_eq!(
        s.put_if_revision("a/1", b"y", 7).unwrap(),
        TxnOutcome::Conflict
    );
    assert_eq!(
        s.put_if_revision("a/1", b"y", base + 1).unwrap(),
        TxnOutcome::Committed(base + 2)
    );
    let kv = s.get("a/1").unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"y"[..], base + 1, base + 2)
    );
    assert_eq!(s.put("a/2", b"").unwrap(), base + 3);
    assert_eq!(s.get("a/2").unwrap().unwrap().value, b"");
    assert!(s.get("a/3").unwrap().is_none());
    assert_eq!(s.current_revision().unwrap(), base + 3);
}

fn check_range_by_prefix_paginates_in_byte_order(s: &impl Store) {
    let base = s.current_revision().unwrap();
    for key in ["a/9", "a/10", "a", "a/", "ab", "b/1", "a/1"] {
        s.put(key, key.as_bytes()).unwrap();
    }
    let keys = |r: Vec<berth_store::KeyValue>| r.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
    assert_eq!(
        keys(s.range("a/", None, 0).unwrap()),
        ["a/", "a/1", "a/10", "a/9"]
    );
    assert_eq!(keys(s.range("a/", None, 2).unwrap()), ["a/", "a/1"]);
    assert_eq!(
        keys(s.range("a/", Some("a/1"), 2).unwrap()),
        ["a/10", "a/9"]
    );
    assert_eq!(
        keys(s.range("a/", Some("0"), 0).unwrap()),
        ["a/", "a/1", "a/10", "a/9"]
    );
    assert!(s.range("a/", Some("a/9"), 0).unwrap().is_empty());
    assert!(s.range("c", None, 0).unwrap().is_empty());
    assert_eq!(s.range("", None, 0).unwrap().len(), 7);
    let kv = &s.range("b/", None, 0).unwrap()[0];
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision),
        (&b"b/1"[..], base + 6)
    );
}

fn check_txn_is_all_or_nothing(s: &impl Store) {
    let r1 = s.put("t/a", b"1").unwrap();
    let before = s.current_revision().unwrap();
    // One failing comparison among several: nothing is written, the revision does not move.
    let outcome = s
        .txn(
            &[
                Compare::ModRevision("t/a".into(), r1),
                Compare::ModRevision("t/b".into(), 5),
            ],
            &[Op::put("t/a", "2"), Op::put("t/c", "3")],
        )
        .unwrap();
    assert_eq!(outcome, TxnOutcome::Conflict);
    assert_eq!(s.current_revision().unwrap(), before);
    assert_eq!(s.get("t/a").unwrap().unwrap().value, b"1");
    assert!(s.get("t/c").unwrap().is_none());

    // Everything holds: all operations land at one revision.
    let rev = committed(
        s.txn(
            &[
                Compare::ModRevision("t/a".into(), r1),
                Compare::ModRevision("t/b".into(), 0),
            ],
            &[Op::put("t/a", "2"), Op::put("t/b", "3"), Op::delete("t/a")],
        )
        .unwrap(),
    );
    assert_eq!(rev, before + 1);
    assert!(s.get("t/a").unwrap().is_none());
    let b = s.get("t/b").unwrap().unwrap();
    assert_eq!((b.create_revision, b.mod_revision), (rev, rev));

    // No operations: nothing to commit, the current revision is reported.
    assert_eq!(
        s.txn(&[Compare::ModRevision("t/b".into(), rev)], &[])
            .unwrap(),
        TxnOutcome::Committed(rev)
    );
    assert_eq!(s.current_revision().unwrap(), rev);
}

fn check_delete_semantics(s: &impl Store) {
    s.put("d/1", b"x").unwrap();
    let rev = s.current_revision().unwrap();
    assert_eq!(
        s.delete("d/missing").unwrap(),
        rev,
        "absent key commits nothing"
    );
    assert_eq!(s.delete("d/1").unwrap(), rev + 1);
    assert!(s.get("d/1").unwrap().is_none());
    // A recreated key starts a new life: create_revision is the new put's.
    assert_eq!(
        s.put_if_revision("d/1", b"y", 0).unwrap(),
        TxnOutcome::Committed(rev + 2)
    );
    assert_eq!(s.get("d/1").unwrap().unwrap().create_revision, rev + 2);
    // Deleting an absent key inside a txn with other ops still bumps the revision once.
    let r = committed(
        s.txn(&[], &[Op::delete("d/missing"), Op::put("d/2", "z")])
            .unwrap(),
    );
    assert_eq!(r, rev + 3);
}

fn check_watch_replays_then_follows(s: &impl Store) {
    let base = s.current_revision().unwrap();
    s.put("w/1", b"a").unwrap(); // base + 1
    s.put("x/1", b"a").unwrap(); // base + 2
    s.put("w/1", b"b").unwrap(); // base + 3
    let mut all = s.watch("w/", base).unwrap();
    let mut tail = s.watch("w/", base + 1).unwrap();
    let mut future = s.watch("w/", base + 100).unwrap();
    s.txn(
        &[],
        &[Op::put("w/2", "c"), Op::delete("w/1"), Op::put("x/2", "d")],
    )
    .unwrap(); // base + 4

    let got = recv_n(&mut all, 4);
    let summary: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                e.kv.key.as_str(),
                e.kv.value.as_slice(),
                // A delete event's create revision is not specified (etcd sends none).
                match e.kind {
                    EventKind::Put => e.kv.create_revision - base,
                    EventKind::Delete => 0,
                },
                e.kv.mod_revision - base,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::Put, "w/1", &b"a"[..], 1, 1),
            (EventKind::Put, "w/1", &b"b"[..], 1, 3),
            (EventKind::Put, "w/2", &b"c"[..], 4, 4),
            (EventKind::Delete, "w/1", &b""[..], 0, 4),
        ]
    );
    assert_eq!(recv_n(&mut tail, 3), got[1..]);
    assert_drained(&mut all);
    assert_drained(&mut tail);
    assert_drained(&mut future);
}

fn check_watch_survives_dropped_watchers(s: &impl Store) {
    let base = s.current_revision().unwrap();
    let dropped = s.watch("", base).unwrap();
    drop(dropped);
    let mut kept = s.watch("k/", base).unwrap();
    s.put("k/1", b"1").unwrap();
    s.put("k/2", b"2").unwrap();
    assert_eq!(recv_n(&mut kept, 2)[1].kv.key, "k/2");
}

fn check_compaction(s: &impl Store) {
    let base = s.current_revision().unwrap();
    for i in 1..=10u32 {
        s.put(&format!("c/{i}"), &i.to_le_bytes()).unwrap();
    }
    s.compact(base + 4).unwrap();
    match s.watch("c/", base + 3) {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (base + 3, base + 4))
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = s.watch("c/", base + 4).unwrap();
    let revs: Vec<_> = recv_n(&mut w, 6)
        .iter()
        .map(|e| e.kv.mod_revision - base)
        .collect();
    assert_eq!(revs, [5, 6, 7, 8, 9, 10]);
    assert_drained(&mut w);
    // Data is untouched, and compacting backwards changes nothing.
    assert_eq!(s.range("c/", None, 0).unwrap().len(), 10);
    s.compact(base + 2).unwrap();
    assert!(s.watch("c/", base + 3).is_err());
    // Beyond the current revision clamps to it (etcd keeps the current revision itself, so
    // a watch from just before it may still work there): older history is gone, and live
    // events still come.
    s.compact(base + 1_000).unwrap();
    assert!(matches!(
        s.watch("c/", base + 8),
        Err(StoreError::Compacted { .. })
    ));
    let mut live = s.watch("c/", base + 10).unwrap();
    assert_drained(&mut live);
    let r = s.put("c/11", b"x").unwrap();
    assert_eq!(recv_n(&mut live, 1)[0].kv.mod_revision, r);
}

/// Writers commit on several threads while watchers register at arbitrary moments from the
/// revision they last read. Each watcher must then see exactly the commits under its prefix
/// after its start revision: in order, none missing, none twice.
fn check_watch_under_concurrent_writers<S: Store>(s: Arc<S>) {
    const WRITERS: usize = 3;
    const PER_WRITER: usize = 60;
    let base = s.current_revision().unwrap();
    let mut early = s.watch("cw/", base).unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut revs = Vec::new();
                for i in 0..PER_WRITER {
                    revs.push(
                        s.put(&format!("cw/{w}/{i}"), format!("{w}.{i}").as_bytes())
                            .unwrap(),
                    );
                    // Unwatched noise interleaved with the watched keys.
                    if i % 4 == 0 {
                        s.put(&format!("noise/{w}"), b"n").unwrap();
                    }
                }
                revs
            })
        })
        .collect();
    let late: Vec<(Revision, Watcher)> = (0..8)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(3));
            let from = s.current_revision().unwrap();
            (from, s.watch("cw/", from).unwrap())
        })
        .collect();
    let watched: BTreeSet<Revision> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        watched.len(),
        WRITERS * PER_WRITER,
        "each put has its own revision"
    );

    let check = |w: &mut Watcher, from: Revision| {
        let expected: Vec<Revision> = watched.range(from + 1..).copied().collect();
        let got = recv_n(w, expected.len());
        let revs: Vec<Revision> = got.iter().map(|e| e.kv.mod_revision).collect();
        assert_eq!(revs, expected, "watch from {from}");
        for e in &got {
            let (writer, i) = e.kv.key["cw/".len()..].split_once('/').unwrap();
            assert_eq!(e.kv.value, format!("{writer}.{i}").as_bytes());
        }
        assert_drained(w);
    };
    check(&mut early, base);
    for (from, mut w) in late {
        check(&mut w, from);
    }
}

/// `CreateRevision` holds across rewrites of a key and fails once it was deleted and
/// re-created, or never existed.
fn check_compare_on_create_revision(s: &dyn Store) {
    let created = s.put("k", b"1").unwrap();
    s.put("k", b"2").unwrap();
    let same = Compare::CreateRevision("k".into(), created);
    assert!(
        s.txn(std::slice::from_ref(&same), &[Op::put("k", b"3".to_vec())])
            .unwrap()
            .is_committed()
    );
    assert_eq!(
        s.txn(
            &[Compare::CreateRevision("absent".into(), created)],
            &[Op::put("x", b"".to_vec())]
        )
        .unwrap(),
        TxnOutcome::Conflict
    );
    assert!(
        s.txn(
            &[Compare::CreateRevision("absent".into(), 0)],
            &[Op::put("y", b"".to_vec())]
        )
        .unwrap()
        .is_committed()
    );
    s.delete("k").unwrap();
    s.put("k", b"again").unwrap();
    assert_eq!(
        s.txn(&[same], &[Op::put("k", b"4".to_vec())]).unwrap(),
        TxnOutcome::Conflict
    );
}

/// 16 threads increment 8 counters, two threads per counter, by reading a counter and writing
/// it back on a `ModRevision` compare, retrying on conflict. Every increment must land exactly
/// once at its own revision, and watchers, one from the start and one joining midway, must see
/// each of them once, in revision order.
fn check_concurrent_increments<S: Store>(s: &Arc<S>) {
    const THREADS: usize = 16;
    const COUNTERS: usize = 8;
    const PER_THREAD: u64 = 100;
    const TOTAL: usize = THREADS * PER_THREAD as usize;
    let base = s.current_revision().unwrap();
    let mut early = s.watch("ctr/", base).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let key = format!("ctr/{}", t % COUNTERS);
                let mut committed = Vec::new();
                while committed.len() < PER_THREAD as usize {
                    let (value, rev) = s
                        .get(&key)
                        .unwrap()
                        .map_or((0, 0), |kv| (parse_u64(&kv.value), kv.mod_revision));
                    let next = (value + 1).to_string();
                    let outcome = s
                        .txn(
                            &[Compare::ModRevision(key.clone(), rev)],
                            &[Op::put(key.clone(), next.clone())],
                        )
                        .unwrap();
                    if let TxnOutcome::Committed(rev) = outcome {
                        committed.push((rev, key.clone(), next.into_bytes()));
                    }
                }
                committed
            })
        })
        .collect();
    // Joins while the writers run: from whatever revision it reads then.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.current_revision().unwrap() < base + (TOTAL / 4) as Revision {
        assert!(Instant::now() < deadline, "writers stalled");
        std::thread::yield_now();
    }
    let late_from = s.current_revision().unwrap();
    let mut late = s.watch("ctr/", late_from).unwrap();

    let committed: BTreeMap<Revision, (String, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .map(|(rev, key, value)| (rev, (key, value)))
        .collect();
    assert_eq!(committed.len(), TOTAL, "every commit has its own revision");
    for c in 0..COUNTERS {
        let key = format!("ctr/{c}");
        let per_counter = (TOTAL / COUNTERS) as u64;
        let kv = s.get(&key).unwrap().unwrap();
        assert_eq!(parse_u64(&kv.value), per_counter, "{key}: no lost update");
        // Ordered by revision, a counter's history counts 1, 2, 3, ...
        let history: Vec<u64> = committed
            .values()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| parse_u64(v))
            .collect();
        assert_eq!(history, (1..=per_counter).collect::<Vec<_>>(), "{key}");
    }
    let check = |w: &mut Watcher, from: Revision| {
        let expected: Vec<_> = committed
            .range(from + 1..)
            .map(|(rev, (k, v))| (*rev, k.clone(), v.clone()))
            .collect();
        let got: Vec<_> = recv_n(w, expected.len())
            .into_iter()
            .map(|e| (e.kv.mod_revision, e.kv.key, e.kv.value))
            .collect();
        assert_eq!(got, expected, "watch from {from}");
        assert_drained(w);
    };
    check(&mut early, base);
    check(&mut late, late_from);
}

fn parse_u64(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw).unwrap().parse().unwrap()
}

/// etcd with TLS on its client URLs and client certificates required: the store verifies
/// the members against the CA and shows its certificate; without one it is refused.
#[test]
fn etcd_over_tls_with_a_client_certificate() {
    let Some(cluster) = EtcdCluster::start_tls(3) else {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
        return;
    };
    let store = EtcdStore::open(cluster.config()).unwrap();
    check_cas_create_and_mod_revisions(&store);
    check_watch_replays_then_follows(&store);
    let mut anonymous = cluster.config();
    if let Some(tls) = anonymous.tls.as_mut() {
        tls.client = None;
    }
    assert!(EtcdStore::open(anonymous).is_err(), "no client certificate");
    let mut plain = cluster.config();
    plain.tls = None;
    assert!(
        EtcdStore::open(plain).is_err(),
        "plain HTTP to a TLS member"
    );
}
