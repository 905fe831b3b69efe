#!/usr/bin/env bash
# ECS API: Berth vs moto_server, the same client against both, one run.
# See BENCHMARKS.md, section "ECS API: Berth vs moto_server".
#
# Usage: bench/ecs-api/run.sh [--only berth|moto]
#   env CLIENT      rust (default): setup and final checks by the boto3 client
#                   (bench/ecs-api/client.py --setup-only / --check-arns), the timed phases by
#                   the Rust load generator bench/ecs-api/load.rs (cargo example ecs-load of
#                   berth-e2e: one thread and one keep-alive connection per client);
#                   boto3: everything by client.py (the timed phases too)
#   env BERTH_BIN   berth binary (default target/release/berth, built when missing;
#                   BUILD=1 rebuilds it with cargo build --release -p berth first)
#   env CLIENTS     concurrent clients (default 100)
#   env PROCS       boto3 client processes the clients are split over, threads in each
#                   (default 1; CLIENT=boto3 only, the Rust client is one process)
#   env CALLS       calls per measured phase, cap (default 5000)
#   env SECONDS_CAP seconds per measured phase, cap (default 20)
#   env INSTANCES   container instances registered (default 1000)
#   env PERF        1: profile Berth during its run (perf record --call-graph dwarf; report in target/bench-ecs-api/berth.perf.txt)
#
# Installs moto[server] and boto3 into target/bench-venv, builds the load generator
# (CLIENT=rust), starts `berth server --data-dir TMP --listen 127.0.0.1:0` and
# `moto_server -p PORT`, runs setup, timed phases and checks against each in turn,
# prints a table, and kills both on exit. Results: target/bench-ecs-api/{berth,moto}.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
CLIENT="${CLIENT:-rust}"
case "$CLIENT" in rust|boto3) ;; *) echo "CLIENT must be rust or boto3, not $CLIENT" >&2; exit 2 ;; esac
CLIENTS="${CLIENTS:-100}"
PROCS="${PROCS:-1}"
CALLS="${CALLS:-5000}"
SECONDS_CAP="${SECONDS_CAP:-20}"
INSTANCES="${INSTANCES:-1000}"
WORK="$ROOT/target/bench-ecs-api"
VENV="$ROOT/target/bench-venv"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
ACCESS_KEY="AKIDBERTHBENCH000001"
SECRET_KEY="benchSecretBenchSecretBenchSecret0123456"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

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
rm -f "$WORK"/*.json "$WORK"/*.arns

# ---------------------------------------------------------------- tools
command -v python3 >/dev/null || die "python3 is required"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import boto3, moto.server, flask' 2>/dev/null; then
  log "pip install 'moto[server]' boto3 into $VENV"
  "$VENV/bin/pip" install -q 'moto[server]' boto3
fi
PY="$VENV/bin/python"

if [ "$CLIENT" = rust ]; then
  [ "$PROCS" = 1 ] || log "PROCS=$PROCS ignored: the Rust client is one process (threads)"
  log "cargo build --release -p berth-e2e --example ecs-load"
  cargo build --release -p berth-e2e --example ecs-load >&2
  cp "$ROOT/target/release/examples/ecs-load" "$WORK/ecs-load"
fi

if want berth; then
  if [ ! -x "$BERTH_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
    log "cargo build --release -p berth"
    cargo build --release -p berth >&2
  fi
  # A private copy: a rebuild elsewhere cannot swap the binary under the run.
  cp "$BERTH_BIN" "$WORK/berth"
fi

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

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

run_client() { # NAME ENDPOINT PID [--ec2]
  local name="$1" endpoint="$2" pid="$3"; shift 3
  local common=(--name "$name" --endpoint "$endpoint" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY")
  if [ "$CLIENT" = rust ]; then
    local setup cluster family
    log "$name: setup by client.py against $endpoint (server pid $pid)"
    setup="$("$PY" "$ROOT/bench/ecs-api/client.py" "${common[@]}" --instances "$INSTANCES" \
      --setup-only --out "$WORK/$name.setup.json" "$@")"
    read -r cluster family <<<"$setup"
    [ -n "$cluster" ] && [ -n "$family" ] || die "$name: setup printed no cluster and family: $setup"
    log "$name: timed phases by ecs-load ($CLIENTS clients, cluster $cluster, task definition $family)"
    "$WORK/ecs-load" "${common[@]}" --cluster "$cluster" --task-definition "$family" \
      --instances "$INSTANCES" --clients "$CLIENTS" --calls "$CALLS" --seconds "$SECONDS_CAP" \
      --server-pid "$pid" --out "$WORK/$name.json" --arns-out "$WORK/$name.arns" >/dev/null
    log "$name: checks by client.py"
    "$PY" "$ROOT/bench/ecs-api/client.py" "${common[@]}" --check-arns "$WORK/$name.arns" \
      --cluster "$cluster" --result "$WORK/$name.json" >/dev/null
  else
    log "$name: client against $endpoint (server pid $pid)"
    "$PY" "$ROOT/bench/ecs-api/client.py" "${common[@]}" --server-pid "$pid" \
      --instances "$INSTANCES" --clients "$CLIENTS" --procs "$PROCS" --calls "$CALLS" --seconds "$SECONDS_CAP" \
      --out "$WORK/$name.json" "$@" >/dev/null
  fi
  # Peak RSS of the server after its run.
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" > "$WORK/$name.rss_kib" 2>/dev/null || true
}

# ---------------------------------------------------------------- Berth
if want berth; then
  TMPDIR_BERTH="$(mktemp -d /tmp/berth-bench-ecs-XXXXXX)"
  BERTH_OUT="$WORK/berth.stdout"
  BERTH_ROOT_ACCESS_KEY_ID="$ACCESS_KEY" BERTH_ROOT_SECRET_ACCESS_KEY="$SECRET_KEY" \
    "$WORK/berth" server --data-dir "$TMPDIR_BERTH/data" --listen 127.0.0.1:0 \
    >"$BERTH_OUT" 2>"$WORK/berth.stderr" &
  BERTH_PID=$!
  PIDS+=("$BERTH_PID")
  BERTH_URL=""
  for _ in $(seq 1 300); do
    BERTH_URL="$(sed -n 's#^berth listening on \(http://[0-9.:]*\).*#\1#p' "$BERTH_OUT" | head -1)"
    [ -n "$BERTH_URL" ] && break
    kill -0 "$BERTH_PID" 2>/dev/null || die "berth exited: $(tail -5 "$WORK/berth.stderr")"
    sleep 0.1
  done
  [ -n "$BERTH_URL" ] || die "berth printed no listening line"
  wait_health "$BERTH_URL/health" "$BERTH_PID"
  PERF_PID=""
  if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -F 199 --call-graph dwarf,16384 -p "$BERTH_PID" -o "$WORK/berth.perf.data" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  run_client berth "$BERTH_URL" "$BERTH_PID"
  if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    perf report -i "$WORK/berth.perf.data" --children --sort symbol --stdio -g none --percent-limit 2 2>/dev/null \
      | grep -v "^#" | grep -v "^$" | grep "%" | head -80 > "$WORK/berth.perf.txt" || true
    log "perf profile of Berth: $WORK/berth.perf.txt"
  fi
  kill "$BERTH_PID" 2>/dev/null || true
  wait "$BERTH_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------- moto
if want moto; then
  MOTO_PORT="$(free_port)"
  if [ -x "$VENV/bin/moto_server" ]; then
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  else
    "$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  fi
  MOTO_PID=$!
  PIDS+=("$MOTO_PID")
  wait_health "http://127.0.0.1:$MOTO_PORT/moto-api/" "$MOTO_PID"
  run_client moto "http://127.0.0.1:$MOTO_PORT" "$MOTO_PID" --ec2
  kill "$MOTO_PID" 2>/dev/null || true
  wait "$MOTO_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------- report
"$PY" "$ROOT/bench/ecs-api/report.py" "$WORK"
