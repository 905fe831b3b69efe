//! CloudWatch's alarms in-process through the HTTP stack: botocore's AWS JSON 1.0 and the
//! Query form; the leader's evaluator moving an alarm on data put through the API, with its
//! history; the errors' codes. (The aws CLI workflow: tests/tests/e2e/cloudwatch.rs.)

use std::time::{Duration, Instant};

use berth_testkit::{Endpoint, REGION, TestServer, now_ms};
use serde_json::{Value, json};

const SERVICE: &str = "monitoring";
const TARGET: &str = "GraniteServiceVersion20100801";

fn call(s: &TestServer, operation: &str, body: Value) -> berth_testkit::HttpResponse {
    s.json_client()
        .call(SERVICE, &format!("{TARGET}.{operation}"), &body)
        .unwrap()
}

fn ok(s: &TestServer, operation: &str, body: Value) -> Value {
    let r = call(s, operation, body);
    assert_eq!(r.status, 200, "{operation}: {}", r.text());
    r.json()
}

fn alarm(s: &TestServer, name: &str) -> Value {
    let found = ok(s, "DescribeAlarms", json!({"AlarmNames": [name]}));
    found["MetricAlarms"][0].clone()
}

#[test]
fn an_alarm_is_put_described_moved_by_the_evaluator_and_deleted() {
    let s = TestServer::start();
    let high = json!({
        "AlarmName": "api-latency-high",
        "AlarmDescription": "latency over 1 s",
        "Namespace": "Shop",
        "MetricName": "Latency",
        "Dimensions": [{"Name": "Service", "Value": "api"}],
        "Statistic": "Maximum",
        "Period": 10,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:pager"],
        "Unit": "Seconds"
    });
    assert_eq!(ok(&s, "PutMetricAlarm", high.clone()), json!({}));
    let a = alarm(&s, "api-latency-high");
    assert_eq!(
        a["AlarmArn"],
        format!("arn:aws:cloudwatch:{REGION}:000000000000:alarm:api-latency-high")
    );
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["StateReason"], "Unchecked: Initial alarm creation");
    assert_eq!(
        a["Dimensions"],
        json!([{"Name": "Service", "Value": "api"}])
    );
    assert_eq!(
        (a["Period"].as_i64(), a["DatapointsToAlarm"].as_i64()),
        (Some(10), Some(2))
    );
    assert_eq!(a["TreatMissingData"], "notBreaching");
    assert_eq!(a["ActionsEnabled"], true);
    assert!(a["StateUpdatedTimestamp"].as_f64().unwrap() > 1.7e9);
    // Slow requests in the last half minute, put at high resolution: ALARM within seconds.
    let now = now_ms() / 1000;
    let data: Vec<Value> = (1..=4)
        .map(|i| {
            json!({"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "api"}],
            "Timestamp": now - 10 * i - 2, "Value": 2.5, "Unit": "Seconds", "StorageResolution": 1})
        })
        .collect();
    ok(
        &s,
        "PutMetricData",
        json!({"Namespace": "Shop", "MetricData": data}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let moved = loop {
        let a = alarm(&s, "api-latency-high");
        if a["StateValue"] == "ALARM" || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(moved["StateValue"], "ALARM", "{moved}");
    let reason = moved["StateReason"].as_str().unwrap();
    assert!(reason.starts_with("Threshold Crossed: "), "{reason}");
    assert!(
        reason.contains("greater than the threshold (1.0)"),
        "{reason}"
    );
    let data: Value = serde_json::from_str(moved["StateReasonData"].as_str().unwrap()).unwrap();
    assert_eq!(
        (data["statistic"].as_str(), data["threshold"].as_f64()),
        (Some("Maximum"), Some(1.0))
    );
    // The history: created, moved, and the SNS action Berth cannot deliver.
    let deadline = Instant::now() + Duration::from_secs(10);
    let history = loop {
        let h = ok(
            &s,
            "DescribeAlarmHistory",
            json!({"AlarmName": "api-latency-high", "ScanBy": "TimestampAscending"}),
        );
        let items = h["AlarmHistoryItems"].as_array().unwrap().clone();
        if items.len() >= 3 || Instant::now() > deadline {
            break items;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let summaries: Vec<&str> = history
        .iter()
        .map(|i| i["HistorySummary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries[0], "Alarm \"api-latency-high\" created");
    assert_eq!(
        summaries[1],
        "Alarm updated from INSUFFICIENT_DATA to ALARM"
    );
    assert!(
        summaries[2].starts_with("Failed to execute action arn:aws:sns:"),
        "{summaries:?}"
    );
    assert_eq!(history[1]["HistoryItemType"], "StateUpdate");
    assert_eq!(history[1]["AlarmType"], "MetricAlarm");
    // For the metric; by state; SetAlarmState; actions disabled.
    let for_metric = ok(
        &s,
        "DescribeAlarmsForMetric",
        json!({"Namespace": "Shop", "MetricName": "Latency",
        "Dimensions": [{"Name": "Service", "Value": "api"}]}),
    );
    assert_eq!(for_metric["MetricAlarms"].as_array().unwrap().len(), 1);
    ok(
        &s,
        "DisableAlarmActions",
        json!({"AlarmNames": ["api-latency-high"]}),
    );
    ok(
        &s,
        "SetAlarmState",
        json!({"AlarmName": "api-latency-high", "StateValue": "OK", "StateReason": "by hand"}),
    );
    let a = alarm(&s, "api-latency-high");
    assert_eq!(
        (
            a["StateValue"].as_str(),
            a["StateReason"].as_str(),
            a["ActionsEnabled"].as_bool()
        ),
        (Some("OK"), Some("by hand"), Some(false))
    );
    let listed = ok(&s, "DescribeAlarms", json!({"StateValue": "OK"}));
    assert_eq!(listed["MetricAlarms"].as_array().unwrap().len(), 1);
    assert_eq!(listed["CompositeAlarms"], json!([]));
    ok(
        &s,
        "DeleteAlarms",
        json!({"AlarmNames": ["api-latency-high"]}),
    );
    let none = ok(&s, "DescribeAlarms", json!({}));
    assert_eq!(none["MetricAlarms"], json!([]));
}

#[test]
fn errors_carry_cloudwatchs_codes() {
    let s = TestServer::start();
    let r = call(&s, "DeleteAlarms", json!({"AlarmNames": ["nope"]}));
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("ResourceNotFound;Sender")
    );
    let r = call(
        &s,
        "SetAlarmState",
        json!({"AlarmName": "nope", "StateValue": "OK", "StateReason": "x"}),
    );
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("ResourceNotFound;Sender")
    );
    let r = call(
        &s,
        "PutMetricAlarm",
        json!({"AlarmName": "a", "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanThreshold", "Namespace": "N", "MetricName": "M", "Period": 7,
        "Statistic": "Sum"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    assert_eq!(
        r.json()["message"],
        "The parameter Period must be 10, 20, 30, or a multiple of 60."
    );
    let r = call(
        &s,
        "PutMetricAlarm",
        json!({"AlarmName": "a", "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanThreshold"}),
    );
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("MissingParameter;Sender")
    );
    ok(
        &s,
        "PutMetricAlarm",
        json!({"AlarmName": "a", "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanThreshold", "Namespace": "N", "MetricName": "M", "Period": 60,
        "Statistic": "Sum"}),
    );
    let r = call(
        &s,
        "SetAlarmState",
        json!({"AlarmName": "a", "StateValue": "OK", "StateReason": "x",
        "StateReasonData": "{oops"}),
    );
    assert_eq!(r.header("x-amzn-query-error"), Some("InvalidFormat;Sender"));
    assert_eq!(
        r.json()["__type"],
        "com.amazonaws.cloudwatch#InvalidFormatFault"
    );
}

#[test]
fn the_query_form_puts_and_describes_alarms() {
    let s = TestServer::start();
    let form = "Action=PutMetricAlarm&Version=2010-08-01&AlarmName=q1&Namespace=N&MetricName=M\
        &Statistic=Average&Period=60&EvaluationPeriods=2&Threshold=5&ComparisonOperator=LessThanThreshold\
        &AlarmActions.member.1=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At\
        &Dimensions.member.1.Name=Host&Dimensions.member.1.Value=h1";
    let r = s.json_client().query(SERVICE, REGION, form).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = s
        .json_client()
        .query(
            SERVICE,
            REGION,
            "Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=q1",
        )
        .unwrap();
    let xml = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 200, "{xml}");
    assert!(xml.contains("<DescribeAlarmsResult>"), "{xml}");
    assert!(xml.contains("<AlarmName>q1</AlarmName>"), "{xml}");
    assert!(
        xml.contains("<ComparisonOperator>LessThanThreshold</ComparisonOperator>"),
        "{xml}"
    );
    assert!(
        xml.contains("<member>arn:aws:sns:us-east-1:000000000000:t</member>"),
        "{xml}"
    );
    assert!(
        xml.contains("<StateValue>INSUFFICIENT_DATA</StateValue>"),
        "{xml}"
    );
}

/// An alarm's tags: given at creation, added and replaced with TagResource, removed with
/// UntagResource, listed with ListTagsForResource; kept when the alarm is put again; the
/// 50-tag limit; an ARN that names no alarm is not found.
#[test]
fn alarms_carry_tags() {
    let s = TestServer::start();
    let arn = format!("arn:aws:cloudwatch:{REGION}:000000000000:alarm:tagged");
    let put = json!({"AlarmName": "tagged", "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanThreshold", "Namespace": "N", "MetricName": "M",
        "Period": 60, "Statistic": "Sum",
        "Tags": [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "dev"}]});
    ok(&s, "PutMetricAlarm", put.clone());
    let tags =
        |s: &TestServer| ok(s, "ListTagsForResource", json!({"ResourceARN": arn}))["Tags"].clone();
    assert_eq!(
        tags(&s),
        json!([{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "dev"}])
    );
    assert_eq!(
        ok(
            &s,
            "TagResource",
            json!({"ResourceARN": arn, "Tags": [{"Key": "env", "Value": "prod"},
                                                {"Key": "owner", "Value": "ops"}]})
        ),
        json!({})
    );
    assert_eq!(
        tags(&s),
        json!([{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"},
               {"Key": "owner", "Value": "ops"}])
    );
    ok(
        &s,
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["team", "absent"]}),
    );
    // Putting the alarm again changes its configuration, not its tags.
    ok(&s, "PutMetricAlarm", put);
    assert_eq!(
        tags(&s),
        json!([{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "ops"}])
    );
    let many: Vec<Value> = (0..49)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let r = call(&s, "TagResource", json!({"ResourceARN": arn, "Tags": many}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    assert_eq!(tags(&s).as_array().unwrap().len(), 2);
    for (operation, body) in [
        (
            "ListTagsForResource",
            json!({"ResourceARN": format!("{arn}-nope")}),
        ),
        (
            "TagResource",
            json!({"ResourceARN": "arn:aws:cloudwatch:eu-west-1:000000000000:alarm:tagged",
                   "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
    ] {
        let r = call(&s, operation, body);
        assert_eq!(r.status, 404, "{operation}: {}", r.text());
        assert_eq!(
            r.header("x-amzn-query-error"),
            Some("ResourceNotFound;Sender"),
            "{operation}"
        );
    }
    let r = call(&s, "UntagResource", json!({"ResourceARN": arn}));
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("MissingParameter;Sender")
    );
}
