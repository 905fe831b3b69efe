//! Target tracking end to end on `berth up` with the real `aws` CLI, Docker and a real load
//! generator (`wrk`), Berth's own metrics at high resolution (`BERTH_METRICS_PERIOD_SECONDS=2`,
//! so the policies' alarms evaluate 10-second periods; docs/autoscaling.md): a Fargate
//! service of 2 tasks behind an ALB tracking ALBRequestCountPerTarget goes to 4 tasks under
//! load, all 4 answering through the load balancer, and back to 2 once the load stops,
//! every step in DescribeScalingActivities and in the alarms' history; a service
//! whose container burns CPU scales out on ECSServiceAverageCPUUtilization.

use std::time::Duration;

use berth_e2e::docker_agent::{register_fargate, wait_for, wait_instances};
use berth_e2e::service::{Svc, create_fargate_service};
use berth_e2e::web::{FARGATE_POOL, Load, WebService};
use berth_e2e::{BerthServer, ServerOptions, ok_json, unique};
use serde_json::{Value, json};

fn server() -> BerthServer {
    BerthServer::start_with(ServerOptions {
        command: Some("up"),
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), "2".into())],
        ..ServerOptions::default()
    })
}

/// `aws application-autoscaling OP` on the service's scalable target.
fn aas(s: &BerthServer, resource_id: &str, op: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "application-autoscaling",
        op,
        "--service-namespace",
        "ecs",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--resource-id",
        resource_id,
    ];
    args.extend_from_slice(extra);
    ok_json(&s.aws(&args))
}

/// A target tracking policy on the service: its ARN and its (AlarmHigh, AlarmLow) names.
fn track(s: &BerthServer, resource_id: &str, name: &str, config: Value) -> (String, Vec<String>) {
    let policy = aas(
        s,
        resource_id,
        "put-scaling-policy",
        &[
            "--policy-name",
            name,
            "--policy-type",
            "TargetTrackingScaling",
            "--target-tracking-scaling-policy-configuration",
            &config.to_string(),
        ],
    );
    let alarms = policy["Alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AlarmName"].as_str().unwrap().to_owned())
        .collect();
    (policy["PolicyARN"].as_str().unwrap().to_owned(), alarms)
}

fn activities(s: &BerthServer, resource_id: &str) -> Vec<Value> {
    let v = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scaling-activities",
        "--service-namespace",
        "ecs",
        "--resource-id",
        resource_id,
    ]));
    v["ScalingActivities"].as_array().unwrap().clone()
}

/// The successful activity that set the desired count to `count` because of `alarm`.
fn scaled_by(s: &BerthServer, resource_id: &str, count: i64, alarm: &str, policy: &str) -> Value {
    let all = activities(s, resource_id);
    let found = all.iter().find(|a| {
        a["Description"] == format!("Setting desired count to {count}.")
            && a["Cause"].as_str().unwrap().contains(&format!(
                "monitor alarm {alarm} in state ALARM triggered policy {policy}"
            ))
    });
    let found = found.unwrap_or_else(|| panic!("no activity to {count} by {alarm}: {all:#?}"));
    assert_eq!(found["StatusCode"], "Successful", "{found:#}");
    found.clone()
}

/// The alarm's history items of `kind` (StateUpdate, Action), newest first.
fn history(s: &BerthServer, alarm: &str, kind: &str) -> Vec<String> {
    let v = ok_json(&s.aws(&[
        "cloudwatch",
        "describe-alarm-history",
        "--alarm-name",
        alarm,
        "--history-item-type",
        kind,
    ]));
    v["AlarmHistoryItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["HistorySummary"].as_str().unwrap().to_owned())
        .collect()
}

fn describe_alarm(s: &BerthServer, alarm: &str) -> Value {
    let v = ok_json(&s.aws(&["cloudwatch", "describe-alarms", "--alarm-names", alarm]));
    v["MetricAlarms"][0].clone()
}

#[test]
fn request_count_tracking_scales_a_service_behind_an_alb_out_under_load_and_back_in() {
    let s = server();
    let web = WebService::create(&s, 2);
    let resource_id = format!("service/{}/{}", web.cluster, web.name);
    aas(
        &s,
        &resource_id,
        "register-scalable-target",
        &["--min-capacity", "2", "--max-capacity", "4"],
    );
    // 600 requests per target per minute (10 a second).
    let (policy_arn, alarms) = track(
        &s,
        &resource_id,
        "requests",
        json!({"TargetValue": 600.0,
               "PredefinedMetricSpecification": {
                   "PredefinedMetricType": "ALBRequestCountPerTarget",
                   "ResourceLabel": web.resource_label},
               "ScaleInCooldown": 30}),
    );
    let (high, low) = (&alarms[0], &alarms[1]);
    assert!(
        high.contains("-AlarmHigh-") && low.contains("-AlarmLow-"),
        "{alarms:?}"
    );
    // The alarms are CloudWatch's, on the target group's RequestCountPerTarget: 10-s
    // periods, so the per-minute target is a sixth of it per period.
    let described = describe_alarm(&s, high);
    assert_eq!(described["Namespace"], "AWS/ApplicationELB");
    assert_eq!(described["MetricName"], "RequestCountPerTarget");
    assert_eq!(described["Statistic"], "Sum");
    assert_eq!(described["Period"], 10);
    assert_eq!(described["Threshold"], 100.0);
    assert_eq!(described["EvaluationPeriods"], 3);
    assert_eq!(
        described["Dimensions"][0]["Value"],
        web.resource_label
            .split_once("/targetgroup/")
            .map(|(_, tg)| format!("targetgroup/{tg}"))
            .unwrap()
    );
    assert_eq!(describe_alarm(&s, low)["Threshold"], 90.0);

    // Sustained load: far above 10 requests a second per target.
    let load = Load::start(web.address, 4, 600);
    let svc = Svc::wait_running(&s, &web.cluster, &web.name, 4, Duration::from_secs(180));
    // The new tasks receive traffic through the load balancer.
    web.wait_serving(&s, 4, Duration::from_secs(60));
    scaled_by(&s, &resource_id, 4, high, "requests");
    drop(load);

    // No more requests: RequestCountPerTarget reads 0 (ELB reports it always), AlarmLow
    // fires after 15 periods of 10 s, and the proportional answer (0) is held at the
    // minimum.
    Svc::wait_running(&s, &web.cluster, &web.name, 2, Duration::from_secs(300));
    scaled_by(&s, &resource_id, 2, low, "requests");
    assert_eq!(svc.tasks("RUNNING").len(), 2);

    // Each alarm went to ALARM and ran the policy, as its history says.
    for alarm in [high, low] {
        let states = history(&s, alarm, "StateUpdate");
        assert!(
            states.iter().any(|h| h.ends_with("to ALARM")),
            "{alarm}: {states:#?}"
        );
        let actions = history(&s, alarm, "Action");
        assert!(
            actions
                .iter()
                .any(|h| h.starts_with(&format!("Successfully executed action {policy_arn}"))),
            "{alarm}: {actions:#?}"
        );
    }
}

#[test]
fn cpu_tracking_scales_out_a_service_whose_container_burns_cpu() {
    let s = server();
    wait_instances(&s, FARGATE_POOL, 1);
    let repo = unique("burn-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let cluster = unique("burn-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    // A quarter of a vCPU (the task's 256 units, a CFS quota), all of it used.
    let td = register_fargate(
        &s,
        &unique("burn-"),
        &json!([{"name": "burn", "image": image, "essential": true,
                 "command": ["sh", "-c", "while :; do :; done"]}]),
        &json!([]),
    );
    let name = create_fargate_service(&s, &cluster, "burner-", &td, 1, "subnet-default", &[]);
    Svc::wait_running(&s, &cluster, &name, 1, Duration::from_secs(120));
    let resource_id = format!("service/{cluster}/{name}");
    aas(
        &s,
        &resource_id,
        "register-scalable-target",
        &["--min-capacity", "1", "--max-capacity", "2"],
    );
    let (_, alarms) = track(
        &s,
        &resource_id,
        "cpu",
        json!({"TargetValue": 50.0,
               "PredefinedMetricSpecification": {
                   "PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
               "DisableScaleIn": true}),
    );
    // Scale-in disabled: AlarmHigh only.
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let high = describe_alarm(&s, &alarms[0]);
    assert_eq!(
        (&high["MetricName"], &high["Statistic"], &high["Threshold"]),
        (&json!("CPUUtilization"), &json!("Average"), &json!(50.0))
    );
    Svc::wait_running(&s, &cluster, &name, 2, Duration::from_secs(180));
    let activity = scaled_by(&s, &resource_id, 2, &alarms[0], "cpu");
    // The service's CPUUtilization the alarm read: above the target.
    let reason = wait_for("the alarm's reason", Duration::from_secs(5), || {
        describe_alarm(&s, &alarms[0])["StateReason"]
            .as_str()
            .map(str::to_owned)
    });
    // ("1 datapoint [..] was greater": with missing data treated as missing, fewer
    // datapoints than the 3 to alarm suffice while the rest of the range has none.)
    assert!(
        reason.starts_with("Threshold Crossed: ")
            && reason.contains("greater than the threshold (50.0)")
            && !reason.contains("not greater"),
        "{reason} {activity:#}"
    );
}
