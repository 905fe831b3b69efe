#!/usr/bin/env bash
# The task credentials endpoint (169.254.170.2) under 100 containers' requests at once. See
# BENCHMARKS.md, section "Task credentials endpoint".
#
# Usage: bench/task-credentials/run.sh
#   env TASKS       tasks with a task role (default 10), each of CONTAINERS containers
#                   (default 10): 100 containers, every one running the load generator
#                   bench/task-credentials/load.rs (std only, built by rustc, static, in a
#                   FROM scratch image; nothing pulled)
#   env PHASES      the load, NAME:SECONDS:INTERVAL_MS,... (default
#                   paced:15:100,flat-out:15:0): `paced`, each container one GET every 100 ms
#                   (1,000 requests/s in all, spread); `flat-out`, each container back to back
#                   as fast as it can (100 requests always in flight). A new connection per GET,
#                   as the SDKs' container provider makes
#   env LEAD        seconds from RunTask to the common start (default 90; every container
#                   must be up by then, or the run fails and says so)
#   env BERTH_BIN   berth binary (default target/release/berth; BUILD=1 builds it first)
#   env PERF        1: perf record the agent during the phases (target/bench-task-credentials/agent.perf.txt)
#
# One `berth server --listen 127.0.0.1:0` on a fresh temporary data dir, one `berth agent`
# (docker runtime; it sets up the NAT rules and the router on 169.254.170.2:80), one role
# ECS tasks may assume, bridge-mode tasks. Latency is measured inside the containers, from
# connect to the end of the answer: the NAT rule, the router's hop to the owning agent on
# loopback, the agent's answer. Nothing on the host polls while the load runs. Results:
# target/bench-task-credentials/result.json and a table on stderr. Everything is removed on
# exit (agent, server, containers, image tags, the temporary dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TASKS="${TASKS:-10}"
CONTAINERS="${CONTAINERS:-10}"
PHASES="${PHASES:-paced:15:100,flat-out:15:0}"
LEAD="${LEAD:-90}"
WORK="$ROOT/target/bench-task-credentials"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
AWS="${AWS:-$ROOT/target/venv/bin/aws}"
RUN="$(date +%s)-$$"
export AWS_ACCESS_KEY_ID="AKIDBERTHCREDSBENCH1"
export AWS_SECRET_ACCESS_KEY="credsBenchSecret0123456789abcdefghijklmn"
export AWS_DEFAULT_REGION="us-east-1"
export BERTH_ROOT_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" BERTH_ROOT_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP="$(mktemp -d /tmp/berth-bench-creds-XXXXXX)"
export DOCKER_CONFIG="$TMP/docker-config"
mkdir -p "$DOCKER_CONFIG" "$WORK"
SERVER_PID="" AGENT_PID="" CLUSTER="bench-creds-$RUN" IMAGES=()

stop_pid() { # TERM, up to 10 s, then KILL
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  stop_pid "$AGENT_PID"
  stop_pid "$SERVER_PID"
  local ids
  ids="$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" 2>/dev/null || true)"
  # In batches: one `docker rm -f` of 100 containers once left this host's dockerd
  # (20.10, fuse-overlayfs) hung.
  [ -z "$ids" ] || printf '%s\n' $ids | xargs -n 20 docker rm -f >/dev/null 2>&1 || true
  [ ${#IMAGES[@]} -eq 0 ] || docker rmi -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

aws_() { "$AWS" --endpoint-url "$ENDPOINT" --output json "$@"; }

# ---------------------------------------------------------------- build
[ -x "$AWS" ] || die "no aws CLI at $AWS (scripts/test.sh installs it into target/venv)"
if [ ! -x "$BERTH_BIN" ] || [ "${BUILD:-0}" = 1 ]; then
  log "cargo build --release -p berth"
  cargo build --release -p berth >&2
fi
cp "$BERTH_BIN" "$TMP/berth"   # a private copy: a rebuild elsewhere cannot swap it mid-run
BERTH="$TMP/berth"
mkdir -p "$TMP/image"
log "rustc: the load generator (static)"
rustc --edition 2024 -O -C target-feature=+crt-static bench/task-credentials/load.rs -o "$TMP/image/load"
printf 'FROM scratch\nCOPY load /load\nENTRYPOINT ["/load"]\n' >"$TMP/image/Dockerfile"
LOCAL_IMAGE="berth-bench-creds:$RUN"
IMAGES+=("$LOCAL_IMAGE")
docker build -q -t "$LOCAL_IMAGE" "$TMP/image" >/dev/null
{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+uncommitted changes in crates/')"
  echo "berth: $BERTH_BIN"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "docker: $(docker version --format '{{.Server.Version}}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" >&2

# ---------------------------------------------------------------- server, agent, image, role
"$BERTH" server --data-dir "$TMP/data" --listen 127.0.0.1:0 >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
ENDPOINT=""
for _ in $(seq 1 300); do
  ENDPOINT="$(sed -n 's#^berth listening on \(http://[0-9.:]*\).*#\1#p' "$TMP/server.out" | head -1)"
  [ -n "$ENDPOINT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "berth server exited: $(tail -5 "$TMP/server.err")"
  sleep 0.1
done
[ -n "$ENDPOINT" ] || die "berth server printed no listening line"
log "berth server pid $SERVER_PID on $ENDPOINT"
HOST="${ENDPOINT#http://}"
aws_ ecr create-repository --repository-name bench-creds >/dev/null
aws_ ecr get-login-password | docker login --username AWS --password-stdin "$HOST" >/dev/null 2>&1
IMAGE="$HOST/bench-creds:$RUN"
IMAGES+=("$IMAGE")
docker tag "$LOCAL_IMAGE" "$IMAGE"
docker push -q "$IMAGE" >/dev/null
aws_ ecs create-cluster --cluster-name "$CLUSTER" >/dev/null
"$BERTH" agent --endpoint "$ENDPOINT" --cluster "$CLUSTER" --data-dir "$TMP/agent" \
  --runtime docker --cleanup-delay-seconds 3600 >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 300); do
  [ "$(aws_ ecs list-container-instances --cluster "$CLUSTER" --query 'length(containerInstanceArns)')" = 1 ] && break
  kill -0 "$AGENT_PID" 2>/dev/null || die "berth agent exited: $(tail -5 "$TMP/agent.log")"
  sleep 0.2
done
sleep 1
grep -q 'routing the link-local endpoint' "$TMP/agent.log" \
  || die "the agent does not route 169.254.170.2 (root and iptables needed): $(tail -5 "$TMP/agent.log")"
log "berth agent pid $AGENT_PID"
ROLE_ARN="$(aws_ iam create-role --role-name "bench-creds-$RUN" --query Role.Arn --output text \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}')"

# ---------------------------------------------------------------- the run
START=$(( $(date +%s) + LEAD ))
cat >"$TMP/defs.py" <<'PY'
import json, sys
image, n, start, phases = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print(json.dumps([{
    "name": "load%d" % i, "image": image, "memory": 16, "essential": True,
    "environment": [{"name": "BENCH_START", "value": start},
                    {"name": "BENCH_PHASES", "value": phases}],
} for i in range(n)]))
PY
DEFS="$(python3 "$TMP/defs.py" "$IMAGE" "$CONTAINERS" "$START" "$PHASES")"
TD="$(aws_ ecs register-task-definition --family "bench-creds-$RUN" --network-mode bridge \
  --task-role-arn "$ROLE_ARN" --container-definitions "$DEFS" --query taskDefinition.taskDefinitionArn --output text)"
log "$TASKS tasks x $CONTAINERS containers; common start in ${LEAD}s ($(date -u -d "@$START" +%H:%M:%S)); phases $PHASES"
left=$TASKS
while [ "$left" -gt 0 ]; do
  n=$(( left > 10 ? 10 : left ))
  aws_ ecs run-task --cluster "$CLUSTER" --task-definition "$TD" --count "$n" >/dev/null
  left=$(( left - n ))
done
WANT=$(( TASKS * CONTAINERS ))
containers() { docker ps -aq --no-trunc --filter "label=com.amazonaws.ecs.cluster=$CLUSTER"; }
count_logs() { # LINE: how many containers printed it
  local id c=0
  for id in $(containers); do
    # grep reads it all (no -q): an early exit would fail the pipe (pipefail) on long logs.
    if docker logs "$id" 2>/dev/null | grep -x "$1" >/dev/null; then c=$((c + 1)); fi
  done
  echo "$c"
}
# Progress until shortly before the start; then nothing on the host but the load.
while [ "$(( $(date +%s) + 20 ))" -lt "$START" ]; do
  log "containers up: $(count_logs READY)/$WANT"
  sleep 5
done
TOTAL="$(echo "$PHASES" | tr ',' '\n' | awk -F: '{ t += $2 + 2 } END { print t }')"
wait_s() { awk -v at="$1" -v now="$(date +%s)" 'BEGIN { w = at - now; print (w > 0 ? w : 0) }'; }
agent_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT_PID/stat"; }   # utime + stime, 1/100 s
sleep "$(wait_s "$START")"
TICKS0="$(agent_ticks)"
if [ "${PERF:-0}" = 1 ]; then
  perf record -F 499 -g -p "$AGENT_PID" -o "$WORK/agent.perf.data" -- sleep "$TOTAL" >/dev/null 2>&1 || true
else
  sleep "$TOTAL"
fi
AGENT_CPU="$(awk -v a="$TICKS0" -v b="$(agent_ticks)" 'BEGIN { print (b - a) / 100 }')"
sleep 3
for _ in $(seq 1 60); do
  [ "$(count_logs DONE)" = "$WANT" ] && break
  sleep 3
done
LATE="$(count_logs LATE)"
READY="$(count_logs READY)"
[ "$LATE" = 0 ] || die "$LATE containers started after the common start: raise LEAD"
[ "$READY" = "$WANT" ] || die "only $READY/$WANT containers were up at the start: raise LEAD"
for id in $(containers); do docker logs "$id" 2>/dev/null; done >"$WORK/raw.txt"
if [ "${PERF:-0}" = 1 ]; then
  perf report -i "$WORK/agent.perf.data" --no-children --stdio 2>/dev/null | head -200 >"$WORK/agent.perf.txt" || true
fi
cat >"$TMP/report.py" <<'PY'
import json, sys
raw, out, phases, want, cpu = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
lat, err = {}, {}
for line in open(raw):
    f = line.split()
    if f[:1] == ["US"]:
        lat.setdefault(f[1], []).extend(int(x) for x in f[2:])
    elif f[:1] == ["PHASE"]:
        err[f[1]] = err.get(f[1], 0) + int(f[3])
result = {"containers": want, "phases": []}
print("%-10s %9s %6s %7s %7s %7s %7s %7s" % ("phase", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"), file=sys.stderr)
for spec in phases.split(","):
    name, seconds, interval = spec.split(":")
    xs = sorted(lat.get(name, []))
    if not xs:
        print("%s: no successful request" % name, file=sys.stderr)
        continue
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] / 1000
    row = {"phase": name, "seconds": float(seconds), "interval_ms": int(interval),
           "requests": len(xs), "errors": err.get(name, 0), "rate": len(xs) / float(seconds),
           "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": xs[-1] / 1000}
    result["phases"].append(row)
    print("%-10s %9d %6d %7.0f %7.2f %7.2f %7.2f %7.2f" % (name, row["requests"], row["errors"], row["rate"], row["p50_ms"], row["p90_ms"], row["p99_ms"], row["max_ms"]), file=sys.stderr)
total = sum(r["requests"] + r["errors"] for r in result["phases"])
result["agent_cpu_seconds"] = cpu
result["agent_cpu_us_per_request"] = cpu * 1e6 / max(total, 1)
print("agent (router + credentials handler) CPU: %.1f s over all phases, %.0f us per request" % (cpu, result["agent_cpu_us_per_request"]), file=sys.stderr)
json.dump(result, open(out, "w"), indent=2)
PY
python3 "$TMP/report.py" "$WORK/raw.txt" "$WORK/result.json" "$PHASES" "$WANT" "$AGENT_CPU"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2
log "results in $WORK/result.json"
