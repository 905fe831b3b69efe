#!/usr/bin/env bash
# The recipe of docs/replicas.md on one machine, on loopback ports: three etcd members
# (Debian's etcd-server), an S3-compatible object store (moto_server, from PyPI), three
# `berth server` replicas on them and two `berth agent`s that know all three replicas.
# Prints the endpoints; Ctrl-C stops everything. State lives in $WORK (default
# target/replicas), kept across runs; `rm -rf target/replicas` starts afresh.
#
# Usage: scripts/replicas.sh
#   env BERTH_BIN   berth binary (default target/release/berth, built when missing)
#   env BASE_PORT   first of the ports used (default 24000): etcd 24000-24005, S3 24010,
#                   replicas 24020-24022
#   env AGENTS      berth agents to start (default 2; `docker` runtime; 0 for none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="${WORK:-$ROOT/target/replicas}"
BASE="${BASE_PORT:-24000}"
AGENTS="${AGENTS:-2}"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
VENV="$ROOT/target/venv"
mkdir -p "$WORK"

log() { printf '[replicas] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server)"
if [ ! -x "$VENV/bin/moto_server" ]; then
    log "installing moto[server] into $VENV"
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' awscli
fi
if [ ! -x "$BERTH_BIN" ]; then
    log "building berth (release)"
    cargo build --release -p berth
fi

PIDS=()
cleanup() {
    log "stopping"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# 1. etcd: three members.
cluster=""
for i in 0 1 2; do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((BASE + 3 + i))"
done
endpoints=""
for i in 0 1 2; do
    client=$((BASE + i)) peer=$((BASE + 3 + i))
    etcd --name "m$i" --data-dir "$WORK/etcd-m$i" \
        --listen-client-urls "http://127.0.0.1:$client" \
        --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --initial-cluster-token berth-replicas \
        --max-txn-ops 10000 --max-request-bytes 10485760 \
        --log-level warn --logger zap >"$WORK/etcd-m$i.log" 2>&1 &
    PIDS+=($!)
    endpoints+="${endpoints:+,}127.0.0.1:$client"
done
log "etcd members on $endpoints"

# 2. The object store.
S3_PORT=$((BASE + 10))
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/s3.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$S3_PORT/" >/dev/null && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
env -u AWS_CA_BUNDLE "$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$S3_PORT" \
    s3api create-bucket --bucket berth >/dev/null 2>&1 || true
export BERTH_S3_ACCESS_KEY_ID=test BERTH_S3_SECRET_ACCESS_KEY=test
log "object store (moto) on http://127.0.0.1:$S3_PORT, bucket berth"

# 3. Three replicas, one root credential.
if [ ! -f "$WORK/root-secret" ]; then
    head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40 >"$WORK/root-secret"
fi
export BERTH_ROOT_ACCESS_KEY_ID=AKIABERTHREPLICAS001
BERTH_ROOT_SECRET_ACCESS_KEY="$(cat "$WORK/root-secret")"
export BERTH_ROOT_SECRET_ACCESS_KEY
replicas=""
for i in 0 1 2; do
    port=$((BASE + 20 + i))
    "$BERTH_BIN" server --data-dir "$WORK/replica-$i" --listen "127.0.0.1:$port" \
        --store "etcd://$endpoints" \
        --blobs s3://berth/registry --s3-endpoint "http://127.0.0.1:$S3_PORT" \
        >"$WORK/replica-$i.log" 2>&1 &
    PIDS+=($!)
    replicas+="${replicas:+,}http://127.0.0.1:$port"
done
for i in 0 1 2; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$((BASE + 20 + i))/health" >/dev/null && break
        sleep 0.2
    done
done
log "replicas: $replicas (logs in $WORK/replica-N.log)"

# 4. Agents that know every replica.
for i in $(seq 1 "$AGENTS"); do
    AWS_ACCESS_KEY_ID=$BERTH_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$BERTH_ROOT_SECRET_ACCESS_KEY \
        "$BERTH_BIN" agent --endpoint "$replicas" --cluster default \
        --data-dir "$WORK/agent-$i" >"$WORK/agent-$i.log" 2>&1 &
    PIDS+=($!)
done

# The leader key is `berth/leader` in the store, under the store's prefix `berth/` in etcd.
leader=""
for _ in $(seq 50); do
    leader="$(etcdctl --endpoints "$endpoints" get berth/berth/leader --print-value-only 2>/dev/null || true)"
    [ -n "$leader" ] && break
    sleep 0.2
done
cat <<EOF

Three replicas on one etcd; the leader now: ${leader:-<electing>}
  export AWS_ACCESS_KEY_ID=$BERTH_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$BERTH_ROOT_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url http://127.0.0.1:$((BASE + 20)) ecs list-container-instances
  aws --endpoint-url http://127.0.0.1:$((BASE + 21)) ecs describe-clusters
  etcdctl --endpoints $endpoints get berth/berth/leader --print-value-only   # who leads
Kill the leader's process and watch another take over. Ctrl-C stops everything.
EOF
wait
