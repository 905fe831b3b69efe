//! Alarms over an in-memory store at fixed times: the missing-data table, M of N, the
//! evaluator's pass with its history and actions, and the operations' checks.

use std::sync::{Arc, Mutex};

use super::describe::{DescribeAlarmHistory, DescribeAlarms, DescribeAlarmsForMetric};
use super::*;
use crate::{MetricDatum, PutMetricData};

/// 2026-12-07T10:00:00Z.
const NOW: i64 = 1_796_637_600_000;
const MIN: i64 = 60_000;

fn cw() -> CloudWatch {
    CloudWatch::new(Arc::new(berth_store::MemStore::new()))
}

fn scope() -> CwScope {
    CwScope::new("000000000000", "us-east-1")
}

fn request(name: &str) -> PutMetricAlarm {
    PutMetricAlarm {
        alarm_name: Some(name.into()),
        namespace: Some("App".into()),
        metric_name: Some("Load".into()),
        statistic: Some("Average".into()),
        period: Some(60),
        evaluation_periods: Some(3),
        threshold: Some(70.0),
        comparison_operator: Some("GreaterThanThreshold".into()),
        alarm_actions: vec!["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:p".into()],
        ok_actions: vec!["arn:aws:sns:us-east-1:000000000000:topic".into()],
        ..Default::default()
    }
}

fn alarm(treat: Option<TreatMissingData>, m: Option<i64>) -> MetricAlarm {
    let mut r = request("a");
    r.datapoints_to_alarm = m;
    let mut a = check::check(&scope(), r, NOW).unwrap();
    a.treat_missing_data = treat;
    a
}

/// Datapoints from a pattern oldest first over the five periods of the evaluation range
/// ending at NOW: `X` breaching (80), `0` not (10), `-` missing.
fn points(pattern: &str) -> Vec<(i64, f64)> {
    let n = pattern.len() as i64;
    pattern
        .chars()
        .enumerate()
        .filter_map(|(i, c)| {
            let t = NOW - (n - i as i64) * MIN;
            match c {
                'X' => Some((t, 80.0)),
                '0' => Some((t, 10.0)),
                _ => None,
            }
        })
        .collect()
}

fn state(treat: Option<TreatMissingData>, pattern: &str) -> Option<StateValue> {
    evaluate(&alarm(treat, None), &points(pattern), NOW, NOW).map(|e| e.state)
}

#[test]
fn missing_data_is_treated_as_cloudwatchs_table_says() {
    use StateValue::*;
    use TreatMissingData as T;
    let all = [T::Missing, T::Ignore, T::Breaching, T::NotBreaching];
    // (pattern, [missing, ignore, breaching, notBreaching]); None: the state stays.
    let table: [(&str, [Option<StateValue>; 4]); 6] = [
        ("0-X-X", [Some(Ok); 4]),
        ("----0", [Some(Ok); 4]),
        (
            "-----",
            [Some(InsufficientData), None, Some(Alarm), Some(Ok)],
        ),
        ("0XX-X", [Some(Alarm); 4]),
        ("--X--", [Some(Alarm), Some(Alarm), Some(Alarm), Some(Ok)]),
        ("XXXXX", [Some(Alarm); 4]),
    ];
    for (pattern, expected) in table {
        for (treat, want) in all.iter().zip(expected) {
            assert_eq!(state(Some(*treat), pattern), want, "{pattern} {treat:?}");
        }
    }
    // Not given: evaluated as `missing`.
    assert_eq!(state(None, "-----"), Some(InsufficientData));
}

#[test]
fn m_of_n_alarms_on_enough_breaching_datapoints_and_says_so() {
    let a = alarm(None, Some(2));
    let e = evaluate(&a, &points("--0XX"), NOW, NOW).unwrap();
    assert_eq!(e.state, StateValue::Alarm);
    assert!(
        e.reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [80.0 (07/12/26 09:59:00), 80.0 (07/12/26 09:58:00)] were greater than the threshold (70.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition)"),
        "{}",
        e.reason
    );
    let e = evaluate(&a, &points("--X00"), NOW, NOW).unwrap();
    assert_eq!(e.state, StateValue::Ok);
    assert!(
        e.reason
            .contains("were not greater than the threshold (70.0)"),
        "{}",
        e.reason
    );
    let data: serde_json::Value = serde_json::from_str(&e.reason_data).unwrap();
    assert_eq!(data["statistic"], "Average");
    assert_eq!(data["period"], 60);
    assert_eq!(
        data["recentDatapoints"],
        serde_json::json!([80.0, 10.0, 10.0])
    );
}

#[test]
fn datapoints_outside_the_range_or_in_the_incomplete_period_do_not_count() {
    let a = alarm(None, None);
    // At NOW itself (the period not yet complete), and six periods back.
    let pts = vec![(NOW, 80.0), (NOW - 6 * MIN, 80.0)];
    assert_eq!(
        evaluate(&a, &pts, NOW, NOW).unwrap().state,
        StateValue::InsufficientData
    );
}

struct Recorder {
    calls: Mutex<Vec<(String, StateValue, Option<f64>)>>,
}

impl AlarmActions for Recorder {
    fn invoke(
        &self,
        _: &CwScope,
        action: &str,
        f: &AlarmFired,
    ) -> std::result::Result<String, String> {
        self.calls
            .lock()
            .unwrap()
            .push((action.to_string(), f.state, f.value()));
        if action.contains(":sns:") {
            Err("no SNS here".into())
        } else {
            Ok("scaled".into())
        }
    }
}

fn put_load(cw: &CloudWatch, at: i64, value: f64) {
    put_load_resolved(cw, at, value, None);
}

/// `App/Load` at `at`, stored at `storage_resolution` (1: high resolution).
fn put_load_resolved(cw: &CloudWatch, at: i64, value: f64, storage_resolution: Option<i64>) {
    cw.put_metric_data_at(
        &scope(),
        PutMetricData {
            namespace: "App".into(),
            metric_data: vec![MetricDatum {
                metric_name: "Load".into(),
                timestamp_ms: Some(at),
                value: Some(value),
                storage_resolution,
                ..Default::default()
            }],
        },
        at,
    )
    .unwrap();
}

fn history(cw: &CloudWatch, kind: &str) -> Vec<HistoryItem> {
    cw.describe_alarm_history(
        &scope(),
        DescribeAlarmHistory {
            alarm_name: Some("busy".into()),
            history_item_type: Some(kind.into()),
            scan_by: Some("TimestampAscending".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .items
}

#[test]
fn the_evaluator_moves_an_alarm_writes_history_and_repeats_auto_scaling_actions() {
    let cw = cw();
    cw.put_metric_alarm_at(&scope(), request("busy"), NOW - 10 * MIN)
        .unwrap();
    let rec = Recorder {
        calls: Mutex::new(Vec::new()),
    };
    let mut schedule = AlarmSchedule::default();
    // Three minutes of high load, the evaluation five seconds after the minute.
    for i in (1..=3).rev() {
        put_load(&cw, NOW - i * MIN + 1_000, 90.0);
    }
    let t = NOW + 5_000;
    assert_eq!(cw.evaluate_alarms(t, &rec, &mut schedule).unwrap(), 1);
    let a = cw.alarm(&scope(), "busy").unwrap().unwrap();
    assert_eq!(a.state_value, StateValue::Alarm);
    assert!(!a.actions_pending);
    assert_eq!(
        rec.calls.lock().unwrap().clone(),
        vec![(
            "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:p".to_string(),
            StateValue::Alarm,
            Some(90.0)
        )]
    );
    // The same slot again: nothing. The next minute, still high: the Auto Scaling action again.
    assert_eq!(
        cw.evaluate_alarms(t + 1_000, &rec, &mut schedule).unwrap(),
        0
    );
    assert_eq!(rec.calls.lock().unwrap().len(), 1);
    put_load(&cw, NOW + 1_000, 95.0);
    assert_eq!(cw.evaluate_alarms(t + MIN, &rec, &mut schedule).unwrap(), 0);
    assert_eq!(rec.calls.lock().unwrap().len(), 2);
    // Load falls: OK, whose SNS action fails and says so in the history.
    for i in 1..=3 {
        put_load(&cw, NOW + i * MIN + 1_000, 5.0);
    }
    assert_eq!(
        cw.evaluate_alarms(t + 4 * MIN, &rec, &mut schedule)
            .unwrap(),
        1
    );
    assert_eq!(
        cw.alarm(&scope(), "busy").unwrap().unwrap().state_value,
        StateValue::Ok
    );
    let states: Vec<String> = history(&cw, "StateUpdate")
        .into_iter()
        .map(|i| i.history_summary)
        .collect();
    assert_eq!(
        states,
        [
            "Alarm updated from INSUFFICIENT_DATA to ALARM",
            "Alarm updated from ALARM to OK"
        ]
    );
    let actions: Vec<String> = history(&cw, "Action")
        .into_iter()
        .map(|i| i.history_summary)
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions[0].starts_with("Successfully executed action arn:aws:autoscaling:"));
    assert_eq!(
        actions[2],
        "Failed to execute action arn:aws:sns:us-east-1:000000000000:topic. Received error: \"no SNS here\""
    );
    let config = history(&cw, "ConfigurationUpdate");
    assert_eq!(config[0].history_summary, "Alarm \"busy\" created");
}

#[test]
fn a_high_resolution_alarm_repeats_auto_scaling_actions_once_a_minute() {
    let cw = cw();
    let request = PutMetricAlarm {
        period: Some(10),
        ..request("busy")
    };
    cw.put_metric_alarm_at(&scope(), request, NOW - 10 * MIN)
        .unwrap();
    let rec = Recorder {
        calls: Mutex::new(Vec::new()),
    };
    let mut schedule = AlarmSchedule::default();
    // High load every second from 30 s before NOW to 2 minutes after it, at high resolution.
    for at in (NOW - 30_000..NOW + 2 * MIN).step_by(1_000) {
        put_load_resolved(&cw, at, 90.0, Some(1));
    }
    // An evaluation every 10 s for 100 s: ALARM at the first (its actions then), and the
    // Auto Scaling action once more a minute later, not at every evaluation.
    for i in 0..10 {
        cw.evaluate_alarms(NOW + 3_000 + i * 10_000, &rec, &mut schedule)
            .unwrap();
    }
    assert_eq!(
        cw.alarm(&scope(), "busy").unwrap().unwrap().state_value,
        StateValue::Alarm
    );
    assert_eq!(rec.calls.lock().unwrap().len(), 2);
}

#[test]
fn set_alarm_state_transitions_and_its_actions_run_on_the_next_pass_unless_disabled() {
    let cw = cw();
    cw.put_metric_alarm_at(&scope(), request("busy"), NOW)
        .unwrap();
    cw.set_alarm_state(
        &scope(),
        "busy",
        "ALARM",
        "testing",
        Some("{\"a\":1}".into()),
    )
    .unwrap();
    let a = cw.alarm(&scope(), "busy").unwrap().unwrap();
    assert_eq!(
        (a.state_value, a.state_reason.as_str(), a.actions_pending),
        (StateValue::Alarm, "testing", true)
    );
    cw.set_alarm_actions(&scope(), &["busy".into(), "absent".into()], false)
        .unwrap();
    let rec = Recorder {
        calls: Mutex::new(Vec::new()),
    };
    cw.evaluate_alarms(NOW, &rec, &mut AlarmSchedule::default())
        .unwrap();
    assert!(rec.calls.lock().unwrap().is_empty());
    assert!(!cw.alarm(&scope(), "busy").unwrap().unwrap().actions_pending);
    // Errors: an unknown alarm, a state that is not one, reason data that is not JSON.
    let e = cw
        .set_alarm_state(&scope(), "absent", "OK", "x", None)
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("ResourceNotFound", "Alarm absent not found")
    );
    let e = cw
        .set_alarm_state(&scope(), "busy", "RED", "x", None)
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameterValue");
    let e = cw
        .set_alarm_state(&scope(), "busy", "OK", "x", Some("{not json".into()))
        .unwrap_err();
    assert_eq!(e.code(), "InvalidFormat");
}

#[test]
fn an_update_keeps_the_state_and_describe_filters_pages_and_deletes() {
    let cw = cw();
    for name in ["web-high", "web-low", "db-high"] {
        cw.put_metric_alarm_at(&scope(), request(name), NOW)
            .unwrap();
    }
    cw.set_alarm_state(&scope(), "web-high", "ALARM", "r", None)
        .unwrap();
    let mut changed = request("web-high");
    changed.threshold = Some(50.0);
    cw.put_metric_alarm_at(&scope(), changed, NOW + MIN)
        .unwrap();
    let a = cw.alarm(&scope(), "web-high").unwrap().unwrap();
    assert_eq!((a.threshold, a.state_value), (50.0, StateValue::Alarm));
    let page = cw
        .describe_alarms(
            &scope(),
            DescribeAlarms {
                alarm_name_prefix: Some("web-".into()),
                max_records: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.metric_alarms[0].alarm_name, "web-high");
    let next = cw
        .describe_alarms(
            &scope(),
            DescribeAlarms {
                alarm_name_prefix: Some("web-".into()),
                next_token: page.next_token,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(next.metric_alarms[0].alarm_name, "web-low");
    assert_eq!(next.next_token, None);
    let alarming = cw
        .describe_alarms(
            &scope(),
            DescribeAlarms {
                state_value: Some("ALARM".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(alarming.metric_alarms.len(), 1);
    let for_metric = cw
        .describe_alarms_for_metric(
            &scope(),
            DescribeAlarmsForMetric {
                namespace: Some("App".into()),
                metric_name: Some("Load".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(for_metric.len(), 3);
    let e = cw
        .delete_alarms(&scope(), &["web-low".into(), "nope".into()])
        .unwrap_err();
    assert_eq!(e.code(), "ResourceNotFound");
    assert!(
        cw.alarm(&scope(), "web-low").unwrap().is_some(),
        "nothing deleted"
    );
    cw.delete_alarms(&scope(), &["web-low".into(), "db-high".into()])
        .unwrap();
    let left = cw
        .describe_alarms(&scope(), DescribeAlarms::default())
        .unwrap();
    assert_eq!(left.metric_alarms.len(), 1);
}

#[test]
fn put_metric_alarm_checks_its_request_as_cloudwatch_does() {
    let cw = cw();
    type Case = (Box<dyn Fn(&mut PutMetricAlarm)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            Box::new(|r| r.alarm_name = None),
            "MissingParameter",
            "The parameter AlarmName is required.",
        ),
        (
            Box::new(|r| r.period = Some(45)),
            "InvalidParameterValue",
            "The parameter Period must be 10, 20, 30, or a multiple of 60.",
        ),
        (
            Box::new(|r| r.datapoints_to_alarm = Some(4)),
            "InvalidParameterValue",
            "DatapointsToAlarm (4) must be between 1 and EvaluationPeriods (3).",
        ),
        (
            Box::new(|r| r.extended_statistic = Some("p99".into())),
            "InvalidParameterCombination",
            "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
        ),
        (
            Box::new(|r| r.alarm_actions = vec!["not-an-arn".into()]),
            "InvalidParameterValue",
            "Invalid arn syntax: not-an-arn",
        ),
        (
            Box::new(|r| r.treat_missing_data = Some("sometimes".into())),
            "InvalidParameterValue",
            "The value sometimes for parameter TreatMissingData is invalid.",
        ),
        (
            Box::new(|r| {
                r.period = Some(3600);
                r.evaluation_periods = Some(200);
            }),
            "InvalidParameterValue",
            "The evaluation period of the alarm (Period x EvaluationPeriods = 720000 seconds) must not exceed 604800 seconds.",
        ),
    ];
    for (change, code, message) in cases {
        let mut r = request("bad");
        change(&mut r);
        let e = cw.put_metric_alarm_at(&scope(), r, NOW).unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (code, message));
    }
    let mut math = request("math");
    math.namespace = None;
    math.metric_name = None;
    math.statistic = None;
    math.period = None;
    math.metrics = vec![
        crate::MetricDataQuery {
            id: "m1".into(),
            metric_stat: Some(crate::MetricStat {
                namespace: "App".into(),
                metric_name: "Load".into(),
                period: 60,
                stat: "Sum".into(),
                ..Default::default()
            }),
            return_data: Some(false),
            ..Default::default()
        },
        crate::MetricDataQuery {
            id: "e1".into(),
            expression: Some("m1 * 2".into()),
            ..Default::default()
        },
    ];
    cw.put_metric_alarm_at(&scope(), math, NOW).unwrap();
    let stored = cw.alarm(&scope(), "math").unwrap().unwrap();
    assert_eq!((stored.period(), stored.queries().1.as_str()), (60, "e1"));
}
