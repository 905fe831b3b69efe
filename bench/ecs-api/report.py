#!/usr/bin/env python3
"""Prints the Berth vs moto table from WORK/berth.json and WORK/moto.json."""

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


berth = load("berth")
moto = load("moto")


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def row(cells):
    print("| " + " | ".join(cells) + " |")


first = berth or moto
if first.get("client") == "rust":
    client_desc = "threads of the Rust load generator, one keep-alive connection each"
else:
    client_desc = f"boto3, threads in {first.get('client_processes', 1)} client process(es)"
print()
print(f"clients: {first['clients']} ({client_desc}), instances: {first['instances']}, "
      f"cap per phase: {first['calls_cap']} calls or {first['seconds_cap']} s")
print()
row(["call", "figure", "Berth", "moto_server", "Berth/moto", "target"])
row(["---", "---", "--:", "--:", "--:", "---"])
ok_all = True
for key, label in (("run_task", "RunTask (count 1)"), ("describe_tasks", "DescribeTasks (10 ARNs)")):
    b = berth[key] if berth else {}
    m = moto[key] if moto else {}
    bt, mt = b.get("throughput"), m.get("throughput")
    ratio = bt / mt if bt and mt else None
    tgt = "-"
    if ratio is not None:
        tgt = f"≥ 20× {'✔' if ratio >= 20 else '✘'}"
        ok_all &= ratio >= 20
    row([label, "throughput, calls/s", fmt(bt), fmt(mt), f"{ratio:.1f}×" if ratio else "-", tgt])
    row(["", "calls done (ok / made) in s",
         f"{fmt(b.get('ok'))} / {fmt(b.get('calls'))} in {fmt(b.get('wall_s'))}" if b else "-",
         f"{fmt(m.get('ok'))} / {fmt(m.get('calls'))} in {fmt(m.get('wall_s'))}" if m else "-",
         "", ""])
    row(["", "p50 latency, ms", fmt(b.get("p50_ms")), fmt(m.get("p50_ms")),
         f"{m['p50_ms'] / b['p50_ms']:.1f}× lower" if b and m else "-", ""])
    p99_ok = b.get("p99_ms") is not None and b["p99_ms"] < 20
    ok_all &= p99_ok
    row(["", "p99 latency, ms", fmt(b.get("p99_ms")), fmt(m.get("p99_ms")),
         f"{m['p99_ms'] / b['p99_ms']:.1f}× lower" if b and m else "-",
         f"Berth < 20 ms {'✔' if p99_ok else '✘'}" if b else "-"])
    row(["", "server CPU per call, ms", fmt(b.get("server_cpu_ms_per_call"), 2),
         fmt(m.get("server_cpu_ms_per_call"), 2), "", ""])
    row(["", "client CPU, s (of wall)",
         f"{fmt(b.get('client_cpu_s'))} (of {fmt(b.get('wall_s'))})" if b else "-",
         f"{fmt(m.get('client_cpu_s'))} (of {fmt(m.get('wall_s'))})" if m else "-", "", ""])
    sb = berth["solo"][label.split(" ")[0]] if berth else {}
    sm = moto["solo"][label.split(" ")[0]] if moto else {}
    row(["", "1 client alone: calls/s, p50 / p99 ms",
         f"{fmt(sb.get('throughput'))}, {fmt(sb.get('p50_ms'))} / {fmt(sb.get('p99_ms'))}" if sb else "-",
         f"{fmt(sm.get('throughput'))}, {fmt(sm.get('p50_ms'))} / {fmt(sm.get('p99_ms'))}" if sm else "-",
         "", ""])
print()
for name, r in (("Berth", berth), ("moto", moto)):
    if not r:
        continue
    rt, dt = r["run_task"], r["describe_tasks"]
    print(f"{name}: RunTask started {rt['tasks_started']} tasks "
          f"(answers without exactly one task: {rt['responses_without_exactly_one_task']}, "
          f"failures: {rt['failures_in_responses']} {rt.get('failure_reasons') or ''}, errors: {rt['errors']}); "
          f"ListTasks lists {rt.get('list_tasks_count', '-')} "
          f"(all started listed: {rt.get('all_started_tasks_listed', '-')}"
          + (f", exactly the {r['tasks_started_total']} tasks started incl. the 1-client phase: "
             f"{rt['listed_exactly_started']}" if 'listed_exactly_started' in rt else "")
          + "); "
          f"DescribeTasks returned {dt['tasks_returned']} tasks in {dt['ok']} answers "
          f"(failures: {dt['failures_in_responses']}, errors: {dt['errors']}); "
          f"server peak RSS {fmt(r.get('rss_mib'))} MiB")
    c = r.get("check")
    if c:
        print(f"  check after the run: ListTasks lists {c['listed']} of the {c['started']} tasks "
              f"started ({c['started_not_listed']} missing, {c['listed_not_started']} extra); "
              f"DescribeTasks of a sample returned {c['sample_returned']} of "
              f"{c['sample_described']} (failures {c['sample_failures']}): "
              f"{'ok' if c['ok'] else 'FAILED'}")
    for e in rt["first_errors"] + dt["first_errors"]:
        print(f"  error: {e}")
if berth:
    rt = berth["run_task"]
    if "listed_exactly_started" in rt:  # the Rust client: checked after every phase
        listed_ok = rt["listed_exactly_started"] and berth.get("check", {}).get("ok", False)
    else:
        listed_ok = (rt.get("all_started_tasks_listed", False)
                     and rt.get("list_tasks_count") == rt["tasks_started"])
    real = (rt["errors"] == 0 and rt["failures_in_responses"] == 0
            and rt["responses_without_exactly_one_task"] == 0 and listed_ok)
    print(f"Berth results real (every RunTask started one task, all listed): {'yes' if real else 'NO'}")
if berth and moto:
    print(f"targets (≥ 20× moto throughput, p99 < 20 ms) met: {'yes' if ok_all else 'no'}")
