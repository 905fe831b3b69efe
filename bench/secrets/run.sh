#!/usr/bin/env bash
# Secrets Manager: GetSecretValue throughput, Berth vs moto_server, the same client against
# both in one run, reported as a ratio. See BENCHMARKS.md, section "Secrets Manager:
# GetSecretValue, Berth vs moto_server".
#
# Usage: bench/secrets/run.sh
#   env SECRETS     secrets made before the timed phase (default 100)
#   env CLIENTS     concurrent clients, one keep-alive connection each (default 16)
#   env SECONDS_CAP seconds of the timed phase per server (default 10)
#   env BERTH_BIN   berth binary (default target/release/berth; built when missing, BUILD=1
#                   rebuilds it with cargo build --release -p berth)
#   env LOAD_BIN    the load generator (default target/release/examples/secrets-load, built
#                   with cargo build --release -p berth-e2e --example secrets-load when missing)
#   env PY          a python with moto[server] (default target/venv/bin/python)
#
# The load generator is bench/secrets/load.rs (closed loop, SigV4 signed, every answer
# checked against the value put). Berth runs as `berth server --data-dir TMP` (its embedded
# store, values sealed at rest), moto as `moto_server` (in memory, values in the clear).
# Results: target/bench-secrets/{berth,moto}.json and the table printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECRETS="${SECRETS:-100}"
CLIENTS="${CLIENTS:-16}"
SECONDS_CAP="${SECONDS_CAP:-10}"
WORK="$ROOT/target/bench-secrets"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
LOAD_BIN="${LOAD_BIN:-$ROOT/target/release/examples/secrets-load}"
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
if [ ! -x "$LOAD_BIN" ]; then
  log "cargo build --release -p berth-e2e --example secrets-load"
  cargo build --release -p berth-e2e --example secrets-load >&2
fi
cp "$BERTH_BIN" "$WORK/berth"
cp "$LOAD_BIN" "$WORK/secrets-load"
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

run_load() { # NAME ENDPOINT PID
  log "$1: secrets-load against $2 (server pid $3)"
  "$WORK/secrets-load" --name "$1" --endpoint "$2" --access-key "$ACCESS_KEY" \
    --secret-key "$SECRET_KEY" --secrets "$SECRETS" --clients "$CLIENTS" \
    --seconds "$SECONDS_CAP" --server-pid "$3" --out "$WORK/$1.json" >/dev/null \
    || die "$1: secrets-load failed"
}

# ---------------------------------------------------------------- Berth
TMPDIR_BERTH="$(mktemp -d /tmp/berth-bench-secrets-XXXXXX)"
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
run_load berth "$BERTH_URL" "$BERTH_PID"
kill "$BERTH_PID" 2>/dev/null || true
wait "$BERTH_PID" 2>/dev/null || true

# ---------------------------------------------------------------- moto
MOTO_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
if [ -x "$(dirname "$PY")/moto_server" ]; then
  "$(dirname "$PY")/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
else
  "$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
fi
MOTO_PID=$!
PIDS+=("$MOTO_PID")
wait_health "http://127.0.0.1:$MOTO_PORT/moto-api/" "$MOTO_PID"
run_load moto "http://127.0.0.1:$MOTO_PORT" "$MOTO_PID"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2

# ---------------------------------------------------------------- report
"$PY" - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
b = json.load(open(f"{work}/berth.json"))
m = json.load(open(f"{work}/moto.json"))
def row(name, r):
    cpu = r.get("server_cpu_s")
    per_cpu = r["calls"] / cpu if cpu else float("nan")
    print(f"| {name} | {r['calls_per_second']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {per_cpu:.0f} | {r['errors']} / {r['wrong_answers']} |")
print(f"GetSecretValue, {b['clients']} clients, {b['secrets']} secrets, {b['seconds']:.0f} s each")
print("| server | calls/s | p50 ms | p99 ms | calls per server CPU s | errors / wrong |")
print("|---|---:|---:|---:|---:|---:|")
row("Berth", b)
row("moto_server", m)
print(f"\nBerth / moto throughput: {b['calls_per_second'] / m['calls_per_second']:.1f}x")
PY
