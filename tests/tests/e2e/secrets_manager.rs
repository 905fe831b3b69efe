//! Secrets Manager through the real `aws secretsmanager` CLI: a secret's life (create, read
//! by name and ARN, new versions moving the staging labels, describe, list with filters,
//! delete with a recovery window, restore, force delete, tags, random passwords, batch
//! reads), a resource policy letting in an IAM user that has no identity policy, and the
//! data dir holding no secret value in the clear.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of, unique};
use serde_json::Value;

fn text(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .to_string()
}

#[test]
fn a_secret_lives_through_the_aws_cli() {
    let s = BerthServer::start();
    let sm = |args: &[&str]| {
        let mut all = vec!["secretsmanager"];
        all.extend_from_slice(args);
        s.aws(&all)
    };
    let name = format!("prod/db-{}", unique("s"));
    let created = ok_json(&sm(&[
        "create-secret",
        "--name",
        &name,
        "--description",
        "Database password",
        "--secret-string",
        "first",
        "--tags",
        "Key=team,Value=payments",
    ]));
    let arn = text(&created, "ARN");
    let first = text(&created, "VersionId");
    assert!(
        arn.starts_with(&format!(
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-"
        )) && arn.len()
            == "arn:aws:secretsmanager:us-east-1:000000000000:secret:".len() + name.len() + 7,
        "{arn}"
    );
    // By name, full ARN and partial ARN.
    let partial = &arn[..arn.len() - 7];
    for id in [name.as_str(), arn.as_str(), partial] {
        let got = ok_json(&sm(&["get-secret-value", "--secret-id", id]));
        assert_eq!(got["SecretString"], "first", "{id}");
        assert_eq!(got["VersionStages"], serde_json::json!(["AWSCURRENT"]));
        assert_eq!(got["ARN"], arn.as_str());
    }
    let again = sm(&["create-secret", "--name", &name, "--secret-string", "x"]);
    assert_aws_error(&again, "ResourceExistsException");

    // A new value: AWSCURRENT moves, AWSPREVIOUS follows.
    let put = ok_json(&sm(&[
        "put-secret-value",
        "--secret-id",
        &name,
        "--secret-string",
        "second",
    ]));
    let second = text(&put, "VersionId");
    let described = ok_json(&sm(&["describe-secret", "--secret-id", &arn]));
    assert_eq!(
        described["VersionIdsToStages"][&second],
        serde_json::json!(["AWSCURRENT"])
    );
    assert_eq!(
        described["VersionIdsToStages"][&first],
        serde_json::json!(["AWSPREVIOUS"])
    );
    assert_eq!(described["Description"], "Database password");
    assert!(described.get("KmsKeyId").is_none(), "{described}");
    assert_eq!(described["Tags"][0]["Key"], "team");
    let previous = ok_json(&sm(&[
        "get-secret-value",
        "--secret-id",
        &name,
        "--version-stage",
        "AWSPREVIOUS",
    ]));
    assert_eq!(previous["SecretString"], "first");
    // Moving AWSCURRENT back by hand.
    ok_json(&sm(&[
        "update-secret-version-stage",
        "--secret-id",
        &name,
        "--version-stage",
        "AWSCURRENT",
        "--remove-from-version-id",
        &second,
        "--move-to-version-id",
        &first,
    ]));
    let current = ok_json(&sm(&["get-secret-value", "--secret-id", &name]));
    assert_eq!(current["SecretString"], "first");
    let versions = ok_json(&sm(&["list-secret-version-ids", "--secret-id", &name]));
    assert_eq!(
        versions["Versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );

    // A second secret with a key id and binary value, for the filters.
    let other = format!("dev/api-{}", unique("s"));
    ok_json(&sm(&[
        "create-secret",
        "--name",
        &other,
        "--kms-key-id",
        "alias/custom",
        "--secret-binary",
        "AAEC",
    ]));
    let d = ok_json(&sm(&["describe-secret", "--secret-id", &other]));
    assert_eq!(d["KmsKeyId"], "alias/custom");
    let got = ok_json(&sm(&["get-secret-value", "--secret-id", &other]));
    // This CLI sends the argument's own bytes ("AAEC"), base64-encoded on the wire.
    assert_eq!(got["SecretBinary"], "QUFFQw==");
    let listed = |filters: &[&str]| -> Vec<String> {
        let mut args = vec!["list-secrets"];
        if !filters.is_empty() {
            args.push("--filters");
            args.extend_from_slice(filters);
        }
        ok_json(&sm(&args))["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| text(e, "Name"))
            .collect()
    };
    assert_eq!(listed(&["Key=name,Values=prod/"]), [name.as_str()]);
    assert_eq!(listed(&["Key=tag-key,Values=team"]), [name.as_str()]);
    assert_eq!(
        listed(&["Key=description,Values=database"]),
        [name.as_str()]
    );
    assert_eq!(listed(&["Key=name,Values=!prod/"]), [other.as_str()]);
    assert_eq!(listed(&[]).len(), 2);

    // Tags.
    ok_json(&sm(&[
        "untag-resource",
        "--secret-id",
        &name,
        "--tag-keys",
        "team",
    ]));
    ok_json(&sm(&[
        "tag-resource",
        "--secret-id",
        &name,
        "--tags",
        "Key=env,Value=prod",
    ]));
    let d = ok_json(&sm(&["describe-secret", "--secret-id", &name]));
    assert_eq!(
        d["Tags"],
        serde_json::json!([{"Key": "env", "Value": "prod"}])
    );

    // Batch reads: by ids (one unknown) and by filter.
    let batch = ok_json(&sm(&[
        "batch-get-secret-value",
        "--secret-id-list",
        &name,
        &other,
        "missing-secret",
    ]));
    assert_eq!(
        batch["SecretValues"].as_array().unwrap().len(),
        2,
        "{batch}"
    );
    assert_eq!(batch["Errors"][0]["SecretId"], "missing-secret");
    assert_eq!(batch["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
    let batch = ok_json(&sm(&[
        "batch-get-secret-value",
        "--filters",
        "Key=name,Values=dev/",
    ]));
    assert_eq!(batch["SecretValues"][0]["Name"], other.as_str());

    // Random passwords.
    let p = ok_json(&sm(&[
        "get-random-password",
        "--password-length",
        "20",
        "--exclude-punctuation",
    ]));
    let password = text(&p, "RandomPassword");
    assert_eq!(password.len(), 20);
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );

    // Deletion with a recovery window refuses reads until restored.
    let out = sm(&[
        "delete-secret",
        "--secret-id",
        &name,
        "--recovery-window-in-days",
        "3",
    ]);
    assert_aws_error(&out, "InvalidParameterException");
    let deleted = ok_json(&sm(&[
        "delete-secret",
        "--secret-id",
        &name,
        "--recovery-window-in-days",
        "7",
    ]));
    assert!(deleted["DeletionDate"].is_number() || deleted["DeletionDate"].is_string());
    let refused = sm(&["get-secret-value", "--secret-id", &name]);
    assert_aws_error(&refused, "InvalidRequestException");
    assert!(
        stderr_of(&refused).contains(
            "You can't perform this operation on the secret because it was marked for deletion."
        ),
        "{}",
        stderr_of(&refused)
    );
    let d = ok_json(&sm(&["describe-secret", "--secret-id", &name]));
    assert!(d.get("DeletedDate").is_some(), "{d}");
    assert_eq!(listed(&[]), [other.as_str()]);
    let planned = ok_json(&sm(&["list-secrets", "--include-planned-deletion"]));
    assert_eq!(planned["SecretList"].as_array().unwrap().len(), 2);
    ok_json(&sm(&["restore-secret", "--secret-id", &name]));
    assert_eq!(
        ok_json(&sm(&["get-secret-value", "--secret-id", &name]))["SecretString"],
        "first"
    );
    // Force deletion: gone at once, the name free again.
    ok_json(&sm(&[
        "delete-secret",
        "--secret-id",
        &name,
        "--force-delete-without-recovery",
    ]));
    let gone = sm(&["get-secret-value", "--secret-id", &name]);
    assert_aws_error(&gone, "ResourceNotFoundException");
    assert!(stderr_of(&gone).contains("Secrets Manager can't find the specified secret."));
    ok_json(&sm(&[
        "create-secret",
        "--name",
        &name,
        "--secret-string",
        "anew",
    ]));
}

#[test]
fn a_resource_policy_lets_a_user_without_identity_policies_read() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "reader"]));
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", "reader"]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    let (id, secret) = (field("AccessKeyId"), field("SecretAccessKey"));
    let as_reader = |args: &[&str]| {
        let mut all = vec!["secretsmanager"];
        all.extend_from_slice(args);
        s.aws_with("us-east-1", &id, &secret, &all)
    };
    let shared = ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "shared",
        "--secret-string",
        "for-the-reader",
    ]));
    let arn = text(&shared, "ARN");
    ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "private",
        "--secret-string",
        "not-for-the-reader",
    ]));
    let refused = as_reader(&["get-secret-value", "--secret-id", "shared"]);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused).contains(&format!(
            "is not authorized to perform: secretsmanager:GetSecretValue on resource: {arn}"
        )),
        "{}",
        stderr_of(&refused)
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*"
        }]
    })
    .to_string();
    let valid = ok_json(&s.aws(&[
        "secretsmanager",
        "validate-resource-policy",
        "--resource-policy",
        &policy,
    ]));
    assert_eq!(valid["PolicyValidationPassed"], true);
    ok_json(&s.aws(&[
        "secretsmanager",
        "put-resource-policy",
        "--secret-id",
        "shared",
        "--resource-policy",
        &policy,
        "--block-public-policy",
    ]));
    let got = ok_json(&s.aws(&[
        "secretsmanager",
        "get-resource-policy",
        "--secret-id",
        "shared",
    ]));
    assert_eq!(got["ResourcePolicy"], policy.as_str());
    for id in ["shared", arn.as_str()] {
        let read = ok_json(&as_reader(&["get-secret-value", "--secret-id", id]));
        assert_eq!(read["SecretString"], "for-the-reader");
    }
    // Only what the policy says: no DescribeSecret, no other secret.
    assert_aws_error(
        &as_reader(&["describe-secret", "--secret-id", "shared"]),
        "AccessDeniedException",
    );
    assert_aws_error(
        &as_reader(&["get-secret-value", "--secret-id", "private"]),
        "AccessDeniedException",
    );
    ok_json(&s.aws(&[
        "secretsmanager",
        "delete-resource-policy",
        "--secret-id",
        "shared",
    ]));
    assert_aws_error(
        &as_reader(&["get-secret-value", "--secret-id", "shared"]),
        "AccessDeniedException",
    );
}

#[test]
fn the_data_dir_holds_no_secret_value_in_the_clear() {
    let s = BerthServer::start();
    let marker = format!("plaintext-marker-{}", unique("v"));
    ok_json(&s.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "sealed",
        "--secret-string",
        &marker,
    ]));
    ok_json(&s.aws(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        "sealed",
        "--secret-string",
        &format!("{marker}-2"),
    ]));
    let mut files = vec![s.data_dir().to_path_buf()];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        seen += 1;
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the secret value",
            path.display()
        );
    }
    assert!(seen > 0);
    // The value still reads back.
    let got = ok_json(&s.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "sealed",
    ]));
    assert_eq!(got["SecretString"], format!("{marker}-2"));
}

#[test]
fn identity_policies_match_secret_arn_patterns_and_tags() {
    let s = BerthServer::start();
    let sm_root = |args: &[&str]| {
        let mut all = vec!["secretsmanager"];
        all.extend_from_slice(args);
        ok_json(&s.aws(&all))
    };
    sm_root(&[
        "create-secret",
        "--name",
        "app/db",
        "--secret-string",
        "db-value",
    ]);
    sm_root(&[
        "create-secret",
        "--name",
        "app/api",
        "--secret-string",
        "api-value",
        "--tags",
        "Key=team,Value=payments",
    ]);
    let user = |name: &str, policy: Value| {
        ok_json(&s.aws(&["iam", "create-user", "--user-name", name]));
        ok_json(&s.aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            name,
            "--policy-name",
            "secrets",
            "--policy-document",
            &policy.to_string(),
        ]));
        let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", name]));
        let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
        (field("AccessKeyId"), field("SecretAccessKey"))
    };
    // By ARN pattern: the name in the request is resolved to the secret's full ARN.
    let (id, secret) = user(
        "by-arn",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-??????"
        }]}),
    );
    let get = |id: &str, secret: &str, name: &str| {
        s.aws_with(
            "us-east-1",
            id,
            secret,
            &["secretsmanager", "get-secret-value", "--secret-id", name],
        )
    };
    assert_eq!(
        ok_json(&get(&id, &secret, "app/db"))["SecretString"],
        "db-value"
    );
    assert_aws_error(&get(&id, &secret, "app/api"), "AccessDeniedException");
    // By the secret's tag.
    let (id, secret) = user(
        "by-tag",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "payments"}}
        }]}),
    );
    assert_eq!(
        ok_json(&get(&id, &secret, "app/api"))["SecretString"],
        "api-value"
    );
    assert_aws_error(&get(&id, &secret, "app/db"), "AccessDeniedException");
}
