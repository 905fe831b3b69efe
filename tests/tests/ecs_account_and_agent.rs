//! ECS account settings and the agent's calls (DiscoverPollEndpoint, container and
//! attachment state changes) through the real `aws` CLI.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, unique};

#[test]
fn account_settings() {
    let s = BerthServer::start();
    let all = ok_json(&s.aws(&["ecs", "list-account-settings", "--effective-settings"]));
    let names: Vec<&str> = all["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"taskLongArnFormat"), "{all}");
    // Nothing set explicitly yet.
    let mine = ok_json(&s.aws(&["ecs", "list-account-settings"]));
    assert_eq!(mine["settings"].as_array().unwrap().len(), 0);
    let put = ok_json(&s.aws(&[
        "ecs",
        "put-account-setting",
        "--name",
        "containerInsights",
        "--value",
        "enabled",
    ]));
    assert_eq!(put["setting"]["value"], "enabled");
    ok_json(&s.aws(&[
        "ecs",
        "put-account-setting-default",
        "--name",
        "awsvpcTrunking",
        "--value",
        "enabled",
    ]));
    let one = ok_json(&s.aws(&[
        "ecs",
        "list-account-settings",
        "--name",
        "containerInsights",
    ]));
    assert_eq!(one["settings"][0]["value"], "enabled");
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "put-account-setting",
            "--name",
            "bogus",
            "--value",
            "enabled",
        ]),
        "InvalidParameterException",
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "put-account-setting",
            "--name",
            "fargateTaskRetirementWaitPeriod",
            "--value",
            "3",
        ]),
        "InvalidParameterException",
    );
}

#[test]
fn agent_calls() {
    let s = BerthServer::start();
    let cluster = unique("agent-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let poll = ok_json(&s.aws(&["ecs", "discover-poll-endpoint", "--cluster", &cluster]));
    assert_eq!(poll["endpoint"], s.endpoint());
    assert_eq!(poll["telemetryEndpoint"], format!("{}/tcs", s.endpoint()));

    let resources = r#"[{"name":"CPU","type":"INTEGER","integerValue":1024},
        {"name":"MEMORY","type":"INTEGER","integerValue":1024}]"#;
    ok_json(&s.aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        &cluster,
        "--total-resources",
        resources,
    ]));
    let family = unique("one-");
    let td = format!(
        r#"{{"family":"{family}","containerDefinitions":[{{"name":"main","image":"x","memory":64}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
    ]));
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let ack = ok_json(&s.aws(&[
        "ecs",
        "submit-container-state-change",
        "--cluster",
        &cluster,
        "--task",
        &task,
        "--container-name",
        "main",
        "--status",
        "STOPPED",
        "--exit-code",
        "3",
        "--reason",
        "exited",
    ]));
    assert_eq!(ack["acknowledgment"], "ACK");
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &cluster,
        "--tasks",
        &task,
    ]));
    assert_eq!(d["tasks"][0]["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(d["tasks"][0]["containers"][0]["exitCode"], 3);
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "submit-container-state-change",
            "--cluster",
            &cluster,
            "--task",
            &task,
            "--container-name",
            "nope",
            "--status",
            "RUNNING",
        ]),
        "InvalidParameterException",
    );
    let ack = ok_json(&s.aws(&[
        "ecs",
        "submit-attachment-state-changes",
        "--cluster",
        &cluster,
        "--attachments",
        "attachmentArn=arn:aws:ecs:us-east-1:000000000000:attachment/x,status=ATTACHED",
    ]));
    assert_eq!(ack["acknowledgment"], "ACK");
}
