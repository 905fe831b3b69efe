//! The official Amazon ECS agent (v1.105.0, unmodified) as a container instance of Berth:
//! it registers with its attributes and capabilities, opens its ACS and telemetry sessions
//! (its ACS URL is signed the Go SDK's way: a `+` in the query is a space), pulls from
//! Berth's registry with an ECR token it asks Berth for, and runs bridge tasks with static
//! and dynamic host ports; an essential container's exit and StopTask stop tasks with
//! ECS's reasons. Each test says plainly and passes when the agent binary is not on the
//! machine (scripts/test.sh unpacks it from ../shared/tools).

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    BridgeTasks, cluster_with_image, docker_ps, fetch_page, run_bridge_tasks, wait_connected,
    wait_for, wait_status,
};
use berth_e2e::official_agent::{OfficialAgent, binary_or_skip};
use berth_e2e::{BerthServer, assert_ok, ok_json};

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
        host_port,
        marker: marker2,
        ..
    } = run_bridge_tasks(&s, &cluster, &image);

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
