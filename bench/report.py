#!/usr/bin/env python3
"""Summarise bench/registry.sh results (JSON lines) into a Markdown table.

Median over rounds per (server, scenario). Ratio > 1 always means Berth is
better: Berth/reference for throughputs, reference/Berth for times and memory.
"""

import json
import statistics
import sys
from collections import defaultdict

# (scenario, field, label, unit, higher_is_better, target ratio or None, scale)
ROWS = [
    ("push_1g", "mb_s", "push 1 GiB image, monolithic (POST + PUT)", "MB/s", True, 2.0, 1),
    ("push_1g", "seconds", "  time", "s", False, None, 1),
    ("push_1g_chunked", "mb_s", "push 1 GiB image, chunked (64 MiB PATCH)", "MB/s", True, 2.0, 1),
    ("pull_1g", "mb_s", "pull 1 GiB image", "MB/s", True, 1.0, 1),
    ("pull_1g", "seconds", "  time", "s", False, None, 1),
    ("pull_1g_again", "mb_s", "pull 1 GiB image again", "MB/s", True, 1.0, 1),
    ("pull_1g_cold", "mb_s", "pull 1 GiB image, page cache dropped first", "MB/s", True, 1.0, 1),
    ("push_64m", "mb_s", "push 64 MiB image (setup for the next row)", "MB/s", True, 2.0, 1),
    ("pull_64m_x50", "mb_s", "50 concurrent pulls of a 64 MiB image, aggregate", "MB/s", True, 1.0, 1),
    ("pull_64m_x50", "seconds", "  wall time", "s", False, 1.0, 1),
    ("manifests_seq", "per_s", "1,000 small manifests, sequential", "manifests/s", True, 1.0, 1),
    ("manifests_c8", "per_s", "1,000 small manifests, 8 concurrent clients", "manifests/s", True, 1.0, 1),
    ("rss_push_1g", "kib", "server peak RSS (VmHWM) after the 1 GiB monolithic push", "MiB", False, None, 1 / 1024),
    ("rss_push_1g_chunked", "kib", "server peak RSS after the chunked push too", "MiB", False, None, 1 / 1024),
    ("rss_pulls", "kib", "server peak RSS after the pulls too", "MiB", False, None, 1 / 1024),
    ("rss_end", "kib", "server peak RSS over the whole round", "MiB", False, None, 1 / 1024),
]


def main():
    vals = defaultdict(list)
    rounds = defaultdict(set)
    failed = defaultdict(list)
    with open(sys.argv[1]) as f:
        for line in f:
            d = json.loads(line)
            if d.get("failed"):
                failed[(d["server"], d["scenario"])].append(d.get("error", ""))
                rounds[d["server"]].add(d["round"])
                continue
            for k, v in d.items():
                if isinstance(v, (int, float)) and k != "round":
                    vals[(d["server"], d["scenario"], k)].append(v)
            rounds[d["server"]].add(d["round"])

    def med(server, scen, field, scale):
        v = vals.get((server, scen, field))
        return statistics.median(v) * scale if v else None

    def fmt(x):
        if x is None:
            return "n/a"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"

    print("| scenario | unit | Berth | reference | ratio (>1 = Berth better) | target | client ceiling (sink) |")
    print("|---|---|--:|--:|--:|---|--:|")
    for scen, field, label, unit, higher, target, scale in ROWS:
        b, r = med("berth", scen, field, scale), med("reference", scen, field, scale)
        if b is None and r is None:
            continue
        ratio = None
        if b and r:
            ratio = b / r if higher else r / b
        tgt = ""
        if scen == "rss_push_1g":
            tgt = "Berth < 100 MiB" + ("" if b is None else (" ✔" if b < 100 else " ✘"))
        elif target is not None:
            tgt = f"≥ {target:g}×" + ("" if ratio is None else (" ✔" if ratio >= target else " ✘"))
        rs = "n/a" if ratio is None else f"{ratio:.2f}×"
        sink = "" if scen.startswith("rss") else fmt(med("sink", scen, field, scale))

        def cell(server, x):
            nf = len(failed.get((server, scen), []))
            if not nf:
                return fmt(x)
            n = nf + len(vals.get((server, scen, field), []))
            return f"{fmt(x)} (failed {nf}/{n})" if x is not None else f"failed {nf}/{n}"

        print(f"| {label} | {unit} | {cell('berth', b)} | {cell('reference', r)} | {rs} | {tgt} | {sink} |")
    print("\nServer CPU time (user + system, all threads) per scenario, median; the client and the")
    print("server share the machine's cores, so CPU the server spends is CPU the client cannot use.\n")
    print("| scenario | Berth CPU s | reference CPU s | ratio |")
    print("|---|--:|--:|--:|")
    seen = []
    for scen, _, label, *_ in ROWS:
        if scen in seen or scen.startswith("rss"):
            continue
        seen.append(scen)
        b, r = med("berth", scen, "server_cpu_s", 1), med("reference", scen, "server_cpu_s", 1)
        if b is None and r is None:
            continue
        ratio = f"{r / b:.2f}×" if b and r else "n/a"
        print(f"| {label.strip()} | {fmt(b)} | {fmt(r)} | {ratio} |")
    for (server, scen), errs in sorted(failed.items()):
        print(f"\n{server} {scen} failed {len(errs)}×; last error: {errs[-1].strip().splitlines()[-1][:300]}")
    for server in ("berth", "reference"):
        if server in rounds and server != "sink":
            print(f"\n{server}: {len(rounds[server])} round(s)", end="")
    print()


if __name__ == "__main__":
    main()
