#!/usr/bin/env python3
"""Prints the Berth vs moto table from WORK/berth.json and WORK/moto.json (bench/logs)."""

import json
import os
import sys

work = sys.argv[1]


def load(name):
    path = os.path.join(work, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        r = json.load(f)
    try:
        with open(os.path.join(work, f"{name}.rss_kib")) as f:
            r["rss_mib"] = int(f.read().strip()) / 1024
    except (OSError, ValueError):
        r["rss_mib"] = None
    return r


berth = load("berth") or {}
moto = load("moto") or {}


def get(r, *path):
    for p in path:
        if not isinstance(r, dict) or p not in r:
            return None
        r = r[p]
    return r


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def row(cells):
    print("| " + " | ".join(cells) + " |")


def ratio(b, m, higher_better):
    if not b or not m:
        return "-"
    r = b / m if higher_better else m / b
    return f"{r:,.1f}×"


def per_event_ratio(b, m):
    """moto's time per event scanned over Berth's, both measured on their own stream sizes;
    '-' when either answer was wrong."""
    if not b or not m or not b.get("median_s") or not m.get("median_s"):
        return "-"
    if b.get("answers_correct") != "yes" or m.get("answers_correct") != "yes":
        return "- (wrong answers)"
    r = (m["median_s"] / n_m) / (b["median_s"] / n_b)
    return f"{r:,.1f}× per event (sizes differ)"


n_b = berth.get("big_stream_events")
n_m = moto.get("big_stream_events")
print()
print(f"stream the queries read: Berth {fmt(n_b)} events, moto {fmt(n_m)} events "
      f"(moto's figures are for its smaller stream; not scaled)")
print()
row(["phase", "figure", "Berth", "moto_server", "ratio (>1 = Berth better)", "target"])
row(["---", "---", "--:", "--:", "--:", "---"])

for key, label in (("ingest_own_streams", "PutLogEvents, own stream per client"),
                   ("ingest_one_stream", "PutLogEvents, all clients on one stream")):
    b, m = berth.get(key, {}), moto.get(key, {})
    be, me = b.get("events_per_s"), m.get("events_per_s")
    tgt = "-"
    if key == "ingest_own_streams" and be is not None:
        tgt = f"≥ 200,000 {'✔' if be >= 200_000 else '✘'}"
    row([label, "events/s", fmt(be), fmt(me), ratio(be, me, True), tgt])
    row(["", "MB/s (message bytes)", fmt(b.get("mb_per_s")), fmt(m.get("mb_per_s")),
         ratio(b.get("mb_per_s"), m.get("mb_per_s"), True), ""])
    row(["", "events (calls ok / made) in s",
         f"{fmt(b.get('events'))} ({fmt(b.get('calls_ok'))}/{fmt(b.get('calls'))}) in {fmt(b.get('wall_s'))}" if b else "-",
         f"{fmt(m.get('events'))} ({fmt(m.get('calls_ok'))}/{fmt(m.get('calls'))}) in {fmt(m.get('wall_s'))}" if m else "-",
         "", ""])
    row(["", "PutLogEvents p50 / p99, ms",
         f"{fmt(b.get('p50_ms'))} / {fmt(b.get('p99_ms'))}" if b else "-",
         f"{fmt(m.get('p50_ms'))} / {fmt(m.get('p99_ms'))}" if m else "-",
         ratio(b.get("p50_ms"), m.get("p50_ms"), False), ""])
    row(["", "server / client CPU s",
         f"{fmt(b.get('server_cpu_s'))} / {fmt(b.get('client_cpu_s'))}" if b else "-",
         f"{fmt(m.get('server_cpu_s'))} / {fmt(m.get('client_cpu_s'))}" if m else "-", "", ""])
    row(["", "server CPU s after the phase until idle (Berth: sealing segments)",
         f"{fmt(b.get('server_cpu_after_s'))} (in {fmt(b.get('idle_wait_after_s'), 0)} s)" if b else "-",
         f"{fmt(m.get('server_cpu_after_s'))} (in {fmt(m.get('idle_wait_after_s'), 0)} s)" if m else "-", "", ""])

walk = berth.get("walk")
if walk:
    row(["GetLogEvents, whole stream by forward tokens", "events/s (s)",
         f"{fmt(walk.get('events_per_s'))} ({fmt(walk.get('wall_s'))} s)", "not run", "-", ""])

for key, label in (("limit_100_random", "GetLogEvents limit 100, random startTime"),
                   ("limit_10000_random", "GetLogEvents limit 10,000, random startTime"),
                   ("start_from_head", "GetLogEvents startFromHead"),
                   ("default_newest", "GetLogEvents default (newest)")):
    b = get(berth, "get_log_events", key) or {}
    m = get(moto, "get_log_events", key) or {}
    row([label, "p50 / p99 ms",
         f"{fmt(b.get('p50_ms'), 2)} / {fmt(b.get('p99_ms'), 2)}" if b else "-",
         f"{fmt(m.get('p50_ms'), 2)} / {fmt(m.get('p99_ms'), 2)}" if m else "-",
         ratio(b.get("p50_ms"), m.get("p50_ms"), False), ""])
    row(["", "events per call; answers correct",
         f"{fmt(b.get('events_per_call'), 0)}; {b.get('answers_correct', '-')}" if b else "-",
         f"{fmt(m.get('events_per_call'), 0)}; {m.get('answers_correct', '-')}" if m else "-", "", ""])

for key, label in (("term", "FilterLogEvents term"),
                   ("json_1pct", "FilterLogEvents JSON 1 %, first page"),
                   ("json_rare", "FilterLogEvents JSON, ~10 in 10M (full scan)"),
                   ("nothing", "FilterLogEvents, matches nothing")):
    b = get(berth, "filter_log_events", key) or {}
    m = get(moto, "filter_log_events", key) or {}
    pat = b.get("pattern") or m.get("pattern") or ""
    tgt = ""
    # The target (filter over 10M events < 1 s) is about scans of the whole stream; the
    # 1 % pattern's first page stops after 10,000 matches.
    if key != "json_1pct" and b.get("median_s") is not None and n_b and n_b >= 10_000_000:
        tgt = f"< 1 s {'✔' if b['median_s'] < 1 else '✘'}"
    row([f"{label} `{pat}`", "median s (min–max)",
         f"{fmt(b.get('median_s'), 3)} ({fmt(b.get('min_s'), 3)}–{fmt(b.get('max_s'), 3)})" if b else "-",
         f"{fmt(m.get('median_s'), 3)} ({fmt(m.get('min_s'), 3)}–{fmt(m.get('max_s'), 3)})" if m else "-",
         per_event_ratio(b, m), tgt])
    row(["", "returned / matching; correct",
         f"{fmt(b.get('returned_events'))} / {fmt(b.get('matching_events'))}; {b.get('answers_correct', '-')}" if b else "-",
         f"{fmt(m.get('returned_events'))} / {fmt(m.get('matching_events'))}; {m.get('answers_correct', '-')}" if m else "-",
         "", ""])

b = berth.get("filter_all_pages_json_1pct") or {}
m = moto.get("filter_all_pages_json_1pct") or {}
row(["FilterLogEvents JSON 1 %, every page by nextToken", "s; events / expected; correct",
     f"{fmt(b.get('wall_s'), 2)}; {fmt(b.get('events'))} / {fmt(b.get('expected'))}; {b.get('answers_correct')}" if b else "-",
     f"{fmt(m.get('wall_s'), 2)}; {fmt(m.get('events'))} / {fmt(m.get('expected'))}; {m.get('answers_correct')}" if m else "-",
     "", ""])
row(["server", "peak RSS MiB", fmt(berth.get("rss_mib")), fmt(moto.get("rss_mib")), "", ""])
try:
    with open(os.path.join(work, "berth.disk_bytes")) as f:
        row(["server", "Berth data dir at the end, MB", fmt(int(f.read().strip()) / 1e6), "(memory)", "", ""])
except (OSError, ValueError):
    pass

for name, r in (("Berth", berth), ("moto", moto)):
    failed = [c for c in r.get("checks", []) if not c["ok"]]
    if not r:
        continue
    print()
    print(f"{name}: {len(r.get('checks', [])) - len(failed)} of {len(r.get('checks', []))} checks passed")
    for c in failed:
        print(f"  FAILED {c['check']}: {c['detail'][:400]}")
