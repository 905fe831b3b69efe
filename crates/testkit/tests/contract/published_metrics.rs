//! The metrics Berth publishes itself, read back with GetMetricStatistics: ECS's (`AWS/ECS`)
//! from a scripted agent's telemetry (a service's task reported RUNNING, its agent's
//! PublishMetricsRequest, then the leader's publish: utilization per cluster and service,
//! reservation per cluster), and a Logs metric filter's after PutLogEvents.

use std::time::Duration;

use berth_testkit::agent::ScriptedAgent;
use berth_testkit::ecs::{self, register_task_definition, wait_for};
use berth_testkit::{TestServer, now_ms, unique};
use serde_json::json;

use crate::cloudwatch_metrics::{iso, query, texts};

/// The Average of `metric` with these dimensions over one hour around now, if any.
fn average(s: &TestServer, metric: &str, dimensions: &[(&str, &str)]) -> Option<f64> {
    let body = statistics(s, "AWS/ECS", metric, dimensions, "Average");
    if let Some(unit) = texts(&body, "Unit").first() {
        assert_eq!(unit, "Percent", "{body}");
    }
    let averages = texts(&body, "Average");
    assert!(averages.len() <= 1, "{body}");
    averages.first().map(|a| a.parse().unwrap())
}

/// GetMetricStatistics' answer (Query XML) for one period of an hour around now.
fn statistics(
    s: &TestServer,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    statistic: &str,
) -> String {
    let now = now_ms();
    let (start, end) = (iso(now - 1_800_000), iso(now + 1_800_000));
    let mut params = vec![
        ("Namespace", namespace),
        ("MetricName", metric),
        ("StartTime", start.as_str()),
        ("EndTime", end.as_str()),
        ("Period", "3600"),
        ("Statistics.member.1", statistic),
    ];
    let names: Vec<(String, String)> = (1..=dimensions.len())
        .map(|i| {
            (
                format!("Dimensions.member.{i}.Name"),
                format!("Dimensions.member.{i}.Value"),
            )
        })
        .collect();
    for ((n, v), (name, value)) in names.iter().zip(dimensions) {
        params.push((n, name));
        params.push((v, value));
    }
    let (status, body) = query(s, "GetMetricStatistics", &params);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_services_telemetry_becomes_its_utilization_and_the_clusters_reservation() {
    let s = TestServer::start_with(|config| config.metrics_period = Duration::from_secs(1));
    let cluster = unique("ecsm-");
    ecs::create_cluster(&s, &cluster);
    let instance = ecs::instance(1024, 2048).register_arn(&s, &cluster);
    let family = unique("burn-");
    register_task_definition(
        &s,
        json!({"family": family, "containerDefinitions": [
            {"name": "burn", "image": "burn:1", "cpu": 256, "memory": 512, "essential": true}]}),
    );
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "burner", "taskDefinition": family,
               "desiredCount": 1}),
    )
    .ok();
    let mut task = String::new();
    wait_for("the service's task", Duration::from_secs(20), || {
        let listed = s
            .ecs(
                "ListTasks",
                json!({"cluster": cluster, "serviceName": "burner"}),
            )
            .ok();
        match listed["taskArns"][0].as_str() {
            Some(arn) => {
                task = arn.to_owned();
                true
            }
            None => false,
        }
    });
    ecs::submit_task_state(&s, &cluster, &task, "RUNNING");

    // 12.5 % of the instance's 1,024 units is 128 of the task's 256; 256 MiB of its 512.
    let mut tcs = ScriptedAgent::tcs(&s, &cluster, &instance).unwrap();
    tcs.send(&json!({
        "type": "PublishMetricsRequest",
        "message": {
            "metadata": {"cluster": cluster, "containerInstance": instance, "fin": true,
                         "idle": false, "messageId": "m-1"},
            "taskMetrics": [{"taskArn": task, "containerMetrics": [{
                "containerName": "burn",
                "cpuStatsSet": {"min": 10.0, "max": 15.0, "sampleCount": 2, "sum": 25.0},
                "memoryStatsSet": {"min": 256.0, "max": 256.0, "sampleCount": 1, "sum": 256.0}
            }]}],
            "timestamp": (now_ms() / 1000) as f64
        }
    }));
    let ack = tcs.recv(Duration::from_secs(5)).expect("an ack");
    assert_eq!(ack["type"], "AckPublishMetric");

    let service = [("ClusterName", cluster.as_str()), ("ServiceName", "burner")];
    let mut cpu = None;
    wait_for(
        "the service's CPUUtilization",
        Duration::from_secs(30),
        || {
            cpu = average(&s, "CPUUtilization", &service);
            cpu.is_some()
        },
    );
    assert_eq!(cpu, Some(50.0));
    assert_eq!(average(&s, "MemoryUtilization", &service), Some(50.0));
    let by_cluster = [("ClusterName", cluster.as_str())];
    // The task's 256 units of the instance's 1,024; 512 MiB of 2,048.
    assert_eq!(average(&s, "CPUReservation", &by_cluster), Some(25.0));
    assert_eq!(average(&s, "MemoryReservation", &by_cluster), Some(25.0));
    // Its 128 units used of the 1,024 the cluster's instance registered.
    assert_eq!(average(&s, "CPUUtilization", &by_cluster), Some(12.5));
    assert_eq!(average(&s, "MemoryUtilization", &by_cluster), Some(12.5));
    // Nothing is published for a cluster without running tasks.
    let idle = unique("idle-");
    ecs::create_cluster(&s, &idle);
    assert_eq!(
        average(&s, "CPUReservation", &[("ClusterName", idle.as_str())]),
        None
    );
}

#[test]
fn a_metric_filter_emits_its_metric_for_each_matching_event() {
    let s = TestServer::start();
    let group = unique("/app/");
    s.logs("CreateLogGroup", json!({"logGroupName": group}))
        .ok();
    s.logs(
        "CreateLogStream",
        json!({"logGroupName": group, "logStreamName": "web"}),
    )
    .ok();
    let namespace = unique("App");
    s.logs(
        "PutMetricFilter",
        json!({"logGroupName": group, "filterName": "latency",
               "filterPattern": "{ $.latency > 0 }",
               "metricTransformations": [{"metricName": "Latency", "metricNamespace": namespace,
                   "metricValue": "$.latency", "dimensions": {"Path": "$.path"},
                   "unit": "Milliseconds"}]}),
    )
    .ok();
    let t = now_ms();
    s.logs(
        "PutLogEvents",
        json!({"logGroupName": group, "logStreamName": "web", "logEvents": [
            {"timestamp": t, "message": "{\"latency\": 20, \"path\": \"/a\"}"},
            {"timestamp": t, "message": "{\"latency\": 40, \"path\": \"/a\"}"},
            {"timestamp": t, "message": "{\"latency\": 0, \"path\": \"/a\"}"},
            {"timestamp": t, "message": "{\"latency\": 7, \"path\": \"/b\"}"},
            {"timestamp": t, "message": "not json"}
        ]}),
    )
    .ok();
    // Emitted with the batch: no wait.
    let body = statistics(&s, &namespace, "Latency", &[("Path", "/a")], "Sum");
    assert_eq!(texts(&body, "Sum"), ["60"], "{body}");
    assert_eq!(texts(&body, "Unit"), ["Milliseconds"], "{body}");
    let body = statistics(&s, &namespace, "Latency", &[("Path", "/a")], "SampleCount");
    assert_eq!(texts(&body, "SampleCount"), ["2"], "{body}");
    let body = statistics(&s, &namespace, "Latency", &[("Path", "/b")], "Maximum");
    assert_eq!(texts(&body, "Maximum"), ["7"], "{body}");
}
