//! The agent acts with its own identity, and every call it makes is authorized: an IAM
//! user's keys holding only what ECS's container instance role grants (the actions of the
//! `AmazonEC2ContainerServiceforEC2Role` document in the ECS developer guide) register the
//! instance, run a task whose image the agent pulls from ECR and ship its `awslogs` output;
//! keys without `ecs:RegisterContainerInstance` are refused and no instance joins.

use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, register, run_task, wait_for, wait_instances, wait_status,
};
use berth_e2e::{BerthServer, REGION, ok_json, unique};
use serde_json::{Value, json};

/// The instance role's permissions, as the ECS developer guide shows
/// `AmazonEC2ContainerServiceforEC2Role`.
const INSTANCE_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:CreateCluster","ecs:DeregisterContainerInstance","ecs:DiscoverPollEndpoint","ecs:Poll","ecs:RegisterContainerInstance","ecs:StartTelemetrySession","ecs:Submit*","ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#;

/// A user named `name` (with `policy` inline, if any) and a new access key of it.
fn user_with_key(s: &BerthServer, name: &str, policy: Option<&str>) -> (String, String) {
    ok_json(&s.aws(&["iam", "create-user", "--user-name", name]));
    if let Some(policy) = policy {
        let put = s.aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            name,
            "--policy-name",
            "instance-role",
            "--policy-document",
            policy,
        ]);
        berth_e2e::assert_ok(&put, "aws iam put-user-policy");
    }
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", name]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

#[test]
fn an_agent_with_the_instance_role_permissions_runs_tasks_and_one_without_is_refused() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "agent-identity-");
    let user = unique("instance-");
    let (key_id, secret) = user_with_key(&s, &user, Some(INSTANCE_ROLE_POLICY));
    let agent = Agent::start_with_env(
        &s,
        &cluster,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    wait_instances(&s, &cluster, 1);

    let group = unique("/agent-identity/");
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", &group]));
    let marker = unique("shipped-with-the-instance-keys-");
    let definition = register(
        &s,
        &unique("agent-identity-"),
        json!([{
            "name": "app", "image": image, "memory": 64, "essential": true,
            "entryPoint": ["sh", "-c"], "command": [format!("echo {marker}; sleep 30")],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": REGION, "awslogs-stream-prefix": "app"}}
        }]),
    );
    let task = run_task(&s, &cluster, &definition);
    wait_status(&s, &cluster, &task, "RUNNING");
    let stream = format!("app/app/{}", task.rsplit('/').next().unwrap());
    wait_for(
        "the container's line in CloudWatch Logs",
        Duration::from_secs(60),
        || {
            let out = s.aws(&[
                "logs",
                "get-log-events",
                "--log-group-name",
                &group,
                "--log-stream-name",
                &stream,
                "--start-from-head",
            ]);
            let events: Value = serde_json::from_slice(&out.stdout).ok()?;
            events["events"]
                .as_array()?
                .iter()
                .any(|e| e["message"] == marker.as_str())
                .then_some(())
        },
    );
    // The key was what the agent used (the root credentials were not).
    let used = ok_json(&s.aws(&[
        "iam",
        "get-access-key-last-used",
        "--access-key-id",
        &key_id,
    ]));
    assert_eq!(used["UserName"], user.as_str(), "{used:#}");
    assert!(
        used["AccessKeyLastUsed"]["ServiceName"].is_string(),
        "{used:#}"
    );

    // Nothing the agent did needed more than the instance role grants.
    let log = agent.log();
    assert!(
        !log.contains("is not authorized"),
        "the agent was refused something:\n{log}"
    );

    // Keys without the instance role's permissions: refused, and nothing joins.
    let refused_cluster = unique("agent-identity-refused-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &refused_cluster]));
    let (bare_id, bare_secret) = user_with_key(&s, &unique("no-rights-"), None);
    let bare = Agent::start_with_env(
        &s,
        &refused_cluster,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", &bare_id),
            ("AWS_SECRET_ACCESS_KEY", &bare_secret),
        ],
    );
    wait_for(
        "the agent to say it was refused",
        Duration::from_secs(60),
        || {
            let log = bare.log();
            (log.contains("AccessDenied") && log.contains("ecs:RegisterContainerInstance"))
                .then_some(())
        },
    );
    let instances = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &refused_cluster,
    ]));
    assert_eq!(
        instances["containerInstanceArns"],
        json!([]),
        "{instances:#}"
    );
}
