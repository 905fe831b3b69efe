//! ECS and CloudWatch Logs answer as AWS answers, field by field and error by error, driven
//! with the real `aws` CLI (issue 16, section 2). Each test names the evidence for the exact text.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};
use serde_json::json;

/// Account settings: an unknown name is refused by every account-setting operation, a bad
/// value with ECS's "Invalid setting 'value'" (seen in aws/aws-cli#3785 and
/// hashicorp/terraform-provider-aws#32114, CloudTrail's errorMessage); DeleteAccountSetting
/// answers with the setting as it was and returns it to its default.
#[test]
fn account_settings_answer_as_ecs_does() {
    let s = BerthServer::start();
    let refused = |args: &[&str], message: &str| {
        let out = s.aws(args);
        assert_aws_error(&out, "InvalidParameterException");
        assert!(stderr_of(&out).contains(message), "{}", stderr_of(&out));
    };
    refused(
        &["ecs", "list-account-settings", "--name", "noSuchSetting"],
        "Invalid setting 'name'",
    );
    refused(
        &[
            "ecs",
            "put-account-setting",
            "--name",
            "noSuchSetting",
            "--value",
            "enabled",
        ],
        "Invalid setting 'name'",
    );
    refused(
        &["ecs", "delete-account-setting", "--name", "noSuchSetting"],
        "Invalid setting 'name'",
    );
    refused(
        &[
            "ecs",
            "put-account-setting",
            "--name",
            "taskLongArnFormat",
            "--value",
            "ENABLED",
        ],
        "Invalid setting 'value'",
    );

    ok_json(&s.aws(&[
        "ecs",
        "put-account-setting",
        "--name",
        "containerInsights",
        "--value",
        "enhanced",
    ]));
    let listed = ok_json(&s.aws(&["ecs", "list-account-settings"]));
    assert_eq!(
        listed["settings"],
        json!([{"name": "containerInsights", "value": "enhanced",
                "principalArn": "arn:aws:iam::000000000000:root", "type": "user"}])
    );
    let deleted = ok_json(&s.aws(&[
        "ecs",
        "delete-account-setting",
        "--name",
        "containerInsights",
    ]));
    assert_eq!(deleted["setting"]["value"], "enhanced", "{deleted:#}");
    let listed = ok_json(&s.aws(&["ecs", "list-account-settings"]));
    assert_eq!(listed["settings"], json!([]), "{listed:#}");
    let effective = ok_json(&s.aws(&[
        "ecs",
        "list-account-settings",
        "--name",
        "containerInsights",
        "--effective-settings",
    ]));
    assert_eq!(
        effective["settings"][0]["value"], "disabled",
        "{effective:#}"
    );
}

/// CreateService's `role` (a name or an ARN) is shown as the service's `roleArn`, as ECS
/// shows it (API reference, Service.roleArn).
#[test]
fn a_service_shows_its_role_as_an_arn() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "roles"]));
    ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        r#"[{"name":"web","image":"busybox","memory":32,"portMappings":[{"containerPort":80}]}]"#,
    ]));
    // A target group a load balancer forwards to (ECS checks both).
    let net = berth_e2e::network::DefaultNetwork::of(&s);
    let balancer = ok_json(&s.aws(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "roles",
        "--subnets",
        &net.subnets[0],
        &net.subnets[1],
    ]));
    let group = ok_json(&s.aws(&[
        "elbv2",
        "create-target-group",
        "--name",
        "web",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        &net.vpc,
    ]));
    let group_arn = group["TargetGroups"][0]["TargetGroupArn"].as_str().unwrap();
    ok_json(
        &s.aws(&[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            balancer["LoadBalancers"][0]["LoadBalancerArn"]
                .as_str()
                .unwrap(),
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={group_arn}"),
        ]),
    );
    let lb = serde_json::json!([{"targetGroupArn": group_arn, "containerName": "web", "containerPort": 80}])
        .to_string();
    let lb = lb.as_str();
    for (name, role, arn) in [
        (
            "by-name",
            "ecsServiceRole",
            "arn:aws:iam::000000000000:role/ecsServiceRole",
        ),
        (
            "by-arn",
            "arn:aws:iam::000000000000:role/path/lbRole",
            "arn:aws:iam::000000000000:role/path/lbRole",
        ),
    ] {
        let created = ok_json(&s.aws(&[
            "ecs",
            "create-service",
            "--cluster",
            "roles",
            "--service-name",
            name,
            "--task-definition",
            "web",
            "--desired-count",
            "0",
            "--load-balancers",
            lb,
            "--role",
            role,
        ]));
        assert_eq!(created["service"]["roleArn"], arn, "{created:#}");
        let described = ok_json(&s.aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            "roles",
            "--services",
            name,
        ]));
        assert_eq!(described["services"][0]["roleArn"], arn, "{described:#}");
    }
}

/// A Fargate task definition with `pidMode: host` is refused with ECS's words, which name
/// the supported value (aws/aws-cdk#29619 quotes the ClientException).
#[test]
fn fargate_pid_mode_host_is_refused_naming_the_supported_value() {
    let s = BerthServer::start();
    let out = s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "pid",
        "--requires-compatibilities",
        "FARGATE",
        "--network-mode",
        "awsvpc",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--pid-mode",
        "host",
        "--container-definitions",
        r#"[{"name":"app","image":"busybox"}]"#,
    ]);
    assert_aws_error(&out, "ClientException");
    assert!(
        stderr_of(&out).contains(
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."
        ),
        "{}",
        stderr_of(&out)
    );
}

/// PutLogEvents answers with a `nextSequenceToken` (CloudWatch Logs ignores the tokens it is
/// sent since January 2023, and still returns one: API reference, PutLogEvents), the same
/// token DescribeLogStreams shows as the stream's `uploadSequenceToken`.
#[test]
fn put_log_events_answers_with_the_next_sequence_token() {
    let s = BerthServer::start();
    ok_json(&s.aws(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        "/conformance",
    ]));
    ok_json(&s.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/conformance",
        "--log-stream-name",
        "s",
    ]));
    let now = berth_e2e::now_ms();
    let events =
        format!(r#"[{{"timestamp":{now},"message":"one"}},{{"timestamp":{now},"message":"two"}}]"#);
    let put = ok_json(&s.aws(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        "/conformance",
        "--log-stream-name",
        "s",
        "--log-events",
        &events,
    ]));
    let token = put["nextSequenceToken"].as_str().unwrap_or_default();
    assert_eq!(token.len(), 56, "{put:#}");
    assert!(token.bytes().all(|b| b.is_ascii_digit()), "{put:#}");
    let streams = ok_json(&s.aws(&[
        "logs",
        "describe-log-streams",
        "--log-group-name",
        "/conformance",
    ]));
    assert_eq!(
        streams["logStreams"][0]["uploadSequenceToken"], token,
        "{streams:#}"
    );
}

/// DescribeTasks and DescribeContainerInstances refuse an empty list with ECS's texts
/// ("Tasks cannot be empty.", published in aws/copilot-cli#3551 and segmentio/specs#58;
/// "Container instance cannot be empty.", in eagletmt/hako#34 and gchq/sleeper#3387), and
/// they do so before the cluster is looked up. Order: no published AWS response shows both
/// a missing cluster and an empty list; AWS checks a request's own shape (required members,
/// list bounds, enum members) before an operation looks anything up — the
/// `1 validation error detected: … Member must satisfy enum value set` form below is that
/// request validation's own text, which never names a resource — so a missing cluster with
/// an empty list answers with the empty-list error.
#[test]
fn an_empty_list_is_refused_before_the_cluster_is_looked_up() {
    let s = BerthServer::start();
    for cluster in ["no-such-cluster", "default"] {
        let out = s.aws(&["ecs", "describe-tasks", "--cluster", cluster, "--tasks"]);
        assert_aws_error(&out, "InvalidParameterException");
        assert!(
            stderr_of(&out).contains("Tasks cannot be empty."),
            "{}",
            stderr_of(&out)
        );
        let out = s.aws(&[
            "ecs",
            "describe-container-instances",
            "--cluster",
            cluster,
            "--container-instances",
        ]);
        assert_aws_error(&out, "InvalidParameterException");
        assert!(
            stderr_of(&out).contains("Container instance cannot be empty."),
            "{}",
            stderr_of(&out)
        );
    }
    // A list with a missing cluster: the cluster is looked up and is not there.
    let out = s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        "no-such-cluster",
        "--tasks",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert_aws_error(&out, "ClusterNotFoundException");
}

/// An invalid `launchType` is refused by request validation, before the cluster is looked
/// up (the evidence for the order is on the test above), with the AWS request-validation
/// text naming the member and its enum set; ListTasks and CreateService refuse it the same
/// way.
#[test]
fn an_invalid_launch_type_is_refused_before_the_cluster() {
    let s = BerthServer::start();
    let message = "1 validation error detected: Value 'EC3' at 'launchType' failed to satisfy constraint: Member must satisfy enum value set: [EC2, FARGATE, EXTERNAL]";
    for args in [
        &[
            "ecs",
            "run-task",
            "--cluster",
            "no-such-cluster",
            "--task-definition",
            "nothing:1",
            "--launch-type",
            "EC3",
        ][..],
        &["ecs", "list-tasks", "--launch-type", "EC3"][..],
        &[
            "ecs",
            "create-service",
            "--service-name",
            "svc",
            "--task-definition",
            "nothing:1",
            "--launch-type",
            "EC3",
        ][..],
    ] {
        let out = s.aws(args);
        assert_aws_error(&out, "InvalidParameterException");
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    // A valid launch type in a missing cluster: the cluster is looked up.
    let out = s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "no-such-cluster",
        "--task-definition",
        "nothing:1",
        "--launch-type",
        "EC2",
    ]);
    assert_aws_error(&out, "ClusterNotFoundException");
}
