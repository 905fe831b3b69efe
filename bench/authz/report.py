#!/usr/bin/env python3
"""The table of bench/authz/run.sh: throughput of RunTask and DescribeTasks signed by root
(enforcement off) and by a policy-governed IAM user (enforcement on), per round and over all
rounds, with the ratio on/off. Usage: report.py WORK ROUNDS"""

import json
import os
import statistics
import sys

work, rounds = sys.argv[1], int(sys.argv[2])


def load(name):
    with open(os.path.join(work, f"{name}.json")) as f:
        return json.load(f)


runs = {(who, r): load(f"{who}-{r}") for who in ("root", "user") for r in range(1, rounds + 1)}
first = runs[("root", 1)]
print()
print(f"clients: {first['clients']}, instances: {first['instances']}, "
      f"cap per phase: {first['calls_cap']} calls or {first['seconds_cap']} s, rounds: {rounds} "
      "(root, user alternating)")
print()


def row(cells):
    print("| " + " | ".join(cells) + " |")


PHASES = (
    ("RunTask", lambda r: r["run_task"]),
    ("DescribeTasks (10 ARNs)", lambda r: r["describe_tasks"]),
    ("RunTask, 1 client", lambda r: r["solo"]["RunTask"]),
    ("DescribeTasks, 1 client", lambda r: r["solo"]["DescribeTasks"]),
)
row(["call", "round", "root ops/s", "user ops/s", "user/root", "root p50 ms", "user p50 ms",
     "errors (root/user)"])
row(["---", "--:", "--:", "--:", "--:", "--:", "--:", "--:"])
ok = True
for label, phase in PHASES:
    ratios = []
    for r in range(1, rounds + 1):
        a, b = phase(runs[("root", r)]), phase(runs[("user", r)])
        ratio = b["throughput"] / a["throughput"] if a["throughput"] else 0.0
        ratios.append(ratio)
        errors = f"{a['errors']}/{b['errors']}"
        if a["errors"] or b["errors"]:
            ok = False
        row([label, str(r), f"{a['throughput']:,.0f}", f"{b['throughput']:,.0f}",
             f"{ratio:.2f}", f"{a['p50_ms']:.2f}", f"{b['p50_ms']:.2f}", errors])
    total_a = sum(phase(runs[("root", r)])["ok"] for r in range(1, rounds + 1))
    total_b = sum(phase(runs[("user", r)])["ok"] for r in range(1, rounds + 1))
    wall_a = sum(phase(runs[("root", r)])["wall_s"] for r in range(1, rounds + 1))
    wall_b = sum(phase(runs[("user", r)])["wall_s"] for r in range(1, rounds + 1))
    ta, tb = total_a / wall_a, total_b / wall_b
    row([f"**{label}**", "all", f"**{ta:,.0f}**", f"**{tb:,.0f}**", f"**{tb / ta:.2f}**",
         "", "", f"median of rounds {statistics.median(ratios):.2f}"])
for (who, r), run in sorted(runs.items()):
    for key, phase in (("run_task", run["run_task"]), ("solo RunTask", run["solo"]["RunTask"])):
        if phase.get("failures_in_responses"):
            ok = False
            print(f"{who}-{r} {key}: {phase['failures_in_responses']} RunTask answers with "
                  f"failures {phase.get('failure_reasons')} (capacity used up? more INSTANCES)")
print()
if not ok:
    print("ERRORS in some phase: see the JSON files' first_errors")
    sys.exit(1)
