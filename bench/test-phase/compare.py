#!/usr/bin/env python3
"""Compares two `cargo nextest list --workspace --message-format oneline` outputs (BENCHMARKS.md,
"Test phase"): a test counts as kept when a test of the same function name exists after
(contract tests moved from the e2e binary to berth-testkit keep their names), and prints
the tests that are new. With nextest logs (`scripts/test.sh` output), sums each binary's
test times. Usage: compare.py BEFORE.txt AFTER.txt [BEFORE.log AFTER.log]"""
import collections
import re
import sys


def tests(path):
    return [line.split(" ", 1) for line in open(path).read().splitlines() if line.strip()]


def name(test):
    return test.split("::")[-1]


def binary_times(path):
    total, count = collections.defaultdict(float), collections.Counter()
    for m in re.finditer(r"PASS \[\s*([\d.]+)s\] \(\s*\d+/\d+\) (\S+) (\S+)", open(path).read()):
        total[m.group(2)] += float(m.group(1))
        count[m.group(2)] += 1
    return total, count


before, after = tests(sys.argv[1]), tests(sys.argv[2])
after_names = collections.Counter(name(t) for _, t in after)
before_names = collections.Counter(name(t) for _, t in before)
lost = [(b, t) for b, t in before if after_names[name(t)] == 0]
new = [(b, t) for b, t in after if before_names[name(t)] == 0]
print(f"before {len(before)}, after {len(after)}; lost {len(lost)}, new {len(new)}")
for b, t in lost:
    print(f"  lost: {b} {t}")
for b, t in new:
    print(f"  new:  {b} {t}")
for log in sys.argv[3:5]:
    total, count = binary_times(log)
    print(f"{log}: sum of test times {sum(total.values()):.0f} s")
    for binary, seconds in sorted(total.items(), key=lambda x: -x[1])[:10]:
        print(f"  {binary:<45} {seconds:7.1f} s ({count[binary]} tests)")
