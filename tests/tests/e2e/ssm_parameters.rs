//! SSM Parameter Store through the real `aws ssm` CLI against the real binary: String,
//! StringList and SecureString parameters, overwrites and versions, reads with and without
//! decryption, hierarchies recursive and not, DescribeParameters' filters, history, labels
//! and `name:label`, deletes, tags, an IAM user refused decryption without `kms:Decrypt`,
//! and the data dir holding no SecureString plaintext.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_string())
        .collect()
}

fn put(s: &BerthServer, args: &[&str]) -> Value {
    let mut all = vec!["ssm", "put-parameter"];
    all.extend_from_slice(args);
    ok_json(&s.aws(&all))
}

#[test]
fn parameters_through_the_cli() {
    let s = BerthServer::start();
    let first = put(
        &s,
        &[
            "--name",
            "/shop/db/host",
            "--value",
            "db-1",
            "--type",
            "String",
        ],
    );
    assert_eq!(first, json!({"Version": 1, "Tier": "Standard"}));
    put(
        &s,
        &[
            "--name",
            "/shop/db/replicas",
            "--value",
            "r1,r2",
            "--type",
            "StringList",
        ],
    );
    put(
        &s,
        &[
            "--name",
            "/shop/db/password",
            "--value",
            "cli-plain-s3cret",
            "--type",
            "SecureString",
            "--description",
            "the password",
            "--tags",
            "Key=team,Value=shop",
        ],
    );
    put(
        &s,
        &[
            "--name",
            "/shop/web/port",
            "--value",
            "8080",
            "--type",
            "String",
        ],
    );
    // Overwrite: refused without the flag, a new version with it.
    let again = s.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        "/shop/db/host",
        "--value",
        "db-2",
        "--type",
        "String",
    ]);
    assert_aws_error(&again, "ParameterAlreadyExists");
    let second = put(
        &s,
        &["--name", "/shop/db/host", "--value", "db-2", "--overwrite"],
    );
    assert_eq!(second["Version"], 2);

    // Reads.
    let host = ok_json(&s.aws(&["ssm", "get-parameter", "--name", "/shop/db/host"]));
    assert_eq!(host["Parameter"]["Value"], "db-2");
    assert_eq!(
        host["Parameter"]["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/shop/db/host"
    );
    let old = ok_json(&s.aws(&["ssm", "get-parameter", "--name", "/shop/db/host:1"]));
    assert_eq!(old["Parameter"]["Value"], "db-1");
    let sealed = ok_json(&s.aws(&["ssm", "get-parameter", "--name", "/shop/db/password"]));
    assert_ne!(sealed["Parameter"]["Value"], "cli-plain-s3cret");
    assert_eq!(sealed["Parameter"]["Type"], "SecureString");
    let opened = ok_json(&s.aws(&[
        "ssm",
        "get-parameter",
        "--name",
        "/shop/db/password",
        "--with-decryption",
    ]));
    assert_eq!(opened["Parameter"]["Value"], "cli-plain-s3cret");
    let several = ok_json(&s.aws(&[
        "ssm",
        "get-parameters",
        "--names",
        "/shop/db/replicas",
        "/shop/nothing",
    ]));
    assert_eq!(several["Parameters"][0]["Value"], "r1,r2");
    assert_eq!(several["InvalidParameters"], json!(["/shop/nothing"]));
    let missing = s.aws(&["ssm", "get-parameter", "--name", "/shop/nothing"]);
    assert_aws_error(&missing, "ParameterNotFound");

    // Hierarchies (the CLI follows NextToken itself; page size 1 makes it).
    let one_level = ok_json(&s.aws(&[
        "ssm",
        "get-parameters-by-path",
        "--path",
        "/shop",
        "--page-size",
        "1",
    ]));
    assert_eq!(names(&one_level["Parameters"]), Vec::<String>::new());
    let recursive = ok_json(&s.aws(&[
        "ssm",
        "get-parameters-by-path",
        "--path",
        "/shop",
        "--recursive",
        "--page-size",
        "1",
        "--with-decryption",
    ]));
    assert_eq!(
        names(&recursive["Parameters"]),
        [
            "/shop/db/host",
            "/shop/db/password",
            "/shop/db/replicas",
            "/shop/web/port"
        ]
    );
    assert_eq!(recursive["Parameters"][1]["Value"], "cli-plain-s3cret");
    let db = ok_json(&s.aws(&["ssm", "get-parameters-by-path", "--path", "/shop/db/"]));
    assert_eq!(names(&db["Parameters"]).len(), 3);

    // DescribeParameters with filters.
    let secure = ok_json(&s.aws(&[
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        "Key=Type,Values=SecureString",
    ]));
    assert_eq!(names(&secure["Parameters"]), ["/shop/db/password"]);
    assert_eq!(secure["Parameters"][0]["KeyId"], "alias/aws/ssm");
    assert_eq!(secure["Parameters"][0]["Description"], "the password");
    let web = ok_json(&s.aws(&[
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        "Key=Path,Option=OneLevel,Values=/shop/web",
    ]));
    assert_eq!(names(&web["Parameters"]), ["/shop/web/port"]);
    let tagged = ok_json(&s.aws(&[
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        "Key=tag:team,Values=shop",
    ]));
    assert_eq!(names(&tagged["Parameters"]), ["/shop/db/password"]);
    let begins = ok_json(&s.aws(&[
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        "Key=Name,Option=BeginsWith,Values=/shop/db/r",
    ]));
    assert_eq!(names(&begins["Parameters"]), ["/shop/db/replicas"]);

    // History and labels.
    let labelled = ok_json(&s.aws(&[
        "ssm",
        "label-parameter-version",
        "--name",
        "/shop/db/host",
        "--parameter-version",
        "1",
        "--labels",
        "stable",
    ]));
    assert_eq!(labelled["ParameterVersion"], 1);
    let stable = ok_json(&s.aws(&["ssm", "get-parameter", "--name", "/shop/db/host:stable"]));
    assert_eq!(stable["Parameter"]["Value"], "db-1");
    assert_eq!(stable["Parameter"]["Selector"], ":stable");
    let history = ok_json(&s.aws(&["ssm", "get-parameter-history", "--name", "/shop/db/host"]));
    let versions = history["Parameters"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["Labels"], json!(["stable"]));
    assert_eq!(versions[1]["Value"], "db-2");
    assert_eq!(
        versions[1]["LastModifiedUser"],
        "arn:aws:iam::000000000000:root"
    );
    ok_json(&s.aws(&[
        "ssm",
        "unlabel-parameter-version",
        "--name",
        "/shop/db/host",
        "--parameter-version",
        "1",
        "--labels",
        "stable",
    ]));
    assert_aws_error(
        &s.aws(&["ssm", "get-parameter", "--name", "/shop/db/host:stable"]),
        "ParameterVersionNotFound",
    );

    // Tags.
    s.aws(&[
        "ssm",
        "add-tags-to-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/shop/web/port",
        "--tags",
        "Key=env,Value=prod",
    ]);
    let tags = ok_json(&s.aws(&[
        "ssm",
        "list-tags-for-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/shop/web/port",
    ]));
    assert_eq!(tags["TagList"], json!([{"Key": "env", "Value": "prod"}]));
    s.aws(&[
        "ssm",
        "remove-tags-from-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/shop/web/port",
        "--tag-keys",
        "env",
    ]);
    let tags = ok_json(&s.aws(&[
        "ssm",
        "list-tags-for-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/shop/web/port",
    ]));
    assert_eq!(tags["TagList"], json!([]));

    // Deletes.
    let deleted = ok_json(&s.aws(&[
        "ssm",
        "delete-parameters",
        "--names",
        "/shop/db/replicas",
        "/shop/gone",
    ]));
    assert_eq!(deleted["DeletedParameters"], json!(["/shop/db/replicas"]));
    assert_eq!(deleted["InvalidParameters"], json!(["/shop/gone"]));
    s.aws(&["ssm", "delete-parameter", "--name", "/shop/web/port"]);
    assert_aws_error(
        &s.aws(&["ssm", "delete-parameter", "--name", "/shop/web/port"]),
        "ParameterNotFound",
    );

    // The data dir (the store among it) never holds the SecureString's plaintext.
    assert!(
        files_holding(s.data_dir(), b"cli-plain-s3cret").is_empty(),
        "a SecureString's plaintext is on disk"
    );
    assert!(!files_holding(s.data_dir(), b"/shop/db/password").is_empty());
}

#[test]
fn decryption_with_a_customer_key_needs_kms_decrypt() {
    let s = BerthServer::start();
    // A customer key: decryption needs kms:Decrypt on it (the AWS managed aws/ssm key lets
    // every principal of the account decrypt; see the contract tests).
    put(
        &s,
        &[
            "--name",
            "/team/token",
            "--value",
            "tok-plain",
            "--type",
            "SecureString",
            "--key-id",
            "alias/team",
        ],
    );
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "reader"]));
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", "reader"]));
    let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": "arn:aws:ssm:us-east-1:000000000000:parameter/team/*"}]});
    s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "reader",
        "--policy-name",
        "read",
        "--policy-document",
        &policy.to_string(),
    ]);
    let as_reader = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let sealed = ok_json(&as_reader(&[
        "ssm",
        "get-parameter",
        "--name",
        "/team/token",
    ]));
    assert_ne!(sealed["Parameter"]["Value"], "tok-plain");
    let refused = as_reader(&[
        "ssm",
        "get-parameter",
        "--name",
        "/team/token",
        "--with-decryption",
    ]);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused).contains("kms:Decrypt"),
        "{}",
        stderr_of(&refused)
    );
    assert!(!stderr_of(&refused).contains("tok-plain"));
    // Not allowed ssm:GetParameters either.
    assert_aws_error(
        &as_reader(&["ssm", "get-parameters", "--names", "/team/token"]),
        "AccessDeniedException",
    );
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
