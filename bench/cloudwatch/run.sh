#!/usr/bin/env bash
# CloudWatch metrics (issue 21): PutMetricData ingest, Berth vs moto_server, the same
# client against both in one run, as a ratio; and GetMetricData over a week of 1-minute
# data for 1,000 metrics (target: under 200 ms). See BENCHMARKS.md, "CloudWatch metrics".
#
# Usage: bench/cloudwatch/run.sh
#   env CLIENTS     ingest clients, one keep-alive connection each (default 4)
#   env PER_CALL    datums per PutMetricData in the ingest phase (default 100)
#   env SECONDS_CAP seconds of each ingest phase (default 10)
#   env ROUNDS      ingest rounds, Berth and moto alternating (default 3)
#   env METRICS     metrics filled for the query phase (default 1000)
#   env DAYS        days of 1-minute data filled (default 7)
#   env QUERY_ROUNDS GetMetricData rounds (default 10)
#   env SKIP_QUERY=1 ingest only
#   env BERTH_BIN / LOAD_BIN / PY as in bench/secrets/run.sh (release builds by default)
#
# The load generator is bench/cloudwatch/load.rs (AWS JSON 1.0 as botocore sends it, SigV4,
# every answer checked). Berth runs as `berth server` on its embedded store (every put
# durable before it is answered), moto as `moto_server` (in memory).
# Results: target/bench-cloudwatch/*.json and the tables printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CLIENTS="${CLIENTS:-4}"
PER_CALL="${PER_CALL:-100}"
SECONDS_CAP="${SECONDS_CAP:-10}"
ROUNDS="${ROUNDS:-3}"
METRICS="${METRICS:-1000}"
DAYS="${DAYS:-7}"
QUERY_ROUNDS="${QUERY_ROUNDS:-10}"
WORK="$ROOT/target/bench-cloudwatch"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BERTH_BIN="${BERTH_BIN:-$TARGET_DIR/release/berth}"
LOAD_BIN="${LOAD_BIN:-$TARGET_DIR/release/examples/cloudwatch-load}"
PY="${PY:-$ROOT/target/venv/bin/python}"
ACCESS_KEY="AKIDBERTHBENCH000001"
SECRET_KEY="benchSecretBenchSecretBenchSecret0123456"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

PIDS=()
TMPDIR_BERTH=""
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$TMPDIR_BERTH" ] && rm -rf "$TMPDIR_BERTH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"
rm -f "$WORK"/*.json
"$PY" -c 'import moto.server' 2>/dev/null || die "$PY has no moto[server] (set PY)"
if [ ! -x "$BERTH_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
  log "cargo build --release -p berth"
  cargo build --release -p berth >&2
fi
if [ ! -x "$LOAD_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
  log "cargo build --release -p berth-e2e --example cloudwatch-load"
  cargo build --release -p berth-e2e --example cloudwatch-load >&2
fi
cp "$BERTH_BIN" "$WORK/berth"
cp "$LOAD_BIN" "$WORK/cloudwatch-load"
{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "moto: $("$PY" -c 'import moto; print(moto.__version__)'), $("$PY" --version 2>&1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" >&2

wait_health() { # URL PID
  local i
  for i in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || die "server pid $2 exited"
    if "$PY" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('$1', timeout=2).status==200 else 1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  die "$1 never answered 200"
}

load() { # OUT MODE ENDPOINT PID [ARGS...]
  local out="$1" mode="$2" url="$3" pid="$4"
  shift 4
  "$WORK/cloudwatch-load" --mode "$mode" --endpoint "$url" --access-key "$ACCESS_KEY" \
    --secret-key "$SECRET_KEY" --server-pid "$pid" --out "$WORK/$out.json" "$@" >/dev/null \
    || die "$out: cloudwatch-load --mode $mode failed"
}

# ---------------------------------------------------------------- servers
TMPDIR_BERTH="$(mktemp -d /tmp/berth-bench-cloudwatch-XXXXXX)"
BERTH_ROOT_ACCESS_KEY_ID="$ACCESS_KEY" BERTH_ROOT_SECRET_ACCESS_KEY="$SECRET_KEY" \
  "$WORK/berth" server --data-dir "$TMPDIR_BERTH/data" --listen 127.0.0.1:0 \
  >"$WORK/berth.stdout" 2>"$WORK/berth.stderr" &
BERTH_PID=$!
PIDS+=("$BERTH_PID")
BERTH_URL=""
for _ in $(seq 1 300); do
  BERTH_URL="$(sed -n 's#^berth listening on \(http://[0-9.:]*\).*#\1#p' "$WORK/berth.stdout" | head -1)"
  [ -n "$BERTH_URL" ] && break
  kill -0 "$BERTH_PID" 2>/dev/null || die "berth exited: $(tail -5 "$WORK/berth.stderr")"
  sleep 0.1
done
[ -n "$BERTH_URL" ] || die "berth printed no listening line"
wait_health "$BERTH_URL/health" "$BERTH_PID"
MOTO_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$(dirname "$PY")/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
PIDS+=("$MOTO_PID")
wait_health "http://127.0.0.1:$MOTO_PORT/moto-api/" "$MOTO_PID"

# ---------------------------------------------------------------- ingest, alternating
for r in $(seq 1 "$ROUNDS"); do
  log "ingest round $r: Berth"
  load "ingest-berth-$r" ingest "$BERTH_URL" "$BERTH_PID" --clients "$CLIENTS" \
    --per-call "$PER_CALL" --seconds "$SECONDS_CAP"
  log "ingest round $r: moto_server"
  load "ingest-moto-$r" ingest "http://127.0.0.1:$MOTO_PORT" "$MOTO_PID" --clients "$CLIENTS" \
    --per-call "$PER_CALL" --seconds "$SECONDS_CAP"
done

# ---------------------------------------------------------------- a week, 1,000 metrics
if [ "${SKIP_QUERY:-0}" != 1 ]; then
  log "fill: $METRICS metrics x $DAYS days of 1-minute data (Berth)"
  load fill fill "$BERTH_URL" "$BERTH_PID" --metrics "$METRICS" --days "$DAYS" --clients "$CLIENTS"
  log "query: GetMetricData, $QUERY_ROUNDS rounds"
  load query query "$BERTH_URL" "$BERTH_PID" --metrics "$METRICS" --days "$DAYS" \
    --rounds "$QUERY_ROUNDS"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2

# ---------------------------------------------------------------- report
"$PY" - "$WORK" <<'PY'
import glob, json, os, sys
work = sys.argv[1]
def load(p): return json.load(open(p))
rows = []
for b in sorted(glob.glob(f"{work}/ingest-berth-*.json")):
    r = b.rsplit("-", 1)[1].split(".")[0]
    m = f"{work}/ingest-moto-{r}.json"
    rows.append((r, load(b), load(m)))
print("PutMetricData ingest (datapoints/s), same client, alternating rounds")
print("| round | Berth dp/s | Berth p50 ms | moto dp/s | moto p50 ms | Berth / moto | errors B/m |")
print("|---|---:|---:|---:|---:|---:|---:|")
ratios = []
for r, b, m in rows:
    ratio = b["datapoints_per_s"] / m["datapoints_per_s"] if m["datapoints_per_s"] else float("inf")
    ratios.append(ratio)
    print(f"| {r} | {b['datapoints_per_s']:.0f} | {b['p50_ms']:.1f} | {m['datapoints_per_s']:.0f} | {m['p50_ms']:.1f} | {ratio:.2f}x | {b['errors']}/{m['errors']} |")
if ratios:
    ratios.sort()
    print(f"\nmedian Berth / moto: {ratios[len(ratios)//2]:.2f}x")
if os.path.exists(f"{work}/query.json"):
    f, q = load(f"{work}/fill.json"), load(f"{work}/query.json")
    print(f"\nfill: {f['datapoints']} datapoints in {f['seconds']:.0f} s ({f['datapoints_per_s']:.0f}/s)")
    print(f"GetMetricData, {q['metrics']} metrics x {q['days']} days at period {q['period']} s, "
          f"{q['calls_per_round']} calls a round: p50 {q['p50_ms']:.1f} ms, min {q['min_ms']:.1f}, max {q['max_ms']:.1f}")
PY
