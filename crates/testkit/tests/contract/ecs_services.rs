//! ECS services as resources, in-process through the HTTP stack: create with ECS's
//! defaults and validation, idempotency, update (new deployment), describe/list, delete.
//! (Keeping the desired count running is the service scheduler's job: see
//! tests/tests/e2e/ecs_service_scheduler.rs.)

use berth_testkit::ecs::{self, list_all, register_task_definition, single_container};
use berth_testkit::{ACCOUNT_ID, REGION, TestServer, unique};
use serde_json::{Value, json};

fn list_services(s: &TestServer, cluster: &str) -> Vec<Value> {
    list_all(
        s,
        "ListServices",
        json!({"cluster": cluster}),
        "serviceArns",
    )
}

#[test]
fn create_update_describe_list_delete() {
    let s = TestServer::start();
    let cluster = unique("svc-");
    ecs::create_cluster(&s, &cluster);
    let family = unique("api-");
    let td = single_container(&family, "api", "api:1", 64);
    register_task_definition(&s, td.clone());
    register_task_definition(&s, td);

    let created = s
        .ecs(
            "CreateService",
            json!({"cluster": cluster, "serviceName": "api",
                   "taskDefinition": format!("{family}:1"), "desiredCount": 3,
                   "tags": [{"key": "tier", "value": "backend"}]}),
        )
        .ok();
    let svc = &created["service"];
    assert_eq!(
        svc["serviceArn"],
        format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/{cluster}/api")
    );
    assert_eq!(svc["status"], "ACTIVE");
    assert_eq!(svc["desiredCount"], 3);
    assert_eq!(svc["runningCount"], 0);
    assert_eq!(svc["schedulingStrategy"], "REPLICA");
    assert_eq!(svc["launchType"], "EC2");
    assert_eq!(svc["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(svc["deploymentConfiguration"]["minimumHealthyPercent"], 100);
    assert_eq!(svc["deployments"][0]["status"], "PRIMARY");
    assert_eq!(svc["deployments"][0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(
        svc["placementStrategy"][0]["field"],
        "attribute:ecs.availability-zone"
    );
    assert_eq!(svc["deploymentController"]["type"], "ECS");
    assert_eq!(ecs::cluster_count(&s, &cluster, "activeServicesCount"), 1);

    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "api", "taskDefinition": family}),
    )
    .expect_error("InvalidParameterException");

    // A new revision starts a new PRIMARY deployment; the old one becomes ACTIVE.
    let updated = s
        .ecs(
            "UpdateService",
            json!({"cluster": cluster, "service": "api",
                   "taskDefinition": format!("{family}:2"), "desiredCount": 5}),
        )
        .ok();
    let deployments = updated["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert!(
        deployments[0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(":2")
    );
    assert_eq!(deployments[1]["status"], "ACTIVE");
    assert_eq!(updated["service"]["desiredCount"], 5);

    let d = s
        .ecs(
            "DescribeServices",
            json!({"cluster": cluster, "services": ["api", "ghost"], "include": ["TAGS"]}),
        )
        .ok();
    assert_eq!(d["services"][0]["tags"][0]["value"], "backend");
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(list_services(&s, &cluster).len(), 1);

    // Tags on services and task definitions, through the generic tagging calls.
    let service_arn = svc["serviceArn"].as_str().unwrap().to_string();
    let td_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:1");
    for arn in [&service_arn, &td_arn] {
        s.ecs(
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "owner", "value": "ops"}]}),
        )
        .ok();
        let t = s
            .ecs("ListTagsForResource", json!({"resourceArn": arn}))
            .ok();
        assert!(
            t["tags"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "owner", "value": "ops"})),
            "{arn}: {t}"
        );
        s.ecs(
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": ["owner"]}),
        )
        .ok();
    }
    s.ecs(
        "ListTagsForResource",
        json!({"resourceArn":
               format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:99")}),
    )
    .expect_error("ResourceNotFoundException");

    s.ecs(
        "DeleteService",
        json!({"cluster": cluster, "service": "api"}),
    )
    .expect_error("InvalidParameterException");
    let del = s
        .ecs(
            "DeleteService",
            json!({"cluster": cluster, "service": "api", "force": true}),
        )
        .ok();
    assert_eq!(del["service"]["status"], "DRAINING");
    // With no tasks left it is INACTIVE, unlisted, and the name is free again.
    let d = s
        .ecs(
            "DescribeServices",
            json!({"cluster": cluster, "services": ["api"]}),
        )
        .ok();
    assert_eq!(d["services"][0]["status"], "INACTIVE");
    assert_eq!(list_services(&s, &cluster).len(), 0);
    s.ecs(
        "UpdateService",
        json!({"cluster": cluster, "service": "api", "desiredCount": 1}),
    )
    .expect_error("ServiceNotActiveException");
    s.ecs(
        "UpdateService",
        json!({"cluster": cluster, "service": "nope", "desiredCount": 1}),
    )
    .expect_error("ServiceNotFoundException");
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "api", "taskDefinition": family}),
    )
    .ok();
}

#[test]
fn validation() {
    let s = TestServer::start();
    let cluster = unique("svc-");
    ecs::create_cluster(&s, &cluster);
    let family = unique("fg-");
    register_task_definition(
        &s,
        json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "a", "image": "a:1"}]}),
    );
    // CreateService of `x` from the Fargate definition, with `extra` fields on top.
    let create = |extra: Value| {
        s.ecs(
            "CreateService",
            ecs::with(
                json!({"cluster": cluster, "serviceName": "x", "taskDefinition": family}),
                extra,
            ),
        )
    };
    let subnet_default = json!({"awsvpcConfiguration": {"subnets": ["subnet-default"]}});
    // awsvpc needs a network configuration.
    create(json!({"launchType": "FARGATE"})).expect_error("InvalidParameterException");
    // DAEMON takes no desired count.
    create(json!({"schedulingStrategy": "DAEMON", "desiredCount": 2}))
        .expect_error("InvalidParameterException");
    create(
        json!({"placementStrategy": [{"type": "binpack", "field": "disk"}],
                  "launchType": "FARGATE", "networkConfiguration": subnet_default}),
    )
    .expect_error("InvalidParameterException");
    create(json!({"cluster": "ghost"})).expect_error("ClusterNotFoundException");
    // The network configuration gets RunTask's checks and messages.
    let malformed = create(json!({"launchType": "FARGATE", "networkConfiguration":
                                  {"awsvpcConfiguration": {"subnets": ["subnet_Bad"]}}}));
    malformed.expect_error("InvalidParameterException");
    assert!(
        malformed
            .message()
            .contains("The subnet ID 'subnet_Bad' is malformed"),
        "{}",
        malformed.body
    );
    let bridge = unique("br-");
    register_task_definition(
        &s,
        json!({"family": bridge, "networkMode": "bridge",
               "containerDefinitions": [{"name": "a", "image": "a:1", "memory": 64}]}),
    );
    let not_awsvpc = s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "y", "taskDefinition": bridge,
               "networkConfiguration": subnet_default}),
    );
    not_awsvpc.expect_error("InvalidParameterException");
    assert!(
        not_awsvpc
            .message()
            .contains("Network Configuration is not valid for the given networkMode"),
        "{}",
        not_awsvpc.body
    );
    // A group EC2 does not know is refused (its tasks would run unreachable).
    let unknown = create(json!({"launchType": "FARGATE", "networkConfiguration":
        {"awsvpcConfiguration": {"subnets": ["subnet-default"], "securityGroups": ["sg-0123456789abcdef0"]}}}));
    unknown.expect_error("InvalidParameterException");
    assert!(
        unknown
            .message()
            .contains("The security group 'sg-0123456789abcdef0' does not exist"),
        "{}",
        unknown.body
    );
    // So is a subnet EC2 does not have (ECS quotes EC2's error), at CreateService already.
    let no_subnet = create(json!({"launchType": "FARGATE", "networkConfiguration":
        {"awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"], "securityGroups": ["sg-default"]}}}));
    no_subnet.expect_error("InvalidParameterException");
    assert_eq!(
        no_subnet.message(),
        "Error retrieving subnet information for [subnet-0123456789abcdef0]: The subnet ID 'subnet-0123456789abcdef0' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
    );
    let ok = create(json!({"launchType": "FARGATE", "networkConfiguration":
        {"awsvpcConfiguration": {"subnets": ["subnet-default"], "securityGroups": ["sg-default"]}}}))
    .ok();
    assert_eq!(ok["service"]["launchType"], "FARGATE");
    assert_eq!(
        ok["service"]["networkConfiguration"]["awsvpcConfiguration"]["subnets"][0],
        "subnet-default"
    );
}
