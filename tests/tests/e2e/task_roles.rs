//! Task roles on `berth agent` and the real Docker Engine: a task with `taskRoleArn` finds
//! its role's temporary credentials where the AWS SDKs look (`http://169.254.170.2` +
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) in bridge and awsvpc network modes, and its task
//! metadata at `ECS_CONTAINER_METADATA_URI_V4` under the same address; the credentials act
//! as the role (what it allows works, the rest is AccessDeniedException); another task
//! cannot read them; they are renewed before they expire; RunTask refuses a role ECS cannot
//! assume, with ECS's message.

use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, docker_inspect, wait_connected, wait_for, wait_status,
};
use berth_e2e::{BerthServer, ServerOptions, assert_aws_error, ok_json, stdout_of, unique};
use serde_json::{Value, json};

pub(crate) const TRUST_ECS_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A role ECS tasks may assume, allowed `ecs:ListClusters` only; its ARN.
pub(crate) fn task_role(s: &BerthServer, name: &str, trust: &str) -> String {
    let role = ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        trust,
    ]));
    ok_json(&s.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        name,
        "--policy-name",
        "list-clusters",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#,
    ]));
    role["Role"]["Arn"].as_str().unwrap().to_owned()
}

/// A container that prints its credentials (fetched from 169.254.170.2 as the SDKs do) and
/// its metadata URI every second.
fn credentials_printer(image: &str) -> Value {
    json!({
        "name": "app",
        "image": image,
        "memory": 32,
        "essential": true,
        "stopTimeout": 1,
        "entryPoint": ["sh", "-c"],
        "command": ["echo META=$ECS_CONTAINER_METADATA_URI_V4; wget -qO- $ECS_CONTAINER_METADATA_URI_V4 | head -c 200; echo; while true; do echo CREDS=$(wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI); sleep 1; done"],
    })
}

pub(crate) fn docker_logs(id: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", id])
        .output()
        .expect("docker logs");
    format!(
        "{}{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The credentials documents a task's container printed, in order.
fn printed_credentials(s: &BerthServer, task: &str) -> Vec<Value> {
    let Some(id) = containers_of(s, task).into_iter().next() else {
        return Vec::new();
    };
    docker_logs(&id)
        .lines()
        .filter_map(|l| l.strip_prefix("CREDS="))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[track_caller]
fn first_credentials(s: &BerthServer, task: &str) -> Value {
    wait_for(
        "the container to print its credentials",
        Duration::from_secs(60),
        || printed_credentials(s, task).into_iter().next(),
    )
}

/// `aws ARGS` signed with the credentials document `c`.
fn aws_as(s: &BerthServer, c: &Value, args: &[&str]) -> Output {
    s.aws_command(
        "us-east-1",
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        args,
    )
    .env("AWS_SESSION_TOKEN", c["Token"].as_str().unwrap())
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap()
}

pub(crate) fn register(
    s: &BerthServer,
    family: &str,
    role: &str,
    mode: &str,
    containers: Value,
) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--task-role-arn",
        role,
        "--network-mode",
        mode,
        "--container-definitions",
        &containers.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn run(s: &BerthServer, cluster: &str, td: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        td,
    ];
    args.extend_from_slice(extra);
    let v = ok_json(&s.aws(&args));
    v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
}

#[test]
fn a_task_role_reaches_its_containers_at_169_254_170_2() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "role-");
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);
    s.track_image(&image);
    let role = task_role(&s, &unique("app-"), TRUST_ECS_TASKS);

    // Bridge mode.
    let td = register(
        &s,
        &unique("creds-"),
        &role,
        "bridge",
        json!([credentials_printer(&image)]),
    );
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    let creds = first_credentials(&s, &task);
    assert_eq!(creds["RoleArn"], role, "{creds:#}");
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(
        creds["Expiration"].as_str().unwrap().ends_with('Z'),
        "{creds:#}"
    );
    // They act as the role: allowed, and refused with AWS's answer.
    ok_json(&aws_as(&s, &creds, &["ecs", "list-clusters"]));
    let refused = aws_as(
        &s,
        &creds,
        &["ecs", "create-cluster", "--cluster-name", &unique("no-")],
    );
    assert_aws_error(&refused, "AccessDeniedException");
    let who = ok_json(&aws_as(&s, &creds, &["sts", "get-caller-identity"]));
    let task_id = task.rsplit('/').next().unwrap();
    assert!(
        who["Arn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{task_id}")),
        "the session is named after the task: {who:#}"
    );

    // The task metadata endpoint is under the same address.
    let container = containers_of(&s, &task).into_iter().next().unwrap();
    let logs = docker_logs(&container);
    assert!(
        logs.contains("META=http://169.254.170.2/v4/"),
        "metadata URI: {logs}"
    );
    assert!(logs.contains("DockerId"), "metadata answer: {logs}");

    // Another task cannot read them, even knowing their path.
    let env = docker_inspect(&s, &container)["Config"]["Env"].clone();
    let path = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|v| v.strip_prefix("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="))
        .expect("the relative URI in the container's environment")
        .to_owned();
    let thief = register(
        &s,
        &unique("thief-"),
        &role,
        "bridge",
        json!([{
            "name": "thief",
            "image": image,
            "memory": 32,
            "essential": true,
            "stopTimeout": 1,
            "entryPoint": ["sh", "-c"],
            "command": [format!("while true; do echo STOLEN=$(wget -qO- http://169.254.170.2{path} || echo refused); sleep 1; done")],
        }]),
    );
    let thief_task = run(&s, &cluster, &thief, &[]);
    wait_status(&s, &cluster, &thief_task, "RUNNING");
    let thief_container = containers_of(&s, &thief_task).into_iter().next().unwrap();
    let stolen = wait_for("the thief's attempt", Duration::from_secs(30), || {
        let logs = docker_logs(&thief_container);
        logs.lines()
            .find_map(|l| l.strip_prefix("STOLEN="))
            .map(str::to_owned)
    });
    assert_eq!(stolen, "refused", "another task read the credentials");

    // awsvpc: the task's own namespace reaches the address too; an override's role wins.
    let other_role = task_role(&s, &unique("other-"), TRUST_ECS_TASKS);
    let subnet = "subnet-default";
    let vpc_td = register(
        &s,
        &unique("vpc-"),
        &role,
        "awsvpc",
        json!([credentials_printer(&image)]),
    );
    let network = format!("awsvpcConfiguration={{subnets=[{subnet}]}}");
    let overrides = json!({"taskRoleArn": other_role}).to_string();
    let vpc_task = run(
        &s,
        &cluster,
        &vpc_td,
        &[
            "--network-configuration",
            &network,
            "--overrides",
            &overrides,
        ],
    );
    wait_status(&s, &cluster, &vpc_task, "RUNNING");
    let vpc_creds = first_credentials(&s, &vpc_task);
    assert_eq!(vpc_creds["RoleArn"], other_role, "{vpc_creds:#}");
    ok_json(&aws_as(&s, &vpc_creds, &["ecs", "list-clusters"]));

    // A role ECS may not assume is refused at RunTask, with ECS's message.
    let ec2_only = task_role(
        &s,
        &unique("ec2-"),
        &TRUST_ECS_TASKS.replace("ecs-tasks", "ec2"),
    );
    let out = s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &td,
        "--overrides",
        &json!({"taskRoleArn": ec2_only}).to_string(),
    ]);
    assert_aws_error(&out, "ClientException");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "ECS was unable to assume the role '{ec2_only}' that was provided for this task."
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn task_credentials_are_renewed_before_they_expire() {
    let s = BerthServer::start_with(ServerOptions {
        args: vec!["--task-credentials-seconds".into(), "12".into()],
        ..ServerOptions::default()
    });
    let (cluster, image) = cluster_with_image(&s, "renew-");
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);
    s.track_image(&image);
    let role = task_role(&s, &unique("renew-"), TRUST_ECS_TASKS);
    let td = register(
        &s,
        &unique("renew-"),
        &role,
        "bridge",
        json!([credentials_printer(&image)]),
    );
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    let first = first_credentials(&s, &task);
    // Past the first credentials' expiry, the container holds newer ones that work.
    let renewed = wait_for(
        "credentials newer than the first ones",
        Duration::from_secs(60),
        || {
            printed_credentials(&s, &task)
                .into_iter()
                .rev()
                .find(|c| c["AccessKeyId"] != first["AccessKeyId"])
        },
    );
    assert_eq!(renewed["RoleArn"], role);
    std::thread::sleep(Duration::from_secs(13));
    assert_aws_error(
        &aws_as(&s, &first, &["ecs", "list-clusters"]),
        "ExpiredTokenException",
    );
    // What the container holds now works. (Asked again with the newest ones if a loaded
    // host made the CLI start so late that the ones just read expired meanwhile.)
    wait_for(
        "the container's newest credentials to work",
        Duration::from_secs(60),
        || {
            let latest = printed_credentials(&s, &task).pop().unwrap();
            aws_as(&s, &latest, &["ecs", "list-clusters"])
                .status
                .success()
                .then_some(())
        },
    );
}

/// A role ECS tasks may assume with the given managed/inline permissions; its ARN.
fn execution_role(s: &BerthServer, name: &str, policy: Option<&str>) -> String {
    let role = ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        TRUST_ECS_TASKS,
    ]));
    if let Some(policy) = policy {
        ok_json(&s.aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            name,
            "--policy-name",
            "p",
            "--policy-document",
            policy,
        ]));
    }
    role["Role"]["Arn"].as_str().unwrap().to_owned()
}

fn register_with_execution_role(s: &BerthServer, role: &str, image: &str) -> String {
    register_with_execution_role_logging(s, role, image, None)
}

/// A task definition with an execution role whose container says a marker and sleeps,
/// logging with awslogs to `group` when given.
fn register_with_execution_role_logging(
    s: &BerthServer,
    role: &str,
    image: &str,
    group: Option<&str>,
) -> String {
    let mut container = json!({
        "name": "app", "image": image, "memory": 32, "essential": true, "stopTimeout": 1,
        "entryPoint": ["sh", "-c"], "command": ["echo exec-role-logs; sleep 600"],
    });
    if let Some(group) = group {
        container["logConfiguration"] = json!({
            "logDriver": "awslogs",
            "options": {"awslogs-group": group, "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "app"},
        });
    }
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        &unique("exec-"),
        "--execution-role-arn",
        role,
        "--container-definitions",
        &json!([container]).to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_execution_role_pulls_the_image_or_the_task_stops_with_ecs_reason() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "exec-");
    s.track_image(&image);
    // Always pull: the image the test pushed is also in the host's Docker.
    let _agent = Agent::start(
        &s,
        &cluster,
        &[
            "--cleanup-delay-seconds",
            "600",
            "--image-pull-behavior",
            "always",
        ],
    );
    wait_connected(&s, &cluster);

    // The AWS managed policy for execution roles: the pull works.
    let allowed = execution_role(&s, &unique("exec-ok-"), None);
    let name = allowed.rsplit('/').next().unwrap();
    ok_json(&s.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        name,
        "--policy-arn",
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    ]));
    // Its awslogs output is shipped with the execution role too (the managed policy
    // allows CreateLogStream and PutLogEvents; the group exists).
    let group = unique("/exec/");
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", &group]));
    let td = register_with_execution_role_logging(&s, &allowed, &image, Some(&group));
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    let stream = format!("app/app/{}", task.rsplit('/').next().unwrap());
    wait_for("the container's log line", Duration::from_secs(30), || {
        let out = s.aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            &group,
            "--log-stream-name",
            &stream,
        ]);
        stdout_of(&out).contains("exec-role-logs").then_some(())
    });
    // An execution role that may pull but not log: the stream cannot be made, and the
    // refusal names the action (the agent's own credentials were not used).
    let pull_only = execution_role(
        &s,
        &unique("exec-pull-"),
        Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],"Resource":"*"}]}"#,
        ),
    );
    let td = register_with_execution_role_logging(&s, &pull_only, &image, Some(&group));
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("log stream") && reason.contains("logs:CreateLogStream"),
        "{stopped:#}"
    );

    // No permission at all: no registry token, ECS's ResourceInitializationError.
    let bare = execution_role(&s, &unique("exec-bare-"), None);
    let td = register_with_execution_role(&s, &bare, &image);
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth")
            && reason.contains("ecr:GetAuthorizationToken"),
        "{stopped:#}"
    );

    // A token but no pull permission: the registry refuses the pull.
    let token_only = execution_role(
        &s,
        &unique("exec-token-"),
        Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}"#,
        ),
    );
    let td = register_with_execution_role(&s, &token_only, &image);
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("CannotPullContainerError") && reason.contains("not authorized"),
        "{stopped:#}"
    );
}

/// Host network mode (the `OUTPUT` NAT rule) and Fargate (a pool host's awsvpc namespace)
/// reach their credentials at 169.254.170.2 too.
#[test]
fn host_mode_and_fargate_tasks_reach_their_credentials() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "role-host-");
    s.track_image(&image);
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    let _pool = Agent::start_fargate(&s, &[]);
    wait_connected(&s, &cluster);
    let role = task_role(&s, &unique("host-"), TRUST_ECS_TASKS);

    let td = register(
        &s,
        &unique("host-"),
        &role,
        "host",
        json!([credentials_printer(&image)]),
    );
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    let creds = first_credentials(&s, &task);
    assert_eq!(creds["RoleArn"], role, "{creds:#}");
    ok_json(&aws_as(&s, &creds, &["ecs", "list-clusters"]));

    // Fargate: RunTask with the FARGATE launch type in the user's cluster.
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        &unique("fg-"),
        "--task-role-arn",
        &role,
        "--requires-compatibilities",
        "FARGATE",
        "--network-mode",
        "awsvpc",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        &json!([credentials_printer(&image)]).to_string(),
    ]));
    let fargate_td = v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let subnet = "subnet-default";
    let task = run(
        &s,
        &cluster,
        &fargate_td,
        &[
            "--launch-type",
            "FARGATE",
            "--network-configuration",
            &format!("awsvpcConfiguration={{subnets=[{subnet}]}}"),
        ],
    );
    wait_status(&s, &cluster, &task, "RUNNING");
    let creds = first_credentials(&s, &task);
    assert_eq!(creds["RoleArn"], role, "{creds:#}");
    ok_json(&aws_as(&s, &creds, &["ecs", "list-clusters"]));
}
