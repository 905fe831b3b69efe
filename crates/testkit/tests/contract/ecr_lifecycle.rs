//! ECR lifecycle policies in-process: the validation table (ECR's "Lifecycle policy
//! validation failure" texts) and the preview's filters and pages. The real-CLI tests are
//! in tests/tests/e2e/conformance_ecr.rs; the planner's semantics are unit-tested in
//! crates/registry/src/lifecycle.rs.

use std::time::{Duration, Instant};

use berth_testkit::oci::make_image;
use berth_testkit::{TestServer, unique};
use serde_json::{Value, json};

fn rule(priority: i64, selection: Value) -> Value {
    json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
}

#[test]
fn malformed_policies_are_refused_with_ecr_texts() {
    let s = TestServer::start();
    let repo = unique("lc-validate-");
    s.create_repo(&repo, json!({}));
    let prefix = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";
    let untagged =
        json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1});
    let cases = [
        (
            json!({"rules": [{"rulePriority": 1, "selection": untagged}]}),
            "object has missing required properties ([\"action\"])",
        ),
        (
            json!({"rules": [rule(1, json!({"tagStatus": "sometimes", "countType": "imageCountMoreThan", "countNumber": 1}))]}),
            "instance value (\"sometimes\") not found in enum (possible values: [\"any\",\"tagged\",\"untagged\"])",
        ),
        (
            json!({"rules": [rule(1, json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1}))]}),
            "instance failed to match exactly one schema (matched 0 out of 2)",
        ),
        (
            json!({"rules": [rule(1, untagged.clone()), rule(2, untagged.clone())]}),
            "Only one rule can select Untagged images per storage class",
        ),
        (
            json!({"rules": [rule(1, json!({"tagStatus": "untagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 1}))]}),
            "tagPrefixList and tagPatternList can only be specified when tagStatus=TAGGED.",
        ),
    ];
    for (policy, why) in cases {
        let answer = s.ecr(
            "PutLifecyclePolicy",
            json!({"repositoryName": repo, "lifecyclePolicyText": policy.to_string()}),
        );
        assert_eq!(answer.error(), "InvalidParameterException", "{policy}");
        assert_eq!(answer.message(), format!("{prefix}{why}'"), "{policy}");
    }
}

#[test]
fn the_preview_filters_and_pages() {
    let s = TestServer::start();
    let repo = unique("lc-preview-");
    s.create_repo(&repo, json!({}));
    let reg = s.registry();
    let mut digests = Vec::new();
    for tag in ["rc-1", "rc-2", "rc-3", "rc-4"] {
        let image = make_image("amd64", &format!("{repo} {tag}"));
        reg.push_image(&repo, tag, &image);
        digests.push(image.manifest_digest);
    }
    let policy = json!({"rules": [rule(1, json!({"tagStatus": "tagged", "tagPatternList": ["rc-*"],
        "countType": "imageCountMoreThan", "countNumber": 1}))]})
    .to_string();
    let started = s
        .ecr(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": repo, "lifecyclePolicyText": policy}),
        )
        .ok();
    assert_eq!(started["status"], "IN_PROGRESS");
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let p = s
            .ecr(
                "GetLifecyclePolicyPreview",
                json!({"repositoryName": repo, "maxResults": 2}),
            )
            .ok();
        if p["status"] == "COMPLETE" {
            break p;
        }
        assert!(Instant::now() < deadline, "the preview never completed");
        std::thread::sleep(Duration::from_millis(50));
    };
    let shown = |p: &Value| -> Vec<String> {
        p["previewResults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["imageDigest"].as_str().unwrap().to_string())
            .collect()
    };
    // Oldest first; three of four expire, two on the first page.
    assert_eq!(shown(&page), digests[..2].to_vec());
    assert_eq!(page["summary"]["expiringImageTotalCount"], 3);
    let rest = s
        .ecr(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": repo, "maxResults": 2, "nextToken": page["nextToken"]}),
        )
        .ok();
    assert_eq!(shown(&rest), digests[2..3].to_vec());
    assert!(rest.get("nextToken").is_none(), "{rest:#}");
    let one = s
        .ecr(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": repo, "imageIds": [{"imageTag": "rc-2"}]}),
        )
        .ok();
    assert_eq!(shown(&one), digests[1..2].to_vec());
    let untagged = s
        .ecr(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": repo, "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .ok();
    assert_eq!(untagged["previewResults"], json!([]));
    // Deleting the repository takes its preview with it.
    s.ecr(
        "DeleteRepository",
        json!({"repositoryName": repo, "force": true}),
    )
    .ok();
    s.create_repo(&repo, json!({}));
    let gone = s.ecr("GetLifecyclePolicyPreview", json!({"repositoryName": repo}));
    assert_eq!(gone.error(), "LifecyclePolicyPreviewNotFoundException");
}
