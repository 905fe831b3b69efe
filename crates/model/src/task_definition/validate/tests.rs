use serde_json::{Value, json};

use super::*;

fn request(value: Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(value).unwrap()
}

/// The message ECS would return for `value`, which must be invalid.
fn message(value: Value) -> String {
    validate(&request(value)).unwrap_err().message()
}

fn web() -> Value {
    json!({"name": "web", "image": "nginx:1.27", "memory": 256})
}

/// A minimal valid EC2 (bridge) definition holding `containers`.
fn ec2(containers: Value) -> Value {
    json!({"family": "app", "containerDefinitions": containers})
}

/// A minimal valid Fargate definition holding `containers`.
fn fargate(containers: Value) -> Value {
    json!({
        "family": "app",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": containers
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// A realistic Fargate definition after the ECS developer guide's examples: a web server
/// with a port, awslogs, a health check and a sidecar it waits for.
fn fargate_example() -> Value {
    json!({
        "family": "sample-fargate",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1 vCPU",
        "memory": "3 GB",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "taskRoleArn": "arn:aws:iam::123456789012:role/app",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "containerDefinitions": [
            {
                "name": "fargate-app",
                "image": "public.ecr.aws/docker/library/httpd:latest",
                "essential": true,
                "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
                "entryPoint": ["sh", "-c"],
                "command": ["httpd-foreground"],
                "environment": [{"name": "MODE", "value": "production"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/sample-fargate",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "ecs"
                    }
                },
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10
                },
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]
            },
            {
                "name": "init",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/init:1",
                "essential": false,
                "memoryReservation": 64
            }
        ]
    })
}

// ---- realistic definitions and serde ----

#[test]
fn fargate_example_validates_and_round_trips() {
    let req = request(fargate_example());
    validate(&req).unwrap();
    assert_eq!(
        compatibilities(&req),
        ["EC2", "FARGATE"].map(String::from).to_vec()
    );

    let text = serde_json::to_string(&req).unwrap();
    let again: RegisterTaskDefinitionRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(again, req);
    // Absent members stay absent: nothing serialises as null.
    assert!(!text.contains("null"), "{text}");
    assert_eq!(serde_json::to_value(&req).unwrap(), fargate_example());
}

#[test]
fn registered_revision_is_normalised_like_ecs() {
    let req = request(fargate_example());
    let at = Registration {
        task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-fargate:1"
            .to_string(),
        revision: 1,
        registered_at: 1_700_000_000.25,
        registered_by: Some("arn:aws:iam::123456789012:root".to_string()),
    };
    let td = TaskDefinition::register(&req, at).unwrap();
    let v = serde_json::to_value(&td).unwrap();
    assert_eq!(v["cpu"], "1024");
    assert_eq!(v["memory"], "3072");
    assert_eq!(v["status"], "ACTIVE");
    assert_eq!(v["revision"], 1);
    assert_eq!(v["registeredAt"], 1_700_000_000.25);
    assert_eq!(v["compatibilities"], json!(["EC2", "FARGATE"]));
    assert_eq!(v["volumes"], json!([]));
    assert_eq!(v["placementConstraints"], json!([]));
    assert!(v.get("deregisteredAt").is_none());
    let sidecar = &v["containerDefinitions"][1];
    assert_eq!(sidecar["cpu"], 0);
    assert_eq!(sidecar["essential"], false);
    assert_eq!(sidecar["portMappings"], json!([]));
    assert_eq!(sidecar["mountPoints"], json!([]));
    let attributes: Vec<&str> = td
        .requires_attributes
        .iter()
        .flatten()
        .filter_map(|a| a.name.as_deref())
        .collect();
    for expected in [
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "com.amazonaws.ecs.capability.docker-remote-api.1.21",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.execution-role-ecr-pull",
        "com.amazonaws.ecs.capability.task-iam-role",
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "ecs.capability.task-eni",
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing from {attributes:?}"
        );
    }
    // The stored form reads back as the same value.
    let back: TaskDefinition = serde_json::from_value(v).unwrap();
    assert_eq!(back, td);
}

#[test]
fn bridge_port_without_host_port_gets_dynamic_port_and_tcp() {
    let req = request(ec2(json!([{
        "name": "web", "image": "nginx", "memory": 128,
        "portMappings": [{"containerPort": 80}]
    }])));
    let at = Registration {
        task_definition_arn: "arn".to_string(),
        revision: 3,
        registered_at: 0.0,
        registered_by: None,
    };
    let td = TaskDefinition::register(&req, at).unwrap();
    let v = serde_json::to_value(&td).unwrap();
    assert_eq!(
        v["containerDefinitions"][0]["portMappings"],
        json!([
            {"containerPort": 80, "hostPort": 0, "protocol": "tcp"}
        ])
    );
    assert_eq!(v["containerDefinitions"][0]["essential"], true);
    assert_eq!(v["compatibilities"], json!(["EXTERNAL", "EC2"]));
    assert!(v.get("requiresCompatibilities").is_none());
    assert!(v.get("cpu").is_none());
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = fargate_example();
    v["someFutureField"] = json!({"x": 1});
    v["containerDefinitions"][0]["brandNewOption"] = json!(true);
    v["containerDefinitions"][0]["portMappings"][0]["extra"] = json!("y");
    let req = request(v);
    validate(&req).unwrap();
    assert_eq!(serde_json::to_value(&req).unwrap(), fargate_example());
}

#[test]
fn botocore_cli_skeleton_deserializes_with_every_member() {
    // `aws ecs register-task-definition --generate-cli-skeleton input` (botocore 1.43):
    // every member the service model defines, filled with placeholders.
    let text = include_str!("../testdata/register-task-definition-skeleton.json");
    let skeleton: Value = serde_json::from_str(text).unwrap();
    let req: RegisterTaskDefinitionRequest = serde_json::from_value(skeleton.clone()).unwrap();
    // Re-serialising loses nothing, so no member of the model is missing from our types.
    assert_eq!(serde_json::to_value(&req).unwrap(), skeleton);
    // Placeholders are not a valid definition.
    assert_eq!(
        validate(&req).unwrap_err(),
        TaskDefinitionError::FamilyBlank
    );
}

#[test]
fn task_definition_shape_covers_the_botocore_model() {
    // The botocore `TaskDefinition` shape with every member present.
    let text = include_str!("../testdata/task-definition-skeleton.json");
    let skeleton: Value = serde_json::from_str(text).unwrap();
    let td: TaskDefinition = serde_json::from_value(skeleton["taskDefinition"].clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&td).unwrap(),
        skeleton["taskDefinition"]
    );
}

#[test]
fn cli_input_json_from_a_file_deserializes() {
    // What `aws ecs register-task-definition --cli-input-json file://td.json` sends for
    // the documented EC2 example (camelCase, tags, volumes, placement constraints).
    let body = r#"{
        "family": "web-ec2",
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}},
                    {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}],
        "tags": [{"key": "team", "value": "platform"}],
        "containerDefinitions": [
            {"name": "web", "image": "nginx", "cpu": 128, "memoryReservation": 128, "memory": 256,
             "links": ["cache:redis"], "portMappings": [{"containerPort": 80, "hostPort": 8080}],
             "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}],
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
             "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
             "dockerLabels": {"com.example": "yes"}},
            {"name": "cache", "image": "redis:7", "memory": 128, "essential": false,
             "volumesFrom": [{"sourceContainer": "web", "readOnly": true}],
             "linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}], "initProcessEnabled": true}}
        ]
    }"#;
    let req: RegisterTaskDefinitionRequest = serde_json::from_str(body).unwrap();
    validate(&req).unwrap();
    // Bind mounts and docker volumes run on ECS Anywhere too; Fargate needs awsvpc.
    assert_eq!(
        compatibilities(&req),
        ["EXTERNAL", "EC2"].map(String::from).to_vec()
    );
    assert_eq!(req.tags.as_ref().unwrap()[0].key, "team");
}

// ---- compatibilities ----

#[test]
fn compatibilities_as_ecs_computes_them() {
    let bridge = request(ec2(json!([web()])));
    assert_eq!(
        compatibilities(&bridge),
        ["EXTERNAL", "EC2"].map(String::from).to_vec()
    );

    // awsvpc with a Fargate size is Fargate-compatible even when not asked for.
    let awsvpc = request(json!({
        "family": "app", "networkMode": "awsvpc", "cpu": "512", "memory": "1024",
        "containerDefinitions": [web()]
    }));
    assert_eq!(
        compatibilities(&awsvpc),
        ["EC2", "FARGATE"].map(String::from).to_vec()
    );

    // awsvpc without a Fargate size: EC2 only (ECS Anywhere has no ENIs).
    let sized_for_ec2 = request(json!({
        "family": "app", "networkMode": "awsvpc", "containerDefinitions": [web()]
    }));
    assert_eq!(compatibilities(&sized_for_ec2), vec!["EC2".to_string()]);

    // A privileged container rules Fargate out.
    let mut privileged = fargate(json!([web()]));
    privileged["requiresCompatibilities"] = json!(["EC2"]);
    privileged["containerDefinitions"][0]["privileged"] = json!(true);
    assert_eq!(
        compatibilities(&request(privileged)),
        vec!["EC2".to_string()]
    );

    // Ephemeral storage is Fargate's alone.
    let storage = with(
        fargate(json!([web()])),
        "ephemeralStorage",
        json!({"sizeInGiB": 50}),
    );
    assert_eq!(
        compatibilities(&request(storage)),
        vec!["FARGATE".to_string()]
    );

    assert!(compatibilities(&request(json!({"family": "x"}))).is_empty());
}

// ---- one test per rule, asserting ECS's message ----

#[test]
fn family_rules() {
    let no_family = json!({"containerDefinitions": [web()]});
    assert_eq!(message(no_family), "Family can not be blank.");
    assert_eq!(
        message(with(ec2(json!([web()])), "family", json!(""))),
        "Family can not be blank."
    );
    for bad in ["my.app", "my app", "app/1", "é"] {
        assert_eq!(
            message(with(ec2(json!([web()])), "family", json!(bad))),
            "Family contains invalid characters."
        );
    }
    let long = "a".repeat(256);
    assert_eq!(
        message(with(ec2(json!([web()])), "family", json!(long))),
        "Family contains invalid characters."
    );
    validate(&request(with(
        ec2(json!([web()])),
        "family",
        json!("a".repeat(255)),
    )))
    .unwrap();
    validate(&request(with(
        ec2(json!([web()])),
        "family",
        json!("My_app-2"),
    )))
    .unwrap();
}

#[test]
fn container_count_rules() {
    assert_eq!(message(ec2(json!([]))), "Container list cannot be empty.");
    assert_eq!(
        message(json!({"family": "app"})),
        "Container list cannot be empty."
    );
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox", "memory": 16}))
        .collect();
    assert_eq!(message(ec2(json!(eleven))), "Too many containers.");
    validate(&request(ec2(json!(eleven[..10])))).unwrap();
}

#[test]
fn container_name_rules() {
    assert_eq!(
        message(ec2(json!([{"image": "nginx", "memory": 64}]))),
        "Container.name should not be null or empty."
    );
    assert_eq!(
        message(ec2(
            json!([{"name": "my web", "image": "nginx", "memory": 64}])
        )),
        "Container.name contains invalid characters."
    );
    assert_eq!(
        message(ec2(json!([web(), web()]))),
        "Container names must be unique within a Task Definition."
    );
}

#[test]
fn image_is_required() {
    assert_eq!(
        message(ec2(json!([{"name": "web", "memory": 64}]))),
        "Container.image should not be null or empty."
    );
    assert_eq!(
        message(ec2(json!([{"name": "web", "image": "", "memory": 64}]))),
        "Container.image should not be null or empty."
    );
}

#[test]
fn memory_is_required_without_task_memory() {
    assert_eq!(
        message(ec2(json!([{"name": "web", "image": "nginx"}]))),
        "Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be specified."
    );
    // A soft limit alone, or task-level memory alone, is enough.
    validate(&request(ec2(
        json!([{"name": "web", "image": "nginx", "memoryReservation": 64}]),
    )))
    .unwrap();
    validate(&request(with(
        ec2(json!([{"name": "web", "image": "nginx"}])),
        "memory",
        json!("512"),
    )))
    .unwrap();
}

#[test]
fn container_memory_minimum() {
    assert_eq!(
        message(ec2(json!([{"name": "web", "image": "nginx", "memory": 5}]))),
        "Invalid 'memory' setting for container 'web'. The minimum is 6 MiB."
    );
    validate(&request(ec2(
        json!([{"name": "web", "image": "nginx", "memory": 6}]),
    )))
    .unwrap();
    assert_eq!(
        message(ec2(
            json!([{"name": "web", "image": "nginx", "memoryReservation": 0}])
        )),
        "Invalid 'memoryReservation' setting for container 'web'. The value must be greater than 0."
    );
}

#[test]
fn memory_reservation_at_most_memory() {
    assert_eq!(
        message(ec2(
            json!([{"name": "web", "image": "nginx", "memory": 128, "memoryReservation": 256}])
        )),
        "Invalid setting for container 'web'. 'memory' must be greater than or equal to 'memoryReservation'."
    );
    validate(&request(ec2(
        json!([{"name": "web", "image": "nginx", "memory": 128, "memoryReservation": 128}]),
    )))
    .unwrap();
}

#[test]
fn container_cpu_not_negative() {
    assert_eq!(
        message(ec2(
            json!([{"name": "web", "image": "nginx", "memory": 64, "cpu": -1}])
        )),
        "Invalid 'cpu' setting for container 'web'. The value must not be negative."
    );
}

#[test]
fn requires_compatibilities_values() {
    assert_eq!(
        message(with(
            ec2(json!([web()])),
            "requiresCompatibilities",
            json!(["EC2", "LAMBDA"])
        )),
        "Invalid compatibility 'LAMBDA'. Valid values for requiresCompatibilities are EC2, FARGATE and EXTERNAL."
    );
    validate(&request(with(
        ec2(json!([web()])),
        "requiresCompatibilities",
        json!(["EC2", "EXTERNAL"]),
    )))
    .unwrap();
}

#[test]
fn network_mode_values() {
    assert_eq!(
        message(with(ec2(json!([web()])), "networkMode", json!("nat"))),
        "Invalid network mode 'nat'. Valid values are bridge, host, awsvpc and none."
    );
    for mode in ["bridge", "host", "awsvpc", "none"] {
        validate(&request(with(
            ec2(json!([web()])),
            "networkMode",
            json!(mode),
        )))
        .unwrap();
    }
}

#[test]
fn task_cpu_and_memory_must_parse() {
    assert_eq!(
        message(with(ec2(json!([web()])), "cpu", json!("lots"))),
        "Invalid 'cpu' setting for task."
    );
    assert_eq!(
        message(with(ec2(json!([web()])), "memory", json!("-1"))),
        "Invalid 'memory' setting for task."
    );
}

#[test]
fn fargate_requires_awsvpc() {
    assert_eq!(
        message(with(
            fargate(json!([web()])),
            "networkMode",
            json!("bridge")
        )),
        "Fargate only supports network mode \u{2018}awsvpc\u{2019}."
    );
    let mut no_mode = fargate(json!([web()]));
    no_mode.as_object_mut().unwrap().remove("networkMode");
    assert_eq!(
        message(no_mode),
        "Fargate only supports network mode ‘awsvpc’."
    );
}

#[test]
fn fargate_requires_task_cpu_and_memory() {
    let mut no_cpu = fargate(json!([web()]));
    no_cpu.as_object_mut().unwrap().remove("cpu");
    assert_eq!(
        message(no_cpu),
        "Fargate requires that 'cpu' be defined at the task level."
    );
    let mut no_memory = fargate(json!([{"name": "web", "image": "nginx"}]));
    no_memory.as_object_mut().unwrap().remove("memory");
    assert_eq!(
        message(no_memory),
        "Fargate requires that 'memory' be defined at the task level."
    );
}

#[test]
fn fargate_cpu_memory_table() {
    let valid = [
        (256, 512),
        (256, 1024),
        (256, 2048),
        (512, 1024),
        (512, 3072),
        (512, 4096),
        (1024, 2048),
        (1024, 8192),
        (2048, 4096),
        (2048, 16384),
        (4096, 8192),
        (4096, 30720),
        (8192, 16384),
        (8192, 61440),
        (16384, 32768),
        (16384, 122880),
    ];
    for (cpu, memory) in valid {
        let v = with(
            with(fargate(json!([web()])), "cpu", json!(cpu.to_string())),
            "memory",
            json!(memory.to_string()),
        );
        validate(&request(v)).unwrap_or_else(|e| panic!("{cpu}/{memory}: {e}"));
    }
    let invalid = [
        (256, 4096),
        (512, 512),
        (512, 1536),
        (1024, 1024),
        (1024, 9216),
        (2048, 17408),
        (4096, 31744),
        (8192, 18432),
        (16384, 36864),
        (300, 1024),
    ];
    for (cpu, memory) in invalid {
        let v = with(
            with(fargate(json!([web()])), "cpu", json!(cpu.to_string())),
            "memory",
            json!(memory.to_string()),
        );
        assert_eq!(
            message(v),
            format!(
                "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
            )
        );
    }
    // Units are accepted and converted before the table is consulted.
    let units = with(
        with(fargate(json!([web()])), "cpu", json!("2 vCPU")),
        "memory",
        json!("8 GB"),
    );
    validate(&request(units)).unwrap();
    let bad_units = with(
        with(fargate(json!([web()])), "cpu", json!(".25 vCPU")),
        "memory",
        json!("4GB"),
    );
    assert_eq!(
        message(bad_units),
        "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS documentation for the valid values."
    );
}

#[test]
fn fargate_rejects_host_features() {
    let cases = [
        (
            json!({"privileged": true}),
            "Tasks using the Fargate launch type do not support privileged.",
        ),
        (
            json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            "Tasks using the Fargate launch type do not support devices.",
        ),
        (
            json!({"linuxParameters": {"sharedMemorySize": 64}}),
            "Tasks using the Fargate launch type do not support sharedMemorySize.",
        ),
        (
            json!({"linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 64}]}}),
            "Tasks using the Fargate launch type do not support tmpfs.",
        ),
        (
            json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}),
            "Tasks using the Fargate launch type do not support adding Linux capabilities other than SYS_PTRACE.",
        ),
        (
            json!({"resourceRequirements": [{"type": "GPU", "value": "1"}]}),
            "Tasks using the Fargate launch type do not support GPU resource requirements.",
        ),
    ];
    for (extra, expected) in cases {
        let mut container = web();
        for (k, v) in extra.as_object().unwrap() {
            container[k] = v.clone();
        }
        assert_eq!(message(fargate(json!([container]))), expected);
    }
    // SYS_PTRACE is the one capability Fargate lets you add.
    let mut ptrace = web();
    ptrace["linuxParameters"] = json!({"capabilities": {"add": ["SYS_PTRACE"]}});
    validate(&request(fargate(json!([ptrace])))).unwrap();

    assert_eq!(
        message(with(fargate(json!([web()])), "ipcMode", json!("host"))),
        "Tasks using the Fargate launch type do not support ipcMode."
    );
    assert_eq!(
        message(with(fargate(json!([web()])), "pidMode", json!("host"))),
        "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."
    );
    validate(&request(with(
        fargate(json!([web()])),
        "pidMode",
        json!("task"),
    )))
    .unwrap();
    assert_eq!(
        message(with(
            fargate(json!([web()])),
            "placementConstraints",
            json!([{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}])
        )),
        "Fargate does not support task placement constraints."
    );
    assert_eq!(
        message(with(
            fargate(json!([web()])),
            "volumes",
            json!([{"name": "d", "host": {"sourcePath": "/d"}}])
        )),
        "host.sourcePath should not be set for volumes in Fargate."
    );
    // A bind mount without a host path is task storage, which Fargate has.
    validate(&request(with(
        fargate(json!([web()])),
        "volumes",
        json!([{"name": "d", "host": {}}]),
    )))
    .unwrap();
    assert_eq!(
        message(with(
            fargate(json!([web()])),
            "volumes",
            json!([{"name": "d", "dockerVolumeConfiguration": {"driver": "local"}}])
        )),
        "Tasks using the Fargate launch type do not support dockerVolumeConfiguration."
    );
}

#[test]
fn external_rejects_awsvpc() {
    let v = json!({
        "family": "app", "networkMode": "awsvpc", "requiresCompatibilities": ["EXTERNAL"],
        "containerDefinitions": [web()]
    });
    assert_eq!(
        message(v),
        "Tasks using the EXTERNAL launch type do not support networkMode awsvpc."
    );
}

#[test]
fn awsvpc_and_host_ports_must_match() {
    let mapped = json!([{"name": "web", "image": "nginx", "memory": 64,
                         "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]);
    assert_eq!(
        message(with(ec2(mapped.clone()), "networkMode", json!("awsvpc"))),
        "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
    );
    assert_eq!(
        message(with(ec2(mapped.clone()), "networkMode", json!("host"))),
        "When networkMode=host, the host ports and container ports in port mappings must match."
    );
    validate(&request(ec2(mapped))).unwrap();
    let same = json!([{"name": "web", "image": "nginx", "memory": 64,
                       "portMappings": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 443}]}]);
    validate(&request(with(ec2(same), "networkMode", json!("awsvpc")))).unwrap();
}

#[test]
fn port_mapping_values() {
    let port = |m: Value| {
        ec2(json!([{"name": "web", "image": "nginx", "memory": 64, "portMappings": [m]}]))
    };
    assert_eq!(
        message(port(json!({"containerPort": 53, "protocol": "sctp"}))),
        "Invalid protocol 'sctp' in port mappings of container 'web'. Valid values are tcp and udp."
    );
    for bad in [
        json!({"containerPort": 0}),
        json!({"containerPort": 65536}),
        json!({"hostPort": 80}),
    ] {
        assert_eq!(
            message(port(bad)),
            "Invalid 'containerPort' setting for container 'web'. The value must be between 1 and 65535."
        );
    }
    assert_eq!(
        message(port(json!({"containerPort": 80, "hostPort": 70000}))),
        "Invalid 'hostPort' setting for container 'web'. The value must be between 0 and 65535."
    );
    validate(&request(port(
        json!({"containerPort": 53, "protocol": "udp"}),
    )))
    .unwrap();
    validate(&request(port(json!({"containerPortRange": "8000-8010"})))).unwrap();
}

#[test]
fn host_ports_unique_per_protocol_in_shared_namespaces() {
    let two = json!([
        {"name": "a", "image": "nginx", "memory": 64, "portMappings": [{"containerPort": 80}]},
        {"name": "b", "image": "nginx", "memory": 64, "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
    ]);
    assert_eq!(
        message(with(ec2(two.clone()), "networkMode", json!("awsvpc"))),
        "Host port 80/tcp is mapped more than once in the task definition."
    );
    assert_eq!(
        message(with(ec2(two.clone()), "networkMode", json!("host"))),
        "Host port 80/tcp is mapped more than once in the task definition."
    );
    // Bridge maps each container's port 80 to its own dynamic host port.
    validate(&request(ec2(two))).unwrap();
    let tcp_and_udp = json!([{"name": "dns", "image": "coredns", "memory": 64, "portMappings": [
        {"containerPort": 53, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}]}]);
    validate(&request(with(
        ec2(tcp_and_udp),
        "networkMode",
        json!("awsvpc"),
    )))
    .unwrap();
}

#[test]
fn links_only_in_bridge_mode() {
    let linked = json!([
        {"name": "web", "image": "nginx", "memory": 64, "links": ["db"]},
        {"name": "db", "image": "postgres", "memory": 64}
    ]);
    assert_eq!(
        message(with(ec2(linked.clone()), "networkMode", json!("awsvpc"))),
        "Links are not supported when networkMode=awsvpc."
    );
    assert_eq!(
        message(with(ec2(linked.clone()), "networkMode", json!("host"))),
        "Links are not supported when networkMode=host."
    );
    validate(&request(with(ec2(linked), "networkMode", json!("bridge")))).unwrap();
}

#[test]
fn links_name_existing_containers_without_cycles() {
    assert_eq!(
        message(ec2(
            json!([{"name": "web", "image": "nginx", "memory": 64, "links": ["db:database"]}])
        )),
        "Container 'web' links to 'db:database', which is not a container in this task definition."
    );
    let cycle = json!([
        {"name": "a", "image": "x", "memory": 64, "links": ["b"]},
        {"name": "b", "image": "x", "memory": 64, "links": ["a:alias"]}
    ]);
    assert_eq!(
        message(ec2(cycle)),
        "Container links should not have a cycle"
    );
    let own = json!([{"name": "a", "image": "x", "memory": 64, "links": ["a"]}]);
    assert_eq!(message(ec2(own)), "Container links should not have a cycle");
}

#[test]
fn awsvpc_rejects_hostname_and_extra_hosts() {
    let named = json!([{"name": "web", "image": "nginx", "memory": 64, "hostname": "web"}]);
    assert_eq!(
        message(with(ec2(named.clone()), "networkMode", json!("awsvpc"))),
        "hostname is not supported on container when networkMode=awsvpc."
    );
    validate(&request(ec2(named))).unwrap();
    let hosts = json!([{"name": "web", "image": "nginx", "memory": 64,
                        "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.2"}]}]);
    assert_eq!(
        message(with(ec2(hosts), "networkMode", json!("awsvpc"))),
        "extraHosts is not supported on container when networkMode=awsvpc."
    );
}

#[test]
fn at_least_one_essential_container() {
    let none = json!([{"name": "web", "image": "nginx", "memory": 64, "essential": false}]);
    assert_eq!(
        message(ec2(none)),
        "Task definition doesn't have any essential container."
    );
    // Omitted means essential.
    validate(&request(ec2(
        json!([web(), {"name": "side", "image": "x", "memory": 64, "essential": false}]),
    )))
    .unwrap();
}

fn depending(condition: &str, target: Value) -> Value {
    ec2(json!([
        {"name": "web", "image": "nginx", "memory": 64,
         "dependsOn": [{"containerName": "init", "condition": condition}]},
        target
    ]))
}

#[test]
fn depends_on_existing_container() {
    let v = ec2(json!([{"name": "web", "image": "nginx", "memory": 64,
                        "dependsOn": [{"containerName": "ghost", "condition": "START"}]}]));
    assert_eq!(
        message(v),
        "Cannot depend on container + 'ghost' because it does not exist"
    );
    let blank = ec2(json!([{"name": "web", "image": "nginx", "memory": 64,
                            "dependsOn": [{"condition": "START"}]}]));
    assert_eq!(
        message(blank),
        "Container.dependsOn.containerName should not be null or empty."
    );
}

#[test]
fn depends_on_condition_values() {
    let init = json!({"name": "init", "image": "x", "memory": 64, "essential": false});
    assert_eq!(
        message(depending("RUNNING", init.clone())),
        "Invalid dependency condition 'RUNNING'. Valid values are START, COMPLETE, SUCCESS and HEALTHY."
    );
    for ok in ["START", "COMPLETE", "SUCCESS"] {
        validate(&request(depending(ok, init.clone()))).unwrap();
    }
}

#[test]
fn success_and_complete_need_a_non_essential_target() {
    let essential = json!({"name": "init", "image": "x", "memory": 64});
    for condition in ["SUCCESS", "COMPLETE"] {
        assert_eq!(
            message(depending(condition, essential.clone())),
            "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"
        );
    }
    validate(&request(depending("START", essential))).unwrap();
}

#[test]
fn healthy_needs_a_health_check_on_the_target() {
    let bare = json!({"name": "init", "image": "x", "memory": 64});
    assert_eq!(
        message(depending("HEALTHY", bare)),
        "A dependency container with HEALTHY condition must have health check configured"
    );
    let checked = json!({"name": "init", "image": "x", "memory": 64,
                         "healthCheck": {"command": ["CMD", "true"]}});
    validate(&request(depending("HEALTHY", checked))).unwrap();
}

#[test]
fn depends_on_without_cycles() {
    let cycle = ec2(json!([
        {"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "image": "x", "memory": 64, "dependsOn": [{"containerName": "c", "condition": "START"}]},
        {"name": "c", "image": "x", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}
    ]));
    assert_eq!(
        message(cycle),
        "Container dependencies should not have a cycle"
    );
    let own = ec2(json!([
        {"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}
    ]));
    assert_eq!(
        message(own),
        "Container dependencies should not have a cycle"
    );
    let diamond = ec2(json!([
        {"name": "a", "image": "x", "memory": 64, "dependsOn": [
            {"containerName": "b", "condition": "START"}, {"containerName": "c", "condition": "START"}]},
        {"name": "b", "image": "x", "memory": 64, "dependsOn": [{"containerName": "d", "condition": "START"}]},
        {"name": "c", "image": "x", "memory": 64, "dependsOn": [{"containerName": "d", "condition": "START"}]},
        {"name": "d", "image": "x", "memory": 64}
    ]));
    validate(&request(diamond)).unwrap();
}

fn health(check: Value) -> Value {
    ec2(json!([{"name": "web", "image": "nginx", "memory": 64, "healthCheck": check}]))
}

#[test]
fn health_check_command() {
    assert_eq!(
        message(health(json!({"command": []}))),
        "Health check command for container 'web' should not be empty."
    );
    assert_eq!(
        message(health(json!({"interval": 30}))),
        "Health check command for container 'web' should not be empty."
    );
    assert_eq!(
        message(health(
            json!({"command": ["curl", "-f", "http://localhost/"]})
        )),
        "Health check command for container 'web' must start with CMD or CMD-SHELL."
    );
    validate(&request(health(
        json!({"command": ["CMD-SHELL", "curl -f http://localhost/"]}),
    )))
    .unwrap();
}

#[test]
fn health_check_bounds() {
    let cases = [
        (
            "interval",
            4,
            "Health check interval must be greater than or equal to the minimum allowed value 5 for container 'web'",
        ),
        (
            "interval",
            301,
            "Health check interval must be less than or equal to the maximum allowed value 300 for container 'web'",
        ),
        (
            "timeout",
            1,
            "Health check timeout must be greater than or equal to the minimum allowed value 2 for container 'web'",
        ),
        (
            "timeout",
            121,
            "Health check timeout must be less than or equal to the maximum allowed value 120 for container 'web'",
        ),
        (
            "retries",
            0,
            "Health check retries must be greater than or equal to the minimum allowed value 1 for container 'web'",
        ),
        (
            "retries",
            11,
            "Health check retries must be less than or equal to the maximum allowed value 10 for container 'web'",
        ),
        (
            "startPeriod",
            -1,
            "Health check startPeriod must be greater than or equal to the minimum allowed value 0 for container 'web'",
        ),
        (
            "startPeriod",
            301,
            "Health check startPeriod must be less than or equal to the maximum allowed value 300 for container 'web'",
        ),
    ];
    for (field, value, expected) in cases {
        let mut check = json!({"command": ["CMD", "true"]});
        check[field] = json!(value);
        assert_eq!(message(health(check)), expected);
    }
    validate(&request(health(
        json!({"command": ["CMD", "true"], "interval": 5, "timeout": 120,
                                     "retries": 10, "startPeriod": 0}),
    )))
    .unwrap();
}

#[test]
fn volume_names_unique_and_referenced() {
    let vols = |v: Value| with(ec2(json!([web()])), "volumes", v);
    assert_eq!(
        message(vols(json!([{"name": "d"}, {"name": "d"}]))),
        "Volume names must be unique within a Task Definition."
    );
    assert_eq!(
        message(vols(json!([{"host": {}}]))),
        "Volume.name should not be null or empty."
    );

    let mounting = |mount: Value| {
        let mut v =
            ec2(json!([{"name": "web", "image": "nginx", "memory": 64, "mountPoints": [mount]}]));
        v["volumes"] = json!([{"name": "data"}]);
        v
    };
    assert_eq!(
        message(mounting(
            json!({"sourceVolume": "logs", "containerPath": "/logs"})
        )),
        "Unknown volume 'logs'."
    );
    assert_eq!(
        message(mounting(json!({"containerPath": "/logs"}))),
        "Unknown volume 'null'."
    );
    validate(&request(mounting(
        json!({"sourceVolume": "data", "containerPath": "/data"}),
    )))
    .unwrap();
}

#[test]
fn volumes_from_names_another_container() {
    let from = |source: &str| {
        ec2(json!([
            {"name": "web", "image": "nginx", "memory": 64, "volumesFrom": [{"sourceContainer": source}]},
            {"name": "data", "image": "busybox", "memory": 64}
        ]))
    };
    assert_eq!(
        message(from("ghost")),
        "Container 'web' has volumesFrom 'ghost', which is not another container in this task definition."
    );
    assert_eq!(
        message(from("web")),
        "Container 'web' has volumesFrom 'web', which is not another container in this task definition."
    );
    validate(&request(from("data"))).unwrap();
}

#[test]
fn log_drivers() {
    let logging = |driver: &str| {
        json!([{"name": "web", "image": "nginx", "memory": 64,
                "logConfiguration": {"logDriver": driver, "options": {}}}])
    };
    assert_eq!(
        message(ec2(logging("loki"))),
        "loki is not a valid log driver. Must be one of [awslogs, fluentd, gelf, json-file, journald, logentries, splunk, syslog, awsfirelens]"
    );
    for driver in [
        "fluentd",
        "gelf",
        "json-file",
        "journald",
        "logentries",
        "splunk",
        "syslog",
        "awsfirelens",
    ] {
        validate(&request(ec2(logging(driver)))).unwrap_or_else(|e| panic!("{driver}: {e}"));
    }
    assert_eq!(
        message(fargate(logging("gelf"))),
        "gelf is not a valid log driver. Must be one of [awslogs, splunk, awsfirelens]"
    );
    validate(&request(fargate(logging("splunk")))).unwrap();
}

#[test]
fn awslogs_options_and_fargate_execution_role() {
    let awslogs = |options: Value| {
        json!([{"name": "web", "image": "nginx", "memory": 64,
                "logConfiguration": {"logDriver": "awslogs", "options": options}}])
    };
    assert_eq!(
        message(ec2(awslogs(json!({})))),
        "Log driver awslogs requires options: awslogs-region, awslogs-group"
    );
    assert_eq!(
        message(ec2(awslogs(json!({"awslogs-region": "us-east-1"})))),
        "Log driver awslogs requires options: awslogs-group"
    );
    let complete = json!({"awslogs-region": "us-east-1", "awslogs-group": "/ecs/app"});
    validate(&request(ec2(awslogs(complete.clone())))).unwrap();
    assert_eq!(
        message(fargate(awslogs(complete.clone()))),
        "Fargate requires task definition to have execution role ARN to support log driver awslogs."
    );
    validate(&request(with(
        fargate(awslogs(complete)),
        "executionRoleArn",
        json!("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
    )))
    .unwrap();
}

#[test]
fn ephemeral_storage_bounds_and_fargate_only() {
    for size in [20, 201] {
        assert_eq!(
            message(with(
                fargate(json!([web()])),
                "ephemeralStorage",
                json!({"sizeInGiB": size})
            )),
            format!(
                "Invalid 'ephemeralStorage' setting for task. 'sizeInGiB' must be between 21 and 200, got {size}."
            )
        );
    }
    for size in [21, 200] {
        validate(&request(with(
            fargate(json!([web()])),
            "ephemeralStorage",
            json!({"sizeInGiB": size}),
        )))
        .unwrap();
    }
    assert_eq!(
        message(with(
            ec2(json!([web()])),
            "ephemeralStorage",
            json!({"sizeInGiB": 50})
        )),
        "Ephemeral storage is only supported for tasks using the Fargate launch type."
    );
    let both = with(
        with(
            fargate(json!([web()])),
            "requiresCompatibilities",
            json!(["EC2", "FARGATE"]),
        ),
        "ephemeralStorage",
        json!({"sizeInGiB": 50}),
    );
    assert_eq!(
        message(both),
        "Ephemeral storage is only supported for tasks using the Fargate launch type."
    );
}

#[test]
fn container_cpu_fits_task_cpu() {
    let v = with(
        ec2(json!([
            {"name": "a", "image": "x", "memory": 64, "cpu": 512},
            {"name": "b", "image": "x", "memory": 64, "cpu": 600}
        ])),
        "cpu",
        json!("1 vCPU"),
    );
    assert_eq!(
        message(v),
        "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."
    );
    let single = with(
        ec2(json!([{"name": "a", "image": "x", "memory": 64, "cpu": 2048}])),
        "cpu",
        json!("1024"),
    );
    assert_eq!(
        message(single),
        "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."
    );
    let fits = with(
        ec2(json!([{"name": "a", "image": "x", "memory": 64, "cpu": 1024}])),
        "cpu",
        json!("1024"),
    );
    validate(&request(fits)).unwrap();
}

#[test]
fn container_memory_fits_task_memory() {
    let over = with(
        ec2(json!([{"name": "big", "image": "x", "memory": 1024}])),
        "memory",
        json!("512"),
    );
    assert_eq!(
        message(over),
        "The 'memory' setting for container 'big' is greater than for the task."
    );

    let reservations = with(
        ec2(json!([
            {"name": "a", "image": "x", "memoryReservation": 300},
            {"name": "b", "image": "x", "memoryReservation": 300}
        ])),
        "memory",
        json!("512"),
    );
    assert_eq!(
        message(reservations),
        "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'."
    );
    let hard_limits = with(
        ec2(json!([
            {"name": "a", "image": "x", "memory": 300},
            {"name": "b", "image": "x", "memory": 300}
        ])),
        "memory",
        json!("0.5 GB"),
    );
    assert_eq!(
        message(hard_limits),
        "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'."
    );
    // Soft limits count, not the hard limits above them.
    let soft = with(
        ec2(json!([
            {"name": "a", "image": "x", "memory": 512, "memoryReservation": 256},
            {"name": "b", "image": "x", "memory": 512, "memoryReservation": 256}
        ])),
        "memory",
        json!("512"),
    );
    validate(&request(soft)).unwrap();
}

#[test]
fn has_cycle_handles_long_chains() {
    let chain: Vec<Vec<usize>> = (0..10_000)
        .map(|i| if i + 1 < 10_000 { vec![i + 1] } else { vec![] })
        .collect();
    assert!(!has_cycle(&chain));
    let mut looped = chain;
    looped[9_999].push(0);
    assert!(has_cycle(&looped));
}
