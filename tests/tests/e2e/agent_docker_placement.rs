//! Placement and start-up order with real `berth agent`s on the real Docker Engine, driven
//! by the real `aws` CLI: two agents with different attributes in one cluster take tasks by
//! `memberOf`, `spread` and `distinctInstance` (and each task really runs on the instance it
//! was placed on); a task's containers start in `dependsOn` order (START, COMPLETE,
//! HEALTHY), judged by Docker's own timestamps, and an unmet SUCCESS stops the task.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, describe_task, docker_inspect, register, wait_for,
    wait_instances, wait_status, wait_statuses,
};
use berth_e2e::{BerthServer, assert_ok, ok_json, sigv4, stdout_of, unique};
use serde_json::{Value, json};

/// The label the agent puts on every container with its container instance's ARN.
const INSTANCE_LABEL: &str = "berth.container-instance-arn";

/// A container that sleeps until it is stopped (stopTimeout 1: busybox sleep as PID 1
/// ignores SIGTERM).
fn sleeper(image: &str) -> Value {
    json!({
        "name": "main", "image": image, "memory": 32, "essential": true, "stopTimeout": 1,
        "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]
    })
}

/// `aws ecs run-task --count COUNT EXTRA...`: the whole answer.
fn run_tasks(s: &BerthServer, cluster: &str, td: &str, count: u32, extra: &[&str]) -> Value {
    let count = count.to_string();
    let mut args = vec![
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        td,
        "--count",
        &count,
    ];
    args.extend_from_slice(extra);
    ok_json(&s.aws(&args))
}

fn task_arns(answer: &Value) -> Vec<String> {
    answer["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect()
}

/// (task ARN, container instance ARN) of every task a RunTask answer started.
fn placements(answer: &Value) -> Vec<(String, String)> {
    answer["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["taskArn"].as_str().unwrap().to_owned(),
                t["containerInstanceArn"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn attribute<'a>(instance: &'a Value, name: &str) -> Option<&'a str> {
    instance["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)?
        .get("value")?
        .as_str()
}

/// Checks a RUNNING task runs where it was placed: DescribeTasks names `instance_arn`, and
/// its one container is running in Docker with ECS's labels (task, cluster, container name)
/// and the agent's label naming that container instance. (DescribeTasks has no `runtimeId`
/// to compare the container id with: Berth drops it.)
#[track_caller]
fn assert_runs_on(s: &BerthServer, cluster: &str, task: &Value, instance_arn: &str) {
    let task_arn = task["taskArn"].as_str().unwrap();
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert_eq!(task["containerInstanceArn"], instance_arn, "{task:#}");
    let ids = containers_of(s, task_arn);
    assert_eq!(ids.len(), 1, "{task_arn}: {ids:?}");
    let inspected = docker_inspect(s, &ids[0]);
    let labels = &inspected["Config"]["Labels"];
    assert_eq!(labels["com.amazonaws.ecs.task-arn"], task_arn);
    assert_eq!(labels["com.amazonaws.ecs.cluster"], cluster);
    assert_eq!(labels["com.amazonaws.ecs.container-name"], "main");
    assert_eq!(labels[INSTANCE_LABEL], instance_arn, "{labels:#}");
    assert_eq!(
        inspected["State"]["Running"], true,
        "{:#}",
        inspected["State"]
    );
}

/// The cluster's containers in Docker, running or not.
fn cluster_containers(s: &BerthServer, cluster: &str) -> Vec<String> {
    let label = format!("label=com.amazonaws.ecs.cluster={cluster}");
    let out = s.docker(&["ps", "-aq", "--filter", &label]);
    assert_ok(&out, "docker ps");
    stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// stop-task for every task, then waits until all are STOPPED and the cluster's containers
/// are gone from Docker (the agents run with a cleanup delay of 3 s).
fn stop_and_wait_removed(s: &BerthServer, cluster: &str, arns: &[String]) {
    for arn in arns {
        ok_json(&s.aws(&["ecs", "stop-task", "--cluster", cluster, "--task", arn]));
    }
    wait_statuses(s, cluster, arns, "STOPPED");
    wait_for(
        "the stopped tasks' containers to be removed",
        Duration::from_secs(60),
        || cluster_containers(s, cluster).is_empty().then_some(()),
    );
}

#[test]
fn two_agents_take_tasks_by_constraint_and_strategy() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "placement-");

    // Two agents on this one host: own data dirs, own (free) metadata ports.
    let agent = |stack: &str, zone: &str| {
        let stack = format!("stack={stack}");
        Agent::start(
            &s,
            &cluster,
            &[
                "--attribute",
                &stack,
                "--availability-zone",
                zone,
                "--cleanup-delay-seconds",
                "3",
            ],
        )
    };
    let blue_agent = agent("blue", "zone-a");
    let green_agent = agent("green", "zone-b");
    let instances = wait_instances(&s, &cluster, 2);
    let by_stack = |stack: &str| -> String {
        let instance = instances
            .iter()
            .find(|i| attribute(i, "stack") == Some(stack))
            .unwrap_or_else(|| panic!("no instance with stack={stack}: {instances:#?}"));
        instance["containerInstanceArn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let blue = by_stack("blue");
    let green = by_stack("green");
    assert_ne!(blue, green);
    let zone = |arn: &str| {
        let instance = instances
            .iter()
            .find(|i| i["containerInstanceArn"] == arn)
            .unwrap();
        attribute(instance, "ecs.availability-zone").map(str::to_owned)
    };
    assert_eq!(zone(&blue).as_deref(), Some("zone-a"));
    assert_eq!(zone(&green).as_deref(), Some("zone-b"));
    eprintln!("two agents connected after {:?}", started.elapsed());
    let mut all_tasks = Vec::new();

    // (b) A constraint no instance meets: no task, and each instance says why.
    let nowhere = register(&s, &unique("nowhere-"), json!([sleeper(&image)]));
    let constraint =
        |expression: &str| json!([{"type": "memberOf", "expression": expression}]).to_string();
    let red = constraint("attribute:stack == red");
    let v = run_tasks(
        &s,
        &cluster,
        &nowhere,
        1,
        &["--placement-constraints", &red],
    );
    assert_eq!(v["tasks"], json!([]), "{v:#}");
    let mut failures: Vec<(String, String)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["arn"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    failures.sort();
    let mut expected = vec![
        (blue.clone(), "ATTRIBUTE".to_owned()),
        (green.clone(), "ATTRIBUTE".to_owned()),
    ];
    expected.sort();
    assert_eq!(failures, expected, "{v:#}");
    let listed = ok_json(&s.aws(&["ecs", "list-tasks", "--cluster", &cluster]));
    assert_eq!(listed["taskArns"], json!([]), "{listed:#}");

    // (a) memberOf: every task on the green instance, and running there.
    let greens = register(&s, &unique("green-"), json!([sleeper(&image)]));
    let on_green = constraint("attribute:stack == green");
    let v = run_tasks(
        &s,
        &cluster,
        &greens,
        3,
        &["--placement-constraints", &on_green],
    );
    assert_eq!(v["failures"], json!([]), "{v:#}");
    let placed = placements(&v);
    assert_eq!(placed.len(), 3, "{v:#}");
    assert!(placed.iter().all(|(_, on)| *on == green), "{v:#}");
    all_tasks.extend(placed);

    // (c) spread over the availability zones: two tasks in each.
    let spread = register(&s, &unique("spread-"), json!([sleeper(&image)]));
    let v = run_tasks(
        &s,
        &cluster,
        &spread,
        4,
        &[
            "--placement-strategy",
            "type=spread,field=attribute:ecs.availability-zone",
        ],
    );
    assert_eq!(v["failures"], json!([]), "{v:#}");
    let placed = placements(&v);
    let on = |instance: &str| placed.iter().filter(|(_, on)| on == instance).count();
    assert_eq!((on(&blue), on(&green)), (2, 2), "{v:#}");
    all_tasks.extend(placed);

    // (d) distinctInstance, three tasks, two instances: one on each, and failures for the
    // third naming the instances that already hold one.
    let distinct = register(&s, &unique("distinct-"), json!([sleeper(&image)]));
    let v = run_tasks(
        &s,
        &cluster,
        &distinct,
        3,
        &["--placement-constraints", "type=distinctInstance"],
    );
    let placed = placements(&v);
    assert_eq!(placed.len(), 2, "{v:#}");
    assert_ne!(placed[0].1, placed[1].1, "{v:#}");
    let failures = v["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "{v:#}");
    for failure in failures {
        assert_eq!(
            failure["reason"], "DistinctInstance placement constraint unsatisfied.",
            "{v:#}"
        );
        assert!(
            failure["arn"] == blue.as_str() || failure["arn"] == green.as_str(),
            "{v:#}"
        );
    }
    all_tasks.extend(placed);

    // Every task runs, on the instance it was placed on.
    let arns: Vec<String> = all_tasks.iter().map(|(arn, _)| arn.clone()).collect();
    let t0 = Instant::now();
    let running = wait_statuses(&s, &cluster, &arns, "RUNNING");
    eprintln!(
        "{} tasks RUNNING {:?} after the last run-task",
        arns.len(),
        t0.elapsed()
    );
    for (task, (_, instance)) in running.iter().zip(&all_tasks) {
        assert_runs_on(&s, &cluster, task, instance);
    }
    // And nothing else runs in Docker for this cluster.
    assert_eq!(cluster_containers(&s, &cluster).len(), arns.len());

    // Each agent stops and removes its own.
    stop_and_wait_removed(&s, &cluster, &arns);
    drop(blue_agent);
    drop(green_agent);
    eprintln!("whole test {:?}", started.elapsed());
}

/// Nanoseconds since the epoch of a Docker timestamp (RFC 3339 with up to nine fractional
/// digits, `Z` or an offset).
#[track_caller]
fn docker_time(v: &Value) -> i128 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let num = |r: std::ops::Range<usize>| -> u32 {
        s.get(r)
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp {s}"))
    };
    let base = sigv4::unix_from_parts(
        i64::from(num(0..4)),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    );
    let mut tail = &s[19..];
    let mut nanos: i128 = 0;
    if let Some(fraction) = tail.strip_prefix('.') {
        let digits: String = fraction.chars().take_while(char::is_ascii_digit).collect();
        tail = &fraction[digits.len()..];
        nanos = format!("{digits:0<9}")[..9].parse().unwrap();
    }
    let offset: i64 = match tail {
        "Z" => 0,
        t if t.len() == 6 => {
            let sign = if t.starts_with('-') { -1 } else { 1 };
            sign * (t[1..3].parse::<i64>().unwrap() * 3600 + t[4..6].parse::<i64>().unwrap() * 60)
        }
        t => panic!("bad timestamp offset {t} in {s}"),
    };
    i128::from(base - offset) * 1_000_000_000 + nanos
}

/// The task's containers in Docker, by ECS's container-name label: name → `docker inspect`.
fn inspect_by_name(s: &BerthServer, task_arn: &str) -> BTreeMap<String, Value> {
    containers_of(s, task_arn)
        .iter()
        .map(|id| {
            let inspected = docker_inspect(s, id);
            let name = inspected["Config"]["Labels"]["com.amazonaws.ecs.container-name"]
                .as_str()
                .unwrap()
                .to_owned();
            (name, inspected)
        })
        .collect()
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}: {task:#}"))
}

/// Registers a bridge-mode task definition with one task-scoped scratch volume, `shared`.
fn register_with_shared_volume(s: &BerthServer, family: &str, containers: Value) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--volumes",
        r#"[{"name": "shared"}]"#,
        "--container-definitions",
        &containers.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn depends_on_orders_start_up_on_docker() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "depends-");
    let agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "3"]);
    wait_instances(&s, &cluster, 1);

    let shared = json!([{"sourceVolume": "shared", "containerPath": "/shared"}]);
    let definition = |name: &str, essential: bool, script: &str| {
        json!({
            "name": name, "image": image, "memory": 32, "essential": essential,
            "stopTimeout": 1, "mountPoints": shared,
            "entryPoint": ["sh", "-c"], "command": [script]
        })
    };
    // init (non-essential) runs until side has started, so "side started before init
    // finished" is a fact, not a race; app needs init COMPLETE and checks init's file;
    // late needs side HEALTHY.
    let init = definition(
        "init",
        false,
        "until [ -f /shared/side-started ]; do sleep 0.1; done; echo done > /shared/init-done",
    );
    let mut side = definition(
        "side",
        true,
        "touch /shared/side-started; exec sleep 100000",
    );
    side["dependsOn"] = json!([{"containerName": "init", "condition": "START"}]);
    side["healthCheck"] = json!({"command": ["CMD-SHELL", "true"], "interval": 5,
                                 "timeout": 2, "retries": 3, "startPeriod": 0});
    let mut app = definition(
        "app",
        true,
        "[ -f /shared/init-done ] || exit 7; exec sleep 100000",
    );
    app["dependsOn"] = json!([{"containerName": "init", "condition": "COMPLETE"}]);
    let mut late = definition("late", true, "exec sleep 100000");
    late["dependsOn"] = json!([{"containerName": "side", "condition": "HEALTHY"}]);
    let family = unique("depends-");
    let td = register_with_shared_volume(&s, &family, json!([late, app, side, init]));
    let v = run_tasks(&s, &cluster, &td, 1, &[]);
    assert_eq!(v["failures"], json!([]), "{v:#}");
    let arn = task_arns(&v).remove(0);

    // Every DescribeTasks answer on the way to RUNNING agrees with the order.
    let rank = |status: &Value| match status.as_str() {
        Some("RUNNING") => 1,
        Some("STOPPED") => 2,
        _ => 0,
    };
    let mut snapshots = 0;
    let running = wait_for("the task to run", Duration::from_secs(90), || {
        let task = describe_task(&s, &cluster, &arn);
        snapshots += 1;
        let status = |name: &str| rank(&container(&task, name)["lastStatus"]);
        assert!(
            status("side") == 0 || status("init") >= 1,
            "side ran before init started: {task:#}"
        );
        assert!(
            status("app") == 0 || status("init") == 2,
            "app ran before init completed: {task:#}"
        );
        assert_ne!(task["lastStatus"], "STOPPED", "{task:#}");
        (task["lastStatus"] == "RUNNING").then_some(task)
    });
    eprintln!(
        "RUNNING after {} DescribeTasks, {:?} into the test",
        snapshots,
        started.elapsed()
    );
    // RUNNING once every container has started; init has come and gone.
    assert_eq!(container(&running, "init")["lastStatus"], "STOPPED");
    assert_eq!(container(&running, "init")["exitCode"], 0, "{running:#}");
    for name in ["side", "app", "late"] {
        assert_eq!(
            container(&running, name)["lastStatus"],
            "RUNNING",
            "{running:#}"
        );
    }

    // Docker's own record of when each container started and finished.
    let docker = inspect_by_name(&s, &arn);
    assert_eq!(
        docker.keys().map(String::as_str).collect::<Vec<_>>(),
        ["app", "init", "late", "side"]
    );
    let state = |name: &str| &docker[name]["State"];
    let started_at = |name: &str| docker_time(&state(name)["StartedAt"]);
    assert_eq!(state("init")["Status"], "exited");
    assert_eq!(state("init")["ExitCode"], 0);
    let init_finished = docker_time(&state("init")["FinishedAt"]);
    // START: side started once init had, and (init waits for it) before init finished.
    assert!(started_at("init") <= started_at("side"));
    assert!(started_at("side") < init_finished);
    // COMPLETE: app started after init had exited (and found init's file).
    assert!(
        init_finished <= started_at("app"),
        "app started before init finished: {:#} / {:#}",
        state("init"),
        state("app")
    );
    assert_eq!(state("app")["Running"], true, "{:#}", state("app"));
    // HEALTHY: late started after a health check of side had passed. Docker keeps the last
    // five checks (25 s at a 5 s interval); this is read moments after RUNNING.
    let health = &state("side")["Health"];
    let first_pass = health["Log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["ExitCode"] == 0)
        .unwrap_or_else(|| panic!("no passing check of side: {health:#}"));
    assert!(
        docker_time(&first_pass["End"]) <= started_at("late"),
        "late started before side was healthy: {health:#} / {:#}",
        state("late")
    );
    assert!(started_at("side") <= started_at("late"));
    for name in ["side", "late"] {
        assert_eq!(state(name)["Running"], true, "{:#}", state(name));
    }

    // Stopped: every container gone after the cleanup delay, the task's volume with them.
    stop_and_wait_removed(&s, &cluster, std::slice::from_ref(&arn));
    let volume_filter = format!("name=ecs-{family}-");
    wait_for(
        "the task's volume to be removed",
        Duration::from_secs(30),
        || {
            let out = s.docker(&["volume", "ls", "-q", "--filter", &volume_filter]);
            assert_ok(&out, "docker volume ls");
            stdout_of(&out).trim().is_empty().then_some(())
        },
    );
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}

/// A SUCCESS dependency that exits non-zero: the dependent is never created, and the task
/// stops with the reason the agent gives.
#[test]
fn an_unmet_success_dependency_stops_the_task_on_docker() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "success-");
    // The default cleanup delay (3 h) keeps the stopped containers to inspect.
    let agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);

    let td = register(
        &s,
        &unique("success-"),
        json!([
            {"name": "check", "image": image, "memory": 32, "essential": false,
             "entryPoint": ["sh", "-c"], "command": ["sleep 1; exit 3"]},
            {"name": "app", "image": image, "memory": 32, "essential": true,
             "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"],
             "dependsOn": [{"containerName": "check", "condition": "SUCCESS"}]}
        ]),
    );
    let v = run_tasks(&s, &cluster, &td, 1, &[]);
    assert_eq!(v["failures"], json!([]), "{v:#}");
    let arn = task_arns(&v).remove(0);
    let stopped = wait_status(&s, &cluster, &arn, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"],
        "dependency check of container app exited with code 3 (condition SUCCESS)",
        "{stopped:#}"
    );
    let check = container(&stopped, "check");
    assert_eq!(check["lastStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(check["exitCode"], 3, "{stopped:#}");
    let app = container(&stopped, "app");
    assert_eq!(app["lastStatus"], "STOPPED", "{stopped:#}");
    assert!(
        app.get("exitCode").is_none_or(Value::is_null),
        "{stopped:#}"
    );

    // Docker never saw app: the task's only container is check, exited 3.
    let docker = inspect_by_name(&s, &arn);
    assert_eq!(
        docker.keys().map(String::as_str).collect::<Vec<_>>(),
        ["check"],
        "{docker:#?}"
    );
    assert_eq!(docker["check"]["State"]["ExitCode"], 3);
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}
