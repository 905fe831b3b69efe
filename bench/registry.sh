#!/usr/bin/env bash
# Berth vs the reference registry (Debian's docker-registry = CNCF distribution 2.8),
# same client (bench/regclient.py), one run, ratios. See BENCHMARKS.md.
#
# Usage: bench/registry.sh [--only berth|reference] [--rounds N]
#   env BERTH_BIN   berth binary (default target/release/berth, built with cargo --release)
#   env ROUNDS      rounds per server, median reported (default 3)
#   env SINK        1 (default): also measure the client alone against a trivial sink
#   env BENCH_DIR   work dir (default target/bench-registry; needs 3 + 5*ROUNDS GiB free)
#
# Every round starts both servers fresh on empty data dirs and runs each scenario
# against one and then the other; which goes first alternates from round to round.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ONLY=""
ROUNDS="${ROUNDS:-3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
BENCH_DIR="${BENCH_DIR:-$ROOT/target/bench-registry}"
BERTH_BIN_SET="${BERTH_BIN:-}"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
CLIENT="$ROOT/bench/regclient.py"
DATA="$BENCH_DIR/data"       # layer files, kept between runs
RUN="$BENCH_DIR/run"         # per-run server storage, logs, results
RESULTS="$RUN/results.jsonl"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN/storage"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
command -v python3 >/dev/null || die "python3 is required"
APT_UPDATED=""
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $*"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
SERVERS=()
want reference && SERVERS+=(reference)
want berth && SERVERS+=(berth)
[ ${#SERVERS[@]} -gt 0 ] || die "--only must be berth or reference"

if want reference && ! command -v docker-registry >/dev/null; then
  apt_install docker-registry
fi
REF_BIN="$(command -v docker-registry || true)"

AWS=""
if want berth; then
  if [ -x "$ROOT/target/venv/bin/aws" ]; then
    AWS="$ROOT/target/venv/bin/aws"
  else
    VENV="$ROOT/target/bench-venv"
    if [ ! -x "$VENV/bin/aws" ]; then
      log "installing awscli into $VENV"
      python3 -m venv "$VENV" || { apt_install python3-venv; python3 -m venv "$VENV"; }
      "$VENV/bin/pip" install -q awscli
    fi
    AWS="$VENV/bin/aws"
  fi
  # The default binary is (re)built so that it matches the source; cargo makes this
  # a no-op when nothing changed. An explicit BERTH_BIN is used as it is.
  if [ -z "${BERTH_BIN_SET:-}" ]; then
    log "cargo build --release -p berth"
    cargo build --release -q -p berth
  fi
  [ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"
fi

# ---------------------------------------------------------------- test data
mkdir -p "$DATA"
rm -rf "$RUN"; mkdir -p "$RUN/storage" "$RUN/logs"
need_kib=$(( (3 + 5 * ROUNDS) * 1024 * 1024 ))  # layer files + ~2.2 GiB per server per round
avail_kib=$(df -Pk "$BENCH_DIR" | awk 'NR==2 {print $4}')
[ "$avail_kib" -ge "$need_kib" ] || die "need ~$((need_kib / 1048576)) GiB free under $BENCH_DIR (have $((avail_kib / 1024)) MiB)"

# make_layer NAME BYTES: random (incompressible) file plus its digest, reused across runs.
make_layer() {
  local f="$DATA/$1.bin" size="$2"
  if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" != "$size" ] || [ ! -s "$f.digest" ]; then
    log "generating $1 ($((size / 1048576)) MiB of random data)"
    head -c "$size" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
    echo "sha256:$(sha256sum "$f" | cut -d' ' -f1)" >"$f.digest"
  fi
}
make_layer big $((1024 * 1048576))      # monolithic push, then pulled
make_layer big2 $((1024 * 1048576))     # chunked push (a distinct blob: no dedup shortcut)
make_layer mid $((64 * 1048576))        # 50 concurrent pulls
BIG_D=$(cat "$DATA/big.bin.digest"); BIG2_D=$(cat "$DATA/big2.bin.digest"); MID_D=$(cat "$DATA/mid.bin.digest")
# Warm the page cache so every server reads its upload source from memory, and
# flush freshly generated data so its writeback does not land in a measurement.
cat "$DATA"/*.bin >/dev/null
sync

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- servers
# start_* set SERVER_PID, SERVER_URL, PASSWORD.
start_reference() {
  local dir="$STORE_DIR" port
  mkdir -p "$dir/data"
  port=$(free_port)
  # Debian's default config minus auth, with request logging off (it would only
  # cost the reference time); filesystem driver, in-memory blob descriptor cache.
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  "$REF_BIN" serve "$dir/config.yml" >"$RUN/logs/reference.$ROUND.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_URL="http://127.0.0.1:$port"
  PASSWORD=""
  local i
  for i in $(seq 1 100); do
    if python3 - "$SERVER_URL" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/v2/", timeout=1)
EOF
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN/logs/reference.$ROUND.log" >&2; die "docker-registry exited"; }
    sleep 0.1
  done
  die "docker-registry did not answer on $SERVER_URL/v2/"
}

export BERTH_ROOT_ACCESS_KEY_ID="AKIABERTHBENCH000001"
export BERTH_ROOT_SECRET_ACCESS_KEY="berth-bench-secret-key-0000000000000000"
aws_berth() {
  AWS_ACCESS_KEY_ID="$BERTH_ROOT_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$BERTH_ROOT_SECRET_ACCESS_KEY" \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER="" \
    AWS_EC2_METADATA_DISABLED=true \
    "$AWS" --endpoint-url "$SERVER_URL" --region us-east-1 "$@"
}

start_berth() {
  local dir="$STORE_DIR" i
  mkdir -p "$dir"
  : >"$RUN/logs/berth.$ROUND.log"
  "$BERTH_BIN" server --data-dir "$dir" --listen 127.0.0.1:0 >"$RUN/logs/berth.$ROUND.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_URL=""
  for i in $(seq 1 300); do
    SERVER_URL=$(sed -n 's/.*berth listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$RUN/logs/berth.$ROUND.log" | head -1)
    [ -n "$SERVER_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN/logs/berth.$ROUND.log" >&2; die "berth exited"; }
    sleep 0.1
  done
  [ -n "$SERVER_URL" ] || die "berth did not print its listening address"
  for i in $(seq 1 100); do
    if python3 - "$SERVER_URL" <<'EOF' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/health", timeout=1)
EOF
    [ "$i" = 100 ] && die "berth /health did not answer 200"
    sleep 0.1
  done
  local repo
  for repo in bench/big bench/mid bench/small bench/small8; do
    aws_berth ecr create-repository --repository-name "$repo" >/dev/null
  done
  PASSWORD=$(aws_berth ecr get-login-password)
  [ -n "$PASSWORD" ] || die "empty password from aws ecr get-login-password"
}

stop_server() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# proc_kib PID FIELD: VmHWM / VmRSS of the server in KiB.
proc_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
# proc_cpu PID: user + system CPU time of the server, in clock ticks (all threads).
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# ---------------------------------------------------------------- scenarios
# record SCENARIO JSON (for the current SERVER and ROUND)
record() {
  python3 - "$SERVER" "$ROUND" "$@" >>"$RESULTS" <<'EOF'
import json, sys
server, rnd, scenario, payload = sys.argv[1:5]
d = json.loads(payload)
d.update(server=server, round=int(rnd), scenario=scenario)
print(json.dumps(d))
EOF
  log "  $(printf '%-9s %-20s' "$SERVER" "$1") $2"
}

client() { REGISTRY_PASSWORD="$PASSWORD" python3 "$CLIENT" "$@" --url "$SERVER_URL"; }

# measure SCENARIO CLIENT-ARGS...: run the client and record its figures; a failed
# run (e.g. an HTTP error from the server) is recorded as a failure, not fatal.
measure() {
  local scen="$1" out err="$RUN/logs/client.err"
  shift
  local cpu0 cpu1
  cpu0=$(proc_cpu "$SERVER_PID")
  if out=$(client "$@" 2>"$err"); then
    cpu1=$(proc_cpu "$SERVER_PID")
    record "$scen" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["server_cpu_s"]=float(sys.argv[2]); print(json.dumps(d))' \
      "$out" "$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')")"
  else
    record "$scen" "$(python3 -c 'import json,sys; print(json.dumps({"failed": 1, "error": sys.argv[1][-400:]}))' \
      "$(tail -c 2000 "$err")")"
  fi
}

# One function per scenario, run against the current SERVER_*.
sc_push_1g() {
  measure push_1g push-big --name bench/big --file "$DATA/big.bin" --digest "$BIG_D" --tag big
  # The process is fresh, so its high-water mark covers start-up plus this push.
  record rss_push_1g "{\"kib\": $(proc_kib "$SERVER_PID" VmHWM)}"
}
sc_push_1g_chunked() {
  measure push_1g_chunked push-big --name bench/big --file "$DATA/big2.bin" --digest "$BIG2_D" \
    --tag chunked --chunk-mib 64
  record rss_push_1g_chunked "{\"kib\": $(proc_kib "$SERVER_PID" VmHWM)}"
}
sc_pull_1g() { measure pull_1g pull --name bench/big --tag big; }
sc_pull_1g_again() { measure pull_1g_again pull --name bench/big --tag big; }
# The same pull with the page cache dropped first (needs root): what a registry sees
# for a layer nobody has read lately.
sc_pull_1g_cold() {
  if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    measure pull_1g_cold pull --name bench/big --tag big
  fi
}
sc_push_64m() { measure push_64m push-big --name bench/mid --file "$DATA/mid.bin" --digest "$MID_D" --tag mid; }
sc_pull_64m_x50() {
  measure pull_64m_x50 pull-many --name bench/mid --tag mid -n 50
  record rss_pulls "{\"kib\": $(proc_kib "$SERVER_PID" VmHWM)}"
}
sc_manifests_seq() { measure manifests_seq manifests --name bench/small -n 1000 --concurrency 1; }
sc_manifests_c8() {
  measure manifests_c8 manifests --name bench/small8 -n 1000 --concurrency 8
  record rss_end "{\"kib\": $(proc_kib "$SERVER_PID" VmHWM)}"
}
SCENARIOS=(push_1g push_1g_chunked pull_1g pull_1g_again pull_1g_cold push_64m pull_64m_x50 manifests_seq manifests_c8)

# The client's own ceiling: the same scenarios against a trivial sink that discards
# uploads and serves blobs with sendfile (bench/regclient.py sink), so the report
# shows how far each figure is from what the client can drive on this machine.
start_sink() {
  python3 "$CLIENT" sink --blob "$BIG_D=$DATA/big.bin" --blob "$BIG2_D=$DATA/big2.bin" \
    --blob "$MID_D=$DATA/mid.bin" >"$RUN/logs/sink.$ROUND.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local i
  for i in $(seq 1 100); do
    SERVER_URL=$(sed -n 's/^sink listening on //p' "$RUN/logs/sink.$ROUND.log")
    [ -n "$SERVER_URL" ] && break
    sleep 0.1
  done
  [ -n "$SERVER_URL" ] || die "sink did not start"
  PASSWORD=""
}
# All servers run side by side (an idle server costs nothing) and every scenario
# runs against one and then the other, so a burst of background load on this
# machine hits both figures of a ratio alike. The order reverses every other round.
[ "${SINK:-1}" = 1 ] && SERVERS+=(sink)
declare -A S_PID S_URL S_PW
: >"$RESULTS"
T0=$(date +%s)
for ROUND in $(seq 1 "$ROUNDS"); do
  order=("${SERVERS[@]}")
  if [ $((ROUND % 2)) = 0 ]; then
    order=(); for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
  fi
  for SERVER in "${order[@]}"; do
    STORE_DIR="$RUN/storage/$SERVER.$ROUND"
    "start_$SERVER"
    S_PID[$SERVER]=$SERVER_PID; S_URL[$SERVER]=$SERVER_URL; S_PW[$SERVER]=$PASSWORD
    log "round $ROUND: $SERVER at $SERVER_URL (pid $SERVER_PID)"
  done
  for sc in "${SCENARIOS[@]}"; do
    for SERVER in "${order[@]}"; do
      SERVER_PID=${S_PID[$SERVER]}; SERVER_URL=${S_URL[$SERVER]}; PASSWORD=${S_PW[$SERVER]}
      "sc_$sc"
      # Flush so one server's writeback never lands in the other's measurement.
      case "$sc" in push*) sync ;; esac
    done
  done
  # Storage is deleted only at exit: on a disk mounted with `discard`, deleting
  # gigabytes between rounds would slow the next round down.
  for SERVER in "${order[@]}"; do stop_server "${S_PID[$SERVER]}"; done
  sync
done
log "done in $(( $(date +%s) - T0 )) s; raw results in $RESULTS"

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
  echo "reference: $("$REF_BIN" --version 2>/dev/null || echo n/a)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "client: bench/regclient.py (Python $(python3 -c 'import platform; print(platform.python_version())')), rounds: $ROUNDS (median)"
  echo
  python3 "$ROOT/bench/report.py" "$RESULTS"
} | tee "$RUN/report.md"
