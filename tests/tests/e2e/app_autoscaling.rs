//! Application Auto Scaling on `berth up` with the real `aws` CLI and Docker: a Fargate
//! service registered as a scalable target, a scheduled action `at(...)` a few seconds ahead
//! raising its MinCapacity to 3, the leader running it, the service reaching 3 RUNNING
//! tasks, and the activities `describe-scaling-activities` shows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_e2e::docker_agent::{register_fargate, wait_instances};
use berth_e2e::service::Svc;
use berth_e2e::{BerthServer, ServerOptions, ok_json, unique};
use serde_json::{Value, json};

const POOL: &str = "berth-fargate-pool";

/// `yyyy-mm-ddThh:mm:ss` (UTC) of `secs` since the epoch.
fn datetime(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 {
        yoe + era * 400 + 1
    } else {
        yoe + era * 400
    };
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// `berth up`, and a Fargate service of one task in a new cluster: (cluster, service).
fn fargate_service(s: &BerthServer) -> (String, String) {
    wait_instances(s, POOL, 1);
    let repo = unique("aas-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let cluster = unique("aas-");
    ok_json(&s.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &cluster,
        "--capacity-providers",
        "FARGATE",
    ]));
    let td = register_fargate(
        s,
        &unique("aas-"),
        &json!([{"name": "app", "image": image, "essential": true,
                 "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]}]),
        &json!([]),
    );
    let name = unique("web-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
        "--task-definition",
        &td,
        "--desired-count",
        "1",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default]}",
    ]));
    (cluster, name)
}

/// Waits for the service to want and run `count` tasks.
fn wait_running<'a>(s: &'a BerthServer, cluster: &str, name: &str, count: i64) -> Svc<'a> {
    Svc::wait_running(s, cluster, name, count, Duration::from_secs(120))
}

#[test]
fn a_scheduled_action_scales_a_service_out_to_its_new_minimum() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        ..ServerOptions::default()
    });
    let (cluster, name) = fargate_service(&s);
    let resource_id = format!("service/{cluster}/{name}");
    let target_args = [
        "--service-namespace",
        "ecs",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--resource-id",
        &resource_id,
    ];
    let aas = |op: &str, extra: &[&str]| -> Value {
        let mut args = vec!["application-autoscaling", op];
        args.extend_from_slice(&target_args);
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args))
    };
    let registered = aas(
        "register-scalable-target",
        &["--min-capacity", "1", "--max-capacity", "5"],
    );
    assert!(
        registered["ScalableTargetARN"]
            .as_str()
            .unwrap()
            .contains(":scalable-target/"),
        "{registered:#}"
    );
    let described = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "ecs",
        "--resource-ids",
        &resource_id,
    ]));
    assert_eq!(described["ScalableTargets"][0]["MinCapacity"], 1);
    assert_eq!(described["ScalableTargets"][0]["MaxCapacity"], 5);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = format!("at({})", datetime(now + 5));
    aas(
        "put-scheduled-action",
        &[
            "--scheduled-action-name",
            "scale-out",
            "--schedule",
            &at,
            "--scalable-target-action",
            "MinCapacity=3,MaxCapacity=5",
        ],
    );
    let actions = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scheduled-actions",
        "--service-namespace",
        "ecs",
        "--resource-id",
        &resource_id,
    ]));
    assert_eq!(actions["ScheduledActions"][0]["Schedule"], at.as_str());
    assert_eq!(
        actions["ScheduledActions"][0]["ScalableTargetAction"],
        json!({"MinCapacity": 3, "MaxCapacity": 5})
    );

    // The leader runs it once due; ECS's scheduler starts the tasks.
    let svc = wait_running(&s, &cluster, &name, 3);
    let tasks = svc.tasks("RUNNING");
    assert_eq!(tasks.len(), 3);
    assert!(
        tasks.iter().all(|t| t["lastStatus"] == "RUNNING"),
        "{tasks:#?}"
    );

    let activities = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scaling-activities",
        "--service-namespace",
        "ecs",
        "--resource-id",
        &resource_id,
    ]));
    let list = activities["ScalingActivities"].as_array().unwrap();
    let range = list
        .iter()
        .find(|a| a["Cause"] == "scheduled action name scale-out was triggered")
        .unwrap_or_else(|| panic!("{activities:#}"));
    assert_eq!(
        range["Description"],
        "Setting min capacity to 3 and max capacity to 5"
    );
    assert_eq!(range["StatusCode"], "Successful");
    let desired = list
        .iter()
        .find(|a| a["Description"] == "Setting desired count to 3.")
        .unwrap_or_else(|| panic!("{activities:#}"));
    assert_eq!(desired["StatusCode"], "Successful");
    assert_eq!(desired["Cause"], "minimum capacity was set to 3");
    assert_eq!(
        desired["StatusMessage"],
        "Successfully set desired count to 3. Change successfully fulfilled by ecs."
    );
    let target = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "ecs",
        "--resource-ids",
        &resource_id,
    ]));
    assert_eq!(target["ScalableTargets"][0]["MinCapacity"], 3);

    // Deregistering takes the scheduled action along.
    aas("deregister-scalable-target", &[]);
    let left = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scheduled-actions",
        "--service-namespace",
        "ecs",
    ]));
    assert_eq!(left["ScheduledActions"], json!([]));
}

/// Step scaling on a custom metric, through the aws CLI on `berth up`: a step policy adding
/// two tasks, a high-resolution alarm put with put-metric-alarm naming it, a backlog put
/// with put-metric-data; the alarm goes to ALARM, runs the policy, and the service runs 3
/// tasks on Docker; the activity and the alarm's history say why.
#[test]
fn a_step_policy_scales_a_service_out_when_its_custom_metric_alarms() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        ..ServerOptions::default()
    });
    let (cluster, name) = fargate_service(&s);
    let resource_id = format!("service/{cluster}/{name}");
    let target = [
        "--service-namespace",
        "ecs",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--resource-id",
        resource_id.as_str(),
    ];
    let aas = |op: &str, extra: &[&str]| -> Value {
        let mut args = vec!["application-autoscaling", op];
        args.extend_from_slice(&target);
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args))
    };
    aas(
        "register-scalable-target",
        &["--min-capacity", "1", "--max-capacity", "4"],
    );
    let policy = aas(
        "put-scaling-policy",
        &[
            "--policy-name",
            "backlog-burst",
            "--policy-type",
            "StepScaling",
            "--step-scaling-policy-configuration",
            r#"{"AdjustmentType": "ChangeInCapacity", "Cooldown": 600,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]}"#,
        ],
    );
    let policy_arn = policy["PolicyARN"].as_str().unwrap().to_string();
    let namespace = unique("Jobs");
    let alarm = unique("backlog-");
    ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-alarm",
        "--alarm-name",
        &alarm,
        "--namespace",
        &namespace,
        "--metric-name",
        "Backlog",
        "--statistic",
        "Maximum",
        "--period",
        "10",
        "--evaluation-periods",
        "1",
        "--threshold",
        "100",
        "--comparison-operator",
        "GreaterThanOrEqualToThreshold",
        "--alarm-actions",
        &policy_arn,
    ]));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let data: Vec<Value> = [12, 3]
        .iter()
        .map(|ago| {
            json!({"MetricName": "Backlog", "Timestamp": now - ago, "Value": 400.0,
                   "StorageResolution": 1})
        })
        .collect();
    ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        &namespace,
        "--metric-data",
        &Value::Array(data).to_string(),
    ]));
    let svc = wait_running(&s, &cluster, &name, 3);
    assert_eq!(svc.tasks("RUNNING").len(), 3);
    let activities = ok_json(&s.aws(&[
        "application-autoscaling",
        "describe-scaling-activities",
        "--service-namespace",
        "ecs",
        "--resource-id",
        &resource_id,
    ]));
    let scaled = activities["ScalingActivities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Description"] == "Setting desired count to 3.")
        .unwrap_or_else(|| panic!("{activities:#}"))
        .clone();
    assert!(
        scaled["Cause"].as_str().unwrap().contains(&format!(
            "monitor alarm {alarm} in state ALARM triggered policy backlog-burst"
        )),
        "{scaled:#}"
    );
    assert_eq!(scaled["StatusCode"], "Successful");
    let history = ok_json(&s.aws(&[
        "cloudwatch",
        "describe-alarm-history",
        "--alarm-name",
        &alarm,
        "--history-item-type",
        "Action",
    ]));
    assert!(
        history["AlarmHistoryItems"][0]["HistorySummary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Successfully executed action {policy_arn}")),
        "{history:#}"
    );
}
