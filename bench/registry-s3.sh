#!/usr/bin/env bash
# Registry push/pull with blobs in S3-compatible storage (moto_server) against the same
# server on the filesystem, same run, as ratios; and Debian's docker-registry (CNCF
# distribution 2.8) both ways, its S3 driver against the same moto. See BENCHMARKS.md,
# "Registry: blobs on S3 (moto) vs the filesystem".
#
# Berth on S3 runs twice: on the embedded store (uploads staged on the replica's disk, then
# sent to the bucket) and on a one-member etcd (uploads staged in the bucket as multipart
# uploads that any replica continues, then copied inside S3: "berth-s3-etcd"); the second
# table compares them. etcd-server must be installed for that one (else it is left out).
#
# Usage: bench/registry-s3.sh [--rounds N] [--no-reference]
#   env BERTH_BIN   berth binary (default target/release/berth, built with cargo --release)
#   env BENCH_DIR   work dir (default target/bench-registry-s3; needs about 2 GiB free)
#
# Every round starts moto_server and the four servers fresh (berth and berth-s3, reference
# and reference-s3; the S3 ones on their own bucket of the round's moto) and runs each
# scenario against each server in turn, the order reversed every other round. moto keeps
# objects in memory, so the sizes are smaller than bench/registry.sh's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
REFERENCE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --no-reference) REFERENCE=""; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
BENCH_DIR="${BENCH_DIR:-$ROOT/target/bench-registry-s3}"
BERTH_BIN_SET="${BERTH_BIN:-}"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
CLIENT="$ROOT/bench/regclient.py"
DATA="$BENCH_DIR/data"
RUN="$BENCH_DIR/run"
RESULTS="$RUN/results.jsonl"
S3_KEY=AKIABERTHBENCHMOTO01
S3_SECRET=berth-bench-moto-secret

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$RUN/storage"
}
trap cleanup EXIT
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
VENV="$ROOT/target/venv"
if [ ! -x "$VENV/bin/aws" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  log "installing awscli and moto[server] into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check awscli 'moto[server]'
fi
AWS="$VENV/bin/aws"
MOTO="$VENV/bin/moto_server"
if [ -n "$REFERENCE" ] && ! command -v docker-registry >/dev/null; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install docker-registry (or --no-reference)"
  log "apt-get install docker-registry"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker-registry >/dev/null
fi
REF_BIN="$(command -v docker-registry || true)"
if [ -z "$BERTH_BIN_SET" ]; then
  log "cargo build --release -p berth"
  cargo build --release -q -p berth
fi
[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"

# ---------------------------------------------------------------- data
mkdir -p "$DATA"
rm -rf "$RUN"; mkdir -p "$RUN/storage" "$RUN/logs"
make_layer() {
  local f="$DATA/$1.bin" size="$2"
  if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" != "$size" ] || [ ! -s "$f.digest" ]; then
    log "generating $1 ($((size / 1048576)) MiB of random data)"
    head -c "$size" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
    echo "sha256:$(sha256sum "$f" | cut -d' ' -f1)" >"$f.digest"
  fi
}
make_layer big $((256 * 1048576))
make_layer big2 $((256 * 1048576))
make_layer mid $((64 * 1048576))
BIG_D=$(cat "$DATA/big.bin.digest"); BIG2_D=$(cat "$DATA/big2.bin.digest"); MID_D=$(cat "$DATA/mid.bin.digest")
cat "$DATA"/*.bin >/dev/null
sync

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # URL PID LOG
  local i
  for i in $(seq 1 300); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
EOF
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "$1: the server exited"; }
    sleep 0.1
  done
  die "$1 did not answer"
}

# ---------------------------------------------------------------- servers
start_moto() {
  local port
  port=$(free_port)
  "$MOTO" -H 127.0.0.1 -p "$port" >"$RUN/logs/moto.$ROUND.log" 2>&1 &
  MOTO_PID=$!
  PIDS+=("$MOTO_PID")
  MOTO_URL="http://127.0.0.1:$port"
  local i
  for i in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "moto_server did not listen"
}
make_bucket() {
  AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_CONFIG_FILE=/dev/null \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER="" \
    "$AWS" --endpoint-url "$MOTO_URL" --region us-east-1 s3api create-bucket --bucket "$1" >/dev/null
}

start_reference() { # STORAGE: fs or s3
  local dir="$STORE_DIR" port storage
  mkdir -p "$dir/data"
  port=$(free_port)
  if [ "$1" = s3 ]; then
    make_bucket "reference-$ROUND"
    storage="  s3:
    accesskey: $S3_KEY
    secretkey: $S3_SECRET
    region: us-east-1
    regionendpoint: $MOTO_URL
    bucket: reference-$ROUND
    secure: false
    v4auth: true
    chunksize: 16777216
  redirect:
    disable: true"
  else
    storage="  filesystem:
    rootdirectory: $dir/data"
  fi
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
$storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  # The Go AWS SDK fails on a custom CA bundle with its plain-HTTP transport.
  env -u AWS_CA_BUNDLE "$REF_BIN" serve "$dir/config.yml" >"$RUN/logs/$SERVER.$ROUND.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_URL="http://127.0.0.1:$port"
  PASSWORD=""
  wait_http "$SERVER_URL/v2/" "$SERVER_PID" "$RUN/logs/$SERVER.$ROUND.log"
}

export BERTH_ROOT_ACCESS_KEY_ID="AKIABERTHBENCH000001"
export BERTH_ROOT_SECRET_ACCESS_KEY="berth-bench-secret-key-0000000000000000"
aws_berth() {
  AWS_ACCESS_KEY_ID="$BERTH_ROOT_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$BERTH_ROOT_SECRET_ACCESS_KEY" \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER="" \
    "$AWS" --endpoint-url "$SERVER_URL" --region us-east-1 "$@"
}
start_etcd() { # a one-member etcd for berth-s3-etcd; sets ETCD_URL
  local dir="$STORE_DIR/etcd" client peer i
  mkdir -p "$dir"
  client=$(free_port); peer=$(free_port)
  etcd --name bench --data-dir "$dir" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$RUN/logs/etcd.$ROUND.log" 2>&1 &
  ETCD_PID=$!
  PIDS+=("$ETCD_PID")
  ETCD_URL="http://127.0.0.1:$client"
  for i in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$client") 2>/dev/null && return 0
    sleep 0.1
  done
  die "etcd did not listen"
}
start_berth() { # STORAGE: fs, s3 or s3-etcd
  local dir="$STORE_DIR" i logf="$RUN/logs/$SERVER.$ROUND.log"
  local extra=()
  mkdir -p "$dir"
  if [ "$1" != fs ]; then
    make_bucket "$SERVER-$ROUND"
    extra=(--blobs "s3://$SERVER-$ROUND/berth" --s3-endpoint "$MOTO_URL" --s3-region us-east-1)
  fi
  if [ "$1" = s3-etcd ]; then
    start_etcd
    extra+=(--store "etcd://${ETCD_URL#http://}")
  fi
  BERTH_S3_ACCESS_KEY_ID=$S3_KEY BERTH_S3_SECRET_ACCESS_KEY=$S3_SECRET \
    "$BERTH_BIN" server --data-dir "$dir" --listen 127.0.0.1:0 "${extra[@]}" >"$logf" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_URL=""
  for i in $(seq 1 300); do
    SERVER_URL=$(sed -n 's/.*berth listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$logf" | head -1)
    [ -n "$SERVER_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logf" >&2; die "berth exited"; }
    sleep 0.1
  done
  [ -n "$SERVER_URL" ] || die "berth did not print its listening address"
  wait_http "$SERVER_URL/health" "$SERVER_PID" "$logf"
  local repo
  for repo in bench/big bench/mid bench/small; do
    aws_berth ecr create-repository --repository-name "$repo" >/dev/null
  done
  PASSWORD=$(aws_berth ecr get-login-password)
}
start_server() {
  case "$SERVER" in
    berth) start_berth fs ;;
    berth-s3) start_berth s3 ;;
    berth-s3-etcd) start_berth s3-etcd ;;
    reference) start_reference fs ;;
    reference-s3) start_reference s3 ;;
  esac
}

# ---------------------------------------------------------------- scenarios
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
client() { REGISTRY_PASSWORD="$PASSWORD" python3 "$CLIENT" "$@" --url "$SERVER_URL"; }
record() {
  python3 - "$SERVER" "$ROUND" "$@" >>"$RESULTS" <<'EOF'
import json, sys
server, rnd, scenario, payload = sys.argv[1:5]
d = json.loads(payload)
d.update(server=server, round=int(rnd), scenario=scenario)
print(json.dumps(d))
EOF
  log "  $(printf '%-13s %-16s' "$SERVER" "$1") $2"
}
measure() {
  local scen="$1" out err="$RUN/logs/client.err" cpu0 cpu1 moto0 moto1
  shift
  cpu0=$(proc_cpu "$SERVER_PID"); moto0=$(proc_cpu "$MOTO_PID")
  if out=$(client "$@" 2>"$err"); then
    cpu1=$(proc_cpu "$SERVER_PID"); moto1=$(proc_cpu "$MOTO_PID")
    record "$scen" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["server_cpu_s"]=float(sys.argv[2]); d["moto_cpu_s"]=float(sys.argv[3]); print(json.dumps(d))' \
      "$out" "$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')" \
      "$(awk -v a="$moto0" -v b="$moto1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')")"
  else
    record "$scen" "$(python3 -c 'import json,sys; print(json.dumps({"failed": 1, "error": sys.argv[1][-400:]}))' "$(tail -c 2000 "$err")")"
  fi
}
sc_push() { measure push_256m push-big --name bench/big --file "$DATA/big.bin" --digest "$BIG_D" --tag big; }
sc_push_chunked() {
  measure push_256m_chunked push-big --name bench/big --file "$DATA/big2.bin" --digest "$BIG2_D" \
    --tag chunked --chunk-mib 64
}
sc_pull() { measure pull_256m pull --name bench/big --tag big; }
sc_push_mid() { measure push_64m push-big --name bench/mid --file "$DATA/mid.bin" --digest "$MID_D" --tag mid; }
sc_pull_many() { measure pull_64m_x10 pull-many --name bench/mid --tag mid -n 10; }
sc_manifests() { measure manifests_200 manifests --name bench/small -n 200 --concurrency 1; }
SCENARIOS=(push push_chunked pull push_mid pull_many manifests)

SERVERS=(berth berth-s3)
if command -v etcd >/dev/null; then SERVERS+=(berth-s3-etcd); else log "etcd is not installed: no berth-s3-etcd"; fi
[ -n "$REFERENCE" ] && SERVERS+=(reference reference-s3)
declare -A S_PID S_URL S_PW
: >"$RESULTS"
T0=$(date +%s)
for ROUND in $(seq 1 "$ROUNDS"); do
  order=("${SERVERS[@]}")
  if [ $((ROUND % 2)) = 0 ]; then
    order=(); for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
  fi
  start_moto
  for SERVER in "${order[@]}"; do
    STORE_DIR="$RUN/storage/$SERVER.$ROUND"
    start_server
    S_PID[$SERVER]=$SERVER_PID; S_URL[$SERVER]=$SERVER_URL; S_PW[$SERVER]=$PASSWORD
    log "round $ROUND: $SERVER at $SERVER_URL (pid $SERVER_PID)"
  done
  for sc in "${SCENARIOS[@]}"; do
    for SERVER in "${order[@]}"; do
      SERVER_PID=${S_PID[$SERVER]}; SERVER_URL=${S_URL[$SERVER]}; PASSWORD=${S_PW[$SERVER]}
      "sc_$sc"
      case "$sc" in push*) sync ;; esac
    done
  done
  for SERVER in "${order[@]}"; do stop_pid "${S_PID[$SERVER]}"; done
  if [ -n "${ETCD_PID:-}" ]; then stop_pid "$ETCD_PID"; ETCD_PID=""; fi
  stop_pid "$MOTO_PID"
  rm -rf "$RUN/storage"/*
done
log "done in $(( $(date +%s) - T0 )) s; raw results in $RESULTS"

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
  echo "moto: $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'); reference: $([ -n "$REF_BIN" ] && "$REF_BIN" --version 2>/dev/null || echo n/a)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); rounds: $ROUNDS (median)"
  echo
  python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict
vals, failed = defaultdict(list), defaultdict(int)
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("failed"):
        failed[(d["server"], d["scenario"])] += 1
        continue
    for k, v in d.items():
        if isinstance(v, (int, float)) and k != "round":
            vals[(d["server"], d["scenario"], k)].append(v)
def med(s, sc, f):
    v = vals.get((s, sc, f))
    return statistics.median(v) if v else None
rows = [("push_256m", "mb_s", "push 256 MiB image, monolithic", "MB/s"),
        ("push_256m_chunked", "mb_s", "push 256 MiB image, chunked (64 MiB PATCH)", "MB/s"),
        ("pull_256m", "mb_s", "pull 256 MiB image", "MB/s"),
        ("push_64m", "mb_s", "push 64 MiB image", "MB/s"),
        ("pull_64m_x10", "mb_s", "10 concurrent pulls of a 64 MiB image, aggregate", "MB/s"),
        ("manifests_200", "per_s", "200 small manifests, sequential", "manifests/s")]
def f(x):
    return "n/a" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.3g}")
def r(a, b):
    return "n/a" if not a or not b else f"{a / b:.2f}×"
print("| scenario | unit | Berth fs | Berth S3 | S3/fs | reference fs | reference S3 | S3/fs | Berth S3 / reference S3 |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
for sc, field, label, unit in rows:
    b, bs, rf, rs = (med(s, sc, field) for s in ("berth", "berth-s3", "reference", "reference-s3"))
    print(f"| {label} | {unit} | {f(b)} | {f(bs)} | {r(bs, b)} | {f(rf)} | {f(rs)} | {r(rs, rf)} | {r(bs, rs)} |")
print("\nCPU seconds per scenario (median): the server, and moto_server behind the S3 ones.\n")
print("| scenario | Berth fs | Berth S3 (+ moto) | reference fs | reference S3 (+ moto) |")
print("|---|--:|--:|--:|--:|")
for sc, _, label, _ in rows:
    c = lambda s: f(med(s, sc, "server_cpu_s"))
    m = lambda s: f(med(s, sc, "moto_cpu_s"))
    print(f"| {label} | {c('berth')} | {c('berth-s3')} (+ {m('berth-s3')}) | {c('reference')} | {c('reference-s3')} (+ {m('reference-s3')}) |")
print("\nBerth on S3: uploads staged in the bucket (etcd store: any replica continues them) vs on the replica's disk (embedded store).\n")
print("| scenario | unit | staged locally | staged in the bucket | bucket/local | server CPU s local | bucket | moto CPU s local | bucket |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
for sc, field, label, unit in rows:
    a, e = med("berth-s3", sc, field), med("berth-s3-etcd", sc, field)
    c = lambda s, k: f(med(s, sc, k))
    print(f"| {label} | {unit} | {f(a)} | {f(e)} | {r(e, a)} | {c('berth-s3', 'server_cpu_s')} | {c('berth-s3-etcd', 'server_cpu_s')} | {c('berth-s3', 'moto_cpu_s')} | {c('berth-s3-etcd', 'moto_cpu_s')} |")
for (s, sc), n in sorted(failed.items()):
    print(f"\n{s} {sc}: failed {n}×")
EOF
} | tee "$RUN/report.md"
