//! ECS services as resources through the real `aws` CLI: create with ECS's defaults and
//! validation, idempotency, update (new deployment), describe/list, delete. (Keeping the
//! desired count running is the service scheduler's job, a later issue.)

use berth_e2e::{ACCOUNT_ID, BerthServer, REGION, assert_aws_error, ok_json, stderr_of, unique};

#[test]
fn create_update_describe_list_delete() {
    let s = BerthServer::start();
    let cluster = unique("svc-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let family = unique("api-");
    let td = format!(
        r#"{{"family":"{family}","containerDefinitions":[{{"name":"api","image":"api:1","memory":64}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));

    let created = ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        "api",
        "--task-definition",
        &format!("{family}:1"),
        "--desired-count",
        "3",
        "--tags",
        "key=tier,value=backend",
    ]));
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
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &cluster]));
    assert_eq!(d["clusters"][0]["activeServicesCount"], 1);

    assert_aws_error(
        &s.aws(&[
            "ecs",
            "create-service",
            "--cluster",
            &cluster,
            "--service-name",
            "api",
            "--task-definition",
            &family,
        ]),
        "InvalidParameterException",
    );

    // A new revision starts a new PRIMARY deployment; the old one becomes ACTIVE.
    let updated = ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        "api",
        "--task-definition",
        &format!("{family}:2"),
        "--desired-count",
        "5",
    ]));
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

    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &cluster,
        "--services",
        "api",
        "ghost",
        "--include",
        "TAGS",
    ]));
    assert_eq!(d["services"][0]["tags"][0]["value"], "backend");
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    let l = ok_json(&s.aws(&["ecs", "list-services", "--cluster", &cluster]));
    assert_eq!(l["serviceArns"].as_array().unwrap().len(), 1);

    // Tags on services and task definitions, through the generic tagging calls.
    let service_arn = svc["serviceArn"].as_str().unwrap().to_string();
    let td_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:1");
    for arn in [&service_arn, &td_arn] {
        ok_json(&s.aws(&[
            "ecs",
            "tag-resource",
            "--resource-arn",
            arn,
            "--tags",
            "key=owner,value=ops",
        ]));
        let t = ok_json(&s.aws(&["ecs", "list-tags-for-resource", "--resource-arn", arn]));
        assert!(
            t["tags"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"key": "owner", "value": "ops"})),
            "{arn}: {t}"
        );
        ok_json(&s.aws(&[
            "ecs",
            "untag-resource",
            "--resource-arn",
            arn,
            "--tag-keys",
            "owner",
        ]));
    }
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "list-tags-for-resource",
            "--resource-arn",
            &format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:99"),
        ]),
        "ResourceNotFoundException",
    );

    assert_aws_error(
        &s.aws(&[
            "ecs",
            "delete-service",
            "--cluster",
            &cluster,
            "--service",
            "api",
        ]),
        "InvalidParameterException",
    );
    let del = ok_json(&s.aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        &cluster,
        "--service",
        "api",
        "--force",
    ]));
    assert_eq!(del["service"]["status"], "DRAINING");
    // With no tasks left it is INACTIVE, unlisted, and the name is free again.
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &cluster,
        "--services",
        "api",
    ]));
    assert_eq!(d["services"][0]["status"], "INACTIVE");
    let l = ok_json(&s.aws(&["ecs", "list-services", "--cluster", &cluster]));
    assert_eq!(l["serviceArns"].as_array().unwrap().len(), 0);
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "update-service",
            "--cluster",
            &cluster,
            "--service",
            "api",
            "--desired-count",
            "1",
        ]),
        "ServiceNotActiveException",
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "update-service",
            "--cluster",
            &cluster,
            "--service",
            "nope",
            "--desired-count",
            "1",
        ]),
        "ServiceNotFoundException",
    );
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        "api",
        "--task-definition",
        &family,
    ]));
}

#[test]
fn validation() {
    let s = BerthServer::start();
    let cluster = unique("svc-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let family = unique("fg-");
    let td = format!(
        r#"{{"family":"{family}","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512",
            "containerDefinitions":[{{"name":"a","image":"a:1"}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));
    let create = |extra: &[&str]| {
        let mut args = vec![
            "ecs",
            "create-service",
            "--cluster",
            cluster.as_str(),
            "--service-name",
            "x",
            "--task-definition",
            family.as_str(),
        ];
        args.extend_from_slice(extra);
        s.aws(&args)
    };
    // awsvpc needs a network configuration.
    assert_aws_error(
        &create(&["--launch-type", "FARGATE"]),
        "InvalidParameterException",
    );
    // DAEMON takes no desired count.
    assert_aws_error(
        &create(&["--scheduling-strategy", "DAEMON", "--desired-count", "2"]),
        "InvalidParameterException",
    );
    assert_aws_error(
        &create(&[
            "--placement-strategy",
            "type=binpack,field=disk",
            "--launch-type",
            "FARGATE",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[subnet-default]}",
        ]),
        "InvalidParameterException",
    );
    assert_aws_error(&create(&["--cluster", "ghost"]), "ClusterNotFoundException");
    // The network configuration gets RunTask's checks and messages.
    let malformed = create(&[
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet_Bad]}",
    ]);
    assert_aws_error(&malformed, "InvalidParameterException");
    assert!(
        stderr_of(&malformed).contains("The subnet ID 'subnet_Bad' is malformed"),
        "{}",
        stderr_of(&malformed)
    );
    let bridge = unique("br-");
    ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        &bridge,
        "--network-mode",
        "bridge",
        "--container-definitions",
        r#"[{"name":"a","image":"a:1","memory":64}]"#,
    ]));
    let not_awsvpc = s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        "y",
        "--task-definition",
        &bridge,
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default]}",
    ]);
    assert_aws_error(&not_awsvpc, "InvalidParameterException");
    assert!(
        stderr_of(&not_awsvpc)
            .contains("Network Configuration is not valid for the given networkMode"),
        "{}",
        stderr_of(&not_awsvpc)
    );
    let ok = ok_json(&create(&[
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default],securityGroups=[sg-default]}",
    ]));
    assert_eq!(ok["service"]["launchType"], "FARGATE");
    assert_eq!(
        ok["service"]["networkConfiguration"]["awsvpcConfiguration"]["subnets"][0],
        "subnet-default"
    );
}
