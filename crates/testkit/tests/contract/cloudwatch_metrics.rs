//! CloudWatch's metrics API in-process through the HTTP stack, in both protocols clients
//! speak: Smithy RPC v2 CBOR (bodies encoded here with ciborium, timestamps as tag 1) and
//! the Query form (XML answers). Exact values from PutMetricData back through
//! GetMetricStatistics, ListMetrics and GetMetricData, and the error shapes of each
//! protocol. (The aws CLI workflow: tests/tests/e2e/cloudwatch.rs.)

use berth_testkit::{Endpoint, REGION, TestServer, now_ms};
use ciborium::Value;

const SERVICE: &str = "monitoring";
const CBOR_SERVICE: &str = "GraniteServiceVersion20100801";

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

fn timestamp(ms: i64) -> Value {
    Value::Tag(1, Box::new(Value::Integer((ms / 1000).into())))
}

fn dims(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| map(vec![("Name", text(n)), ("Value", text(v))]))
            .collect(),
    )
}

/// A CBOR answer: status, the `x-amzn-query-error` header, the decoded body.
struct Reply {
    status: u16,
    query_error: Option<String>,
    body: Option<Value>,
}

fn cbor(s: &TestServer, operation: &str, body: Value) -> Reply {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let r = s
        .json_client()
        .cbor(SERVICE, CBOR_SERVICE, operation, &bytes)
        .unwrap();
    if r.status == 200 {
        assert_eq!(r.header("smithy-protocol"), Some("rpc-v2-cbor"));
    }
    Reply {
        status: r.status,
        query_error: r.header("x-amzn-query-error").map(str::to_string),
        body: (!r.body.is_empty()).then(|| ciborium::from_reader(&r.body[..]).unwrap()),
    }
}

/// A member of a CBOR map.
fn get<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(name)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

fn float(v: &Value) -> f64 {
    v.as_float().unwrap_or_else(|| panic!("not a float: {v:?}"))
}

/// A tag-1 timestamp, in ms.
fn time_of(v: &Value) -> i64 {
    match v {
        Value::Tag(1, inner) => (float(inner) * 1000.0).round() as i64,
        other => panic!("not a timestamp: {other:?}"),
    }
}

/// The start of the minute five minutes ago, in ms.
fn five_minutes_ago() -> i64 {
    (now_ms() / 60_000 - 5) * 60_000
}

#[test]
fn cbor_put_then_statistics_list_and_data() {
    let s = TestServer::start();
    let t0 = five_minutes_ago();
    let datum = |name: &str, at: i64, value: f64| {
        map(vec![
            ("MetricName", text(name)),
            ("Dimensions", dims(&[("Service", "web"), ("Env", "prod")])),
            ("Timestamp", timestamp(at)),
            ("Value", Value::Float(value)),
            ("Unit", text("Milliseconds")),
        ])
    };
    let put = cbor(
        &s,
        "PutMetricData",
        map(vec![
            ("Namespace", text("Shop")),
            (
                "MetricData",
                Value::Array(vec![
                    datum("Latency", t0 + 1_000, 10.0),
                    datum("Latency", t0 + 2_000, 30.0),
                    datum("Latency", t0 + 61_000, 50.0),
                    map(vec![
                        ("MetricName", text("Requests")),
                        ("Dimensions", dims(&[("Service", "web")])),
                        ("Timestamp", timestamp(t0)),
                        (
                            "StatisticValues",
                            map(vec![
                                ("SampleCount", Value::Float(4.0)),
                                ("Sum", Value::Float(100.0)),
                                ("Minimum", Value::Float(10.0)),
                                ("Maximum", Value::Float(40.0)),
                            ]),
                        ),
                        ("Unit", text("Count")),
                    ]),
                ]),
            ),
        ]),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert!(put.body.is_none());

    let stats = cbor(
        &s,
        "GetMetricStatistics",
        map(vec![
            ("Namespace", text("Shop")),
            ("MetricName", text("Latency")),
            // In another order than put: the same metric.
            ("Dimensions", dims(&[("Env", "prod"), ("Service", "web")])),
            ("StartTime", timestamp(t0)),
            ("EndTime", timestamp(t0 + 120_000)),
            ("Period", Value::Integer(60.into())),
            (
                "Statistics",
                Value::Array(vec![
                    text("Average"),
                    text("Sum"),
                    text("SampleCount"),
                    text("Maximum"),
                ]),
            ),
            ("ExtendedStatistics", Value::Array(vec![text("p50")])),
        ]),
    );
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    let body = stats.body.unwrap();
    assert_eq!(get(&body, "Label").as_text(), Some("Latency"));
    let points = get(&body, "Datapoints").as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(time_of(get(&points[0], "Timestamp")), t0);
    assert_eq!(float(get(&points[0], "Average")), 20.0);
    assert_eq!(float(get(&points[0], "Sum")), 40.0);
    assert_eq!(float(get(&points[0], "SampleCount")), 2.0);
    assert_eq!(float(get(&points[0], "Maximum")), 30.0);
    assert_eq!(get(&points[0], "Unit").as_text(), Some("Milliseconds"));
    assert_eq!(
        float(get(get(&points[0], "ExtendedStatistics"), "p50")),
        10.0
    );
    assert_eq!(time_of(get(&points[1], "Timestamp")), t0 + 60_000);
    assert_eq!(float(get(&points[1], "Sum")), 50.0);

    let list = cbor(&s, "ListMetrics", map(vec![("Namespace", text("Shop"))]));
    let metrics = get(list.body.as_ref().unwrap(), "Metrics")
        .as_array()
        .unwrap()
        .clone();
    let mut names: Vec<_> = metrics
        .iter()
        .map(|m| get(m, "MetricName").as_text().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["Latency", "Requests"]);
    let filtered = cbor(
        &s,
        "ListMetrics",
        map(vec![(
            "Dimensions",
            Value::Array(vec![map(vec![("Name", text("Env"))])]),
        )]),
    );
    let only = get(filtered.body.as_ref().unwrap(), "Metrics")
        .as_array()
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(get(&only[0], "Namespace").as_text(), Some("Shop"));
    assert_eq!(get(&only[0], "Dimensions").as_array().unwrap().len(), 2);

    let stat = |id: &str, name: &str, d: &[(&str, &str)], stat: &str| {
        map(vec![
            ("Id", text(id)),
            (
                "MetricStat",
                map(vec![
                    (
                        "Metric",
                        map(vec![
                            ("Namespace", text("Shop")),
                            ("MetricName", text(name)),
                            ("Dimensions", dims(d)),
                        ]),
                    ),
                    ("Period", Value::Integer(60.into())),
                    ("Stat", text(stat)),
                ]),
            ),
        ])
    };
    let data = cbor(
        &s,
        "GetMetricData",
        map(vec![
            (
                "MetricDataQueries",
                Value::Array(vec![
                    stat(
                        "lat",
                        "Latency",
                        &[("Service", "web"), ("Env", "prod")],
                        "Sum",
                    ),
                    stat("req", "Requests", &[("Service", "web")], "Sum"),
                    map(vec![
                        ("Id", text("per")),
                        ("Expression", text("lat / req")),
                        ("Label", text("Latency per request")),
                    ]),
                ]),
            ),
            ("StartTime", timestamp(t0)),
            ("EndTime", timestamp(t0 + 120_000)),
            ("ScanBy", text("TimestampAscending")),
        ]),
    );
    assert_eq!(data.status, 200, "{:?}", data.body);
    let results = get(data.body.as_ref().unwrap(), "MetricDataResults")
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 3);
    let values = |r: &Value| -> Vec<f64> {
        get(r, "Values")
            .as_array()
            .unwrap()
            .iter()
            .map(float)
            .collect()
    };
    let stamps = |r: &Value| -> Vec<i64> {
        get(r, "Timestamps")
            .as_array()
            .unwrap()
            .iter()
            .map(time_of)
            .collect()
    };
    assert_eq!(values(&results[0]), [40.0, 50.0]);
    assert_eq!(stamps(&results[0]), [t0, t0 + 60_000]);
    assert_eq!(get(&results[0], "StatusCode").as_text(), Some("Complete"));
    assert_eq!(values(&results[1]), [100.0]);
    assert_eq!(
        get(&results[2], "Label").as_text(),
        Some("Latency per request")
    );
    assert_eq!(values(&results[2]), [0.4]);
    assert_eq!(stamps(&results[2]), [t0]);
}

#[test]
fn cbor_errors_carry_the_query_code() {
    let s = TestServer::start();
    let put = |namespace: &str, datum: Value| {
        cbor(
            &s,
            "PutMetricData",
            map(vec![
                ("Namespace", text(namespace)),
                ("MetricData", Value::Array(vec![datum])),
            ]),
        )
    };
    let r = put(
        "AWS/EC2",
        map(vec![
            ("MetricName", text("M")),
            ("Value", Value::Float(1.0)),
        ]),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.query_error.as_deref(),
        Some("InvalidParameterValue;Sender")
    );
    let body = r.body.unwrap();
    assert_eq!(
        get(&body, "__type").as_text(),
        Some("com.amazonaws.cloudwatch#InvalidParameterValueException")
    );
    assert_eq!(
        get(&body, "message").as_text(),
        Some("The value AWS/EC2 for parameter Namespace is invalid.")
    );
    let old = now_ms() - 15 * 24 * 3600 * 1000;
    let r = put(
        "Shop",
        map(vec![
            ("MetricName", text("M")),
            ("Value", Value::Float(1.0)),
            ("Timestamp", timestamp(old)),
        ]),
    );
    assert_eq!(
        get(r.body.as_ref().unwrap(), "message").as_text(),
        Some(
            "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks."
        )
    );
    let r = put(
        "Shop",
        map(vec![
            ("MetricName", text("M")),
            ("Value", Value::Float(1.0)),
            ("Values", Value::Array(vec![Value::Float(1.0)])),
        ]),
    );
    assert_eq!(
        r.query_error.as_deref(),
        Some("InvalidParameterCombination;Sender")
    );
    let r = cbor(
        &s,
        "GetMetricStatistics",
        map(vec![("Namespace", text("Shop"))]),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.query_error.as_deref(), Some("MissingParameter;Sender"));
    let r = cbor(&s, "PutCompositeAlarm", map(vec![]));
    assert_eq!(r.status, 404);
    assert_eq!(
        get(r.body.as_ref().unwrap(), "__type").as_text(),
        Some("UnknownOperationException")
    );
    // A body that is not CBOR.
    let garbage = s
        .json_client()
        .cbor(SERVICE, CBOR_SERVICE, "ListMetrics", b"\xff\xff")
        .unwrap();
    assert_eq!(garbage.status, 400);
}

/// A Query answer's status and XML.
pub(crate) fn query(s: &TestServer, action: &str, params: &[(&str, &str)]) -> (u16, String) {
    let mut form = format!("Action={action}&Version=2010-08-01");
    for (k, v) in params {
        let v: String = v
            .bytes()
            .map(
                |b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    true => (b as char).to_string(),
                    false => format!("%{b:02X}"),
                },
            )
            .collect();
        form.push_str(&format!("&{k}={v}"));
    }
    let r = s.json_client().query(SERVICE, REGION, &form).unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

pub(crate) fn texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .map(|rest| rest.split(&close).next().unwrap().to_string())
        .collect()
}

pub(crate) fn iso(ms: i64) -> String {
    let secs = ms / 1000;
    let (y, mo, d, h, mi, s) = berth_testkit::sigv4::utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[test]
fn query_form_puts_and_reads_back() {
    let s = TestServer::start();
    let t0 = five_minutes_ago();
    let (status, body) = query(
        &s,
        "PutMetricData",
        &[
            ("Namespace", "Queue"),
            ("MetricData.member.1.MetricName", "Depth"),
            ("MetricData.member.1.Dimensions.member.1.Name", "QueueName"),
            ("MetricData.member.1.Dimensions.member.1.Value", "jobs"),
            ("MetricData.member.1.Timestamp", &iso(t0 + 5_000)),
            ("MetricData.member.1.Values.member.1", "2"),
            ("MetricData.member.1.Values.member.2", "8"),
            ("MetricData.member.1.Counts.member.1", "3"),
            ("MetricData.member.1.Counts.member.2", "1"),
            ("MetricData.member.1.Unit", "Count"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(
            "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
        ),
        "{body}"
    );
    let (status, body) = query(
        &s,
        "GetMetricStatistics",
        &[
            ("Namespace", "Queue"),
            ("MetricName", "Depth"),
            ("Dimensions.member.1.Name", "QueueName"),
            ("Dimensions.member.1.Value", "jobs"),
            ("StartTime", &iso(t0)),
            ("EndTime", &iso(t0 + 60_000)),
            ("Period", "60"),
            ("Statistics.member.1", "Sum"),
            ("Statistics.member.2", "SampleCount"),
            ("ExtendedStatistics.member.1", "p90"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<GetMetricStatisticsResult><Label>Depth</Label>"),
        "{body}"
    );
    assert_eq!(texts(&body, "Timestamp"), [iso(t0)]);
    assert_eq!(texts(&body, "Sum"), ["14"]);
    assert_eq!(texts(&body, "SampleCount"), ["4"]);
    assert_eq!(texts(&body, "Unit"), ["Count"]);
    assert!(
        body.contains(
            "<ExtendedStatistics><entry><key>p90</key><value>8</value></entry></ExtendedStatistics>"
        ),
        "{body}"
    );
    let (_, body) = query(&s, "ListMetrics", &[("MetricName", "Depth")]);
    assert_eq!(texts(&body, "Namespace"), ["Queue"]);
    assert_eq!(texts(&body, "Value"), ["jobs"]);
    let (status, body) = query(
        &s,
        "GetMetricData",
        &[
            ("MetricDataQueries.member.1.Id", "d"),
            (
                "MetricDataQueries.member.1.MetricStat.Metric.Namespace",
                "Queue",
            ),
            (
                "MetricDataQueries.member.1.MetricStat.Metric.MetricName",
                "Depth",
            ),
            (
                "MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name",
                "QueueName",
            ),
            (
                "MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value",
                "jobs",
            ),
            ("MetricDataQueries.member.1.MetricStat.Period", "60"),
            ("MetricDataQueries.member.1.MetricStat.Stat", "Maximum"),
            ("MetricDataQueries.member.1.ReturnData", "false"),
            ("MetricDataQueries.member.2.Id", "twice"),
            ("MetricDataQueries.member.2.Expression", "d * 2"),
            ("StartTime", &iso(t0)),
            ("EndTime", &iso(t0 + 60_000)),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(&body, "Id"), ["twice"]);
    assert_eq!(texts(&body, "StatusCode"), ["Complete"]);
    assert!(
        body.contains(&format!(
            "<Timestamps><member>{}</member></Timestamps><Values><member>16</member></Values>",
            iso(t0)
        )),
        "{body}"
    );
    // Errors in the Query form's shape.
    let (status, body) = query(
        &s,
        "PutMetricData",
        &[
            ("Namespace", "AWS/SQS"),
            ("MetricData.member.1.MetricName", "M"),
            ("MetricData.member.1.Value", "1"),
        ],
    );
    assert_eq!(status, 400);
    assert!(body.contains("<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><Error><Type>Sender</Type><Code>InvalidParameterValue</Code>"), "{body}");
    let (status, body) = query(&s, "PutCompositeAlarm", &[]);
    assert_eq!(status, 400);
    assert_eq!(texts(&body, "Code"), ["InvalidAction"]);
}

#[test]
fn iam_policies_decide_with_the_namespace_condition() {
    let s = TestServer::start();
    let iam = |action: &str, params: &[(&str, &str)]| {
        let mut form = format!("Action={action}&Version=2010-05-08");
        for (k, v) in params {
            let v: String = v
                .bytes()
                .map(
                    |b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        true => (b as char).to_string(),
                        false => format!("%{b:02X}"),
                    },
                )
                .collect();
            form.push_str(&format!("&{k}={v}"));
        }
        let r = s.json_client().query("iam", REGION, &form).unwrap();
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{body}");
        body
    };
    iam("CreateUser", &[("UserName", "metrics-writer")]);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"Allowed"}}}]}"#;
    iam(
        "PutUserPolicy",
        &[
            ("UserName", "metrics-writer"),
            ("PolicyName", "put"),
            ("PolicyDocument", policy),
        ],
    );
    let keys = iam("CreateAccessKey", &[("UserName", "metrics-writer")]);
    let (id, secret) = (
        texts(&keys, "AccessKeyId")[0].clone(),
        texts(&keys, "SecretAccessKey")[0].clone(),
    );
    let client = s.json_client().with_keys(&id, &secret);
    let put = |namespace: &str| {
        let body = map(vec![
            ("Namespace", text(namespace)),
            (
                "MetricData",
                Value::Array(vec![map(vec![
                    ("MetricName", text("M")),
                    ("Value", Value::Float(1.0)),
                ])]),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&body, &mut bytes).unwrap();
        client
            .cbor(SERVICE, CBOR_SERVICE, "PutMetricData", &bytes)
            .unwrap()
    };
    assert_eq!(put("Allowed").status, 200);
    let refused = put("Other");
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.header("x-amzn-query-error"),
        Some("AccessDenied;Sender")
    );
    let r = client
        .query(SERVICE, REGION, "Action=ListMetrics&Version=2010-08-01")
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        texts(&String::from_utf8_lossy(&r.body), "Code"),
        ["AccessDenied"]
    );
}

#[test]
fn json_form_puts_and_reads_back() {
    let s = TestServer::start();
    let t0 = five_minutes_ago();
    let call = |operation: &str, body: serde_json::Value| {
        s.json_client()
            .call(SERVICE, &format!("{CBOR_SERVICE}.{operation}"), &body)
            .unwrap()
    };
    let put = call(
        "PutMetricData",
        serde_json::json!({"Namespace": "Json", "MetricData": [
            {"MetricName": "Hits", "Timestamp": t0 / 1000 + 3, "Value": 2.5, "Unit": "Count",
             "StorageResolution": 1},
            {"MetricName": "Hits", "Timestamp": (t0 as f64 + 4_500.0) / 1000.0, "Value": 1.5, "Unit": "Count",
             "StorageResolution": 1}
        ]}),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json(), serde_json::json!({}));
    let stats = call(
        "GetMetricStatistics",
        serde_json::json!({"Namespace": "Json", "MetricName": "Hits", "StartTime": t0 / 1000,
            "EndTime": t0 / 1000 + 10, "Period": 1, "Statistics": ["Sum"]}),
    );
    assert_eq!(stats.status, 200, "{}", stats.text());
    assert_eq!(
        stats.json(),
        serde_json::json!({"Label": "Hits", "Datapoints": [
            {"Timestamp": (t0 / 1000 + 3) as f64, "Sum": 2.5, "Unit": "Count"},
            {"Timestamp": (t0 / 1000 + 4) as f64, "Sum": 1.5, "Unit": "Count"}
        ]})
    );
    let refused = call(
        "PutMetricData",
        serde_json::json!({"Namespace": "AWS/Lambda", "MetricData": [{"MetricName": "M", "Value": 1}]}),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    assert_eq!(
        refused.json()["__type"],
        "com.amazonaws.cloudwatch#InvalidParameterValueException"
    );
}
