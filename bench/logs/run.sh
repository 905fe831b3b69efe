#!/usr/bin/env bash
# CloudWatch Logs: Berth vs moto_server, ingest and queries, the same client against both, one run.
# See BENCHMARKS.md, section "CloudWatch Logs: Berth vs moto_server".
#
# Usage: bench/logs/run.sh [--only berth|moto]
#   env CLIENTS          concurrent ingest clients (default 4)
#   env INGEST_SECONDS   seconds of the own-stream ingest phase, cap (default 20)
#   env INGEST_EVENTS    events of the own-stream ingest phase, cap (default 20000000)
#   env BIG_EVENTS       events of the stream the queries read, Berth (default 10000000)
#   env BIG_SECONDS      seconds to build it, cap (default 600)
#   env MOTO_BIG_EVENTS  the same for moto (default 1000000): moto keeps every event as a
#   env MOTO_BIG_SECONDS Python object and re-sorts the stream on every GetLogEvents call
#                        (default 300)
#   env REPS             repetitions of each FilterLogEvents pattern and of the
#                        startFromHead/newest GetLogEvents calls (default 5; moto 3)
#   env RANDOM_REPS      GetLogEvents calls at random startTime per limit (default 50; moto 10)
#   env WALK             1 (default): read Berth's whole stream back by GetLogEvents tokens
#                        (timed, every event checked); 0: skip. Never against moto (its
#                        tokens re-sort the stream per call: hours for 1M events).
#   env PREBUILD         1: build every PutLogEvents body before the ingest phases start
#                        (bodies are still signed per call); default 0: built by the client
#                        thread between calls (outside the timed call)
#   env BERTH_BIN        berth binary (default target/release/berth, built when missing;
#                        BUILD=1 rebuilds it with cargo build --release -p berth first)
#   env REV              build this git revision instead of the working tree (git archive
#                        into target/bench-logs/src-REV, own target dir), e.g. REV=HEAD
#   env PERF             1: profile Berth in each phase (perf record -g, one profile per
#                        phase: target/bench-logs/perf/PHASE.{perf.data,txt}); the timings
#                        of such a run include perf's cost
#
# Installs moto[server] into target/bench-venv, builds the load generator (cargo example
# logs-load of berth-e2e, source bench/logs/load.rs), starts `berth server --data-dir TMP
# --listen 127.0.0.1:0` and then `moto_server -p PORT`, runs the same phases against each,
# prints a table and kills both on exit. Results: target/bench-logs/{berth,moto}.json,
# machine facts in target/bench-logs/machine.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
CLIENTS="${CLIENTS:-4}"
INGEST_SECONDS="${INGEST_SECONDS:-20}"
INGEST_EVENTS="${INGEST_EVENTS:-20000000}"
BIG_EVENTS="${BIG_EVENTS:-10000000}"
BIG_SECONDS="${BIG_SECONDS:-600}"
MOTO_BIG_EVENTS="${MOTO_BIG_EVENTS:-1000000}"
MOTO_BIG_SECONDS="${MOTO_BIG_SECONDS:-300}"
WALK="${WALK:-1}"
WORK="$ROOT/target/bench-logs"
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
  if [ -n "$TMPDIR_BERTH" ]; then rm -rf "$TMPDIR_BERTH"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"
if [ -z "$ONLY" ]; then rm -f "$WORK"/*.json; else rm -f "$WORK/$ONLY.json"; fi

# ---------------------------------------------------------------- tools
command -v python3 >/dev/null || die "python3 is required"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import moto.server, flask' 2>/dev/null; then
  log "pip install 'moto[server]' into $VENV"
  "$VENV/bin/pip" install -q 'moto[server]'
fi
PY="$VENV/bin/python"

log "cargo build --release -p berth-e2e --example logs-load"
cargo build --release -p berth-e2e --example logs-load >&2
cp "$ROOT/target/release/examples/logs-load" "$WORK/logs-load"

COMMIT="-"
if want berth; then
  if [ -n "${REV:-}" ]; then
    # A committed revision, built apart from the working tree (which others may be editing).
    COMMIT="$(git rev-parse --short "$REV")"
    SRC="$WORK/src-$COMMIT"
    if [ ! -d "$SRC" ]; then
      mkdir -p "$SRC.tmp"
      git archive "$REV" | tar -x -C "$SRC.tmp"
      mv "$SRC.tmp" "$SRC"
    fi
    log "cargo build --release -p berth (revision $COMMIT, in $SRC)"
    CARGO_TARGET_DIR="$WORK/target" cargo build --release --locked -p berth --manifest-path "$SRC/Cargo.toml" >&2
    cp "$WORK/target/release/berth" "$WORK/berth"
  else
    if [ ! -x "$BERTH_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
      log "cargo build --release -p berth"
      cargo build --release -p berth >&2
    fi
    COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo '+uncommitted changes in crates/')"
    # A private copy: a rebuild elsewhere cannot swap the binary under the run.
    cp "$BERTH_BIN" "$WORK/berth"
  fi
fi
{
  echo "commit: $COMMIT"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "filesystem of target/: $(df -T "$WORK" | awk 'NR==2 {print $2}')"
  echo "moto: $("$PY" -c 'import moto; print(moto.__version__)'), $("$PY" --version 2>&1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" >&2

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

run_load() { # NAME ENDPOINT PID [options]
  local name="$1" endpoint="$2" pid="$3" rc=0; shift 3
  log "$name: logs-load against $endpoint (server pid $pid)"
  "$WORK/logs-load" --name "$name" --endpoint "$endpoint" --access-key "$ACCESS_KEY" \
    --secret-key "$SECRET_KEY" --clients "$CLIENTS" --ingest-seconds "$INGEST_SECONDS" \
    --ingest-events "$INGEST_EVENTS" --server-pid "$pid" --out "$WORK/$name.json" \
    ${PREBUILD:+$([ "$PREBUILD" = 1 ] && echo --prebuild)} "$@" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || die "$name: logs-load failed (exit $rc)"
  [ "$rc" = 0 ] || log "$name: some checks failed (see the table)"
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" > "$WORK/$name.rss_kib" 2>/dev/null || true
}

# ---------------------------------------------------------------- Berth
if want berth; then
  TMPDIR_BERTH="$(mktemp -d "$ROOT/target/berth-bench-logs-XXXXXX")"
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
  PERF_FLAG=()
  if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    rm -rf "$WORK/perf"
    mkdir -p "$WORK/perf"
    PERF_FLAG=(--perf-dir "$WORK/perf")
  fi
  WALK_FLAG=()
  [ "$WALK" = 1 ] && WALK_FLAG=(--walk)
  run_load berth "$BERTH_URL" "$BERTH_PID" --big-events "$BIG_EVENTS" --big-seconds "$BIG_SECONDS" \
    --reps "${REPS:-5}" --random-reps "${RANDOM_REPS:-50}" "${WALK_FLAG[@]}" "${PERF_FLAG[@]}"
  if [ ${#PERF_FLAG[@]} -gt 0 ]; then
    for data in "$WORK"/perf/*.perf.data; do
      [ -e "$data" ] || continue
      perf report -i "$data" --no-children --sort symbol --stdio -g none --percent-limit 1 2>/dev/null \
        | grep -v "^#" | grep -v "^$" | grep "%" | sed 's/[ -]*$//' | head -40 > "${data%.perf.data}.txt" || true
    done
    log "perf profiles of Berth, one per phase (timings of a PERF=1 run include perf's cost): $WORK/perf/*.txt"
  fi
  du -sb "$TMPDIR_BERTH/data" 2>/dev/null | awk '{print $1}' > "$WORK/berth.disk_bytes" || true
  kill "$BERTH_PID" 2>/dev/null || true
  wait "$BERTH_PID" 2>/dev/null || true
  rm -rf "$TMPDIR_BERTH"
  TMPDIR_BERTH=""
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
  run_load moto "http://127.0.0.1:$MOTO_PORT" "$MOTO_PID" --big-events "$MOTO_BIG_EVENTS" \
    --big-seconds "$MOTO_BIG_SECONDS" --reps "${REPS:-3}" --random-reps "${RANDOM_REPS:-10}"
  kill "$MOTO_PID" 2>/dev/null || true
  wait "$MOTO_PID" 2>/dev/null || true
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2

# ---------------------------------------------------------------- report
"$PY" "$ROOT/bench/logs/report.py" "$WORK"
