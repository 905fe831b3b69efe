use super::*;
use crate::{HealthCheck, MountSpec, PortMapping, Protocol};
use futures_util::StreamExt;
use std::time::Instant;

const IMAGE: &str = "127.0.0.1:4566/app:v1";

fn runtime() -> SimulatedRuntime {
    let runtime = SimulatedRuntime::new(SimulationConfig {
        pull_delay: Duration::from_millis(1),
        create_delay: Duration::ZERO,
        start_delay: Duration::ZERO,
        stop_delay: Duration::from_millis(1),
        time_scale: 0.01,
        ..Default::default()
    });
    runtime.add_image(IMAGE);
    runtime
}

fn spec(command: &[&str]) -> ContainerSpec {
    ContainerSpec {
        image: IMAGE.to_owned(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        labels: BTreeMap::from([("test".to_owned(), "sim".to_owned())]),
        ..Default::default()
    }
}

async fn run(runtime: &SimulatedRuntime, spec: &ContainerSpec) -> ContainerId {
    let id = runtime.create_container(spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    id
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn commands_are_read_as_documented() {
    let forever = parse_behaviour(&argv(&["httpd", "-f", "-p", "80"]));
    assert_eq!(forever.runs_for, None);
    assert!(!forever.ignores_sigterm);

    let exits = parse_behaviour(&argv(&["exit", "3"]));
    assert_eq!((exits.runs_for, exits.exit_code), (Some(Duration::ZERO), 3));

    let shell = parse_behaviour(&argv(&["sh", "-c", "sleep 1.5; exit 4"]));
    assert_eq!(
        (shell.runs_for, shell.exit_code),
        (Some(Duration::from_millis(1500)), 4)
    );

    let sleeper = parse_behaviour(&argv(&["sleep", "2"]));
    assert_eq!(
        (sleeper.runs_for, sleeper.exit_code),
        (Some(Duration::from_secs(2)), 0)
    );

    let stubborn = parse_behaviour(&argv(&["sh", "-c", "trap '' TERM; sleep 1000"]));
    assert!(stubborn.ignores_sigterm);
    assert_eq!(stubborn.runs_for, Some(Duration::from_secs(1000)));

    assert!(health_check_passes(&argv(&["exit 0"])));
    assert!(health_check_passes(&argv(&["curl -f http://localhost/"])));
    assert!(!health_check_passes(&argv(&["exit 1"])));
    assert!(!health_check_passes(&argv(&["false"])));
}

#[tokio::test]
async fn a_container_lives_and_stops_with_sigterm() {
    let runtime = runtime();
    let id = runtime.create_container(&spec(&[])).await.unwrap();
    let created = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(created.state, ContainerState::Created);
    assert_eq!(created.started_at, None);

    runtime.start_container(&id).await.unwrap();
    let running = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(running.state, ContainerState::Running);
    assert!(running.started_at.is_some());
    assert!(
        running
            .ip_address
            .as_deref()
            .unwrap()
            .starts_with("172.17.")
    );

    runtime
        .stop_container(&id, Duration::from_secs(30))
        .await
        .unwrap();
    let stopped = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(stopped.state, ContainerState::Exited);
    assert_eq!(stopped.exit_code, Some(143));
    assert!(stopped.finished_at.is_some());
    assert_eq!(stopped.ip_address, None);
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 143);

    runtime.remove_container(&id).await.unwrap();
    assert!(matches!(
        runtime.inspect_container(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_container_ignoring_sigterm_is_killed_after_the_timeout() {
    let runtime = runtime();
    let id = run(&runtime, &spec(&["sh", "-c", "trap '' TERM; sleep 1000"])).await;
    let began = Instant::now();
    // 2 s scaled by 0.01.
    runtime
        .stop_container(&id, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(began.elapsed() >= Duration::from_millis(20));
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 137);
}

#[tokio::test]
async fn a_container_exits_by_itself_with_its_code() {
    let runtime = runtime();
    let id = run(&runtime, &spec(&["sh", "-c", "sleep 1; exit 3"])).await;
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 3);
    let status = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(
        (status.state, status.exit_code),
        (ContainerState::Exited, Some(3))
    );
    // Stopping a stopped container is fine and changes nothing.
    runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        runtime.inspect_container(&id).await.unwrap().exit_code,
        Some(3)
    );
}

#[tokio::test]
async fn static_ports_conflict_and_dynamic_ports_are_assigned() {
    let runtime = runtime();
    let mut web = spec(&[]);
    web.port_mappings = vec![
        PortMapping {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        },
        PortMapping {
            container_port: 81,
            host_port: None,
            ..Default::default()
        },
    ];
    let first = run(&runtime, &web).await;
    let status = runtime.inspect_container(&first).await.unwrap();
    assert_eq!(status.port_bindings[0].host_port, 8080);
    let dynamic = status.port_bindings[1].host_port;
    assert!(DYNAMIC_PORTS.contains(&dynamic));

    let second = runtime.create_container(&web).await.unwrap();
    assert!(matches!(
        runtime.start_container(&second).await,
        Err(RuntimeError::Conflict(_))
    ));

    // Once the first stops its ports are free again.
    runtime
        .stop_container(&first, Duration::from_secs(1))
        .await
        .unwrap();
    runtime.start_container(&second).await.unwrap();
    let status = runtime.inspect_container(&second).await.unwrap();
    assert_eq!(status.port_bindings[0].host_port, 8080);
    assert_eq!(status.port_bindings[0].protocol, Protocol::Tcp);
}

#[tokio::test]
async fn stats_grow_while_running_and_read_zero_once_stopped() {
    let runtime = runtime();
    let mut limited = spec(&["httpd"]);
    limited.memory_mib = Some(4);
    let id = run(&runtime, &limited).await;
    let first = runtime.stats(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = runtime.stats(&id).await.unwrap();
    assert!(second.cpu_total_ns > first.cpu_total_ns);
    assert!(second.read > first.read);
    // The working set is capped by the container's limit.
    assert_eq!(second.memory_limit_bytes, Some(4 << 20));
    assert_eq!(second.memory_usage_bytes, 4 << 20);
    assert!(second.memory_used_bytes() < second.memory_usage_bytes);
    assert_eq!(
        second.document["memory_stats"]["usage"],
        serde_json::json!(4 << 20)
    );
    assert_eq!(second.document["id"], id.as_str());

    runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let stopped = runtime.stats(&id).await.unwrap();
    assert_eq!((stopped.cpu_total_ns, stopped.memory_usage_bytes), (0, 0));
    assert!(matches!(
        runtime.stats(&ContainerId::from("nope")).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert_eq!(
        runtime.bridge_gateway().await.unwrap().as_deref(),
        Some("172.17.0.1")
    );
    let status = runtime.inspect_container(&id).await.unwrap();
    assert!(status.image_id.starts_with("sha256:") && status.image_id.len() == 71);
    assert!(status.created_at.unwrap() <= status.started_at.unwrap());
}

#[tokio::test]
async fn health_checks_turn_healthy_or_unhealthy() {
    let runtime = runtime();
    let mut events = runtime.events(&[("test", "sim")]).await.unwrap();
    let check = |command: &str| HealthCheck {
        command: vec!["CMD-SHELL".into(), command.into()],
        interval_secs: Some(1),
        retries: Some(2),
        ..Default::default()
    };
    let mut good = spec(&[]);
    good.health_check = Some(check("exit 0"));
    let mut bad = spec(&[]);
    bad.health_check = Some(check("exit 1"));
    let good = run(&runtime, &good).await;
    let bad = run(&runtime, &bad).await;
    assert_eq!(
        runtime.inspect_container(&good).await.unwrap().health,
        HealthStatus::Starting
    );

    let mut seen = HashMap::new();
    while seen.len() < 2 {
        let event = events.next().await.unwrap().unwrap();
        if let ContainerEventKind::Health(health) = event.kind {
            seen.insert(event.id, health);
        }
    }
    assert_eq!(seen[&good], HealthStatus::Healthy);
    assert_eq!(seen[&bad], HealthStatus::Unhealthy);
    assert_eq!(
        runtime.inspect_container(&bad).await.unwrap().health,
        HealthStatus::Unhealthy
    );
}

#[tokio::test]
async fn events_report_the_life_cycle_of_labelled_containers_only() {
    let runtime = runtime();
    let mut events = runtime.events(&[("test", "sim")]).await.unwrap();
    let mut other = spec(&["exit", "9"]);
    other.labels = BTreeMap::from([("test".into(), "other".into())]);
    run(&runtime, &other).await;
    let id = run(&runtime, &spec(&["exit", "5"])).await;
    runtime.wait_exit(&id).await.unwrap();
    runtime.remove_container(&id).await.unwrap();

    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = events.next().await.unwrap().unwrap();
        assert_eq!(event.id, id);
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            ContainerEventKind::Started,
            ContainerEventKind::Died { exit_code: Some(5) },
            ContainerEventKind::Destroyed
        ]
    );
}

#[tokio::test]
async fn list_finds_labelled_containers_in_every_state() {
    let runtime = runtime();
    let created = runtime.create_container(&spec(&[])).await.unwrap();
    let exited = run(&runtime, &spec(&["exit", "0"])).await;
    runtime.wait_exit(&exited).await.unwrap();
    let mut unlabelled = spec(&[]);
    unlabelled.labels.clear();
    runtime.create_container(&unlabelled).await.unwrap();

    let listed = runtime.list_containers(&[("test", "sim")]).await.unwrap();
    let mut ids: Vec<_> = listed.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut expected = vec![created.clone(), exited.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let state_of = |id: &ContainerId| listed.iter().find(|c| &c.id == id).unwrap().state;
    assert_eq!(state_of(&created), ContainerState::Created);
    assert_eq!(state_of(&exited), ContainerState::Exited);
    assert_eq!(runtime.list_containers(&[]).await.unwrap().len(), 3);
}

#[tokio::test]
async fn images_must_be_pulled_before_use() {
    let runtime = runtime();
    let other = "127.0.0.1:4566/other";
    assert!(!runtime.image_present(other).await.unwrap());
    let mut spec = spec(&[]);
    spec.image = other.to_owned();
    assert!(matches!(
        runtime.create_container(&spec).await,
        Err(RuntimeError::NotFound(_))
    ));
    runtime.pull_image(other, None).await.unwrap();
    assert!(
        runtime
            .image_present("127.0.0.1:4566/other:latest")
            .await
            .unwrap()
    );
    runtime.create_container(&spec).await.unwrap();

    runtime.fail_pulls_of("127.0.0.1:4566/broken:v1", "manifest unknown");
    assert!(matches!(
        runtime.pull_image("127.0.0.1:4566/broken:v1", None).await,
        Err(RuntimeError::ImagePull { .. })
    ));
}

#[tokio::test]
async fn names_are_unique_and_usable_as_ids() {
    let runtime = runtime();
    let mut named = spec(&[]);
    named.name = Some("web".into());
    let id = runtime.create_container(&named).await.unwrap();
    assert!(matches!(
        runtime.create_container(&named).await,
        Err(RuntimeError::Conflict(_))
    ));
    let by_name = runtime.inspect_container(&"web".into()).await.unwrap();
    assert_eq!(by_name.id, id);
    assert_eq!(by_name.name, "web");
}

#[tokio::test]
async fn logs_hold_what_was_written_and_follow_until_the_container_stops() {
    let runtime = runtime();
    let id = run(&runtime, &spec(&[])).await;
    runtime.write_log(&id, LogSource::Stdout, "one\n");
    runtime.write_log(&id, LogSource::Stderr, "two\n");
    let all: Vec<LogFrame> = runtime
        .logs(&id, None, false)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[1].source, all[1].bytes.as_ref()),
        (LogSource::Stderr, &b"two\n"[..])
    );
    assert!(all[0].timestamp <= all[1].timestamp);

    let mut follow = runtime
        .logs(&id, Some(all[1].timestamp), true)
        .await
        .unwrap();
    assert_eq!(
        follow.next().await.unwrap().unwrap().bytes.as_ref(),
        b"two\n"
    );
    let writer = runtime.clone();
    let written = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        writer.write_log(&written, LogSource::Stdout, "three\n");
        writer.kill_container(&written, 1, false);
    });
    assert_eq!(
        follow.next().await.unwrap().unwrap().bytes.as_ref(),
        b"three\n"
    );
    assert!(
        follow.next().await.is_none(),
        "the log ends with the container"
    );
}

#[tokio::test]
async fn an_unavailable_runtime_says_so_and_recovers() {
    let runtime = runtime();
    let id = run(&runtime, &spec(&[])).await;
    runtime.set_unavailable(true);
    assert!(matches!(
        runtime.info().await,
        Err(RuntimeError::Unavailable(_))
    ));
    assert!(matches!(
        runtime.ping().await,
        Err(RuntimeError::Unavailable(_))
    ));
    assert!(matches!(
        runtime.inspect_container(&id).await,
        Err(RuntimeError::Unavailable(_))
    ));
    runtime.set_unavailable(false);
    runtime.ping().await.unwrap();
    assert_eq!(
        runtime.inspect_container(&id).await.unwrap().state,
        ContainerState::Running
    );
}

#[tokio::test]
async fn a_kill_behind_the_agents_back_is_reported() {
    let runtime = runtime();
    let mut events = runtime.events(&[]).await.unwrap();
    let id = run(&runtime, &spec(&[])).await;
    runtime.kill_container(&id, 137, true);
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 137);
    let status = runtime.inspect_container(&id).await.unwrap();
    assert!(status.oom_killed);
    let kinds: Vec<_> = (0..3)
        .map(|_| futures_util::FutureExt::now_or_never(events.next()))
        .map(|e| e.unwrap().unwrap().unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ContainerEventKind::Started,
            ContainerEventKind::OomKilled,
            ContainerEventKind::Died {
                exit_code: Some(137)
            }
        ]
    );
}

#[tokio::test]
async fn networks_hold_fixed_addresses_and_namespaces_are_shared() {
    let runtime = runtime();
    let network = NetworkSpec {
        name: "berth-subnet-1".to_owned(),
        subnet: "10.192.3.0/24".to_owned(),
        gateway: "10.192.3.1".to_owned(),
        ..Default::default()
    };
    let on_network = ContainerSpec {
        network_mode: NetworkMode::Named(network.name.clone()),
        ipv4_address: Some("10.192.3.7".to_owned()),
        ..spec(&[])
    };
    // The network must exist first.
    assert!(matches!(
        runtime.create_container(&on_network).await,
        Err(RuntimeError::NotFound(_))
    ));
    runtime.ensure_network(&network).await.unwrap();
    runtime.ensure_network(&network).await.unwrap();
    let other_subnet = NetworkSpec {
        subnet: "10.192.4.0/24".to_owned(),
        ..network.clone()
    };
    assert!(matches!(
        runtime.ensure_network(&other_subnet).await,
        Err(RuntimeError::Conflict(_))
    ));

    let infra = run(&runtime, &on_network).await;
    let status = runtime.inspect_container(&infra).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.3.7"));
    // Its namespace is shared by `container:` members.
    let member = run(
        &runtime,
        &ContainerSpec {
            network_mode: NetworkMode::Container(infra.to_string()),
            ..spec(&[])
        },
    )
    .await;
    let status = runtime.inspect_container(&member).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.3.7"));
    // A second holder of the address fails to start, as in Docker.
    let twin = runtime.create_container(&on_network).await.unwrap();
    assert!(matches!(
        runtime.start_container(&twin).await,
        Err(RuntimeError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_detached_container_joins_a_network_later_and_keeps_its_address() {
    let runtime = runtime();
    let network = NetworkSpec {
        name: "berth-subnet-2".to_owned(),
        subnet: "10.192.5.0/24".to_owned(),
        gateway: "10.192.5.1".to_owned(),
        ..Default::default()
    };
    runtime.ensure_network(&network).await.unwrap();
    let detached = ContainerSpec {
        network_mode: NetworkMode::None,
        name: Some("warm".to_owned()),
        ..spec(&[])
    };
    let id = run(&runtime, &detached).await;
    runtime.disconnect_network(&id, "none").await.unwrap();
    assert!(matches!(
        runtime
            .connect_network(&id, "berth-nowhere", "10.192.5.9", None)
            .await,
        Err(RuntimeError::NotFound(_))
    ));
    runtime
        .connect_network(&id, &network.name, "10.192.5.9", None)
        .await
        .unwrap();
    let status = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.5.9"));
    // The address is taken for others on the network, by connect and by start.
    let other = run(
        &runtime,
        &ContainerSpec {
            name: Some("other".to_owned()),
            ..detached.clone()
        },
    )
    .await;
    assert!(matches!(
        runtime
            .connect_network(&other, &network.name, "10.192.5.9", None)
            .await,
        Err(RuntimeError::Conflict(_))
    ));
    let fixed = runtime
        .create_container(&ContainerSpec {
            network_mode: NetworkMode::Named(network.name.clone()),
            ipv4_address: Some("10.192.5.9".to_owned()),
            ..spec(&[])
        })
        .await
        .unwrap();
    assert!(matches!(
        runtime.start_container(&fixed).await,
        Err(RuntimeError::Conflict(_))
    ));
    // Renamed; a taken name is refused.
    runtime.rename_container(&id, "task-infra").await.unwrap();
    assert_eq!(
        runtime.inspect_container(&id).await.unwrap().name,
        "task-infra"
    );
    assert!(matches!(
        runtime.rename_container(&other, "task-infra").await,
        Err(RuntimeError::Conflict(_))
    ));
    // A restart keeps the connected network's address.
    runtime.stop_container(&id, Duration::ZERO).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    let status = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.5.9"));
}

#[tokio::test]
async fn built_images_are_present() {
    let runtime = runtime();
    assert!(!runtime.image_present("berth/pause:1").await.unwrap());
    runtime
        .build_image("berth/pause:1", vec![0; 512])
        .await
        .unwrap();
    assert!(runtime.image_present("berth/pause:1").await.unwrap());
}

#[tokio::test]
async fn volumes_are_created_once_and_not_removed_while_in_use() {
    let runtime = runtime();
    let volume = VolumeSpec {
        name: "data".into(),
        ..Default::default()
    };
    runtime.create_volume(&volume).await.unwrap();
    runtime.create_volume(&volume).await.unwrap();
    let mut user = spec(&[]);
    user.mounts = vec![MountSpec::Volume {
        name: "data".into(),
        container_path: "/data".into(),
        read_only: false,
    }];
    let id = runtime.create_container(&user).await.unwrap();
    assert!(matches!(
        runtime.remove_volume("data").await,
        Err(RuntimeError::Conflict(_))
    ));
    runtime.remove_container(&id).await.unwrap();
    runtime.remove_volume("data").await.unwrap();
    assert!(matches!(
        runtime.remove_volume("data").await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn invalid_specs_are_refused_as_docker_would() {
    let runtime = runtime();
    let mut bad = spec(&[]);
    bad.health_check = Some(HealthCheck {
        command: vec!["curl".into()],
        ..Default::default()
    });
    assert!(matches!(
        runtime.create_container(&bad).await,
        Err(RuntimeError::InvalidSpec(_))
    ));
}
