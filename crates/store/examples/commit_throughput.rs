//! Commit throughput of `RedbStore::txn` under concurrency: N threads each commit one small put
//! per transaction, as fast as they can, for a few seconds. With one fsync per commit and commits
//! serialised, throughput stays flat as threads are added; group commit lets it grow.
//!
//!     cargo run --release -p berth-store --example commit_throughput -- [SECS] [THREADS,..] [DIR]
//!
//! SECS defaults to 3, THREADS to 1,4,16,64, DIR to a temporary directory (point it at the disk
//! the server will use). Uses only the `Store` trait, so it also builds on older commits.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_store::{Op, RedbStore, Store};

const VALUE: &[u8] = &[7; 64];

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECS"));
    let threads: Vec<usize> = args.next().map_or(vec![1, 4, 16, 64], |s| {
        s.split(',').map(|n| n.parse().expect("THREADS")).collect()
    });
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    println!(
        "dir: {}, value: {} bytes, {secs} s per run",
        dir.display(),
        VALUE.len()
    );
    for n in threads {
        run(&dir, n, Duration::from_secs_f64(secs));
    }
}

fn run(dir: &Path, threads: usize, duration: Duration) {
    let path = dir.join(format!("throughput-{threads}.redb"));
    let _ = std::fs::remove_file(&path);
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let op = Op::put(format!("bench/{t:03}/{:09}", latencies.len()), VALUE);
                    let begin = Instant::now();
                    store.txn(&[], &[op]).unwrap();
                    latencies.push(begin.elapsed());
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "{threads:>3} threads {:>8.0} txns/s   p50 {:.2} ms  p99 {:.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
    drop(store);
    let _ = std::fs::remove_file(&path);
}
