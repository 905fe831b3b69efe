//! SSM Parameter Store, in-process through the HTTP stack: versions and selectors, paths
//! and filters, labels, tags, SSM's error shapes, SecureString values sealed in the store
//! and opened only for a caller allowed `kms:Decrypt`. (The `aws ssm` CLI drives the same
//! in tests/tests/e2e/ssm_parameters.rs.)

use berth_testkit::agent::uri_encode;
use berth_testkit::{Endpoint, HttpResponse, SSM_TARGET, TestServer};
use serde_json::{Value, json};

fn put(s: &TestServer, name: &str, value: &str, kind: &str) -> Value {
    s.ssm(
        "PutParameter",
        json!({"Name": name, "Value": value, "Type": kind}),
    )
    .ok()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn versions_selectors_history_and_labels() {
    let s = TestServer::start();
    assert_eq!(put(&s, "/app/db/url", "one", "String")["Version"], 1);
    let again = s.ssm(
        "PutParameter",
        json!({"Name": "/app/db/url", "Value": "two", "Type": "String"}),
    );
    again.expect_error("ParameterAlreadyExists");
    assert_eq!(
        again.message(),
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    );
    let second = s
        .ssm(
            "PutParameter",
            json!({"Name": "/app/db/url", "Value": "two", "Overwrite": true, "Description": "d"}),
        )
        .ok();
    assert_eq!(second, json!({"Version": 2, "Tier": "Standard"}));
    let got = s.ssm("GetParameter", json!({"Name": "/app/db/url"})).ok();
    let p = &got["Parameter"];
    assert_eq!(p["Value"], "two");
    assert_eq!(p["Version"], 2);
    assert_eq!(p["Type"], "String");
    assert_eq!(p["DataType"], "text");
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/url"
    );
    assert!(p["LastModifiedDate"].as_f64().unwrap() > 1.6e9, "{p}");
    let first = s.ssm("GetParameter", json!({"Name": "/app/db/url:1"})).ok();
    assert_eq!(first["Parameter"]["Value"], "one");
    assert_eq!(first["Parameter"]["Selector"], ":1");
    s.ssm("GetParameter", json!({"Name": "/app/db/url:7"}))
        .expect_error("ParameterVersionNotFound");
    s.ssm("GetParameter", json!({"Name": "/app/none"}))
        .expect_error("ParameterNotFound");
    // By ARN.
    let by_arn = s
        .ssm(
            "GetParameter",
            json!({"Name": "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/url"}),
        )
        .ok();
    assert_eq!(by_arn["Parameter"]["Name"], "/app/db/url");

    let labelled = s
        .ssm(
            "LabelParameterVersion",
            json!({"Name": "/app/db/url", "ParameterVersion": 1, "Labels": ["prod", "awsbad", "9no"]}),
        )
        .ok();
    assert_eq!(labelled["ParameterVersion"], 1);
    assert_eq!(labelled["InvalidLabels"], json!(["awsbad", "9no"]));
    let prod = s
        .ssm("GetParameter", json!({"Name": "/app/db/url:prod"}))
        .ok();
    assert_eq!(prod["Parameter"]["Value"], "one");
    assert_eq!(prod["Parameter"]["Selector"], ":prod");
    // The label moves to the latest version.
    s.ssm(
        "LabelParameterVersion",
        json!({"Name": "/app/db/url", "Labels": ["prod"]}),
    )
    .ok();
    let history = s
        .ssm("GetParameterHistory", json!({"Name": "/app/db/url"}))
        .ok();
    let versions = history["Parameters"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["Labels"], json!([]));
    assert_eq!(versions[1]["Labels"], json!(["prod"]));
    assert_eq!(versions[1]["Description"], "d");
    assert_eq!(
        versions[1]["LastModifiedUser"],
        "arn:aws:iam::000000000000:root"
    );
    let unlabelled = s
        .ssm(
            "UnlabelParameterVersion",
            json!({"Name": "/app/db/url", "ParameterVersion": 2, "Labels": ["prod", "other"]}),
        )
        .ok();
    assert_eq!(unlabelled["RemovedLabels"], json!(["prod"]));
    assert_eq!(unlabelled["InvalidLabels"], json!(["other"]));
    let too_many: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
    s.ssm(
        "LabelParameterVersion",
        json!({"Name": "/app/db/url", "Labels": too_many}),
    )
    .expect_error("ValidationException");
}

#[test]
fn get_parameters_paths_filters_and_pages() {
    let s = TestServer::start();
    for name in [
        "/svc/a",
        "/svc/b",
        "/svc/deep/c",
        "/svc/deep/er/d",
        "/other/x",
    ] {
        put(&s, name, "v", "String");
    }
    put(&s, "/svc/list", "a,b,c", "StringList");
    put(&s, "/svc/secret", "hidden", "SecureString");
    let got = s
        .ssm(
            "GetParameters",
            json!({"Names": ["/svc/a", "/svc/missing", "/svc/list", "/svc/a:9"]}),
        )
        .ok();
    assert_eq!(names(&got["Parameters"]), ["/svc/a", "/svc/list"]);
    assert_eq!(
        got["InvalidParameters"],
        json!(["/svc/missing", "/svc/a:9"])
    );
    assert_eq!(got["Parameters"][1]["Value"], "a,b,c");

    let one = s.ssm("GetParametersByPath", json!({"Path": "/svc"})).ok();
    assert_eq!(
        names(&one["Parameters"]),
        ["/svc/a", "/svc/b", "/svc/list", "/svc/secret"]
    );
    // Recursive, two a page, the token followed to the end.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"Path": "/svc/", "Recursive": true, "MaxResults": 2});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let page = s.ssm("GetParametersByPath", req).ok();
        assert!(page["Parameters"].as_array().unwrap().len() <= 2);
        all.extend(names(&page["Parameters"]));
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(all.len(), 6, "{all:?}");
    let secure = s
        .ssm(
            "GetParametersByPath",
            json!({"Path": "/svc", "Recursive": true, "WithDecryption": true,
                   "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]}),
        )
        .ok();
    assert_eq!(names(&secure["Parameters"]), ["/svc/secret"]);
    assert_eq!(secure["Parameters"][0]["Value"], "hidden");
    s.ssm(
        "GetParametersByPath",
        json!({"Path": "/svc", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
    )
    .expect_error("InvalidFilterKey");
    s.ssm(
        "GetParametersByPath",
        json!({"Path": "/svc", "MaxResults": 11}),
    )
    .expect_error("ValidationException");

    let described = s
        .ssm(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": ["/svc/deep"]}]}),
        )
        .ok();
    assert_eq!(
        names(&described["Parameters"]),
        ["/svc/deep/c", "/svc/deep/er/d"]
    );
    assert!(described["Parameters"][0].get("Value").is_none());
    let by_type = s
        .ssm(
            "DescribeParameters",
            json!({"Filters": [{"Key": "Type", "Values": ["SecureString"]}]}),
        )
        .ok();
    assert_eq!(names(&by_type["Parameters"]), ["/svc/secret"]);
    assert_eq!(by_type["Parameters"][0]["KeyId"], "alias/aws/ssm");
    let begins = s
        .ssm(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Option": "BeginsWith", "Values": ["/other"]}]}),
        )
        .ok();
    assert_eq!(names(&begins["Parameters"]), ["/other/x"]);
    s.ssm(
        "DescribeParameters",
        json!({"Filters": [{"Key": "Type", "Values": ["String"]}],
               "ParameterFilters": [{"Key": "Type", "Values": ["String"]}]}),
    )
    .expect_error("ValidationException");

    let deleted = s
        .ssm(
            "DeleteParameters",
            json!({"Names": ["/svc/a", "/svc/nope"]}),
        )
        .ok();
    assert_eq!(deleted["DeletedParameters"], json!(["/svc/a"]));
    assert_eq!(deleted["InvalidParameters"], json!(["/svc/nope"]));
    s.ssm("DeleteParameter", json!({"Name": "/svc/b"})).ok();
    s.ssm("DeleteParameter", json!({"Name": "/svc/b"}))
        .expect_error("ParameterNotFound");
}

#[test]
fn names_tiers_patterns_tags_and_errors() {
    let s = TestServer::start();
    let deep = "/l".repeat(16);
    s.ssm(
        "PutParameter",
        json!({"Name": deep, "Value": "v", "Type": "String"}),
    )
    .expect_error("HierarchyLevelLimitExceededException");
    s.ssm(
        "PutParameter",
        json!({"Name": "/aws/reserved", "Value": "v", "Type": "String"}),
    )
    .expect_error("ValidationException");
    s.ssm("PutParameter", json!({"Name": "/x", "Value": "v"}))
        .expect_error("ValidationException");
    s.ssm("PutParameter", json!({"Value": "v", "Type": "String"}))
        .expect_error("ValidationException");
    s.ssm(
        "PutParameter",
        json!({"Name": "/num", "Value": "abc", "Type": "String", "AllowedPattern": "^\\d+$"}),
    )
    .expect_error("ParameterPatternMismatchException");
    let big = "x".repeat(5000);
    s.ssm(
        "PutParameter",
        json!({"Name": "/big", "Value": big, "Type": "String"}),
    )
    .expect_error("ValidationException");
    let advanced = s
        .ssm(
            "PutParameter",
            json!({"Name": "/big", "Value": big, "Type": "String", "Tier": "Intelligent-Tiering"}),
        )
        .ok();
    assert_eq!(advanced["Tier"], "Advanced");
    s.ssm(
        "PutParameter",
        json!({"Name": "/big", "Value": "small", "Overwrite": true, "Tier": "Standard"}),
    )
    .expect_error("ValidationException");
    s.ssm(
        "PutParameter",
        json!({"Name": "/t", "Value": "v", "Type": "String", "Overwrite": true,
               "Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .expect_error("ValidationException");
    s.ssm(
        "PutParameter",
        json!({"Name": "/t", "Value": "v", "Type": "String", "Tags": [{"Key": "team", "Value": "a"}],
               "Policies": "[{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{\"Timestamp\":\"2030-01-01T00:00:00.000Z\"}}]",
               "Tier": "Advanced"}),
    )
    .ok();
    let policies = s
        .ssm(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/t"]}]}),
        )
        .ok();
    assert_eq!(
        policies["Parameters"][0]["Policies"][0]["PolicyType"],
        "Expiration"
    );
    s.ssm(
        "AddTagsToResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t", "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .ok();
    s.ssm(
        "RemoveTagsFromResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t", "TagKeys": ["team"]}),
    )
    .ok();
    let tags = s
        .ssm(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t"}),
        )
        .ok();
    assert_eq!(tags["TagList"], json!([{"Key": "env", "Value": "dev"}]));
    let by_tag = s
        .ssm(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "tag:env", "Values": ["dev"]}]}),
        )
        .ok();
    assert_eq!(names(&by_tag["Parameters"]), ["/t"]);
    s.ssm(
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/none"}),
    )
    .expect_error("InvalidResourceId");
    s.ssm(
        "ListTagsForResource",
        json!({"ResourceType": "Document", "ResourceId": "/t"}),
    )
    .expect_error("InvalidResourceType");
    let unknown = s.ssm("SendCommand", json!({}));
    unknown.expect_error("UnknownOperationException");
    // Signed for another service: refused.
    let crossed = s.call(
        "logs",
        &format!("{SSM_TARGET}.DescribeParameters"),
        json!({}),
    );
    crossed.expect_error("InvalidSignatureException");
}

/// A caller with its own keys, for calls as an IAM user.
struct As {
    port: u16,
    key: String,
    secret: String,
}

impl Endpoint for As {
    fn port(&self) -> u16 {
        self.port
    }
    fn access_key(&self) -> &str {
        &self.key
    }
    fn secret_key(&self) -> &str {
        &self.secret
    }
}

fn iam(s: &TestServer, form: &str) -> String {
    let answer = s
        .json_client()
        .query("iam", "us-east-1", &format!("{form}&Version=2010-05-08"))
        .unwrap();
    let text = answer.text();
    assert_eq!(answer.status, 200, "{text}");
    text
}

fn xml_field(text: &str, field: &str) -> String {
    let open = format!("<{field}>");
    let start = text.find(&open).unwrap() + open.len();
    let end = text[start..].find('<').unwrap();
    text[start..start + end].to_string()
}

fn ssm_as(user: &As, operation: &str, body: Value) -> HttpResponse {
    user.json_client()
        .call("ssm", &format!("{SSM_TARGET}.{operation}"), &body)
        .unwrap()
}

#[test]
fn secure_strings_are_sealed_at_rest_and_decryption_follows_the_keys_policies() {
    let s = TestServer::start();
    put(&s, "/db/password", "plain-hunter2", "SecureString");
    let hidden = s.ssm("GetParameter", json!({"Name": "/db/password"})).ok();
    let sealed = hidden["Parameter"]["Value"].as_str().unwrap();
    assert_ne!(sealed, "plain-hunter2");
    let shown = s
        .ssm(
            "GetParameter",
            json!({"Name": "/db/password", "WithDecryption": true}),
        )
        .ok();
    assert_eq!(shown["Parameter"]["Value"], "plain-hunter2");
    // Nothing under the data dir (the store's file among it) holds the plaintext.
    assert!(files_holding(s.data_dir(), b"plain-hunter2").is_empty());
    assert!(
        !files_holding(s.data_dir(), b"/db/password").is_empty(),
        "the store is in the data dir"
    );

    // A user allowed ssm:GetParameter*, not kms:Decrypt.
    iam(&s, "Action=CreateUser&UserName=reader");
    let key = iam(&s, "Action=CreateAccessKey&UserName=reader");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
         "Resource": "arn:aws:ssm:us-east-1:000000000000:parameter/db/*"}]});
    iam(
        &s,
        &format!(
            "Action=PutUserPolicy&UserName=reader&PolicyName=p&PolicyDocument={}",
            uri_encode(&policy.to_string())
        ),
    );
    let user = As {
        port: s.port(),
        key: xml_field(&key, "AccessKeyId"),
        secret: xml_field(&key, "SecretAccessKey"),
    };
    let plain = ssm_as(&user, "GetParameter", json!({"Name": "/db/password"}));
    assert_eq!(plain.status, 200, "{}", plain.text());
    // The AWS managed key (aws/ssm) lets every principal of the account decrypt through
    // SSM: its key policy allows them, no identity policy needed.
    let managed = ssm_as(
        &user,
        "GetParameter",
        json!({"Name": "/db/password", "WithDecryption": true}),
    );
    assert_eq!(managed.status, 200, "{}", managed.text());
    assert_eq!(managed.json()["Parameter"]["Value"], "plain-hunter2");
    // A customer key needs kms:Decrypt in the caller's policies.
    s.ssm(
        "PutParameter",
        json!({"Name": "/db/custom", "Value": "custom-hunter2", "Type": "SecureString",
               "KeyId": "alias/app"}),
    )
    .ok();
    let refused = ssm_as(
        &user,
        "GetParameter",
        json!({"Name": "/db/custom", "WithDecryption": true}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("AccessDeniedException"),
        "{}",
        refused.text()
    );
    assert!(
        refused
            .text()
            .contains("kms:Decrypt on resource: arn:aws:kms:us-east-1:000000000000:alias/app"),
        "{}",
        refused.text()
    );
    let elsewhere = ssm_as(&user, "GetParameter", json!({"Name": "/other"}));
    assert!(
        elsewhere.text().contains("AccessDeniedException"),
        "{}",
        elsewhere.text()
    );
    // With kms:Decrypt on that key, its value opens; an explicit deny on the managed key
    // refuses even the managed key's values.
    let more = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": "arn:aws:kms:us-east-1:000000000000:alias/app"},
        {"Effect": "Deny", "Action": "kms:Decrypt",
         "Resource": "arn:aws:kms:us-east-1:000000000000:alias/aws/ssm"}]});
    iam(
        &s,
        &format!(
            "Action=PutUserPolicy&UserName=reader&PolicyName=k&PolicyDocument={}",
            uri_encode(&more.to_string())
        ),
    );
    let opened = ssm_as(
        &user,
        "GetParameters",
        json!({"Names": ["/db/custom"], "WithDecryption": true}),
    );
    assert_eq!(opened.status, 200, "{}", opened.text());
    assert_eq!(opened.json()["Parameters"][0]["Value"], "custom-hunter2");
    let denied = ssm_as(
        &user,
        "GetParameter",
        json!({"Name": "/db/password", "WithDecryption": true}),
    );
    assert_eq!(denied.status, 400, "{}", denied.text());
    assert!(denied.text().contains("explicit deny"), "{}", denied.text());
}

/// The files under `dir` whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn resource_tags_take_part_in_the_decision() {
    let s = TestServer::start();
    s.ssm(
        "PutParameter",
        json!({"Name": "/shop/tagged", "Value": "yes", "Type": "String",
               "Tags": [{"Key": "team", "Value": "shop"}]}),
    )
    .ok();
    put(&s, "/shop/untagged", "no", "String");
    iam(&s, "Action=CreateUser&UserName=shopper");
    let key = iam(&s, "Action=CreateAccessKey&UserName=shopper");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "shop"}}}]});
    iam(
        &s,
        &format!(
            "Action=PutUserPolicy&UserName=shopper&PolicyName=p&PolicyDocument={}",
            uri_encode(&policy.to_string())
        ),
    );
    let user = As {
        port: s.port(),
        key: xml_field(&key, "AccessKeyId"),
        secret: xml_field(&key, "SecretAccessKey"),
    };
    let tagged = ssm_as(&user, "GetParameter", json!({"Name": "/shop/tagged"}));
    assert_eq!(tagged.status, 200, "{}", tagged.text());
    let untagged = ssm_as(&user, "GetParameter", json!({"Name": "/shop/untagged"}));
    assert!(
        untagged.text().contains("AccessDeniedException"),
        "{}",
        untagged.text()
    );
}
