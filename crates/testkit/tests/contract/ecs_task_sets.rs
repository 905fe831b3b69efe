//! Task sets and capacity providers in-process through the HTTP stack: the validation and
//! refusals (the workflows with real tasks are tests/tests/e2e/conformance_ecs.rs).

use berth_testkit::ecs::{self, register_task_definition_arn, single_container};
use berth_testkit::{TestServer, unique};
use serde_json::json;

#[test]
fn task_set_operations_are_refused_as_ecs_does() {
    let s = TestServer::start();
    let cluster = unique("ts-");
    ecs::create_cluster(&s, &cluster);
    let family = unique("ts-app-");
    let td = register_task_definition_arn(&s, single_container(&family, "app", "app:1", 64));
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "ecs", "taskDefinition": td}),
    )
    .ok();
    let created = s
        .ecs(
            "CreateService",
            json!({"cluster": cluster, "serviceName": "ext",
                   "deploymentController": {"type": "EXTERNAL"}, "desiredCount": 3}),
        )
        .ok();
    assert_eq!(
        created["service"]["deploymentController"]["type"],
        "EXTERNAL"
    );
    assert_eq!(created["service"]["deployments"], json!([]));

    // On a service ECS deploys: ECS's refusal.
    let refused = s.ecs(
        "CreateTaskSet",
        json!({"cluster": cluster, "service": "ecs", "taskDefinition": td}),
    );
    refused.expect_error("InvalidParameterException");
    assert_eq!(
        refused.message(),
        "Amazon ECS only supports task set management on services configured to use external deployment controllers."
    );
    s.ecs(
        "DescribeTaskSets",
        json!({"cluster": cluster, "service": "ecs"}),
    )
    .expect_error("InvalidParameterException");

    // Scale: PERCENT only, 0..=100; computed counts round up.
    s.ecs(
        "CreateTaskSet",
        json!({"cluster": cluster, "service": "ext", "taskDefinition": td,
               "scale": {"value": 50, "unit": "COUNT"}}),
    )
    .expect_error("InvalidParameterException");
    s.ecs(
        "CreateTaskSet",
        json!({"cluster": cluster, "service": "ext", "taskDefinition": td,
               "scale": {"value": 150, "unit": "PERCENT"}}),
    )
    .expect_error("InvalidParameterException");
    let set = s
        .ecs(
            "CreateTaskSet",
            json!({"cluster": cluster, "service": "ext", "taskDefinition": td,
                   "scale": {"value": 50, "unit": "PERCENT"}, "clientToken": "once"}),
        )
        .ok()["taskSet"]
        .clone();
    assert_eq!(set["computedDesiredCount"], 2);
    // Idempotent with its client token.
    let again = s
        .ecs(
            "CreateTaskSet",
            json!({"cluster": cluster, "service": "ext", "taskDefinition": td,
                   "scale": {"value": 50, "unit": "PERCENT"}, "clientToken": "once"}),
        )
        .ok();
    assert_eq!(again["taskSet"]["id"], set["id"]);

    // Unknown task sets.
    let missing = s.ecs(
        "UpdateTaskSet",
        json!({"cluster": cluster, "service": "ext", "taskSet": "ecs-svc/1",
               "scale": {"value": 10, "unit": "PERCENT"}}),
    );
    missing.expect_error("TaskSetNotFoundException");
    s.ecs(
        "UpdateServicePrimaryTaskSet",
        json!({"cluster": cluster, "service": "ext", "primaryTaskSet": "ecs-svc/1"}),
    )
    .expect_error("TaskSetNotFoundException");
    // By ARN, as by id.
    let by_arn = s
        .ecs(
            "DescribeTaskSets",
            json!({"cluster": cluster, "service": "ext", "taskSets": [set["taskSetArn"]]}),
        )
        .ok();
    assert_eq!(by_arn["taskSets"][0]["id"], set["id"]);
    // Another EXTERNAL service's task set with the same id is not this one's: an ARN names
    // its service.
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "ext2",
               "deploymentController": {"type": "EXTERNAL"}, "desiredCount": 1}),
    )
    .ok();
    let other = s
        .ecs(
            "CreateTaskSet",
            json!({"cluster": cluster, "service": "ext2", "taskDefinition": td}),
        )
        .ok()["taskSet"]
        .clone();
    assert_eq!(other["id"], set["id"], "ids repeat across services");
    let foreign = s
        .ecs(
            "DescribeTaskSets",
            json!({"cluster": cluster, "service": "ext", "taskSets": [other["taskSetArn"]]}),
        )
        .ok();
    assert_eq!(foreign["taskSets"], json!([]), "{foreign}");
    assert_eq!(
        foreign["failures"][0]["arn"], other["taskSetArn"],
        "{foreign}"
    );

    // An EXTERNAL service takes no new task definition; CODE_DEPLOY is not offered.
    s.ecs(
        "UpdateService",
        json!({"cluster": cluster, "service": "ext", "taskDefinition": td}),
    )
    .expect_error("InvalidParameterException");
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "cd", "taskDefinition": td,
               "deploymentController": {"type": "CODE_DEPLOY"}}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn capacity_providers_are_validated() {
    let s = TestServer::start();
    let group =
        "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/g";
    for name in ["aws-x", "ECSx", "fargate-x"] {
        s.ecs(
            "CreateCapacityProvider",
            json!({"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": group}}),
        )
        .expect_error("InvalidParameterException");
    }
    for (field, value) in [
        ("targetCapacity", 0),
        ("targetCapacity", 101),
        ("minimumScalingStepSize", 0),
        ("maximumScalingStepSize", 10_001),
        ("instanceWarmupPeriod", -1),
    ] {
        let out = s.ecs(
            "CreateCapacityProvider",
            json!({"name": unique("cp-"), "autoScalingGroupProvider": {
                "autoScalingGroupArn": group, "managedScaling": {field: value}}}),
        );
        out.expect_error("InvalidParameterException");
        assert!(out.message().contains(field), "{}", out.message());
    }
    s.ecs(
        "UpdateCapacityProvider",
        json!({"name": "nope", "autoScalingGroupProvider": {"managedDraining": "ENABLED"}}),
    )
    .expect_error("ClientException");
    s.ecs(
        "DeleteCapacityProvider",
        json!({"capacityProvider": "FARGATE"}),
    )
    .expect_error("ClientException");
    s.ecs("DescribeCapacityProviders", json!({"maxResults": 11}))
        .expect_error("InvalidParameterException");
}
