//! ECS's CloudWatch metrics (`AWS/ECS`) end to end: `berth up --with-instance` with short
//! metric periods, a service whose container burns CPU in a busy loop on the built-in
//! instance, its agent's telemetry, and `aws cloudwatch get-metric-data` showing the
//! service's CPUUtilization well above 0 and the cluster's CPUReservation equal to the
//! task's CPU over the instance's registered CPU; and the same busy service on Fargate,
//! counted in its own cluster by service only.

use std::collections::HashMap;
use std::time::Duration;

use berth_e2e::docker_agent::{register, register_fargate, wait_for, wait_instances};
use berth_e2e::{BerthServer, ServerOptions, ok_json, unique};
use berth_testkit::now_ms;
use serde_json::{Value, json};

fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = berth_testkit::sigv4::utc_parts(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Polls get-metric-data with `queries` (from two minutes back) until the `cpu` query
/// shows a minute above 50 % and `also` holds; every query's values by id.
fn wait_busy(
    s: &BerthServer,
    queries: &[Value],
    also: impl Fn(&HashMap<String, Vec<f64>>) -> bool,
) -> HashMap<String, Vec<f64>> {
    let start = now_ms() - 120_000;
    let queries = Value::from(queries.to_vec()).to_string();
    // The agent publishes its telemetry every 20 s; the leader every 2 s from the latest.
    wait_for(
        "AWS/ECS metrics of the busy service",
        Duration::from_secs(150),
        || {
            let (from, to) = (iso(start), iso(now_ms() + 120_000));
            let v = ok_json(&s.aws(&[
                "cloudwatch",
                "get-metric-data",
                "--metric-data-queries",
                &queries,
                "--start-time",
                &from,
                "--end-time",
                &to,
            ]));
            let values: HashMap<String, Vec<f64>> = v["MetricDataResults"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let id = r["Id"].as_str().unwrap().to_owned();
                    let values = r["Values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(Value::as_f64)
                        .collect();
                    (id, values)
                })
                .collect();
            // Wait for a minute whose samples came from the busy loop.
            let busy = values["cpu"].iter().any(|c| *c > 50.0);
            (busy && also(&values)).then_some(values)
        },
    )
}

/// The query of one metric's Average for get-metric-data.
fn query(id: &str, metric: &str, dimensions: &[(&str, &str)]) -> Value {
    json!({"Id": id, "MetricStat": {
        "Metric": {"Namespace": "AWS/ECS", "MetricName": metric,
                   "Dimensions": dimensions.iter()
                       .map(|(n, v)| json!({"Name": n, "Value": v}))
                       .collect::<Vec<_>>()},
        "Period": 60, "Stat": "Average"}})
}

#[test]
fn a_busy_services_cpu_utilization_and_the_clusters_reservation() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        args: vec!["--with-instance".into(), "--no-fargate".into()],
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), "2".into())],
        ..ServerOptions::default()
    });
    let instances = wait_instances(&s, "default", 1);
    let registered_cpu = instances[0]["registeredResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "CPU")
        .and_then(|r| r["integerValue"].as_f64())
        .expect("the instance's registered CPU");
    let repo = unique("burn-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let family = unique("burn-");
    register(
        &s,
        &family,
        json!([{"name": "burn", "image": image, "cpu": 256, "memory": 64, "essential": true,
                "command": ["sh", "-c", "while :; do :; done"]}]),
    );
    let service = unique("burner-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        "default",
        "--service-name",
        &service,
        "--task-definition",
        &family,
        "--desired-count",
        "1",
    ]));
    let queries = [
        query(
            "cpu",
            "CPUUtilization",
            &[("ClusterName", "default"), ("ServiceName", &service)],
        ),
        query("reserved", "CPUReservation", &[("ClusterName", "default")]),
    ];
    let values = wait_busy(&s, &queries, |v| !v["reserved"].is_empty());
    let (cpu, reserved) = (&values["cpu"], &values["reserved"]);
    // A busy loop takes a whole core: far more than the quarter of a vCPU it reserved.
    assert!(cpu.iter().any(|c| *c > 50.0), "{cpu:?}");
    let expected = 256.0 / registered_cpu * 100.0;
    for r in reserved {
        assert!((r - expected).abs() < 1e-6, "{reserved:?} vs {expected}");
    }
}

#[test]
fn a_busy_fargate_service_counts_for_its_service_only() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), "2".into())],
        ..ServerOptions::default()
    });
    wait_instances(&s, "berth-fargate-pool", 1);
    let cluster = unique("fgm-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let repo = unique("burn-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let family = unique("burn-");
    register_fargate(
        &s,
        &family,
        &json!([{"name": "burn", "image": image, "essential": true,
                 "command": ["sh", "-c", "while :; do :; done"]}]),
        &json!([]),
    );
    let service = unique("burner-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--task-definition",
        &family,
        "--desired-count",
        "1",
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default]}",
    ]));
    let queries = [
        query(
            "cpu",
            "CPUUtilization",
            &[("ClusterName", &cluster), ("ServiceName", &service)],
        ),
        query("reserved", "CPUReservation", &[("ClusterName", &cluster)]),
        query("clustercpu", "CPUUtilization", &[("ClusterName", &cluster)]),
    ];
    // A whole core for a task of 256 units: far above 50 %, in the user's cluster.
    let values = wait_busy(&s, &queries, |_| true);
    assert!(values["cpu"].iter().any(|c| *c > 50.0), "{values:?}");
    // Cluster-level metrics are for EC2 instances only, as ECS.
    assert_eq!(values["reserved"], Vec::<f64>::new(), "{values:?}");
    assert_eq!(values["clustercpu"], Vec::<f64>::new(), "{values:?}");
}
