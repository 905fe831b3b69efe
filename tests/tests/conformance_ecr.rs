//! ECR answers as AWS answers, field by field and error by error, driven with the real `aws`
//! CLI (issue 16, section 2, ECR part). Each test names the evidence for the exact text.

use std::time::{Duration, Instant};

use berth_e2e::oci::make_image;
use berth_e2e::{BerthServer, ServerOptions, assert_aws_error, ok_json, stderr_of, unique};
use serde_json::{Value, json};

#[track_caller]
fn refused(out: &std::process::Output, code: &str, message: &str) {
    assert_aws_error(out, code);
    assert!(
        stderr_of(out).contains(message),
        "expected {message:?} in: {}",
        stderr_of(out)
    );
}

fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pushes `tags` in order (one image each, oldest first) and returns their digests.
fn push_tagged(s: &BerthServer, repo: &str, tags: &[&str]) -> Vec<String> {
    let reg = s.registry();
    tags.iter()
        .map(|tag| {
            let image = make_image("amd64", &format!("{repo} {tag}"));
            reg.push_image(repo, tag, &image);
            image.manifest_digest
        })
        .collect()
}

fn keep_newest(prefix: &str, n: u64) -> String {
    json!({"rules": [
        {"rulePriority": 1, "description": "keep the newest",
         "selection": {"tagStatus": "tagged", "tagPrefixList": [prefix],
                       "countType": "imageCountMoreThan", "countNumber": n},
         "action": {"type": "expire"}},
        {"rulePriority": 2,
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                       "countUnit": "days", "countNumber": 14},
         "action": {"type": "expire"}}
    ]})
    .to_string()
}

/// Put/Get/DeleteLifecyclePolicy and the preview, with ECR's texts: "Lifecycle policy does
/// not exist for the repository with name '...' in the registry with id '...'" (as
/// RepositoryPolicyNotFoundException's), a malformed policy's "Invalid parameter at
/// 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation
/// failure: ...'" (cloudposse/terraform-aws-ecr#132 quotes AWS's answer for a countUnit
/// where the schema wants none). The preview is IN_PROGRESS when started and COMPLETE with
/// the images the policy would expire, oldest first.
#[test]
fn lifecycle_policy_and_preview_answer_as_ecr_does() {
    let s = BerthServer::start();
    let repo = unique("lifecycle-");
    s.create_repo(&repo, &[]);
    let not_found = format!(
        "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '000000000000'"
    );
    refused(
        &s.aws(&["ecr", "get-lifecycle-policy", "--repository-name", &repo]),
        "LifecyclePolicyNotFoundException",
        &not_found,
    );
    refused(
        &s.aws(&[
            "ecr",
            "start-lifecycle-policy-preview",
            "--repository-name",
            &repo,
        ]),
        "LifecyclePolicyNotFoundException",
        &not_found,
    );
    let bad = json!({"rules": [{"rulePriority": 1,
        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                      "countUnit": "days", "countNumber": 1},
        "action": {"type": "expire"}}]})
    .to_string();
    refused(
        &s.aws(&[
            "ecr",
            "put-lifecycle-policy",
            "--repository-name",
            &repo,
            "--lifecycle-policy-text",
            &bad,
        ]),
        "InvalidParameterException",
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: instance failed to match exactly one schema (matched 0 out of 2)'",
    );

    let digests = push_tagged(&s, &repo, &["v1", "v2", "v3"]);
    let policy = keep_newest("v", 1);
    let put = ok_json(&s.aws(&[
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        &repo,
        "--lifecycle-policy-text",
        &policy,
    ]));
    assert_eq!(
        put,
        json!({"registryId": "000000000000", "repositoryName": repo, "lifecyclePolicyText": policy})
    );
    let got = ok_json(&s.aws(&["ecr", "get-lifecycle-policy", "--repository-name", &repo]));
    assert_eq!(got["lifecyclePolicyText"], json!(policy));
    assert!(got.get("lastEvaluatedAt").is_none(), "{got:#}");

    let started = ok_json(&s.aws(&[
        "ecr",
        "start-lifecycle-policy-preview",
        "--repository-name",
        &repo,
    ]));
    assert_eq!(started["status"], "IN_PROGRESS", "{started:#}");
    assert_eq!(started["lifecyclePolicyText"], json!(policy));
    let preview = poll("the preview", || {
        let p = ok_json(&s.aws(&[
            "ecr",
            "get-lifecycle-policy-preview",
            "--repository-name",
            &repo,
        ]));
        (p["status"] == "COMPLETE").then_some(p)
    });
    let results = preview["previewResults"].as_array().unwrap();
    let shown: Vec<(&str, &Value, &Value, &Value)> = results
        .iter()
        .map(|r| {
            assert!(r["imagePushedAt"].as_f64().unwrap() > 0.0, "{r:#}");
            (
                r["imageDigest"].as_str().unwrap(),
                &r["imageTags"],
                &r["action"],
                &r["appliedRulePriority"],
            )
        })
        .collect();
    let expire = json!({"type": "EXPIRE"});
    assert_eq!(
        shown,
        vec![
            (digests[0].as_str(), &json!(["v1"]), &expire, &json!(1)),
            (digests[1].as_str(), &json!(["v2"]), &expire, &json!(1)),
        ]
    );
    assert_eq!(preview["summary"], json!({"expiringImageTotalCount": 2}));
    // A preview of another policy text leaves the repository's policy as it was.
    let other = keep_newest("v", 2);
    ok_json(&s.aws(&[
        "ecr",
        "start-lifecycle-policy-preview",
        "--repository-name",
        &repo,
        "--lifecycle-policy-text",
        &other,
    ]));
    let preview = poll("the second preview", || {
        let p = ok_json(&s.aws(&[
            "ecr",
            "get-lifecycle-policy-preview",
            "--repository-name",
            &repo,
        ]));
        (p["status"] == "COMPLETE").then_some(p)
    });
    assert_eq!(
        preview["summary"]["expiringImageTotalCount"], 1,
        "{preview:#}"
    );
    // A preview expires nothing.
    let listed = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &repo]));
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 3);

    let deleted = ok_json(&s.aws(&["ecr", "delete-lifecycle-policy", "--repository-name", &repo]));
    assert_eq!(deleted["lifecyclePolicyText"], json!(policy));
    refused(
        &s.aws(&["ecr", "delete-lifecycle-policy", "--repository-name", &repo]),
        "LifecyclePolicyNotFoundException",
        &not_found,
    );
}

/// The policy runs from the server's housekeeping loop (ECR: within 24 hours; Berth: every
/// `BERTH_LIFECYCLE_INTERVAL_SECONDS`, a day by default): the images it selects are gone,
/// and GetLifecyclePolicy shows when it ran.
#[test]
fn lifecycle_policy_expires_images_when_it_runs() {
    let s = BerthServer::start_with(ServerOptions {
        env: vec![("BERTH_LIFECYCLE_INTERVAL_SECONDS".into(), "1".into())],
        ..ServerOptions::default()
    });
    let repo = unique("lifecycle-run-");
    s.create_repo(&repo, &[]);
    let digests = push_tagged(&s, &repo, &["v1", "v2", "v3", "keep"]);
    ok_json(&s.aws(&[
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        &repo,
        "--lifecycle-policy-text",
        &keep_newest("v", 1),
    ]));
    let left = poll("the policy to run", || {
        let listed = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &repo]));
        let ids = listed["imageIds"].as_array().unwrap().clone();
        (ids.len() == 2).then_some(ids)
    });
    let mut left: Vec<&str> = left
        .iter()
        .map(|i| i["imageDigest"].as_str().unwrap())
        .collect();
    left.sort_unstable();
    let mut expected = vec![digests[2].as_str(), digests[3].as_str()];
    expected.sort_unstable();
    assert_eq!(left, expected);
    let got = ok_json(&s.aws(&["ecr", "get-lifecycle-policy", "--repository-name", &repo]));
    assert!(got["lastEvaluatedAt"].as_f64().unwrap() > 0.0, "{got:#}");
}
