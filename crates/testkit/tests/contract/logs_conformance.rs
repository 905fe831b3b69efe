//! CloudWatch Logs conformance in-process (issue 16): metric filters' checks and paging,
//! TestMetricFilter's bounds, KMS keys, query definitions and resource policies with their
//! revisions. The real-CLI versions are tests/tests/e2e/conformance_logs.rs.

use berth_testkit::logs::{group_and_stream, put};
use berth_testkit::{TestServer, now_ms};
use serde_json::{Value, json};

fn transformation(value: &str) -> Value {
    json!([{"metricName": "M", "metricNamespace": "N", "metricValue": value}])
}

#[test]
fn metric_filters_check_their_shape_and_page() {
    let s = TestServer::start();
    let (group, stream) = group_and_stream(&s);
    let put_filter = |name: &str, pattern: &str, t: Value| {
        s.logs(
            "PutMetricFilter",
            json!({"logGroupName": group, "filterName": name, "filterPattern": pattern,
                   "metricTransformations": t}),
        )
    };
    for n in 0..5 {
        put_filter(&format!("f{n}"), "ERROR", transformation("1")).ok();
    }
    // Paging with limit 2: 2, 2, 1, in name order.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = json!({"logGroupName": group, "limit": 2});
        if let Some(t) = &token {
            q["nextToken"] = json!(t);
        }
        let page = s.logs("DescribeMetricFilters", q).ok();
        pages += 1;
        for f in page["metricFilters"].as_array().unwrap() {
            names.push(f["filterName"].as_str().unwrap().to_string());
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4"]);
    assert_eq!(pages, 3);

    put_filter("bad:name", "ERROR", transformation("1")).expect_error("InvalidParameterException");
    let e = put_filter("f", "ERROR", transformation("$bytes"));
    e.expect_error("InvalidParameterException");
    let bad_unit = json!([{"metricName": "M", "metricNamespace": "N", "metricValue": "1",
                           "unit": "Parsecs"}]);
    let e = put_filter("f", "ERROR", bad_unit);
    e.expect_error("InvalidParameterException");
    assert!(
        e.message().contains("Member must satisfy enum value set"),
        "{}",
        e.message()
    );
    let two = json!([
        {"metricName": "M", "metricNamespace": "N", "metricValue": "1"},
        {"metricName": "M2", "metricNamespace": "N", "metricValue": "1"}
    ]);
    put_filter("f", "ERROR", two).expect_error("InvalidParameterException");
    s.logs(
        "DescribeMetricFilters",
        json!({"logGroupName": group, "metricName": "M"}),
    )
    .expect_error("InvalidParameterException");
    s.logs(
        "DescribeMetricFilters",
        json!({"logGroupName": group, "limit": 51}),
    )
    .expect_error("InvalidParameterException");

    // A JSON metric value from matched events; an event without the field adds nothing.
    put_filter("latency", "{ $.ms = * }", transformation("$.ms")).ok();
    let now = now_ms();
    put(
        &s,
        &group,
        &stream,
        &[
            json!({"timestamp": now, "message": "{\"ms\": 5}"}),
            json!({"timestamp": now, "message": "{\"ms\": \"x\"}"}),
        ],
    );
    let groups = s
        .logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}))
        .ok();
    assert_eq!(groups["logGroups"][0]["metricFilterCount"], 6, "{groups:#}");
}

#[test]
fn test_metric_filter_bounds_and_space_delimited_names() {
    let s = TestServer::start();
    let many: Vec<String> = (0..51).map(|n| format!("m{n}")).collect();
    s.logs(
        "TestMetricFilter",
        json!({"filterPattern": "", "logEventMessages": many}),
    )
    .expect_error("InvalidParameterException");
    let answer = s
        .logs(
            "TestMetricFilter",
            json!({"filterPattern": "[..., request=*.html*, status_code=4*,]",
                   "logEventMessages": [
                       "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534",
                       "127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] \"GET /about-us/index.html HTTP/1.0\" 200 5324"
                   ]}),
        )
        .ok();
    // The API reference's fourth example: named fields by name, the others by position.
    assert_eq!(
        answer["matches"],
        json!([{
            "eventNumber": 0,
            "eventMessage": "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534",
            "extractedValues": {
                "$status_code": "404", "$request": "GET /index.html HTTP/1.0", "$7": "1534",
                "$4": "10/Oct/2000:13:25:15 -0700", "$2": "-", "$3": "frank", "$1": "127.0.0.1"
            }
        }])
    );
}

#[test]
fn query_definitions_and_resource_policies_keep_their_revisions() {
    let s = TestServer::start();
    for name in ["b", "a", "c"] {
        s.logs(
            "PutQueryDefinition",
            json!({"name": name, "queryString": "fields @message"}),
        )
        .ok();
    }
    let all = s.logs("DescribeQueryDefinitions", json!({})).ok();
    let names: Vec<&str> = all["queryDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(all["queryDefinitions"][0]["queryLanguage"], "CWLI");
    s.logs(
        "PutQueryDefinition",
        json!({"name": "", "queryString": "fields @message"}),
    )
    .expect_error("InvalidParameterException");

    let doc = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let (group, _) = group_and_stream(&s);
    let arn = format!("arn:aws:logs:us-east-1:000000000000:log-group:{group}");
    let first = s
        .logs(
            "PutResourcePolicy",
            json!({"resourceArn": arn, "policyDocument": doc}),
        )
        .ok();
    let revision = first["revisionId"].as_str().unwrap().to_string();
    // A stale expectedRevisionId is refused; the current one replaces the policy.
    s.logs(
        "PutResourcePolicy",
        json!({"resourceArn": arn, "policyDocument": doc, "expectedRevisionId": "stale"}),
    )
    .expect_error("InvalidOperationException");
    let second = s
        .logs(
            "PutResourcePolicy",
            json!({"resourceArn": arn, "policyDocument": doc, "expectedRevisionId": revision}),
        )
        .ok();
    assert_ne!(second["revisionId"], json!(revision));
    s.logs(
        "PutResourcePolicy",
        json!({"policyName": "p", "policyDocument": "not json"}),
    )
    .expect_error("InvalidParameterException");
    // Deleting the group takes its policy along.
    s.logs("DeleteLogGroup", json!({"logGroupName": group}))
        .ok();
    let left = s
        .logs(
            "DescribeResourcePolicies",
            json!({"policyScope": "RESOURCE"}),
        )
        .ok();
    assert_eq!(left["resourcePolicies"], json!([]));
}

#[test]
fn kms_keys_need_a_name_or_an_identifier_not_both() {
    let s = TestServer::start();
    let (group, _) = group_and_stream(&s);
    let key = "arn:aws:kms:us-east-1:000000000000:key/abcd";
    s.logs(
        "AssociateKmsKey",
        json!({"logGroupName": group, "resourceIdentifier": format!("arn:aws:logs:us-east-1:000000000000:log-group:{group}"), "kmsKeyId": key}),
    )
    .expect_error("InvalidParameterException");
    s.logs(
        "AssociateKmsKey",
        json!({"logGroupName": group, "kmsKeyId": key}),
    )
    .ok();
    let groups = s
        .logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}))
        .ok();
    assert_eq!(groups["logGroups"][0]["kmsKeyId"], key);
}
