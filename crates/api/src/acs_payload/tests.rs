use super::*;
use berth_agent_protocol::acs::{PayloadMessage, ServerMessage};
use berth_ecs::{Reservation, TaskContainer};
use berth_model::ecs::{ContainerStatus, DesiredStatus, LaunchType, TaskStatus};
use berth_model::task_definition::{RegisterTaskDefinitionRequest, Registration};

const ENDPOINT: &str = "http://127.0.0.1:4566";
const REGISTRY: &str = "127.0.0.1:4566";
const MIB: i64 = 1024 * 1024;
const SECOND: i64 = 1_000_000_000;

fn scope() -> Scope {
    Scope::new(
        "123456789012".parse().unwrap(),
        "eu-west-1".parse().unwrap(),
    )
}

fn register(body: Value, revision: i32) -> TaskDefinition {
    let req: RegisterTaskDefinitionRequest = serde_json::from_value(body).unwrap();
    let family = req.family.clone().unwrap();
    TaskDefinition::register(
        &req,
        Registration {
            task_definition_arn: scope()
                .arn("ecs", &format!("task-definition/{family}:{revision}")),
            revision,
            registered_at: 1_700_000_000.0,
            registered_by: None,
        },
    )
    .unwrap()
}

/// A task of `td` as RunTask stores it.
fn stored_task(td: &TaskDefinition, group: &str, overrides: Option<Value>) -> berth_ecs::Task {
    let overrides = overrides.map(|o| serde_json::from_value(o).expect("overrides of ECS's shape"));
    let scope = scope();
    let id = "0123456789abcdef0123456789abcdef";
    let task_arn = scope.arn("ecs", &format!("task/prod/{id}"));
    berth_ecs::Task {
        id: id.into(),
        cluster: "prod".into(),
        task_definition_arn: td.task_definition_arn.clone().unwrap(),
        container_instance_id: Some("ci-1".into()),
        launch_type: LaunchType::Ec2,
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        created_at: 1_700_000_100.0,
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        execution_stopped_at: None,
        started_by: None,
        group: group.into(),
        stop_code: None,
        stopped_reason: None,
        tags: Vec::new(),
        overrides,
        cpu: "0".into(),
        memory: "0".into(),
        containers: td
            .container_definitions
            .iter()
            .flatten()
            .map(|c| TaskContainer {
                container_arn: scope
                    .arn("ecs", &format!("container/prod/{id}/{}-arn", c.name_str())),
                task_arn: task_arn.clone(),
                name: c.name_str().into(),
                image: c.image.clone().unwrap_or_default(),
                last_status: ContainerStatus::Pending,
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                cpu: None,
                memory: None,
                memory_reservation: None,
                runtime_id: None,
                image_digest: None,
                health_status: None,
                network_interfaces: Vec::new(),
            })
            .collect(),
        version: 1,
        reservation: Reservation::default(),
        availability_zone: None,
        health_status: None,
        capacity_cluster: None,
        capacity_provider_name: None,
        platform_version: None,
        ephemeral_storage_gib: None,
        attachments: Vec::new(),
        security_groups: Vec::new(),
        protection: None,
        load_balancer_targets: Vec::new(),
        deactivating: None,
        waiting_placement: None,
    }
}

/// The task as the agent receives it: a whole PayloadMessage frame, decoded as JSON.
fn payload_task(task: &berth_ecs::Task, td: &TaskDefinition) -> Value {
    let scope = scope();
    let ctx = PayloadContext {
        scope: &scope,
        endpoint: ENDPOINT,
        registry_host: REGISTRY,
        subnet_gateway: task.eni().map(|_| "10.200.3.1/24".to_string()),
    };
    let frame = ServerMessage::Payload(PayloadMessage {
        cluster_arn: Some(scope.arn("ecs", "cluster/prod")),
        container_instance_arn: Some(scope.arn("ecs", "container-instance/prod/ci-1")),
        message_id: Some("m-1".into()),
        seq_num: Some(1),
        tasks: Some(vec![acs_task(&ctx, task, td)]),
        ..PayloadMessage::default()
    })
    .encode();
    let frame: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(frame["type"], "PayloadMessage");
    assert_no_nulls(&frame, "$");
    frame["message"]["tasks"][0].clone()
}

fn assert_no_nulls(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("null at {path}"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_nulls(item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(members) => {
            for (k, item) in members {
                assert_no_nulls(item, &format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

/// A `dockerConfig` document, decoded from its string.
fn document(container: &Value, which: &str) -> Value {
    serde_json::from_str(container["dockerConfig"][which].as_str().unwrap()).unwrap()
}

fn bridge_definition() -> TaskDefinition {
    register(
        json!({
            "family": "shop",
            "networkMode": "bridge",
            "cpu": "512",
            "memory": "1 GB",
            "volumes": [
                {"name": "data", "host": {"sourcePath": "/srv/shop"}},
                {"name": "cache", "dockerVolumeConfiguration": {"autoprovision": true, "driver": "local"}}
            ],
            "containerDefinitions": [
                {
                    "name": "web",
                    "image": "127.0.0.1:4566/shop/web:v1",
                    "cpu": 256,
                    "memory": 512,
                    "memoryReservation": 128,
                    "portMappings": [
                        {"containerPort": 80, "hostPort": 8080},
                        {"containerPort": 9090, "protocol": "udp"}
                    ],
                    "environment": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "LEVEL", "value": "info"}
                    ],
                    "command": ["serve", "--port", "80"],
                    "entryPoint": ["/bin/shop"],
                    "links": ["cache:redis"],
                    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}],
                    "dependsOn": [{"containerName": "cache", "condition": "HEALTHY"}],
                    "healthCheck": {
                        "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                        "interval": 10,
                        "startPeriod": 15
                    },
                    "startTimeout": 60,
                    "stopTimeout": 20,
                    "user": "1000:1000",
                    "workingDirectory": "/app",
                    "dockerLabels": {"team": "shop"},
                    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                    "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
                    "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
                    "readonlyRootFilesystem": true
                },
                {
                    "name": "cache",
                    "image": "redis:7",
                    "essential": false,
                    "memoryReservation": 64,
                    "mountPoints": [{"sourceVolume": "cache", "containerPath": "/data"}],
                    "healthCheck": {"command": ["CMD", "redis-cli", "ping"]}
                }
            ]
        }),
        3,
    )
}

#[test]
fn bridge_task_carries_the_definition_and_the_overrides() {
    let td = bridge_definition();
    let overrides = json!({
        "containerOverrides": [{
            "name": "web",
            "command": ["serve", "--port", "80", "--debug"],
            "environment": [
                {"name": "LEVEL", "value": "debug"},
                {"name": "TRACE", "value": "1"}
            ],
            "cpu": 384,
            "memoryReservation": 192
        }]
    });
    let task = stored_task(&td, "service:shop", Some(overrides));
    let t = payload_task(&task, &td);
    let scope = scope();

    assert_eq!(t["arn"], task.arn(&scope));
    assert_eq!(t["taskClusterArn"], scope.arn("ecs", "cluster/prod"));
    assert_eq!(t["desiredStatus"], "RUNNING");
    assert_eq!(t["family"], "shop");
    assert_eq!(t["version"], "3");
    assert_eq!(t["networkMode"], "bridge");
    assert_eq!(t["launchType"], "EC2");
    assert_eq!(t["cpu"], 0.5, "vCPUs, from 512 units");
    assert_eq!(t["memory"], 1024, "MiB");
    assert_eq!(t["group"], "service:shop");
    assert_eq!(t["serviceName"], "shop");
    assert_eq!(
        t["volumes"],
        json!([
            {"name": "data", "type": "host", "host": {"sourcePath": "/srv/shop"}},
            {"name": "cache", "type": "docker", "dockerVolumeConfiguration":
                {"scope": "task", "autoprovision": true, "driver": "local"}}
        ])
    );

    let web = container(&t, "web");
    assert_eq!(web["image"], "127.0.0.1:4566/shop/web:v1");
    assert_eq!(web["containerArn"], task.containers[0].container_arn);
    assert_eq!(web["command"], json!(["serve", "--port", "80", "--debug"]));
    assert_eq!(web["entryPoint"], json!(["/bin/shop"]));
    assert_eq!(
        web["environment"],
        json!({"MODE": "prod", "LEVEL": "debug", "TRACE": "1"})
    );
    assert_eq!(web["cpu"], 384);
    assert_eq!(web["memory"], 512);
    assert_eq!(web["essential"], true);
    assert_eq!(web["links"], json!(["cache:redis"]));
    assert_eq!(
        web["portMappings"],
        json!([
            {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
            {"containerPort": 9090, "hostPort": 0, "protocol": "udp"}
        ])
    );
    assert_eq!(
        web["mountPoints"],
        json!([{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}])
    );
    assert_eq!(
        web["dependsOn"],
        json!([{"containerName": "cache", "condition": "HEALTHY"}])
    );
    assert_eq!(web["startTimeout"], 60);
    assert_eq!(web["stopTimeout"], 20);
    assert_eq!(web["healthCheckType"], "docker");
    assert_eq!(
        web["registryAuthentication"],
        json!({"type": "ecr", "ecrAuthData": {
            "registryId": "123456789012",
            "region": "eu-west-1",
            "endpointOverride": ENDPOINT,
            "useExecutionRole": false
        }})
    );
    assert!(web.get("overrides").is_none(), "overrides are applied here");

    // startPeriod is the newest member written (Docker API 1.29).
    assert_eq!(web["dockerConfig"]["version"], "1.29");
    let config = document(web, "config");
    assert_eq!(
        config,
        json!({
            "User": "1000:1000",
            "WorkingDir": "/app",
            "Labels": {"team": "shop"},
            "Healthcheck": {
                "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                "Interval": 10 * SECOND,
                "Timeout": 5 * SECOND,
                "Retries": 3,
                "StartPeriod": 15 * SECOND
            }
        })
    );
    let host = document(web, "hostConfig");
    assert_eq!(
        host,
        json!({
            "NetworkMode": "bridge",
            "MemoryReservation": 192 * MIB,
            "ReadonlyRootfs": true,
            "ExtraHosts": ["db:10.0.0.5"],
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}
        })
    );

    let cache = container(&t, "cache");
    assert_eq!(cache["essential"], false);
    assert_eq!(cache["cpu"], 0);
    assert!(cache.get("memory").is_none(), "no hard limit");
    assert!(cache.get("command").is_none());
    assert_eq!(cache["environment"], json!({}));
    assert!(
        cache.get("registryAuthentication").is_none(),
        "Docker Hub image"
    );
    assert_eq!(cache["containerArn"], task.containers[1].container_arn);
    assert_eq!(
        document(cache, "config")["Healthcheck"],
        json!({"Test": ["CMD", "redis-cli", "ping"], "Interval": 30 * SECOND,
               "Timeout": 5 * SECOND, "Retries": 3})
    );
    // Docker volumes already ask the instance for API 1.25.
    assert_eq!(cache["dockerConfig"]["version"], "1.25");
    assert_eq!(
        document(cache, "hostConfig"),
        json!({"NetworkMode": "bridge", "MemoryReservation": 64 * MIB})
    );
}

#[test]
fn host_network_task_without_task_size_or_overrides() {
    let td = register(
        json!({
            "family": "edge",
            "networkMode": "host",
            "volumes": [{"name": "scratch"}],
            "containerDefinitions": [{
                "name": "proxy",
                "image": "nginx:1.27",
                "memory": 256,
                "portMappings": [{"containerPort": 8080}],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/tmp/cache"}],
                "linuxParameters": {
                    "initProcessEnabled": true,
                    "capabilities": {"add": ["NET_ADMIN"]},
                    "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
                    "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/run", "size": 32, "mountOptions": ["noexec"]}]
                },
                "privileged": false
            }]
        }),
        1,
    );
    let mut task = stored_task(&td, "family:edge", None);
    task.desired_status = DesiredStatus::Stopped;
    let t = payload_task(&task, &td);

    assert_eq!(t["desiredStatus"], "STOPPED");
    assert_eq!(t["networkMode"], "host");
    assert_eq!(t["version"], "1");
    assert!(t.get("cpu").is_none() && t.get("memory").is_none());
    assert_eq!(t["group"], "family:edge");
    assert!(t.get("serviceName").is_none());
    assert_eq!(
        t["volumes"],
        json!([{"name": "scratch", "type": "host", "host": {}}])
    );

    let proxy = container(&t, "proxy");
    assert_eq!(proxy["essential"], true);
    assert_eq!(proxy["memory"], 256);
    assert_eq!(
        proxy["portMappings"],
        json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}])
    );
    assert!(proxy.get("registryAuthentication").is_none());
    assert!(proxy.get("healthCheckType").is_none());
    assert_eq!(proxy["privileged"], false);
    assert_eq!(
        proxy["linuxParameters"],
        json!({
            "capabilities": {"add": ["NET_ADMIN"]},
            "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
            "initProcessEnabled": true,
            "sharedMemorySize": 64
        })
    );
    assert!(proxy["dockerConfig"].get("config").is_none());
    assert_eq!(proxy["dockerConfig"]["version"], "1.25", "Init");
    assert_eq!(
        document(proxy, "hostConfig"),
        json!({
            "NetworkMode": "host",
            "Privileged": false,
            "CapAdd": ["NET_ADMIN"],
            "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                         "CgroupPermissions": "rw"}],
            "Init": true,
            "ShmSize": 64 * MIB,
            "Tmpfs": {"/run": "size=32m,noexec"}
        })
    );
}

#[test]
fn awsvpc_task_carries_its_network_interface() {
    let td = register(
        json!({
            "family": "vpc",
            "networkMode": "awsvpc",
            "containerDefinitions": [{
                "name": "web", "image": "busybox", "memory": 64,
                "portMappings": [{"containerPort": 8080}]
            }]
        }),
        1,
    );
    let mut task = stored_task(&td, "family:vpc", None);
    let detail = |name: &str, value: &str| berth_ecs::AttachmentDetail {
        name: name.into(),
        value: value.into(),
    };
    task.attachments.push(berth_ecs::Attachment {
        id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
        kind: "ElasticNetworkInterface".into(),
        status: berth_model::ecs::AttachmentStatus::Precreated,
        details: vec![
            detail("subnetId", "subnet-0abc"),
            detail("networkInterfaceId", "eni-0123456789abcdef0"),
            detail("macAddress", "02:42:0a:c8:03:07"),
            detail("privateDnsName", "ip-10-200-3-7.eu-west-1.compute.internal"),
            detail("privateIPv4Address", "10.200.3.7"),
        ],
    });
    let t = payload_task(&task, &td);
    assert_eq!(t["networkMode"], "awsvpc");
    assert_eq!(
        t["elasticNetworkInterfaces"],
        json!([{
            "attachmentArn": "arn:aws:ecs:eu-west-1:123456789012:attachment/a1b2c3d4-0000-4000-8000-000000000001",
            "ec2Id": "eni-0123456789abcdef0",
            "macAddress": "02:42:0a:c8:03:07",
            "privateDnsName": "ip-10-200-3-7.eu-west-1.compute.internal",
            "ipv4Addresses": [{"primary": true, "privateAddress": "10.200.3.7"}],
            "subnetGatewayIpv4Address": "10.200.3.1/24",
            "interfaceAssociationProtocol": "default",
            "index": 0,
            "subnetId": "subnet-0abc"
        }])
    );
    // The agent puts the containers in the task's namespace itself.
    let web = container(&t, "web");
    assert!(web["dockerConfig"].get("hostConfig").is_none());
    assert_eq!(
        web["portMappings"],
        json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}])
    );
    // Tasks of other modes carry none.
    let plain = stored_task(&td, "family:vpc", None);
    assert!(
        payload_task(&plain, &td)
            .get("elasticNetworkInterfaces")
            .is_none()
    );
}

#[test]
fn plain_container_asks_for_the_oldest_api() {
    let td = register(
        json!({"family": "tiny", "containerDefinitions": [
            {"name": "app", "image": "127.0.0.1:4566/tiny:latest", "memory": 64}
        ]}),
        7,
    );
    let t = payload_task(&stored_task(&td, "family:tiny", None), &td);
    let app = container(&t, "app");
    assert_eq!(t["networkMode"], "bridge", "ECS's default");
    assert_eq!(app["dockerConfig"]["version"], "1.17");
    assert_eq!(
        app["dockerConfig"]["hostConfig"],
        r#"{"NetworkMode":"bridge"}"#
    );
    assert_eq!(app["registryAuthentication"]["type"], "ecr");
}

#[test]
fn task_size_overrides_replace_the_definition() {
    let td = bridge_definition();
    let overrides = json!({"cpu": "1 vCPU", "memory": "2048", "containerOverrides": []});
    let t = payload_task(&stored_task(&td, "", Some(overrides)), &td);
    assert_eq!(t["cpu"], 1.0);
    assert_eq!(t["memory"], 2048);
    assert!(t.get("group").is_none());
    assert_eq!(container(&t, "web")["cpu"], 256);
}

#[test]
fn registry_host_of_an_image() {
    assert_eq!(image_registry_host("nginx"), None);
    assert_eq!(image_registry_host("library/nginx:1"), None);
    assert_eq!(
        image_registry_host("127.0.0.1:4566/a/b:tag"),
        Some("127.0.0.1:4566")
    );
    assert_eq!(
        image_registry_host("localhost/app@sha256:abcd"),
        Some("localhost")
    );
    assert_eq!(image_registry_host("ghcr.io/org/app"), Some("ghcr.io"));
}
