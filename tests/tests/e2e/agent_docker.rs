//! `berth agent` on the real Docker Engine: the agent registers, takes tasks over ACS, pulls
//! the image from Berth's registry with an ECR token it gets itself, and runs the tasks —
//! a static host port that serves a page, a dynamic port found through `networkBindings`,
//! an essential container's exit code and ECS's stoppedReason, and stop-task.

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    Agent, BridgeTasks, cluster_with_image, containers_of, describe_task, docker_inspect,
    docker_ps, fetch_page, httpd, register, run_bridge_tasks, run_task, wait_connected, wait_for,
    wait_status,
};
use berth_e2e::{BerthServer, assert_ok, ok_json, stdout_of, unique};
use serde_json::{Value, json};

#[test]
fn agent_runs_tasks_on_docker() {
    let started = Instant::now();
    let s = BerthServer::start();

    // The image lives only in Berth's registry: the agent must pull it with an ECR token.
    let (cluster, image) = cluster_with_image(&s, "agent-");
    assert_ok(
        &s.docker(&["rmi", &image]),
        "docker rmi of the pushed image",
    );

    let agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "3"]);
    let instance = wait_connected(&s, &cluster);
    let attribute = |name: &str| {
        instance["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == name)
    };
    assert!(attribute("ecs.os-type"), "{instance:#}");
    assert!(attribute(
        "com.amazonaws.ecs.capability.docker-remote-api.1.17"
    ));
    assert!(
        instance["versionInfo"]["dockerVersion"]
            .as_str()
            .unwrap()
            .starts_with("DockerVersion: ")
    );
    eprintln!("agent registered after {:?}", started.elapsed());

    let BridgeTasks {
        web_task,
        web_running: running,
        host_port,
        marker: marker2,
    } = run_bridge_tasks(&s, &cluster, &image);
    assert!(running["pullStartedAt"].is_number(), "{running:#}");

    // stop-task: STOPPED, the container gone from `docker ps`, then removed after the
    // cleanup delay.
    let t0 = Instant::now();
    ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &web_task,
    ]));
    let stopped = wait_status(&s, &cluster, &web_task, "STOPPED");
    // Printed, not asserted (no timed assertions: a loaded CI host once took 25 s here).
    // That the agent stops with the container's stopTimeout is the engine's unit test
    // `desired_stopped_stops_with_the_stop_timeout`.
    eprintln!("stop-task to STOPPED in {:?}", t0.elapsed());
    assert!(
        stopped["containers"][0]["exitCode"].is_number(),
        "{stopped:#}"
    );
    assert!(
        docker_ps(&s, false, &web_task).is_empty(),
        "the stopped container still runs"
    );
    wait_for(
        "the stopped container's removal",
        Duration::from_secs(30),
        || docker_ps(&s, true, &web_task).is_empty().then_some(()),
    );
    // The other task still serves.
    assert!(fetch_page(host_port, &marker2).contains(&marker2));
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}

#[test]
fn a_restarted_agent_keeps_its_tasks_and_reports_what_happened_meanwhile() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "restart-");

    let mut agent = Agent::start(&s, &cluster, &[]);
    let instance = wait_connected(&s, &cluster);

    // Three web tasks and one that will be killed behind the agent's back.
    let marker = unique("kept-");
    let web = register(&s, &unique("web-"), json!([httpd(&image, &marker, None)]));
    let v = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &web,
        "--count",
        "3",
    ]));
    let webs: Vec<String> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(webs.len(), 3, "{v:#}");
    let victim_def = register(
        &s,
        &unique("victim-"),
        json!([{
            "name": "victim", "image": image, "memory": 32, "essential": true,
            "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]
        }]),
    );
    let victim = run_task(&s, &cluster, &victim_def);
    let mut ports = Vec::new();
    for arn in &webs {
        let task = wait_status(&s, &cluster, arn, "RUNNING");
        ports.push(
            task["containers"][0]["networkBindings"][0]["hostPort"]
                .as_u64()
                .unwrap() as u16,
        );
    }
    wait_status(&s, &cluster, &victim, "RUNNING");
    let before: Vec<Vec<String>> = webs.iter().map(|arn| containers_of(&s, arn)).collect();
    assert!(before.iter().all(|ids| ids.len() == 1), "{before:?}");
    let victim_container = containers_of(&s, &victim);
    assert_eq!(victim_container.len(), 1);
    // DescribeTasks names each container's Docker id (runtimeId), as ECS does.
    for (arn, ids) in webs.iter().zip(&before) {
        assert_eq!(
            describe_task(&s, &cluster, arn)["containers"][0]["runtimeId"],
            ids[0].as_str()
        );
    }

    // kill -9 the agent; while it is away, the victim's container is killed.
    agent.kill9();
    assert_ok(
        &s.docker(&["kill", "--signal", "KILL", &victim_container[0]]),
        "docker kill",
    );
    let t0 = Instant::now();
    agent.kill9_and_restart(&s, &[]);
    let again = wait_connected(&s, &cluster);
    assert_eq!(
        again["containerInstanceArn"],
        instance["containerInstanceArn"]
    );

    let stopped = wait_status(&s, &cluster, &victim, "STOPPED");
    eprintln!("restart to the victim's STOPPED: {:?}", t0.elapsed());
    assert_eq!(
        stopped["stoppedReason"],
        "Essential container in task exited"
    );
    assert_eq!(stopped["containers"][0]["exitCode"], 137, "{stopped:#}");

    // The same containers serve the same tasks; nothing was created twice.
    for (i, arn) in webs.iter().enumerate() {
        let task = describe_task(&s, &cluster, arn);
        assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
        assert_eq!(
            containers_of(&s, arn),
            before[i],
            "{arn} kept its container"
        );
        assert!(fetch_page(ports[i], &marker).contains(&marker));
    }
    let label = format!("label=com.amazonaws.ecs.cluster={cluster}");
    let all = s.docker(&["ps", "-aq", "--filter", &label]);
    assert_eq!(
        stdout_of(&all).split_whitespace().count(),
        4,
        "{}",
        stdout_of(&all)
    );

    // And the restarted agent still takes orders.
    ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &webs[0],
    ]));
    wait_status(&s, &cluster, &webs[0], "STOPPED");
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}

/// kill -9 of the control plane while a task runs: the agent rides it out, reconnects to the
/// restarted server, and reports what happened meanwhile (a container killed while the
/// server was down ends STOPPED with its exit code); a task the server did not know stopped
/// keeps running, and the agent still takes orders.
#[test]
fn the_agent_rides_out_a_control_plane_kill9() {
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "cp-kill-");
    let agent = Agent::start(&s, &cluster, &[]);
    let instance = wait_connected(&s, &cluster);

    let sleeper = register(
        &s,
        &unique("sleeper-"),
        json!([{
            "name": "sleeper", "image": image, "memory": 32, "essential": true,
            "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]
        }]),
    );
    let kept = run_task(&s, &cluster, &sleeper);
    let victim = run_task(&s, &cluster, &sleeper);
    wait_status(&s, &cluster, &kept, "RUNNING");
    wait_status(&s, &cluster, &victim, "RUNNING");
    let victim_container = containers_of(&s, &victim);
    assert_eq!(victim_container.len(), 1);

    // The control plane dies; meanwhile a container is killed on the host.
    s.kill9();
    assert_ok(
        &s.docker(&["kill", "--signal", "KILL", &victim_container[0]]),
        "docker kill",
    );
    s.restart();

    // The agent reconnects (same instance) and reports the death with its exit code.
    let stopped = wait_status(&s, &cluster, &victim, "STOPPED");
    assert_eq!(stopped["containers"][0]["exitCode"], 137, "{stopped:#}");
    assert_eq!(
        stopped["stoppedReason"],
        "Essential container in task exited"
    );
    let again = wait_connected(&s, &cluster);
    assert_eq!(
        again["containerInstanceArn"],
        instance["containerInstanceArn"]
    );
    assert_eq!(describe_task(&s, &cluster, &kept)["lastStatus"], "RUNNING");
    assert_eq!(containers_of(&s, &kept).len(), 1);

    // Orders still reach it.
    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &kept]));
    wait_status(&s, &cluster, &kept, "STOPPED");
    drop(agent);
}

/// Registers a task definition with task-level `cpu`/`memory` in `network_mode`.
fn register_limited(
    s: &BerthServer,
    family: &str,
    network_mode: &str,
    cpu: &str,
    memory: &str,
    containers: Value,
) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        network_mode,
        "--cpu",
        cpu,
        "--memory",
        memory,
        "--container-definitions",
        &containers.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A container that fetches its task metadata endpoint (retrying until the agent answers),
/// prints each answer between markers, and then stays up.
fn metadata_reader(image: &str) -> Value {
    let script = r#"
fetch() { for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- "$1" && return 0; sleep 1; done; echo FAILED "$1"; }
echo "==uri $ECS_CONTAINER_METADATA_URI_V4"
echo "==task"; fetch "$ECS_CONTAINER_METADATA_URI_V4/task"; echo
echo "==container"; fetch "$ECS_CONTAINER_METADATA_URI_V4"; echo
echo "==stats"; fetch "$ECS_CONTAINER_METADATA_URI_V4/stats"; echo
echo "==taskstats"; fetch "$ECS_CONTAINER_METADATA_URI_V4/task/stats"; echo
echo "==end"
exec sleep 100000"#;
    json!({
        "name": "reader", "image": image, "essential": true, "cpu": 128,
        "entryPoint": ["sh", "-c"], "command": [script],
        "dockerLabels": {"team": "metadata"}
    })
}

/// The sections the reader printed, once it has printed them all.
fn reader_output(s: &BerthServer, task_arn: &str) -> std::collections::BTreeMap<String, String> {
    let id = wait_for("the reader's container", Duration::from_secs(30), || {
        containers_of(s, task_arn).into_iter().next()
    });
    let logs = wait_for(
        "the reader to print the metadata",
        Duration::from_secs(60),
        || {
            let out = s.docker(&["logs", &id]);
            let text = stdout_of(&out);
            text.contains("==end").then_some(text)
        },
    );
    assert!(!logs.contains("FAILED"), "{logs}");
    let mut sections = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in logs.lines() {
        if let Some(name) = line.strip_prefix("==") {
            let (name, rest) = name.split_once(' ').unwrap_or((name, ""));
            current = name.to_owned();
            sections.insert(current.clone(), rest.to_owned());
        } else if let Some(section) = sections.get_mut(&current) {
            section.push_str(line);
        }
    }
    sections
}

/// The task metadata endpoint v4, fetched with wget from inside bridge- and host-mode
/// containers, answers in ECS's format; task-level cpu and memory are the container's real
/// limits.
#[test]
fn the_task_metadata_endpoint_answers_inside_containers() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "metadata-");
    let agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);

    let bridge = register_limited(
        &s,
        &unique("md-bridge-"),
        "bridge",
        "256",
        "128",
        json!([metadata_reader(&image)]),
    );
    let host = register_limited(
        &s,
        &unique("md-host-"),
        "host",
        "512",
        "64",
        json!([metadata_reader(&image)]),
    );
    let bridge_task = run_task(&s, &cluster, &bridge);
    let host_task = run_task(&s, &cluster, &host);
    let t0 = Instant::now();
    let out = reader_output(&s, &bridge_task);
    eprintln!(
        "bridge reader printed its metadata {:?} after run-task",
        t0.elapsed()
    );
    let inspected = docker_inspect(&s, &containers_of(&s, &bridge_task)[0]);
    let container_id = inspected["Id"].as_str().unwrap().to_owned();

    let uri = &out["uri"];
    // As on ECS: the link-local address (NAT rules send it to the agent).
    assert!(uri.starts_with("http://169.254.170.2/v4/"), "{uri}");
    let task: Value = serde_json::from_str(&out["task"]).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(task["TaskARN"], bridge_task);
    assert_eq!(task["Cluster"], cluster);
    assert_eq!(task["Limits"], json!({"CPU": 0.25, "Memory": 128}));
    assert_eq!(task["DesiredStatus"], "RUNNING");
    assert_eq!(task["LaunchType"], "EC2");
    assert!(
        task["PullStartedAt"].as_str().unwrap().ends_with('Z'),
        "{task:#}"
    );
    assert!(task["Family"].as_str().unwrap().starts_with("md-bridge-"));
    assert_eq!(task["Revision"], "1");
    let listed = &task["Containers"][0];
    assert_eq!(listed["DockerId"], container_id);
    assert_eq!(listed["Name"], "reader");
    assert_eq!(listed["Image"], image);
    assert_eq!(listed["Labels"]["team"], "metadata");
    assert_eq!(listed["Labels"]["com.amazonaws.ecs.task-arn"], bridge_task);
    assert_eq!(listed["Limits"]["CPU"], 128.0);
    assert_eq!(listed["Type"], "NORMAL");
    assert_eq!(listed["KnownStatus"], "RUNNING", "it asks while it runs");
    assert_eq!(listed["Networks"][0]["NetworkMode"], "bridge");
    assert!(listed["ImageID"].as_str().unwrap().starts_with("sha256:"));

    let container: Value = serde_json::from_str(&out["container"]).unwrap();
    assert_eq!(container["DockerId"], container_id);
    assert!(
        container["DockerName"]
            .as_str()
            .unwrap()
            .starts_with("ecs-md-bridge-")
    );
    assert_eq!(
        container["Networks"][0]["IPv4Addresses"][0],
        inspected["NetworkSettings"]["IPAddress"]
    );

    let stats: Value = serde_json::from_str(&out["stats"]).unwrap();
    assert_eq!(stats["id"], container_id);
    assert_eq!(stats["memory_stats"]["limit"], json!(128u64 << 20));
    let task_stats: Value = serde_json::from_str(&out["taskstats"]).unwrap();
    assert_eq!(task_stats[&container_id]["id"], container_id);

    // The task's limits are the container's: a quarter of a CPU, 128 MiB.
    let host_config = &inspected["HostConfig"];
    assert_eq!(host_config["CpuPeriod"], 100_000);
    assert_eq!(host_config["CpuQuota"], 25_000);
    assert_eq!(host_config["Memory"], json!(128u64 << 20));

    // Host mode: the same address (the host's own NAT rule).
    let out = reader_output(&s, &host_task);
    assert!(
        out["uri"].starts_with("http://169.254.170.2/v4/"),
        "{out:?}"
    );
    let task: Value = serde_json::from_str(&out["task"]).unwrap();
    assert_eq!(task["TaskARN"], host_task);
    assert_eq!(task["Limits"], json!({"CPU": 0.5, "Memory": 64}));
    assert_eq!(task["Containers"][0]["Networks"][0]["NetworkMode"], "host");
    // Both name the same agent port (`b{PORT}-`, kept across agent restarts), so that
    // containers find their agent after restarts.
    let port = |uri: &str| {
        uri.strip_prefix("http://169.254.170.2/v4/b")
            .and_then(|rest| rest.split_once('-'))
            .map(|(port, _)| port.to_owned())
            .unwrap()
    };
    assert_eq!(port(&out["uri"]), port(uri));

    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}

/// Docker health checks reach DescribeTasks through the telemetry session: the essential
/// container's passing check makes it and the task HEALTHY; a failing check on a
/// non-essential container marks that container UNHEALTHY without the task.
#[test]
fn health_checks_drive_health_status() {
    let started = Instant::now();
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "health-");
    let agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);

    let check = |command: &str, retries: u32| {
        json!({"command": ["CMD-SHELL", command], "interval": 5, "timeout": 2,
               "retries": retries, "startPeriod": 0})
    };
    let checked = register(
        &s,
        &unique("health-"),
        json!([
            {"name": "web", "image": image, "memory": 32, "essential": true,
             "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"],
             "healthCheck": check("true", 3)},
            {"name": "side", "image": image, "memory": 32, "essential": false,
             "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"],
             "healthCheck": check("exit 1", 1)}
        ]),
    );
    let arn = run_task(&s, &cluster, &checked);
    wait_status(&s, &cluster, &arn, "RUNNING");
    let t0 = Instant::now();
    let container_health = |task: &Value, name: &str| {
        task["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["healthStatus"].clone())
            .unwrap_or(Value::Null)
    };
    let task = wait_for("HEALTHY in DescribeTasks", Duration::from_secs(60), || {
        let task = describe_task(&s, &cluster, &arn);
        (task["healthStatus"] == "HEALTHY"
            && container_health(&task, "web") == "HEALTHY"
            && container_health(&task, "side") == "UNHEALTHY")
            .then_some(task)
    });
    eprintln!("health in DescribeTasks {:?} after RUNNING", t0.elapsed());
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}
