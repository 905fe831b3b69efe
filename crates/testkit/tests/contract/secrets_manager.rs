//! Secrets Manager, in-process through the HTTP stack: the error shapes and messages of
//! AWS's exceptions, idempotency by ClientRequestToken, staging labels, paging, rotation
//! settings and the checks on requests. (The aws CLI workflow, resource policies for IAM
//! users and the data dir's contents are in tests/tests/e2e/secrets_manager.rs.)

use berth_testkit::{Answer, TestServer};
use serde_json::{Value, json};

fn sm(s: &TestServer, operation: &str, body: Value) -> Answer {
    s.call(
        "secretsmanager",
        &format!("secretsmanager.{operation}"),
        body,
    )
}

const TOKEN_A: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const TOKEN_B: &str = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

#[test]
fn errors_come_in_secrets_managers_shapes() {
    let s = TestServer::start();
    let missing = sm(&s, "GetSecretValue", json!({"SecretId": "nope"}));
    assert_eq!(missing.error(), "ResourceNotFoundException");
    assert_eq!(
        missing.message(),
        "Secrets Manager can't find the specified secret."
    );
    let both = sm(
        &s,
        "CreateSecret",
        json!({"Name": "x", "SecretString": "a", "SecretBinary": "YQ=="}),
    );
    assert_eq!(both.error(), "InvalidParameterException");
    let bad_name = sm(&s, "CreateSecret", json!({"Name": "has space"}));
    assert_eq!(bad_name.error(), "InvalidParameterException");
    let no_name = sm(&s, "CreateSecret", json!({}));
    assert_eq!(no_name.error(), "InvalidParameterException");
    let unknown = sm(&s, "FrobnicateSecret", json!({}));
    assert_eq!(unknown.error(), "UnknownOperationException");

    sm(
        &s,
        "CreateSecret",
        json!({"Name": "app", "SecretString": "v1"}),
    )
    .ok();
    let dup = sm(
        &s,
        "CreateSecret",
        json!({"Name": "app", "SecretString": "v1"}),
    );
    assert_eq!(dup.error(), "ResourceExistsException");
    assert_eq!(
        dup.message(),
        "The operation failed because the secret app already exists."
    );
    let window = sm(
        &s,
        "DeleteSecret",
        json!({"SecretId": "app", "RecoveryWindowInDays": 31}),
    );
    assert_eq!(window.error(), "InvalidParameterException");
    assert_eq!(
        window.message(),
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
    );
    let conflict = sm(
        &s,
        "DeleteSecret",
        json!({"SecretId": "app", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
    );
    assert_eq!(conflict.error(), "InvalidParameterException");
    let deleted = sm(&s, "DeleteSecret", json!({"SecretId": "app"})).ok();
    let days = (deleted["DeletionDate"].as_f64().unwrap()
        - sm(&s, "DescribeSecret", json!({"SecretId": "app"})).ok()["DeletedDate"]
            .as_f64()
            .unwrap())
        / 86_400.0;
    assert!((days - 30.0).abs() < 0.01, "default window: {days}");
    for (op, body) in [
        ("GetSecretValue", json!({"SecretId": "app"})),
        (
            "PutSecretValue",
            json!({"SecretId": "app", "SecretString": "v2"}),
        ),
        (
            "UpdateSecret",
            json!({"SecretId": "app", "Description": "d"}),
        ),
        ("DeleteSecret", json!({"SecretId": "app"})),
    ] {
        let refused = sm(&s, op, body);
        assert_eq!(refused.error(), "InvalidRequestException", "{op}");
        assert_eq!(
            refused.message(),
            "You can't perform this operation on the secret because it was marked for deletion.",
            "{op}"
        );
    }
    let recreate = sm(&s, "CreateSecret", json!({"Name": "app"}));
    assert_eq!(recreate.error(), "InvalidRequestException");
    let password = sm(&s, "GetRandomPassword", json!({"PasswordLength": 4097}));
    assert_eq!(password.error(), "InvalidParameterException");
    let batch = sm(
        &s,
        "BatchGetSecretValue",
        json!({"SecretIdList": ["a"], "Filters": [{"Key": "name", "Values": ["a"]}]}),
    );
    assert_eq!(batch.error(), "InvalidParameterException");
    let filter = sm(
        &s,
        "ListSecrets",
        json!({"Filters": [{"Key": "colour", "Values": ["red"]}]}),
    );
    assert_eq!(filter.error(), "InvalidParameterException");
    // A signature for another service is refused before anything else.
    let crossed = s.call("logs", "secretsmanager.ListSecrets", json!({}));
    assert_eq!(crossed.error(), "InvalidSignatureException");
}

#[test]
fn client_request_tokens_make_retries_idempotent() {
    let s = TestServer::start();
    let first = sm(
        &s,
        "CreateSecret",
        json!({"Name": "idem", "SecretString": "one", "ClientRequestToken": TOKEN_A}),
    )
    .ok();
    assert_eq!(first["VersionId"], TOKEN_A);
    let retry = sm(
        &s,
        "CreateSecret",
        json!({"Name": "idem", "SecretString": "one", "ClientRequestToken": TOKEN_A}),
    )
    .ok();
    assert_eq!(retry["ARN"], first["ARN"]);
    let put = json!({"SecretId": "idem", "SecretString": "two", "ClientRequestToken": TOKEN_B});
    let v2 = sm(&s, "PutSecretValue", put.clone()).ok();
    assert_eq!(v2["VersionId"], TOKEN_B);
    assert_eq!(v2["VersionStages"], json!(["AWSCURRENT"]));
    sm(&s, "PutSecretValue", put).ok();
    let changed = sm(
        &s,
        "PutSecretValue",
        json!({"SecretId": "idem", "SecretString": "other", "ClientRequestToken": TOKEN_B}),
    );
    assert_eq!(changed.error(), "ResourceExistsException");
    let versions = sm(&s, "ListSecretVersionIds", json!({"SecretId": "idem"})).ok();
    assert_eq!(
        versions["Versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );
    let short = sm(
        &s,
        "PutSecretValue",
        json!({"SecretId": "idem", "SecretString": "x", "ClientRequestToken": "short"}),
    );
    assert_eq!(short.error(), "InvalidParameterException");
}

#[test]
fn staging_labels_move_as_secrets_manager_moves_them() {
    let s = TestServer::start();
    sm(
        &s,
        "CreateSecret",
        json!({"Name": "rot", "SecretString": "one", "ClientRequestToken": TOKEN_A}),
    )
    .ok();
    let pending = sm(
        &s,
        "PutSecretValue",
        json!({"SecretId": "rot", "SecretString": "two", "ClientRequestToken": TOKEN_B,
               "VersionStages": ["AWSPENDING"]}),
    )
    .ok();
    assert_eq!(pending["VersionStages"], json!(["AWSPENDING"]));
    let current = sm(&s, "GetSecretValue", json!({"SecretId": "rot"})).ok();
    assert_eq!(current["SecretString"], "one");
    let by_stage = sm(
        &s,
        "GetSecretValue",
        json!({"SecretId": "rot", "VersionStage": "AWSPENDING"}),
    )
    .ok();
    assert_eq!(by_stage["VersionId"], TOKEN_B);
    let no_label = sm(
        &s,
        "GetSecretValue",
        json!({"SecretId": "rot", "VersionStage": "NOPE"}),
    );
    assert_eq!(no_label.error(), "ResourceNotFoundException");
    assert_eq!(
        no_label.message(),
        "Secrets Manager can't find the specified secret value for staging label: NOPE"
    );
    let must_name = sm(
        &s,
        "UpdateSecretVersionStage",
        json!({"SecretId": "rot", "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN_B}),
    );
    assert_eq!(must_name.error(), "InvalidParameterException");
    sm(
        &s,
        "UpdateSecretVersionStage",
        json!({"SecretId": "rot", "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN_B,
               "RemoveFromVersionId": TOKEN_A}),
    )
    .ok();
    let d = sm(&s, "DescribeSecret", json!({"SecretId": "rot"})).ok();
    assert_eq!(
        d["VersionIdsToStages"][TOKEN_B],
        json!(["AWSPENDING", "AWSCURRENT"])
    );
    assert_eq!(d["VersionIdsToStages"][TOKEN_A], json!(["AWSPREVIOUS"]));
    sm(
        &s,
        "UpdateSecretVersionStage",
        json!({"SecretId": "rot", "VersionStage": "AWSPENDING", "RemoveFromVersionId": TOKEN_B}),
    )
    .ok();
    let d = sm(&s, "DescribeSecret", json!({"SecretId": "rot"})).ok();
    assert_eq!(d["VersionIdsToStages"][TOKEN_B], json!(["AWSCURRENT"]));
}

#[test]
fn rotation_is_kept_as_configuration() {
    let s = TestServer::start();
    sm(
        &s,
        "CreateSecret",
        json!({"Name": "r", "SecretString": "v"}),
    )
    .ok();
    let no_lambda = sm(&s, "RotateSecret", json!({"SecretId": "r"}));
    assert_eq!(no_lambda.error(), "InvalidRequestException");
    let lambda = "arn:aws:lambda:us-east-1:000000000000:function:rotate";
    sm(
        &s,
        "RotateSecret",
        json!({"SecretId": "r", "RotationLambdaARN": lambda,
               "RotationRules": {"AutomaticallyAfterDays": 30}}),
    )
    .ok();
    let d = sm(&s, "DescribeSecret", json!({"SecretId": "r"})).ok();
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["RotationLambdaARN"], lambda);
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
    sm(&s, "CancelRotateSecret", json!({"SecretId": "r"})).ok();
    let d = sm(&s, "DescribeSecret", json!({"SecretId": "r"})).ok();
    assert_eq!(d["RotationEnabled"], false);
    // The value never changed: no Lambda ran.
    let v = sm(&s, "GetSecretValue", json!({"SecretId": "r"})).ok();
    assert_eq!(v["SecretString"], "v");
}

#[test]
fn list_secrets_pages_in_name_order() {
    let s = TestServer::start();
    for n in 0..5 {
        sm(
            &s,
            "CreateSecret",
            json!({"Name": format!("page/{n}"), "SecretString": "v", "Description": "Paged Thing"}),
        )
        .ok();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = Value::from(t.as_str());
        }
        let page = sm(&s, "ListSecrets", body).ok();
        for e in page["SecretList"].as_array().unwrap() {
            names.push(e["Name"].as_str().unwrap().to_string());
            assert!(e["SecretVersionsToStages"].is_object(), "{e}");
        }
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["page/0", "page/1", "page/2", "page/3", "page/4"]);
    let found = sm(
        &s,
        "ListSecrets",
        json!({"Filters": [{"Key": "description", "Values": ["thing"]}]}),
    )
    .ok();
    assert_eq!(found["SecretList"].as_array().unwrap().len(), 5);
    let bad = sm(&s, "ListSecrets", json!({"MaxResults": 101}));
    assert_eq!(bad.error(), "InvalidParameterException");
    // Another region's ARN names nothing here.
    let arn = sm(&s, "DescribeSecret", json!({"SecretId": "page/0"})).ok()["ARN"]
        .as_str()
        .unwrap()
        .replace("us-east-1", "eu-west-1");
    assert_eq!(
        sm(&s, "DescribeSecret", json!({"SecretId": arn})).error(),
        "ResourceNotFoundException"
    );
}
