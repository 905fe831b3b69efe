//! The ECR control API through the real `aws` CLI: repositories, authorization
//! tokens, mutability and scanning settings, tags, policies, the registry, regions.

use base64::Engine;
use berth_e2e::oci::make_image;
use berth_e2e::sigv4::now_unix;
use berth_e2e::{ACCOUNT_ID, BerthServer, assert_aws_error, epoch_seconds, ok_json, unique};
use serde_json::{Value, json};

#[test]
fn create_repository_returns_the_aws_fields() {
    let s = BerthServer::start();
    let name = unique("team/app-");
    let repo = s.create_repo(
        &name,
        &[
            "--image-tag-mutability",
            "IMMUTABLE",
            "--image-scanning-configuration",
            "scanOnPush=true",
            "--tags",
            "Key=team,Value=platform",
            "Key=env,Value=test",
        ],
    );
    assert_eq!(repo["repositoryName"], name.as_str());
    assert_eq!(repo["registryId"], ACCOUNT_ID);
    assert_eq!(
        repo["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/{name}").as_str()
    );
    assert_eq!(
        repo["repositoryUri"],
        format!("{}/{name}", s.host()).as_str()
    );
    assert_eq!(repo["imageTagMutability"], "IMMUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(repo["encryptionConfiguration"]["encryptionType"], "AES256");
    let created = epoch_seconds(&repo["createdAt"]);
    assert!(
        (created - now_unix() as f64).abs() < 120.0,
        "createdAt {created} is not now"
    );

    // describe-repositories gives the same fields back.
    let d = ok_json(&s.aws(&["ecr", "describe-repositories", "--repository-names", &name]));
    let described = &d["repositories"][0];
    for field in [
        "repositoryArn",
        "registryId",
        "repositoryUri",
        "imageTagMutability",
    ] {
        assert_eq!(described[field], repo[field], "{field}");
    }
    assert_eq!(described["imageScanningConfiguration"]["scanOnPush"], true);

    // The tags given at creation are stored.
    let tags = ok_json(&s.aws(&[
        "ecr",
        "list-tags-for-resource",
        "--resource-arn",
        repo["repositoryArn"].as_str().unwrap(),
    ]));
    let mut got: Vec<(String, String)> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().into(),
                t["Value"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("env".into(), "test".into()),
            ("team".into(), "platform".into())
        ]
    );
}

#[test]
fn default_repository_settings_are_mutable_without_scan_on_push() {
    let s = BerthServer::start();
    let repo = s.create_repo(&unique("plain-"), &[]);
    assert_eq!(repo["imageTagMutability"], "MUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], false);
}

#[test]
fn creating_a_repository_twice_is_refused() {
    let s = BerthServer::start();
    let name = unique("twice-");
    s.create_repo(&name, &[]);
    let out = s.aws(&["ecr", "create-repository", "--repository-name", &name]);
    assert_aws_error(&out, "RepositoryAlreadyExistsException");
}

#[test]
fn describe_repositories_by_name_all_and_paginated() {
    let s = BerthServer::start();
    let prefix = unique("page-");
    let mut names: Vec<String> = (0..5).map(|i| format!("{prefix}/r{i}")).collect();
    for n in &names {
        s.create_repo(n, &[]);
    }
    names.sort();

    // By name, several at once.
    let d = ok_json(&s.aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        &names[0],
        &names[3],
    ]));
    let mut got: Vec<&str> = d["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, vec![names[0].as_str(), names[3].as_str()]);

    // The server's own pagination: maxResults and nextToken.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec![
            "ecr",
            "describe-repositories",
            "--no-paginate",
            "--max-results",
            "2",
        ];
        if let Some(t) = &token {
            args.extend(["--next-token", t.as_str()]);
        }
        let page = ok_json(&s.aws(&args));
        let repos = page["repositories"].as_array().unwrap();
        assert!(
            repos.len() <= 2,
            "maxResults 2 gave {} repositories",
            repos.len()
        );
        seen.extend(
            repos
                .iter()
                .map(|r| r["repositoryName"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        assert!(pages < 10, "pagination does not end");
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 repositories in pages of 2");
    seen.sort();
    assert_eq!(seen, names);

    // The CLI's pagination over it: --page-size, --max-items and --starting-token.
    let all = ok_json(&s.aws(&["ecr", "describe-repositories", "--page-size", "2"]));
    assert_eq!(all["repositories"].as_array().unwrap().len(), 5);
    let first = ok_json(&s.aws(&[
        "ecr",
        "describe-repositories",
        "--max-items",
        "3",
        "--page-size",
        "2",
    ]));
    assert_eq!(first["repositories"].as_array().unwrap().len(), 3);
    let next = first["NextToken"]
        .as_str()
        .expect("the CLI gives a NextToken with --max-items");
    let rest = ok_json(&s.aws(&[
        "ecr",
        "describe-repositories",
        "--starting-token",
        next,
        "--page-size",
        "2",
    ]));
    let mut both: Vec<String> = first["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["repositories"].as_array().unwrap())
        .map(|r| r["repositoryName"].as_str().unwrap().to_owned())
        .collect();
    both.sort();
    assert_eq!(both, names);
}

#[test]
fn describing_a_missing_repository_is_repository_not_found() {
    let s = BerthServer::start();
    let out = s.aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        "does-not-exist",
    ]);
    assert_aws_error(&out, "RepositoryNotFoundException");
    let out = s.aws(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        "does-not-exist",
    ]);
    assert_aws_error(&out, "RepositoryNotFoundException");
}

#[test]
fn invalid_repository_names_are_invalid_parameter() {
    let s = BerthServer::start();
    for name in [
        "Bad_Name",
        "../x",
        "a//b",
        "-leading",
        "trailing-",
        "UPPER",
        "a/../b",
    ] {
        // `--opt=value` so that argparse does not take "-leading" for an option.
        let arg = format!("--repository-name={name}");
        let out = s.aws(&["ecr", "create-repository", &arg]);
        assert_aws_error(&out, "InvalidParameterException");
    }
    // Nothing was created on the way.
    let all = ok_json(&s.aws(&["ecr", "describe-repositories"]));
    assert_eq!(all["repositories"].as_array().unwrap().len(), 0, "{all}");
}

#[test]
fn authorization_token_and_login_password() {
    let s = BerthServer::start();
    let v = ok_json(&s.aws(&["ecr", "get-authorization-token"]));
    let data = &v["authorizationData"][0];
    let token = data["authorizationToken"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64 token");
    let decoded = String::from_utf8(decoded).unwrap();
    let password = decoded
        .strip_prefix("AWS:")
        .expect("token decodes to AWS:<password>");
    assert!(!password.is_empty());
    assert!(!password.contains(':'), "the password contains no ':'");
    let expires = epoch_seconds(&data["expiresAt"]);
    let twelve_hours = (now_unix() + 12 * 3600) as f64;
    assert!(
        (expires - twelve_hours).abs() < 600.0,
        "expiresAt {expires} is not 12 h ahead"
    );
    assert_eq!(data["proxyEndpoint"], format!("https://{}", s.host()));

    // Both passwords open the registry.
    let login_pw = s.login_password();
    assert!(!login_pw.contains(':'));
    for pw in [password, login_pw.as_str()] {
        let r = berth_e2e::Registry {
            port: s.port,
            authorization: Some(berth_e2e::basic_auth("AWS", pw)),
        }
        .get("/v2/");
        assert_eq!(r.status, 200, "{}", r.describe());
    }
}

#[test]
fn put_image_tag_mutability_and_scanning_configuration() {
    let s = BerthServer::start();
    let name = unique("settings-");
    s.create_repo(&name, &[]);

    let v = ok_json(&s.aws(&[
        "ecr",
        "put-image-tag-mutability",
        "--repository-name",
        &name,
        "--image-tag-mutability",
        "IMMUTABLE",
    ]));
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["registryId"], ACCOUNT_ID);
    assert_eq!(v["imageTagMutability"], "IMMUTABLE");

    let v = ok_json(&s.aws(&[
        "ecr",
        "put-image-scanning-configuration",
        "--repository-name",
        &name,
        "--image-scanning-configuration",
        "scanOnPush=true",
    ]));
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["imageScanningConfiguration"]["scanOnPush"], true);

    let d = ok_json(&s.aws(&["ecr", "describe-repositories", "--repository-names", &name]));
    assert_eq!(d["repositories"][0]["imageTagMutability"], "IMMUTABLE");
    assert_eq!(
        d["repositories"][0]["imageScanningConfiguration"]["scanOnPush"],
        true
    );

    let out = s.aws(&[
        "ecr",
        "put-image-tag-mutability",
        "--repository-name",
        "missing-repo",
        "--image-tag-mutability",
        "MUTABLE",
    ]);
    assert_aws_error(&out, "RepositoryNotFoundException");
}

fn tag_map(v: &Value) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().into(),
                t["Value"].as_str().unwrap().into(),
            )
        })
        .collect();
    tags.sort();
    tags
}

#[test]
fn tag_untag_and_list_tags() {
    let s = BerthServer::start();
    let repo = s.create_repo(&unique("tags-"), &[]);
    let arn = repo["repositoryArn"].as_str().unwrap();

    let list = || ok_json(&s.aws(&["ecr", "list-tags-for-resource", "--resource-arn", arn]));
    assert!(tag_map(&list()).is_empty());

    ok_json(&s.aws(&[
        "ecr",
        "tag-resource",
        "--resource-arn",
        arn,
        "--tags",
        "Key=a,Value=1",
        "Key=b,Value=2",
    ]));
    assert_eq!(
        tag_map(&list()),
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );

    // Tagging an existing key overwrites its value.
    ok_json(&s.aws(&[
        "ecr",
        "tag-resource",
        "--resource-arn",
        arn,
        "--tags",
        "Key=b,Value=3",
    ]));
    ok_json(&s.aws(&[
        "ecr",
        "untag-resource",
        "--resource-arn",
        arn,
        "--tag-keys",
        "a",
    ]));
    assert_eq!(tag_map(&list()), vec![("b".into(), "3".into())]);

    let missing = format!(
        "arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/{}",
        unique("nope-")
    );
    let out = s.aws(&["ecr", "list-tags-for-resource", "--resource-arn", &missing]);
    assert_aws_error(&out, "RepositoryNotFoundException");
    let out = s.aws(&[
        "ecr",
        "tag-resource",
        "--resource-arn",
        "not-an-arn",
        "--tags",
        "Key=a,Value=1",
    ]);
    assert_aws_error(&out, "InvalidParameterException");
}

#[test]
fn repository_policy_set_get_delete() {
    let s = BerthServer::start();
    let name = unique("policy-");
    s.create_repo(&name, &[]);

    let out = s.aws(&["ecr", "get-repository-policy", "--repository-name", &name]);
    assert_aws_error(&out, "RepositoryPolicyNotFoundException");

    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowPull",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        }],
    });
    let text = policy.to_string();
    let v = ok_json(&s.aws(&[
        "ecr",
        "set-repository-policy",
        "--repository-name",
        &name,
        "--policy-text",
        &text,
    ]));
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["registryId"], ACCOUNT_ID);
    let stored: Value = serde_json::from_str(v["policyText"].as_str().unwrap()).unwrap();
    assert_eq!(stored, policy);

    let v = ok_json(&s.aws(&["ecr", "get-repository-policy", "--repository-name", &name]));
    let got: Value = serde_json::from_str(v["policyText"].as_str().unwrap()).unwrap();
    assert_eq!(got, policy);

    for bad in ["{not json", "[]", "\"a string\""] {
        let out = s.aws(&[
            "ecr",
            "set-repository-policy",
            "--repository-name",
            &name,
            "--policy-text",
            bad,
        ]);
        assert_aws_error(&out, "InvalidParameterException");
    }
    // A refused policy leaves the stored one alone.
    let v = ok_json(&s.aws(&["ecr", "get-repository-policy", "--repository-name", &name]));
    let got: Value = serde_json::from_str(v["policyText"].as_str().unwrap()).unwrap();
    assert_eq!(got, policy);

    let v = ok_json(&s.aws(&[
        "ecr",
        "delete-repository-policy",
        "--repository-name",
        &name,
    ]));
    let deleted: Value = serde_json::from_str(v["policyText"].as_str().unwrap()).unwrap();
    assert_eq!(deleted, policy);
    let out = s.aws(&["ecr", "get-repository-policy", "--repository-name", &name]);
    assert_aws_error(&out, "RepositoryPolicyNotFoundException");
    let out = s.aws(&[
        "ecr",
        "delete-repository-policy",
        "--repository-name",
        &name,
    ]);
    assert_aws_error(&out, "RepositoryPolicyNotFoundException");
}

#[test]
fn describe_registry() {
    let s = BerthServer::start();
    let v = ok_json(&s.aws(&["ecr", "describe-registry"]));
    assert_eq!(v["registryId"], ACCOUNT_ID);
    assert!(v["replicationConfiguration"]["rules"].is_array(), "{v}");
}

#[test]
fn deleting_a_repository_with_images_needs_force() {
    let s = BerthServer::start();
    let name = unique("nonempty-");
    s.create_repo(&name, &[]);
    s.registry()
        .push_image(&name, "v1", &make_image("amd64", &name));

    let out = s.aws(&["ecr", "delete-repository", "--repository-name", &name]);
    assert_aws_error(&out, "RepositoryNotEmptyException");
    // Still there, image and all.
    let imgs = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &name]));
    assert_eq!(imgs["imageIds"].as_array().unwrap().len(), 1);

    let v = ok_json(&s.aws(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        &name,
        "--force",
    ]));
    assert_eq!(v["repository"]["repositoryName"], name.as_str());
    let out = s.aws(&["ecr", "describe-repositories", "--repository-names", &name]);
    assert_aws_error(&out, "RepositoryNotFoundException");
    // The registry forgets it too.
    let r = s.registry().get_manifest(&name, "v1");
    r.assert_oci_error(404, "NAME_UNKNOWN");
}

#[test]
fn deleting_an_empty_repository_needs_no_force() {
    let s = BerthServer::start();
    let name = unique("empty-");
    s.create_repo(&name, &[]);
    ok_json(&s.aws(&["ecr", "delete-repository", "--repository-name", &name]));
    let out = s.aws(&["ecr", "describe-repositories", "--repository-names", &name]);
    assert_aws_error(&out, "RepositoryNotFoundException");
    // The name can be used again.
    s.create_repo(&name, &[]);
}

#[test]
fn regions_are_separate() {
    let s = BerthServer::start();
    let name = unique("regional-");
    s.create_repo(&name, &[]);

    let out = s.aws_in(
        "eu-west-1",
        &["ecr", "describe-repositories", "--repository-names", &name],
    );
    assert_aws_error(&out, "RepositoryNotFoundException");
    let all = ok_json(&s.aws_in("eu-west-1", &["ecr", "describe-repositories"]));
    assert_eq!(all["repositories"].as_array().unwrap().len(), 0);

    // The same name can exist in the other region, with that region's ARN.
    let v = ok_json(&s.aws_in(
        "eu-west-1",
        &["ecr", "create-repository", "--repository-name", &name],
    ));
    assert_eq!(
        v["repository"]["repositoryArn"],
        format!("arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/{name}").as_str()
    );
}
