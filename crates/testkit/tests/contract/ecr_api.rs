//! The ECR control API, in-process through the HTTP stack: repositories, authorization
//! tokens, mutability and scanning settings, tags, policies, the registry, regions.

use berth_testkit::ecr::{epoch_seconds, password_of_token, tag_pairs};
use berth_testkit::oci::make_image;
use berth_testkit::sigv4::now_unix;
use berth_testkit::{ACCOUNT_ID, ECR_TARGET, Endpoint, Registry, TestServer, basic_auth, unique};
use serde_json::{Value, json};

fn names(v: &Value) -> Vec<String> {
    v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn create_repository_returns_the_aws_fields() {
    let s = TestServer::start();
    let name = unique("team/app-");
    let repo = s.create_repo(
        &name,
        json!({
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": true},
            "tags": [{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": "test"}],
        }),
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

    // DescribeRepositories gives the same fields back.
    let d = s
        .ecr("DescribeRepositories", json!({"repositoryNames": [name]}))
        .ok();
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
    let tags = s
        .ecr(
            "ListTagsForResource",
            json!({"resourceArn": repo["repositoryArn"]}),
        )
        .ok();
    assert_eq!(
        tag_pairs(&tags),
        vec![
            ("env".into(), "test".into()),
            ("team".into(), "platform".into())
        ]
    );
}

#[test]
fn default_repository_settings_are_mutable_without_scan_on_push() {
    let s = TestServer::start();
    let repo = s.create_repo(&unique("plain-"), json!({}));
    assert_eq!(repo["imageTagMutability"], "MUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], false);
}

#[test]
fn creating_a_repository_twice_is_refused() {
    let s = TestServer::start();
    let name = unique("twice-");
    s.create_repo(&name, json!({}));
    s.ecr("CreateRepository", json!({"repositoryName": name}))
        .expect_error("RepositoryAlreadyExistsException");
}

#[test]
fn describe_repositories_by_name_all_and_paginated() {
    let s = TestServer::start();
    let prefix = unique("page-");
    let mut all: Vec<String> = (0..5).map(|i| format!("{prefix}/r{i}")).collect();
    for n in &all {
        s.create_repo(n, json!({}));
    }
    all.sort();

    // By name, several at once.
    let d = s
        .ecr(
            "DescribeRepositories",
            json!({"repositoryNames": [all[0], all[3]]}),
        )
        .ok();
    let mut got = names(&d);
    got.sort();
    assert_eq!(got, vec![all[0].clone(), all[3].clone()]);

    // The server's own pagination: maxResults and nextToken.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut request = json!({"maxResults": 2});
        if let Some(t) = &token {
            request["nextToken"] = Value::from(t.as_str());
        }
        let page = s.ecr("DescribeRepositories", request).ok();
        let repos = names(&page);
        assert!(
            repos.len() <= 2,
            "maxResults 2 gave {} repositories",
            repos.len()
        );
        seen.extend(repos);
        pages += 1;
        assert!(pages < 10, "pagination does not end");
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 repositories in pages of 2");
    seen.sort();
    assert_eq!(seen, all);

    // The CLI test went on with the CLI's own pagination (--page-size, --max-items,
    // --starting-token), which botocore does on the client; what it relies on underneath:
    // without maxResults every repository comes in one answer, and a nextToken from a
    // page of 3 continues with the other 2.
    let whole = s.ecr("DescribeRepositories", json!({})).ok();
    assert_eq!(names(&whole).len(), 5, "{whole}");
    assert!(whole.get("nextToken").is_none(), "{whole}");
    let first = s.ecr("DescribeRepositories", json!({"maxResults": 3})).ok();
    assert_eq!(names(&first).len(), 3);
    let next = first["nextToken"]
        .as_str()
        .expect("a nextToken after 3 of 5");
    let rest = s
        .ecr(
            "DescribeRepositories",
            json!({"maxResults": 2, "nextToken": next}),
        )
        .ok();
    let mut both: Vec<String> = names(&first).into_iter().chain(names(&rest)).collect();
    both.sort();
    assert_eq!(both, all);
}

#[test]
fn describing_a_missing_repository_is_repository_not_found() {
    let s = TestServer::start();
    s.ecr(
        "DescribeRepositories",
        json!({"repositoryNames": ["does-not-exist"]}),
    )
    .expect_error("RepositoryNotFoundException");
    s.ecr(
        "DeleteRepository",
        json!({"repositoryName": "does-not-exist"}),
    )
    .expect_error("RepositoryNotFoundException");
}

#[test]
fn invalid_repository_names_are_invalid_parameter() {
    let s = TestServer::start();
    for name in [
        "Bad_Name",
        "../x",
        "a//b",
        "-leading",
        "trailing-",
        "UPPER",
        "a/../b",
    ] {
        s.ecr("CreateRepository", json!({"repositoryName": name}))
            .expect_error("InvalidParameterException");
    }
    // Nothing was created on the way.
    let all = s.ecr("DescribeRepositories", json!({})).ok();
    assert_eq!(all["repositories"].as_array().unwrap().len(), 0, "{all}");
}

#[test]
fn authorization_token_and_login_password() {
    let s = TestServer::start();
    let v = s.ecr("GetAuthorizationToken", json!({})).ok();
    let data = &v["authorizationData"][0];
    let password = password_of_token(data["authorizationToken"].as_str().unwrap());
    assert!(!password.is_empty());
    assert!(!password.contains(':'), "the password contains no ':'");
    let expires = epoch_seconds(&data["expiresAt"]);
    let twelve_hours = (now_unix() + 12 * 3600) as f64;
    assert!(
        (expires - twelve_hours).abs() < 600.0,
        "expiresAt {expires} is not 12 h ahead"
    );
    assert_eq!(data["proxyEndpoint"], format!("https://{}", s.host()));

    // `aws ecr get-login-password` is GetAuthorizationToken again, its token decoded on the
    // client: a second token's password. Both passwords open the registry.
    let login_pw = s.login_password();
    assert!(!login_pw.is_empty());
    assert!(!login_pw.contains(':'));
    for pw in [password.as_str(), login_pw.as_str()] {
        let r = Registry {
            port: s.port(),
            authorization: Some(basic_auth("AWS", pw)),
        }
        .get("/v2/");
        assert_eq!(r.status, 200, "{}", r.describe());
    }
}

#[test]
fn put_image_tag_mutability_and_scanning_configuration() {
    let s = TestServer::start();
    let name = unique("settings-");
    s.create_repo(&name, json!({}));

    let v = s
        .ecr(
            "PutImageTagMutability",
            json!({"repositoryName": name, "imageTagMutability": "IMMUTABLE"}),
        )
        .ok();
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["registryId"], ACCOUNT_ID);
    assert_eq!(v["imageTagMutability"], "IMMUTABLE");

    let v = s
        .ecr(
            "PutImageScanningConfiguration",
            json!({"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .ok();
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["imageScanningConfiguration"]["scanOnPush"], true);

    let d = s
        .ecr("DescribeRepositories", json!({"repositoryNames": [name]}))
        .ok();
    assert_eq!(d["repositories"][0]["imageTagMutability"], "IMMUTABLE");
    assert_eq!(
        d["repositories"][0]["imageScanningConfiguration"]["scanOnPush"],
        true
    );

    s.ecr(
        "PutImageTagMutability",
        json!({"repositoryName": "missing-repo", "imageTagMutability": "MUTABLE"}),
    )
    .expect_error("RepositoryNotFoundException");
}

#[test]
fn tag_untag_and_list_tags() {
    let s = TestServer::start();
    let repo = s.create_repo(&unique("tags-"), json!({}));
    let arn = repo["repositoryArn"].as_str().unwrap();

    let list = || {
        s.ecr("ListTagsForResource", json!({"resourceArn": arn}))
            .ok()
    };
    assert!(tag_pairs(&list()).is_empty());

    s.ecr(
        "TagResource",
        json!({"resourceArn": arn,
               "tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    )
    .ok();
    assert_eq!(
        tag_pairs(&list()),
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );

    // Tagging an existing key overwrites its value.
    s.ecr(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"Key": "b", "Value": "3"}]}),
    )
    .ok();
    s.ecr(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .ok();
    assert_eq!(tag_pairs(&list()), vec![("b".into(), "3".into())]);

    let missing = format!(
        "arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/{}",
        unique("nope-")
    );
    s.ecr("ListTagsForResource", json!({"resourceArn": missing}))
        .expect_error("RepositoryNotFoundException");
    s.ecr(
        "TagResource",
        json!({"resourceArn": "not-an-arn", "tags": [{"Key": "a", "Value": "1"}]}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn repository_policy_set_get_delete() {
    let s = TestServer::start();
    let name = unique("policy-");
    s.create_repo(&name, json!({}));
    let policy_of =
        |v: &Value| -> Value { serde_json::from_str(v["policyText"].as_str().unwrap()).unwrap() };

    s.ecr("GetRepositoryPolicy", json!({"repositoryName": name}))
        .expect_error("RepositoryPolicyNotFoundException");

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
    let v = s
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": name, "policyText": text}),
        )
        .ok();
    assert_eq!(v["repositoryName"], name.as_str());
    assert_eq!(v["registryId"], ACCOUNT_ID);
    assert_eq!(policy_of(&v), policy);

    let v = s
        .ecr("GetRepositoryPolicy", json!({"repositoryName": name}))
        .ok();
    assert_eq!(policy_of(&v), policy);

    for bad in ["{not json", "[]", "\"a string\""] {
        s.ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": name, "policyText": bad}),
        )
        .expect_error("InvalidParameterException");
    }
    // A refused policy leaves the stored one alone.
    let v = s
        .ecr("GetRepositoryPolicy", json!({"repositoryName": name}))
        .ok();
    assert_eq!(policy_of(&v), policy);

    let v = s
        .ecr("DeleteRepositoryPolicy", json!({"repositoryName": name}))
        .ok();
    assert_eq!(policy_of(&v), policy);
    s.ecr("GetRepositoryPolicy", json!({"repositoryName": name}))
        .expect_error("RepositoryPolicyNotFoundException");
    s.ecr("DeleteRepositoryPolicy", json!({"repositoryName": name}))
        .expect_error("RepositoryPolicyNotFoundException");
}

#[test]
fn describe_registry() {
    let s = TestServer::start();
    let v = s.ecr("DescribeRegistry", json!({})).ok();
    assert_eq!(v["registryId"], ACCOUNT_ID);
    assert!(v["replicationConfiguration"]["rules"].is_array(), "{v}");
}

#[test]
fn deleting_a_repository_with_images_needs_force() {
    let s = TestServer::start();
    let name = unique("nonempty-");
    s.create_repo(&name, json!({}));
    s.registry()
        .push_image(&name, "v1", &make_image("amd64", &name));

    s.ecr("DeleteRepository", json!({"repositoryName": name}))
        .expect_error("RepositoryNotEmptyException");
    // Still there, image and all.
    let imgs = s.ecr("ListImages", json!({"repositoryName": name})).ok();
    assert_eq!(imgs["imageIds"].as_array().unwrap().len(), 1);

    let v = s
        .ecr(
            "DeleteRepository",
            json!({"repositoryName": name, "force": true}),
        )
        .ok();
    assert_eq!(v["repository"]["repositoryName"], name.as_str());
    s.ecr("DescribeRepositories", json!({"repositoryNames": [name]}))
        .expect_error("RepositoryNotFoundException");
    // The registry forgets it too.
    let r = s.registry().get_manifest(&name, "v1");
    r.assert_oci_error(404, "NAME_UNKNOWN");
}

#[test]
fn deleting_an_empty_repository_needs_no_force() {
    let s = TestServer::start();
    let name = unique("empty-");
    s.create_repo(&name, json!({}));
    s.ecr("DeleteRepository", json!({"repositoryName": name}))
        .ok();
    s.ecr("DescribeRepositories", json!({"repositoryNames": [name]}))
        .expect_error("RepositoryNotFoundException");
    // The name can be used again.
    s.create_repo(&name, json!({}));
}

#[test]
fn regions_are_separate() {
    let s = TestServer::start();
    let name = unique("regional-");
    s.create_repo(&name, json!({}));
    let in_eu = |operation: &str, body: Value| {
        s.call_in(
            "eu-west-1",
            "ecr",
            &format!("{ECR_TARGET}.{operation}"),
            body,
        )
    };

    in_eu("DescribeRepositories", json!({"repositoryNames": [name]}))
        .expect_error("RepositoryNotFoundException");
    let all = in_eu("DescribeRepositories", json!({})).ok();
    assert_eq!(all["repositories"].as_array().unwrap().len(), 0);

    // The same name can exist in the other region, with that region's ARN.
    let v = in_eu("CreateRepository", json!({"repositoryName": name})).ok();
    assert_eq!(
        v["repository"]["repositoryArn"],
        format!("arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/{name}").as_str()
    );
}
