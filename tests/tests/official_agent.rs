//! The official Amazon ECS agent (v1.105.0, unmodified) as a container instance of Berth:
//! it registers with its attributes and capabilities, opens its ACS and telemetry sessions
//! (its ACS URL is signed the Go SDK's way: a `+` in the query is a space), pulls from
//! Berth's registry with an ECR token it asks Berth for, and runs bridge tasks with static
//! and dynamic host ports; an essential container's exit and StopTask stop tasks with
//! ECS's reasons. Each test says plainly and passes when the agent binary is not on the
//! machine (scripts/test.sh unpacks it from ../shared/tools).

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    cluster_with_image, docker_ps, fetch_page, free_port, httpd, register, run_task,
    wait_connected, wait_for, wait_status,
};
use berth_e2e::official_agent::{OfficialAgent, binary_or_skip};
use berth_e2e::{BerthServer, assert_ok, ok_json, unique};
use serde_json::json;

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

    // A static host port serving a page.
    let static_port = free_port();
    let marker = unique("page-");
    let web = register(
        &s,
        &unique("web-"),
        json!([httpd(&image, &marker, Some(static_port))]),
    );
    let web_task = run_task(&s, &cluster, &web);
    let t0 = Instant::now();
    let running = wait_status(&s, &cluster, &web_task, "RUNNING");
    eprintln!("static-port task RUNNING {:?} after run-task", t0.elapsed());
    s.track_image(&image);
    assert_eq!(
        running["containers"][0]["networkBindings"][0]["hostPort"], static_port,
        "{running:#}"
    );
    assert!(fetch_page(static_port, &marker).contains(&marker));

    // A dynamic host port, found through networkBindings.
    let marker2 = unique("dynamic-");
    let dynamic = register(&s, &unique("dyn-"), json!([httpd(&image, &marker2, None)]));
    let dynamic_task = run_task(&s, &cluster, &dynamic);
    let running = wait_status(&s, &cluster, &dynamic_task, "RUNNING");
    let binding = running["containers"][0]["networkBindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["containerPort"] == 80)
        .cloned()
        .unwrap_or_else(|| panic!("no binding for port 80: {running:#}"));
    let host_port = binding["hostPort"].as_u64().unwrap() as u16;
    assert_ne!(host_port, 80);
    assert!(fetch_page(host_port, &marker2).contains(&marker2));

    // An essential container exiting stops its task with ECS's reason and its exit code.
    let exits = register(
        &s,
        &unique("exit-"),
        json!([{
            "name": "main", "image": image, "memory": 32, "essential": true,
            "entryPoint": ["sh", "-c"], "command": ["sleep 1; exit 3"]
        }]),
    );
    let exit_task = run_task(&s, &cluster, &exits);
    let stopped = wait_status(&s, &cluster, &exit_task, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"], "Essential container in task exited",
        "{stopped:#}"
    );
    assert_eq!(stopped["containers"][0]["exitCode"], 3, "{stopped:#}");

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
    drop(agent);
    eprintln!("whole test {:?}", started.elapsed());
}
