//! `secrets` in container definitions on `berth agent` and the real Docker Engine: the agent
//! reads them with the task's execution role — SSM parameters (a SecureString decrypted, a
//! String by ARN) and Secrets Manager secrets (whole, or one JSON key) — and the container
//! finds them in its environment; a new value reaches the next task; an execution role
//! without the permission stops the task with ECS's reason; the values appear in no output
//! of Berth's (DescribeTasks, the container's labels, the agent's state file, any log).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, docker_inspect, wait_connected, wait_for, wait_status,
};
use berth_e2e::{BerthServer, ok_json, stdout_of, unique};
use serde_json::{Value, json};

use crate::task_roles::{TRUST_ECS_TASKS, run};

const EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

/// An execution role with the AWS managed execution policy and `extra` inline statements.
fn execution_role(s: &BerthServer, extra: Option<&str>) -> String {
    let name = unique("exec-");
    let role = ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        &name,
        "--assume-role-policy-document",
        TRUST_ECS_TASKS,
    ]));
    ok_json(&s.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        &name,
        "--policy-arn",
        EXECUTION_POLICY,
    ]));
    if let Some(statements) = extra {
        ok_json(&s.aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            &name,
            "--policy-name",
            "secrets",
            "--policy-document",
            &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        ]));
    }
    role["Role"]["Arn"].as_str().unwrap().to_owned()
}

/// A task definition whose container prints the named variables and sleeps.
fn register(s: &BerthServer, role: &str, image: &str, secrets: Value) -> String {
    let names: Vec<String> = secrets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{0}=${0}", s["name"].as_str().unwrap()))
        .collect();
    let v = ok_json(
        &s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            &unique("secrets-"),
            "--execution-role-arn",
            role,
            "--container-definitions",
            &json!([{
                "name": "app", "image": image, "memory": 32, "essential": true, "stopTimeout": 1,
                "entryPoint": ["sh", "-c"],
                "command": [format!("echo GOT {}; sleep 600", names.join(" "))],
                "secrets": secrets,
            }])
            .to_string(),
        ]),
    );
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The line the task's container printed.
#[track_caller]
fn printed(s: &BerthServer, task: &str) -> String {
    let id = containers_of(s, task)
        .into_iter()
        .next()
        .expect("a container");
    wait_for("the container's line", Duration::from_secs(30), || {
        let out = Command::new("docker").args(["logs", &id]).output().ok()?;
        stdout_of(&out)
            .lines()
            .find(|l| l.starts_with("GOT "))
            .map(str::to_owned)
    })
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                stack.push(entry.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// The value shows nowhere Berth writes or answers.
#[track_caller]
fn nowhere_in_berth(s: &BerthServer, agent: &Agent, cluster: &str, task: &str, value: &str) {
    let described = s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        cluster,
        "--tasks",
        task,
    ]);
    assert!(
        !stdout_of(&described).contains(value),
        "DescribeTasks shows it"
    );
    let id = containers_of(s, task).into_iter().next().unwrap();
    let labels = docker_inspect(s, &id)["Config"]["Labels"].to_string();
    assert!(!labels.contains(value), "a label holds it: {labels}");
    assert_eq!(
        files_holding(agent.dir(), value),
        Vec::<String>::new(),
        "agent files"
    );
    assert_eq!(
        files_holding(s.root_dir(), value),
        Vec::<String>::new(),
        "server files"
    );
}

#[test]
fn ssm_parameters_reach_the_container_and_nothing_else() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "ssm-sec-");
    s.track_image(&image);
    let agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);

    let secret_value = unique("ssm-secret-value-");
    let path = format!("/{}/db/password", unique("app"));
    ok_json(&s.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        &path,
        "--type",
        "SecureString",
        "--value",
        &secret_value,
    ]));
    let plain = format!("/{}/plain", unique("app"));
    ok_json(&s.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        &plain,
        "--type",
        "String",
        "--value",
        "v1",
    ]));
    let plain_arn = format!("arn:aws:ssm:us-east-1:000000000000:parameter{plain}");
    let allowed = execution_role(
        &s,
        Some(r#"{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}"#),
    );
    let secrets = json!([
        {"name": "DB_PASSWORD", "valueFrom": path},
        {"name": "PLAIN", "valueFrom": plain_arn},
    ]);
    let td = register(&s, &allowed, &image, secrets.clone());
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    assert_eq!(
        printed(&s, &task),
        format!("GOT DB_PASSWORD={secret_value} PLAIN=v1")
    );
    nowhere_in_berth(&s, &agent, &cluster, &task, &secret_value);

    // A new value reaches the next task.
    ok_json(&s.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        &plain,
        "--type",
        "String",
        "--value",
        "v2",
        "--overwrite",
    ]));
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    assert!(printed(&s, &task).ends_with("PLAIN=v2"));

    // Without ssm:GetParameters the task stops with ECS's reason.
    let denied = execution_role(&s, None);
    let td = register(&s, &denied, &image, secrets);
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm"
        ) && reason.contains("ssm:GetParameters"),
        "{stopped:#}"
    );
    // A parameter that does not exist: the same, naming it.
    let td = register(
        &s,
        &allowed,
        &image,
        json!([{"name": "MISSING", "valueFrom": "/no/such/parameter"}]),
    );
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("invalid parameters: /no/such/parameter"),
        "{stopped:#}"
    );
}

#[test]
fn secrets_manager_secrets_and_registry_logins_reach_the_task() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "asm-sec-");
    s.track_image(&image);
    // Always pull: the image the test pushed is also in the host's Docker.
    let agent = Agent::start(
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

    let password = unique("asm-password-");
    let created = ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &unique("db-"),
        "--secret-string",
        &json!({"username": "app", "password": password}).to_string(),
    ]));
    let arn = created["ARN"].as_str().unwrap().to_owned();
    let whole = unique("whole-secret-");
    let whole_arn = ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &unique("token-"),
        "--secret-string",
        &whole,
    ]))["ARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let allowed = execution_role(
        &s,
        Some(r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#),
    );
    let secrets = json!([
        {"name": "DB_PASSWORD", "valueFrom": format!("{arn}:password::")},
        {"name": "TOKEN", "valueFrom": whole_arn},
    ]);
    let td = register(&s, &allowed, &image, secrets.clone());
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    assert_eq!(
        printed(&s, &task),
        format!("GOT DB_PASSWORD={password} TOKEN={whole}")
    );
    nowhere_in_berth(&s, &agent, &cluster, &task, &password);
    nowhere_in_berth(&s, &agent, &cluster, &task, &whole);

    // A new version reaches the next task.
    let newer = unique("whole-secret-v2-");
    ok_json(&s.aws(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        &whole_arn,
        "--secret-string",
        &newer,
    ]));
    let task = run(&s, &cluster, &td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    assert!(printed(&s, &task).ends_with(&format!("TOKEN={newer}")));

    // Without secretsmanager:GetSecretValue: ECS's reason, naming the secret.
    let denied = execution_role(&s, None);
    let td = register(&s, &denied, &image, secrets);
    let task = run(&s, &cluster, &td, &[]);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm")
            && reason.contains(&arn),
        "{stopped:#}"
    );

    // `repositoryCredentials`: the registry login comes from a secret (here Berth's own
    // registry, with an ECR token as the password).
    let token = stdout_of(&s.aws(&["ecr", "get-login-password"]))
        .trim()
        .to_owned();
    let login_arn = ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &unique("registry-"),
        "--secret-string",
        &json!({"username": "AWS", "password": token}).to_string(),
    ]))["ARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = ok_json(
        &s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            &unique("private-"),
            "--execution-role-arn",
            &allowed,
            "--container-definitions",
            &json!([{
                "name": "app", "image": image, "memory": 32, "essential": true, "stopTimeout": 1,
                "entryPoint": ["sh", "-c"], "command": ["echo GOT private; sleep 600"],
                "repositoryCredentials": {"credentialsParameter": login_arn},
            }])
            .to_string(),
        ]),
    );
    let td = v["taskDefinition"]["taskDefinitionArn"].as_str().unwrap();
    let task = run(&s, &cluster, td, &[]);
    wait_status(&s, &cluster, &task, "RUNNING");
    assert_eq!(printed(&s, &task), "GOT private");
}
