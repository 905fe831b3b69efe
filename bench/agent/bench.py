#!/usr/bin/env python3
"""The measured parts of bench/agent/run.sh (see BENCHMARKS.md, "Agent: launch latency,
density, scale" and "Service scheduler: recovery and rollout"). run.sh starts and stops
every process; this program only talks to them.

Python 3 standard library only. The AWS client below signs SigV4 itself (no boto3): one
keep-alive http.client connection per thread, TCP_NODELAY, ~0.1-0.2 ms of client CPU per
call, so a 10 ms DescribeTasks poll measures Berth and not the client.

Subcommands (each prints a short table on stderr and writes JSON to --out):
  password  ECR GetAuthorizationToken: prints the registry password (for docker login).
  setup     creates the cluster and the ECR repository (idempotent).
  launch    RunTask → lastStatus RUNNING, one task at a time, beside `docker run -d`.
  official  the same launch on two clusters: `berth agent` and the official ECS agent.
  density   N tasks on one agent, then the agent's RSS and CPU over an idle window.
  scale     TASKS tasks (COUNT per RunTask, from concurrent threads) over many agents;
            time until every one is RUNNING.
  control   the same RunTasks on as many instances registered through the API, no agents:
            the RunTask phase alone, for comparison.
  recovery  a service's task whose container is killed: time until its replacement is
            RUNNING, beside `docker run -d`.
  rollout   UpdateService of a service on simulated agents: time until the new deployment
            is COMPLETED, and maximumPercent / minimumHealthyPercent checked all along.
  secrets   launch's task plain and with a task role, an execution role and 10 SSM secrets,
            alternating (launch_secrets.py).
  storm     many services whose tasks all fail at once, on simulated agents: launches
            against ECS's throttle schedule, the server's memory and CPU against idle,
            DescribeServices latency (storm.py).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ECS_TARGET = "AmazonEC2ContainerServiceV20141113"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the AWS client


class AwsError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class Client:
    """AWS JSON 1.1 over one keep-alive connection per thread, SigV4-signed."""

    def __init__(self, endpoint, access_key, secret_key, region="us-east-1"):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port, self.netloc = u.hostname, u.port or 80, u.netloc
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.local = threading.local()
        self.keys = {}
        # Calls and their latency, for the client-overhead figure.
        self.calls = 0

    def _conn(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = conn
        return conn

    def _signing_key(self, date, service):
        key = self.keys.get((date, service))
        if key is None:
            k = ("AWS4" + self.secret_key).encode()
            for part in (date, self.region, service, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            key = self.keys[(date, service)] = k
        return key

    def call(self, service, target, body):
        payload = json.dumps(body).encode()
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        ctype = "application/x-amz-json-1.1"
        canonical = (
            f"POST\n/\n\ncontent-type:{ctype}\nhost:{self.netloc}\nx-amz-date:{amz_date}\n"
            f"x-amz-target:{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n"
            + hashlib.sha256(payload).hexdigest()
        )
        scope = f"{date}/{self.region}/{service}/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signature = hmac.new(
            self._signing_key(date, service), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": ctype,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}",
        }
        for attempt in range(3):
            try:
                conn = self._conn()
                conn.request("POST", "/", payload, headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException):
                # The server closed the kept-alive connection: open another. Calls that
                # start tasks carry a clientToken, so a repeat cannot start them twice.
                self.local.conn = None
                if attempt == 2:
                    raise
        self.calls += 1
        if resp.status != 200:
            raise AwsError(resp.status, data)
        return json.loads(data) if data else {}

    def ecs(self, op, body):
        return self.call("ecs", f"{ECS_TARGET}.{op}", body)

    def ecr(self, op, body):
        return self.call("ecr", f"{ECR_TARGET}.{op}", body)


def client_from(args):
    return Client(args.endpoint, args.access_key, args.secret_key, args.region)


def list_all(ecs, op, key, body):
    out, token = [], None
    while True:
        page = ecs.ecs(op, dict(body, **({"nextToken": token} if token else {})))
        out.extend(page.get(key, []))
        token = page.get("nextToken")
        if not token:
            return out


def describe_tasks(ecs, cluster, arns):
    tasks = []
    for i in range(0, len(arns), 100):
        answer = ecs.ecs("DescribeTasks", {"cluster": cluster, "tasks": arns[i : i + 100]})
        tasks.extend(answer.get("tasks", []))
    return tasks


def register_task_definition(ecs, family, image, command, cpu, memory):
    answer = ecs.ecs(
        "RegisterTaskDefinition",
        {
            "family": family,
            "networkMode": "bridge",
            "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": image,
                    "essential": True,
                    "cpu": cpu,
                    "memory": memory,
                    "command": command,
                }
            ],
        },
    )
    return answer["taskDefinition"]["taskDefinitionArn"]


def wait_instances(ecs, cluster, n, timeout):
    """Until n container instances are ACTIVE and connected; their descriptions."""
    deadline = time.monotonic() + timeout
    while True:
        arns = list_all(ecs, "ListContainerInstances", "containerInstanceArns", {"cluster": cluster})
        described = []
        for i in range(0, len(arns), 100):
            described += ecs.ecs(
                "DescribeContainerInstances",
                {"cluster": cluster, "containerInstances": arns[i : i + 100]},
            ).get("containerInstances", [])
        ok = [d for d in described if d.get("status") == "ACTIVE" and d.get("agentConnected")]
        if len(ok) >= n:
            return ok
        if time.monotonic() > deadline:
            raise SystemExit(
                f"only {len(ok)} of {n} container instances registered and connected after {timeout} s"
            )
        time.sleep(0.5)


def cluster_counts(ecs, cluster):
    c = ecs.ecs("DescribeClusters", {"clusters": [cluster]})["clusters"][0]
    return c.get("runningTasksCount", 0), c.get("pendingTasksCount", 0)


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid):
    """utime + stime of a process, all its threads, in seconds (tick resolution)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return None


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pid_of(comm):
    """The first process whose comm is `comm` (dockerd, containerd), for reading only."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == comm:
                        return int(entry)
            except OSError:
                continue
    return None


def percentile(sorted_values, p):
    """Linear interpolation between closest ranks (as bench/ecs-api/client.py)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summary(values):
    s = sorted(values)
    return {
        "n": len(s),
        "min": s[0] if s else None,
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "max": s[-1] if s else None,
        "mean": sum(s) / len(s) if s else None,
    }


def print_table(title, rows, result):
    """On stderr: title, then one line per (label, key) of result's summaries, in ms."""
    print(f"\n{title}:", file=sys.stderr)
    print(f"| {'figure':<50} | {'p50':>7} | {'p90':>7} | {'p99':>7} | {'max':>7} |", file=sys.stderr)
    f = lambda v: f"{v:7.1f}" if v is not None else "      -"  # noqa: E731
    for label, key in rows:
        s = result[key]
        print(f"| {label:<50} | {f(s['p50'])} | {f(s['p90'])} | {f(s['p99'])} | {f(s['max'])} |", file=sys.stderr)


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def write_json(path, data):
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)


# ---------------------------------------------------------------- setup


def cmd_password(args):
    ecr = client_from(args)
    token = ecr.ecr("GetAuthorizationToken", {})["authorizationData"][0]["authorizationToken"]
    print(base64.b64decode(token).decode().split(":", 1)[1])


def cmd_setup(args):
    ecs = client_from(args)
    ecs.ecs("CreateCluster", {"clusterName": args.cluster})
    if args.repository:
        try:
            ecs.ecr("CreateRepository", {"repositoryName": args.repository})
        except AwsError as e:
            if b"RepositoryAlreadyExists" not in e.body:
                raise


# ---------------------------------------------------------------- launch

# The containers' command on Docker: a `sleep` that honours SIGTERM, so stops are prompt.
SLEEP_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


class DockerEvents:
    """`docker events` (create and start of containers; `actions` to follow others too) read
    in a thread, so every launch can be split into its phases on the daemon's clock (the
    same wall clock as ours)."""

    def __init__(self, actions=("create", "start")):
        self.lock = threading.Lock()
        self.by_key = {}
        filters = [arg for action in actions for arg in ("--filter", f"event={action}")]
        self.proc = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container", *filters],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)  # the subscription is in place before the first launch

    def _read(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            attrs = (e.get("Actor") or {}).get("Attributes") or {}
            key = attrs.get("com.amazonaws.ecs.task-arn") or attrs.get("name")
            with self.lock:
                self.by_key.setdefault(key, {}).setdefault(e.get("Action") or e.get("status"), e["timeNano"])

    def times(self, key, wait=1.0, actions=("create", "start")):
        """Wall-clock ns of the first event of each action (default (create, start)) of the
        container with that task ARN or name; None for any not seen within `wait` s."""
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                got = dict(self.by_key.get(key, {}))
            if all(a in got for a in actions) or time.monotonic() > deadline:
                return tuple(got.get(a) for a in actions)
            time.sleep(0.02)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def berth_launch(ecs, cluster, task_def, poll_s, events, launch_type="EC2", network=None):
    """One RunTask → RUNNING; then StopTask → STOPPED (not timed). Figures in ms."""
    body = {
        "cluster": cluster,
        "taskDefinition": task_def,
        "count": 1,
        "launchType": launch_type,
        "clientToken": str(uuid.uuid4()),
    }
    if network:
        body["networkConfiguration"] = network
    wall0 = time.time_ns()
    t0 = time.perf_counter()
    answer = ecs.ecs("RunTask", body)
    t_ack = time.perf_counter()
    if answer.get("failures") or len(answer.get("tasks", [])) != 1:
        raise SystemExit(f"RunTask failed: {answer}")
    arn = answer["tasks"][0]["taskArn"]
    polls, poll_ms = 0, []
    deadline = t0 + 60
    while True:
        next_poll = time.perf_counter() + poll_s
        p0 = time.perf_counter()
        task = ecs.ecs("DescribeTasks", {"cluster": cluster, "tasks": [arn]})["tasks"][0]
        p1 = time.perf_counter()
        polls += 1
        poll_ms.append((p1 - p0) * 1000)
        status = task.get("lastStatus")
        if status == "RUNNING":
            t_run = p1
            break
        if status == "STOPPED":
            raise SystemExit(f"task stopped before running: {json.dumps(task)[:2000]}")
        if p1 > deadline:
            raise SystemExit(f"task not RUNNING after 60 s: {json.dumps(task)[:2000]}")
        delay = next_poll - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    create_ns, start_ns = events.times(arn)
    # Stop it (not timed) and wait until the agent reports it stopped, so launches never
    # overlap a stop.
    ecs.ecs("StopTask", {"cluster": cluster, "task": arn, "reason": "bench"})
    stop_deadline = time.monotonic() + 60
    while ecs.ecs("DescribeTasks", {"cluster": cluster, "tasks": [arn]})["tasks"][0].get("lastStatus") != "STOPPED":
        if time.monotonic() > stop_deadline:
            raise SystemExit(f"task {arn} not STOPPED 60 s after StopTask")
        time.sleep(0.05)
    ms = lambda ns: None if ns is None else (ns - wall0) / 1e6  # noqa: E731
    created, started = task.get("createdAt"), task.get("startedAt")
    return {
        "arn": arn,
        "wall0_ns": wall0,
        "running_ms": (t_run - t0) * 1000,
        # The server's own clock (ms resolution): RunTask accepted → RUNNING report applied.
        "server_ms": (started - created) * 1000 if created is not None and started is not None else None,
        "runtask_ms": (t_ack - t0) * 1000,
        "docker_create_ms": ms(create_ns),
        "docker_start_ms": ms(start_ns),
        "polls": polls,
        "poll_call_ms": poll_ms,
        "pull_started": task.get("pullStartedAt"),
        "pull_stopped": task.get("pullStoppedAt"),
    }


def docker_launch(image, name, label, command, cpu, memory, events):
    """`docker run -d` of the same image and command; then `docker inspect` until running;
    then `docker rm -f` (not timed). Figures in ms."""
    wall0 = time.time_ns()
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            "docker", "run", "-d", "--name", name, "--label", label,
            "--cpu-shares", str(cpu), "--memory", f"{memory}m",
            image, *command,
        ],
        capture_output=True,
        text=True,
    )
    t_cli = time.perf_counter()
    if out.returncode != 0:
        raise SystemExit(f"docker run failed: {out.stderr}")
    inspects = 0
    while True:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True
        )
        inspects += 1
        if state.stdout.strip() == "true":
            t_insp = time.perf_counter()
            break
        if time.perf_counter() - t0 > 60:
            raise SystemExit(f"{name} not running after 60 s: {state.stdout} {state.stderr}")
    create_ns, start_ns = events.times(name)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    ms = lambda ns: None if ns is None else (ns - wall0) / 1e6  # noqa: E731
    return {
        "name": name,
        "cli_ms": (t_cli - t0) * 1000,
        "inspect_running_ms": (t_insp - t0) * 1000,
        "inspects": inspects,
        "docker_create_ms": ms(create_ns),
        "docker_start_ms": ms(start_ns),
    }


class DockerApi(http.client.HTTPConnection):
    """Docker Engine API over its unix socket (what `berth agent` itself talks to)."""

    def __init__(self, path="/var/run/docker.sock"):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

    def call(self, method, url, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.request(method, url, data, headers)
        resp = self.getresponse()
        out = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"docker API {method} {url}: HTTP {resp.status} {out[:300]!r}")
        return json.loads(out) if out else None


def api_launch(api, image, name, label, command, cpu, memory, events):
    """Create + start through the Engine API (the floor under any agent): until start
    answers. Then removed (not timed)."""
    key, value = label.split("=", 1)
    wall0 = time.time_ns()
    t0 = time.perf_counter()
    api.call(
        "POST",
        f"/v1.41/containers/create?name={name}",
        {"Image": image, "Cmd": command, "Labels": {key: value},
         "HostConfig": {"CpuShares": cpu, "Memory": memory << 20}},
    )
    api.call("POST", f"/v1.41/containers/{name}/start")
    t_start = time.perf_counter()
    create_ns, start_ns = events.times(name)
    api.call("DELETE", f"/v1.41/containers/{name}?force=1")
    ms = lambda ns: None if ns is None else (ns - wall0) / 1e6  # noqa: E731
    return {
        "name": name,
        "api_ms": (t_start - t0) * 1000,
        "docker_create_ms": ms(create_ns),
        "docker_start_ms": ms(start_ns),
    }


def cmd_launch(args):
    ecs = client_from(args)
    command = SLEEP_COMMAND
    task_def = register_task_definition(ecs, "bench-launch", args.image, command, args.cpu, args.memory)
    instances = wait_instances(ecs, args.cluster, 1, 60)
    log(f"launch: 1 agent connected ({instances[0]['containerInstanceArn']}); task definition {task_def}")
    events = DockerEvents()
    api = DockerApi()
    berth, docker, raw = [], [], []
    try:
        total = args.warmup + args.tasks
        for i in range(total):
            runs = {
                "berth": lambda: berth_launch(ecs, args.cluster, task_def, args.poll_ms / 1000, events),
                "docker": lambda: docker_launch(
                    args.image, f"{args.name_prefix}-{i}", args.label, command, args.cpu, args.memory, events
                ),
                "api": lambda: api_launch(
                    api, args.image, f"{args.name_prefix}-api-{i}", args.label, command, args.cpu, args.memory, events
                ),
            }
            # Rotate which goes first, so drifts in background load hit all alike.
            order = ["berth", "docker", "api"]
            order = order[i % 3:] + order[: i % 3]
            got = {name: runs[name]() for name in order}
            b, d, a = got["berth"], got["docker"], got["api"]
            if i >= args.warmup:
                berth.append(b)
                docker.append(d)
                raw.append(a)
            log(
                f"{'warm-up' if i < args.warmup else 'launch'} {i + 1}/{total}: "
                f"berth RUNNING {b['running_ms']:.1f} ms (RunTask {b['runtask_ms']:.1f}, "
                f"docker create {b['docker_create_ms'] or float('nan'):.1f}, start {b['docker_start_ms'] or float('nan'):.1f}, "
                f"{b['polls']} polls); docker run -d {d['cli_ms']:.1f} ms, inspect running {d['inspect_running_ms']:.1f} ms; "
                f"Engine API create+start {a['api_ms']:.1f} ms"
            )
    finally:
        events.close()
        api.close()

    def col(rows, key):
        return [r[key] for r in rows if r.get(key) is not None]

    poll_calls = [x for b in berth for x in b["poll_call_ms"]]
    result = {
        "tasks": args.tasks,
        "warmup": args.warmup,
        "poll_ms": args.poll_ms,
        "load_average": load_average(),
        "berth_running": summary(col(berth, "running_ms")),
        "berth_runtask": summary(col(berth, "runtask_ms")),
        "berth_docker_create": summary(col(berth, "docker_create_ms")),
        "berth_docker_start": summary(col(berth, "docker_start_ms")),
        "berth_start_to_running": summary(
            [b["running_ms"] - b["docker_start_ms"] for b in berth if b["docker_start_ms"] is not None]
        ),
        "describe_call": summary(poll_calls),
        "docker_cli": summary(col(docker, "cli_ms")),
        "docker_inspect_running": summary(col(docker, "inspect_running_ms")),
        "docker_docker_create": summary(col(docker, "docker_create_ms")),
        "docker_docker_start": summary(col(docker, "docker_start_ms")),
        "api_create_start": summary(col(raw, "api_ms")),
        "api_docker_create": summary(col(raw, "docker_create_ms")),
        "api_docker_start": summary(col(raw, "docker_start_ms")),
        "samples": {
            "berth": [{k: v for k, v in b.items() if k != "poll_call_ms"} for b in berth],
            "docker": docker,
            "api": raw,
        },
    }
    result["ratio_p50_vs_docker_cli"] = result["berth_running"]["p50"] / result["docker_cli"]["p50"]
    result["ratio_p50_vs_docker_inspect"] = (
        result["berth_running"]["p50"] / result["docker_inspect_running"]["p50"]
    )
    result["ratio_p50_vs_api"] = result["berth_running"]["p50"] / result["api_create_start"]["p50"]
    write_json(args.out, result)
    rows = [
        ("Berth: RunTask sent → DescribeTasks says RUNNING", "berth_running"),
        ("  of which: RunTask answered", "berth_runtask"),
        ("  Docker 'create' event (after RunTask sent)", "berth_docker_create"),
        ("  Docker 'start' event (after RunTask sent)", "berth_docker_start"),
        ("  'start' event → RUNNING seen", "berth_start_to_running"),
        ("  one DescribeTasks poll (client-measured call)", "describe_call"),
        ("docker run -d: until the CLI returns", "docker_cli"),
        ("docker run -d: until docker inspect says running", "docker_inspect_running"),
        ("  Docker 'create' event (after docker run)", "docker_docker_create"),
        ("  Docker 'start' event (after docker run)", "docker_docker_start"),
        ("Engine API create + start (unix socket, Python)", "api_create_start"),
        ("  Docker 'create' event (after the create call)", "api_docker_create"),
        ("  Docker 'start' event (after the create call)", "api_docker_start"),
    ]
    print_table(f"launch latency, {args.tasks} tasks one after another (+{args.warmup} warm-up), ms", rows, result)
    print(
        f"ratio of medians, Berth / docker run -d (CLI returns): {result['ratio_p50_vs_docker_cli']:.2f}x; "
        f"/ (inspect says running): {result['ratio_p50_vs_docker_inspect']:.2f}x; "
        f"/ Engine API create+start: {result['ratio_p50_vs_api']:.2f}x",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- official agent


class LogFollower:
    """Follows a log file that is being written (the official agent's: its own timestamps
    are whole seconds), stamping each line with our wall clock when it is read, every 5 ms."""

    def __init__(self, path):
        self.path, self.lines, self.stop = path, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        f, partial = None, ""
        while not self.stop.is_set():
            if f is None:
                try:
                    f = open(self.path, errors="replace")
                except OSError:
                    time.sleep(0.05)
                    continue
            chunk = f.read()
            if chunk:
                now = time.time_ns()
                parts = (partial + chunk).split("\n")
                partial = parts.pop()
                self.lines.extend((now, line) for line in parts)
            else:
                time.sleep(0.005)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)


# The official agent's debug log lines that mark a launch (first of each, per task), in order.
OFFICIAL_MILESTONES = [
    ("acs_payload", 'msg="Received task payload from ACS"', 'desiredStatus="RUNNING"'),
    ("task_cgroup_creating", 'msg="Creating task cgroup', None),
    ("task_cgroup_created", 'msg="Transitioned resource"', 'status="CREATED"'),
    ("cached_image_found", 'msg="Found cached image', None),
    ("manifest_pulled_sending", 'msg="Sending state change to ECS"', 'taskStatus="MANIFEST_PULLED"'),
    ("container_waits_on_resources", 'msg="Can\'t apply state to container yet', None),
    ("manifest_pulled_submitted", 'msg="Submitted state change to ECS"', 'taskStatus="MANIFEST_PULLED"'),
    ("container_pulled", 'msg="Transitioned container"', 'nextState="PULLED"'),
    ("creating", 'msg="Creating container"', None),
    ("created", 'msg="Created docker container for task"', None),
    ("starting", 'msg="Starting container"', None),
    ("started", 'msg="Started container"', None),
    ("running_sending", 'msg="Sending state change to ECS"', 'taskStatus="RUNNING"'),
    ("running_submitted", 'msg="Submitted state change to ECS"', 'taskStatus="RUNNING"'),
]


def go_duration_ms(text):
    """elapsed=1.132598614s / 90.165436ms / 850µs, in ms."""
    m = re.search(r"elapsed=([0-9.]+)(ms|µs|us|s)\b", text)
    if not m:
        return None
    return float(m.group(1)) * {"ms": 1, "µs": 1e-3, "us": 1e-3, "s": 1000}[m.group(2)]


def official_timeline(lines, sample):
    """ms after RunTask was sent at which each milestone's line was read, for one task; and
    the agent's own elapsed times of its create and start calls."""
    task_id = sample["arn"].rsplit("/", 1)[1]
    out = {}
    for ns, line in lines:
        if task_id not in line:
            continue
        for name, needle, extra in OFFICIAL_MILESTONES:
            if name not in out and needle in line and (extra is None or extra in line):
                out[name] = (ns - sample["wall0_ns"]) / 1e6
                if name in ("created", "started"):
                    out[f"{name}_elapsed"] = go_duration_ms(line)
    return out


def cmd_official(args):
    """The same bridge task on two clusters of one server on this host, one served by
    `berth agent`, the other by the official Amazon ECS agent; one task at a time,
    alternating, the order rotating; RunTask → RUNNING (client) and startedAt − createdAt
    (server)."""
    ecs = client_from(args)
    command = SLEEP_COMMAND
    task_def = register_task_definition(ecs, "bench-official", args.image, command, args.cpu, args.memory)
    wait_instances(ecs, args.cluster, 1, 60)
    [official] = wait_instances(ecs, args.official_cluster, 1, args.register_timeout)
    version = (official.get("versionInfo") or {}).get("agentVersion")
    log(f"official: berth agent in {args.cluster}, official agent {version} in {args.official_cluster}; {task_def}")
    events = DockerEvents()
    follower = LogFollower(args.official_log) if args.official_log else None
    got_rows = {"berth": [], "official": []}
    clusters = {"berth": args.cluster, "official": args.official_cluster}
    pids = {"berth agent": args.agent_pid, "official agent": args.official_pid, "berth server": args.server_pid,
            "dockerd": pid_of("dockerd"), "containerd": pid_of("containerd")}
    cpu0 = {}
    try:
        total = args.warmup + args.tasks
        for i in range(total):
            if i == args.warmup:
                cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
                cpu_t0 = time.monotonic()
            order = ["berth", "official"] if i % 2 == 0 else ["official", "berth"]
            got = {
                who: berth_launch(ecs, clusters[who], task_def, args.poll_ms / 1000, events) for who in order
            }
            if i >= args.warmup:
                for who in order:
                    got_rows[who].append(got[who])
            b, o = got["berth"], got["official"]
            f = lambda v: float("nan") if v is None else v  # noqa: E731
            log(
                f"{'warm-up' if i < args.warmup else 'launch'} {i + 1}/{total} ({' then '.join(order)}): "
                f"berth agent RUNNING {b['running_ms']:.1f} ms (server {f(b['server_ms']):.0f}, "
                f"docker start {f(b['docker_start_ms']):.1f}); official agent RUNNING {o['running_ms']:.1f} ms "
                f"(server {f(o['server_ms']):.0f}, docker create {f(o['docker_create_ms']):.1f}, "
                f"start {f(o['docker_start_ms']):.1f})"
            )
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
        cpu_seconds_window = time.monotonic() - cpu_t0
    finally:
        events.close()
        if follower:
            time.sleep(0.2)
            follower.close()
    if follower:
        for r in got_rows["official"]:
            r["agent_log"] = official_timeline(follower.lines, r)
    if not version:  # registered before its versionInfo was in the description: read it again
        [official] = wait_instances(ecs, args.official_cluster, 1, 10)
        version = (official.get("versionInfo") or {}).get("agentVersion")
    col = lambda rows, key: [r[key] for r in rows if r.get(key) is not None]  # noqa: E731
    result = {
        "tasks": args.tasks,
        "warmup": args.warmup,
        "poll_ms": args.poll_ms,
        "official_agent_version": version,
        "load_average": load_average(),
    }
    for who, rows in got_rows.items():
        result[f"{who}_running"] = summary(col(rows, "running_ms"))
        result[f"{who}_server"] = summary(col(rows, "server_ms"))
        result[f"{who}_runtask"] = summary(col(rows, "runtask_ms"))
        result[f"{who}_docker_create"] = summary(col(rows, "docker_create_ms"))
        result[f"{who}_docker_start"] = summary(col(rows, "docker_start_ms"))
        result[f"{who}_create_to_start"] = summary(
            [r["docker_start_ms"] - r["docker_create_ms"] for r in rows
             if r["docker_start_ms"] is not None and r["docker_create_ms"] is not None]
        )
        result[f"{who}_start_to_running"] = summary(
            [r["running_ms"] - r["docker_start_ms"] for r in rows if r["docker_start_ms"] is not None]
        )
    # CPU time (utime + stime, all threads) over the counted rounds (launches and stops of both).
    result["cpu_seconds"] = {
        name: cpu1[name] - cpu0[name] for name in cpu0 if cpu0[name] is not None and cpu1.get(name) is not None
    }
    result["cpu_window_seconds"] = cpu_seconds_window
    result["describe_call"] = summary([x for r in got_rows["berth"] + got_rows["official"] for x in r["poll_call_ms"]])
    result["samples"] = {
        who: [{k: v for k, v in r.items() if k != "poll_call_ms"} for r in rows] for who, rows in got_rows.items()
    }
    for stat in ("p50", "p90", "mean"):
        for figure in ("running", "server"):
            b, o = result[f"berth_{figure}"][stat], result[f"official_{figure}"][stat]
            result[f"ratio_{stat}_{figure}"] = o / b if b else None
    if follower:
        names = [m[0] for m in OFFICIAL_MILESTONES] + ["created_elapsed", "started_elapsed"]
        timelines = [r.get("agent_log", {}) for r in got_rows["official"]]
        result["official_log"] = {n: summary([t[n] for t in timelines if t.get(n) is not None]) for n in names}
    write_json(args.out, result)
    if follower:
        print("\nthe official agent's debug log: when each line was read, ms after RunTask was sent "
              "(its create / start calls: its own elapsed):", file=sys.stderr)
        print(f"| {'line (first for the task)':<50} | {'n':>3} | {'p50':>7} | {'p90':>7} | {'mean':>7} |", file=sys.stderr)
        for n, s in result["official_log"].items():
            if s["n"]:
                print(f"| {n:<50} | {s['n']:>3} | {s['p50']:7.1f} | {s['p90']:7.1f} | {s['mean']:7.1f} |", file=sys.stderr)
    rows = []
    for who, name in (("berth", "berth agent"), ("official", f"official agent {version}")):
        rows += [
            (f"{name}: RunTask sent → DescribeTasks RUNNING", f"{who}_running"),
            ("  server: startedAt − createdAt", f"{who}_server"),
            ("  RunTask answered", f"{who}_runtask"),
            ("  Docker 'create' event (after RunTask sent)", f"{who}_docker_create"),
            ("  Docker 'start' event (after RunTask sent)", f"{who}_docker_start"),
            ("  'create' → 'start' event", f"{who}_create_to_start"),
            ("  'start' event → RUNNING seen", f"{who}_start_to_running"),
        ]
    rows.append(("one DescribeTasks poll (client-measured call)", "describe_call"))
    print_table(f"launch latency, official agent vs berth agent, {args.tasks} rounds (+{args.warmup} warm-up), ms", rows, result)
    print(f"CPU seconds over the {args.tasks} counted rounds ({cpu_seconds_window:.0f} s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["cpu_seconds"].items()), file=sys.stderr)
    print("means, ms: " + ", ".join(f"{k} {result[k]['mean']:.1f}" for k in
                                    ("berth_running", "official_running", "berth_server", "official_server")),
          file=sys.stderr)
    print(
        "ratio official / berth: RunTask → RUNNING "
        + ", ".join(f"{stat} {result[f'ratio_{stat}_running']:.2f}x" for stat in ("p50", "p90", "mean"))
        + "; server startedAt − createdAt "
        + ", ".join(f"{stat} {result[f'ratio_{stat}_server']:.2f}x" for stat in ("p50", "p90", "mean")),
        file=sys.stderr,
    )


# ---------------------------------------------------------------- fargate


def cmd_fargate(args):
    """Fargate launch latency on `berth up --with-instance`: RunTask → RUNNING for FARGATE
    tasks (awsvpc, on the built-in pool) and EC2 tasks (bridge, on the built-in instance of
    the default cluster), alternating, one at a time, image cached."""
    ecs = client_from(args)
    command = SLEEP_COMMAND
    ec2_def = register_task_definition(ecs, "bench-ec2", args.image, command, args.cpu, args.memory)
    fargate_def = ecs.ecs(
        "RegisterTaskDefinition",
        {
            "family": "bench-fargate",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [
                {"name": "app", "image": args.image, "essential": True, "command": command}
            ],
        },
    )["taskDefinition"]["taskDefinitionArn"]
    wait_instances(ecs, "default", 1, 120)
    wait_instances(ecs, "berth-fargate-pool", 1, 120)
    network = {
        "awsvpcConfiguration": {
            "subnets": ["subnet-default"],
            "securityGroups": ["sg-default"],
            "assignPublicIp": "ENABLED",
        }
    }
    log(f"fargate: pool and instance connected; {fargate_def} / {ec2_def}")
    events = DockerEvents()
    fargate, ec2 = [], []
    try:
        total = args.warmup + args.tasks
        for i in range(total):
            runs = {
                "fargate": lambda: berth_launch(
                    ecs, "default", fargate_def, args.poll_ms / 1000, events, "FARGATE", network
                ),
                "ec2": lambda: berth_launch(ecs, "default", ec2_def, args.poll_ms / 1000, events, "EC2"),
            }
            order = ["fargate", "ec2"] if i % 2 == 0 else ["ec2", "fargate"]
            got = {name: runs[name]() for name in order}
            if i >= args.warmup:
                fargate.append(got["fargate"])
                ec2.append(got["ec2"])
            log(
                f"{'warm-up' if i < args.warmup else 'launch'} {i + 1}/{total}: "
                f"FARGATE RUNNING {got['fargate']['running_ms']:.1f} ms, EC2 RUNNING {got['ec2']['running_ms']:.1f} ms"
            )
    finally:
        events.close()
    col = lambda rows, key: [r[key] for r in rows if r.get(key) is not None]  # noqa: E731
    result = {
        "tasks": args.tasks,
        "warmup": args.warmup,
        "poll_ms": args.poll_ms,
        "load_average": load_average(),
        "fargate_running": summary(col(fargate, "running_ms")),
        "fargate_runtask": summary(col(fargate, "runtask_ms")),
        "fargate_docker_start": summary(col(fargate, "docker_start_ms")),
        "ec2_running": summary(col(ec2, "running_ms")),
        "ec2_runtask": summary(col(ec2, "runtask_ms")),
        "ec2_docker_start": summary(col(ec2, "docker_start_ms")),
        "samples": {"fargate": fargate, "ec2": ec2},
    }
    result["ratio_p50_fargate_vs_ec2"] = result["fargate_running"]["p50"] / result["ec2_running"]["p50"]
    write_json(args.out, result)
    rows = [
        ("FARGATE: RunTask sent → DescribeTasks says RUNNING", "fargate_running"),
        ("  RunTask answered", "fargate_runtask"),
        ("  Docker 'start' event (the last container)", "fargate_docker_start"),
        ("EC2: RunTask sent → DescribeTasks says RUNNING", "ec2_running"),
        ("  RunTask answered", "ec2_runtask"),
        ("  Docker 'start' event", "ec2_docker_start"),
    ]
    print_table(f"Fargate launch latency, {args.tasks} tasks of each launch type (+{args.warmup} warm-up), ms", rows, result)
    print(f"ratio of medians, FARGATE / EC2: {result['ratio_p50_fargate_vs_ec2']:.2f}x", file=sys.stderr)


# ---------------------------------------------------------------- density


def cmd_density(args):
    ecs = client_from(args)
    command = SLEEP_COMMAND
    task_def = register_task_definition(ecs, "bench-density", args.image, command, args.cpu, args.memory)
    [instance] = wait_instances(ecs, args.cluster, 1, 60)
    registered = {r["name"]: r.get("integerValue") for r in instance["registeredResources"] if r["name"] in ("CPU", "MEMORY")}
    need = {"CPU": args.tasks * args.cpu, "MEMORY": args.tasks * args.memory}
    log(f"density: instance registered with {registered}; {args.tasks} tasks need {need}")
    if any(need[k] > (registered.get(k) or 0) for k in need):
        raise SystemExit("the instance cannot hold the tasks: lower --cpu / --memory")
    rss_before = status_kib(args.agent_pid, "VmRSS")

    t0 = time.monotonic()
    arns = []
    for i in range(0, args.tasks, 10):
        n = min(10, args.tasks - i)
        answer = ecs.ecs(
            "RunTask",
            {"cluster": args.cluster, "taskDefinition": task_def, "count": n,
             "launchType": "EC2", "clientToken": str(uuid.uuid4())},
        )
        if answer.get("failures") or len(answer.get("tasks", [])) != n:
            raise SystemExit(f"RunTask failed: {answer}")
        arns += [t["taskArn"] for t in answer["tasks"]]
    while True:
        running, pending = cluster_counts(ecs, args.cluster)
        if running >= args.tasks:
            break
        if time.monotonic() - t0 > 900:
            raise SystemExit(f"only {running} of {args.tasks} RUNNING after 900 s ({pending} pending)")
        time.sleep(0.25)
    all_running_s = time.monotonic() - t0
    tasks = describe_tasks(ecs, args.cluster, arns)
    not_running = [t["taskArn"] for t in tasks if t.get("lastStatus") != "RUNNING"]
    if len(tasks) != args.tasks or not_running:
        raise SystemExit(f"DescribeTasks: {len(tasks)} tasks, not RUNNING: {not_running[:5]}")
    log(f"density: all {args.tasks} RUNNING after {all_running_s:.1f} s; settling {args.settle} s")
    time.sleep(args.settle)

    procs = {"agent": args.agent_pid, "server": args.server_pid,
             "dockerd": pid_of("dockerd"), "containerd": pid_of("containerd")}
    cpu0 = {k: cpu_seconds(p) for k, p in procs.items() if p}
    rss_samples = {k: [] for k in procs}
    w0 = time.monotonic()
    while time.monotonic() - w0 < args.idle:
        for k, p in procs.items():
            if p:
                rss_samples[k].append(status_kib(p, "VmRSS"))
        time.sleep(1)
    wall = time.monotonic() - w0
    cpu1 = {k: cpu_seconds(p) for k, p in procs.items() if p}

    tasks = describe_tasks(ecs, args.cluster, arns)
    still = sum(1 for t in tasks if t.get("lastStatus") == "RUNNING")
    docker_running = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.amazonaws.ecs.cluster={args.cluster}"],
        capture_output=True, text=True,
    ).stdout.split()
    threads = len(os.listdir(f"/proc/{args.agent_pid}/task"))
    result = {
        "tasks": args.tasks,
        "registered": registered,
        "time_to_all_running_s": all_running_s,
        "idle_window_s": wall,
        "tasks_running_after": still,
        "docker_containers_running": len(docker_running),
        "agent_rss_before_tasks_kib": rss_before,
        "agent_threads": threads,
        "load_average": load_average(),
    }
    for k, p in procs.items():
        if not p:
            continue
        cpu = cpu1[k] - cpu0[k]
        result[k] = {
            "pid": p,
            "cpu_s": cpu,
            "cpu_pct_of_core": 100 * cpu / wall,

            "rss_kib_end": status_kib(p, "VmRSS"),
            "rss_kib_max_sampled": max(x for x in rss_samples[k] if x is not None),
            "hwm_kib": status_kib(p, "VmHWM"),
            "pss_kib": pss_kib(p),
        }
    write_json(args.out, result)
    print(f"\ndensity: {args.tasks} tasks on one agent; {still} RUNNING after the window "
          f"({len(docker_running)} containers running in Docker); all RUNNING {all_running_s:.1f} s after the first RunTask",
          file=sys.stderr)
    print(f"agent VmRSS before any task: {rss_before / 1024:.1f} MiB; agent threads: {threads}", file=sys.stderr)
    print(f"| process | CPU over {wall:.0f} s idle (utime+stime, 10 ms ticks) | % of one core | VmRSS end MiB | max sampled | VmHWM MiB | PSS MiB |", file=sys.stderr)
    for k in procs:
        if k in result:
            r = result[k]
            print(f"| {k} | {r['cpu_s']:.2f} s | {r['cpu_pct_of_core']:.2f} % | {r['rss_kib_end'] / 1024:.1f} | "
                  f"{r['rss_kib_max_sampled'] / 1024:.1f} | {r['hwm_kib'] / 1024:.1f} | {(r['pss_kib'] or 0) / 1024:.1f} |",
                  file=sys.stderr)


# ---------------------------------------------------------------- scale


class RunTasks:
    """`calls` RunTasks of `count` tasks from concurrent threads, one keep-alive connection
    each. 5xx answers are retried with the same clientToken and a growing pause, as the AWS
    SDKs retry them; every error answer is counted and reported."""

    def __init__(self, ecs, cluster, task_def, calls, count, placement, retries):
        self.ecs, self.cluster, self.task_def = ecs, cluster, task_def
        self.calls, self.count, self.retries = calls, count, retries
        # spread(instanceId): every instance gets its share (with no strategy Berth fills
        # the instances in order, so a few agents would take every task); "default" sends
        # no strategy.
        self.strategy = (
            {"placementStrategy": [{"type": "spread", "field": "instanceId"}]}
            if placement == "spread"
            else {}
        )
        self.lock = threading.Lock()
        self.next_call = 0
        self.done = 0
        self.arns, self.failures, self.errors, self.call_ms, self.gave_up = [], [], [], [], []

    def _worker(self):
        while True:
            with self.lock:
                if self.next_call >= self.calls:
                    return
                self.next_call += 1
            body = dict(
                {"cluster": self.cluster, "taskDefinition": self.task_def, "count": self.count,
                 "launchType": "EC2", "clientToken": str(uuid.uuid4())},
                **self.strategy,
            )
            c0 = time.perf_counter()
            answer = None
            for attempt in range(self.retries + 1):
                try:
                    answer = self.ecs.ecs("RunTask", body)
                    break
                except AwsError as e:
                    with self.lock:
                        self.errors.append(str(e))
                    if e.status < 500 or attempt == self.retries:
                        break
                    time.sleep(min(1.0, 0.05 * 2**attempt))
            with self.lock:
                self.done += 1
                if answer is None:
                    self.gave_up.append(body["clientToken"])
                    continue
                self.call_ms.append((time.perf_counter() - c0) * 1000)
                self.arns.extend(t["taskArn"] for t in answer.get("tasks", []))
                self.failures.extend(answer.get("failures", []))

    def start(self, clients):
        threads = [threading.Thread(target=self._worker) for _ in range(clients)]
        for t in threads:
            t.start()
        return threads


def cmd_control(args):
    """The RunTask phase of `scale` alone: the same calls on a cluster of as many
    container instances registered through the API (the simulated agents' resources), with
    no agent connected, so nothing reports state and no task ever runs."""
    ecs = client_from(args)
    ecs.ecs("CreateCluster", {"clusterName": args.cluster})
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    for i in range(args.agents):
        ecs.ecs(
            "RegisterContainerInstance",
            {
                "cluster": args.cluster,
                "instanceIdentityDocument": json.dumps(
                    {"instanceId": f"i-{uuid.uuid4().hex[:17]}", "availabilityZone": zones[i % 3]}
                ),
                "totalResources": [
                    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                    {"name": "MEMORY", "type": "INTEGER", "integerValue": 7936},
                    {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
                ],
                "attributes": [{"name": "ecs.availability-zone", "value": zones[i % 3]},
                               {"name": "ecs.os-type", "value": "linux"}],
            },
        )
    task_def = register_task_definition(ecs, "bench-control", "busybox", ["sleep", "3600"], args.cpu, args.memory)
    driver = RunTasks(ecs, args.cluster, task_def, args.tasks // args.count, args.count, args.placement, args.retries)
    cpu0 = cpu_seconds(args.server_pid)
    t0 = time.monotonic()
    for t in driver.start(args.clients):
        t.join()
    wall = time.monotonic() - t0
    cpu = cpu_seconds(args.server_pid) - cpu0
    result = {
        "instances": args.agents,
        "tasks_started": len(driver.arns),
        "runtask_phase_s": wall,
        "runtask_call": summary(driver.call_ms),
        "runtask_error_answers": len(driver.errors),
        "runtask_calls_given_up": len(driver.gave_up),
        "placement_failures": len(driver.failures),
        "server_cpu_s": cpu,
    }
    write_json(args.out, result)
    c = result["runtask_call"]
    print(f"\ncontrol (no agents): {len(driver.arns)} tasks placed on {args.agents} API-registered instances by "
          f"{driver.calls} RunTask calls (count {args.count}, {args.clients} threads, placement {args.placement}) "
          f"in {wall:.2f} s; call p50 / p99 / max {c['p50'] or 0:.1f} / {c['p99'] or 0:.1f} / {c['max'] or 0:.1f} ms; "
          f"error answers {len(driver.errors)}; server CPU {cpu:.1f} s", file=sys.stderr)


def cmd_scale(args):
    ecs = client_from(args)
    with open(args.agent_pids) as f:
        agent_pids = [int(x) for x in f.read().split()]
    instances = wait_instances(ecs, args.cluster, args.agents, args.register_timeout)
    registered_s = time.time() - args.spawned_at if args.spawned_at else None
    log(f"scale: {len(instances)} simulated agents registered and connected "
        f"({registered_s or 0:.1f} s after the first was started; not timed)")
    alive = [p for p in agent_pids if os.path.exists(f"/proc/{p}")]
    task_def = register_task_definition(ecs, "bench-scale", "busybox", ["sleep", "3600"], args.cpu, args.memory)
    calls = args.tasks // args.count
    server_cpu0 = cpu_seconds(args.server_pid)
    agents_cpu0 = sum(cpu_seconds(p) or 0 for p in alive)

    driver = RunTasks(ecs, args.cluster, task_def, calls, args.count, args.placement, args.retries)
    timeline = []
    t0 = time.monotonic()
    threads = driver.start(args.clients)
    runtask_done = None
    all_running = None
    server_hwm = 0
    agents_rss_peak = 0
    last_log = 0
    while True:
        now = time.monotonic() - t0
        if runtask_done is None and not any(t.is_alive() for t in threads):
            runtask_done = now
        running, pending = cluster_counts(ecs, args.cluster)
        timeline.append((round(now, 3), running, pending))
        server_hwm = max(server_hwm, status_kib(args.server_pid, "VmHWM") or 0)
        if now - last_log >= 5:
            last_log = now
            rss = sum(status_kib(p, "VmRSS") or 0 for p in alive)
            agents_rss_peak = max(agents_rss_peak, rss)
            log(f"scale: t={now:5.1f} s running {running} pending {pending} "
                f"(RunTask calls done: {driver.done}/{calls})")
        if runtask_done is not None and running >= len(driver.arns):
            all_running = now
            break
        if now > args.timeout:
            break
        time.sleep(args.poll_ms / 1000)
    wall = time.monotonic() - t0
    server_cpu = cpu_seconds(args.server_pid) - server_cpu0
    agents_cpu = sum(cpu_seconds(p) or 0 for p in alive) - agents_cpu0
    agents_rss = sum(status_kib(p, "VmRSS") or 0 for p in alive)
    agents_pss = sum(pss_kib(p) or 0 for p in alive)
    agents_rss_peak = max(agents_rss_peak, agents_rss)

    def first_at(n):
        for t, running, _ in timeline:
            if running >= n:
                return t
        return None

    # Steady state (not part of the timed figure): every agent connected, every task
    # RUNNING, nobody calling. What do heartbeats, task manifests and the agents' own
    # loops cost?
    idle = {}
    if args.idle > 0:
        log(f"scale: idle window of {args.idle:.0f} s with all {len(driver.arns)} tasks RUNNING")
        s_cpu0, a_cpu0, i0 = cpu_seconds(args.server_pid), sum(cpu_seconds(p) or 0 for p in alive), time.monotonic()
        perf = None
        if args.perf_idle:
            # What the server does when nobody calls (PERF=1 in run.sh).
            perf = subprocess.Popen(
                ["perf", "record", "-F", "199", "--call-graph", "dwarf,16384", "-p", str(args.server_pid),
                 "-o", args.perf_idle, "--", "sleep", str(args.idle)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        time.sleep(args.idle)
        if perf:
            perf.wait()
        i_wall = time.monotonic() - i0
        s_cpu = cpu_seconds(args.server_pid) - s_cpu0
        a_cpu = sum(cpu_seconds(p) or 0 for p in alive) - a_cpu0
        idle = {
            "window_s": i_wall,
            "server_cpu_s": s_cpu,
            "server_cpu_pct_of_core": 100 * s_cpu / i_wall,
            "agents_cpu_s": a_cpu,
            "agents_cpu_pct_of_core": 100 * a_cpu / i_wall,
            "server_rss_kib": status_kib(args.server_pid, "VmRSS"),
            "agents_rss_total_kib": sum(status_kib(p, "VmRSS") or 0 for p in alive),
        }

    # Checks (not timed): every task listed RUNNING, and where they went.
    listed = list_all(ecs, "ListTasks", "taskArns", {"cluster": args.cluster, "desiredStatus": "RUNNING"})
    described = describe_tasks(ecs, args.cluster, listed)
    by_status = {}
    for t in described:
        by_status[t.get("lastStatus")] = by_status.get(t.get("lastStatus"), 0) + 1
    per_instance = [i.get("runningTasksCount", 0) for i in wait_instances(ecs, args.cluster, 0, 1)]
    started = len(driver.arns)
    arns, failures, errors, gave_up, call_ms = driver.arns, driver.failures, driver.errors, driver.gave_up, driver.call_ms
    result = {
        "simulation": True,
        "agents": args.agents,
        "agents_registered_connected_s": registered_s,
        "agents_alive": sum(1 for p in agent_pids if os.path.exists(f"/proc/{p}")),
        "tasks_requested": args.tasks,
        "tasks_started": started,
        "placement_failures": len(failures),
        "failure_reasons": sorted({f.get("reason", "") for f in failures})[:5],
        "runtask_error_answers": len(errors),
        "runtask_error_samples": sorted(set(errors))[:3],
        "runtask_calls_given_up": len(gave_up),
        "runtask_calls": calls,
        "count_per_call": args.count,
        "clients": args.clients,
        "placement": args.placement,
        "runtask_phase_s": runtask_done,
        "runtask_call": summary(call_ms),
        "all_running_s": all_running,
        "running_at_end": timeline[-1][1] if timeline else 0,
        "half_running_s": first_at(started // 2),
        "p90_running_s": first_at(int(started * 0.9)),
        "wall_s": wall,
        "server_cpu_s": server_cpu,
        "server_cpu_pct_of_core": 100 * server_cpu / wall,
        "server_hwm_kib": server_hwm,
        "server_rss_end_kib": status_kib(args.server_pid, "VmRSS"),
        "agents_cpu_s": agents_cpu,
        "agents_rss_total_kib": agents_rss,
        "agents_rss_total_peak_sampled_kib": agents_rss_peak,
        "agents_pss_total_kib": agents_pss,
        "agent_rss_mean_kib": agents_rss / max(1, len(alive)),
        "check_listed_running": len(listed),
        "check_last_status": by_status,
        "tasks_per_instance_min": min(per_instance) if per_instance else None,
        "tasks_per_instance_max": max(per_instance) if per_instance else None,
        "load_average": load_average(),
        "idle": idle,
        "timeline": timeline,
    }
    write_json(args.out, result)
    print(f"\nscale (SIMULATED runtime: no containers run): {args.agents} agents, "
          f"{started} of {args.tasks} tasks started by {calls} RunTask calls (count {args.count}, {args.clients} client threads)",
          file=sys.stderr)
    fmt = lambda v, unit="s": "not reached" if v is None else f"{v:.1f} {unit}"  # noqa: E731
    print(f"| RunTask phase (all calls answered) | {fmt(runtask_done)} |", file=sys.stderr)
    print(f"| RunTask call latency incl. retries p50 / p99 / max | {result['runtask_call']['p50'] or 0:.1f} / "
          f"{result['runtask_call']['p99'] or 0:.1f} / {result['runtask_call']['max'] or 0:.1f} ms |", file=sys.stderr)
    print(f"| half RUNNING / 90 % RUNNING | {fmt(result['half_running_s'])} / {fmt(result['p90_running_s'])} |", file=sys.stderr)
    print(f"| all {started} RUNNING (first RunTask sent → DescribeClusters runningTasksCount) | {fmt(all_running)} |", file=sys.stderr)
    print(f"| control plane CPU over the run | {server_cpu:.1f} s = {result['server_cpu_pct_of_core']:.0f} % of one core |", file=sys.stderr)
    print(f"| control plane peak RSS (VmHWM) | {server_hwm / 1024:.0f} MiB |", file=sys.stderr)
    print(f"| agents' total RSS at the end (sum of VmRSS) / PSS | {agents_rss / 1024:.0f} MiB / {agents_pss / 1024:.0f} MiB "
          f"({result['agent_rss_mean_kib'] / 1024:.1f} MiB RSS each) |", file=sys.stderr)
    print(f"| agents' total CPU over the run | {agents_cpu:.1f} s |", file=sys.stderr)
    if idle:
        print(f"| steady state, {idle['window_s']:.0f} s idle: control plane CPU / agents' total CPU | "
              f"{idle['server_cpu_pct_of_core']:.1f} % / {idle['agents_cpu_pct_of_core']:.1f} % of one core "
              f"(server VmRSS {idle['server_rss_kib'] / 1024:.0f} MiB) |", file=sys.stderr)
    print(f"check: ListTasks (desiredStatus RUNNING) {len(listed)}, lastStatus {by_status}; "
          f"tasks per instance {result['tasks_per_instance_min']}..{result['tasks_per_instance_max']}; "
          f"placement failures {len(failures)} {result['failure_reasons']}; RunTask error answers {len(errors)} "
          f"(retried; calls given up after {args.retries} retries: {len(gave_up)})",
          file=sys.stderr)


# ---------------------------------------------------------------- services


class Service:
    """One ECS service, through the API: create, update, describe, its tasks."""

    def __init__(self, ecs, cluster, name):
        self.ecs, self.cluster, self.name = ecs, cluster, name

    def create(self, task_def, desired, **extra):
        body = {"cluster": self.cluster, "serviceName": self.name, "taskDefinition": task_def,
                "desiredCount": desired, "launchType": "EC2", "clientToken": str(uuid.uuid4())}
        return self.ecs.ecs("CreateService", dict(body, **extra))["service"]

    def update(self, **fields):
        return self.ecs.ecs("UpdateService", dict({"cluster": self.cluster, "service": self.name}, **fields))["service"]

    def describe(self):
        """DescribeServices: runningCount and pendingCount come from one read of the
        cluster's tasks, so they are one consistent view (deployments[] are the scheduler's
        last round)."""
        return self.ecs.ecs("DescribeServices", {"cluster": self.cluster, "services": [self.name]})["services"][0]

    def task_arns(self, desired="RUNNING"):
        return list_all(self.ecs, "ListTasks", "taskArns",
                        {"cluster": self.cluster, "serviceName": self.name, "desiredStatus": desired})

    def tasks(self, desired="RUNNING"):
        arns = self.task_arns(desired)
        return describe_tasks(self.ecs, self.cluster, arns) if arns else []

    def wait_steady(self, timeout, poll_s=0.05):
        """Until one deployment, COMPLETED, runningCount = desiredCount, nothing pending;
        the description."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.describe()
            if service_steady(s):
                return s
            if time.monotonic() > deadline:
                raise SystemExit(f"service {self.name} not steady after {timeout} s: {service_state(s)}")
            time.sleep(poll_s)


def service_state(s):
    """For error messages: the counts, the deployments and the three latest events."""
    state = {k: s.get(k) for k in ("desiredCount", "runningCount", "pendingCount", "deployments")}
    state["latest events"] = [e.get("message") for e in s.get("events", [])[:3]]
    return json.dumps(state)[:4000]


def service_steady(s):
    deployments = s.get("deployments", [])
    return (len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED"
            and s.get("runningCount") == s.get("desiredCount") and s.get("pendingCount") == 0)


def kill_and_recover(svc, api, events, n, poll_s, timeout=60):
    """`docker kill` (the Engine API's kill: SIGKILL) of the container of the service's
    oldest RUNNING task; then ListTasks + DescribeTasks every poll_s until a task not seen
    before is RUNNING, and DescribeServices until runningCount is n again. Figures in ms
    after the kill was sent."""
    before = svc.tasks("RUNNING")
    running = sorted((t for t in before if t.get("lastStatus") == "RUNNING"), key=lambda t: t.get("startedAt") or 0)
    if len(running) != n:
        raise SystemExit(f"{len(running)} of {n} tasks RUNNING before the kill")
    victim = running[0]["taskArn"]
    container = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.amazonaws.ecs.task-arn={victim}"],
        capture_output=True, text=True,
    ).stdout.split()
    if len(container) != 1:
        raise SystemExit(f"{len(container)} running containers with the task-arn label of {victim}")
    known = {t["taskArn"] for t in before}
    wall0 = time.time_ns()
    t0 = time.perf_counter()
    api.call("POST", f"/v1.41/containers/{container[0]}/kill")
    t_victim_out = t_listed = t_new_running = None
    new_arn, polls = None, 0
    while True:
        next_poll = time.perf_counter() + poll_s
        arns = svc.task_arns("RUNNING")
        tasks = describe_tasks(svc.ecs, svc.cluster, arns) if arns else []
        now = time.perf_counter()
        polls += 1
        fresh = [t for t in tasks if t["taskArn"] not in known]
        if t_victim_out is None and victim not in arns:
            t_victim_out = now
        if t_listed is None and fresh:
            t_listed = now
        up = [t for t in fresh if t.get("lastStatus") == "RUNNING"]
        if up:
            if t_new_running is None:
                t_new_running, new_arn = now, up[0]["taskArn"]
            if svc.describe().get("runningCount") == n:
                t_done = time.perf_counter()
                break
        if now - t0 > timeout:
            raise SystemExit(f"no replacement RUNNING with runningCount {n} {timeout} s after killing {victim}")
        delay = next_poll - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    [die_ns] = events.times(victim, actions=("die",))
    create_ns, start_ns = events.times(new_arn)
    [stopped] = describe_tasks(svc.ecs, svc.cluster, [victim])
    ms = lambda t: None if t is None else (t - t0) * 1000  # noqa: E731
    ns = lambda v: None if v is None else (v - wall0) / 1e6  # noqa: E731
    return {
        "victim": victim,
        "replacement": new_arn,
        "recovered_ms": ms(t_done),
        "new_running_ms": ms(t_new_running),
        "docker_die_ms": ns(die_ns),
        "victim_out_ms": ms(t_victim_out),
        "replacement_listed_ms": ms(t_listed),
        "docker_create_ms": ns(create_ns),
        "docker_start_ms": ns(start_ns),
        "polls": polls,
        "victim_last_status": stopped.get("lastStatus"),
        "victim_stop_code": stopped.get("stopCode"),
        "victim_stopped_reason": stopped.get("stoppedReason"),
    }


def cmd_recovery(args):
    """A REPLICA service of --service-tasks tasks on one agent (Docker); --tasks times, the
    container of one of its tasks is killed and the time until the replacement is RUNNING
    measured, each beside a `docker run -d` of the same image (the reference)."""
    ecs = client_from(args)
    command = SLEEP_COMMAND
    task_def = register_task_definition(ecs, "bench-recovery", args.image, command, args.cpu, args.memory)
    wait_instances(ecs, args.cluster, 1, 60)
    svc = Service(ecs, args.cluster, "bench-recovery")
    t0 = time.monotonic()
    svc.create(task_def, args.service_tasks)
    svc.wait_steady(120)
    log(f"recovery: service of {args.service_tasks} tasks steady (deployment COMPLETED, runningCount "
        f"{args.service_tasks}) {time.monotonic() - t0:.1f} s after CreateService")
    events = DockerEvents(actions=("create", "start", "die"))
    api = DockerApi()
    kills, docker = [], []
    try:
        total = args.warmup + args.tasks
        for i in range(total):
            runs = {
                "kill": lambda: kill_and_recover(svc, api, events, args.service_tasks, args.poll_ms / 1000),
                "docker": lambda: docker_launch(
                    args.image, f"{args.name_prefix}-{i}", args.label, command, args.cpu, args.memory, events
                ),
            }
            order = ["kill", "docker"] if i % 2 == 0 else ["docker", "kill"]
            got = {name: runs[name]() for name in order}
            k, d = got["kill"], got["docker"]
            if i >= args.warmup:
                kills.append(k)
                docker.append(d)
            log(f"{'warm-up' if i < args.warmup else 'kill'} {i + 1}/{total}: replacement RUNNING and runningCount "
                f"{args.service_tasks} {k['recovered_ms']:.1f} ms after the kill (die event {k['docker_die_ms'] or float('nan'):.1f}, "
                f"victim off the RUNNING list {k['victim_out_ms'] or float('nan'):.1f}, replacement's start event "
                f"{k['docker_start_ms'] or float('nan'):.1f}; victim {k['victim_last_status']} {k['victim_stop_code']}); "
                f"docker run -d {d['cli_ms']:.1f} ms")
            # Steady again (not timed) before the next kill.
            svc.wait_steady(60)
            time.sleep(args.pause)
    finally:
        events.close()
        api.close()
    col = lambda rows, key: [r[key] for r in rows if r.get(key) is not None]  # noqa: E731
    result = {
        "kills": args.tasks,
        "warmup": args.warmup,
        "service_tasks": args.service_tasks,
        "poll_ms": args.poll_ms,
        "load_average": load_average(),
        "recovered": summary(col(kills, "recovered_ms")),
        "new_running": summary(col(kills, "new_running_ms")),
        "docker_die": summary(col(kills, "docker_die_ms")),
        "victim_out": summary(col(kills, "victim_out_ms")),
        "replacement_listed": summary(col(kills, "replacement_listed_ms")),
        "replacement_docker_create": summary(col(kills, "docker_create_ms")),
        "replacement_docker_start": summary(col(kills, "docker_start_ms")),
        "replacement_start_to_recovered": summary(
            [k["recovered_ms"] - k["docker_start_ms"] for k in kills if k["docker_start_ms"] is not None]),
        "docker_cli": summary(col(docker, "cli_ms")),
        "docker_inspect_running": summary(col(docker, "inspect_running_ms")),
        "victims_stopped": sum(1 for k in kills if k["victim_last_status"] == "STOPPED"),
        "samples": {"kills": kills, "docker": docker},
    }
    result["ratio_p50_vs_docker_cli"] = result["recovered"]["p50"] / result["docker_cli"]["p50"]
    result["ratio_p50_vs_docker_inspect"] = result["recovered"]["p50"] / result["docker_inspect_running"]["p50"]
    write_json(args.out, result)
    rows = [
        ("kill sent → replacement RUNNING, runningCount back", "recovered"),
        ("  replacement seen RUNNING in DescribeTasks", "new_running"),
        ("  Docker 'die' event of the killed container", "docker_die"),
        ("  killed task off ListTasks (desired RUNNING)", "victim_out"),
        ("  replacement first listed", "replacement_listed"),
        ("  replacement's Docker 'create' event", "replacement_docker_create"),
        ("  replacement's Docker 'start' event", "replacement_docker_start"),
        ("  'start' event → recovery seen", "replacement_start_to_recovered"),
        ("docker run -d: until the CLI returns", "docker_cli"),
        ("docker run -d: until docker inspect says running", "docker_inspect_running"),
    ]
    print_table(f"service recovery, {args.tasks} kills of one of {args.service_tasks} tasks (+{args.warmup} warm-up), "
                f"ms after the kill", rows, result)
    print(f"ratio of medians, recovery / docker run -d (CLI returns): {result['ratio_p50_vs_docker_cli']:.2f}x; "
          f"/ (inspect says running): {result['ratio_p50_vs_docker_inspect']:.2f}x; "
          f"killed tasks STOPPED: {result['victims_stopped']} of {len(kills)}", file=sys.stderr)


class TaskBounds:
    """The tasks' own view while a rollout runs, in a thread: ListTasks of the service
    (desired RUNNING and STOPPED, every page) then DescribeTasks of those not yet seen
    STOPPED, over and over. No single call sees every task at once, so the order is chosen
    to never report a false violation: the not-STOPPED count is a lower bound of the count
    when the listing ended (STOPPED is final), and tasks of older deployments are described
    before the rest, so a stopped old task and a still-PENDING new one are never both
    missed. Counts per sample: (seconds after t0, not STOPPED, RUNNING, RUNNING and not
    asked to stop)."""

    def __init__(self, svc, old_arns, t0, interval_s):
        self.svc, self.old, self.t0, self.interval_s = svc, set(old_arns), t0, interval_s
        self.stopped = set()
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            arns = set(self.svc.task_arns("RUNNING")) | set(self.svc.task_arns("STOPPED"))
            todo = sorted((a for a in arns if a not in self.stopped), key=lambda a: a not in self.old)
            not_stopped = running = kept = 0
            for t in describe_tasks(self.svc.ecs, self.svc.cluster, todo) if todo else []:
                status = t.get("lastStatus")
                if status == "STOPPED":
                    self.stopped.add(t["taskArn"])
                else:
                    not_stopped += 1
                    running += status == "RUNNING"
                    kept += status == "RUNNING" and t.get("desiredStatus") == "RUNNING"
            self.samples.append((round(time.perf_counter() - self.t0, 3), not_stopped, running, kept))
            self.done.wait(self.interval_s)

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.samples


def bounds(samples, max_live, min_running):
    """Max not-STOPPED, min RUNNING and violations over (t, not STOPPED, RUNNING[, RUNNING
    and not asked to stop]) samples."""
    out = {
        "samples": len(samples),
        "max_not_stopped": max((s[1] for s in samples), default=None),
        "min_running": min((s[2] for s in samples), default=None),
        "over_max": sum(1 for s in samples if s[1] > max_live),
        "under_min": sum(1 for s in samples if s[2] < min_running),
    }
    if samples and len(samples[0]) > 3:
        # Stricter: tasks already asked to stop no longer count as healthy.
        out["min_running_not_stopping"] = min(s[3] for s in samples)
        out["under_min_not_stopping"] = sum(1 for s in samples if s[3] < min_running)
    return out


def rollout_once(svc, task_def, desired, max_live, min_running, poll_s, check_s, timeout):
    """UpdateService to task_def, then DescribeServices every poll_s until its PRIMARY
    deployment is COMPLETED, alone, with runningCount = desired; TaskBounds meanwhile.
    Times in s after the UpdateService call was sent."""
    old = svc.task_arns("RUNNING")
    t0 = time.perf_counter()
    checker = TaskBounds(svc, old, t0, check_s)
    try:
        svc.update(taskDefinition=task_def)
        t_ack = time.perf_counter() - t0
        service_samples, marks, polls = [], {}, 0
        while True:
            next_poll = time.perf_counter() + poll_s
            s = svc.describe()
            now = time.perf_counter() - t0
            polls += 1
            running, pending = s.get("runningCount", 0), s.get("pendingCount", 0)
            service_samples.append((round(now, 3), running + pending, running))
            deployments = s.get("deployments", [])
            primary = next(d for d in deployments if d.get("status") == "PRIMARY")
            if primary.get("taskDefinition") != task_def:
                raise SystemExit(f"the PRIMARY deployment is not {task_def}: {primary}")
            if primary.get("rolloutState") == "FAILED":
                raise SystemExit(f"the deployment FAILED: {primary.get('rolloutStateReason')}")
            for mark, reached in (
                ("first_new_running_s", primary.get("runningCount", 0) > 0),
                ("all_new_running_s", primary.get("runningCount", 0) >= desired),
                ("one_deployment_s", len(deployments) == 1),
            ):
                if reached:
                    marks.setdefault(mark, now)
            if len(deployments) == 1 and primary.get("rolloutState") == "COMPLETED" and running == desired:
                marks["completed_s"] = now
                break
            if now > timeout:
                raise SystemExit(f"rollout not COMPLETED after {timeout} s: {service_state(s)}")
            delay = next_poll - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    finally:
        task_samples = checker.stop()
    return dict(
        marks,
        update_answered_s=t_ack,
        polls=polls,
        service_view=bounds(service_samples, max_live, min_running),
        task_view=bounds(task_samples, max_live, min_running),
        service_timeline=service_samples,
        task_timeline=task_samples,
    )


def cmd_rollout(args):
    """A SIMULATION: --agents simulated agents, a REPLICA service of --service-tasks tasks
    (maximumPercent --max-percent, minimumHealthyPercent --min-percent) updated --rollouts
    times to a new revision; each time, UpdateService → the new deployment COMPLETED alone,
    and the bounds checked all along."""
    ecs = client_from(args)
    wait_instances(ecs, args.cluster, args.agents, args.register_timeout)
    # On the simulated runtime `sleep 100000` runs until stopped (and a `trap … exit 0`
    # would exit at once: the simulation reads `exit 0` as the command).
    define = lambda: register_task_definition(  # noqa: E731
        ecs, "bench-rollout", "busybox", ["sleep", "100000"], args.cpu, args.memory)
    desired = args.service_tasks
    max_live = desired * args.max_percent // 100
    min_running = -(-desired * args.min_percent // 100)
    svc = Service(ecs, args.cluster, "bench-rollout")
    t0 = time.monotonic()
    # --ramp N: N tasks first, then N more each time it is steady (not the rollout measured).
    count = min(desired, args.ramp) if args.ramp > 0 else desired
    svc.create(define(), count,
               deploymentConfiguration={"maximumPercent": args.max_percent, "minimumHealthyPercent": args.min_percent},
               placementStrategy=[{"type": "spread", "field": "instanceId"}])
    svc.wait_steady(args.timeout)
    while count < desired:
        count = min(desired, count + args.ramp)
        svc.update(desiredCount=count)
        svc.wait_steady(args.timeout)
    initial_s = time.monotonic() - t0
    log(f"rollout: service of {desired} tasks on {args.agents} simulated agents steady {initial_s:.1f} s after "
        f"CreateService{f' (desired count raised {args.ramp} at a time)' if args.ramp > 0 else ''} (not timed)")
    rounds = []
    for r in range(args.rollouts):
        time.sleep(args.pause)
        task_def = define()
        got = rollout_once(svc, task_def, desired, max_live, min_running, args.poll_ms / 1000,
                           args.check_ms / 1000, args.timeout)
        rounds.append(dict(got, task_definition=task_def))
        sv, tv = got["service_view"], got["task_view"]
        log(f"rollout {r + 1}/{args.rollouts} to {task_def.rsplit('/', 1)[-1]}: COMPLETED {got['completed_s']:.2f} s "
            f"after UpdateService (all new RUNNING {got.get('all_new_running_s', float('nan')):.2f} s, one deployment "
            f"{got.get('one_deployment_s', float('nan')):.2f} s); DescribeServices: max live {sv['max_not_stopped']}, "
            f"min RUNNING {sv['min_running']}, violations {sv['over_max'] + sv['under_min']} in {sv['samples']}; "
            f"tasks: max not STOPPED {tv['max_not_stopped']}, min RUNNING {tv['min_running']} "
            f"({tv.get('min_running_not_stopping')} not asked to stop), violations {tv['over_max'] + tv['under_min']} "
            f"({tv.get('under_min_not_stopping')} counting only those not asked to stop) in {tv['samples']}")
    final = svc.tasks("RUNNING")
    final_ok = sum(1 for t in final if t.get("lastStatus") == "RUNNING" and t.get("taskDefinitionArn") == rounds[-1]["task_definition"])
    completed = [r["completed_s"] for r in rounds]
    result = {
        "simulation": True,
        "agents": args.agents,
        "service_tasks": desired,
        "maximum_percent": args.max_percent,
        "minimum_healthy_percent": args.min_percent,
        "max_live_allowed": max_live,
        "min_running_allowed": min_running,
        "poll_ms": args.poll_ms,
        "check_ms": args.check_ms,
        "ramp": args.ramp,
        "initial_steady_s": initial_s,
        "completed": summary(completed),
        "violations": sum(r[v][k] for r in rounds for v in ("service_view", "task_view") for k in ("over_max", "under_min")),
        "final_running_of_last_revision": final_ok,
        "load_average": load_average(),
        "rollouts": rounds,
    }
    write_json(args.out, result)
    print(f"\nrollout (SIMULATED runtime: no containers run): {args.agents} agents, a service of {desired} tasks, "
          f"maximumPercent {args.max_percent} (≤ {max_live} not STOPPED), minimumHealthyPercent {args.min_percent} "
          f"(≥ {min_running} RUNNING); seconds after UpdateService:", file=sys.stderr)
    print("| rollout | COMPLETED, alone, runningCount | first new RUNNING | all new RUNNING | one deployment left | "
          "DescribeServices: max live / min RUNNING / violations (samples) | tasks: max not STOPPED / min RUNNING / "
          "violations (samples) | tasks: min RUNNING not asked to stop / violations |", file=sys.stderr)
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for i, r in enumerate(rounds):
        sv, tv = r["service_view"], r["task_view"]
        print(f"| {i + 1} | {f(r['completed_s'])} | {f(r.get('first_new_running_s'))} | {f(r.get('all_new_running_s'))} | "
              f"{f(r.get('one_deployment_s'))} | {sv['max_not_stopped']} / {sv['min_running']} / "
              f"{sv['over_max'] + sv['under_min']} ({sv['samples']}) | {tv['max_not_stopped']} / {tv['min_running']} / "
              f"{tv['over_max'] + tv['under_min']} ({tv['samples']}) | {tv.get('min_running_not_stopping')} / "
              f"{tv.get('under_min_not_stopping')} |", file=sys.stderr)
    print(f"median COMPLETED {result['completed']['p50']:.2f} s (includes the 3 s a task without health checks "
          f"must stay RUNNING to count as stable); violations {result['violations']}; at the end "
          f"{final_ok} tasks of the last revision RUNNING", file=sys.stderr)


def cmd_secrets(args):
    from launch_secrets import cmd_secrets as secrets  # imports this module's helpers

    secrets(args)


def cmd_storm(args):
    from storm import cmd_storm as storm  # storm.py imports this module's helpers

    storm(args)


# ---------------------------------------------------------------- main


def main():
    # run.sh stops this program with SIGTERM on Ctrl-C or its own exit: unwind, so the
    # `docker events` child is closed by its finally block.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["password", "setup", "launch", "official", "fargate", "density", "scale", "control",
                                       "recovery", "rollout", "storm", "secrets"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    p.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--cluster")
    p.add_argument("--official-cluster")
    p.add_argument("--official-log")
    p.add_argument("--official-pid", type=int)
    p.add_argument("--repository")
    p.add_argument("--image")
    p.add_argument("--out")
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--poll-ms", type=float, default=10)
    p.add_argument("--cpu", type=int, default=8)
    p.add_argument("--memory", type=int, default=32)
    p.add_argument("--name-prefix", default="berth-bench-run")
    p.add_argument("--label", default="berth-bench-agent=1")
    p.add_argument("--agent-pid", type=int)
    p.add_argument("--server-pid", type=int)
    p.add_argument("--settle", type=float, default=10)
    p.add_argument("--idle", type=float, default=60)
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--agent-pids")
    p.add_argument("--spawned-at", type=float)
    p.add_argument("--perf-idle")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--retries", type=int, default=8)
    p.add_argument("--placement", choices=["spread", "default"], default="spread")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--register-timeout", type=float, default=300)
    p.add_argument("--service-tasks", type=int, default=3)
    p.add_argument("--pause", type=float, default=1)
    p.add_argument("--rollouts", type=int, default=3)
    p.add_argument("--max-percent", type=int, default=200)
    p.add_argument("--min-percent", type=int, default=100)
    p.add_argument("--check-ms", type=float, default=50)
    p.add_argument("--ramp", type=int, default=0)
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--describe-ms", type=float, default=50)
    p.add_argument("--secrets", type=int, default=10)
    args = p.parse_args()
    {
        "password": cmd_password,
        "setup": cmd_setup,
        "launch": cmd_launch,
        "official": cmd_official,
        "fargate": cmd_fargate,
        "density": cmd_density,
        "scale": cmd_scale,
        "control": cmd_control,
        "recovery": cmd_recovery,
        "rollout": cmd_rollout,
        "storm": cmd_storm,
        "secrets": cmd_secrets,
    }[args.command](args)


if __name__ == "__main__":
    main()
