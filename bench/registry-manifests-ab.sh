#!/usr/bin/env bash
# Small-manifest pushes, two berth binaries side by side (OLD vs NEW), alternating: 500
# manifests per run with bench/regclient.py, sequential and from 8 clients, six rounds.
# See BENCHMARKS.md, "What the S3 work changed on the filesystem".
#
# Usage: OLD_BIN=/path/to/old/berth NEW_BIN=target/release/berth bench/registry-manifests-ab.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${OLD_BIN:?set OLD_BIN to the berth binary to compare against}"
NEW_BIN="${NEW_BIN:-$ROOT/target/release/berth}"
AWS="$ROOT/target/venv/bin/aws"
[ -x "$AWS" ] || { echo "no aws CLI at $AWS (scripts/test.sh installs it)" >&2; exit 1; }
export BERTH_ROOT_ACCESS_KEY_ID=AKIABERTHBENCH000001 BERTH_ROOT_SECRET_ACCESS_KEY=berth-bench-secret
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"' EXIT
aws_at() {
  AWS_ACCESS_KEY_ID=$BERTH_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$BERTH_ROOT_SECRET_ACCESS_KEY \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER="" \
    "$AWS" --endpoint-url "$1" --region us-east-1 "${@:2}"
}
start() { # NAME BIN
  mkdir -p "$W/$1"
  "$2" server --data-dir "$W/$1" --listen 127.0.0.1:0 >"$W/$1.log" 2>&1 &
  PIDS+=("$!")
  local url="" i r
  for i in $(seq 1 300); do
    url=$(sed -n 's/.*berth listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$W/$1.log" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$W/$1.log" >&2; exit 1; }
  echo "$url" >"$W/$1.url"
  for r in 1 2 3 4 5 6; do
    aws_at "$url" ecr create-repository --repository-name "seq$r" >/dev/null
    aws_at "$url" ecr create-repository --repository-name "c8-$r" >/dev/null
  done
  aws_at "$url" ecr get-login-password >"$W/$1.pw"
}
run() { # NAME REPO CONCURRENCY
  REGISTRY_PASSWORD=$(cat "$W/$1.pw") python3 "$ROOT/bench/regclient.py" manifests --name "$2" \
    -n 500 --concurrency "$3" --url "$(cat "$W/$1.url")" |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_s"]))'
}
start old "$OLD_BIN"
start new "$NEW_BIN"
echo "round server sequential/s 8-clients/s"
for i in 1 2 3 4 5 6; do
  order=(old new); [ $((i % 2)) = 0 ] && order=(new old)
  for s in "${order[@]}"; do
    echo "$i $s $(run "$s" "seq$i" 1) $(run "$s" "c8-$i" 8)"
  done
done
