use super::*;
use crate::{HealthCheck, LogConfig, NetworkMode, PortMapping, Ulimit};
use bollard::models::{
    ContainerConfig, ContainerState as DockerState, EndpointSettings, EventActor, Health,
    NetworkSettings,
};

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "app:v1".to_owned(),
        ..Default::default()
    }
}

#[test]
fn a_minimal_spec_leaves_everything_to_docker() {
    let body = build_create_body(&spec()).unwrap();
    assert_eq!(body.image.as_deref(), Some("app:v1"));
    assert_eq!(body.cmd, None);
    assert_eq!(body.entrypoint, None);
    assert_eq!(body.env, None);
    assert_eq!(body.exposed_ports, None);
    assert_eq!(body.healthcheck, None);
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("bridge"));
    assert_eq!(host.port_bindings, None);
    assert_eq!(host.memory, None);
    assert_eq!(host.init, None);
}

#[test]
fn an_empty_image_is_refused() {
    let error = build_create_body(&ContainerSpec::default()).unwrap_err();
    assert!(matches!(error, RuntimeError::InvalidSpec(_)));
}

#[test]
fn process_settings_carry_over() {
    let spec = ContainerSpec {
        command: vec!["-p".into(), "80".into()],
        entrypoint: vec!["httpd".into()],
        env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
        working_dir: Some("/srv".into()),
        user: Some("1000:1000".into()),
        hostname: Some("web".into()),
        stop_signal: Some("SIGQUIT".into()),
        labels: BTreeMap::from([("team".into(), "a".into())]),
        ..spec()
    };
    let body = build_create_body(&spec).unwrap();
    assert_eq!(body.cmd.unwrap(), ["-p", "80"]);
    assert_eq!(body.entrypoint.unwrap(), ["httpd"]);
    assert_eq!(body.env.unwrap(), ["A=1", "B=x=y"]);
    assert_eq!(body.working_dir.as_deref(), Some("/srv"));
    assert_eq!(body.user.as_deref(), Some("1000:1000"));
    assert_eq!(body.hostname.as_deref(), Some("web"));
    assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(body.labels.unwrap()["team"], "a");
}

#[test]
fn ports_are_exposed_and_bound_static_or_dynamic() {
    let spec = ContainerSpec {
        port_mappings: vec![
            PortMapping {
                container_port: 80,
                host_port: Some(8080),
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".into()),
            },
            PortMapping {
                container_port: 80,
                host_port: None,
                ..Default::default()
            },
            PortMapping {
                container_port: 53,
                host_port: Some(0),
                protocol: Protocol::Udp,
                host_ip: None,
            },
        ],
        ..spec()
    };
    let body = build_create_body(&spec).unwrap();
    assert_eq!(body.exposed_ports.unwrap(), ["53/udp", "80/tcp"]);
    let bindings = body.host_config.unwrap().port_bindings.unwrap();
    let tcp = bindings["80/tcp"].as_ref().unwrap();
    assert_eq!(tcp.len(), 2);
    assert_eq!(tcp[0].host_port.as_deref(), Some("8080"));
    assert_eq!(tcp[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(tcp[1].host_port.as_deref(), Some(""));
    let udp = bindings["53/udp"].as_ref().unwrap();
    assert_eq!(udp[0].host_port.as_deref(), Some(""));
}

#[test]
fn host_and_none_modes_publish_nothing() {
    for mode in [
        NetworkMode::Host,
        NetworkMode::None,
        NetworkMode::Container("abc".into()),
    ] {
        let spec = ContainerSpec {
            network_mode: mode.clone(),
            port_mappings: vec![PortMapping {
                container_port: 80,
                host_port: Some(80),
                ..Default::default()
            }],
            ..spec()
        };
        let body = build_create_body(&spec).unwrap();
        assert_eq!(body.exposed_ports, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.port_bindings, None);
        assert_eq!(host.network_mode.unwrap(), mode.docker_value());
    }
    assert_eq!(
        NetworkMode::Container("abc".into()).docker_value(),
        "container:abc"
    );
    assert_eq!(
        NetworkMode::Named("backend".into()).docker_value(),
        "backend"
    );
}

#[test]
fn a_zero_container_port_is_refused() {
    let spec = ContainerSpec {
        port_mappings: vec![PortMapping::default()],
        ..spec()
    };
    assert!(matches!(
        build_create_body(&spec),
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[test]
fn resources_in_docker_units() {
    let spec = ContainerSpec {
        cpu_shares: Some(512),
        memory_mib: Some(256),
        memory_reservation_mib: Some(128),
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 4096,
        }],
        init: true,
        privileged: true,
        readonly_rootfs: true,
        ..spec()
    };
    let host = build_create_body(&spec).unwrap().host_config.unwrap();
    assert_eq!(host.cpu_shares, Some(512));
    assert_eq!(host.memory, Some(256 * 1024 * 1024));
    assert_eq!(host.memory_reservation, Some(128 * 1024 * 1024));
    let ulimit = &host.ulimits.unwrap()[0];
    assert_eq!(
        (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
        (Some("nofile"), Some(1024), Some(4096))
    );
    assert_eq!(host.init, Some(true));
    assert_eq!(host.privileged, Some(true));
    assert_eq!(host.readonly_rootfs, Some(true));
}

#[test]
fn a_cpu_quota_becomes_cfs_quota_and_period() {
    let capped = ContainerSpec {
        cpu_quota: Some(crate::CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        ..spec()
    };
    let host = build_create_body(&capped).unwrap().host_config.unwrap();
    assert_eq!(
        (host.cpu_quota, host.cpu_period),
        (Some(50_000), Some(100_000))
    );
    let none = build_create_body(&spec()).unwrap().host_config.unwrap();
    assert_eq!((none.cpu_quota, none.cpu_period), (None, None));
    let tiny = ContainerSpec {
        cpu_quota: Some(crate::CpuQuota {
            quota_us: 999,
            period_us: 100_000,
        }),
        ..spec()
    };
    assert!(matches!(
        build_create_body(&tiny),
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[test]
fn stats_samples_are_read_from_dockers_document() {
    let sample: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
        "read": "2024-05-01T10:00:00.5Z",
        "preread": "0001-01-01T00:00:00Z",
        "id": "abc",
        "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64, "percpu_usage": [1, 2]},
                      "system_cpu_usage": 9_000_000_000u64, "online_cpus": 2},
        "memory_stats": {"usage": 10_485_760u64, "limit": 67_108_864u64,
                         "stats": {"cache": 2_097_152u64}},
    }))
    .unwrap();
    let stats = stats_from_docker(sample);
    assert_eq!(stats.cpu_total_ns, 2_000_000_000);
    assert_eq!(stats.system_cpu_ns, Some(9_000_000_000));
    assert_eq!(stats.online_cpus, Some(2));
    assert_eq!(stats.memory_used_bytes(), 8 << 20);
    assert_eq!(stats.memory_limit_bytes, Some(64 << 20));
    assert_eq!(stats.read.unix_timestamp(), 1_714_557_600);
    // The document keeps Docker's member names.
    assert_eq!(stats.document["cpu_stats"]["online_cpus"], 2);
    assert_eq!(stats.document["memory_stats"]["stats"]["cache"], 2_097_152);

    // cgroup v2 names the page cache inactive_file.
    let v2: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
        "memory_stats": {"usage": 100u64, "stats": {"inactive_file": 40u64}},
    }))
    .unwrap();
    assert_eq!(stats_from_docker(v2).memory_used_bytes(), 60);
}

#[test]
fn a_fixed_address_goes_on_the_named_networks_endpoint() {
    let body = build_create_body(&ContainerSpec {
        network_mode: NetworkMode::Named("berth-subnet-1".to_owned()),
        ipv4_address: Some("10.192.3.7".to_owned()),
        mac_address: Some("02:42:0a:c0:03:07".to_owned()),
        ..spec()
    })
    .unwrap();
    let json = serde_json_value(&body);
    assert_eq!(json["HostConfig"]["NetworkMode"], "berth-subnet-1");
    assert_eq!(
        json["NetworkingConfig"]["EndpointsConfig"]["berth-subnet-1"],
        serde_json::json!({
            "IPAMConfig": {"IPv4Address": "10.192.3.7"},
            "MacAddress": "02:42:0a:c0:03:07"
        })
    );
    // Elsewhere there is no endpoint to configure.
    let plain = serde_json_value(&build_create_body(&spec()).unwrap());
    assert!(plain.get("NetworkingConfig").is_none());
}

#[test]
fn networks_are_bridges_with_their_subnet_and_gateway() {
    let wanted = NetworkSpec {
        name: "berth-subnet-1".to_owned(),
        subnet: "10.192.3.0/24".to_owned(),
        gateway: "10.192.3.1".to_owned(),
        labels: BTreeMap::from([("berth.subnet-id".to_owned(), "subnet-1".to_owned())]),
    };
    let request = serde_json::to_value(network_create_request(&wanted)).unwrap();
    assert_eq!(request["Name"], "berth-subnet-1");
    assert_eq!(request["Driver"], "bridge");
    assert_eq!(
        request["IPAM"]["Config"],
        serde_json::json!([{"Subnet": "10.192.3.0/24", "Gateway": "10.192.3.1"}])
    );
    let found = |subnet: &str| -> NetworkInspect {
        serde_json::from_value(serde_json::json!({
            "Name": "berth-subnet-1", "IPAM": {"Config": [{"Subnet": subnet}]}
        }))
        .unwrap()
    };
    assert!(check_network(&found("10.192.3.0/24"), &wanted).is_ok());
    assert!(matches!(
        check_network(&found("10.192.4.0/24"), &wanted),
        Err(RuntimeError::Conflict(_))
    ));
}

#[test]
fn the_bridge_gateway_is_its_pools_gateway_or_first_address() {
    let network = |config: serde_json::Value| -> NetworkInspect {
        serde_json::from_value(serde_json::json!({"Name": "bridge", "IPAM": {"Config": config}}))
            .unwrap()
    };
    assert_eq!(
        gateway_of(&network(serde_json::json!([{"Subnet": "172.17.0.0/16"}]))).as_deref(),
        Some("172.17.0.1")
    );
    assert_eq!(
        gateway_of(&network(serde_json::json!([
            {"Subnet": "10.9.8.0/24", "Gateway": "10.9.8.254"}
        ])))
        .as_deref(),
        Some("10.9.8.254")
    );
    // IPv6 pools are skipped for an IPv4 one.
    assert_eq!(
        gateway_of(&network(serde_json::json!([
            {"Subnet": "fd00::/64", "Gateway": "fd00::1"},
            {"Subnet": "192.168.5.0/24"}
        ])))
        .as_deref(),
        Some("192.168.5.1")
    );
    assert_eq!(gateway_of(&network(serde_json::json!([]))), None);
}

#[test]
fn mounts_links_hosts_dns_and_logging() {
    let spec = ContainerSpec {
        mounts: vec![
            MountSpec::Bind {
                host_path: "/srv/data".into(),
                container_path: "/data".into(),
                read_only: true,
            },
            MountSpec::Volume {
                name: "cache".into(),
                container_path: "/cache".into(),
                read_only: false,
            },
        ],
        volumes_from: vec!["sidecar:ro".into()],
        links: vec!["db:database".into()],
        extra_hosts: vec![("registry.local".into(), "10.0.0.5".into())],
        dns_servers: vec!["10.0.0.2".into()],
        dns_search_domains: vec!["corp".into()],
        log_config: Some(LogConfig {
            driver: "json-file".into(),
            options: BTreeMap::from([("max-size".into(), "10m".into())]),
        }),
        ..spec()
    };
    let host = build_create_body(&spec).unwrap().host_config.unwrap();
    assert_eq!(host.binds.unwrap(), ["/srv/data:/data:ro", "cache:/cache"]);
    assert_eq!(host.volumes_from.unwrap(), ["sidecar:ro"]);
    assert_eq!(host.links.unwrap(), ["db:database"]);
    assert_eq!(host.extra_hosts.unwrap(), ["registry.local:10.0.0.5"]);
    assert_eq!(host.dns.unwrap(), ["10.0.0.2"]);
    assert_eq!(host.dns_search.unwrap(), ["corp"]);
    let log = host.log_config.unwrap();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(log.config.unwrap()["max-size"], "10m");
}

#[test]
fn a_mount_path_with_a_colon_is_refused() {
    let spec = ContainerSpec {
        mounts: vec![MountSpec::Bind {
            host_path: "/a:b".into(),
            container_path: "/data".into(),
            read_only: false,
        }],
        ..spec()
    };
    assert!(matches!(
        build_create_body(&spec),
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[test]
fn health_checks_in_nanoseconds() {
    let good = ContainerSpec {
        health_check: Some(HealthCheck {
            command: vec!["CMD-SHELL".into(), "exit 0".into()],
            interval_secs: Some(5),
            timeout_secs: Some(2),
            retries: Some(3),
            start_period_secs: None,
        }),
        ..spec()
    };
    let check = build_create_body(&good).unwrap().healthcheck.unwrap();
    assert_eq!(check.test.unwrap(), ["CMD-SHELL", "exit 0"]);
    assert_eq!(check.interval, Some(5_000_000_000));
    assert_eq!(check.timeout, Some(2_000_000_000));
    assert_eq!(check.retries, Some(3));
    assert_eq!(check.start_period, None);

    let bad = ContainerSpec {
        health_check: Some(HealthCheck {
            command: vec!["curl".into(), "localhost".into()],
            ..Default::default()
        }),
        ..spec()
    };
    assert!(matches!(
        build_create_body(&bad),
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[test]
fn the_create_body_serializes_as_docker_expects() {
    let spec = ContainerSpec {
        port_mappings: vec![PortMapping {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        }],
        ..spec()
    };
    let json = serde_json_value(&build_create_body(&spec).unwrap());
    assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    assert_eq!(
        json["HostConfig"]["PortBindings"],
        serde_json::json!({"80/tcp": [{"HostPort": "8080"}]})
    );
}

fn serde_json_value(body: &ContainerCreateBody) -> serde_json::Value {
    serde_json::to_value(body).unwrap()
}

fn inspect(status: ContainerStateStatusEnum) -> ContainerInspectResponse {
    ContainerInspectResponse {
        id: Some("abc".into()),
        name: Some("/web".into()),
        state: Some(DockerState {
            status: Some(status),
            exit_code: Some(143),
            started_at: Some("2024-05-01T10:00:00.123456789Z".into()),
            finished_at: Some("0001-01-01T00:00:00Z".into()),
            oom_killed: Some(false),
            health: Some(Health {
                status: Some(HealthStatusEnum::HEALTHY),
                ..Default::default()
            }),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        }),
        network_settings: Some(NetworkSettings {
            ports: Some(HashMap::from([
                (
                    "80/tcp".into(),
                    Some(vec![
                        DockerPortBinding {
                            host_ip: Some("0.0.0.0".into()),
                            host_port: Some("49153".into()),
                        },
                        DockerPortBinding {
                            host_ip: Some("::".into()),
                            host_port: Some("49153".into()),
                        },
                    ]),
                ),
                // Exposed by the image but not published.
                ("443/tcp".into(), None),
            ])),
            networks: Some(HashMap::from([(
                "bridge".into(),
                EndpointSettings {
                    ip_address: Some("172.17.0.2".into()),
                    ..Default::default()
                },
            )])),
            ..Default::default()
        }),
        config: Some(ContainerConfig {
            image: Some("app:v1".into()),
            env: Some(vec!["A=1".into()]),
            working_dir: Some("/srv".into()),
            user: Some("1000".into()),
            labels: Some(HashMap::from([("team".into(), "a".into())])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn inspect_reads_state_ports_and_address() {
    let status = status_from_inspect(inspect(ContainerStateStatusEnum::RUNNING)).unwrap();
    assert_eq!(status.id.as_str(), "abc");
    assert_eq!(status.name, "web");
    assert_eq!(status.image, "app:v1");
    assert_eq!(status.state, ContainerState::Running);
    assert_eq!(status.exit_code, None, "no exit code while running");
    assert_eq!(
        status.started_at.unwrap().unix_timestamp(),
        1_714_557_600,
        "2024-05-01T10:00:00Z"
    );
    assert_eq!(status.finished_at, None, "year 1 means unset");
    assert_eq!(status.health, HealthStatus::Healthy);
    assert_eq!(
        status.port_bindings,
        [
            PortBinding {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: "0.0.0.0".into(),
                host_port: 49153
            },
            PortBinding {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: "::".into(),
                host_port: 49153
            },
        ]
    );
    assert_eq!(status.ip_address.as_deref(), Some("172.17.0.2"));
    assert_eq!(status.env, ["A=1"]);
    assert_eq!(status.working_dir, "/srv");
    assert_eq!(status.user, "1000");
    assert_eq!(status.labels["team"], "a");

    let exited = status_from_inspect(inspect(ContainerStateStatusEnum::EXITED)).unwrap();
    assert_eq!(exited.state, ContainerState::Exited);
    assert_eq!(exited.exit_code, Some(143));
}

#[test]
fn a_finish_recorded_before_the_start_is_moved_to_the_start() {
    let mut response = inspect(ContainerStateStatusEnum::EXITED);
    let state = response.state.as_mut().unwrap();
    state.started_at = Some("2024-05-01T10:00:00.050Z".into());
    state.finished_at = Some("2024-05-01T10:00:00.020Z".into());
    let status = status_from_inspect(response).unwrap();
    assert_eq!(status.finished_at, status.started_at);
}

#[test]
fn events_are_read_into_container_events() {
    let message = |action: &str, attributes: &[(&str, &str)]| EventMessage {
        action: Some(action.into()),
        actor: Some(EventActor {
            id: Some("abc".into()),
            attributes: Some(
                attributes
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
        }),
        ..Default::default()
    };
    let kind = |m: EventMessage| event_from_message(&m).map(|e| e.kind);
    assert_eq!(
        kind(message("start", &[])),
        Some(ContainerEventKind::Started)
    );
    assert_eq!(
        kind(message("die", &[("exitCode", "137"), ("name", "web")])),
        Some(ContainerEventKind::Died {
            exit_code: Some(137)
        })
    );
    assert_eq!(
        kind(message("health_status: unhealthy", &[])),
        Some(ContainerEventKind::Health(HealthStatus::Unhealthy))
    );
    assert_eq!(
        kind(message("health_status: healthy", &[])),
        Some(ContainerEventKind::Health(HealthStatus::Healthy))
    );
    assert_eq!(
        kind(message("oom", &[])),
        Some(ContainerEventKind::OomKilled)
    );
    assert_eq!(
        kind(message("destroy", &[])),
        Some(ContainerEventKind::Destroyed)
    );
    assert_eq!(kind(message("exec_start: sh", &[])), None);
}

#[test]
fn events_are_asked_for_since_the_call() {
    let since = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_123).unwrap();
    let options = events_options(&[("berth.test", "1")], since);
    assert_eq!(options.since.as_deref(), Some("1700000000.000000123"));
    let filters = options.filters.unwrap();
    assert_eq!(filters["label"], ["berth.test=1"]);
    assert_eq!(filters["type"], ["container"]);
    assert!(filters["event"].contains(&"health_status".to_owned()));
}

#[test]
fn log_entries_are_split_into_time_source_and_bytes() {
    let frame = log_frame(LogOutput::StdErr {
        message: bytes::Bytes::from_static(b"2024-05-01T12:00:00.123456789Z oops \n"),
    })
    .unwrap();
    assert_eq!(frame.source, LogSource::Stderr);
    assert_eq!(frame.bytes.as_ref(), b"oops \n");
    assert_eq!(
        frame.timestamp.unix_timestamp_nanos(),
        1_714_564_800_123_456_789
    );
    // A partial entry keeps its missing newline; a TTY line counts as stdout.
    let frame = log_frame(LogOutput::Console {
        message: bytes::Bytes::from_static(b"2024-05-01T12:00:00Z abc"),
    })
    .unwrap();
    assert_eq!(
        (frame.source, frame.bytes.as_ref()),
        (LogSource::Stdout, &b"abc"[..])
    );
    for junk in [
        &b"Error grabbing logs: gone\n"[..],
        b"",
        b"2024-05-01T12:00:00Z",
    ] {
        let output = LogOutput::StdOut {
            message: bytes::Bytes::copy_from_slice(junk),
        };
        assert_eq!(log_frame(output), None);
    }
}

#[test]
fn logs_are_asked_for_with_timestamps_from_the_whole_second() {
    let since = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_900_000_000).unwrap();
    let options = logs_options(Some(since), true);
    assert_eq!(options.since, 1_700_000_000);
    assert!(options.follow && options.stdout && options.stderr && options.timestamps);
    assert_eq!(logs_options(None, false).since, 0);
}

#[test]
fn stop_timeouts_round_up_to_whole_seconds() {
    assert_eq!(timeout_seconds(Duration::from_secs(30)), 30);
    assert_eq!(timeout_seconds(Duration::from_millis(1500)), 2);
    assert_eq!(timeout_seconds(Duration::ZERO), 0);
}

#[test]
fn docker_host_defaults_to_the_standard_socket() {
    assert_eq!(docker_host(None), "unix:///var/run/docker.sock");
    assert_eq!(docker_host(Some("")), "unix:///var/run/docker.sock");
    assert_eq!(
        docker_host(Some("unix:///run/d.sock")),
        "unix:///run/d.sock"
    );
}

#[test]
fn docker_errors_map_onto_runtime_errors() {
    let server = |status_code: u16, message: &str| BollardError::DockerResponseServerError {
        status_code,
        message: message.to_owned(),
    };
    assert!(matches!(
        map_error(server(404, "No such container")),
        RuntimeError::NotFound(_)
    ));
    assert!(matches!(
        map_error(server(409, "name in use")),
        RuntimeError::Conflict(_)
    ));
    assert!(matches!(
        map_error(server(400, "bad")),
        RuntimeError::InvalidSpec(_)
    ));
    assert!(matches!(
        map_error(server(
            500,
            "Bind for 0.0.0.0:80 failed: port is already allocated"
        )),
        RuntimeError::Conflict(_)
    ));
    assert!(matches!(
        map_error(server(500, "boom")),
        RuntimeError::Other(_)
    ));
    assert!(matches!(
        map_error(BollardError::SocketNotFoundError("/nope".into())),
        RuntimeError::Unavailable(_)
    ));
    assert!(matches!(
        map_error(BollardError::RequestTimeoutError),
        RuntimeError::Unavailable(_)
    ));
}
