#!/usr/bin/env bash
# CloudWatch Logs ingest on replicas: the logs load generator against the embedded store and
# against three replicas on a three-member etcd, alternating, in one run. See BENCHMARKS.md,
# section "CloudWatch Logs ingest on replicas", and bench/logs/replicas.py for the knobs
# (ROUNDS, CLIENTS, INGEST_SECONDS, INGEST_EVENTS, BIG_EVENTS, BIG_SECONDS, CONFIGS).
#   env BUILD  0: do not build (default 1: cargo build --release -p berth and the example
#              logs-load of berth-e2e)
# Needs etcd (Debian's etcd-server) and python3. Results: target/bench-logs-replicas/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WORK="$ROOT/target/bench-logs-replicas"
mkdir -p "$WORK"
command -v etcd >/dev/null || { echo "etcd is required (apt-get install etcd-server)" >&2; exit 1; }
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release -p berth >&2
  cargo build --release -p berth-e2e --example logs-load >&2
fi
# Private copies: a rebuild elsewhere cannot swap a binary under the run.
cp "$ROOT/target/release/berth" "$WORK/berth"
cp "$ROOT/target/release/examples/logs-load" "$WORK/logs-load"
{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+uncommitted')"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cores: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" >&2
python3 "$ROOT/bench/logs/replicas.py" "$WORK"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2
