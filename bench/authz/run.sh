#!/usr/bin/env bash
# Authorization: enforcement on vs off. RunTask and DescribeTasks against ONE `berth server`,
# in alternating rounds (a) signed with the root credentials (no policy evaluated) and (b)
# signed by an IAM user whose access is decided by 5 customer managed policies of 10
# conditioned statements each (bench/authz/setup_iam.py). See BENCHMARKS.md, section
# "Authorization: enforcement on vs off".
#
# Usage: bench/authz/run.sh
#   env BERTH_BIN   berth binary (default target/release/berth; BUILD=1 builds it first with
#                   cargo build --release -p berth)
#   env LOAD_BIN    the load generator (default target/release/examples/ecs-load; built with
#                   cargo build --release -p berth-e2e --example ecs-load when missing)
#   env PY          a python with boto3 (default target/venv/bin/python)
#   env ROUNDS      a/b round pairs (default 3): a b a b a b
#   env CLIENTS     concurrent clients (default 32)
#   env CALLS       calls per timed phase, cap (default 10000)
#   env SECONDS_CAP seconds per timed phase, cap (default 6)
#   env SOLO_SECONDS seconds of the 1-client phases (default 2)
#   env INSTANCES   container instances registered (default 600: room for every task the
#                   rounds start)
#   env PERF        1: profile the server during the b rounds (perf record; report in
#                   target/bench-authz/berth.perf.txt)
#
# The load generator is bench/ecs-api/load.rs (one thread and one keep-alive connection per
# client, closed loop, SigV4 signed); the cluster, its simulated container instances and the
# task definition are made once by bench/ecs-api/client.py --setup-only. Results:
# target/bench-authz/{root,user}-N.json and the table of bench/authz/report.py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
CLIENTS="${CLIENTS:-32}"
CALLS="${CALLS:-10000}"
SECONDS_CAP="${SECONDS_CAP:-6}"
SOLO_SECONDS="${SOLO_SECONDS:-2}"
INSTANCES="${INSTANCES:-600}"
WORK="$ROOT/target/bench-authz"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
LOAD_BIN="${LOAD_BIN:-$ROOT/target/release/examples/ecs-load}"
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

"$PY" -c 'import boto3' 2>/dev/null || die "$PY has no boto3 (set PY)"
if [ ! -x "$BERTH_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
  log "cargo build --release -p berth"
  cargo build --release -p berth >&2
fi
if [ ! -x "$LOAD_BIN" ]; then
  log "cargo build --release -p berth-e2e --example ecs-load"
  cargo build --release -p berth-e2e --example ecs-load >&2
fi
# Private copies: a rebuild elsewhere cannot swap a binary under the run.
cp "$BERTH_BIN" "$WORK/berth"
cp "$LOAD_BIN" "$WORK/ecs-load"

TMPDIR_BERTH="$(mktemp -d /tmp/berth-bench-authz-XXXXXX)"
BERTH_OUT="$WORK/berth.stdout"
BERTH_ROOT_ACCESS_KEY_ID="$ACCESS_KEY" BERTH_ROOT_SECRET_ACCESS_KEY="$SECRET_KEY" \
  "$WORK/berth" server --data-dir "$TMPDIR_BERTH/data" --listen 127.0.0.1:0 \
  >"$BERTH_OUT" 2>"$WORK/berth.stderr" &
BERTH_PID=$!
PIDS+=("$BERTH_PID")
URL=""
for _ in $(seq 1 300); do
  URL="$(sed -n 's#^berth listening on \(http://[0-9.:]*\).*#\1#p' "$BERTH_OUT" | head -1)"
  [ -n "$URL" ] && break
  kill -0 "$BERTH_PID" 2>/dev/null || die "berth exited: $(tail -5 "$WORK/berth.stderr")"
  sleep 0.1
done
[ -n "$URL" ] || die "berth printed no listening line"
for i in $(seq 1 300); do
  kill -0 "$BERTH_PID" 2>/dev/null || die "berth exited: $(tail -5 "$WORK/berth.stderr")"
  "$PY" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('$URL/health', timeout=2).status==200 else 1)" 2>/dev/null && break
  [ "$i" = 300 ] && die "$URL/health never answered 200"
  sleep 0.2
done

log "setup: cluster with $INSTANCES simulated instances, task definition (root, client.py)"
read -r CLUSTER FAMILY <<<"$("$PY" "$ROOT/bench/ecs-api/client.py" --name setup --endpoint "$URL" \
  --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" --instances "$INSTANCES" \
  --setup-only --out "$WORK/setup.json")"
[ -n "$CLUSTER" ] && [ -n "$FAMILY" ] || die "setup printed no cluster and family"
log "setup: IAM user with 5 managed policies x 10 statements (setup_iam.py)"
read -r USER_KEY USER_SECRET <<<"$("$PY" "$ROOT/bench/authz/setup_iam.py" --endpoint "$URL" \
  --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" --out "$WORK/iam.json")"
[ -n "$USER_KEY" ] && [ -n "$USER_SECRET" ] || die "setup_iam.py printed no access key"

PERF_PID=""
for round in $(seq 1 "$ROUNDS"); do
  for who in root user; do
    if [ "$who" = root ]; then key="$ACCESS_KEY"; secret="$SECRET_KEY"; else key="$USER_KEY"; secret="$USER_SECRET"; fi
    if [ "$who" = user ] && [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
      perf record -F 499 -g -p "$BERTH_PID" -o "$WORK/berth.perf.data.$round" >/dev/null 2>&1 &
      PERF_PID=$!
    fi
    log "round $round: $who ($CLIENTS clients)"
    "$WORK/ecs-load" --name "$who-$round" --endpoint "$URL" --access-key "$key" --secret-key "$secret" \
      --cluster "$CLUSTER" --task-definition "$FAMILY" --instances "$INSTANCES" \
      --clients "$CLIENTS" --calls "$CALLS" --seconds "$SECONDS_CAP" --solo-seconds "$SOLO_SECONDS" \
      --server-pid "$BERTH_PID" --out "$WORK/$who-$round.json" >/dev/null
    if [ -n "$PERF_PID" ]; then
      kill -INT "$PERF_PID" 2>/dev/null || true
      wait "$PERF_PID" 2>/dev/null || true
      PERF_PID=""
    fi
  done
done

if [ "${PERF:-0}" = 1 ] && [ -f "$WORK/berth.perf.data.1" ]; then
  perf report -i "$WORK/berth.perf.data.1" --children --sort symbol --stdio -g none --percent-limit 1.5 2>/dev/null \
    | grep -v "^#" | grep -v "^$" | grep "%" | head -80 > "$WORK/berth.perf.txt" || true
  log "perf profile of Berth (round 1, user): $WORK/berth.perf.txt"
fi

"$PY" "$ROOT/bench/authz/report.py" "$WORK" "$ROUNDS"
