#!/usr/bin/env bash
# Replicas on etcd (issue 17): failover and RunTask throughput. See BENCHMARKS.md, section
# "Replicas on etcd".
#
# Usage: bench/replicas/run.sh [failover|throughput|all]   (default all)
#   failover    3 etcd members, 3 `berth server --store etcd://...` replicas, one `berth agent
#               --runtime simulated` (a SIMULATION: no container runs) with --endpoint naming
#               the three, a service. Each round: kill -9 of the leader (read with `etcdctl
#               get berth/berth/leader --print-value-only`: Berth's key berth/leader under
#               the store's prefix berth/), at once UpdateService desiredCount+1
#               through a survivor; kill → the new task's createdAt (server clock), and the
#               election alone (kill → the leader key naming a survivor; kill → "elected
#               leader" in its log). The killed replica is restarted on its data dir and port.
#     env ROUNDS      rounds counted (default 12), WARMUP rounds first, not counted (default 1)
#   throughput  bench/ecs-api/load.rs (RunTask, DescribeTasks, each again from one client)
#               against, started afresh for every run, in an order that rotates each round:
#               embedded (one server, embedded store), etcd3 (3 replicas on 3 etcd members,
#               the clients dealt out over the replicas), etcd1 (1 replica on 3 etcd members).
#     env TP_ROUNDS   rounds (default 3); CONFIGS (default embedded,etcd3,etcd1)
#     env CLIENTS     concurrent clients (default 100), CALLS per phase cap (default 5000),
#                     SECONDS_CAP per phase (default 20), INSTANCES registered (default 1000)
#   env BUILD  0: do not build (default 1: cargo build --release -p berth and the example
#              ecs-load of berth-e2e)
#   env QUIET  N > 0: before each mode, wait (up to 20 min) until the 1-minute load average
#              is below N (others share this machine); default 0, no wait
#
# Needs etcd and etcdctl (Debian's etcd-server and etcd-client) and python3; boto3 for
# bench/ecs-api/client.py (the throughput setup and checks) is installed into
# target/bench-venv when missing. Processes are started by bench/replicas/replicas.py in a
# temporary directory and stopped by pid on exit. Results: target/bench-replicas/*.json;
# the tables are printed on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WHAT="${1:-all}"
case "$WHAT" in failover|throughput|all) ;; -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
  *) echo "usage: $0 [failover|throughput|all]" >&2; exit 2 ;; esac
want() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }

ROUNDS="${ROUNDS:-12}"
WARMUP="${WARMUP:-1}"
TP_ROUNDS="${TP_ROUNDS:-3}"
CONFIGS="${CONFIGS:-embedded,etcd3,etcd1}"
CLIENTS="${CLIENTS:-100}"
CALLS="${CALLS:-5000}"
SECONDS_CAP="${SECONDS_CAP:-20}"
INSTANCES="${INSTANCES:-1000}"
QUIET="${QUIET:-0}"
WORK="$ROOT/target/bench-replicas"
VENV="$ROOT/target/bench-venv"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP=""
cleanup() { [ -n "$TMP" ] && rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v python3 >/dev/null || die "python3 is required"
command -v etcd >/dev/null || die "etcd is required (apt-get install etcd-server)"
command -v etcdctl >/dev/null || die "etcdctl is required (apt-get install etcd-client)"
mkdir -p "$WORK"

if [ "${BUILD:-1}" = 1 ]; then
  log "cargo build --release -p berth"
  cargo build --release -p berth >&2
  if want throughput; then
    log "cargo build --release -p berth-e2e --example ecs-load"
    cargo build --release -p berth-e2e --example ecs-load >&2
  fi
fi
# Private copies: a rebuild elsewhere cannot swap a binary under the run.
cp "$ROOT/target/release/berth" "$WORK/berth"
if want throughput; then
  cp "$ROOT/target/release/examples/ecs-load" "$WORK/ecs-load"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import boto3' 2>/dev/null; then
    log "pip install boto3 into $VENV"
    "$VENV/bin/pip" install -q boto3
  fi
fi

quiet() {
  [ "$QUIET" = 0 ] && return 0
  local i
  for i in $(seq 1 240); do
    awk -v q="$QUIET" '{exit !($1 < q)}' /proc/loadavg && return 0
    [ "$i" = 1 ] && log "waiting for the load average to fall below $QUIET ($(cut -d' ' -f1-3 /proc/loadavg))"
    sleep 5
  done
  log "the load average stayed above $QUIET; running anyway"
}

TMP="$(mktemp -d /tmp/berth-bench-replicas-XXXXXX)"
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(etcd --version | head -1), commit $(git rev-parse --short HEAD)"

if want failover; then
  quiet
  python3 "$ROOT/bench/replicas/replicas.py" failover --berth "$WORK/berth" \
    --work "$TMP/failover" --out "$WORK/failover.json" --rounds "$ROUNDS" --warmup "$WARMUP"
fi

if want throughput; then
  quiet
  mkdir -p "$WORK/runs"
  rm -f "$WORK"/runs/*.json "$WORK"/runs/*.arns
  python3 "$ROOT/bench/replicas/replicas.py" throughput --berth "$WORK/berth" \
    --work "$TMP/throughput" --out "$WORK/throughput.json" --results "$WORK/runs" \
    --load "$WORK/ecs-load" --python "$VENV/bin/python" --rounds "$TP_ROUNDS" --configs "$CONFIGS" \
    --clients "$CLIENTS" --calls "$CALLS" --seconds "$SECONDS_CAP" --instances "$INSTANCES"
fi
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
