#!/usr/bin/env python3
"""SQLite reference for commit_bench.rs: the same workloads (64-byte values, 1 and 100 keys per
transaction, one fsync'd commit each) through Python's built-in sqlite3, so the comparison needs
no rusqlite dependency. Run: python3 crates/store/examples/sqlite_commit_bench.py [DIR]"""

import os, sqlite3, sys, tempfile, time

VALUE = bytes([7]) * 64


def bench(directory, journal, keys_per_txn, txns):
    path = os.path.join(directory, f"bench-{journal}-{keys_per_txn}.sqlite")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA journal_mode={journal}")
    db.execute("PRAGMA synchronous=FULL")  # fsync at every commit, like Durability::Immediate
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_rev INT, mod_rev INT)")
    n = 0
    latencies = []
    for t in range(txns + txns // 10):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for _ in range(keys_per_txn):
            n += 1
            db.execute("INSERT INTO kv VALUES (?, ?, ?, ?)", (f"bench/{n:012}", VALUE, t, t))
        db.execute("COMMIT")
        if t >= txns // 10:  # after warm-up, as commit_bench.rs does
            latencies.append(time.perf_counter() - start)
    db.close()
    latencies.sort()
    per_sec = len(latencies) / sum(latencies)
    pct = lambda p: latencies[int((len(latencies) - 1) * p)] * 1e3
    name = f"sqlite {journal} synchronous=FULL, {keys_per_txn} key(s)/txn"
    print(f"{name:<44} {per_sec:>9.0f} commits/s {per_sec * keys_per_txn:>10.0f} keys/s"
          f"   p50 {pct(0.5):.3f} ms  p99 {pct(0.99):.3f} ms")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        directory = sys.argv[1] if len(sys.argv) > 1 else tmp
        print(f"dir: {directory}, sqlite {sqlite3.sqlite_version}")
        for journal in ("WAL", "DELETE"):
            bench(directory, journal, 1, 1000)
            bench(directory, journal, 100, 200)
