//! Commit latency and throughput of the durable store, the evidence behind
//! docs/store-choice.md. Every `RedbStore::txn` is fsynced before it returns, so on a real disk
//! this measures the disk's flush latency more than redb.
//!
//!     cargo run --release -p berth-store --example commit_bench -- [DIR]
//!
//! DIR defaults to a temporary directory; point it at the disk the server will use.
//! `examples/sqlite_commit_bench.py` runs the same workloads against SQLite for reference.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_store::{Op, RedbStore, Store};
use redb::{Database, Durability, TableDefinition};

const VALUE: &[u8] = &[7; 64];

fn main() {
    let tmp;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    println!("dir: {}, value: {} bytes", dir.display(), VALUE.len());
    bench_store(&dir, "RedbStore::txn, 1 key/txn", 1, 1_000);
    bench_store(&dir, "RedbStore::txn, 100 keys/txn", 100, 200);
    bench_raw(&dir, Durability::Immediate, 1_000);
    bench_raw(&dir, Durability::None, 1_000);
}

fn bench_store(dir: &Path, name: &str, keys_per_txn: usize, txns: usize) {
    let path = dir.join(format!("bench-store-{keys_per_txn}.redb"));
    let _ = std::fs::remove_file(&path);
    let store = RedbStore::open(&path).unwrap();
    let mut n = 0u64;
    let latencies = time_commits(txns, || {
        let ops: Vec<Op> = (0..keys_per_txn)
            .map(|_| {
                n += 1;
                Op::put(format!("bench/{n:012}"), VALUE)
            })
            .collect();
        store.txn(&[], &ops).unwrap();
    });
    report(name, keys_per_txn, &latencies);
    drop(store);
    let _ = std::fs::remove_file(&path);
}

/// redb alone, one key per transaction: the floor under `RedbStore` and the cost of fsync.
fn bench_raw(dir: &Path, durability: Durability, txns: usize) {
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("bench");
    let path = dir.join("bench-raw.redb");
    let _ = std::fs::remove_file(&path);
    let db = Database::create(&path).unwrap();
    let mut n = 0u64;
    let latencies = time_commits(txns, || {
        let mut wtx = db.begin_write().unwrap();
        wtx.set_durability(durability).unwrap();
        {
            let mut t = wtx.open_table(TABLE).unwrap();
            n += 1;
            t.insert(n, VALUE).unwrap();
        }
        wtx.commit().unwrap();
    });
    report(
        &format!("raw redb {durability:?}, 1 key/txn"),
        1,
        &latencies,
    );
    drop(db);
    let _ = std::fs::remove_file(&path);
}

fn time_commits(txns: usize, mut commit: impl FnMut()) -> Vec<Duration> {
    for _ in 0..txns / 10 {
        commit(); // warm up: file growth, page cache
    }
    (0..txns)
        .map(|_| {
            let start = Instant::now();
            commit();
            start.elapsed()
        })
        .collect()
}

fn report(name: &str, keys_per_txn: usize, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let total: Duration = sorted.iter().sum();
    let per_sec = sorted.len() as f64 / total.as_secs_f64();
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<36} {per_sec:>9.0} commits/s {:>10.0} keys/s   p50 {:.3} ms  p99 {:.3} ms",
        per_sec * keys_per_txn as f64,
        pct(0.5),
        pct(0.99),
    );
}
