//! The operations end to end over an in-memory store, at fixed times.

use std::sync::Arc;

use crate::*;

/// 2026-12-07T10:00:00Z.
const NOW: i64 = 1_796_637_600_000;
const MIN: i64 = 60_000;

fn cw() -> CloudWatch {
    CloudWatch::new(Arc::new(berth_store::MemStore::new()))
}

fn scope() -> CwScope {
    CwScope::new("000000000000", "us-east-1")
}

fn dim(name: &str, value: &str) -> Dimension {
    Dimension {
        name: name.into(),
        value: value.into(),
    }
}

fn datum(name: &str, at_ms: i64, value: f64) -> MetricDatum {
    MetricDatum {
        metric_name: name.into(),
        dimensions: vec![dim("Service", "web")],
        timestamp_ms: Some(at_ms),
        value: Some(value),
        ..Default::default()
    }
}

fn put(cw: &CloudWatch, data: Vec<MetricDatum>) {
    cw.put_metric_data_at(
        &scope(),
        PutMetricData {
            namespace: "App".into(),
            metric_data: data,
        },
        NOW,
    )
    .unwrap();
}

fn stats(cw: &CloudWatch, start: i64, end: i64, period: i64, extended: &[&str]) -> Vec<Datapoint> {
    cw.get_metric_statistics_at(
        &scope(),
        GetMetricStatistics {
            namespace: "App".into(),
            metric_name: "Latency".into(),
            dimensions: vec![dim("Service", "web")],
            start_ms: start,
            end_ms: end,
            period,
            statistics: vec![
                "Sum".into(),
                "SampleCount".into(),
                "Average".into(),
                "Minimum".into(),
                "Maximum".into(),
            ],
            extended_statistics: extended.iter().map(|s| s.to_string()).collect(),
            unit: None,
        },
        NOW,
    )
    .unwrap()
    .1
}

#[test]
fn values_are_aggregated_per_period() {
    let cw = cw();
    put(
        &cw,
        vec![
            datum("Latency", NOW - 10 * MIN + 5_000, 10.0),
            datum("Latency", NOW - 10 * MIN + 50_000, 30.0),
            datum("Latency", NOW - 9 * MIN, 20.0),
            MetricDatum {
                values: vec![1.0, 2.0],
                counts: vec![3.0, 1.0],
                value: None,
                ..datum("Latency", NOW - 5 * MIN, 0.0)
            },
        ],
    );
    let points = stats(&cw, NOW - 10 * MIN, NOW, 60, &["p50"]);
    assert_eq!(points.len(), 3);
    assert_eq!(points[0].timestamp_ms, NOW - 10 * MIN);
    assert_eq!(points[0].sum, Some(40.0));
    assert_eq!(points[0].sample_count, Some(2.0));
    assert_eq!(points[0].average, Some(20.0));
    assert_eq!(points[0].minimum, Some(10.0));
    assert_eq!(points[0].maximum, Some(30.0));
    assert_eq!(points[0].unit, "None");
    assert_eq!(points[0].extended_statistics, [("p50".to_string(), 10.0)]);
    assert_eq!(points[2].sample_count, Some(4.0));
    assert_eq!(points[2].sum, Some(5.0));
    assert_eq!(points[2].extended_statistics, [("p50".to_string(), 1.0)]);
    // One five-minute period holds the first two minutes' data.
    let points = stats(&cw, NOW - 10 * MIN, NOW, 300, &[]);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].sum, Some(60.0));
    assert_eq!(points[0].sample_count, Some(3.0));
}

#[test]
fn high_resolution_data_is_kept_by_the_second_for_three_hours() {
    let cw = cw();
    let high = |at: i64, v: f64| MetricDatum {
        storage_resolution: Some(1),
        ..datum("Latency", at, v)
    };
    put(
        &cw,
        vec![
            high(NOW - 60_000, 1.0),
            high(NOW - 59_000, 2.0),
            high(NOW - 50_000, 4.0),
        ],
    );
    let points = stats(&cw, NOW - 60_000, NOW, 1, &[]);
    assert_eq!(
        points.iter().map(|p| p.sum.unwrap()).collect::<Vec<_>>(),
        [1.0, 2.0, 4.0]
    );
    let points = stats(&cw, NOW - 60_000, NOW, 10, &[]);
    assert_eq!(
        points.iter().map(|p| p.sum.unwrap()).collect::<Vec<_>>(),
        [3.0, 4.0]
    );
    // Standard-resolution data has no second buckets.
    put(&cw, vec![datum("Latency", NOW - 30_000, 8.0)]);
    let points = stats(&cw, NOW - 60_000, NOW, 60, &[]);
    assert_eq!(points[0].sum, Some(15.0));
    // Four hours later the seconds are gone, the minutes remain.
    let later = NOW + 4 * 60 * MIN;
    let r = |period| {
        cw.get_metric_statistics_at(
            &scope(),
            GetMetricStatistics {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                dimensions: vec![dim("Service", "web")],
                start_ms: NOW - 60_000,
                end_ms: NOW,
                period,
                statistics: vec!["Sum".into()],
                ..Default::default()
            },
            later,
        )
        .unwrap()
        .1
    };
    assert!(r(1).is_empty());
    assert_eq!(r(60)[0].sum, Some(15.0));
}

#[test]
fn retention_rolls_data_up_and_bounds_the_records() {
    let cw = cw();
    put(
        &cw,
        vec![
            datum("Latency", NOW - 13 * 24 * 60 * MIN, 5.0),
            datum("Latency", NOW - MIN, 7.0),
        ],
    );
    let count = |cw: &CloudWatch| cw.store().range("cloudwatch/data/", None, 0).unwrap().len();
    let before = count(&cw);
    // Nothing is past retention yet.
    assert_eq!(cw.expire_at(NOW).unwrap(), 0);
    assert_eq!(count(&cw), before);
    // Twenty days on: the minute data of the old datum is past 15 days; 5 min and 1 h remain.
    let later = NOW + 20 * 24 * 60 * MIN;
    let gone = cw.expire_at(later).unwrap();
    assert!(gone >= 2, "{gone}");
    assert_eq!(count(&cw), before - 2);
    let read = |period, start, at| {
        cw.get_metric_statistics_at(
            &scope(),
            GetMetricStatistics {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                dimensions: vec![dim("Service", "web")],
                start_ms: start,
                end_ms: NOW,
                period,
                statistics: vec!["Sum".into()],
                ..Default::default()
            },
            at,
        )
        .unwrap()
        .1
    };
    // The minute chunks are gone: a read of minutes that far back has nothing.
    assert!(read(60, NOW - 60 * MIN, later).is_empty());
    let two_weeks = NOW - 14 * 24 * 60 * MIN;
    let hours: Vec<f64> = read(3600, two_weeks, later)
        .iter()
        .map(|p| p.sum.unwrap())
        .collect();
    assert_eq!(hours, [5.0, 7.0]);
    // A chunk goes once all of it is past retention: after 455 days and a week (the hour
    // resolution's chunk) nothing is left, not even the metric.
    let hours_expired = NOW + (455 + 7) * 24 * 60 * MIN;
    assert_eq!(
        read(3600, NOW - 60 * MIN, NOW + 454 * 24 * 60 * MIN)[0].sum,
        Some(7.0)
    );
    cw.expire_at(hours_expired).unwrap();
    assert!(cw.store().range("cloudwatch/", None, 0).unwrap().is_empty());
}

#[test]
fn puts_are_checked_as_cloudwatch_checks_them() {
    let cw = cw();
    let attempt = |namespace: &str, data: Vec<MetricDatum>| {
        cw.put_metric_data_at(
            &scope(),
            PutMetricData {
                namespace: namespace.into(),
                metric_data: data,
            },
            NOW,
        )
        .unwrap_err()
    };
    let e = attempt("AWS/EC2", vec![datum("M", NOW, 1.0)]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (
            "InvalidParameterValue",
            "The value AWS/EC2 for parameter Namespace is invalid."
        )
    );
    let old = NOW - 15 * 24 * 60 * MIN;
    let e = attempt("App", vec![datum("M", old, 1.0), datum("M", old, 1.0)]);
    assert_eq!(
        e.to_string(),
        "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks.\nThe parameter MetricData.member.2.Timestamp must specify a time within the past two weeks."
    );
    let e = attempt("App", vec![datum("M", NOW + 3 * 60 * MIN, 1.0)]);
    assert_eq!(e.code(), "InvalidParameterValue");
    let both = MetricDatum {
        statistic_values: Some(StatisticSet {
            sample_count: 1.0,
            sum: 1.0,
            minimum: 1.0,
            maximum: 1.0,
        }),
        ..datum("M", NOW, 1.0)
    };
    let e = attempt("App", vec![both]);
    assert_eq!(e.code(), "InvalidParameterCombination");
    assert_eq!(
        e.to_string(),
        "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both."
    );
    let uneven = MetricDatum {
        value: None,
        values: vec![1.0, 2.0],
        counts: vec![1.0],
        ..datum("M", NOW, 0.0)
    };
    assert_eq!(attempt("App", vec![uneven]).code(), "InvalidParameterValue");
    let e = attempt(
        "App",
        vec![MetricDatum {
            unit: Some("Furlongs".into()),
            ..datum("M", NOW, 1.0)
        }],
    );
    assert_eq!(
        e.to_string(),
        "The value Furlongs for parameter MetricData.member.1.Unit is invalid."
    );
    let e = attempt(
        "App",
        vec![MetricDatum {
            storage_resolution: Some(5),
            ..datum("M", NOW, 1.0)
        }],
    );
    assert_eq!(e.code(), "InvalidParameterValue");
    assert_eq!(
        attempt("App", vec![datum("M", NOW, f64::NAN)]).code(),
        "InvalidParameterValue"
    );
    assert_eq!(
        attempt("App", vec![datum("M", NOW, 2f64.powi(361))]).code(),
        "InvalidParameterValue"
    );
    assert_eq!(attempt("App", vec![]).code(), "MissingParameter");
    let none = MetricDatum {
        value: None,
        ..datum("M", NOW, 0.0)
    };
    assert_eq!(attempt("App", vec![none]).code(), "MissingParameter");
    // Nothing of a refused request was kept.
    assert!(cw.store().range("cloudwatch/", None, 0).unwrap().is_empty());
}

#[test]
fn statistics_requests_are_checked() {
    let cw = cw();
    let ask = |period: i64, stats: &[&str], extended: &[&str], start: i64| {
        cw.get_metric_statistics_at(
            &scope(),
            GetMetricStatistics {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                start_ms: start,
                end_ms: NOW,
                period,
                statistics: stats.iter().map(|s| s.to_string()).collect(),
                extended_statistics: extended.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            NOW,
        )
    };
    assert_eq!(
        ask(7, &["Sum"], &[], NOW - MIN).unwrap_err().code(),
        "InvalidParameterValue"
    );
    assert_eq!(
        ask(60, &[], &[], NOW - MIN).unwrap_err().code(),
        "InvalidParameterCombination"
    );
    assert_eq!(
        ask(60, &["Median"], &[], NOW - MIN)
            .unwrap_err()
            .to_string(),
        "The value Median for parameter Statistics.member.1 is invalid."
    );
    assert_eq!(
        ask(60, &[], &["p100.5"], NOW - MIN).unwrap_err().code(),
        "InvalidParameterValue"
    );
    let e = ask(60, &["Sum"], &[], NOW - 2 * 24 * 60 * MIN).unwrap_err();
    assert_eq!(e.code(), "InvalidParameterCombination");
    assert!(
        e.to_string()
            .starts_with("You have requested up to 2880 datapoints"),
        "{e}"
    );
    assert_eq!(
        ask(60, &["Sum"], &[], NOW).unwrap_err().code(),
        "InvalidParameterValue"
    );
    assert!(ask(60, &["Sum"], &["p99"], NOW - MIN).unwrap().1.is_empty());
}

#[test]
fn units_stay_apart_unless_one_is_asked_for() {
    let cw = cw();
    put(
        &cw,
        vec![
            MetricDatum {
                unit: Some("Seconds".into()),
                ..datum("Latency", NOW - MIN, 2.0)
            },
            MetricDatum {
                unit: Some("Milliseconds".into()),
                ..datum("Latency", NOW - MIN, 500.0)
            },
        ],
    );
    let all = stats(&cw, NOW - MIN, NOW, 60, &[]);
    let units: Vec<_> = all
        .iter()
        .map(|p| (p.unit.as_str(), p.sum.unwrap()))
        .collect();
    assert_eq!(units, [("Milliseconds", 500.0), ("Seconds", 2.0)]);
    let (_, seconds) = cw
        .get_metric_statistics_at(
            &scope(),
            GetMetricStatistics {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                dimensions: vec![dim("Service", "web")],
                start_ms: NOW - MIN,
                end_ms: NOW,
                period: 60,
                statistics: vec!["Sum".into()],
                unit: Some("Seconds".into()),
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    assert_eq!(seconds.len(), 1);
    assert_eq!(seconds[0].sum, Some(2.0));
}

#[test]
fn metrics_are_listed_filtered_and_paged() {
    let cw = cw();
    let data: Vec<MetricDatum> = (0..600)
        .map(|i| MetricDatum {
            dimensions: vec![
                dim("Host", &format!("h{i:03}")),
                dim("Service", if i % 2 == 0 { "web" } else { "api" }),
            ],
            ..datum("Requests", NOW, 1.0)
        })
        .collect();
    put(&cw, data);
    put(&cw, vec![datum("Latency", NOW, 1.0)]);
    let list = |r: ListMetrics, at| cw.list_metrics_at(&scope(), r, at).unwrap();
    let first = list(ListMetrics::default(), NOW);
    assert_eq!(first.metrics.len(), 500);
    let token = first.next_token.clone().unwrap();
    let second = list(
        ListMetrics {
            next_token: Some(token),
            ..Default::default()
        },
        NOW,
    );
    assert_eq!(second.metrics.len(), 101);
    assert_eq!(second.next_token, None);
    let web = list(
        ListMetrics {
            namespace: Some("App".into()),
            metric_name: Some("Requests".into()),
            dimensions: vec![DimensionFilter {
                name: "Service".into(),
                value: Some("web".into()),
            }],
            ..Default::default()
        },
        NOW,
    );
    assert_eq!(web.metrics.len(), 300);
    assert!(web.metrics.iter().all(|m| m.dimensions[1].value == "web"));
    let other = list(
        ListMetrics {
            namespace: Some("Other".into()),
            ..Default::default()
        },
        NOW,
    );
    assert!(other.metrics.is_empty());
    let recent = |at| {
        list(
            ListMetrics {
                metric_name: Some("Latency".into()),
                recently_active: Some("PT3H".into()),
                ..Default::default()
            },
            at,
        )
    };
    assert_eq!(recent(NOW + 60 * MIN).metrics.len(), 1);
    assert!(recent(NOW + 4 * 60 * MIN).metrics.is_empty());
    assert!(
        list(ListMetrics::default(), NOW + 15 * 24 * 60 * MIN)
            .metrics
            .is_empty()
    );
    let bad = cw.list_metrics_at(
        &scope(),
        ListMetrics {
            recently_active: Some("PT1H".into()),
            ..Default::default()
        },
        NOW,
    );
    assert_eq!(bad.unwrap_err().code(), "InvalidParameterValue");
}

fn stat_query(id: &str, name: &str, stat: &str) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        metric_stat: Some(MetricStat {
            namespace: "App".into(),
            metric_name: name.into(),
            dimensions: vec![dim("Service", "web")],
            period: 60,
            stat: stat.into(),
            unit: None,
        }),
        ..Default::default()
    }
}

fn expression(id: &str, text: &str) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        expression: Some(text.into()),
        ..Default::default()
    }
}

#[test]
fn metric_data_with_expressions_order_and_pages() {
    let cw = cw();
    put(
        &cw,
        vec![
            datum("Requests", NOW - 3 * MIN, 100.0),
            datum("Requests", NOW - 2 * MIN, 200.0),
            datum("Errors", NOW - 3 * MIN, 5.0),
            datum("Errors", NOW - 2 * MIN, 20.0),
        ],
    );
    let request = |queries, scan_by: Option<&str>, max, token| GetMetricData {
        queries,
        start_ms: NOW - 5 * MIN,
        end_ms: NOW,
        scan_by: scan_by.map(str::to_string),
        max_datapoints: max,
        next_token: token,
    };
    let out = cw
        .get_metric_data_at(
            &scope(),
            request(
                vec![
                    MetricDataQuery {
                        return_data: Some(false),
                        ..stat_query("r", "Requests", "Sum")
                    },
                    stat_query("e", "Errors", "Sum"),
                    MetricDataQuery {
                        label: Some("Error rate".into()),
                        ..expression("rate", "100 * e / r")
                    },
                    expression("total", "SUM(METRICS())"),
                ],
                None,
                None,
                None,
            ),
            NOW,
        )
        .unwrap();
    let ids: Vec<_> = out.results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e", "rate", "total"]);
    let e = &out.results[0];
    assert_eq!(e.label, "Errors");
    assert_eq!(e.timestamps_ms, [NOW - 2 * MIN, NOW - 3 * MIN]);
    assert_eq!(e.values, [20.0, 5.0]);
    assert_eq!(e.status_code, "Complete");
    assert_eq!(out.results[1].label, "Error rate");
    assert_eq!(out.results[1].values, [10.0, 5.0]);
    assert_eq!(out.results[2].values, [220.0, 105.0]);
    assert_eq!(out.next_token, None);
    // Ascending, two points a page.
    let page = |token| {
        cw.get_metric_data_at(
            &scope(),
            request(
                vec![
                    stat_query("r", "Requests", "Sum"),
                    stat_query("e", "Errors", "Maximum"),
                ],
                Some("TimestampAscending"),
                Some(3),
                token,
            ),
            NOW,
        )
        .unwrap()
    };
    let first = page(None);
    assert_eq!(first.results[0].values, [100.0, 200.0]);
    assert_eq!(first.results[1].values, [5.0]);
    assert_eq!(first.results[1].status_code, "PartialData");
    let second = page(first.next_token.clone());
    assert!(second.results[0].values.is_empty());
    assert_eq!(second.results[1].values, [20.0]);
    assert_eq!(second.results[1].status_code, "Complete");
    assert_eq!(second.next_token, None);
}

#[test]
fn metric_data_requests_are_checked() {
    let cw = cw();
    let ask = |queries| {
        cw.get_metric_data_at(
            &scope(),
            GetMetricData {
                queries,
                start_ms: NOW - MIN,
                end_ms: NOW,
                ..Default::default()
            },
            NOW,
        )
        .unwrap_err()
    };
    assert_eq!(ask(vec![]).code(), "MissingParameter");
    assert_eq!(
        ask(vec![stat_query("M1", "Requests", "Sum")]).code(),
        "InvalidParameterValue"
    );
    assert_eq!(
        ask(vec![
            stat_query("m1", "Requests", "Sum"),
            stat_query("m1", "Errors", "Sum")
        ])
        .code(),
        "InvalidParameterValue"
    );
    assert_eq!(
        ask(vec![stat_query("m1", "Requests", "Median")]).code(),
        "InvalidParameterValue"
    );
    let both = MetricDataQuery {
        expression: Some("m1".into()),
        ..stat_query("m2", "Requests", "Sum")
    };
    assert_eq!(ask(vec![both]).code(), "InvalidParameterCombination");
    assert_eq!(
        ask(vec![MetricDataQuery {
            id: "m1".into(),
            ..Default::default()
        }])
        .code(),
        "MissingParameter"
    );
    let e = ask(vec![expression("e1", "m9 * 2")]);
    assert_eq!(
        e.to_string(),
        "Error in expression e1: Unrecognized identifier m9"
    );
    let e = ask(vec![expression("a", "b + 1"), expression("b", "a + 1")]);
    assert!(e.to_string().contains("Circular"), "{e}");
    let bad_token = cw.get_metric_data_at(
        &scope(),
        GetMetricData {
            queries: vec![stat_query("m1", "Requests", "Sum")],
            start_ms: NOW - MIN,
            end_ms: NOW,
            next_token: Some("zz".into()),
            ..Default::default()
        },
        NOW,
    );
    assert_eq!(bad_token.unwrap_err().code(), "InvalidNextToken");
}

#[test]
fn concurrent_puts_to_one_metric_lose_nothing() {
    let cw = Arc::new(cw());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cw = cw.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let at = NOW - 2 * MIN + (t * 25 + i) * 100;
                    put(
                        &cw,
                        vec![datum("Latency", at, 1.0), datum("Requests", at, 2.0)],
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let points = stats(&cw, NOW - 2 * MIN, NOW, 60, &[]);
    let total: f64 = points.iter().map(|p| p.sample_count.unwrap()).sum();
    assert_eq!(total, 100.0);
    assert_eq!(points.iter().map(|p| p.sum.unwrap()).sum::<f64>(), 100.0);
}
