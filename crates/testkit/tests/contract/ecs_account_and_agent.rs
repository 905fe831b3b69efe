//! ECS account settings and the agent's calls (DiscoverPollEndpoint, container and
//! attachment state changes), in-process through the HTTP stack.

use berth_testkit::ecs::{self, list_all, register_task_definition, run_task, single_container};
use berth_testkit::{TestServer, unique};
use serde_json::{Value, json};

#[test]
fn account_settings() {
    let s = TestServer::start();
    let settings = |request: Value| list_all(&s, "ListAccountSettings", request, "settings");
    let all = settings(json!({"effectiveSettings": true}));
    let names: Vec<&str> = all.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"taskLongArnFormat"), "{all:?}");
    // Nothing set explicitly yet.
    assert_eq!(settings(json!({})).len(), 0);
    let put = s
        .ecs(
            "PutAccountSetting",
            json!({"name": "containerInsights", "value": "enabled"}),
        )
        .ok();
    assert_eq!(put["setting"]["value"], "enabled");
    s.ecs(
        "PutAccountSettingDefault",
        json!({"name": "awsvpcTrunking", "value": "enabled"}),
    )
    .ok();
    let one = settings(json!({"name": "containerInsights"}));
    assert_eq!(one[0]["value"], "enabled");
    s.ecs(
        "PutAccountSetting",
        json!({"name": "bogus", "value": "enabled"}),
    )
    .expect_error("InvalidParameterException");
    s.ecs(
        "PutAccountSetting",
        json!({"name": "fargateTaskRetirementWaitPeriod", "value": "3"}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn agent_calls() {
    let s = TestServer::start();
    let cluster = unique("agent-");
    ecs::create_cluster(&s, &cluster);
    let poll = s
        .ecs("DiscoverPollEndpoint", json!({"cluster": cluster}))
        .ok();
    assert_eq!(poll["endpoint"], s.endpoint());
    assert_eq!(poll["telemetryEndpoint"], format!("{}/tcs", s.endpoint()));

    ecs::instance(1024, 1024).register(&s, &cluster);
    let family = unique("one-");
    register_task_definition(&s, single_container(&family, "main", "x", 64));
    let run = run_task(&s, &cluster, &family, Value::Null);
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let ack = s
        .ecs(
            "SubmitContainerStateChange",
            json!({"cluster": cluster, "task": task, "containerName": "main",
                   "status": "STOPPED", "exitCode": 3, "reason": "exited"}),
        )
        .ok();
    assert_eq!(ack["acknowledgment"], "ACK");
    let d = ecs::describe_task(&s, &cluster, &task);
    assert_eq!(d["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(d["containers"][0]["exitCode"], 3);
    s.ecs(
        "SubmitContainerStateChange",
        json!({"cluster": cluster, "task": task, "containerName": "nope", "status": "RUNNING"}),
    )
    .expect_error("InvalidParameterException");
    let ack = s
        .ecs(
            "SubmitAttachmentStateChanges",
            json!({"cluster": cluster, "attachments": [
                {"attachmentArn": "arn:aws:ecs:us-east-1:000000000000:attachment/x",
                 "status": "ATTACHED"}]}),
        )
        .ok();
    assert_eq!(ack["acknowledgment"], "ACK");
}
