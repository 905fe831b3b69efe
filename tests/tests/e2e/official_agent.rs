//! The official Amazon ECS agent (v1.105.0, unmodified) as a container instance of Berth:
//! it registers with its attributes and capabilities, opens its ACS and telemetry sessions
//! (its ACS URL is signed the Go SDK's way: a `+` in the query is a space), pulls from
//! Berth's registry with an ECR token it asks Berth for, and runs bridge tasks with static
//! and dynamic host ports; an essential container's exit and StopTask stop tasks with
//! ECS's reasons; a service keeps its tasks on it (a container killed behind its back is
//! replaced) and moves them to another instance when it drains; it restarts with its tasks
//! running, rides out a Berth restart, and runs tasks in task cgroups with
//! `ECS_ENABLE_TASK_CPU_MEM_LIMIT=true`. Each test says plainly and passes when the agent
//! binary is not on the machine (scripts/test.sh unpacks it from ../shared/tools).

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    Agent, BridgeTasks, cluster_with_image, containers_of, describe_task, docker_inspect,
    docker_ps, fetch_page, httpd, register, run_bridge_tasks, run_task, wait_connected, wait_for,
    wait_instances, wait_status,
};
use berth_e2e::official_agent::{OfficialAgent, binary_or_skip};
use berth_e2e::service::Svc;
use berth_e2e::{BerthServer, assert_ok, ok_json, unique};
use serde_json::{Value, json};

#[test]
fn the_official_agent_registers_and_runs_bridge_tasks() {
    let Some(binary) = binary_or_skip("the_official_agent_registers_and_runs_bridge_tasks") else {
        return;
    };
    let started = Instant::now();
    let s = BerthServer::start();
    // The image lives only in Berth's registry: the agent must pull it with an ECR token.
    let (cluster, image) = cluster_with_image(&s, "official-");
    assert_ok(
        &s.docker(&["rmi", &image]),
        "docker rmi of the pushed image",
    );

    let agent = OfficialAgent::start(binary, &s, &cluster, &[]);
    let instance = wait_connected(&s, &cluster);
    eprintln!(
        "official agent registered and connected after {:?}",
        started.elapsed()
    );
    let attributes: Vec<&str> = instance["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    for expected in [
        "ecs.os-type",
        "ecs.capability.execution-role-ecr-pull",
        "com.amazonaws.ecs.capability.docker-remote-api.1.17",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.external",
    ] {
        assert!(
            attributes.contains(&expected),
            "no {expected}: {attributes:?}"
        );
    }
    assert!(
        instance["versionInfo"]["agentVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.105")),
        "{instance:#}"
    );
    assert!(
        instance["versionInfo"]["dockerVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("DockerVersion: ")),
        "{instance:#}"
    );

    let BridgeTasks {
        web_task,
        web_running,
        host_port,
        marker: marker2,
    } = run_bridge_tasks(&s, &cluster, &image);
    // The official agent reports the digest of the image each container runs; DescribeTasks
    // shows it, as ECS does: the manifest's digest in Berth's registry.
    let (repository, tag) = image
        .split_once('/')
        .and_then(|(_, rest)| rest.rsplit_once(':'))
        .unwrap();
    let described = ok_json(&s.aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        repository,
        "--image-ids",
        &format!("imageTag={tag}"),
    ]));
    assert_eq!(
        web_running["containers"][0]["imageDigest"], described["imageDetails"][0]["imageDigest"],
        "{web_running:#}"
    );

    // StopTask: STOPPED with the user's reason, the container no longer running.
    ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &web_task,
        "--reason",
        "done here",
    ]));
    let stopped = wait_status(&s, &cluster, &web_task, "STOPPED");
    assert_eq!(stopped["stoppedReason"], "done here", "{stopped:#}");
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped:#}");
    wait_for(
        "the stopped task's container to stop",
        Duration::from_secs(30),
        || docker_ps(&s, false, &web_task).is_empty().then_some(()),
    );
    // The other task still serves.
    assert!(fetch_page(host_port, &marker2).contains(&marker2));

    // ECS Anywhere's launch type: EXTERNAL tasks run on external instances.
    let sleeper = register(
        &s,
        &unique("external-"),
        json!([{
            "name": "main", "image": image, "memory": 32, "essential": true,
            "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]
        }]),
    );
    let out = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &sleeper,
        "--launch-type",
        "EXTERNAL",
    ]));
    assert_eq!(out["tasks"][0]["launchType"], "EXTERNAL", "{out:#}");
    let external = arn_of(&out["tasks"][0]);
    let running = wait_status(&s, &cluster, &external, "RUNNING");
    assert_eq!(running["launchType"], "EXTERNAL", "{running:#}");
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}

/// The host port of a RUNNING task's one container's first binding.
fn host_port(task: &Value) -> u16 {
    task["containers"][0]["networkBindings"][0]["hostPort"]
        .as_u64()
        .unwrap_or_else(|| panic!("no host port: {task:#}")) as u16
}

/// The service's tasks once `count` of them are RUNNING (desired and last status).
#[track_caller]
fn running_tasks(svc: &Svc, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} RUNNING tasks of {}", svc.name),
        Duration::from_secs(120),
        || {
            let tasks = svc.tasks("RUNNING");
            (tasks.len() == count && tasks.iter().all(|t| t["lastStatus"] == "RUNNING"))
                .then_some(tasks)
        },
    )
}

fn arn_of(task: &Value) -> String {
    task["taskArn"].as_str().unwrap().to_owned()
}

/// A service on the official agent: a task whose container is killed behind the agent's
/// back stops with ECS's reason and the service replaces it; when the instance drains,
/// the service's tasks move to another instance (a `berth agent` in the same cluster) and
/// the official agent stops their containers.
#[test]
fn the_official_agent_keeps_a_service_and_drains() {
    let Some(binary) = binary_or_skip("the_official_agent_keeps_a_service_and_drains") else {
        return;
    };
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "official-svc-");
    let official = OfficialAgent::start(binary, &s, &cluster, &[]);
    let instance = wait_connected(&s, &cluster);
    let official_arn = instance["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_owned();

    let marker = unique("svc-");
    let web = register(&s, &unique("svc-"), json!([httpd(&image, &marker, None)]));
    let svc = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: unique("web-"),
    };
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &svc.name,
        "--task-definition",
        &web,
        "--desired-count",
        "2",
    ]));
    let first = running_tasks(&svc, 2);
    for task in &first {
        assert_eq!(task["containerInstanceArn"], official_arn.as_str());
        assert!(fetch_page(host_port(task), &marker).contains(&marker));
    }

    // docker kill behind the agent's back: the task stops with ECS's reason and exit code,
    // and the service starts a replacement.
    let victim = arn_of(&first[0]);
    let victim_container = containers_of(&s, &victim);
    assert_eq!(victim_container.len(), 1, "{victim_container:?}");
    assert_ok(
        &s.docker(&["kill", "--signal", "KILL", &victim_container[0]]),
        "docker kill",
    );
    let stopped = wait_status(&s, &cluster, &victim, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"], "Essential container in task exited",
        "{stopped:#}"
    );
    assert_eq!(stopped["containers"][0]["exitCode"], 137, "{stopped:#}");
    let replaced = wait_for(
        "a replacement of the killed task",
        Duration::from_secs(120),
        || {
            let tasks = svc.tasks("RUNNING");
            (tasks.len() == 2
                && tasks
                    .iter()
                    .all(|t| t["lastStatus"] == "RUNNING" && arn_of(t) != victim))
            .then_some(tasks)
        },
    );
    assert!(replaced.iter().any(|t| arn_of(t) == arn_of(&first[1])));
    for task in &replaced {
        assert!(fetch_page(host_port(task), &marker).contains(&marker));
    }

    // A second instance joins; the official agent's instance drains: the service's tasks
    // move there and the official agent stops its containers.
    let other = Agent::start(&s, &cluster, &[]);
    let both = wait_instances(&s, &cluster, 2);
    let other_arn = both
        .iter()
        .map(|i| i["containerInstanceArn"].as_str().unwrap().to_owned())
        .find(|arn| *arn != official_arn)
        .unwrap();
    ok_json(&s.aws(&[
        "ecs",
        "update-container-instances-state",
        "--cluster",
        &cluster,
        "--container-instances",
        &official_arn,
        "--status",
        "DRAINING",
    ]));
    let moved = wait_for(
        "the service's tasks to move off the draining instance",
        Duration::from_secs(180),
        || {
            let tasks = svc.tasks("RUNNING");
            (tasks.len() == 2
                && tasks.iter().all(|t| {
                    t["lastStatus"] == "RUNNING" && t["containerInstanceArn"] == other_arn.as_str()
                }))
            .then_some(tasks)
        },
    );
    for task in &moved {
        assert!(fetch_page(host_port(task), &marker).contains(&marker));
    }
    for task in &replaced {
        let arn = arn_of(task);
        let gone = wait_status(&s, &cluster, &arn, "STOPPED");
        assert_eq!(gone["stopCode"], "ServiceSchedulerInitiated", "{gone:#}");
        wait_for(
            "the drained task's container to stop",
            Duration::from_secs(60),
            || docker_ps(&s, false, &arn).is_empty().then_some(()),
        );
    }
    let drained = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        &official_arn,
    ]));
    assert_eq!(drained["containerInstances"][0]["status"], "DRAINING");
    wait_for(
        "no tasks left on the drained instance",
        Duration::from_secs(60),
        || {
            let d = ok_json(&s.aws(&[
                "ecs",
                "describe-container-instances",
                "--cluster",
                &cluster,
                "--container-instances",
                &official_arn,
            ]));
            let i = &d["containerInstances"][0];
            (i["runningTasksCount"] == 0 && i["pendingTasksCount"] == 0).then_some(())
        },
    );
    drop(other);
    drop(official);
}

/// The official agent with task cgroups (`ECS_ENABLE_TASK_CPU_MEM_LIMIT=true`) restarts with
/// its tasks running (same instance, same containers, no duplicate) and rides out a Berth
/// restart (it reconnects; the tasks' state holds and new orders reach it).
#[test]
fn the_official_agent_restarts_and_rides_out_a_berth_restart() {
    let Some(binary) = binary_or_skip("the_official_agent_restarts_and_rides_out_a_berth_restart")
    else {
        return;
    };
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "official-restart-");
    let mut agent = OfficialAgent::start(
        binary,
        &s,
        &cluster,
        &[("ECS_ENABLE_TASK_CPU_MEM_LIMIT", "true")],
    );
    let instance = wait_connected(&s, &cluster);
    let instance_arn = instance["containerInstanceArn"].clone();

    // Task-level cpu and memory: with task cgroups, the agent puts the task's containers in
    // a cgroup of the task's size.
    let marker = unique("limited-");
    let family = unique("limited-");
    let registered = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        &family,
        "--network-mode",
        "bridge",
        "--cpu",
        "256",
        "--memory",
        "192",
        "--container-definitions",
        &json!([httpd(&image, &marker, None)]).to_string(),
    ]));
    let limited = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = run_task(&s, &cluster, &limited);
    let running = wait_status(&s, &cluster, &task, "RUNNING");
    let port = host_port(&running);
    assert!(fetch_page(port, &marker).contains(&marker));
    let before = containers_of(&s, &task);
    assert_eq!(before.len(), 1, "{before:?}");
    let inspected = docker_inspect(&s, &before[0]);
    let parent = inspected["HostConfig"]["CgroupParent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let task_id = task.rsplit('/').next().unwrap();
    assert!(
        parent.contains(task_id),
        "the container's cgroup parent names the task: {parent:?}"
    );
    let memory_limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{parent}/memory.limit_in_bytes"
    ))
    .unwrap_or_else(|e| panic!("the task cgroup {parent}: {e}"));
    assert_eq!(memory_limit.trim(), (192u64 << 20).to_string());

    // The agent restarts with the task running: same instance, same container, no duplicate.
    agent.restart(&s);
    let again = wait_for(
        "the restarted agent to reconnect",
        Duration::from_secs(90),
        || {
            let i = wait_connected(&s, &cluster);
            (i["containerInstanceArn"] == instance_arn).then_some(i)
        },
    );
    assert_eq!(again["runningTasksCount"], 1, "{again:#}");
    assert_eq!(containers_of(&s, &task), before);
    assert_eq!(describe_task(&s, &cluster, &task)["lastStatus"], "RUNNING");
    let label = format!("label=com.amazonaws.ecs.cluster={cluster}");
    assert_eq!(
        berth_e2e::stdout_of(&s.docker(&["ps", "-aq", "--filter", &label]))
            .split_whitespace()
            .count(),
        1
    );
    let second = run_task(&s, &cluster, &limited);
    wait_status(&s, &cluster, &second, "RUNNING");

    // Berth restarts (kill -9): the agent reconnects, the tasks hold, orders reach it.
    s.kill9();
    s.restart();
    wait_for(
        "the agent to reconnect to the restarted Berth",
        Duration::from_secs(120),
        || {
            let d = ok_json(&s.aws(&["ecs", "list-container-instances", "--cluster", &cluster]));
            let arns = d["containerInstanceArns"].as_array()?.clone();
            let d = ok_json(&s.aws(&[
                "ecs",
                "describe-container-instances",
                "--cluster",
                &cluster,
                "--container-instances",
                arns.first()?.as_str()?,
            ]));
            let i = &d["containerInstances"][0];
            (arns.len() == 1
                && i["containerInstanceArn"] == instance_arn
                && i["agentConnected"] == true)
                .then_some(())
        },
    );
    for arn in [&task, &second] {
        assert_eq!(describe_task(&s, &cluster, arn)["lastStatus"], "RUNNING");
    }
    assert_eq!(containers_of(&s, &task), before);
    assert!(fetch_page(port, &marker).contains(&marker));
    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &task]));
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped:#}");
    let third = run_task(&s, &cluster, &limited);
    wait_status(&s, &cluster, &third, "RUNNING");
    drop(agent);
}
