#!/usr/bin/env python3
"""ECS API load client: the same boto3 code against any endpoint (Berth or moto_server).

Setup (not timed): a cluster, N container instances registered with
RegisterContainerInstance (totalResources CPU 4096 / MEMORY 16384 / PORTS ["22"],
attributes with ecs.availability-zone across 3 zones), one small bridge task
definition (one container, cpu 10, memory 16, no host port).

Measured, from C concurrent clients (threads, one boto3 client each, closed loop):
  1. RunTask (count 1) until CALLS calls are done or SECONDS have passed;
  2. DescribeTasks with 10 task ARNs per call (drawn from the tasks phase 1 started),
     with the same limits.
Then checks the results are real: every RunTask answer has one task and no failures,
ListTasks of the cluster lists exactly the tasks started, and DescribeTasks returned
10 tasks per call.

moto's RegisterContainerInstance needs an EC2 instance id from its own EC2 mock
(instanceIdentityDocument.instanceId), so against moto (--ec2) the setup first creates
the EC2 instances there; the ECS request is otherwise the same. moto ignores
totalResources (it gives every instance CPU 4096 / MEMORY 7482), which is plenty for
these tasks.

Prints one JSON object on stdout (also written to --out).

Split modes, for the Rust load generator (bench/ecs-api/load.rs), which runs the timed
phases in between:
  --setup-only             the setup alone; prints "CLUSTER FAMILY" on stdout (and writes
                           {"cluster", "task_definition"} to --out when given).
  --check-arns FILE        the checks alone, for --cluster: ListTasks of the cluster must
    --cluster NAME         list exactly the task ARNs in FILE (one a line: every task the
    [--result FILE.json]   load generator started), and DescribeTasks of a sample of them
                           must return each with no failure. The figures are added to the
                           load generator's JSON (--result) under run_task and "check".
"""

import argparse
import json
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid

import boto3
from botocore.config import Config

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def make_client(args, service="ecs", pool=2):
    return boto3.session.Session().client(
        service,
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        config=Config(
            max_pool_connections=pool,
            retries={"total_max_attempts": 1},  # no retries: every error counts
            connect_timeout=10,
            read_timeout=120,
        ),
    )


def cpu_seconds(pid):
    """utime + stime of a process (and its reaped children), seconds."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(int(x) for x in fields[11:15]) / ticks
    except OSError:
        return None


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def parallel(n_threads, items, fn):
    """Runs fn(client_index, item) over items from n_threads threads."""
    lock = threading.Lock()
    it = iter(items)
    errors = []

    def worker(i):
        while True:
            with lock:
                try:
                    item = next(it)
                except StopIteration:
                    return
            try:
                fn(i, item)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} setup errors, first: {errors[0]}")


def setup(args):
    ecs = make_client(args, pool=32)
    cluster = f"bench-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)

    ec2_ids = [f"i-{uuid.uuid4().hex[:17]}" for _ in range(args.instances)]
    if args.ec2:
        ec2 = make_client(args, "ec2", pool=4)
        ec2_ids = []
        per_zone = [args.instances // 3 + (1 if z < args.instances % 3 else 0) for z in range(3)]
        for z, n in enumerate(per_zone):
            while n > 0:
                batch = min(n, 100)
                r = ec2.run_instances(
                    ImageId="ami-12c6146b",
                    MinCount=batch,
                    MaxCount=batch,
                    InstanceType="m5.xlarge",
                    Placement={"AvailabilityZone": ZONES[z]},
                )
                ec2_ids += [(i["InstanceId"], ZONES[z]) for i in r["Instances"]]
                n -= batch
    else:
        ec2_ids = [(iid, ZONES[k % 3]) for k, iid in enumerate(ec2_ids)]

    clients = [make_client(args) for _ in range(16)]

    def register(i, item):
        iid, zone = item
        clients[i].register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps({"instanceId": iid, "availabilityZone": zone}),
            totalResources=[
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 16384},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
            ],
            attributes=[
                {"name": "ecs.availability-zone", "value": zone},
                {"name": "ecs.instance-type", "value": "m5.xlarge"},
                {"name": "ecs.os-type", "value": "linux"},
            ],
        )

    t0 = time.perf_counter()
    parallel(16, ec2_ids, register)
    log(f"{args.name}: registered {len(ec2_ids)} container instances in "
        f"{time.perf_counter() - t0:.1f} s")

    n_registered = 0
    token = None
    while True:
        kw = {"cluster": cluster}
        if token:
            kw["nextToken"] = token
        r = ecs.list_container_instances(**kw)
        n_registered += len(r["containerInstanceArns"])
        token = r.get("nextToken")
        if not token:
            break
    assert n_registered == args.instances, (n_registered, args.instances)

    family = f"bench-{uuid.uuid4().hex[:8]}"
    ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        containerDefinitions=[{
            "name": "app",
            "image": "busybox:latest",
            "cpu": 10,
            "memory": 16,
            "essential": True,
            # No port mappings: moto counts hostPort 0 as a port to reserve.
        }],
    )
    return cluster, family


def list_all_tasks(ecs, cluster):
    listed = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster):
        listed += page["taskArns"]
    return listed


def check_arns(args):
    """ListTasks of the cluster must list exactly the tasks in the file; a sample of them
    is described. Adds the figures to --result (the load generator's JSON)."""
    with open(args.check_arns) as f:
        started = [line.strip() for line in f if line.strip()]
    ecs = make_client(args)
    listed = list_all_tasks(ecs, args.cluster)
    started_set, listed_set = set(started), set(listed)
    sample = random.sample(started, min(args.sample, len(started)))
    returned = failures = mismatched = 0
    for k in range(0, len(sample), 100):
        batch = sample[k:k + 100]
        r = ecs.describe_tasks(cluster=args.cluster, tasks=batch)
        got = {t["taskArn"]: t for t in r.get("tasks", [])}
        failures += len(r.get("failures", []))
        for arn in batch:
            t = got.get(arn)
            if t is None:
                continue
            returned += 1
            if not t.get("clusterArn", "").endswith("/" + args.cluster):
                mismatched += 1
    check = {
        "started": len(started),
        "started_distinct": len(started_set),
        "listed": len(listed),
        "listed_distinct": len(listed_set),
        "started_not_listed": len(started_set - listed_set),
        "listed_not_started": len(listed_set - started_set),
        "sample_described": len(sample),
        "sample_returned": returned,
        "sample_failures": failures,
        "sample_wrong_cluster": mismatched,
    }
    check["ok"] = (len(started_set) == len(started) and listed_set == started_set
                   and len(listed) == len(listed_set) and returned == len(sample)
                   and failures == 0 and mismatched == 0)
    log(f"{args.name}: check: {len(started)} tasks started, ListTasks lists {len(listed)} "
        f"({check['started_not_listed']} started not listed, {check['listed_not_started']} "
        f"listed not started); described {returned} of a sample of {len(sample)} "
        f"(failures {failures}, wrong cluster {mismatched}): {'ok' if check['ok'] else 'FAILED'}")
    if args.result:
        with open(args.result) as f:
            result = json.load(f)
        rt = result["run_task"]
        rt["list_tasks_count"] = len(listed)
        rt["all_started_tasks_listed"] = started_set <= listed_set
        rt["listed_exactly_started"] = listed_set == started_set and len(listed) == len(listed_set)
        result["tasks_started_total"] = len(started)
        result["check"] = check
        with open(args.result, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(check))


def closed_loop(clients, call, deadline_s, max_calls, wait_start):
    """Every client calls until max_calls are taken or deadline_s has passed since the
    start; wait_start() blocks until the start. Returns (results, errors, wall_s, cpu_s)."""
    lock = threading.Lock()
    state = {"taken": 0}
    results = [[] for _ in clients]  # per client: (latency_s, outcome or None)
    errors = []
    barrier = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def worker(i):
        c = clients[i]
        out = results[i]
        barrier.wait()
        while True:
            with lock:
                if state["taken"] >= max_calls or time.perf_counter() >= stop_at[0]:
                    return
                state["taken"] += 1
            t = time.perf_counter()
            try:
                r = call(c)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e)[:300])
                out.append((time.perf_counter() - t, None))
                continue
            out.append((time.perf_counter() - t, r))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    wait_start()
    self0 = time.process_time()
    t0 = time.perf_counter()
    stop_at[0] = t0 + deadline_s
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return [x for per in results for x in per], errors, wall, time.process_time() - self0


def _child(args, n_clients, call, deadline_s, max_calls, mp_barrier, queue):
    random.seed(os.getpid())
    clients = [make_client(args) for _ in range(n_clients)]
    for c in clients:  # connection and endpoint resolution before the start
        c.describe_clusters(clusters=[args.cluster])
    flat, errors, wall, cpu = closed_loop(clients, call, deadline_s, max_calls, mp_barrier.wait)
    queue.put((flat, errors, wall, cpu))


def measure(args, label, clients, call, deadline_s, max_calls, procs=1):
    """Closed loop from len(clients) concurrent clients; with procs > 1 the clients are
    split over that many processes (threads in each; the cap is split evenly too)."""
    cpu0 = cpu_seconds(args.server_pid)
    if procs <= 1:
        t0 = time.perf_counter()
        flat, errors, _, client_cpu = closed_loop(clients, call, deadline_s, max_calls,
                                                  lambda: None)
        wall = time.perf_counter() - t0
    else:
        ctx = multiprocessing.get_context("fork")
        mp_barrier = ctx.Barrier(procs + 1)
        queue = ctx.Queue()
        n = len(clients)
        kids = []
        for k in range(procs):
            share_clients = n // procs + (1 if k < n % procs else 0)
            share_calls = max_calls // procs + (1 if k < max_calls % procs else 0)
            kid = ctx.Process(target=_child, args=(args, share_clients, call, deadline_s,
                                                   share_calls, mp_barrier, queue))
            kid.start()
            kids.append(kid)
        mp_barrier.wait()  # every child has its clients warm
        cpu0 = cpu_seconds(args.server_pid)
        t0 = time.perf_counter()
        parts = [queue.get() for _ in kids]
        wall = time.perf_counter() - t0
        for kid in kids:
            kid.join()
        flat = [x for part in parts for x in part[0]]
        errors = [e for part in parts for e in part[1]]
        client_cpu = sum(part[3] for part in parts)
    cpu1 = cpu_seconds(args.server_pid)
    lat = sorted(x[0] for x in flat)
    ok = [x[1] for x in flat if x[1] is not None]
    stats = {
        "calls": len(flat),
        "ok": len(ok),
        "errors": len(errors),
        "first_errors": errors[:3],
        "client_processes": procs,
        "wall_s": wall,
        "throughput": len(ok) / wall if wall > 0 else 0.0,
        "p50_ms": percentile(lat, 50) * 1000 if lat else None,
        "p90_ms": percentile(lat, 90) * 1000 if lat else None,
        "p99_ms": percentile(lat, 99) * 1000 if lat else None,
        "max_ms": lat[-1] * 1000 if lat else None,
        "capped_by_time": len(flat) < max_calls,
        "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "client_cpu_s": client_cpu,
    }
    if stats["server_cpu_s"] is not None and stats["ok"]:
        stats["server_cpu_ms_per_call"] = stats["server_cpu_s"] * 1000 / stats["ok"]
    log(f"{args.name} {label}: {stats['ok']} ok / {stats['calls']} calls in {wall:.1f} s = "
        f"{stats['throughput']:.0f}/s, p50 {stats['p50_ms'] or 0:.1f} ms, "
        f"p99 {stats['p99_ms'] or 0:.1f} ms, server CPU {stats['server_cpu_s'] or 0:.2f} s, "
        f"client CPU {stats['client_cpu_s']:.1f} s ({procs} process(es)), errors {len(errors)}")
    if errors:
        log(f"  first error: {errors[0]}")
    return stats, ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--access-key", default="AKIDBERTHBENCH000001")
    p.add_argument("--secret-key", default="benchsecretbenchsecretbenchsecretbenchs")
    p.add_argument("--ec2", action="store_true", help="create the EC2 instances first (moto)")
    p.add_argument("--instances", type=int, default=1000)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--calls", type=int, default=5000, help="calls per phase (cap)")
    p.add_argument("--seconds", type=float, default=20.0, help="time per phase (cap)")
    p.add_argument("--procs", type=int, default=1,
                   help="client processes the clients are split over (threads in each)")
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--setup-only", action="store_true",
                   help="only the setup: print CLUSTER FAMILY (and write them to --out)")
    p.add_argument("--check-arns", metavar="FILE",
                   help="only the checks: ListTasks of --cluster must list exactly these ARNs")
    p.add_argument("--cluster", help="the cluster to check (with --check-arns)")
    p.add_argument("--result", metavar="FILE.json",
                   help="JSON the check's figures are added to (with --check-arns)")
    p.add_argument("--sample", type=int, default=200,
                   help="tasks described by the check (with --check-arns)")
    args = p.parse_args()

    if args.check_arns:
        if not args.cluster:
            p.error("--check-arns needs --cluster")
        check_arns(args)
        return

    cluster, family = setup(args)
    args.cluster = cluster
    if args.setup_only:
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"cluster": cluster, "task_definition": family}, f)
                f.write("\n")
        print(cluster, family)
        return

    log(f"{args.name}: creating {args.clients} clients")
    clients = [make_client(args) for _ in range(args.clients)]
    # Warm every client up (connection, endpoint resolution) before timing.
    parallel(args.clients, range(args.clients),
             lambda i, _: clients[i].describe_clusters(clusters=[cluster]))

    def run_task(c):
        r = c.run_task(cluster=cluster, taskDefinition=family, count=1, launchType="EC2")
        return ([t["taskArn"] for t in r.get("tasks", [])],
                [f.get("reason", "?") for f in r.get("failures", [])])

    run_stats, run_ok = measure(args, "RunTask", clients, run_task, args.seconds, args.calls,
                                args.procs)
    task_arns = [a for arns, _ in run_ok for a in arns]
    run_stats["tasks_started"] = len(task_arns)
    run_stats["responses_without_exactly_one_task"] = sum(1 for arns, _ in run_ok if len(arns) != 1)
    run_stats["failures_in_responses"] = sum(len(f) for _, f in run_ok)
    reasons = {}
    for _, fs in run_ok:
        for f in fs:
            reasons[f] = reasons.get(f, 0) + 1
    run_stats["failure_reasons"] = reasons

    # Ground truth from the server: ListTasks of the cluster.
    listed = set(list_all_tasks(clients[0], cluster))
    run_stats["list_tasks_count"] = len(listed)
    run_stats["all_started_tasks_listed"] = set(task_arns) <= listed
    log(f"{args.name}: {len(task_arns)} tasks started, ListTasks lists {len(listed)}, "
        f"failures in RunTask answers: {run_stats['failures_in_responses']} {reasons}")

    pool = task_arns or ["missing"]

    def describe_tasks(c):
        arns = [pool[random.randrange(len(pool))] for _ in range(10)]
        r = c.describe_tasks(cluster=cluster, tasks=arns)
        return (len(r.get("tasks", [])), len(r.get("failures", [])))

    desc_stats, desc_ok = measure(args, "DescribeTasks", clients, describe_tasks,
                                  args.seconds, args.calls, args.procs)
    desc_stats["tasks_returned"] = sum(n for n, _ in desc_ok)
    desc_stats["failures_in_responses"] = sum(f for _, f in desc_ok)
    # 10 ARNs drawn with replacement: a server may fold duplicates, so count distinct
    # answers loosely — every answer must carry at least one task and no failures.
    desc_stats["answers_without_tasks"] = sum(1 for n, _ in desc_ok if n == 0)

    # Latency of one client alone (service time without queueing behind 99 others).
    solo = {}
    for label, fn in (("RunTask", run_task), ("DescribeTasks", describe_tasks)):
        s, _ = measure(args, f"{label} (1 client)", clients[:1], fn, 5.0, 300)
        solo[label] = s

    result = {
        "name": args.name,
        "client": "boto3",
        "endpoint": args.endpoint,
        "instances": args.instances,
        "clients": args.clients,
        "client_processes": args.procs,
        "calls_cap": args.calls,
        "seconds_cap": args.seconds,
        "run_task": run_stats,
        "describe_tasks": desc_stats,
        "solo": solo,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
