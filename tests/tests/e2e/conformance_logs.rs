//! CloudWatch Logs answers as AWS answers, driven with the real `aws` CLI (issue 16, section
//! 2, the Logs part): metric filters (and what they count), name validation, KMS keys,
//! query definitions, resource policies. Each test names the evidence for the exact text.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of, stdout_of};
use serde_json::{Value, json};

fn create_group(s: &BerthServer, group: &str) {
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", group]));
}

#[track_caller]
fn refused(s: &BerthServer, args: &[&str], code: &str, message: &str) {
    let out = s.aws(args);
    assert_aws_error(&out, code);
    assert!(
        stderr_of(&out).contains(message),
        "expected {message:?} in {}",
        stderr_of(&out)
    );
}

/// PutMetricFilter / DescribeMetricFilters / DeleteMetricFilter with the shapes of the API
/// reference (MetricFilter, MetricTransformation); every ingested batch is counted per
/// filter (events matched, sum of metric values from `$.field` and `$field`), durably, and
/// `berth metric-filter-counts` shows it (CloudWatch metrics come in a later issue).
#[test]
fn metric_filters_are_kept_described_and_count_what_they_match() {
    let mut s = BerthServer::start();
    create_group(&s, "/app");
    ok_json(&s.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/app",
        "--log-stream-name",
        "web",
    ]));
    let latency = json!([{
        "metricName": "Latency",
        "metricNamespace": "App",
        "metricValue": "$.latency",
        "unit": "Milliseconds",
        "dimensions": {"Path": "$.path"},
    }]);
    ok_json(&s.aws(&[
        "logs",
        "put-metric-filter",
        "--log-group-name",
        "/app",
        "--filter-name",
        "latency",
        "--filter-pattern",
        "{ $.latency > 0 }",
        "--metric-transformations",
        &latency.to_string(),
    ]));
    let bytes = json!([{
        "metricName": "Bytes",
        "metricNamespace": "Web",
        "metricValue": "$bytes",
        "defaultValue": 0.0,
    }]);
    ok_json(&s.aws(&[
        "logs",
        "put-metric-filter",
        "--log-group-name",
        "/app",
        "--filter-name",
        "bytes",
        "--filter-pattern",
        "[ip, user, ..., status = 2*, bytes]",
        "--metric-transformations",
        &bytes.to_string(),
    ]));

    let all = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--log-group-name",
        "/app",
    ]));
    let filters = all["metricFilters"].as_array().unwrap();
    assert_eq!(filters.len(), 2, "{all:#}");
    // Filter name order.
    assert_eq!(filters[0]["filterName"], "bytes");
    let f = &filters[1];
    assert_eq!(f["filterName"], "latency");
    assert_eq!(f["filterPattern"], "{ $.latency > 0 }");
    assert_eq!(f["logGroupName"], "/app");
    assert!(f["creationTime"].as_i64().unwrap() > 0, "{f:#}");
    assert_eq!(f["metricTransformations"], latency, "{f:#}");
    assert_eq!(
        filters[0]["metricTransformations"][0]["defaultValue"], 0.0,
        "{all:#}"
    );
    let groups = ok_json(&s.aws(&["logs", "describe-log-groups"]));
    assert_eq!(groups["logGroups"][0]["metricFilterCount"], 2, "{groups:#}");

    // Narrowed by name prefix, and by metric name with its namespace.
    let by_prefix = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--log-group-name",
        "/app",
        "--filter-name-prefix",
        "lat",
    ]));
    assert_eq!(by_prefix["metricFilters"][0]["filterName"], "latency");
    assert_eq!(by_prefix["metricFilters"].as_array().unwrap().len(), 1);
    let by_metric = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--metric-name",
        "Bytes",
        "--metric-namespace",
        "Web",
    ]));
    assert_eq!(by_metric["metricFilters"][0]["filterName"], "bytes");
    assert_eq!(by_metric["metricFilters"].as_array().unwrap().len(), 1);
    // Paging: one filter a page, nextToken followed by the CLI.
    let paged = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--log-group-name",
        "/app",
        "--page-size",
        "1",
    ]));
    assert_eq!(
        paged["metricFilters"].as_array().unwrap().len(),
        2,
        "{paged:#}"
    );

    // Two batches: the JSON filter matches 2 events (12 + 30 ms), the space-delimited one
    // 2 lines with a 2xx status (1534 + 10 bytes).
    let now = berth_e2e::now_ms();
    let events = json!([
        {"timestamp": now, "message": r#"{"latency": 12, "path": "/a"}"#},
        {"timestamp": now, "message": r#"{"latency": 0, "path": "/b"}"#},
        {"timestamp": now, "message": "10.0.0.1 frank GET /x 200 1534"},
        {"timestamp": now, "message": "10.0.0.1 frank GET /y 404 99"},
    ]);
    let more = json!([
        {"timestamp": now, "message": r#"{"latency": 30, "path": "/a"}"#},
        {"timestamp": now, "message": "10.0.0.2 - GET /z 204 10"},
    ]);
    for batch in [&events, &more] {
        ok_json(&s.aws(&[
            "logs",
            "put-log-events",
            "--log-group-name",
            "/app",
            "--log-stream-name",
            "web",
            "--log-events",
            &batch.to_string(),
        ]));
    }

    // The counts are durable: read from the store with the server stopped, and still there
    // after a restart.
    s.interrupt();
    let counts = |s: &BerthServer| -> Vec<Value> {
        let out = s.berth_offline("metric-filter-counts", &["--log-group-name", "/app"]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let first = counts(&s);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0]["filterName"], "bytes");
    assert_eq!(first[0]["matchedEvents"], 2);
    assert_eq!(first[0]["metricValueSum"], 1544.0);
    assert_eq!(first[1]["filterName"], "latency");
    assert_eq!(first[1]["matchedEvents"], 2);
    assert_eq!(first[1]["metricValueSum"], 42.0);
    assert_eq!(first[1]["metricNamespace"], "App");
    s.restart();

    // Replacing a filter keeps its creation time (and counts); deleting it twice: the
    // second answer is ResourceNotFoundException with CloudWatch Logs' text.
    let created = f["creationTime"].clone();
    ok_json(&s.aws(&[
        "logs",
        "put-metric-filter",
        "--log-group-name",
        "/app",
        "--filter-name",
        "latency",
        "--filter-pattern",
        "{ $.latency > 10 }",
        "--metric-transformations",
        &latency.to_string(),
    ]));
    let replaced = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--log-group-name",
        "/app",
        "--filter-name-prefix",
        "latency",
    ]));
    assert_eq!(
        replaced["metricFilters"][0]["filterPattern"],
        "{ $.latency > 10 }"
    );
    assert_eq!(replaced["metricFilters"][0]["creationTime"], created);
    ok_json(&s.aws(&[
        "logs",
        "delete-metric-filter",
        "--log-group-name",
        "/app",
        "--filter-name",
        "latency",
    ]));
    refused(
        &s,
        &[
            "logs",
            "delete-metric-filter",
            "--log-group-name",
            "/app",
            "--filter-name",
            "latency",
        ],
        "ResourceNotFoundException",
        "The specified metric filter does not exist.",
    );
    let left = ok_json(&s.aws(&[
        "logs",
        "describe-metric-filters",
        "--log-group-name",
        "/app",
    ]));
    assert_eq!(left["metricFilters"].as_array().unwrap().len(), 1);

    // A missing group; a pattern the engine refuses (FilterLogEvents' text).
    refused(
        &s,
        &[
            "logs",
            "put-metric-filter",
            "--log-group-name",
            "/nope",
            "--filter-name",
            "f",
            "--filter-pattern",
            "ERROR",
            "--metric-transformations",
            "metricName=M,metricNamespace=N,metricValue=1",
        ],
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
    refused(
        &s,
        &[
            "logs",
            "put-metric-filter",
            "--log-group-name",
            "/app",
            "--filter-name",
            "f",
            "--filter-pattern",
            "{ $.x = }",
            "--metric-transformations",
            "metricName=M,metricNamespace=N,metricValue=1",
        ],
        "InvalidParameterException",
        "Invalid filter pattern",
    );
    refused(
        &s,
        &[
            "logs",
            "describe-metric-filters",
            "--log-group-name",
            "/nope",
        ],
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
}

/// TestMetricFilter answers as the API reference's examples show (TestMetricFilter,
/// "To test a metric filter pattern on Apache access.log events without specifying all the
/// fields"): `[..., size]` extracts `$size` by name and the fields the `...` swallowed as
/// `$1`…`$6`; a pattern that is not space-delimited extracts nothing; only matched events,
/// numbered from 0.
#[test]
fn test_metric_filter_answers_as_the_api_reference_examples() {
    let s = BerthServer::start();
    let lines = [
        r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
        r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#,
    ];
    let mut args = vec![
        "logs",
        "test-metric-filter",
        "--filter-pattern",
        "[..., size]",
        "--log-event-messages",
    ];
    args.extend(lines);
    let answer = ok_json(&s.aws(&args));
    assert_eq!(
        answer,
        json!({"matches": [
            {
                "eventNumber": 0,
                "eventMessage": lines[0],
                "extractedValues": {
                    "$size": "1534", "$6": "200", "$4": "10/Oct/2000:13:25:15 -0700",
                    "$5": "GET /apache_pb.gif HTTP/1.0", "$2": "-", "$3": "frank",
                    "$1": "127.0.0.1"
                }
            },
            {
                "eventNumber": 1,
                "eventMessage": lines[1],
                "extractedValues": {
                    "$size": "5324", "$6": "500", "$4": "10/Oct/2000:13:35:22 -0700",
                    "$5": "GET /apache_pb.gif HTTP/1.0", "$2": "-", "$3": "frank",
                    "$1": "127.0.0.1"
                }
            }
        ]}),
    );
    let errors = ok_json(&s.aws(&[
        "logs",
        "test-metric-filter",
        "--filter-pattern",
        "\"[ERROR]\" Exception",
        "--log-event-messages",
        "02 May 2014 00:34:12,525 [INFO] Starting the application",
        "02 May 2014 00:34:16,142 [ERROR] Unhanded exception: InvalidQueryException",
    ]));
    assert_eq!(
        errors,
        json!({"matches": [{
            "eventNumber": 1,
            "eventMessage": "02 May 2014 00:34:16,142 [ERROR] Unhanded exception: InvalidQueryException",
            "extractedValues": {}
        }]})
    );
    refused(
        &s,
        &[
            "logs",
            "test-metric-filter",
            "--filter-pattern",
            "a.b",
            "--log-event-messages",
            "x",
        ],
        "InvalidParameterException",
        "Invalid character(s) in term 'a.b'",
    );
}

/// Names are checked length first, then pattern, with AWS's request-validation texts
/// ("1 validation error detected: Value '…' at 'logGroupName' failed to satisfy constraint:
/// Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+", as quoted in many
/// aws-cli reports, e.g. the Git Bash path-conversion ones; "…Member must have length less
/// than or equal to 512", the Coral wording of the model's max: 512). When a name breaks
/// both, AWS may list both as "2 validation errors detected"; no published response shows
/// which, so Berth reports the length alone. The aws CLI checks the minimum length itself,
/// so an empty name never reaches the server.
#[test]
fn names_are_validated_length_first_with_aws_texts() {
    let s = BerthServer::start();
    let long = "a".repeat(513);
    refused(
        &s,
        &["logs", "create-log-group", "--log-group-name", &long],
        "InvalidParameterException",
        &format!(
            "1 validation error detected: Value '{long}' at 'logGroupName' failed to satisfy constraint: Member must have length less than or equal to 512"
        ),
    );
    let long_and_bad = format!("{}!", "a".repeat(512));
    refused(
        &s,
        &[
            "logs",
            "create-log-group",
            "--log-group-name",
            &long_and_bad,
        ],
        "InvalidParameterException",
        "Member must have length less than or equal to 512",
    );
    refused(
        &s,
        &["logs", "create-log-group", "--log-group-name", "bad!name"],
        "InvalidParameterException",
        r"1 validation error detected: Value 'bad!name' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
    );
    // Every operation naming a group checks the name before looking it up.
    refused(
        &s,
        &[
            "logs",
            "describe-log-streams",
            "--log-group-name",
            "bad!name",
        ],
        "InvalidParameterException",
        "Member must satisfy regular expression pattern",
    );
    create_group(&s, &"a".repeat(512));
    create_group(&s, "/g");
    refused(
        &s,
        &[
            "logs",
            "create-log-stream",
            "--log-group-name",
            "/g",
            "--log-stream-name",
            "a:b",
        ],
        "InvalidParameterException",
        "1 validation error detected: Value 'a:b' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*",
    );
    refused(
        &s,
        &[
            "logs",
            "create-log-stream",
            "--log-group-name",
            "/g",
            "--log-stream-name",
            &long,
        ],
        "InvalidParameterException",
        &format!(
            "Value '{long}' at 'logStreamName' failed to satisfy constraint: Member must have length less than or equal to 512"
        ),
    );
}

/// `kmsKeyId` on CreateLogGroup, AssociateKmsKey and DisassociateKmsKey, shown by
/// DescribeLogGroups. A key that is not a KMS key ARN of the group's region is refused with
/// the text CloudWatch Logs gives for a key it cannot use ("The specified KMS Key Id could
/// not be found. '<group>'", InvalidParameterException, quoted in hashicorp/terraform#24194
/// and aws-samples/hub-and-spoke-with-inspection-vpc-terraform#2).
#[test]
fn kms_key_ids_are_kept_and_shown() {
    let s = BerthServer::start();
    let key = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let other = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";
    ok_json(&s.aws(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        "/enc",
        "--kms-key-id",
        key,
    ]));
    let shown = |s: &BerthServer| {
        let groups = ok_json(&s.aws(&[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            "/enc",
        ]));
        groups["logGroups"][0]["kmsKeyId"].clone()
    };
    assert_eq!(shown(&s), key);
    ok_json(&s.aws(&[
        "logs",
        "associate-kms-key",
        "--log-group-name",
        "/enc",
        "--kms-key-id",
        other,
    ]));
    assert_eq!(shown(&s), other);
    ok_json(&s.aws(&["logs", "disassociate-kms-key", "--log-group-name", "/enc"]));
    assert_eq!(shown(&s), Value::Null);
    // By the group's ARN (resourceIdentifier).
    ok_json(&s.aws(&[
        "logs",
        "associate-kms-key",
        "--resource-identifier",
        "arn:aws:logs:us-east-1:000000000000:log-group:/enc",
        "--kms-key-id",
        key,
    ]));
    assert_eq!(shown(&s), key);

    for bad in [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:000000000000:key/1234abcd",
        "alias/mine",
    ] {
        refused(
            &s,
            &[
                "logs",
                "create-log-group",
                "--log-group-name",
                "/enc2",
                "--kms-key-id",
                bad,
            ],
            "InvalidParameterException",
            "The specified KMS Key Id could not be found. '/enc2'",
        );
    }
    refused(
        &s,
        &[
            "logs",
            "associate-kms-key",
            "--log-group-name",
            "/missing",
            "--kms-key-id",
            key,
        ],
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
}

/// PutQueryDefinition creates (a new `queryDefinitionId`) or updates by id;
/// DescribeQueryDefinitions narrows by name prefix and pages; DeleteQueryDefinition answers
/// `success` (QueryDefinition's fields as the API reference names them).
#[test]
fn query_definitions_are_saved_listed_and_deleted() {
    let s = BerthServer::start();
    let created = ok_json(&s.aws(&[
        "logs",
        "put-query-definition",
        "--name",
        "errors/by-host",
        "--query-string",
        "fields @timestamp | filter level = 'error'",
        "--log-group-names",
        "/app",
        "/web",
    ]));
    let id = created["queryDefinitionId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{created:#}");
    let other = ok_json(&s.aws(&[
        "logs",
        "put-query-definition",
        "--name",
        "latency",
        "--query-string",
        "stats avg(latency)",
    ]));
    let other_id = other["queryDefinitionId"].as_str().unwrap().to_string();
    assert_ne!(other_id, id);
    // Updated by id: same id, new text.
    let updated = ok_json(&s.aws(&[
        "logs",
        "put-query-definition",
        "--query-definition-id",
        &id,
        "--name",
        "errors/by-host",
        "--query-string",
        "fields @message",
        "--log-group-names",
        "/app",
    ]));
    assert_eq!(updated["queryDefinitionId"], id.as_str());

    let listed = ok_json(&s.aws(&[
        "logs",
        "describe-query-definitions",
        "--query-definition-name-prefix",
        "errors/",
    ]));
    let defs = listed["queryDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), 1, "{listed:#}");
    assert_eq!(defs[0]["queryDefinitionId"], id.as_str());
    assert_eq!(defs[0]["name"], "errors/by-host");
    assert_eq!(defs[0]["queryString"], "fields @message");
    assert_eq!(defs[0]["logGroupNames"], json!(["/app"]));
    assert!(defs[0]["lastModified"].as_i64().unwrap() > 0, "{listed:#}");

    // Paging by hand: one a page, in name order.
    let first = ok_json(&s.aws(&["logs", "describe-query-definitions", "--max-results", "1"]));
    assert_eq!(first["queryDefinitions"][0]["name"], "errors/by-host");
    let token = first["nextToken"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = ok_json(&s.aws(&[
        "logs",
        "describe-query-definitions",
        "--max-results",
        "1",
        "--next-token",
        &token,
    ]));
    assert_eq!(second["queryDefinitions"][0]["name"], "latency");
    assert!(second.get("nextToken").is_none(), "{second:#}");

    let deleted = ok_json(&s.aws(&[
        "logs",
        "delete-query-definition",
        "--query-definition-id",
        &id,
    ]));
    assert_eq!(deleted, json!({"success": true}));
    let out = s.aws(&[
        "logs",
        "delete-query-definition",
        "--query-definition-id",
        &id,
    ]);
    assert_aws_error(&out, "ResourceNotFoundException");
    let out = s.aws(&[
        "logs",
        "put-query-definition",
        "--query-definition-id",
        &id,
        "--name",
        "x",
        "--query-string",
        "fields @message",
    ]);
    assert_aws_error(&out, "ResourceNotFoundException");
}

/// Account resource policies (policyName, policyDocument, lastUpdatedTime, policyScope,
/// revisionId as the installed botocore reads them), at most 10 (PutResourcePolicy's API
/// reference), DeleteResourcePolicy's "Policy with name [NAME] does not exist." (relayed in
/// aws/aws-cdk#12016); a log group's own policy by `resourceArn`.
#[test]
fn resource_policies_are_kept_limited_and_deleted() {
    let s = BerthServer::start();
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "es.amazonaws.com"},
            "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
            "Resource": "arn:aws:logs:us-east-1:000000000000:log-group:/es/*"
        }]
    })
    .to_string();
    let put = ok_json(&s.aws(&[
        "logs",
        "put-resource-policy",
        "--policy-name",
        "es",
        "--policy-document",
        &document,
    ]));
    let policy = &put["resourcePolicy"];
    assert_eq!(policy["policyName"], "es");
    assert_eq!(policy["policyDocument"], document.as_str());
    assert_eq!(policy["policyScope"], "ACCOUNT");
    assert!(policy["lastUpdatedTime"].as_i64().unwrap() > 0, "{put:#}");
    assert_eq!(put["revisionId"], policy["revisionId"]);

    for n in 1..10 {
        ok_json(&s.aws(&[
            "logs",
            "put-resource-policy",
            "--policy-name",
            &format!("p{n}"),
            "--policy-document",
            &document,
        ]));
    }
    refused(
        &s,
        &[
            "logs",
            "put-resource-policy",
            "--policy-name",
            "eleventh",
            "--policy-document",
            &document,
        ],
        "LimitExceededException",
        "Resource limit exceeded.",
    );
    // Replacing one of the ten is not a new one.
    ok_json(&s.aws(&[
        "logs",
        "put-resource-policy",
        "--policy-name",
        "es",
        "--policy-document",
        &document,
    ]));
    let listed = ok_json(&s.aws(&["logs", "describe-resource-policies"]));
    assert_eq!(listed["resourcePolicies"].as_array().unwrap().len(), 10);

    ok_json(&s.aws(&["logs", "delete-resource-policy", "--policy-name", "es"]));
    refused(
        &s,
        &["logs", "delete-resource-policy", "--policy-name", "es"],
        "ResourceNotFoundException",
        "Policy with name [es] does not exist.",
    );

    // A log group's own policy, by its ARN.
    create_group(&s, "/es/app");
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:/es/app";
    let scoped = ok_json(&s.aws(&[
        "logs",
        "put-resource-policy",
        "--resource-arn",
        arn,
        "--policy-document",
        &document,
    ]));
    assert_eq!(scoped["resourcePolicy"]["policyScope"], "RESOURCE");
    assert_eq!(scoped["resourcePolicy"]["resourceArn"], arn);
    let of_group = ok_json(&s.aws(&["logs", "describe-resource-policies", "--resource-arn", arn]));
    assert_eq!(of_group["resourcePolicies"].as_array().unwrap().len(), 1);
    let account_only = ok_json(&s.aws(&[
        "logs",
        "describe-resource-policies",
        "--policy-scope",
        "ACCOUNT",
    ]));
    assert_eq!(
        account_only["resourcePolicies"].as_array().unwrap().len(),
        9
    );
    refused(
        &s,
        &[
            "logs",
            "put-resource-policy",
            "--resource-arn",
            "arn:aws:logs:us-east-1:000000000000:log-group:/missing",
            "--policy-document",
            &document,
        ],
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
}
