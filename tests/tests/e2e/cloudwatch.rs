//! CloudWatch metrics through the real `aws cloudwatch` CLI (which speaks AWS JSON 1.0)
//! against the real binary: put-metric-data with dimensions, units, values and counts and
//! statistic sets, get-metric-statistics with percentiles, list-metrics with filters,
//! get-metric-data with metric math, AWS's error codes, and every acknowledged datum there
//! after a `kill -9` and a restart.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of, unique};
use berth_testkit::now_ms;
use serde_json::{Value, json};

/// `2026-12-07T10:00:00Z`, as the CLI takes it.
fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = berth_testkit::sigv4::utc_parts(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A timestamp as the CLI prints one from CloudWatch's JSON answer: epoch seconds.
fn shown(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn statistics(s: &BerthServer, namespace: &str, t0: i64) -> Value {
    ok_json(&s.aws(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        namespace,
        "--metric-name",
        "Latency",
        "--dimensions",
        "Name=Service,Value=web",
        "--start-time",
        &iso(t0),
        "--end-time",
        &iso(t0 + 180_000),
        "--period",
        "60",
        "--statistics",
        "Sum",
        "SampleCount",
        "Average",
        "Minimum",
        "Maximum",
        "--extended-statistics",
        "p90",
    ]))
}

#[test]
fn metrics_through_the_cli() {
    let mut s = BerthServer::start();
    let namespace = unique("Shop");
    let t0 = (now_ms() / 60_000 - 10) * 60_000;
    let data = json!([
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}],
         "Timestamp": iso(t0 + 1_000), "Value": 100.0, "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}],
         "Timestamp": iso(t0 + 30_000), "Values": [10.0, 20.0, 300.0], "Counts": [5.0, 3.0, 1.0],
         "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}],
         "Timestamp": iso(t0 + 120_000),
         "StatisticValues": {"SampleCount": 2.0, "Sum": 50.0, "Minimum": 20.0, "Maximum": 30.0},
         "Unit": "Milliseconds"},
        {"MetricName": "Requests", "Dimensions": [{"Name": "Service", "Value": "web"}],
         "Timestamp": iso(t0 + 1_000), "Value": 11.0, "Unit": "Count"},
        {"MetricName": "Requests", "Dimensions": [{"Name": "Service", "Value": "api"}],
         "Timestamp": iso(t0 + 2_000), "Value": 5.0, "Unit": "Count"}
    ]);
    let put = ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        &namespace,
        "--metric-data",
        &data.to_string(),
    ]));
    assert_eq!(put, Value::Null);
    // The shorthand form of one datum.
    ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        &namespace,
        "--metric-name",
        "Requests",
        "--dimensions",
        "Service=web",
        "--timestamp",
        &iso(t0 + 2_000),
        "--value",
        "9",
        "--unit",
        "Count",
    ]));

    let expected = json!({
        "Label": "Latency",
        "Datapoints": [
            {"Timestamp": shown(t0), "SampleCount": 10.0, "Average": 51.0, "Sum": 510.0,
             "Minimum": 10.0, "Maximum": 300.0, "Unit": "Milliseconds",
             "ExtendedStatistics": {"p90": 100.0}},
            {"Timestamp": shown(t0 + 120_000), "SampleCount": 2.0, "Average": 25.0, "Sum": 50.0,
             "Minimum": 20.0, "Maximum": 30.0, "Unit": "Milliseconds"}
        ]
    });
    assert_eq!(statistics(&s, &namespace, t0), expected);

    let listed = ok_json(&s.aws(&[
        "cloudwatch",
        "list-metrics",
        "--namespace",
        &namespace,
        "--metric-name",
        "Requests",
    ]));
    let mut services: Vec<String> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Dimensions"][0]["Value"].as_str().unwrap().to_string())
        .collect();
    services.sort();
    assert_eq!(services, ["api", "web"]);
    let web = ok_json(&s.aws(&[
        "cloudwatch",
        "list-metrics",
        "--namespace",
        &namespace,
        "--dimensions",
        "Name=Service,Value=web",
    ]));
    assert_eq!(web["Metrics"].as_array().unwrap().len(), 2);

    let queries = json!([
        {"Id": "web", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Requests",
          "Dimensions": [{"Name": "Service", "Value": "web"}]}, "Period": 60, "Stat": "Sum"}},
        {"Id": "api", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Requests",
          "Dimensions": [{"Name": "Service", "Value": "api"}]}, "Period": 60, "Stat": "Sum"}},
        {"Id": "total", "Expression": "SUM(METRICS())", "Label": "All requests"},
        {"Id": "share", "Expression": "100 * web / total"}
    ]);
    let data = ok_json(&s.aws(&[
        "cloudwatch",
        "get-metric-data",
        "--metric-data-queries",
        &queries.to_string(),
        "--start-time",
        &iso(t0),
        "--end-time",
        &iso(t0 + 180_000),
    ]));
    assert_eq!(
        data["MetricDataResults"],
        json!([
            {"Id": "total", "Label": "All requests", "Timestamps": [shown(t0)], "Values": [25.0],
             "StatusCode": "Complete"},
            {"Id": "share", "Label": "share", "Timestamps": [shown(t0)], "Values": [80.0],
             "StatusCode": "Complete"}
        ]),
        "{data}"
    );

    // AWS's codes, as the CLI reads them from the query-compatible header.
    let refused = s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        "AWS/EC2",
        "--metric-name",
        "CPUUtilization",
        "--value",
        "1",
    ]);
    assert_aws_error(&refused, "InvalidParameterValue");
    let refused = s.aws(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        &namespace,
        "--metric-name",
        "Latency",
        "--start-time",
        &iso(t0),
        "--end-time",
        &iso(t0 + 180_000),
        "--period",
        "45",
        "--statistics",
        "Sum",
    ]);
    assert_aws_error(&refused, "InvalidParameterValue");

    // Acknowledged data survives kill -9.
    s.restart();
    assert_eq!(statistics(&s, &namespace, t0), expected);
}

/// A put of 600 metrics is over botocore's 10 KB threshold, so the CLI sends it gzipped;
/// list-metrics pages through them (500 a page), and high-resolution data is read back by
/// the second.
#[test]
fn a_large_compressed_put_paged_listing_and_high_resolution() {
    let s = BerthServer::start();
    let namespace = unique("Fleet");
    let now = now_ms() / 1000 * 1000;
    let data: Vec<Value> = (0..600)
        .map(|i| {
            json!({"MetricName": "CPU", "Dimensions": [{"Name": "Host", "Value": format!("host-{i:03}")}],
                   "Timestamp": iso(now - 30_000), "Value": i as f64, "Unit": "Percent"})
        })
        .collect();
    let data = Value::Array(data).to_string();
    assert!(data.len() > 10 * 1024, "{}", data.len());
    let put = s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        &namespace,
        "--metric-data",
        &data,
        "--debug",
    ]);
    ok_json(&put);
    // The CLI's request log names the encoding it sent.
    assert!(
        stderr_of(&put).contains("'Content-Encoding': b'gzip'"),
        "not compressed"
    );
    let listed = ok_json(&s.aws(&["cloudwatch", "list-metrics", "--namespace", &namespace]));
    assert_eq!(listed["Metrics"].as_array().unwrap().len(), 600);

    let high: Vec<Value> = [(-9_000, 1.0), (-8_000, 2.0), (-8_500, 4.0), (-2_000, 8.0)]
        .iter()
        .map(|(offset, v)| {
            json!({"MetricName": "Load", "Timestamp": iso(now + offset), "Value": v,
                   "StorageResolution": 1})
        })
        .collect();
    ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        &namespace,
        "--metric-data",
        &Value::Array(high).to_string(),
    ]));
    let points = ok_json(&s.aws(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        &namespace,
        "--metric-name",
        "Load",
        "--start-time",
        &iso(now - 10_000),
        "--end-time",
        &iso(now),
        "--period",
        "5",
        "--statistics",
        "Sum",
        "Maximum",
    ]));
    let mut seen: Vec<(f64, f64, f64)> = points["Datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Timestamp"].as_f64().unwrap(),
                p["Sum"].as_f64().unwrap(),
                p["Maximum"].as_f64().unwrap(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.total_cmp(&b.0));
    let start = (now - 10_000) as f64 / 1000.0;
    assert_eq!(seen, [(start, 7.0, 4.0), (start + 5.0, 8.0, 8.0)]);
}

/// A target on 127.0.0.1 answering every request `200 ok` (`/fail`: 500), kept alive.
fn tiny_target() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let fail = line.contains(" /fail ");
                    // The rest of the head.
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                    }
                    let answer: &[u8] = if fail {
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nfail"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    };
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn an_albs_traffic_is_published_as_aws_application_elb_metrics() {
    // One-second periods (high resolution), so the test need not wait a minute.
    let s = BerthServer::start_with(berth_e2e::ServerOptions {
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), "1".into())],
        ..Default::default()
    });
    let target = tiny_target();
    let alb = berth_e2e::network::IpAlb::create(&s, &[target.to_string()], None);
    let (lb_arn, dns, tg_arn) = (alb.arn, alb.dns, alb.target_group);
    let start = now_ms() - 60_000;
    // 20 answered 200 and 5 answered 500, through the load balancer.
    let get = |path: &str| {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg(format!("http://{dns}{path}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while get("/") != "200" {
        assert!(
            std::time::Instant::now() < deadline,
            "the load balancer never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for _ in 0..19 {
        assert_eq!(get("/"), "200");
    }
    for _ in 0..5 {
        assert_eq!(get("/fail"), "500");
    }
    let lb_dimension = format!(
        "Name=LoadBalancer,Value={}",
        lb_arn.split_once(":loadbalancer/").unwrap().1
    );
    let tg_dimension = format!(
        "Name=TargetGroup,Value={}",
        tg_arn.rsplit_once(':').unwrap().1
    );
    let sum = |metric: &str, dimensions: &[&str]| -> f64 {
        let mut args = vec![
            "cloudwatch",
            "get-metric-statistics",
            "--namespace",
            "AWS/ApplicationELB",
            "--metric-name",
            metric,
            "--period",
            "3600",
            "--statistics",
            "Sum",
        ];
        let (from, to) = (iso(start), iso(now_ms() + 60_000));
        args.extend_from_slice(&["--start-time", &from, "--end-time", &to, "--dimensions"]);
        args.extend_from_slice(dimensions);
        let v = ok_json(&s.aws(&args));
        v["Datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Sum"].as_f64().unwrap())
            .sum()
    };
    // Published within a period or two: every request counted once, by class.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sum("RequestCount", &[&lb_dimension]) < 25.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "RequestCount never reached 25"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(sum("RequestCount", &[&lb_dimension]), 25.0);
    let both = [tg_dimension.as_str(), lb_dimension.as_str()];
    assert_eq!(sum("RequestCount", &both), 25.0);
    assert_eq!(sum("HTTPCode_Target_2XX_Count", &both), 20.0);
    assert_eq!(sum("HTTPCode_Target_5XX_Count", &both), 5.0);
    // TargetResponseTime is published as values and counts: its percentiles are there,
    // one sample per answer.
    let (from, to) = (iso(start), iso(now_ms() + 60_000));
    let times = ok_json(&s.aws(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AWS/ApplicationELB",
        "--metric-name",
        "TargetResponseTime",
        "--period",
        "3600",
        "--extended-statistics",
        "p50",
        "p99",
        "--start-time",
        &from,
        "--end-time",
        &to,
        "--dimensions",
        &tg_dimension,
        &lb_dimension,
    ]));
    let points = times["Datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{times:#}");
    let (p50, p99) = (
        points[0]["ExtendedStatistics"]["p50"].as_f64().unwrap(),
        points[0]["ExtendedStatistics"]["p99"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 < 5.0, "{times:#}");
    assert_eq!(points[0]["Unit"], "Seconds", "{times:#}");
    let data = ok_json(
        &s.aws(&[
            "cloudwatch",
            "get-metric-data",
            "--metric-data-queries",
            &json!([{"Id": "p", "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB",
            "MetricName": "TargetResponseTime", "Dimensions": [
                {"Name": "TargetGroup", "Value": tg_arn.rsplit_once(':').unwrap().1},
                {"Name": "LoadBalancer",
                 "Value": lb_arn.split_once(":loadbalancer/").unwrap().1}]},
            "Period": 3600, "Stat": "p99"}}])
            .to_string(),
            "--start-time",
            &from,
            "--end-time",
            &to,
        ]),
    );
    assert_eq!(
        data["MetricDataResults"][0]["Values"][0].as_f64(),
        Some(p99),
        "{data:#}"
    );
    let listed = ok_json(&s.aws(&[
        "cloudwatch",
        "list-metrics",
        "--namespace",
        "AWS/ApplicationELB",
        "--metric-name",
        "HealthyHostCount",
    ]));
    assert_eq!(listed["Metrics"].as_array().unwrap().len(), 1, "{listed:#}");
}

/// GetMetricData against what a real load generator sent: `wrk` through an ALB for 3 s
/// (Berth's metrics every second); the load balancer's RequestCount, the target group's
/// RequestCount, RequestCountPerTarget (one target) and HTTPCode_Target_2XX_Count each add
/// up to the requests wrk counted, plus at most the ones its connections still had open
/// when it stopped.
#[test]
fn get_metric_data_counts_what_wrk_sent_through_an_alb() {
    use berth_e2e::web::{http_get, wrk};
    let s = BerthServer::start_with(berth_e2e::ServerOptions {
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), "1".into())],
        ..Default::default()
    });
    let alb = berth_e2e::network::IpAlb::create(&s, &[tiny_target().to_string()], None);
    let address: std::net::SocketAddr = format!("{}:80", alb.dns).parse().unwrap();
    berth_e2e::docker_agent::wait_for(
        "the load balancer's first answer",
        std::time::Duration::from_secs(60),
        || matches!(http_get(address, "/"), Ok((200, _))).then_some(()),
    );
    // The probes above fall in earlier one-second periods than the ones read.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let start = now_ms() / 1000 * 1000;
    const CONNECTIONS: u64 = 2;
    let sent = wrk(&format!("http://{address}/"), CONNECTIONS as u32, 3);
    assert_eq!(sent.non_2xx_3xx, 0, "{sent:?}");
    assert!(sent.requests > 100, "{sent:?}");
    let lb = (
        "LoadBalancer",
        alb.arn.split_once(":loadbalancer/").unwrap().1,
    );
    let tg = ("TargetGroup", alb.target_group.rsplit_once(':').unwrap().1);
    let query = |id: &str, metric: &str, dimensions: &[(&str, &str)]| {
        json!({"Id": id, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB",
            "MetricName": metric,
            "Dimensions": dimensions.iter()
                .map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>()},
            "Period": 1, "Stat": "Sum"}})
    };
    let queries = json!([
        query("lb", "RequestCount", &[lb]),
        query("tg", "RequestCount", &[tg, lb]),
        query("pertarget", "RequestCountPerTarget", &[tg]),
        query("ok", "HTTPCode_Target_2XX_Count", &[tg, lb]),
    ])
    .to_string();
    let totals = || -> std::collections::HashMap<String, f64> {
        let v = ok_json(&s.aws(&[
            "cloudwatch",
            "get-metric-data",
            "--metric-data-queries",
            &queries,
            "--start-time",
            &iso(start),
            "--end-time",
            &iso(now_ms() + 60_000),
        ]));
        v["MetricDataResults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let values = r["Values"].as_array().unwrap();
                (
                    r["Id"].as_str().unwrap().to_owned(),
                    values.iter().filter_map(Value::as_f64).sum(),
                )
            })
            .collect()
    };
    // Published within a period or two of the last request.
    berth_e2e::docker_agent::wait_for(
        "the requests wrk sent in RequestCount",
        std::time::Duration::from_secs(30),
        || (totals()["lb"] >= sent.requests as f64).then_some(()),
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let got = totals();
    let counted = got["lb"];
    assert!(
        counted >= sent.requests as f64 && counted <= (sent.requests + CONNECTIONS) as f64,
        "{got:?} vs {sent:?}"
    );
    for id in ["tg", "pertarget", "ok"] {
        assert_eq!(got[id], counted, "{id}: {got:?}");
    }
}

fn alarm_state(s: &BerthServer, name: &str) -> Value {
    let found = ok_json(&s.aws(&["cloudwatch", "describe-alarms", "--alarm-names", name]));
    found["MetricAlarms"][0].clone()
}

/// An alarm through the CLI: put on a high-resolution metric, moved to ALARM by the
/// evaluator when the data put breaches, its history, set by hand, kept over a `kill -9`,
/// deleted.
#[test]
fn an_alarm_through_the_cli() {
    let mut s = BerthServer::start();
    let namespace = unique("Queue");
    let name = unique("backlog-high");
    ok_json(&s.aws(&[
        "cloudwatch",
        "put-metric-alarm",
        "--alarm-name",
        &name,
        "--namespace",
        &namespace,
        "--metric-name",
        "Backlog",
        "--dimensions",
        "Name=Queue,Value=jobs",
        "--statistic",
        "Average",
        "--period",
        "10",
        "--evaluation-periods",
        "2",
        "--threshold",
        "100",
        "--comparison-operator",
        "GreaterThanOrEqualToThreshold",
        "--alarm-actions",
        "arn:aws:sns:us-east-1:000000000000:ops",
    ]));
    let a = alarm_state(&s, &name);
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA", "{a}");
    assert_eq!(a["Threshold"], 100.0);
    // A backlog of 150 over the last half minute and the next minute, at high resolution
    // (so the evaluation after a slow restart below still finds it breaching).
    let now = now_ms();
    let data: Vec<Value> = (-6..=4)
        .map(|i| {
            json!({"MetricName": "Backlog", "Dimensions": [{"Name": "Queue", "Value": "jobs"}],
                "Timestamp": iso(now - i * 10_000 + 2_000), "Value": 150.0, "StorageResolution": 1})
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let moved = loop {
        let a = alarm_state(&s, &name);
        if a["StateValue"] == "ALARM" || std::time::Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(moved["StateValue"], "ALARM", "{moved}");
    assert!(
        moved["StateReason"]
            .as_str()
            .unwrap()
            .contains("greater than or equal to the threshold (100.0)"),
        "{moved}"
    );
    let for_metric = ok_json(&s.aws(&[
        "cloudwatch",
        "describe-alarms-for-metric",
        "--namespace",
        &namespace,
        "--metric-name",
        "Backlog",
        "--dimensions",
        "Name=Queue,Value=jobs",
    ]));
    assert_eq!(for_metric["MetricAlarms"][0]["AlarmName"], name.as_str());
    // Acknowledged: the alarm, its state and its history survive kill -9.
    s.restart();
    assert_eq!(alarm_state(&s, &name)["StateValue"], "ALARM");
    let history = ok_json(&s.aws(&[
        "cloudwatch",
        "describe-alarm-history",
        "--alarm-name",
        &name,
        "--history-item-type",
        "StateUpdate",
    ]));
    assert_eq!(
        history["AlarmHistoryItems"][0]["HistorySummary"],
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "{history}"
    );
    ok_json(&s.aws(&[
        "cloudwatch",
        "disable-alarm-actions",
        "--alarm-names",
        &name,
    ]));
    ok_json(&s.aws(&[
        "cloudwatch",
        "set-alarm-state",
        "--alarm-name",
        &name,
        "--state-value",
        "OK",
        "--state-reason",
        "drained by hand",
    ]));
    // The state set holds until the next evaluation (which, the data having aged out, may
    // already have moved it on): the history shows the change by hand.
    assert_eq!(alarm_state(&s, &name)["ActionsEnabled"], false);
    let history = ok_json(&s.aws(&[
        "cloudwatch",
        "describe-alarm-history",
        "--alarm-name",
        &name,
        "--history-item-type",
        "StateUpdate",
        "--scan-by",
        "TimestampAscending",
    ]));
    let by_hand = history["AlarmHistoryItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["HistorySummary"] == "Alarm updated from ALARM to OK")
        .unwrap_or_else(|| panic!("{history}"));
    let data: Value = serde_json::from_str(by_hand["HistoryData"].as_str().unwrap()).unwrap();
    assert_eq!(data["newState"]["stateReason"], "drained by hand", "{data}");
    let refused = s.aws(&[
        "cloudwatch",
        "set-alarm-state",
        "--alarm-name",
        "no-such-alarm",
        "--state-value",
        "OK",
        "--state-reason",
        "x",
    ]);
    assert_aws_error(&refused, "ResourceNotFound");
    ok_json(&s.aws(&["cloudwatch", "delete-alarms", "--alarm-names", &name]));
    let left = ok_json(&s.aws(&["cloudwatch", "describe-alarms", "--alarm-names", &name]));
    assert_eq!(left["MetricAlarms"], json!([]), "{}", stderr_of(&refused));
}
