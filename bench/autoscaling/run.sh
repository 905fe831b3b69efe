#!/usr/bin/env bash
# Auto scaling reaction time (issue 21): from the start of sustained load on a service behind
# an ALB to the new tasks RUNNING and receiving traffic, with target tracking on
# ALBRequestCountPerTarget. Two modes in one run: Berth's metrics at high resolution
# (BERTH_METRICS_PERIOD_SECONDS=2: 10-s alarm periods; target: under 45 s) and CloudWatch's
# default 1-minute metrics (AWS's alarm semantics: AlarmHigh needs 3 one-minute datapoints).
# See BENCHMARKS.md, "Auto scaling reaction".
#
# Usage: bench/autoscaling/run.sh
#   env HIGH_RES_ROUNDS rounds at high resolution (default 3)
#   env DEFAULT_ROUNDS  rounds at 1-minute metrics (default 1; each takes ~5 minutes)
#   env BERTH_BIN / REACTION_BIN release builds by default
# Needs Docker Engine, wrk and the aws CLI (target/venv, as scripts/test.sh installs them).
# Results: target/bench-autoscaling/*.jsonl and the table printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HIGH_RES_ROUNDS="${HIGH_RES_ROUNDS:-3}"
DEFAULT_ROUNDS="${DEFAULT_ROUNDS:-1}"
WORK="$ROOT/target/bench-autoscaling"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export BERTH_BIN="${BERTH_BIN:-$TARGET_DIR/release/berth}"
REACTION_BIN="${REACTION_BIN:-$TARGET_DIR/release/examples/autoscaling-reaction}"
export PATH="$ROOT/target/venv/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Two builds: `-p berth -p berth-e2e --example X` would build the example only.
[ -x "$BERTH_BIN" ] || cargo build --release -p berth
[ -x "$REACTION_BIN" ] || cargo build --release -p berth-e2e --example autoscaling-reaction
command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk)"; exit 1; }

mkdir -p "$WORK"
run() {
  local period="$1" rounds="$2" out="$WORK/period-$1.jsonl"
  [ "$rounds" -gt 0 ] || return 0
  log "metrics every ${period} s: $rounds round(s)"
  "$REACTION_BIN" --metrics-period "$period" --rounds "$rounds" | tee "$out"
}
run 2 "$HIGH_RES_ROUNDS"
run 60 "$DEFAULT_ROUNDS"

python3 - "$WORK" <<'PY'
import json, pathlib, statistics, sys
work = pathlib.Path(sys.argv[1])
print(f"{'metrics period':>15} {'rounds':>6} {'decided p50 s':>14} {'running p50 s':>14} {'serving p50 s':>14} {'serving max s':>14}")
for f in sorted(work.glob("period-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])):
    rows = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
    if not rows:
        continue
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"{rows[0]['metrics_period_seconds']:>13} s {len(rows):>6} {med('decided_s'):>14.1f} {med('running_s'):>14.1f} {med('serving_s'):>14.1f} {max(r['serving_s'] for r in rows):>14.1f}")
PY
