#!/usr/bin/env bash
# berth agent: launch latency, density, scale; the service scheduler: recovery, rollout. See
# BENCHMARKS.md, sections "Agent: launch latency, density, scale", "Fargate launch latency"
# "Service scheduler: recovery and rollout", "Service throttle: the storm", "Launch latency:
# the official ECS agent vs berth agent" and "Launch latency with a task role and 10 secrets".
#
# Usage: bench/agent/run.sh [launch|official|secrets|fargate|density|scale|recovery|rollout|storm|all]  (default all)
#   env TASKS       launch, fargate: tasks one after another (default 50; WARMUP=3 more first,
#                   not counted). fargate: on `berth up --with-instance`, FARGATE tasks on the
#                   built-in pool beside EC2 tasks on the built-in instance, alternating
#   official        one server, two clusters: the launch mode's task on a `berth agent` and on
#                   the official Amazon ECS agent, TASKS rounds (+WARMUP) alternating, order
#                   rotating. OFFICIAL_AGENT: its binary (default target/amazon-ecs-agent,
#                   unpacked from ../shared/tools/amazon-ecs-agent-*.gz if absent);
#                   OFFICIAL_LOGLEVEL its ECS_LOGLEVEL (default debug, as the e2e tests run
#                   it; the log is kept as target/bench-agent/official-ecs-agent.log);
#                   OFFICIAL_ENV more NAME=VALUE settings for it, space-separated. Its
#                   introspection port 51678 is one per host: first waits (up to 30 min) until
#                   nothing has listened on it for 10 s (other sessions' tests use it)
#   secrets         one server, one `berth agent`: the launch mode's task (a) plain and (b) with
#                   taskRoleArn, executionRoleArn (AmazonECSTaskExecutionRolePolicy + inline
#                   ssm:GetParameters, kms:Decrypt) and SECRETS secrets (default 10, SSM
#                   SecureString parameters), TASKS rounds (+WARMUP) alternating, order
#                   rotating; the ratio of medians b/a against issue 19's 1.1x
#   env KILLS       recovery: containers of a service's tasks killed one after another
#                   (default 20; WARMUP more first, not counted), each beside a `docker run -d`;
#                   SERVICE_TASKS the service's desired count (default 3)
#   env ROLLOUTS    rollout (a SIMULATION): UpdateServices one after another (default 3) of a
#                   service of ROLLOUT_TASKS tasks (default 100; maximumPercent ROLLOUT_MAX
#                   (default 200), minimumHealthyPercent 100) on ROLLOUT_AGENTS simulated agents
#                   (default 10); ROLLOUT_RAMP N > 0: create the service with N tasks and raise
#                   its desired count by N at a time, each once steady (default 0: at once);
#                   ROLLOUT_TIMEOUT seconds allowed for each wait (default 120)
#   env STORM_SERVICES storm (a SIMULATION): services whose tasks all fail at once (default 50)
#                   on STORM_AGENTS simulated agents (default 5), for STORM_SECONDS (default
#                   600) after STORM_IDLE seconds (default 60) of the same services healthy
#   env POLL_MS     launch: DescribeTasks poll interval in ms (default 10)
#   env DENSITY     density: tasks on the one agent (default 200)
#   env IDLE        density: seconds of the idle window measured (default 60)
#   env AGENTS      scale: simulated agents (default 200)
#   env SCALE_TASKS scale: tasks (default 10000), COUNT per RunTask (default 10),
#                   CLIENTS concurrent RunTask threads (default 8), PLACEMENT spread (default:
#                   spread(instanceId) in every RunTask) or default (no strategy sent),
#                   SCALE_IDLE seconds of steady state measured after (default 60),
#                   SCALE_CONTROL 1 (default): then the same RunTasks on a fresh server with
#                   as many instances registered through the API and no agent
#   env QUIET       N > 0: before each benchmark, wait (up to 20 min) until the 1-minute load
#                   average is below N (others share this machine); default 0, no wait
#   env BUILD       0: do not run `cargo build --release -p berth` first (default 1)
#   env PERF        1 (diagnosis, slows the run): perf profiles of the server and one agent
#                   during scale (target/bench-agent/scale.{server,agent}.perf.txt), of the
#                   server in the steady-state window (scale.idle.perf.txt), and counts of
#                   the server's and one agent's fsync calls (scale.{server,agent}.fsync.txt)
#   env REV         build this git revision instead of the working tree (git archive into
#                   target/bench-agent/src-REV, own target dir), e.g. REV=HEAD
#
# Each benchmark gets its own `berth server --listen 127.0.0.1:0` on a fresh temporary data
# dir, its own cluster and agent(s) (`berth agent`, data dirs in the same temporary dir),
# and everything is removed on exit, Ctrl-C included: agents and the server (by pid), every
# container of the benchmark's clusters (by the agent's com.amazonaws.ecs.cluster label)
# and of `docker run` (label berth-bench-agent=RUN), the image tags, the temporary dir.
# The image is built once, locally, with nothing pulled: FROM scratch + Debian's static
# busybox (apt-get install -y busybox-static). Results: target/bench-agent/*.json; the
# tables are printed on stderr. Setup (build, push, registration) is never timed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WHAT="${1:-all}"
case "$WHAT" in launch|official|secrets|fargate|density|scale|recovery|rollout|storm|all) ;; -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
  *) echo "usage: $0 [launch|official|secrets|fargate|density|scale|recovery|rollout|storm|all]" >&2; exit 2 ;; esac
want() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }

TASKS="${TASKS:-50}"
WARMUP="${WARMUP:-3}"
SECRETS="${SECRETS:-10}"
POLL_MS="${POLL_MS:-10}"
DENSITY="${DENSITY:-200}"
IDLE="${IDLE:-60}"
AGENTS="${AGENTS:-200}"
SCALE_TASKS="${SCALE_TASKS:-10000}"
COUNT="${COUNT:-10}"
CLIENTS="${CLIENTS:-8}"
PLACEMENT="${PLACEMENT:-spread}"
SCALE_IDLE="${SCALE_IDLE:-60}"
SCALE_CONTROL="${SCALE_CONTROL:-1}"
KILLS="${KILLS:-20}"
SERVICE_TASKS="${SERVICE_TASKS:-3}"
ROLLOUTS="${ROLLOUTS:-3}"
ROLLOUT_TASKS="${ROLLOUT_TASKS:-100}"
ROLLOUT_AGENTS="${ROLLOUT_AGENTS:-10}"
ROLLOUT_MAX="${ROLLOUT_MAX:-200}"
ROLLOUT_RAMP="${ROLLOUT_RAMP:-0}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-120}"
STORM_SERVICES="${STORM_SERVICES:-50}"
STORM_AGENTS="${STORM_AGENTS:-5}"
STORM_SECONDS="${STORM_SECONDS:-600}"
STORM_IDLE="${STORM_IDLE:-60}"
QUIET="${QUIET:-0}"
OFFICIAL_AGENT="${OFFICIAL_AGENT:-$ROOT/target/amazon-ecs-agent}"
OFFICIAL_LOGLEVEL="${OFFICIAL_LOGLEVEL:-debug}"
OFFICIAL_ENV="${OFFICIAL_ENV:-}"
WORK="$ROOT/target/bench-agent"
PY="${PYTHON:-python3}"
BENCH="$ROOT/bench/agent/bench.py"
RUN="$(date +%s)-$$"
export AWS_ACCESS_KEY_ID="AKIDBERTHAGENTBENCH1"
export AWS_SECRET_ACCESS_KEY="agentBenchSecret0123456789abcdefghijklmn"
export AWS_DEFAULT_REGION="us-east-1"
export BERTH_ROOT_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" BERTH_ROOT_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP="$(mktemp -d /tmp/berth-bench-agent-XXXXXX)"
export DOCKER_CONFIG="$TMP/docker-config"   # docker login never touches ~/.docker
mkdir -p "$DOCKER_CONFIG" "$WORK"
AGENT_PIDS=()
SERVER_PID=""
PHASE=""
PY_PID=""
CLUSTERS=()
IMAGES=()

stop_pids() { # PID... : TERM, up to 10 s, then KILL
  local pid i
  [ $# -gt 0 ] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 1 100); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1 && break; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}

remove_containers() { # docker rm -f every container with the label
  local ids
  ids="$(docker ps -aq --filter "label=$1" 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}

stop_phase() { # agents, server, the phase's containers
  [ -n "$PY_PID" ] && stop_pids "$PY_PID"
  PY_PID=""
  stop_pids "${AGENT_PIDS[@]}"
  AGENT_PIDS=()
  [ -n "$SERVER_PID" ] && stop_pids "$SERVER_PID"
  SERVER_PID=""
  PHASE=""
  local c
  for c in "${CLUSTERS[@]}"; do remove_containers "com.amazonaws.ecs.cluster=$c"; done
  remove_containers "berth-bench-agent=$RUN"
  remove_task_cgroups
}

remove_task_cgroups() { # the official agent's task cgroups (/ecs/TASK-ID), which it removes only at its cleanup
  local id d
  for id in $(cat "$TMP"/*-ecs-agent/agent.log* 2>/dev/null | grep -o 'cgroupPath=/ecs/[0-9a-f]*' | sort -u | cut -d/ -f3); do
    for d in /sys/fs/cgroup/*/ecs/"$id"; do [ ! -d "$d" ] || rmdir "$d" 2>/dev/null || true; done
  done
}

cleanup() {
  trap - EXIT INT TERM
  [ -z "$PHASE" ] || keep_logs "$PHASE"   # a phase cut short: its logs, for the diagnosis
  stop_phase
  [ ${#IMAGES[@]} -eq 0 ] || docker rmi -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

py() { # bench.py in the background, so a signal to this script is handled at once
  "$PY" "$BENCH" "$@" &
  PY_PID=$!
  local rc=0
  wait "$PY_PID" || rc=$?
  PY_PID=""
  return "$rc"
}

# ---------------------------------------------------------------- build, machine facts
command -v docker >/dev/null || die "docker is required"
command -v "$PY" >/dev/null || die "python3 is required"
BUSYBOX="$(command -v busybox || true)"
if [ -z "$BUSYBOX" ] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' && BUSYBOX=/bin/busybox \
    || die "a static busybox is needed: apt-get install -y busybox-static"
fi
BERTH="$WORK/berth"
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
  cp "$WORK/target/release/berth" "$BERTH"
else
  if [ "${BUILD:-1}" = 1 ]; then
    log "cargo build --release -p berth"
    cargo build --release -p berth >&2
  fi
  COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo '+uncommitted changes in crates/')"
  cp "$ROOT/target/release/berth" "$BERTH"   # a private copy: a rebuild elsewhere cannot swap it mid-run
fi
{
  echo "commit: $COMMIT"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "docker: $(docker version --format '{{.Server.Version}}') (storage $(docker info --format '{{.Driver}}'), cgroup $(docker info --format '{{.CgroupVersion}}'))"
  echo "python: $("$PY" --version 2>&1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" >&2

# The image: FROM scratch + static busybox, applets as symlinks; no RUN step, nothing pulled.
LOCAL_IMAGE="berth-bench-agent:$RUN"
CTX="$TMP/image"
mkdir -p "$CTX/rootfs/bin"
cp "$BUSYBOX" "$CTX/rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$CTX/rootfs/bin/$applet"
done
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' >"$CTX/Dockerfile"
IMAGES+=("$LOCAL_IMAGE")
docker build -q -t "$LOCAL_IMAGE" "$CTX" >/dev/null
log "built $LOCAL_IMAGE"

# ---------------------------------------------------------------- helpers per phase
wait_quiet() {
  [ "$QUIET" != 0 ] || return 0
  local i
  for i in $(seq 1 240); do
    awk -v q="$QUIET" '{exit !($1 < q)}' /proc/loadavg && break
    [ "$i" = 1 ] && log "waiting for the 1-minute load average to fall below $QUIET (now $(cut -d' ' -f1 /proc/loadavg))"
    sleep 5
  done
  log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

start_server() { # NAME [berth up ARGS...] -> ENDPOINT, SERVER_PID (`berth server`, or `berth up ARGS`)
  local name="$1" out="$TMP/$1-server.stdout"
  shift
  local command=(server)
  [ $# -gt 0 ] && command=(up "$@")
  wait_quiet
  PHASE="$name"
  "$BERTH" "${command[@]}" --data-dir "$TMP/$name-data" --listen 127.0.0.1:0 >"$out" 2>"$TMP/$name-server.stderr" &
  SERVER_PID=$!
  ENDPOINT=""
  for _ in $(seq 1 300); do
    ENDPOINT="$(sed -n 's#^berth listening on \(http://[0-9.:]*\).*#\1#p' "$out" | head -1)"
    [ -n "$ENDPOINT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "berth server exited: $(tail -5 "$TMP/$name-server.stderr")"
    sleep 0.1
  done
  [ -n "$ENDPOINT" ] || die "berth server printed no listening line"
  for _ in $(seq 1 100); do
    curl -fsS "$ENDPOINT/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  log "$name: berth server pid $SERVER_PID on $ENDPOINT"
}

push_image() { # ENDPOINT -> IMAGE (cached in Docker and in Berth's registry)
  local host="${ENDPOINT#http://}"
  IMAGE="$host/bench-agent:$RUN"
  py password --endpoint "$ENDPOINT" | docker login --username AWS --password-stdin "$host" >/dev/null
  docker tag "$LOCAL_IMAGE" "$IMAGE"
  IMAGES+=("$IMAGE")
  docker push -q "$IMAGE" >/dev/null
  log "pushed $IMAGE"
}

start_docker_agent() { # NAME CLUSTER
  "$BERTH" agent --endpoint "$ENDPOINT" --cluster "$2" --data-dir "$TMP/$1-agent" \
    --runtime docker --image-pull-behavior prefer-cached --cleanup-delay-seconds 3600 \
    >"$TMP/$1-agent.log" 2>&1 &
  AGENT_PIDS+=($!)
  AGENT_PID=$!
  log "$1: berth agent pid $AGENT_PID (docker runtime, prefer-cached)"
}

start_simulated_agents() { # NAME CLUSTER N -> AGENT_PIDS (+ $TMP/NAME-agent.pids), SPAWNED_AT
  log "$1: starting $3 agents with --runtime simulated (a SIMULATION: no containers run)"
  mkdir -p "$TMP/$1-agents"
  local zones=(a b c) i
  : >"$TMP/$1-agent.pids"
  SPAWNED_AT="$(date +%s.%N)"
  for i in $(seq 1 "$3"); do
    "$BERTH" agent --endpoint "$ENDPOINT" --cluster "$2" --data-dir "$TMP/$1-agents/$i" \
      --runtime simulated --availability-zone "us-east-1${zones[$((i % 3))]}" \
      >"$TMP/$1-agents/$i.log" 2>&1 &
    AGENT_PIDS+=($!)
    echo $! >>"$TMP/$1-agent.pids"
  done
}

docker_phase() { # NAME -> CLUSTER, ENDPOINT, IMAGE, AGENT_PID: server, image pushed, one Docker agent
  CLUSTER="bench-agent-$RUN-$1"
  CLUSTERS+=("$CLUSTER")
  start_server "$1"
  py setup --endpoint "$ENDPOINT" --cluster "$CLUSTER" --repository bench-agent
  push_image
  start_docker_agent "$1" "$CLUSTER"
}

simulated_phase() { # NAME N -> CLUSTER, ENDPOINT, AGENT_PIDS: server, N simulated agents
  CLUSTER="bench-agent-$RUN-$1"
  CLUSTERS+=("$CLUSTER")
  start_server "$1"
  py setup --endpoint "$ENDPOINT" --cluster "$CLUSTER"
  start_simulated_agents "$1" "$CLUSTER" "$2"
}

keep_logs() { # NAME: the server's and agents' logs beside the results (simulated: agent 1's tail)
  cp "$TMP/$1-server.stderr" "$WORK/$1-server.log" 2>/dev/null || true
  cp "$TMP/$1-agent.log" "$WORK/$1-agent.log" 2>/dev/null || true
  [ ! -f "$TMP/$1-ecs-agent/agent.log" ] || cp "$TMP/$1-ecs-agent/agent.log" "$WORK/$1-ecs-agent.log"
  [ ! -f "$TMP/$1-ecs-agent/agent.out" ] || cp "$TMP/$1-ecs-agent/agent.out" "$WORK/$1-ecs-agent.out"
  [ ! -f "$TMP/$1-agents/1.log" ] || tail -n 20 "$TMP/$1-agents/1.log" >"$WORK/$1-agent-1.log"
}

# ---------------------------------------------------------------- 1. launch latency
if want launch; then
  docker_phase launch
  py launch --endpoint "$ENDPOINT" --cluster "$CLUSTER" --image "$IMAGE" --tasks "$TASKS" \
    --warmup "$WARMUP" --poll-ms "$POLL_MS" --name-prefix "berth-bench-run-$RUN" \
    --label "berth-bench-agent=$RUN" --out "$WORK/launch.json"
  keep_logs launch
  stop_phase
fi

# ---------------------------------------------------------------- 1c. a task role and secrets
if want secrets; then
  docker_phase secrets
  log "load average before the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
  py secrets --endpoint "$ENDPOINT" --cluster "$CLUSTER" --image "$IMAGE" --tasks "$TASKS" \
    --warmup "$WARMUP" --poll-ms "$POLL_MS" --secrets "$SECRETS" --out "$WORK/secrets.json"
  log "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
  keep_logs secrets
  stop_phase
fi

# ---------------------------------------------------------------- 1a. the official ECS agent
port_51678_busy() { ss -ltn | grep -q ':51678 '; }

start_official_agent() { # NAME CLUSTER: the official agent, started as tests/src/official_agent.rs does
  local dir="$TMP/$1-ecs-agent" free=0 i
  # Port 51678 (its introspection server, all interfaces) is one per host, and other sessions
  # run official-agent tests here: wait until it has been free for 10 s in a row.
  for i in $(seq 1 1800); do
    if port_51678_busy; then
      free=0
      [ $((i % 60)) = 1 ] && log "$1: port 51678 is taken (another official agent on this host); waiting"
    else
      free=$((free + 1))
      [ "$free" -ge 10 ] && break
    fi
    sleep 1
  done
  [ "$free" -ge 10 ] || die "port 51678 stayed taken for 30 min"
  mkdir -p "$dir/data"
  # A clean environment (the test's env_clear, so no AWS_CA_BUNDLE: its Go SDK would exit),
  # ECS Anywhere style. prefer-cached as the berth agent's --image-pull-behavior; the stopped
  # tasks' cleanup wait as the berth agent's --cleanup-delay-seconds 3600, so no cleanup runs
  # during the timed launches.
  # shellcheck disable=SC2086 # OFFICIAL_ENV: words on purpose
  env -i PATH="$PATH" HOME="$HOME" \
    ECS_EXTERNAL=true ECS_BACKEND_HOST="$ENDPOINT" ECS_CLUSTER="$2" \
    ECS_DATADIR="$dir/data" ECS_LOGFILE="$dir/agent.log" ECS_LOGLEVEL="$OFFICIAL_LOGLEVEL" \
    ECS_IMAGE_PULL_BEHAVIOR=prefer-cached ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1h $OFFICIAL_ENV \
    AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    AWS_DEFAULT_REGION="$AWS_DEFAULT_REGION" AWS_REGION="$AWS_DEFAULT_REGION" \
    "$OFFICIAL_AGENT" </dev/null >"$dir/agent.out" 2>&1 &
  AGENT_PIDS+=($!)
  OFFICIAL_PID=$!
  log "$1: official ECS agent pid $! in $2 (ECS_LOGLEVEL=$OFFICIAL_LOGLEVEL, prefer-cached${OFFICIAL_ENV:+, $OFFICIAL_ENV})"
}

AGENT_GZ="$(ls "$ROOT"/../shared/tools/amazon-ecs-agent-*.gz 2>/dev/null | head -n 1 || true)"
if want official && [ ! -x "$OFFICIAL_AGENT" ] && [ -z "$AGENT_GZ" ]; then
  msg="no official agent: $OFFICIAL_AGENT, nor ../shared/tools/amazon-ecs-agent-*.gz"
  [ "$WHAT" = all ] || die "$msg"
  log "official: SKIPPED, $msg"
elif want official; then
  if [ ! -x "$OFFICIAL_AGENT" ]; then
    mkdir -p "$(dirname "$OFFICIAL_AGENT")"
    gunzip -c "$AGENT_GZ" >"$OFFICIAL_AGENT.tmp"
    chmod +x "$OFFICIAL_AGENT.tmp"
    mv "$OFFICIAL_AGENT.tmp" "$OFFICIAL_AGENT"
    log "unpacked $AGENT_GZ to $OFFICIAL_AGENT"
  fi
  docker_phase official   # server, image, the berth agent's cluster and agent
  OFFICIAL_CLUSTER="bench-agent-$RUN-official-ecs"
  CLUSTERS+=("$OFFICIAL_CLUSTER")
  py setup --endpoint "$ENDPOINT" --cluster "$OFFICIAL_CLUSTER"
  start_official_agent official "$OFFICIAL_CLUSTER"
  log "load average before the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
  py official --endpoint "$ENDPOINT" --cluster "$CLUSTER" --official-cluster "$OFFICIAL_CLUSTER" \
    --image "$IMAGE" --tasks "$TASKS" --warmup "$WARMUP" --poll-ms "$POLL_MS" --register-timeout 120 \
    --official-log "$TMP/official-ecs-agent/agent.log" --agent-pid "$AGENT_PID" --official-pid "$OFFICIAL_PID" \
    --server-pid "$SERVER_PID" --out "$WORK/official.json"
  log "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
  # How each agent configured its last container (HostConfig, labels), for the comparison.
  for c in "$CLUSTER:berth-agent" "$OFFICIAL_CLUSTER:ecs-agent"; do
    id="$(docker ps -aq --latest --filter "label=com.amazonaws.ecs.cluster=${c%%:*}" || true)"
    [ -z "$id" ] || docker inspect "$id" >"$WORK/official-container-${c##*:}.json" 2>/dev/null || true
  done
  keep_logs official
  stop_phase
fi

# ---------------------------------------------------------------- 1b. Fargate launch latency
if want fargate; then
  # `berth up --with-instance`: the built-in Fargate pool and an instance of `default`, both
  # this machine's Docker Engine; their containers carry the cluster labels below.
  CLUSTERS+=(default berth-fargate-pool)
  start_server fargate --with-instance --region us-east-1
  py setup --endpoint "$ENDPOINT" --cluster default --repository bench-agent
  push_image
  py fargate --endpoint "$ENDPOINT" --image "$IMAGE" --tasks "$TASKS" --warmup "$WARMUP" \
    --poll-ms "$POLL_MS" --out "$WORK/fargate.json"
  keep_logs fargate
  stop_phase
fi

# ---------------------------------------------------------------- 2. density
if want density; then
  docker_phase density
  py density --endpoint "$ENDPOINT" --cluster "$CLUSTER" --image "$IMAGE" --tasks "$DENSITY" \
    --cpu 8 --memory 32 --idle "$IDLE" --agent-pid "$AGENT_PID" --server-pid "$SERVER_PID" \
    --out "$WORK/density.json"
  keep_logs density
  log "density: removing the containers"
  stop_phase
fi

# ---------------------------------------------------------------- 3. scale (simulated)
if want scale; then
  simulated_phase scale "$AGENTS"
  PERF_PIDS=()
  if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -F 99 -g -p "$SERVER_PID" -o "$WORK/scale.server.perf.data" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
    perf record -F 99 -g -p "${AGENT_PIDS[0]}" -o "$WORK/scale.agent.perf.data" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
    # How many fsync/fdatasync calls (store commits) the server makes.
    perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$SERVER_PID" \
      -o "$WORK/scale.server.fsync.txt" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
    # And one agent (its state file: write, fsync, rename).
    perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "${AGENT_PIDS[1]}" \
      -o "$WORK/scale.agent.fsync.txt" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
  fi
  py scale --endpoint "$ENDPOINT" --cluster "$CLUSTER" --agents "$AGENTS" \
    --agent-pids "$TMP/scale-agent.pids" --spawned-at "$SPAWNED_AT" --server-pid "$SERVER_PID" --tasks "$SCALE_TASKS" \
    --count "$COUNT" --clients "$CLIENTS" --placement "$PLACEMENT" --idle "$SCALE_IDLE" --cpu 10 --memory 16 --poll-ms 100 --timeout 600 \
    $( [ "${PERF:-0}" = 1 ] && echo --perf-idle "$WORK/scale.idle.perf.data" ) --out "$WORK/scale.json"
  if [ ${#PERF_PIDS[@]} -gt 0 ]; then
    for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -f "$WORK/scale.idle.perf.data" ] && perf report -i "$WORK/scale.idle.perf.data" --children --sort symbol \
      --stdio -g none --percent-limit 1.5 2>/dev/null | grep -v '^#' | grep '%' | head -70 >"$WORK/scale.idle.perf.txt" || true
    for who in server agent; do
      perf report -i "$WORK/scale.$who.perf.data" --children --sort symbol --stdio -g none --percent-limit 1.5 2>/dev/null \
        | grep -v '^#' | grep '%' | head -70 >"$WORK/scale.$who.perf.txt" || true
    done
    log "perf profiles: $WORK/scale.{server,agent}.perf.txt"
  fi
  keep_logs scale
  stop_phase
  if [ "$SCALE_CONTROL" = 1 ]; then
    # The same RunTask calls on a fresh server whose instances are registered through the
    # API, with no agent: the RunTask phase without state reports or ACS pushes.
    start_server control
    py control --endpoint "$ENDPOINT" --cluster "bench-agent-$RUN-control" --agents "$AGENTS" \
      --server-pid "$SERVER_PID" --tasks "$SCALE_TASKS" --count "$COUNT" --clients "$CLIENTS" \
      --placement "$PLACEMENT" --cpu 10 --memory 16 --out "$WORK/scale-control.json"
    stop_phase
  fi
fi

# ---------------------------------------------------------------- 4. service recovery
if want recovery; then
  docker_phase recovery
  py recovery --endpoint "$ENDPOINT" --cluster "$CLUSTER" --image "$IMAGE" --tasks "$KILLS" \
    --warmup "$WARMUP" --service-tasks "$SERVICE_TASKS" --poll-ms 20 --name-prefix "berth-bench-run-$RUN" \
    --label "berth-bench-agent=$RUN" --out "$WORK/recovery.json"
  keep_logs recovery
  stop_phase
fi

# ---------------------------------------------------------------- 5. service rollout (simulated)
if want rollout; then
  simulated_phase rollout "$ROLLOUT_AGENTS"
  py rollout --endpoint "$ENDPOINT" --cluster "$CLUSTER" --agents "$ROLLOUT_AGENTS" \
    --service-tasks "$ROLLOUT_TASKS" --rollouts "$ROLLOUTS" --max-percent "$ROLLOUT_MAX" --min-percent 100 \
    --ramp "$ROLLOUT_RAMP" --cpu 10 --memory 16 --poll-ms 20 --check-ms 50 --pause 2 --timeout "$ROLLOUT_TIMEOUT" \
    --out "$WORK/rollout.json"
  keep_logs rollout
  stop_phase
fi

# ---------------------------------------------------------------- 6. service throttle storm (simulated)
if want storm; then
  simulated_phase storm "$STORM_AGENTS"
  py storm --endpoint "$ENDPOINT" --cluster "$CLUSTER" --agents "$STORM_AGENTS" --server-pid "$SERVER_PID" \
    --services "$STORM_SERVICES" --seconds "$STORM_SECONDS" --idle "$STORM_IDLE" --describe-ms 50 \
    --cpu 10 --memory 16 --timeout 300 --out "$WORK/storm.json"
  keep_logs storm
  stop_phase
fi
log "done; results in $WORK"
