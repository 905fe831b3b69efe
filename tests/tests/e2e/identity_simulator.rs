//! IAM's policy simulator, access keys' last use and STS GetAccessKeyInfo, through the real
//! `aws` CLI. The simulator is held to enforcement: every row of its table is also tried
//! for real with the simulated user's credentials.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};
use serde_json::Value;

const ACCOUNT: &str = "000000000000";

/// A new access key of `user`: its id and secret.
fn access_key(s: &BerthServer, user: &str) -> (String, String) {
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", user]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

fn put_user_policy(s: &BerthServer, user: &str, name: &str, doc: &str) {
    let out = s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        user,
        "--policy-name",
        name,
        "--policy-document",
        doc,
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// One row: what the simulator is asked, what it must answer, and the real call that must
/// then be refused or not.
struct Row {
    action: &'static str,
    resource: String,
    context: Value,
    expected: &'static str,
    real: Vec<String>,
}

#[test]
fn the_simulator_agrees_with_enforcement() {
    let s = BerthServer::start();
    for repo in ["allowed-repo", "other-repo"] {
        s.create_repo(repo, &[]);
    }
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "prod"]));
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "sim"]));
    let (id, secret) = access_key(&s, "sim");
    put_user_policy(
        &s,
        "sim",
        "reads",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/allowed-*"},
            {"Effect":"Allow","Action":["ecs:ListClusters","ecs:CreateCluster"],"Resource":"*"},
            {"Effect":"Allow","Action":"ecs:ListServices","Resource":"*","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:000000000000:cluster/prod"}}},
            {"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
            {"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::000000000000:user/${aws:username}"}]}"#,
    );
    put_user_policy(
        &s,
        "sim",
        "no-new-clusters",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecs:CreateCluster","Resource":"*"}]}"#,
    );
    let repo = |name: &str| format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}");
    let cluster = |name: &str| format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{name}");
    let entry = |key: &str, kind: &str, value: &str| serde_json::json!([{"ContextKeyName": key, "ContextKeyType": kind, "ContextKeyValues": [value]}]);
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rows = vec![
        Row {
            action: "ecr:DescribeRepositories",
            resource: repo("allowed-repo"),
            context: Value::Null,
            expected: "allowed",
            real: args(&[
                "ecr",
                "describe-repositories",
                "--repository-names",
                "allowed-repo",
            ]),
        },
        Row {
            action: "ecr:DescribeRepositories",
            resource: repo("other-repo"),
            context: Value::Null,
            expected: "implicitDeny",
            real: args(&[
                "ecr",
                "describe-repositories",
                "--repository-names",
                "other-repo",
            ]),
        },
        Row {
            action: "ecs:ListClusters",
            resource: "*".into(),
            context: Value::Null,
            expected: "allowed",
            real: args(&["ecs", "list-clusters"]),
        },
        Row {
            action: "ecs:CreateCluster",
            resource: "*".into(),
            context: Value::Null,
            expected: "explicitDeny",
            real: args(&["ecs", "create-cluster", "--cluster-name", "sim-made"]),
        },
        Row {
            action: "ecs:ListServices",
            resource: "*".into(),
            context: entry("ecs:cluster", "string", &cluster("prod")),
            expected: "allowed",
            real: args(&["ecs", "list-services", "--cluster", "prod"]),
        },
        Row {
            action: "ecs:ListServices",
            resource: "*".into(),
            context: entry("ecs:cluster", "string", &cluster("default")),
            expected: "implicitDeny",
            real: args(&["ecs", "list-services"]),
        },
        Row {
            action: "ecs:DescribeClusters",
            resource: "*".into(),
            context: entry("aws:SourceIp", "ip", "127.0.0.1"),
            expected: "allowed",
            real: args(&["ecs", "describe-clusters"]),
        },
        Row {
            action: "iam:GetUser",
            resource: format!("arn:aws:iam::{ACCOUNT}:user/sim"),
            context: Value::Null,
            expected: "allowed",
            real: args(&["iam", "get-user"]),
        },
        Row {
            action: "iam:GetUser",
            resource: format!("arn:aws:iam::{ACCOUNT}:user/other"),
            context: Value::Null,
            expected: "implicitDeny",
            real: args(&["iam", "get-user", "--user-name", "other"]),
        },
        Row {
            action: "ecs:RunTask",
            resource: format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/x:1"),
            context: Value::Null,
            expected: "implicitDeny",
            real: args(&["ecs", "run-task", "--task-definition", "x:1"]),
        },
    ];
    let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/sim");
    for row in &rows {
        let mut sim = vec![
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            &user_arn,
            "--action-names",
            row.action,
            "--resource-arns",
            &row.resource,
        ];
        let context = row.context.to_string();
        if !row.context.is_null() {
            sim.extend(["--context-entries", &context]);
        }
        let answer = ok_json(&s.aws(&sim));
        let result = &answer["EvaluationResults"][0];
        assert_eq!(result["EvalActionName"], row.action, "{answer}");
        let decision = result["EvalDecision"].as_str().unwrap();
        assert_eq!(
            decision, row.expected,
            "{} on {}: {answer}",
            row.action, row.resource
        );
        let real_args: Vec<&str> = row.real.iter().map(String::as_str).collect();
        let real = s.aws_with("us-east-1", &id, &secret, &real_args);
        let refused = !real.status.success()
            && (stderr_of(&real).contains("AccessDenied")
                || stderr_of(&real).contains("not authorized"));
        assert_eq!(
            decision == "allowed",
            !refused,
            "{} on {}: simulator {decision}, real call: {}",
            row.action,
            row.resource,
            stderr_of(&real)
        );
    }
}

#[test]
fn simulator_answers_as_iam_shapes_them() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "bob"]));
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#;
    let deny = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\n    \"Effect\": \"Deny\",\n    \"Action\": \"ecr:DeleteRepository\",\n    \"Resource\": \"*\"\n  }\n}";
    let answer = ok_json(&s.aws(&[
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        allow,
        deny,
        "--action-names",
        "ecr:BatchGetImage",
        "ecr:DeleteRepository",
        "ecs:RunTask",
        "--resource-arns",
        "arn:aws:ecr:eu-west-1:000000000000:repository/a",
        "arn:aws:ecr:eu-west-1:000000000000:repository/b",
    ]));
    let results = answer["EvaluationResults"].as_array().unwrap();
    assert_eq!(results.len(), 3, "one result per action: {answer}");
    // Without aws:RequestedRegion in the context the allow's condition cannot hold.
    assert_eq!(results[0]["EvalDecision"], "implicitDeny", "{answer}");
    assert_eq!(results[0]["MissingContextValues"][0], "aws:RequestedRegion");
    assert_eq!(
        results[0]["ResourceSpecificResults"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let denied = &results[1];
    assert_eq!(denied["EvalDecision"], "explicitDeny", "{answer}");
    let matched = &denied["MatchedStatements"][0];
    assert_eq!(matched["SourcePolicyId"], "PolicyInputList.2");
    assert_eq!(matched["StartPosition"]["Line"], 3);
    assert_eq!(matched["StartPosition"]["Column"], 15);
    assert_eq!(matched["EndPosition"]["Line"], 7);
    assert_eq!(matched["EndPosition"]["Column"], 4);
    assert_eq!(results[2]["EvalDecision"], "implicitDeny");

    // With the region given, and paged one result at a time (`--page-size`: the CLI
    // follows IAM's Marker through every page; `--max-items`: it stops and hands a token).
    let region = r#"[{"ContextKeyName":"aws:RequestedRegion","ContextKeyValues":["eu-west-1"],"ContextKeyType":"string"}]"#;
    let paged = |how: &str| {
        ok_json(&s.aws(&[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            allow,
            "--action-names",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "--context-entries",
            region,
            how,
            "1",
        ]))
    };
    let all = paged("--page-size");
    let results = all["EvaluationResults"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{all}");
    assert_eq!(results[1]["EvalActionName"], "ecr:PutImage", "{all}");
    assert_eq!(results[0]["EvalDecision"], "allowed", "{all}");
    assert_eq!(
        results[0]["MatchedStatements"][0]["SourcePolicyId"],
        "PolicyInputList.1"
    );
    let first = paged("--max-items");
    assert_eq!(
        first["EvaluationResults"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    assert!(first["NextToken"].is_string(), "{first}");

    // A resource policy of another account naming the caller: a cross-account simulation,
    // each kind of policy's part told.
    let answer = ok_json(&s.aws(&[
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}]}"#,
        "--resource-policy",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:BatchGetImage"}]}"#,
        "--caller-arn",
        "arn:aws:iam::000000000000:user/bob",
        "--action-names",
        "ecr:BatchGetImage",
        "--resource-arns",
        "arn:aws:ecr:us-east-1:111122223333:repository/a",
    ]));
    let result = &answer["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "allowed", "{answer}");
    assert_eq!(
        result["EvalDecisionDetails"]["Resource Policy"], "allowed",
        "{answer}"
    );

    // The errors.
    let missing = s.aws(&[
        "iam",
        "simulate-principal-policy",
        "--policy-source-arn",
        "arn:aws:iam::000000000000:user/nobody",
        "--action-names",
        "ecr:BatchGetImage",
    ]);
    assert_aws_error(&missing, "NoSuchEntity");
    let malformed = s.aws(&[
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        "{not a policy",
        "--action-names",
        "ecr:BatchGetImage",
    ]);
    assert_aws_error(&malformed, "InvalidInput");

    // The context keys the policies name.
    let keys = ok_json(&s.aws(&[
        "iam",
        "get-context-keys-for-custom-policy",
        "--policy-input-list",
        allow,
    ]));
    assert_eq!(
        keys["ContextKeyNames"],
        serde_json::json!(["aws:RequestedRegion"])
    );
    put_user_policy(
        &s,
        "bob",
        "home",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::000000000000:user/${aws:username}","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#,
    );
    let keys = ok_json(&s.aws(&[
        "iam",
        "get-context-keys-for-principal-policy",
        "--policy-source-arn",
        "arn:aws:iam::000000000000:user/bob",
    ]));
    assert_eq!(
        keys["ContextKeyNames"],
        serde_json::json!(["aws:SourceIp", "aws:username"]),
        "{keys}"
    );

    // Groups: a group's policies, simulated alone and for a member (named as the group's).
    ok_json(&s.aws(&["iam", "create-group", "--group-name", "ops"]));
    let out = s.aws(&[
        "iam",
        "put-group-policy",
        "--group-name",
        "ops",
        "--policy-name",
        "clusters",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#,
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let simulate = |source: &str| {
        ok_json(&s.aws(&[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            source,
            "--action-names",
            "ecs:ListClusters",
        ]))
    };
    let group = simulate("arn:aws:iam::000000000000:group/ops");
    assert_eq!(
        group["EvaluationResults"][0]["EvalDecision"], "allowed",
        "{group}"
    );
    let bob = simulate("arn:aws:iam::000000000000:user/bob");
    assert_eq!(
        bob["EvaluationResults"][0]["EvalDecision"], "implicitDeny",
        "{bob}"
    );
    let out = s.aws(&[
        "iam",
        "add-user-to-group",
        "--group-name",
        "ops",
        "--user-name",
        "bob",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let bob = simulate("arn:aws:iam::000000000000:user/bob");
    let result = &bob["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "allowed", "{bob}");
    assert_eq!(
        result["MatchedStatements"][0]["SourcePolicyId"], "clusters",
        "{bob}"
    );
    assert_eq!(
        result["MatchedStatements"][0]["SourcePolicyType"], "group",
        "{bob}"
    );
}

#[test]
fn access_keys_last_use_and_their_account() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "kim"]));
    let (id, secret) = access_key(&s, "kim");
    let never = ok_json(&s.aws(&["iam", "get-access-key-last-used", "--access-key-id", &id]));
    assert_eq!(never["UserName"], "kim", "{never}");
    assert_eq!(never["AccessKeyLastUsed"]["ServiceName"], "N/A", "{never}");
    assert_eq!(never["AccessKeyLastUsed"]["Region"], "N/A", "{never}");
    assert!(
        never["AccessKeyLastUsed"].get("LastUsedDate").is_none(),
        "{never}"
    );

    // Kim signs a request (no permission needed for it) in eu-west-1.
    ok_json(&s.aws_with("eu-west-1", &id, &secret, &["sts", "get-caller-identity"]));
    let used = ok_json(&s.aws(&["iam", "get-access-key-last-used", "--access-key-id", &id]));
    assert_eq!(used["AccessKeyLastUsed"]["ServiceName"], "sts", "{used}");
    assert_eq!(used["AccessKeyLastUsed"]["Region"], "eu-west-1", "{used}");
    assert!(
        used["AccessKeyLastUsed"]["LastUsedDate"].is_string(),
        "{used}"
    );
    // ListAccessKeys shows no last use (IAM's AccessKeyMetadata has none).
    let listed = ok_json(&s.aws(&["iam", "list-access-keys", "--user-name", "kim"]));
    assert!(
        listed["AccessKeyMetadata"][0].get("LastUsedDate").is_none(),
        "{listed}"
    );

    let unknown = s.aws(&[
        "iam",
        "get-access-key-last-used",
        "--access-key-id",
        "AKIAUNKNOWN000000000",
    ]);
    assert_aws_error(&unknown, "NoSuchEntity");

    // GetAccessKeyInfo: the account of a user's key, of the root key, of a session's.
    let info = ok_json(&s.aws(&["sts", "get-access-key-info", "--access-key-id", &id]));
    assert_eq!(info["Account"], ACCOUNT, "{info}");
    let info = ok_json(&s.aws(&[
        "sts",
        "get-access-key-info",
        "--access-key-id",
        &s.access_key,
    ]));
    assert_eq!(info["Account"], ACCOUNT, "{info}");
    let session = ok_json(&s.aws(&["sts", "get-session-token"]));
    let asia = session["Credentials"]["AccessKeyId"].as_str().unwrap();
    let info = ok_json(&s.aws(&["sts", "get-access-key-info", "--access-key-id", asia]));
    assert_eq!(info["Account"], ACCOUNT, "{info}");
    let unknown = s.aws(&[
        "sts",
        "get-access-key-info",
        "--access-key-id",
        "AKIAUNKNOWN000000000",
    ]);
    assert!(!unknown.status.success());
    // Kim may not ask without sts:GetAccessKeyInfo.
    let refused = s.aws_with(
        "us-east-1",
        &id,
        &secret,
        &["sts", "get-access-key-info", "--access-key-id", &id],
    );
    assert_aws_error(&refused, "AccessDenied");
}
