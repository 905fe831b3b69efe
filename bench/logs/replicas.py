#!/usr/bin/env python3
"""CloudWatch Logs ingest on replicas (BENCHMARKS.md, "CloudWatch Logs ingest on replicas"):
bench/logs/load.rs (logs-load) against `embedded` (one `berth server`, embedded store: a
local fdatasync per batch) and `etcd3` (three `berth server --store etcd://…` replicas on a
three-member etcd: one etcd transaction per batch, a journal key), each started afresh per
run (a new data dir; a new etcd cluster), in an order that alternates each round, in one run.

The clients all go to the first replica (logs-load takes one endpoint); the other two
serve nothing but may hold the lead and seal the journal. logs-load's ingest phases are
the figures (own stream per client; all clients on one stream); its query phases run
small (a BIG_EVENTS stream, 1 rep) and are reported only as checks passing.

Usage: bench/logs/replicas.py WORKDIR   (run by bench/logs/replicas.sh)
  env ROUNDS (default 2), CLIENTS (4), INGEST_SECONDS (20), INGEST_EVENTS (4000000),
      BIG_EVENTS (400000), BIG_SECONDS (120), CONFIGS (embedded,etcd3)
"""
import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "replicas_bench", os.path.join(ROOT, "bench/replicas/replicas.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)
log = rb.log


def env_int(name, default):
    return int(os.environ.get(name, default))


def run_load(work, name, url, pid, out):
    args = [os.path.join(work, "logs-load"), "--name", name, "--endpoint", url,
            "--access-key", rb.ACCESS_KEY, "--secret-key", rb.SECRET_KEY,
            "--clients", str(env_int("CLIENTS", 4)),
            "--ingest-seconds", str(env_int("INGEST_SECONDS", 20)),
            "--ingest-events", str(env_int("INGEST_EVENTS", 4_000_000)),
            "--big-events", str(env_int("BIG_EVENTS", 400_000)),
            "--big-seconds", str(env_int("BIG_SECONDS", 120)),
            "--reps", "1", "--random-reps", "1", "--server-pid", str(pid), "--out", out]
    rc = subprocess.run(args).returncode
    if rc not in (0, 3):
        raise SystemExit(f"{name}: logs-load failed (exit {rc})")
    with open(out) as f:
        return json.load(f), rc


def one_run(work, berth, config, run):
    """One configuration started afresh (a new data dir; a new etcd cluster)."""
    tmp = tempfile.mkdtemp(prefix=f"{config}-", dir=work)
    env = rb.berth_env()
    etcd = None
    try:
        if config == "embedded":
            servers = [rb.Replica("embedded", berth, "embedded", tmp, env).start()]
        else:
            etcd = rb.Etcd(3, tmp, shutil.which("etcd")).start()
            servers = [rb.Replica(f"r{i}", berth, etcd.url(), tmp, env).start() for i in range(3)]
        out = os.path.join(work, f"{config}-{run}.json")
        result, rc = run_load(work, config, servers[0].url, servers[0].proc.pid, out)
        for s in servers:
            rb.stop(s.proc)
        return result, rc
    finally:
        if etcd:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    work = sys.argv[1]
    # Every process started (etcd members, servers) is stopped by its pid on exit.
    atexit.register(rb.stop_all)
    berth = os.path.join(work, "berth")
    configs = os.environ.get("CONFIGS", "embedded,etcd3").split(",")
    results = {c: [] for c in configs}
    for rnd in range(env_int("ROUNDS", 2)):
        order = configs if rnd % 2 == 0 else list(reversed(configs))
        for config in order:
            load = rb.loadavg()
            log(f"round {rnd + 1}: {config} (load average {load})")
            result, rc = one_run(work, berth, config, f"{rnd}")
            results[config].append({"result": result, "checks_ok": rc == 0, "load_at_start": load})
    summary = {}
    titles = ["ingest_own_streams", "ingest_one_stream"]
    for config, runs in results.items():
        summary[config] = []
        for r in runs:
            row = {"checks_ok": r["checks_ok"], "checks_failed": r["result"].get("checks_failed"),
                   "load_at_start": r["load_at_start"]}
            for t in titles:
                p = r["result"].get(t) or {}
                row[t] = {k: p.get(k) for k in ("events_per_s", "mb_per_s", "p50_ms", "p99_ms",
                                                "calls_ok", "calls", "server_cpu_s")}
            summary[config].append(row)
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    if "embedded" in summary and "etcd3" in summary:
        for t in titles:
            best = {c: max((r[t]["events_per_s"] or 0) for r in summary[c]) for c in summary}
            if best["embedded"]:
                print(f"{t}: embedded {best['embedded']:,.0f} ev/s, etcd3 {best['etcd3']:,.0f} ev/s,"
                      f" etcd3/embedded = {best['etcd3'] / best['embedded']:.3f}")


if __name__ == "__main__":
    main()
