#!/usr/bin/env python3
"""The measured parts of bench/replicas/run.sh (BENCHMARKS.md, "Replicas on etcd"): Berth's
control plane on a three-member etcd cluster with several `berth server` replicas.

Python 3 standard library only (the SigV4 client of bench/agent/bench.py); this program
starts every process it measures (etcd members, replicas, the agent) in a temporary
directory and stops them, by pid, on exit (Ctrl-C included).

Subcommands:
  failover    3 etcd members, 3 replicas, one `berth agent --runtime simulated` (a
              SIMULATION: no container runs; placement, the agent's sessions and the
              scheduler are real) with --endpoint naming all three replicas, and a service.
              Each round: the leader is read from etcd (etcdctl get berth/berth/leader: the key
              berth/leader under the store's prefix berth/), a random
              1-2 s pause (so kills fall at every phase of the 1 s lease renewal), kill -9
              of the leader, at once UpdateService desiredCount+1 through a survivor; then,
              polling every 25 ms: the leader key in etcd (gone, then naming a survivor), the
              service's new task and its createdAt (server clock, same machine), its
              startedAt (RUNNING, reported by the agent); and the new leader's log line
              "elected leader" (its own clock). The killed replica is restarted on its data
              dir and port before the next round, once the service is steady.
  throughput  ecs-load (bench/ecs-api/load.rs: RunTask, DescribeTasks, each again from one
              client) against configurations started fresh for every run, in an order that
              rotates every round: `embedded` (one `berth server`, its embedded store),
              `etcd3` (three replicas on a three-member etcd, the clients dealt out over the
              three), `etcd1` (one replica on a three-member etcd). Setup and checks by
              bench/ecs-api/client.py, as bench/ecs-api/run.sh does. etcd's own metrics
              (/metrics: WAL fsync and backend commit durations, proposals, gRPC calls by
              method) are read from every member before and after each run.
"""

import argparse
import base64
import http.client
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("agent_bench", os.path.join(ROOT, "bench/agent/bench.py"))
ab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ab)
log, percentile, Client, AwsError = ab.log, ab.percentile, ab.Client, ab.AwsError

ACCESS_KEY = "AKIDBERTHBENCH000001"
SECRET_KEY = "benchSecretBenchSecretBenchSecret0123456"
REGION = "us-east-1"
# The leader key as etcd names it: Berth's key `berth/leader` (crates/server/src/replica.rs)
# under the store's prefix `berth/`.
LEADER_KEY = "berth/berth/leader"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# ---------------------------------------------------------------- processes

PROCS = []  # every process started, stopped on exit


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spawn(args, log_path, env=None, stdout_path=None):
    out = open(stdout_path or log_path, "ab")
    err = out if stdout_path is None else open(log_path, "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                         start_new_session=True)
    PROCS.append(p)
    return p


def stop(p, grace=10.0):
    """SIGTERM, then SIGKILL after `grace` seconds; the process only, by its pid."""
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass


def kill9(p):
    if p is not None and p.poll() is None:
        p.kill()
        p.wait()


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for p in PROCS:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def http_json(method, url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def healthy(url):
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---------------------------------------------------------------- etcd


class Etcd:
    """An etcd cluster of `n` members on loopback ports, with Berth's flags
    (crates/store/src/testing.rs: --max-txn-ops 10000 --max-request-bytes 10485760)."""

    def __init__(self, n, workdir, etcd_bin):
        self.n, self.workdir, self.bin = n, workdir, etcd_bin
        self.members = []

    def start(self):
        for attempt in range(4):
            d = tempfile.mkdtemp(prefix="etcd-", dir=self.workdir)
            token = f"berth-bench-{os.getpid()}-{time.time_ns()}"
            members = [{"name": f"m{i}", "client": f"127.0.0.1:{free_port()}",
                        "peer": f"127.0.0.1:{free_port()}", "dir": d} for i in range(self.n)]
            initial = ",".join(f"{m['name']}=http://{m['peer']}" for m in members)
            for m in members:
                m["args"] = [
                    self.bin, "--name", m["name"], "--data-dir", os.path.join(d, m["name"]),
                    "--listen-client-urls", f"http://{m['client']}",
                    "--advertise-client-urls", f"http://{m['client']}",
                    "--listen-peer-urls", f"http://{m['peer']}",
                    "--initial-advertise-peer-urls", f"http://{m['peer']}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", token,
                    "--max-txn-ops", "10000", "--max-request-bytes", "10485760",
                    "--log-level", "warn", "--logger", "zap",
                ]
                m["proc"] = spawn(m["args"], os.path.join(d, m["name"] + ".log"))
            self.members = members
            if self._wait_ready():
                return self
            log(f"etcd did not start (a port was taken?), try {attempt + 1}; logs in {d}")
            for m in members:
                stop(m["proc"], 2)
        raise SystemExit("etcd did not start in four tries")

    def _wait_ready(self):
        deadline = time.monotonic() + 60
        for m in self.members:
            while True:
                try:
                    http_json("POST", f"http://{m['client']}/v3/kv/range",
                              {"key": base64.b64encode(b"x").decode()})
                    break
                except OSError:
                    if m["proc"].poll() is not None or time.monotonic() > deadline:
                        return False
                    time.sleep(0.1)
        return True

    def endpoints(self):
        return [m["client"] for m in self.members]

    def url(self):
        return "etcd://" + ",".join(self.endpoints())

    def pids(self):
        return [m["proc"].pid for m in self.members]

    def stop(self):
        for m in self.members:
            stop(m["proc"])

    def etcdctl_get(self, key):
        """The key's value by `etcdctl get --print-value-only` ('' when absent)."""
        out = subprocess.run(
            ["etcdctl", "--endpoints", ",".join(self.endpoints()), "get", key,
             "--print-value-only"],
            env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"etcdctl get {key}: {out.stderr.strip()}")
        return out.stdout.strip()

    def get(self, key, member=0):
        """The key's value through etcd's JSON gateway (a linearizable read), or None."""
        for k in range(len(self.members)):
            m = self.members[(member + k) % len(self.members)]
            try:
                r = http_json("POST", f"http://{m['client']}/v3/kv/range",
                              {"key": base64.b64encode(key.encode()).decode()}, timeout=2)
            except OSError:
                continue
            kvs = r.get("kvs") or []
            return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
        raise RuntimeError("no etcd member answered")

    def time_wait(self):
        """Per member: TCP connections to its client port in TIME-WAIT (`ss`)."""
        out = []
        for m in self.members:
            port = m["client"].rsplit(":", 1)[1]
            r = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( dport = :{port} or sport = :{port} )"],
                               capture_output=True, text=True)
            out.append(len(r.stdout.splitlines()) if r.returncode == 0 else None)
        return out

    def metrics(self):
        """Counters and histogram sums of interest from every member's /metrics."""
        want = ("etcd_disk_wal_fsync_duration_seconds_sum", "etcd_disk_wal_fsync_duration_seconds_count",
                "etcd_disk_backend_commit_duration_seconds_sum",
                "etcd_disk_backend_commit_duration_seconds_count",
                "etcd_server_proposals_committed_total", "grpc_server_handled_total",
                "process_cpu_seconds_total", "etcd_server_is_leader")
        out = []
        for m in self.members:
            vals = {}
            try:
                with urllib.request.urlopen(f"http://{m['client']}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                out.append(vals)
                continue
            for line in text.splitlines():
                if not line or line[0] == "#":
                    continue
                name, _, value = line.rpartition(" ")
                base = name.split("{", 1)[0]
                if base not in want:
                    continue
                if base == "grpc_server_handled_total":
                    method = re.search(r'grpc_method="([^"]+)"', name)
                    name = f"grpc.{method.group(1) if method else '?'}"
                vals[name] = vals.get(name, 0.0) + float(value)
            out.append(vals)
        return out


def metrics_delta(before, after):
    """Per member: after − before, with derived means; and the members' totals."""
    members = []
    for b, a in zip(before, after):
        d = {k: a.get(k, 0.0) - b.get(k, 0.0) for k in a}
        d["etcd_server_is_leader"] = a.get("etcd_server_is_leader", 0.0)
        fs_n = d.get("etcd_disk_wal_fsync_duration_seconds_count", 0.0)
        bc_n = d.get("etcd_disk_backend_commit_duration_seconds_count", 0.0)
        d["wal_fsync_mean_ms"] = (d.get("etcd_disk_wal_fsync_duration_seconds_sum", 0.0) * 1000 / fs_n
                                  if fs_n else None)
        d["backend_commit_mean_ms"] = (d.get("etcd_disk_backend_commit_duration_seconds_sum", 0.0)
                                       * 1000 / bc_n if bc_n else None)
        members.append(d)
    return members


# ---------------------------------------------------------------- Berth


class Replica:
    """`berth server --store STORE` on 127.0.0.1, its data dir kept across restarts."""

    def __init__(self, name, berth, store, workdir, env):
        self.name, self.berth, self.store, self.env = name, berth, store, env
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.proc, self.url = 0, None, None
        self.stderr = os.path.join(self.dir, "server.stderr.log")

    def start(self):
        args = [self.berth, "server", "--data-dir", os.path.join(self.dir, "data"),
                "--listen", f"127.0.0.1:{self.port}"]
        if self.store != "embedded":
            args += ["--store", self.store]
        stdout = os.path.join(self.dir, "server.stdout.log")
        with open(stdout, "ab"):
            pass
        offset = os.path.getsize(stdout)
        self.proc = spawn(args, self.stderr, env=self.env, stdout_path=stdout)
        deadline = time.monotonic() + 60
        while True:
            with open(stdout, "rb") as f:
                f.seek(offset)
                m = re.search(rb"berth listening on (http://127\.0\.0\.1:(\d+))", f.read())
            if m:
                self.url, self.port = m.group(1).decode(), int(m.group(2))
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited: {tail(self.stderr)}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} printed no listening line: {tail(self.stderr)}")
            time.sleep(0.05)
        while not healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} never healthy: {tail(self.stderr)}")
            time.sleep(0.05)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_lines_since(self, offset):
        with open(self.stderr, "rb") as f:
            f.seek(offset)
            return [ANSI.sub("", line) for line in f.read().decode(errors="replace").splitlines()]

    def log_size(self):
        return os.path.getsize(self.stderr) if os.path.exists(self.stderr) else 0


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return ANSI.sub("", "".join(f.readlines()[-n:]))
    except OSError:
        return ""


def rfc3339(ts):
    """tracing's UTC timestamp (2026-12-06T16:35:47.713456Z) → seconds since the epoch."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", ts)
    if not m:
        return None
    import calendar
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


def berth_env(extra=None):
    env = dict(os.environ)
    env.update({"BERTH_ROOT_ACCESS_KEY_ID": ACCESS_KEY, "BERTH_ROOT_SECRET_ACCESS_KEY": SECRET_KEY})
    env.pop("BERTH_STORE", None)
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- failover


def summary_s(values):
    s = sorted(v for v in values if v is not None)
    return {"n": len(s), "min": s[0] if s else None, "p50": percentile(s, 50),
            "p90": percentile(s, 90), "max": s[-1] if s else None,
            "mean": sum(s) / len(s) if s else None}


def service_of(ecs, cluster, service):
    return ecs.ecs("DescribeServices", {"cluster": cluster, "services": [service]})["services"][0]


def service_task_arns(ecs, cluster, service):
    return set(ab.list_all(ecs, "ListTasks", "taskArns",
                           {"cluster": cluster, "serviceName": service, "desiredStatus": "RUNNING"}))


def wait_until(what, timeout, check, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
        except (OSError, AwsError, http.client.HTTPException, RuntimeError) as e:
            got = None
            last = e
        else:
            last = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}" + (f": {last}" if last else ""))
        time.sleep(every)


def leader_index(name, replicas):
    for i, r in enumerate(replicas):
        if name and r.alive() and name.startswith(f"http://127.0.0.1:{r.port}/"):
            return i
    return None


def poll_once(etcd, ecs, cluster, service, before, old_name,
              key_gone, key_new, new_name, new_arn, created, started, last_tasks):
    """One look at the leader key (every call) and the service's tasks (every 50 ms)."""
    now = time.time()
    if key_new is None:
        v = etcd.get(LEADER_KEY)
        if v is None and key_gone is None:
            key_gone = now
        elif v is not None and v != old_name:
            key_new, new_name = now, v
            if key_gone is None:
                key_gone = now
    if now - last_tasks >= 0.05:
        last_tasks = now
        if new_arn is None:
            fresh = service_task_arns(ecs, cluster, service) - before
            if fresh:
                new_arn = sorted(fresh)[0]
        if new_arn is not None:
            t = ecs.ecs("DescribeTasks", {"cluster": cluster, "tasks": [new_arn]})["tasks"][0]
            created = t.get("createdAt")
            if t.get("lastStatus") == "RUNNING":
                started = t.get("startedAt")
    return key_gone, key_new, new_name, new_arn, created, started, last_tasks


def cmd_failover(args):
    work = args.work
    etcd = Etcd(3, work, args.etcd).start()
    log(f"etcd: 3 members on {', '.join(etcd.endpoints())}")
    env = berth_env({"BERTH_AGENT_TIMEOUT_SECONDS": str(args.agent_timeout)})
    replicas = [Replica(f"replica{i}", args.berth, etcd.url(), work, env).start() for i in range(3)]
    log("replicas: " + ", ".join(r.url for r in replicas))
    clients = [Client(r.url, ACCESS_KEY, SECRET_KEY, REGION) for r in replicas]
    wait_until("a leader", 30, lambda: leader_index(etcd.get(LEADER_KEY), replicas) is not None)

    cluster, service = f"failover-{os.getpid()}", "svc"
    clients[0].ecs("CreateCluster", {"clusterName": cluster})
    agent_dir = os.path.join(work, "agent")
    os.makedirs(agent_dir, exist_ok=True)
    agent_env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                     AWS_REGION=REGION)
    agent_env.pop("AWS_SESSION_TOKEN", None)
    agent_env.pop("AWS_PROFILE", None)
    agent = spawn([args.berth, "agent", "--endpoint", ",".join(r.url for r in replicas),
                   "--cluster", cluster, "--data-dir", os.path.join(agent_dir, "data"),
                   "--runtime", "simulated"], os.path.join(agent_dir, "agent.stderr.log"), env=agent_env)
    ab.wait_instances(clients[1], cluster, 1, 60)
    # A container that runs until it is stopped (the simulated runtime: any command but sleep/exit).
    td = ab.register_task_definition(clients[0], "failover", "busybox", ["httpd", "-f"], 10, 16)
    desired = 1
    clients[0].ecs("CreateService", {"cluster": cluster, "serviceName": service, "taskDefinition": td,
                                     "desiredCount": desired})

    def steady(ecs):
        s = service_of(ecs, cluster, service)
        return (s["desiredCount"] == desired and s["runningCount"] == desired
                and s.get("pendingCount", 0) == 0 and len(s["deployments"]) == 1
                and len(service_task_arns(ecs, cluster, service)) == desired)

    rounds = []
    total = args.warmup + args.rounds
    for k in range(total):
        counted = k >= args.warmup
        # Steady: every replica serves, a live replica leads, the service has its tasks.
        for r in replicas:
            wait_until(f"{r.name} healthy", 60, lambda r=r: healthy(r.url))
        wait_until("a leader", 30, lambda: leader_index(etcd.get(LEADER_KEY), replicas) is not None)
        wait_until(f"the service steady at {desired}", 120, lambda: steady(clients[k % 3]), every=0.3)
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited: {tail(os.path.join(agent_dir, 'agent.stderr.log'))}")
        time.sleep(1.0 + random.random())  # kills at every phase of the 1 s renewal
        old_name = etcd.etcdctl_get(LEADER_KEY)
        li = leader_index(old_name, replicas)
        if li is None:
            log(f"round {k}: the leader key names no live replica ({old_name!r}); again")
            continue
        survivors = [i for i in range(3) if i != li]
        via = survivors[k % 2]
        ecs = clients[via]
        before = service_task_arns(ecs, cluster, service)
        offsets = {i: replicas[i].log_size() for i in survivors}
        load0 = loadavg()

        t_kill = time.time()
        kill9(replicas[li].proc)
        t_dead = time.time()
        desired += 1
        for attempt in range(20):
            try:
                ecs.ecs("UpdateService", {"cluster": cluster, "service": service, "desiredCount": desired})
                break
            except (OSError, http.client.HTTPException, AwsError) as e:
                log(f"round {k}: UpdateService through {replicas[via].name} failed ({e}); again")
                time.sleep(0.05)
        t_updated = time.time()

        # Poll the leader key and the service's tasks until the new task is created and RUNNING.
        key_gone = key_new = new_name = created = started = new_arn = None
        deadline = time.monotonic() + 60
        last_tasks = 0.0
        while started is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"round {k}: no new task RUNNING within 60 s (leader key {etcd.get(LEADER_KEY)!r})")
            try:
                key_gone, key_new, new_name, new_arn, created, started, last_tasks = poll_once(
                    etcd, ecs, cluster, service, before, old_name,
                    key_gone, key_new, new_name, new_arn, created, started, last_tasks)
            except (OSError, http.client.HTTPException, AwsError, RuntimeError) as e:
                log(f"round {k}: poll failed ({e}); again")
            time.sleep(0.025)
        ni = leader_index(new_name, replicas)
        elected = None
        if ni is not None:
            for line in replicas[ni].log_lines_since(offsets[ni]):
                if "elected leader" in line:
                    elected = rfc3339(line.split()[0])
                    break
        load1 = loadavg()
        rnd = {
            "round": k, "counted": counted, "killed": replicas[li].name,
            "new_leader": replicas[ni].name if ni is not None else new_name,
            "update_via": replicas[via].name,
            "kill_to_dead_s": t_dead - t_kill,
            "kill_to_update_acked_s": t_updated - t_kill,
            "kill_to_key_gone_s": key_gone - t_kill if key_gone else None,
            "kill_to_key_new_s": key_new - t_kill if key_new else None,
            "kill_to_elected_log_s": elected - t_kill if elected else None,
            "kill_to_created_s": created - t_kill if created else None,
            "kill_to_running_s": started - t_kill if started else None,
            "elected_to_created_s": (created - elected) if created and elected else None,
            "load_before": load0, "load_after": load1,
        }
        rounds.append(rnd)
        f = lambda v: f"{v:6.2f}" if v is not None else "     -"  # noqa: E731
        log(f"round {k}{'' if counted else ' (warm-up)'}: killed {rnd['killed']} → {rnd['new_leader']}: "
            f"key gone {f(rnd['kill_to_key_gone_s'])} s, new key {f(rnd['kill_to_key_new_s'])} s, "
            f"elected (log) {f(rnd['kill_to_elected_log_s'])} s, task created {f(rnd['kill_to_created_s'])} s, "
            f"RUNNING {f(rnd['kill_to_running_s'])} s (load {load1[0]})")
        # The killed replica comes back on its data dir and port.
        replicas[li].start()
        clients[li] = Client(replicas[li].url, ACCESS_KEY, SECRET_KEY, REGION)

    counted = [r for r in rounds if r["counted"]]
    keys = ["kill_to_key_gone_s", "kill_to_key_new_s", "kill_to_elected_log_s", "kill_to_created_s",
            "kill_to_running_s", "elected_to_created_s", "kill_to_update_acked_s"]
    result = {
        "rounds": rounds,
        "summary": {k: summary_s([r[k] for r in counted]) for k in keys},
        "load_max": max(max(r["load_before"][0], r["load_after"][0]) for r in counted) if counted else None,
        "load_mean": (sum(r["load_after"][0] for r in counted) / len(counted)) if counted else None,
        "desired_final": desired,
    }
    ab.write_json(args.out, result)
    print("\nFailover (kill -9 of the leader), seconds:", file=sys.stderr)
    print(f"| {'from kill -9 to':<58} | {'p50':>6} | {'p90':>6} | {'max':>6} | {'n':>3} |", file=sys.stderr)
    labels = [("the leader key gone (etcd expired the lease)", "kill_to_key_gone_s"),
              ("the leader key naming a survivor (poll, 25 ms)", "kill_to_key_new_s"),
              ("'elected leader' in the new leader's log", "kill_to_elected_log_s"),
              ("the scheduler's new task: createdAt  ← the figure", "kill_to_created_s"),
              ("the new task RUNNING: startedAt (simulated agent)", "kill_to_running_s"),
              ("(elected → createdAt)", "elected_to_created_s"),
              ("(UpdateService acknowledged by a survivor)", "kill_to_update_acked_s")]
    g = lambda v: f"{v:6.2f}" if v is not None else "     -"  # noqa: E731
    for label, key in labels:
        s = result["summary"][key]
        print(f"| {label:<58} | {g(s['p50'])} | {g(s['p90'])} | {g(s['max'])} | {s['n']:>3} |", file=sys.stderr)
    print(f"load average (1 min) during the rounds: mean {result['load_mean']:.2f}, max {result['load_max']:.2f}",
          file=sys.stderr)
    stop(agent)
    for r in replicas:
        stop(r.proc)
    etcd.stop()


# ---------------------------------------------------------------- throughput


def run_load(args, name, urls, server_pids, etcd):
    """Setup by client.py, the timed phases by ecs-load, checks by client.py (as
    bench/ecs-api/run.sh); the result's JSON, with etcd's metrics over the timed phases."""
    store_pids = etcd.pids() if etcd else []
    out = os.path.join(args.results, f"{name}.json")
    arns = os.path.join(args.results, f"{name}.arns")
    common = ["--name", name, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]
    setup = subprocess.run([args.python, os.path.join(ROOT, "bench/ecs-api/client.py"), *common,
                            "--endpoint", urls[0], "--instances", str(args.instances), "--setup-only",
                            "--out", os.path.join(args.results, f"{name}.setup.json")],
                           capture_output=True, text=True)
    sys.stderr.write(setup.stderr)
    if setup.returncode != 0:
        raise SystemExit(f"{name}: setup failed")
    cluster, family = setup.stdout.split()
    log(f"{name}: timed phases by ecs-load ({args.clients} clients over {len(urls)} endpoint(s))")
    m0 = etcd.metrics() if etcd else None
    subprocess.run([args.load, *common, "--endpoint", ",".join(urls), "--cluster", cluster,
                    "--task-definition", family, "--instances", str(args.instances),
                    "--clients", str(args.clients), "--calls", str(args.calls),
                    "--seconds", str(args.seconds),
                    "--server-pid", ",".join(map(str, server_pids)),
                    *(["--store-pid", ",".join(map(str, store_pids))] if store_pids else []),
                    "--out", out, "--arns-out", arns], stdout=subprocess.DEVNULL, check=True)
    m1 = etcd.metrics() if etcd else None
    # Connections to etcd closed in the last minute (TIME-WAIT lasts 60 s): connection churn.
    time_wait = etcd.time_wait() if etcd else None
    subprocess.run([args.python, os.path.join(ROOT, "bench/ecs-api/client.py"), *common,
                    "--endpoint", urls[-1], "--check-arns", arns, "--cluster", cluster, "--result", out],
                   stdout=subprocess.DEVNULL, check=True)
    with open(out) as f:
        result = json.load(f)
    if etcd:
        result["etcd_metrics"] = metrics_delta(m0, m1)
        result["etcd_connections_closed_last_minute"] = time_wait
        with open(arns) as f:
            tasks = [line.strip() for line in f if line.strip()]
        result["anatomy"] = anatomy(args, etcd, urls[0], result["cluster"], result["task_definition"], tasks)
    return result


def anatomy(args, etcd, url, cluster, family, tasks, n=200):
    """Where a call's time goes on etcd: `n` calls of each kind one after another from one
    client, etcd's counters read before and after (per call: gRPC Range and Txn calls,
    raft proposals, WAL fsyncs); and etcd alone through its JSON gateway (the API Berth's
    EtcdStore speaks): `n` linearizable single-key reads and `n` puts of one small key."""
    ecs = Client(url, ACCESS_KEY, SECRET_KEY, REGION)
    out = {}

    def per_call(label, fn):
        m0 = etcd.metrics()
        lat = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            lat.append(time.perf_counter() - t)
        m1 = etcd.metrics()
        d = metrics_delta(m0, m1)
        tot = lambda k: sum(m.get(k, 0.0) for m in d)  # noqa: E731
        lat.sort()
        out[label] = {
            "calls": n,
            "p50_ms": percentile(lat, 50) * 1000,
            "mean_ms": sum(lat) / n * 1000,
            "range_per_call": tot("grpc.Range") / n,
            "txn_per_call": tot("grpc.Txn") / n,
            "put_per_call": tot("grpc.Put") / n,
            "proposals_per_call": max(m.get("etcd_server_proposals_committed_total", 0.0) for m in d) / n,
            "wal_fsyncs_per_call_per_member": [m.get("etcd_disk_wal_fsync_duration_seconds_count", 0.0) / n
                                               for m in d],
            "wal_fsync_mean_ms_per_member": [m.get("wal_fsync_mean_ms") for m in d],
            "etcd_cpu_ms_per_call": tot("process_cpu_seconds_total") * 1000 / n,
        }

    per_call("RunTask", lambda i: ecs.ecs("RunTask", {"cluster": cluster, "taskDefinition": family,
                                                        "count": 1, "launchType": "EC2"}))
    per_call("DescribeTasks", lambda i: ecs.ecs("DescribeTasks", {
        "cluster": cluster, "tasks": random.sample(tasks, min(10, len(tasks)))}))
    # The member Berth's EtcdStore talks to (the first of --store's list).
    host, port = etcd.members[0]["client"].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    key = base64.b64encode(b"bench/anatomy").decode()

    def gateway(path, body):
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {r.status}")

    per_call("etcd range (linearizable, 1 key)", lambda i: gateway("/v3/kv/range", {"key": key}))
    per_call("etcd range (serializable, 1 key)", lambda i: gateway(
        "/v3/kv/range", {"key": key, "serializable": True}))
    per_call("etcd put (1 small key)", lambda i: gateway(
        "/v3/kv/put", {"key": key, "value": base64.b64encode(str(i).encode()).decode()}))
    conn.close()
    return out


def one_run(args, config, rnd):
    name = f"{config}-r{rnd}"
    work = tempfile.mkdtemp(prefix=f"{config}-", dir=args.work)
    load0 = loadavg()
    etcd = None
    if config == "embedded":
        replicas = [Replica("server", args.berth, "embedded", work, berth_env()).start()]
    else:
        n = {"etcd3": 3, "etcd1": 1}[config]
        etcd = Etcd(3, work, args.etcd).start()
        replicas = [Replica(f"replica{i}", args.berth, etcd.url(), work, berth_env()).start()
                    for i in range(n)]
        wait_until("a leader", 30, lambda: leader_index(etcd.get(LEADER_KEY), replicas) is not None)
    t0 = time.monotonic()
    try:
        result = run_load(args, name, [r.url for r in replicas], [r.proc.pid for r in replicas], etcd)
    finally:
        wall = time.monotonic() - t0
        rss = [ab.status_kib(r.proc.pid, "VmHWM") for r in replicas]
        etcd_rss = [ab.status_kib(p, "VmHWM") for p in etcd.pids()] if etcd else []
        for r in replicas:
            stop(r.proc)
        if etcd:
            etcd.stop()
    result["config"] = config
    result["round"] = rnd
    result["replicas"] = len(replicas)
    result["load_before"], result["load_after"] = load0, loadavg()
    result["server_rss_kib"] = rss
    result["etcd_rss_kib"] = etcd_rss
    result["load_wall_s"] = wall
    with open(os.path.join(args.results, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    return result


def cmd_throughput(args):
    configs = args.configs.split(",")
    results = []
    for rnd in range(args.rounds):
        # Rotate the order: every configuration runs first, middle and last alike.
        order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
        if rnd % 2 == 1:
            order = order[::-1]
        for config in order:
            log(f"round {rnd + 1}/{args.rounds}: {config} (load {loadavg()[0]})")
            results.append(one_run(args, config, rnd))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    report_throughput(results, configs)


def med(values):
    s = sorted(v for v in values if v is not None)
    return percentile(s, 50) if s else None


def report_throughput(results, configs):
    def rows(config):
        return [r for r in results if r["config"] == config]

    figures = [
        ("RunTask calls/s", lambda r: r["run_task"]["throughput"]),
        ("RunTask calls not ok (HTTP 500 etc.)", lambda r: r["run_task"]["calls"] - r["run_task"]["ok"]),
        ("RunTask p50 ms", lambda r: r["run_task"]["p50_ms"]),
        ("RunTask p90 ms", lambda r: r["run_task"]["p90_ms"]),
        ("RunTask p99 ms", lambda r: r["run_task"]["p99_ms"]),
        ("RunTask server CPU ms/call", lambda r: r["run_task"].get("server_cpu_ms_per_call")),
        ("RunTask etcd CPU ms/call", lambda r: (r["run_task"].get("store_cpu_s") or 0) * 1000
         / max(1, r["run_task"]["ok"]) if "store_cpu_s" in r["run_task"] else None),
        ("RunTask 1 client: ms/call p50", lambda r: r["solo"]["RunTask"]["p50_ms"]),
        ("DescribeTasks calls/s", lambda r: r["describe_tasks"]["throughput"]),
        ("DescribeTasks p50 ms", lambda r: r["describe_tasks"]["p50_ms"]),
        ("DescribeTasks p99 ms", lambda r: r["describe_tasks"]["p99_ms"]),
        ("DescribeTasks 1 client: ms/call p50", lambda r: r["solo"]["DescribeTasks"]["p50_ms"]),
    ]
    print("\nRunTask / DescribeTasks, medians over rounds:", file=sys.stderr)
    print("| figure | " + " | ".join(configs) + " |", file=sys.stderr)
    for label, fn in figures:
        vals = [med([fn(r) for r in rows(c)]) for c in configs]
        print(f"| {label} | " + " | ".join(f"{v:.1f}" if v is not None else "-" for v in vals) + " |",
              file=sys.stderr)
    base = configs[0]
    rounds = sorted({r["round"] for r in results})
    for c in configs[1:]:
        for label, fn in [("RunTask", lambda r: r["run_task"]["throughput"]),
                          ("DescribeTasks", lambda r: r["describe_tasks"]["throughput"])]:
            ratios = []
            for k in rounds:
                a = [fn(r) for r in rows(c) if r["round"] == k]
                b = [fn(r) for r in rows(base) if r["round"] == k]
                if a and b and b[0]:
                    ratios.append(a[0] / b[0])
            if ratios:
                print(f"{label} calls/s {c}/{base}, per round: "
                      + ", ".join(f"{x:.3f}" for x in ratios) + f"; median {med(ratios):.3f} "
                      f"({1 / med(ratios):.1f}x slower)", file=sys.stderr)
    anat = [c for c in configs if any("anatomy" in r for r in rows(c))]
    if anat:
        print("\nOne client, one call after another, per call (medians over rounds): latency, etcd's "
              "gRPC calls, raft proposals, WAL fsyncs (members), etcd CPU:", file=sys.stderr)
        for c in anat:
            for kind in rows(c)[0]["anatomy"]:
                a = [r["anatomy"][kind] for r in rows(c) if "anatomy" in r]
                m = lambda k: med([x[k] for x in a])  # noqa: E731
                fs = [med([x["wal_fsyncs_per_call_per_member"][i] for x in a]) for i in range(3)]
                fm = [med([x["wal_fsync_mean_ms_per_member"][i] for x in a]) for i in range(3)]
                print(f"  {c:<8} {kind:<34} p50 {m('p50_ms'):6.2f} ms  Range {m('range_per_call'):5.1f}  "
                      f"Txn {m('txn_per_call'):4.1f}  Put {m('put_per_call'):3.1f}  proposals "
                      f"{m('proposals_per_call'):4.1f}  fsyncs {'/'.join(f'{x:.1f}' for x in fs)} "
                      f"(mean {'/'.join(f'{x:.2f}' if x is not None else '-' for x in fm)} ms)  "
                      f"etcd CPU {m('etcd_cpu_ms_per_call'):5.2f} ms", file=sys.stderr)
    print("\nper run:", file=sys.stderr)
    for r in results:
        rt, dt = r["run_task"], r["describe_tasks"]
        print(f"  round {r['round'] + 1} {r['config']:<8} RunTask {rt['throughput']:7.1f}/s (ok {rt['ok']}/"
              f"{rt['calls']}, p50 {rt['p50_ms']:.1f} ms, p99 {rt['p99_ms']:.1f} ms)  DescribeTasks "
              f"{dt['throughput']:7.1f}/s  check {'ok' if r.get('check', {}).get('ok') else 'FAILED'}  "
              f"load {r['load_before'][0]:.2f}→{r['load_after'][0]:.2f}", file=sys.stderr)


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["failover", "throughput"])
    p.add_argument("--berth", required=True)
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--work", required=True, help="temporary directory (removed by run.sh)")
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--agent-timeout", type=int, default=60)
    p.add_argument("--load", help="the ecs-load binary")
    p.add_argument("--python", help="python with boto3, for bench/ecs-api/client.py")
    p.add_argument("--results", help="directory of per-run JSON")
    p.add_argument("--configs", default="embedded,etcd3,etcd1")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--instances", type=int, default=1000)
    args = p.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    os.makedirs(args.work, exist_ok=True)
    try:
        {"failover": cmd_failover, "throughput": cmd_throughput}[args.command](args)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
