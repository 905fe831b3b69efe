"""`bench.py secrets`: launch latency of a task with a task role and 10 secrets against the
same task without (BENCHMARKS.md, "Launch latency with a task role and 10 secrets").

One server, one `berth agent` (Docker), two task definitions of the same busybox image and
command:
  (a) plain: the launch mode's task;
  (b) the same container with `taskRoleArn` (a role trusting ecs-tasks.amazonaws.com),
      `executionRoleArn` (the AWS managed AmazonECSTaskExecutionRolePolicy plus an inline
      ssm:GetParameters / kms:Decrypt statement) and 10 `secrets`, SSM SecureString
      parameters (the agent reads them with the execution role in one GetParameters call,
      after the image and before the container's create).
Launched alternately, one task at a time, the order rotating (a b, b a, …), each timed as the
launch mode times it (RunTask sent → DescribeTasks says RUNNING, `berth_launch`). The first
(b) container's environment is checked for the 10 values (docker inspect, not timed).

Target (issue 19): the median of (b) at most 1.1x the median of (a), same run.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import re
import subprocess
import sys
import urllib.parse
import uuid

from bench import (
    SLEEP_COMMAND,
    DockerEvents,
    berth_launch,
    client_from,
    load_average,
    log,
    print_table,
    register_task_definition,
    summary,
    wait_instances,
    write_json,
)

SSM_TARGET = "AmazonSSM"
TRUST_ECS_TASKS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
READ_SECRETS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ssm:GetParameters", "kms:Decrypt"], "Resource": "*"}],
}
TASK_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}],
}


def iam(client, action, params):
    """One IAM call (query protocol, form-encoded POST, SigV4 for `iam`); the XML answer."""
    body = urllib.parse.urlencode(dict(params, Action=action, Version="2010-05-08")).encode()
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    ctype = "application/x-www-form-urlencoded; charset=utf-8"
    canonical = (
        f"POST\n/\n\ncontent-type:{ctype}\nhost:{client.netloc}\nx-amz-date:{amz_date}\n\n"
        "content-type;host;x-amz-date\n" + hashlib.sha256(body).hexdigest()
    )
    scope = f"{date}/{client.region}/iam/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(client._signing_key(date, "iam"), to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": ctype,
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={client.access_key}/{scope}, "
        f"SignedHeaders=content-type;host;x-amz-date, Signature={signature}",
    }
    conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
    try:
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        data = resp.read().decode()
    finally:
        conn.close()
    if resp.status != 200:
        raise SystemExit(f"IAM {action}: HTTP {resp.status} {data[:500]}")
    return data


def create_role(client, name, managed=None, inline=None):
    """A role ECS tasks may assume, with a managed policy and an inline one; its ARN."""
    answer = iam(client, "CreateRole", {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(TRUST_ECS_TASKS)})
    arn = re.search(r"<Arn>([^<]+)</Arn>", answer).group(1)
    if managed:
        iam(client, "AttachRolePolicy", {"RoleName": name, "PolicyArn": managed})
    if inline:
        iam(client, "PutRolePolicy", {"RoleName": name, "PolicyName": "bench", "PolicyDocument": json.dumps(inline)})
    return arn


def f(v):
    """A figure for printing: NaN when it is missing."""
    return float("nan") if v is None else v


def container_env(task_arn):
    """The Env of the task's container (docker inspect)."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.amazonaws.ecs.task-arn={task_arn}"],
        capture_output=True, text=True,
    ).stdout.split()
    if not ids:
        raise SystemExit(f"no container for {task_arn}")
    out = subprocess.run(["docker", "inspect", "-f", "{{json .Config.Env}}", ids[0]], capture_output=True, text=True)
    return json.loads(out.stdout)


def cmd_secrets(args):
    ecs = client_from(args)
    run = uuid.uuid4().hex[:8]
    values = {}
    secrets = []
    for i in range(1, args.secrets + 1):
        name = f"/bench-{run}/secret-{i}"
        values[f"SECRET_{i}"] = f"value-{i}-{uuid.uuid4().hex}"
        ecs.call("ssm", f"{SSM_TARGET}.PutParameter",
                 {"Name": name, "Type": "SecureString", "Value": values[f"SECRET_{i}"]})
        secrets.append({"name": f"SECRET_{i}", "valueFrom": name})
    task_role = create_role(ecs, f"bench-task-{run}", inline=TASK_ROLE_POLICY)
    execution_role = create_role(ecs, f"bench-exec-{run}", managed=EXECUTION_POLICY, inline=READ_SECRETS)
    plain = register_task_definition(ecs, "bench-secrets-plain", args.image, SLEEP_COMMAND, args.cpu, args.memory)
    container = {
        "name": "app", "image": args.image, "essential": True, "cpu": args.cpu, "memory": args.memory,
        "command": SLEEP_COMMAND, "secrets": secrets,
    }
    with_secrets = ecs.ecs("RegisterTaskDefinition", {
        "family": "bench-secrets-role",
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "taskRoleArn": task_role,
        "executionRoleArn": execution_role,
        "containerDefinitions": [container],
    })["taskDefinition"]["taskDefinitionArn"]
    wait_instances(ecs, args.cluster, 1, 60)
    log(f"secrets: (a) {plain}; (b) {with_secrets}: task role {task_role}, execution role {execution_role}, "
        f"{args.secrets} SSM SecureString secrets")
    defs = {"a": plain, "b": with_secrets}
    events = DockerEvents()
    rows = {"a": [], "b": []}
    try:
        total = args.warmup + args.tasks
        for i in range(total):
            order = ["a", "b"] if i % 2 == 0 else ["b", "a"]
            got = {who: berth_launch(ecs, args.cluster, defs[who], args.poll_ms / 1000, events) for who in order}
            if i == 0:
                env = dict(e.split("=", 1) for e in container_env(got["b"]["arn"]))
                wrong = [k for k, v in values.items() if env.get(k) != v]
                if wrong:
                    raise SystemExit(f"(b)'s container lacks the secrets {wrong}")
                log(f"secrets: (b)'s container has the {len(values)} values in its environment")
            if i >= args.warmup:
                for who in order:
                    rows[who].append(got[who])
            a, b = got["a"], got["b"]
            log(
                f"{'warm-up' if i < args.warmup else 'launch'} {i + 1}/{total} ({' then '.join(order)}): "
                f"(a) RUNNING {a['running_ms']:.1f} ms (docker create {f(a['docker_create_ms']):.1f}); "
                f"(b) RUNNING {b['running_ms']:.1f} ms (docker create {f(b['docker_create_ms']):.1f})"
            )
    finally:
        events.close()
    col = lambda rs, key: [r[key] for r in rs if r.get(key) is not None]  # noqa: E731
    result = {
        "tasks": args.tasks,
        "warmup": args.warmup,
        "poll_ms": args.poll_ms,
        "secrets": args.secrets,
        "secrets_source": "SSM SecureString",
        "load_average": load_average(),
    }
    for who, rs in rows.items():
        result[f"{who}_running"] = summary(col(rs, "running_ms"))
        result[f"{who}_server"] = summary(col(rs, "server_ms"))
        result[f"{who}_runtask"] = summary(col(rs, "runtask_ms"))
        result[f"{who}_docker_create"] = summary(col(rs, "docker_create_ms"))
        result[f"{who}_docker_start"] = summary(col(rs, "docker_start_ms"))
        result[f"{who}_create_to_start"] = summary(
            [r["docker_start_ms"] - r["docker_create_ms"] for r in rs
             if r["docker_start_ms"] is not None and r["docker_create_ms"] is not None])
        result[f"{who}_start_to_running"] = summary(
            [r["running_ms"] - r["docker_start_ms"] for r in rs if r["docker_start_ms"] is not None])
    for stat in ("p50", "p90", "mean"):
        for figure in ("running", "server", "docker_create"):
            a, b = result[f"a_{figure}"][stat], result[f"b_{figure}"][stat]
            result[f"ratio_{stat}_{figure}"] = b / a if a and b is not None else None
    # Paired by round (a and b of one round launched back to back): b − a.
    diffs = [b["running_ms"] - a["running_ms"] for a, b in zip(rows["a"], rows["b"])]
    result["paired_b_minus_a_running"] = summary(diffs)
    result["rounds_b_slower"] = sum(1 for d in diffs if d > 0)
    result["create_b_minus_a"] = summary(
        [b["docker_create_ms"] - a["docker_create_ms"] for a, b in zip(rows["a"], rows["b"])
         if a["docker_create_ms"] is not None and b["docker_create_ms"] is not None])
    result["ratio"] = result["ratio_p50_running"]
    result["target"] = 1.1
    result["samples"] = {
        who: [{k: v for k, v in r.items() if k != "poll_call_ms"} for r in rs] for who, rs in rows.items()
    }
    write_json(args.out, result)
    table = []
    for who, name in (("a", "(a) plain"), ("b", f"(b) roles + {args.secrets} secrets")):
        table += [
            (f"{name}: RunTask sent → RUNNING", f"{who}_running"),
            ("  server: startedAt − createdAt", f"{who}_server"),
            ("  RunTask answered", f"{who}_runtask"),
            ("  Docker 'create' event (after RunTask sent)", f"{who}_docker_create"),
            ("  'create' → 'start' event", f"{who}_create_to_start"),
            ("  'start' event → RUNNING seen", f"{who}_start_to_running"),
        ]
    print_table(f"launch latency, plain vs task role + {args.secrets} secrets, {args.tasks} rounds "
                f"(+{args.warmup} warm-up), ms", table, result)
    print(
        "ratio (b) / (a): RunTask → RUNNING "
        + ", ".join(f"{stat} {result[f'ratio_{stat}_running']:.3f}x" for stat in ("p50", "p90", "mean"))
        + "; RunTask → Docker 'create' "
        + ", ".join(f"{stat} {result[f'ratio_{stat}_docker_create']:.3f}x" for stat in ("p50", "p90", "mean"))
        + f"; target: p50 ≤ 1.1x: {'met' if result['ratio'] <= 1.1 else 'NOT met'}",
        file=sys.stderr,
    )
    print(f"medians, ms: (a) {result['a_running']['p50']:.1f}, (b) {result['b_running']['p50']:.1f}; "
          f"difference {result['b_running']['p50'] - result['a_running']['p50']:.1f} ms; per round b − a: "
          f"p50 {result['paired_b_minus_a_running']['p50']:+.1f} ms, (b) slower in {result['rounds_b_slower']} of "
          f"{len(diffs)}; RunTask → 'create' b − a p50 {f(result['create_b_minus_a']['p50']):+.1f} ms",
          file=sys.stderr)
