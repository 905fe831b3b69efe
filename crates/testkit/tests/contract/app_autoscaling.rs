//! Application Auto Scaling, in-process through the HTTP stack with the test kit's signer:
//! every operation, AWS's exceptions and messages, botocore's shapes (PascalCase members,
//! epoch-second timestamps), a scheduled action run by the leader's controller on the ECS
//! service. (Policies executed by their alarms are unit-tested in berth-app-autoscaling;
//! the aws CLI workflow is in tests/tests/e2e/app_autoscaling.rs.)

use std::time::{Duration, Instant};

use berth_testkit::ecs::{self, register_task_definition, single_container};
use berth_testkit::{ACCOUNT_ID, Answer, Endpoint, REGION, TestServer, unique};
use serde_json::{Value, json};

fn aas(s: &TestServer, operation: &str, body: Value) -> Answer {
    s.call(
        "application-autoscaling",
        &format!("AnyScaleFrontendService.{operation}"),
        body,
    )
}

/// A cluster with service `web` (desired `desired`); its resource id.
fn service(s: &TestServer, desired: i64) -> String {
    let cluster = unique("aas-");
    ecs::create_cluster(s, &cluster);
    let family = unique("web-");
    register_task_definition(s, single_container(&family, "web", "web:1", 64));
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "web", "taskDefinition": family,
               "desiredCount": desired}),
    )
    .ok();
    format!("service/{cluster}/web")
}

fn target(resource_id: &str) -> Value {
    json!({"ServiceNamespace": "ecs", "ResourceId": resource_id,
           "ScalableDimension": "ecs:service:DesiredCount"})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn desired_count(s: &TestServer, resource_id: &str) -> i64 {
    let parts: Vec<&str> = resource_id.split('/').collect();
    let described = s
        .ecs(
            "DescribeServices",
            json!({"cluster": parts[1], "services": [parts[2]]}),
        )
        .ok();
    described["services"][0]["desiredCount"].as_i64().unwrap()
}

#[test]
fn scalable_targets_register_update_describe_tag_and_deregister() {
    let s = TestServer::start();
    let id = service(&s, 1);
    let registered = aas(
        &s,
        "RegisterScalableTarget",
        with(
            target(&id),
            json!({"MinCapacity": 2, "MaxCapacity": 5, "Tags": {"team": "web"}}),
        ),
    )
    .ok();
    let arn = registered["ScalableTargetARN"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:application-autoscaling:{REGION}:{ACCOUNT_ID}:scalable-target/"
        )),
        "{arn}"
    );
    assert_eq!(arn.rsplit('/').next().unwrap().len(), 36);
    // As in AWS, the first registration made the service-linked role it names (ECS's
    // CreateCluster made ECS's).
    for (name, service) in [
        (
            "AWSServiceRoleForApplicationAutoScaling_ECSService",
            "ecs.application-autoscaling.amazonaws.com",
        ),
        ("AWSServiceRoleForECS", "ecs.amazonaws.com"),
    ] {
        let r = s
            .json_client()
            .query(
                "iam",
                REGION,
                &format!("Action=GetRole&RoleName={name}&Version=2010-05-08"),
            )
            .unwrap();
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{body}");
        assert_eq!(
            xml_text(&body, "Arn"),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/{service}/{name}")
        );
    }
    // The service's desired count of 1 is raised into the range.
    assert_eq!(desired_count(&s, &id), 2);
    // Re-registering updates what it names and keeps the rest.
    let again = aas(
        &s,
        "RegisterScalableTarget",
        with(
            target(&id),
            json!({"MaxCapacity": 8, "SuspendedState": {"DynamicScalingInSuspended": true}}),
        ),
    )
    .ok();
    assert_eq!(again["ScalableTargetARN"], arn.as_str());
    let described = aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "ResourceIds": [id]}),
    )
    .ok();
    let t = &described["ScalableTargets"][0];
    assert_eq!(t["ServiceNamespace"], "ecs");
    assert_eq!(t["ScalableDimension"], "ecs:service:DesiredCount");
    assert_eq!(t["ResourceId"], id.as_str());
    assert_eq!(
        (t["MinCapacity"].as_i64(), t["MaxCapacity"].as_i64()),
        (Some(2), Some(8))
    );
    assert_eq!(
        t["RoleARN"],
        format!(
            "arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
        )
    );
    assert!(t["CreationTime"].as_f64().unwrap() > 1.6e9);
    assert_eq!(t["SuspendedState"]["DynamicScalingInSuspended"], true);
    assert_eq!(t["SuspendedState"]["DynamicScalingOutSuspended"], false);
    assert_eq!(t["ScalableTargetARN"], arn.as_str());
    assert!(described.get("NextToken").is_none());

    // Tags by the target's ARN.
    aas(
        &s,
        "TagResource",
        json!({"ResourceARN": arn, "Tags": {"env": "prod"}}),
    )
    .ok();
    aas(
        &s,
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["team"]}),
    )
    .ok();
    let tags = aas(&s, "ListTagsForResource", json!({"ResourceARN": arn})).ok();
    assert_eq!(tags["Tags"], json!({"env": "prod"}));
    let unknown = format!(
        "arn:aws:application-autoscaling:{REGION}:{ACCOUNT_ID}:scalable-target/0123456789abcdef0123456789abcdef0123"
    );
    aas(&s, "ListTagsForResource", json!({"ResourceARN": unknown}))
        .expect_error("ResourceNotFoundException");

    // Paging: one a page.
    let other = service(&s, 1);
    aas(
        &s,
        "RegisterScalableTarget",
        with(target(&other), json!({"MinCapacity": 1, "MaxCapacity": 2})),
    )
    .ok();
    let first = aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "MaxResults": 1}),
    )
    .ok();
    assert_eq!(first["ScalableTargets"].as_array().unwrap().len(), 1);
    let token = first["NextToken"].as_str().unwrap();
    let second = aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "MaxResults": 1, "NextToken": token}),
    )
    .ok();
    assert_eq!(second["ScalableTargets"].as_array().unwrap().len(), 1);
    assert_ne!(
        first["ScalableTargets"][0]["ResourceId"],
        second["ScalableTargets"][0]["ResourceId"]
    );
    aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "NextToken": "zz"}),
    )
    .expect_error("InvalidNextTokenException");

    aas(&s, "DeregisterScalableTarget", target(&id)).ok();
    let gone = aas(&s, "DeregisterScalableTarget", target(&id));
    gone.expect_error("ObjectNotFoundException");
    assert_eq!(
        gone.message(),
        format!(
            "No scalable target registered for service namespace: ecs, resource ID: {id}, scalable dimension: ecs:service:DesiredCount"
        )
    );
}

#[test]
fn requests_are_checked_as_aws_checks_them() {
    let s = TestServer::start();
    let id = service(&s, 1);
    let unsupported = aas(
        &s,
        "RegisterScalableTarget",
        json!({"ServiceNamespace": "dynamodb", "ResourceId": "table/t",
               "ScalableDimension": "dynamodb:table:ReadCapacityUnits", "MinCapacity": 1, "MaxCapacity": 2}),
    );
    unsupported.expect_error("ValidationException");
    assert_eq!(
        unsupported.message(),
        "Unsupported service namespace, resource type or scalable dimension"
    );
    let invalid = aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "nope"}),
    );
    invalid.expect_error("ValidationException");
    assert!(
        invalid
            .message()
            .starts_with("1 validation error detected: Value 'nope' at 'serviceNamespace'")
    );
    aas(
        &s,
        "RegisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/onlyone",
        "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
    )
    .expect_error("ValidationException");
    let missing = aas(
        &s,
        "RegisterScalableTarget",
        with(
            target("service/nocluster/nosvc"),
            json!({"MinCapacity": 1, "MaxCapacity": 2}),
        ),
    );
    missing.expect_error("ValidationException");
    assert_eq!(
        missing.message(),
        "ECS service doesn't exist: service/nocluster/nosvc"
    );
    aas(&s, "RegisterScalableTarget", target(&id)).expect_error("ValidationException");
    aas(
        &s,
        "RegisterScalableTarget",
        with(target(&id), json!({"MinCapacity": 5, "MaxCapacity": 2})),
    )
    .expect_error("ValidationException");
    // A required member missing.
    aas(
        &s,
        "DeregisterScalableTarget",
        json!({"ServiceNamespace": "ecs"}),
    )
    .expect_error("ValidationException");
    aas(
        &s,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "MaxResults": 51}),
    )
    .expect_error("ValidationException");
    // Policies and scheduled actions need a registered target.
    let policy = aas(
        &s,
        "PutScalingPolicy",
        with(
            target(&id),
            json!({"PolicyName": "p", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {"StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}),
        ),
    );
    policy.expect_error("ObjectNotFoundException");
    aas(
        &s,
        "PutScheduledAction",
        with(
            target(&id),
            json!({"ScheduledActionName": "a", "Schedule": "rate(1 hour)"}),
        ),
    )
    .expect_error("ObjectNotFoundException");
    aas(&s, "FrobnicateTargets", json!({})).expect_error("UnknownOperationException");
}

#[test]
fn step_and_target_tracking_policies() {
    let s = TestServer::start();
    let id = service(&s, 2);
    aas(
        &s,
        "RegisterScalableTarget",
        with(target(&id), json!({"MinCapacity": 1, "MaxCapacity": 10})),
    )
    .ok();
    let step = aas(&s, "PutScalingPolicy", with(target(&id), json!({
        "PolicyName": "step-out", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 15, "ScalingAdjustment": 1},
                                {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 3}]}}))).ok();
    let step_arn = step["PolicyARN"].as_str().unwrap().to_string();
    assert!(
        step_arn.starts_with(&format!(
            "arn:aws:autoscaling:{REGION}:{ACCOUNT_ID}:scalingPolicy:"
        )),
        "{step_arn}"
    );
    assert!(
        step_arn.ends_with(&format!(":resource/ecs/{id}:policyName/step-out")),
        "{step_arn}"
    );
    assert!(step.get("Alarms").is_none());
    // Overlapping steps.
    aas(
        &s,
        "PutScalingPolicy",
        with(
            target(&id),
            json!({"PolicyName": "bad", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {"StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]}}),
        ),
    )
    .expect_error("ValidationException");

    let tracking = aas(&s, "PutScalingPolicy", with(target(&id), json!({
        "PolicyName": "cpu75", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 75.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "ScaleOutCooldown": 60, "ScaleInCooldown": 120}}))).ok();
    let alarms = tracking["Alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2);
    let high = alarms[0]["AlarmName"].as_str().unwrap();
    assert!(
        high.starts_with(&format!("TargetTracking-{id}-AlarmHigh-")),
        "{high}"
    );
    assert_eq!(
        alarms[0]["AlarmARN"],
        format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{high}")
    );
    assert!(
        alarms[1]["AlarmName"]
            .as_str()
            .unwrap()
            .starts_with(&format!("TargetTracking-{id}-AlarmLow-"))
    );
    // Scale-in disabled: no AlarmLow.
    let no_in = aas(&s, "PutScalingPolicy", with(target(&id), json!({
        "PolicyName": "mem", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60.0, "DisableScaleIn": true,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}}}))).ok();
    assert_eq!(no_in["Alarms"].as_array().unwrap().len(), 1);
    // ALBRequestCountPerTarget needs its resource label.
    aas(&s, "PutScalingPolicy", with(target(&id), json!({
        "PolicyName": "alb", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}})))
        .expect_error("ValidationException");
    aas(
        &s,
        "PutScalingPolicy",
        with(
            target(&id),
            json!({
        "PolicyName": "alb", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": "app/web/50dc6c495c0c9188/targetgroup/web/943f017f100becff"}}}),
        ),
    )
    .ok();

    let described = aas(
        &s,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "ResourceId": id,
        "ScalableDimension": "ecs:service:DesiredCount", "PolicyNames": ["cpu75", "step-out"]}),
    )
    .ok();
    let policies = described["ScalingPolicies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    let cpu = policies
        .iter()
        .find(|p| p["PolicyName"] == "cpu75")
        .unwrap();
    assert_eq!(cpu["PolicyType"], "TargetTrackingScaling");
    assert_eq!(cpu["ServiceNamespace"], "ecs");
    assert_eq!(
        cpu["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
        75.0
    );
    assert_eq!(
        cpu["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"],
        "ECSServiceAverageCPUUtilization"
    );
    assert_eq!(cpu["Alarms"], tracking["Alarms"]);
    let st = policies
        .iter()
        .find(|p| p["PolicyName"] == "step-out")
        .unwrap();
    assert_eq!(
        st["StepScalingPolicyConfiguration"]["StepAdjustments"][1]["ScalingAdjustment"],
        3
    );
    assert_eq!(st["PolicyARN"], step_arn.as_str());
    let page = aas(
        &s,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "MaxResults": 2}),
    )
    .ok();
    assert_eq!(page["ScalingPolicies"].as_array().unwrap().len(), 2);
    let rest = aas(
        &s,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "NextToken": page["NextToken"]}),
    )
    .ok();
    assert_eq!(rest["ScalingPolicies"].as_array().unwrap().len(), 2);

    aas(
        &s,
        "DeleteScalingPolicy",
        with(target(&id), json!({"PolicyName": "cpu75"})),
    )
    .ok();
    let gone = aas(
        &s,
        "DeleteScalingPolicy",
        with(target(&id), json!({"PolicyName": "cpu75"})),
    );
    gone.expect_error("ObjectNotFoundException");
    assert_eq!(
        gone.message(),
        format!(
            "No scaling policy found for service namespace: ecs, resource ID: {id}, scalable dimension: ecs:service:DesiredCount, policy name: cpu75"
        )
    );
    // Deregistering the target takes its policies along.
    aas(&s, "DeregisterScalableTarget", target(&id)).ok();
    let left = aas(
        &s,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs"}),
    )
    .ok();
    assert_eq!(left["ScalingPolicies"], json!([]));
}

#[test]
fn a_scheduled_action_sets_the_range_and_the_service_follows() {
    let s = TestServer::start();
    let id = service(&s, 1);
    aas(
        &s,
        "RegisterScalableTarget",
        with(target(&id), json!({"MinCapacity": 1, "MaxCapacity": 2})),
    )
    .ok();
    aas(
        &s,
        "PutScheduledAction",
        with(
            target(&id),
            json!({"ScheduledActionName": "bad", "Schedule": "cron(0 0 * *)"}),
        ),
    )
    .expect_error("ValidationException");
    aas(
        &s,
        "PutScheduledAction",
        with(
            target(&id),
            json!({"ScheduledActionName": "tz", "Schedule": "rate(1 hour)",
        "Timezone": "America/Gotham"}),
        ),
    )
    .expect_error("ValidationException");
    // IANA zones with daylight saving time are taken.
    aas(
        &s,
        "PutScheduledAction",
        with(
            target(&id),
            json!({"ScheduledActionName": "morning", "Schedule": "cron(0 8 ? * MON-FRI *)",
        "Timezone": "America/New_York"}),
        ),
    )
    .ok();
    aas(
        &s,
        "DeleteScheduledAction",
        with(target(&id), json!({"ScheduledActionName": "morning"})),
    )
    .ok();
    aas(
        &s,
        "PutScheduledAction",
        with(
            target(&id),
            json!({"ScheduledActionName": "nightly",
        "Schedule": "cron(0 22 * * ? *)", "Timezone": "Etc/UTC",
        "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 2}}),
        ),
    )
    .ok();
    // An `at` a second ahead.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 1;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let at = format!(
        "at({y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02})",
        t / 3600,
        t % 3600 / 60,
        t % 60
    );
    aas(&s, "PutScheduledAction", with(target(&id), json!({"ScheduledActionName": "scale-up",
        "Schedule": at, "StartTime": secs - 60, "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 6}}))).ok();
    let described = aas(
        &s,
        "DescribeScheduledActions",
        json!({"ServiceNamespace": "ecs", "ResourceId": id,
        "ScheduledActionNames": ["scale-up"]}),
    )
    .ok();
    let action = &described["ScheduledActions"][0];
    assert_eq!(action["Schedule"], at.as_str());
    assert_eq!(
        action["ScalableTargetAction"],
        json!({"MinCapacity": 3, "MaxCapacity": 6})
    );
    assert_eq!(action["StartTime"].as_f64(), Some((secs - 60) as f64));
    assert!(
        action["ScheduledActionARN"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":resource/ecs/{id}:scheduledActionName/scale-up"))
    );

    // The leader's controller runs it: wait (bounded) for the activity.
    let deadline = Instant::now() + Duration::from_secs(30);
    let activities = loop {
        let found = aas(
            &s,
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "ResourceId": id}),
        )
        .ok();
        let list = found["ScalingActivities"].as_array().unwrap().clone();
        if list.iter().any(|a| {
            a["Description"] == "Setting desired count to 3." && a["StatusCode"] == "Successful"
        }) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled action did not run: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(desired_count(&s, &id), 3);
    let range = activities
        .iter()
        .find(|a| a["Cause"] == "scheduled action name scale-up was triggered")
        .unwrap();
    assert_eq!(
        range["Description"],
        "Setting min capacity to 3 and max capacity to 6"
    );
    assert_eq!(
        range["StatusMessage"],
        "Successfully set min capacity to 3 and max capacity to 6"
    );
    let desired = activities
        .iter()
        .find(|a| a["Description"] == "Setting desired count to 3.")
        .unwrap();
    assert_eq!(
        desired["StatusMessage"],
        "Successfully set desired count to 3. Change successfully fulfilled by ecs."
    );
    assert_eq!(desired["ServiceNamespace"], "ecs");
    assert!(desired["ActivityId"].as_str().unwrap().len() == 36);
    assert!(desired["EndTime"].as_f64().unwrap() >= desired["StartTime"].as_f64().unwrap());
    let t = aas(
        &s,
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "ResourceIds": [id]}),
    )
    .ok();
    assert_eq!(t["ScalableTargets"][0]["MinCapacity"], 3);

    aas(
        &s,
        "DeleteScheduledAction",
        with(target(&id), json!({"ScheduledActionName": "scale-up"})),
    )
    .ok();
    aas(
        &s,
        "DeleteScheduledAction",
        with(target(&id), json!({"ScheduledActionName": "scale-up"})),
    )
    .expect_error("ObjectNotFoundException");
    let left = aas(
        &s,
        "DescribeScheduledActions",
        json!({"ServiceNamespace": "ecs"}),
    )
    .ok();
    assert_eq!(left["ScheduledActions"].as_array().unwrap().len(), 1);
}

/// The civil date of a day since 1970-01-01.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// The text of the first `<tag>` element of an XML answer.
fn xml_text(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body.find(&open).unwrap() + open.len();
    let end = body[start..].find('<').unwrap() + start;
    body[start..end].to_string()
}

#[test]
fn iam_users_are_authorized_as_application_autoscaling_actions() {
    let s = TestServer::start();
    let id = service(&s, 1);
    let iam = |form: String| {
        let r = s.json_client().query("iam", REGION, &form).unwrap();
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{body}");
        body
    };
    let v = "Version=2010-05-08";
    iam(format!("Action=CreateUser&UserName=viewer&{v}"));
    // Describe* only, and only in the ecs namespace (the service's condition key).
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"application-autoscaling:Describe*","Resource":"*","Condition":{"StringEquals":{"application-autoscaling:service-namespace":"ecs"}}}]}"#;
    let encoded: String = policy
        .bytes()
        .map(
            |b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            },
        )
        .collect();
    iam(format!(
        "Action=PutUserPolicy&UserName=viewer&PolicyName=view&PolicyDocument={encoded}&{v}"
    ));
    let keys = iam(format!("Action=CreateAccessKey&UserName=viewer&{v}"));
    let client = s.json_client().with_keys(
        &xml_text(&keys, "AccessKeyId"),
        &xml_text(&keys, "SecretAccessKey"),
    );
    let call = |operation: &str, body: Value| {
        client
            .call(
                "application-autoscaling",
                &format!("AnyScaleFrontendService.{operation}"),
                &body,
            )
            .unwrap()
    };
    let described = call(
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs"}),
    );
    assert_eq!(described.status, 200, "{}", described.text());
    let refused = call(
        "RegisterScalableTarget",
        with(target(&id), json!({"MinCapacity": 1, "MaxCapacity": 2})),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("AccessDeniedException"),
        "{}",
        refused.text()
    );
    assert!(
        refused
            .text()
            .contains("application-autoscaling:RegisterScalableTarget"),
        "{}",
        refused.text()
    );
}

fn cloudwatch(s: &TestServer, operation: &str, body: Value) -> Value {
    let r = s
        .json_client()
        .call(
            "monitoring",
            &format!("GraniteServiceVersion20100801.{operation}"),
            &body,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{operation}: {}", r.text());
    r.json()
}

fn alarm_names(s: &TestServer, prefix: &str) -> Vec<String> {
    let found = cloudwatch(s, "DescribeAlarms", json!({"AlarmNamePrefix": prefix}));
    found["MetricAlarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AlarmName"].as_str().unwrap().to_string())
        .collect()
}

/// Target tracking's alarms are CloudWatch alarms (described, deleted with their policy);
/// a step policy on a custom metric runs when its alarm, put with PutMetricAlarm, goes to
/// ALARM on data put with PutMetricData: the service's desired count follows, the activity
/// says why, the alarm's history records the action.
#[test]
fn policies_and_cloudwatch_alarms_work_together() {
    let s = TestServer::start();
    let resource_id = service(&s, 1);
    let t = target(&resource_id);
    aas(
        &s,
        "RegisterScalableTarget",
        with(t.clone(), json!({"MinCapacity": 1, "MaxCapacity": 5})),
    )
    .ok();
    let queue = unique("Jobs");
    let tracking = aas(
        &s,
        "PutScalingPolicy",
        with(
            t.clone(),
            json!({"PolicyName": "backlog", "PolicyType": "TargetTrackingScaling",
                   "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0,
                     "CustomizedMetricSpecification": {"Namespace": queue, "MetricName": "Backlog",
                       "Statistic": "Average"}}}),
        ),
    )
    .ok();
    let prefix = format!("TargetTracking-{resource_id}-");
    let names = alarm_names(&s, &prefix);
    assert_eq!(names.len(), 2, "{names:?}");
    let high = cloudwatch(
        &s,
        "DescribeAlarms",
        json!({"AlarmNames": [names.iter().find(|n| n.contains("AlarmHigh")).unwrap()]}),
    );
    let high = &high["MetricAlarms"][0];
    assert_eq!(high["AlarmActions"], json!([tracking["PolicyARN"]]));
    assert_eq!(
        (high["Namespace"].as_str(), high["MetricName"].as_str()),
        (Some(queue.as_str()), Some("Backlog"))
    );
    assert_eq!(high["Threshold"], 50.0);
    assert_eq!(high["ComparisonOperator"], "GreaterThanThreshold");
    aas(
        &s,
        "DeleteScalingPolicy",
        with(t.clone(), json!({"PolicyName": "backlog"})),
    )
    .ok();
    assert!(alarm_names(&s, &prefix).is_empty());

    let step = aas(
        &s,
        "PutScalingPolicy",
        with(
            t.clone(),
            json!({"PolicyName": "burst", "PolicyType": "StepScaling",
                   "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                     "Cooldown": 600, "StepAdjustments": [{"MetricIntervalLowerBound": 0.0,
                       "ScalingAdjustment": 2}]}}),
        ),
    )
    .ok();
    let alarm = unique("burst-");
    cloudwatch(
        &s,
        "PutMetricAlarm",
        json!({"AlarmName": alarm, "Namespace": queue, "MetricName": "Depth", "Statistic": "Maximum",
               "Period": 10, "EvaluationPeriods": 1, "Threshold": 100.0,
               "ComparisonOperator": "GreaterThanOrEqualToThreshold",
               "AlarmActions": [step["PolicyARN"]]}),
    );
    let now = berth_testkit::now_ms() / 1000;
    cloudwatch(
        &s,
        "PutMetricData",
        json!({"Namespace": queue, "MetricData": [
            {"MetricName": "Depth", "Timestamp": now - 12, "Value": 400.0, "StorageResolution": 1},
            {"MetricName": "Depth", "Timestamp": now - 3, "Value": 450.0, "StorageResolution": 1}]}),
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    while desired_count(&s, &resource_id) != 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(desired_count(&s, &resource_id), 3);
    let activities = aas(
        &s,
        "DescribeScalingActivities",
        json!({"ServiceNamespace": "ecs", "ResourceId": resource_id}),
    )
    .ok();
    let scaled = &activities["ScalingActivities"][0];
    assert_eq!(scaled["Description"], "Setting desired count to 3.");
    assert!(
        scaled["Cause"].as_str().unwrap().contains(&format!(
            "monitor alarm {alarm} in state ALARM triggered policy burst"
        )),
        "{scaled}"
    );
    let history = cloudwatch(
        &s,
        "DescribeAlarmHistory",
        json!({"AlarmName": alarm, "HistoryItemType": "Action"}),
    );
    assert!(
        history["AlarmHistoryItems"][0]["HistorySummary"]
            .as_str()
            .unwrap()
            .starts_with("Successfully executed action arn:aws:autoscaling:"),
        "{history}"
    );
}
