"""`bench.py storm`: the service throttle under a storm (BENCHMARKS.md, "Service throttle:
the storm"). A SIMULATION: the agents run `--runtime simulated`, where a container whose
command is `exit 1` exits at once with code 1 (crates/runtime/src/simulated/behaviour.rs).

1. Idle: --services services of one task each, on a task definition that runs until stopped,
   steady; then --idle seconds with the DescribeServices load below, sampling the server's
   RSS, anonymous memory and CPU once a second. That is the server at rest with the same
   services, agents and API load.
2. Storm: every service is updated to a task definition whose container exits at once
   (minimumHealthyPercent 0, so the old task goes), and for --seconds seconds every new task
   of every service fails. The same samples, and the same DescribeServices load: one thread
   calling DescribeServices for 10 services at a time, round-robin over all of them, every
   --describe-ms.
3. Afterwards, per service: every task it launched since its UpdateService (ListTasks
   STOPPED + RUNNING, DescribeTasks createdAt), counted per minute, against the most launch
   attempts ECS's schedule allows in the window (the scheduler's `max_attempts_within`,
   mirrored below): 0 s, at once, then 10 s, 20 s, 40 s … doubling, 27 min at most.

Targets (issue 14): the schedule is followed (no service launches more than the schedule
allows), the server's RSS stays within 1.2× of idle, DescribeServices p99 < 50 ms.
"""

import sys
import threading
import time

from bench import (
    Service,
    client_from,
    cpu_seconds,
    describe_tasks,
    list_all,
    load_average,
    log,
    register_task_definition,
    status_kib,
    summary,
    wait_instances,
    write_json,
)

THROTTLE_BASE_SECONDS = 10.0
THROTTLE_MAX_SECONDS = 27 * 60.0
EVENT = "is unable to consistently start tasks successfully"


def throttle_delay(failures):
    """Seconds between failed attempt `failures` and the next (scheduler's throttle_delay)."""
    if failures < 2:
        return 0.0
    return min(THROTTLE_BASE_SECONDS * 2 ** min(failures - 2, 16), THROTTLE_MAX_SECONDS)


def max_attempts_within(window):
    """The most attempts ECS's schedule allows within `window` seconds of the first."""
    attempts, at = 1, 0.0
    while True:
        at += throttle_delay(attempts)
        if at > window:
            return attempts
        attempts += 1


def schedule_times(window):
    """When the attempts fall, each failing at once: [0, 0, 10, 30, 70, 150, 310, …]."""
    times, at, n = [0.0], 0.0, 1
    while True:
        at += throttle_delay(n)
        if at > window:
            return times
        times.append(at)
        n += 1


class Sampler:
    """The server's RSS, anonymous RSS (heap) and CPU, once a second, in a thread."""

    def __init__(self, pid):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0, c0 = time.monotonic(), cpu_seconds(self.pid)
        while not self._stop.wait(1.0):
            now, cpu = time.monotonic(), cpu_seconds(self.pid)
            self.samples.append({
                "t": now - t0,
                "rss_kib": status_kib(self.pid, "VmRSS"),
                "anon_kib": status_kib(self.pid, "RssAnon"),
                "threads": status_kib(self.pid, "Threads"),
                "cpu_s": None if cpu is None or c0 is None else cpu - c0,
            })

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def report(self):
        s = self.samples
        rss = [x["rss_kib"] for x in s if x["rss_kib"] is not None]
        anon = [x["anon_kib"] for x in s if x["anon_kib"] is not None]
        span = s[-1]["t"] if s else 0.0
        cpu = s[-1]["cpu_s"] if s and s[-1]["cpu_s"] is not None else None
        return {
            "seconds": span,
            "rss_kib": summary(rss),
            "rss_last_kib": rss[-1] if rss else None,
            "anon_kib": summary(anon),
            "anon_last_kib": anon[-1] if anon else None,
            "threads_max": max((x["threads"] or 0 for x in s), default=None),
            "cpu_percent_of_a_core": None if cpu is None or span <= 0 else 100.0 * cpu / span,
        }


class DescribeLoad:
    """DescribeServices, 10 services a call, round-robin, every `every_s`; latencies in ms."""

    def __init__(self, args, cluster, names, every_s):
        self.ecs = client_from(args)
        self.cluster, self.names, self.every_s = cluster, names, every_s
        self.latencies, self.errors, self._stop = [], 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self._stop.is_set():
            batch = [self.names[(i + k) % len(self.names)] for k in range(min(10, len(self.names)))]
            i += len(batch)
            t = time.perf_counter()
            try:
                self.ecs.ecs("DescribeServices", {"cluster": self.cluster, "services": batch})
                self.latencies.append((time.perf_counter() - t) * 1000)
            except Exception:  # noqa: BLE001 — counted, the load goes on
                self.errors += 1
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def launches(ecs, cluster, name, since_ms):
    """Seconds after `since_ms` (epoch ms) at which the service's tasks were created."""
    arns = []
    for desired in ("STOPPED", "RUNNING"):
        arns += list_all(ecs, "ListTasks", "taskArns", {"cluster": cluster, "serviceName": name, "desiredStatus": desired})
    out = []
    for t in describe_tasks(ecs, cluster, arns):
        created = t.get("createdAt")
        created_ms = created * 1000 if isinstance(created, (int, float)) else None
        if created_ms is not None and created_ms >= since_ms:
            out.append((created_ms - since_ms) / 1000)
    return sorted(out)


def cmd_storm(args):
    ecs = client_from(args)
    wait_instances(ecs, args.cluster, args.agents, args.register_timeout)
    ok_def = register_task_definition(ecs, "bench-storm-ok", "busybox", ["sleep", "100000"], args.cpu, args.memory)
    fail_def = register_task_definition(ecs, "bench-storm-fail", "busybox", ["sh", "-c", "exit 1"], args.cpu, args.memory)
    names = [f"bench-storm-{i:03d}" for i in range(args.services)]
    services = [Service(ecs, args.cluster, n) for n in names]
    for svc in services:
        svc.create(ok_def, 1, deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 0})
    for svc in services:
        svc.wait_steady(args.timeout, poll_s=0.2)
    log(f"storm: {args.services} services of one task steady on {args.agents} simulated agents; "
        f"{args.idle:.0f} s idle window with DescribeServices every {args.describe_ms:.0f} ms")

    with DescribeLoad(args, args.cluster, names, args.describe_ms / 1000) as idle_load, Sampler(args.server_pid) as idle:
        time.sleep(args.idle)
    idle_report = idle.report()

    log(f"storm: updating {args.services} services to a task definition whose container exits at once; "
        f"{args.seconds:.0f} s of storm")
    since_ms = {}
    with DescribeLoad(args, args.cluster, names, args.describe_ms / 1000) as storm_load, \
            Sampler(args.server_pid) as storm:
        for svc in services:
            since_ms[svc.name] = time.time() * 1000
            svc.update(taskDefinition=fail_def)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(30.0, args.seconds - (time.monotonic() - t0)))
            s = storm.samples[-1] if storm.samples else {}
            log(f"storm: {time.monotonic() - t0:5.0f} s, server RSS {s.get('rss_kib', 0) / 1024:.1f} MiB "
                f"(anon {s.get('anon_kib', 0) / 1024:.1f}), {s.get('threads')} threads, DescribeServices calls {len(storm_load.latencies)}")
    storm_report = storm.report()

    window = args.seconds
    allowed = max_attempts_within(window)
    per_service, events_seen = {}, 0
    for svc in services:
        times = [t for t in launches(ecs, args.cluster, svc.name, since_ms[svc.name]) if t <= window]
        per_minute = [0] * (int(window // 60) + (1 if window % 60 else 0))
        for t in times:
            per_minute[min(int(t // 60), len(per_minute) - 1)] += 1
        per_service[svc.name] = {"launches": len(times), "at_s": times, "per_minute": per_minute}
        described = svc.describe()
        if any(EVENT in e.get("message", "") for e in described.get("events", [])):
            events_seen += 1
    counts = [v["launches"] for v in per_service.values()]
    first = per_service[names[0]]
    idle_rss = idle_report["rss_kib"]["p50"]
    storm_rss_max = storm_report["rss_kib"]["max"]
    storm_lat = summary(storm_load.latencies)
    idle_lat = summary(idle_load.latencies)
    result = {
        "simulation": True,
        "agents": args.agents,
        "services": args.services,
        "storm_seconds": window,
        "idle_seconds": args.idle,
        "describe_every_ms": args.describe_ms,
        "schedule_s": schedule_times(window),
        "schedule_max_launches": allowed,
        "launches": summary(counts),
        "services_over_schedule": sum(1 for c in counts if c > allowed),
        "services_with_throttle_event": events_seen,
        "first_service": first,
        "idle": idle_report,
        "storm": storm_report,
        "rss_ratio_max_over_idle_p50": storm_rss_max / idle_rss if idle_rss else None,
        "rss_ratio_last_over_idle_p50": storm_report["rss_last_kib"] / idle_rss if idle_rss else None,
        "describe_services_ms": {"idle": idle_lat, "storm": storm_lat},
        "describe_services_errors": {"idle": idle_load.errors, "storm": storm_load.errors},
        "load_average": load_average(),
        "per_service": per_service,
    }
    write_json(args.out, result)

    mib = lambda k: f"{k / 1024:.1f}" if k is not None else "-"  # noqa: E731
    ms = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    out = sys.stderr
    print(f"\nstorm (SIMULATED runtime: no containers run): {args.services} services on {args.agents} agents, "
          f"every task failing at once, {window:.0f} s:", file=out)
    print(f"ECS's schedule: attempts at {', '.join(f'{t:.0f}' for t in schedule_times(window))} s "
          f"→ at most {allowed} launches per service in {window:.0f} s", file=out)
    print(f"launches per service: min {min(counts)}, median {result['launches']['p50']:.0f}, max {max(counts)}; "
          f"over the schedule: {result['services_over_schedule']}; with ECS's throttle event: "
          f"{events_seen}/{args.services}", file=out)
    print(f"first service, launches per minute: {first['per_minute']} (at {', '.join(f'{t:.1f}' for t in first['at_s'])} s)",
          file=out)
    print("| window | RSS p50 / max MiB | anon (heap) p50 / max MiB | server CPU % of a core | "
          "DescribeServices p50 / p99 / max ms (calls, errors) |", file=out)
    for label, r, lat, errors in (("idle", idle_report, idle_lat, idle_load.errors),
                                  ("storm", storm_report, storm_lat, storm_load.errors)):
        cpu = r["cpu_percent_of_a_core"]
        print(f"| {label} | {mib(r['rss_kib']['p50'])} / {mib(r['rss_kib']['max'])} | {mib(r['anon_kib']['p50'])} / "
              f"{mib(r['anon_kib']['max'])} | {'-' if cpu is None else f'{cpu:.1f}'} | {ms(lat['p50'])} / "
              f"{ms(lat['p99'])} / {ms(lat['max'])} ({lat['n']}, {errors}) |", file=out)
    ratio = result["rss_ratio_max_over_idle_p50"]
    print(f"RSS: storm max / idle median = {ratio:.2f}× (target ≤ 1.2×); DescribeServices p99 in the storm "
          f"{ms(storm_lat['p99'])} ms (target < 50)", file=out)

