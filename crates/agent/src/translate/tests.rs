//! Translating ACS tasks into container specs, volumes and start order.

use super::*;
use serde_json::json;

fn task(value: Value) -> Task {
    serde_json::from_value(value).unwrap()
}

fn web_task() -> Task {
    task(json!({
        "arn": "arn:aws:ecs:us-east-1:000000000000:task/prod/abc",
        "family": "web", "version": "7", "desiredStatus": "RUNNING",
        "networkMode": "bridge",
        "volumes": [
            {"name": "logs", "type": "host", "host": {"sourcePath": "/var/log/web"}},
            {"name": "scratch", "type": "host", "host": {}},
            {"name": "cache", "type": "docker",
             "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}}
        ],
        "containers": [
            {
                "name": "app", "image": "127.0.0.1:4566/web:v1",
                "cpu": 256, "memory": 128,
                "command": ["httpd", "-f"], "entryPoint": ["/bin/sh", "-c"],
                "environment": {"B": "2", "A": "1"},
                "essential": true,
                "portMappings": [
                    {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                    {"containerPort": 53, "hostPort": 0, "protocol": "udp"}
                ],
                "mountPoints": [
                    {"sourceVolume": "logs", "containerPath": "/logs", "readOnly": true},
                    {"sourceVolume": "scratch", "containerPath": "/tmp/s"},
                    {"sourceVolume": "cache", "containerPath": "/cache"}
                ],
                "links": ["db:database"],
                "volumesFrom": [{"sourceContainer": "db", "readOnly": true}],
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
                "dockerConfig": {
                    "config": "{\"User\":\"nobody\",\"WorkingDir\":\"/www\",\"Labels\":{\"team\":\"blue\",\"com.amazonaws.ecs.cluster\":\"spoofed\"},\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":5000000000,\"Timeout\":2500000000,\"Retries\":4,\"StartPeriod\":1000000000}}",
                    "hostConfig": "{\"NetworkMode\":\"bridge\",\"MemoryReservation\":67108864,\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1024,\"Hard\":4096}],\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":\"1m\"}},\"ExtraHosts\":[\"db.local:10.0.0.2\"],\"Dns\":[\"1.1.1.1\"],\"Init\":true}"
                }
            },
            {"name": "db", "image": "busybox", "cpu": 0, "essential": false}
        ]
    }))
}

fn test_installation() -> InstallationId {
    "inst000001".parse().unwrap()
}

#[test]
fn a_container_spec_carries_everything_acs_describes() {
    let task = web_task();
    let mode = network_mode(&task).unwrap();
    let names = BTreeMap::from([
        ("app".to_owned(), docker_name(&task, "app", "s1")),
        ("db".to_owned(), docker_name(&task, "db", "s2")),
    ]);
    let volumes = resolve_volumes(&task, "v1", None).unwrap();
    let layout = TaskLayout {
        task: &task,
        cluster: "prod",
        instance_arn: "arn:ci",
        installation: &test_installation(),
        network_mode: &mode,
        docker_names: &names,
        volumes: &volumes,
        metadata_uris: &BTreeMap::new(),
    };
    let containers = task.containers.as_ref().unwrap();
    let spec = container_spec(&layout, &containers[0]).unwrap();
    assert_eq!(spec.name.as_deref(), Some("ecs-web-7-app-s1"));
    assert_eq!(spec.image, "127.0.0.1:4566/web:v1");
    assert_eq!(spec.command, ["httpd", "-f"]);
    assert_eq!(spec.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(
        spec.env,
        [("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(spec.cpu_shares, Some(256));
    assert_eq!(spec.memory_mib, Some(128));
    assert_eq!(spec.memory_reservation_mib, Some(64));
    assert_eq!(spec.user.as_deref(), Some("nobody"));
    assert_eq!(spec.working_dir.as_deref(), Some("/www"));
    assert_eq!(
        spec.port_mappings,
        [
            PortMapping {
                container_port: 80,
                host_port: Some(8080),
                protocol: Protocol::Tcp,
                host_ip: None
            },
            PortMapping {
                container_port: 53,
                host_port: None,
                protocol: Protocol::Udp,
                host_ip: None
            },
        ]
    );
    assert_eq!(
        spec.mounts,
        [
            MountSpec::Bind {
                host_path: "/var/log/web".into(),
                container_path: "/logs".into(),
                read_only: true
            },
            MountSpec::Volume {
                name: "ecs-web-7-scratch-v1".into(),
                container_path: "/tmp/s".into(),
                read_only: false
            },
            MountSpec::Volume {
                name: "cache".into(),
                container_path: "/cache".into(),
                read_only: false
            },
        ]
    );
    assert_eq!(spec.links, ["ecs-web-7-db-s2:database"]);
    assert_eq!(spec.volumes_from, ["ecs-web-7-db-s2:ro"]);
    assert_eq!(
        spec.health_check,
        Some(HealthCheck {
            command: vec!["CMD-SHELL".into(), "true".into()],
            interval_secs: Some(5),
            timeout_secs: Some(3),
            retries: Some(4),
            start_period_secs: Some(1),
        })
    );
    assert_eq!(
        spec.ulimits,
        [Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 4096
        }]
    );
    assert_eq!(spec.log_config.as_ref().unwrap().driver, "json-file");
    assert_eq!(spec.log_config.as_ref().unwrap().options["max-size"], "1m");
    assert_eq!(spec.extra_hosts, [("db.local".into(), "10.0.0.2".into())]);
    assert_eq!(spec.dns_servers, ["1.1.1.1"]);
    assert!(spec.init);
    assert_eq!(spec.labels["team"], "blue");
    assert_eq!(
        spec.labels[LABEL_CLUSTER], "prod",
        "ECS labels win over dockerLabels"
    );
    assert_eq!(
        spec.labels[LABEL_TASK_ARN],
        "arn:aws:ecs:us-east-1:000000000000:task/prod/abc"
    );
    assert_eq!(spec.labels[LABEL_CONTAINER_NAME], "app");
    assert_eq!(spec.labels[LABEL_FAMILY], "web");
    assert_eq!(spec.labels[LABEL_VERSION], "7");
    assert_eq!(spec.labels[LABEL_INSTANCE], "arn:ci");
    assert_eq!(spec.labels[LABEL_INSTALLATION], "inst000001");
    spec.validate().unwrap();

    let db = container_spec(&layout, &containers[1]).unwrap();
    assert_eq!(db.cpu_shares, Some(MIN_CPU_SHARES));
    assert_eq!(db.memory_mib, None);
}

#[test]
fn host_mode_publishes_nothing_and_awsvpc_needs_an_interface() {
    let mut task = web_task();
    task.network_mode = Some("host".into());
    assert_eq!(network_mode(&task).unwrap(), NetworkMode::Host);
    task.volumes = None;
    let containers = vec![Container {
        name: Some("app".into()),
        image: Some("busybox".into()),
        port_mappings: Some(vec![berth_agent_protocol::acs::PortMapping {
            container_port: Some(80),
            ..Default::default()
        }]),
        ..Default::default()
    }];
    task.containers = Some(containers.clone());
    let names = BTreeMap::new();
    let volumes = BTreeMap::new();
    let spec = container_spec(
        &TaskLayout {
            task: &task,
            cluster: "c",
            instance_arn: "i",
            installation: &test_installation(),
            network_mode: &NetworkMode::Host,
            docker_names: &names,
            volumes: &volumes,
            metadata_uris: &BTreeMap::from([(
                "app".to_owned(),
                "http://127.0.0.1:51679/v4/t0k3n".to_owned(),
            )]),
        },
        &containers[0],
    )
    .unwrap();
    assert!(spec.port_mappings.is_empty());
    assert_eq!(spec.network_mode, NetworkMode::Host);
    assert_eq!(
        spec.env.last(),
        Some(&(
            METADATA_URI_V4.to_owned(),
            "http://127.0.0.1:51679/v4/t0k3n".to_owned()
        ))
    );

    task.network_mode = Some("awsvpc".into());
    assert!(network_mode(&task).is_err());
    assert!(
        task_network(&task)
            .unwrap_err()
            .0
            .contains("elasticNetworkInterfaces")
    );
    task.elastic_network_interfaces =
        Some(vec![berth_agent_protocol::acs::ElasticNetworkInterface {
            attachment_arn: Some("arn:aws:ecs:us-east-1:0:attachment/a".into()),
            ec2_id: Some("eni-0123".into()),
            mac_address: Some("02:42:0a:c0:03:07".into()),
            ipv4_addresses: Some(vec![berth_agent_protocol::acs::IPv4AddressAssignment {
                primary: Some(true),
                private_address: Some("10.192.3.7".into()),
            }]),
            subnet_gateway_ipv4_address: Some("10.192.3.1/24".into()),
            subnet_id: Some("subnet-0abc".into()),
            ..Default::default()
        }]);
    assert_eq!(
        task_network(&task).unwrap(),
        TaskNetwork::Awsvpc(TaskEni {
            attachment_arn: "arn:aws:ecs:us-east-1:0:attachment/a".into(),
            eni_id: "eni-0123".into(),
            mac_address: "02:42:0a:c0:03:07".into(),
            ipv4_address: "10.192.3.7".into(),
            subnet_id: "subnet-0abc".into(),
            subnet_cidr: "10.192.3.0/24".into(),
            gateway: "10.192.3.1".into(),
        })
    );
    // Without a task-level mode, the containers' hostConfig says it.
    task.network_mode = None;
    task.containers = Some(vec![Container {
        docker_config: Some(berth_agent_protocol::acs::DockerConfig {
            host_config: Some(r#"{"NetworkMode":"none"}"#.into()),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    assert_eq!(network_mode(&task).unwrap(), NetworkMode::None);
}

#[test]
fn volumes_resolve_by_type_and_scope() {
    let task = web_task();
    let volumes = resolve_volumes(&task, "x", None).unwrap();
    assert_eq!(
        volumes["logs"],
        ResolvedVolume::Bind {
            path: "/var/log/web".into()
        }
    );
    assert!(matches!(
        &volumes["scratch"],
        ResolvedVolume::Docker { task_scoped: true, name, .. } if name == "ecs-web-7-scratch-x"
    ));
    assert!(matches!(
        &volumes["cache"],
        ResolvedVolume::Docker { task_scoped: false, autoprovision: true, name, .. } if name == "cache"
    ));
    let efs = task_with_volume(json!({"name": "shared", "type": "efs"}));
    assert!(resolve_volumes(&efs, "x", None).is_err());
}

/// EFS volumes are directories under the agent's EFS root, per file system (and access
/// point); nothing in the configuration reaches outside its file system.
#[test]
fn efs_volumes_map_to_directories_under_the_efs_root() {
    let root = Path::new("/var/lib/berth/efs");
    let resolve = |config: Value| {
        let task = task_with_volume(
            json!({"name": "data", "type": "efs", "efsVolumeConfiguration": config}),
        );
        resolve_volumes(&task, "x", Some(root)).map(|mut v| v.remove("data").unwrap())
    };
    let path = |config: Value| match resolve(config).unwrap() {
        ResolvedVolume::Efs { path } => path,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        path(json!({"fileSystemId": "fs-0123abcd"})),
        "/var/lib/berth/efs/fs-0123abcd"
    );
    assert_eq!(
        path(
            json!({"fileSystemId": "fs-0123abcd", "rootDirectory": "/app/data",
                    "transitEncryption": "ENABLED"})
        ),
        "/var/lib/berth/efs/fs-0123abcd/app/data"
    );
    assert_eq!(
        path(json!({"fileSystemId": "fs-1", "rootDirectory": "/",
                    "authorizationConfig": {"accessPointId": "fsap-42", "iam": "ENABLED"}})),
        "/var/lib/berth/efs/fs-1/.access-points/fsap-42"
    );
    for bad in [
        json!({}),
        json!({"fileSystemId": "../etc"}),
        json!({"fileSystemId": "fs-1/../../x"}),
        json!({"fileSystemId": "fs-1", "rootDirectory": "/a/../../etc"}),
        json!({"fileSystemId": "fs-1", "rootDirectory": "/x",
               "authorizationConfig": {"accessPointId": "fsap-1"}}),
        json!({"fileSystemId": "fs-1", "authorizationConfig": {"accessPointId": "../x"}}),
    ] {
        assert!(resolve(bad.clone()).is_err(), "{bad}");
    }
}

fn task_with_volume(volume: Value) -> Task {
    task(json!({"arn": "a", "family": "f", "version": "1", "volumes": [volume], "containers": []}))
}

fn limited_task(cpu: f64, memory: i64, containers: Value) -> Task {
    task(
        json!({"arn": "a", "family": "f", "version": "1", "cpu": cpu, "memory": memory,
                "containers": containers}),
    )
}

fn shares_of(task: &Task) -> Vec<(String, Option<u64>, Option<u64>)> {
    task_shares(task)
        .into_iter()
        .map(|(name, share)| (name, share.cpu_quota.map(|c| c.quota_us), share.memory_mib))
        .collect()
}

fn reservation(mib: i64) -> Value {
    json!({"hostConfig": format!("{{\"MemoryReservation\":{}}}", mib * 1024 * 1024)})
}

#[test]
fn task_limits_are_divided_among_the_containers() {
    // Half a vCPU and 512 MiB, no container limits: even halves.
    let even = limited_task(0.5, 512, json!([{"name": "a"}, {"name": "b"}]));
    assert_eq!(
        shares_of(&even),
        [
            ("a".to_owned(), Some(25_000), Some(256)),
            ("b".to_owned(), Some(25_000), Some(256))
        ]
    );

    // Container CPU units are guaranteed, the rest split evenly: 1 vCPU = 1024 units,
    // a has 512, so a gets 512 + 256 and b 256.
    // Memory: b's hard limit (100) caps it; a reserves 300 and fills up to the task's.
    let mixed = limited_task(
        1.0,
        512,
        json!([
            {"name": "a", "cpu": 512, "dockerConfig": reservation(300)},
            {"name": "b", "memory": 100}
        ]),
    );
    assert_eq!(
        shares_of(&mixed),
        [
            ("a".to_owned(), Some(75_000), Some(412)),
            ("b".to_owned(), Some(25_000), Some(100))
        ]
    );

    // No container may have more than the task: a hard limit above it is cut down,
    // and reservations over the task's memory are scaled into it.
    let over = limited_task(
        0.25,
        256,
        json!([
            {"name": "a", "memory": 1024, "cpu": 2048, "dockerConfig": reservation(200)},
            {"name": "b", "cpu": 2048, "dockerConfig": reservation(200)}
        ]),
    );
    let shares = task_shares(&over);
    let total_memory: u64 = shares.values().filter_map(|s| s.memory_mib).sum();
    let total_cpu: u64 = shares
        .values()
        .filter_map(|s| s.cpu_quota.map(|c| c.quota_us))
        .sum();
    assert!(total_memory <= 256, "{shares:?}");
    assert!(total_cpu <= 25_000, "{shares:?}");
    assert_eq!(shares["a"].memory_mib, Some(128));
    assert_eq!(
        shares["a"].cpu_quota.map(|c| c.period_us),
        Some(CFS_PERIOD_US)
    );

    // Docker's minimums hold however small the task.
    let tiny = limited_task(
        0.001,
        8,
        json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]),
    );
    for share in task_shares(&tiny).values() {
        assert!(share.cpu_quota.unwrap().quota_us >= MIN_CFS_QUOTA_US);
        assert!(share.memory_mib.unwrap() >= MIN_MEMORY_MIB);
    }

    // Nothing at task level: nothing to divide.
    let unlimited = task(json!({"containers": [{"name": "a", "memory": 64}]}));
    assert!(task_shares(&unlimited).is_empty());
}

#[test]
fn task_limits_reach_the_container_spec() {
    let task = limited_task(
        0.5,
        256,
        json!([{"name": "app", "image": "busybox", "memory": 1024,
                "dockerConfig": reservation(512)}]),
    );
    let names = BTreeMap::new();
    let volumes = BTreeMap::new();
    let spec = container_spec(
        &TaskLayout {
            task: &task,
            cluster: "c",
            instance_arn: "i",
            installation: &test_installation(),
            network_mode: &NetworkMode::Bridge,
            docker_names: &names,
            volumes: &volumes,
            metadata_uris: &BTreeMap::new(),
        },
        &task.containers.as_ref().unwrap()[0],
    )
    .unwrap();
    assert_eq!(spec.memory_mib, Some(256));
    // The soft reservation never exceeds the hard limit.
    assert_eq!(spec.memory_reservation_mib, Some(256));
    assert_eq!(
        spec.cpu_quota,
        Some(CpuQuota {
            quota_us: 50_000,
            period_us: 100_000
        })
    );
    assert!(spec.env.iter().all(|(k, _)| k != METADATA_URI_V4));
}

#[test]
fn start_order_puts_dependencies_first() {
    let t = task(json!({
        "containers": [
            {"name": "web", "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
             "links": ["cache:c"]},
            {"name": "cache", "volumesFrom": [{"sourceContainer": "init"}]},
            {"name": "init"},
            {"name": "sidecar"}
        ]
    }));
    let order = start_order(&t).unwrap();
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    assert!(pos("init") < pos("cache"));
    assert!(pos("cache") < pos("web"));
    assert_eq!(order.len(), 4);

    let cycle = task(json!({"containers": [
        {"name": "a", "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "dependsOn": [{"containerName": "a", "condition": "START"}]}
    ]}));
    assert!(start_order(&cycle).unwrap_err().0.contains("cycle"));
    let missing = task(json!({"containers": [
        {"name": "a", "dependsOn": [{"containerName": "ghost", "condition": "START"}]}
    ]}));
    assert!(start_order(&missing).unwrap_err().0.contains("ghost"));
}

#[test]
fn docker_names_are_valid_docker_names() {
    let t = task(json!({"family": "my app", "version": "2"}));
    assert_eq!(docker_name(&t, "web/1", "ab"), "ecs-my-app-2-web-1-ab");
}
