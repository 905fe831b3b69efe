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

/// InvalidLayerPartException carries the members of its shape in the API reference —
/// registryId, repositoryName, uploadId and lastValidByteReceived — beside `__type` and
/// `message` (seen in the JSON body; the CLI shows the code and message).
#[test]
fn invalid_layer_part_exception_carries_its_members() {
    let s = BerthServer::start();
    let repo = unique("parts-");
    s.create_repo(&repo, &[]);
    let started = ok_json(&s.aws(&["ecr", "initiate-layer-upload", "--repository-name", &repo]));
    let upload_id = started["uploadId"].as_str().unwrap().to_string();
    let part = s.scratch("parts").join("part");
    std::fs::write(&part, b"abcd").unwrap();
    let blob = format!("fileb://{}", part.display());
    let upload = |first: &str, last: &str| {
        s.aws(&[
            "ecr",
            "upload-layer-part",
            "--repository-name",
            &repo,
            "--upload-id",
            &upload_id,
            "--part-first-byte",
            first,
            "--part-last-byte",
            last,
            "--layer-part-blob",
            &blob,
        ])
    };
    let first = ok_json(&upload("0", "3"));
    assert_eq!(first["lastByteReceived"], 3);
    refused(
        &upload("10", "13"),
        "InvalidLayerPartException",
        "the first byte specified is not consecutive to the last byte of a previous layer part upload",
    );
    let raw = s
        .aws_json(
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart",
            &json!({"repositoryName": repo, "uploadId": upload_id, "partFirstByte": 10,
                    "partLastByte": 13, "layerPartBlob": "YWJjZA=="}),
        )
        .unwrap();
    assert_eq!(raw.status, 400, "{}", raw.describe());
    let body = raw.json();
    assert_eq!(body["__type"], "InvalidLayerPartException");
    assert_eq!(body["registryId"], "000000000000");
    assert_eq!(body["repositoryName"], json!(repo));
    assert_eq!(body["uploadId"], json!(upload_id));
    assert_eq!(body["lastValidByteReceived"], 3, "{body:#}");
}

/// BatchCheckLayerAvailability's Layer has `mediaType`: the media type a manifest of the
/// repository gives the blob; a blob no manifest references has none (the field is optional).
#[test]
fn batch_check_layer_availability_names_the_media_type() {
    let s = BerthServer::start();
    let repo = unique("layers-");
    s.create_repo(&repo, &[]);
    let image = make_image("amd64", "media types");
    let reg = s.registry();
    reg.push_image(&repo, "v1", &image);
    let loose = reg.upload_blob(&repo, b"a blob no manifest references");
    let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
    let checked = ok_json(&s.aws(&[
        "ecr",
        "batch-check-layer-availability",
        "--repository-name",
        &repo,
        "--layer-digests",
        &image.layer_digest,
        &image.config_digest,
        &loose,
    ]));
    let layers = checked["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{checked:#}");
    assert_eq!(layers[0]["mediaType"], manifest["layers"][0]["mediaType"]);
    assert_eq!(layers[0]["layerAvailability"], "AVAILABLE");
    assert_eq!(layers[1]["mediaType"], manifest["config"]["mediaType"]);
    assert!(layers[2].get("mediaType").is_none(), "{checked:#}");
    assert_eq!(layers[2]["layerSize"], 29);
}

/// KMS encryption shows `kmsKey`: the given key, or "the default Amazon Web Services
/// managed KMS key for Amazon ECR" (EncryptionConfiguration in the API reference) — the
/// `aws/ecr` key of the repository's account and region; AES256 shows none.
#[test]
fn kms_encryption_shows_the_key() {
    let s = BerthServer::start();
    let create = |name: &str, encryption: &str| {
        ok_json(&s.aws(&[
            "ecr",
            "create-repository",
            "--repository-name",
            name,
            "--encryption-configuration",
            encryption,
        ]))["repository"]
            .clone()
    };
    let default_key = format!(
        "arn:aws:kms:{}:000000000000:alias/aws/ecr",
        berth_e2e::REGION
    );
    let kms = create(&unique("kms-"), "encryptionType=KMS");
    assert_eq!(
        kms["encryptionConfiguration"],
        json!({"encryptionType": "KMS", "kmsKey": default_key})
    );
    let dsse = create(&unique("dsse-"), "encryptionType=KMS_DSSE");
    assert_eq!(
        dsse["encryptionConfiguration"]["kmsKey"],
        json!(default_key)
    );
    let own = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let given = create(
        &unique("kms-own-"),
        &format!("encryptionType=KMS,kmsKey={own}"),
    );
    assert_eq!(given["encryptionConfiguration"]["kmsKey"], own);
    let aes = create(&unique("aes-"), "encryptionType=AES256");
    assert_eq!(
        aes["encryptionConfiguration"],
        json!({"encryptionType": "AES256"})
    );
    let described = ok_json(&s.aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        kms["repositoryName"].as_str().unwrap(),
    ]));
    assert_eq!(
        described["repositories"][0]["encryptionConfiguration"]["kmsKey"],
        json!(default_key)
    );
}

fn put_image(s: &BerthServer, repo: &str, tag: &str, manifest: &[u8]) -> std::process::Output {
    s.aws(&[
        "ecr",
        "put-image",
        "--repository-name",
        repo,
        "--image-tag",
        tag,
        "--image-manifest",
        std::str::from_utf8(manifest).unwrap(),
    ])
}

/// IMMUTABLE_WITH_EXCLUSION / MUTABLE_WITH_EXCLUSION with WILDCARD exclusion filters
/// (ImageTagMutability and ImageTagMutabilityExclusionFilter in the API reference): shown by
/// CreateRepository, DescribeRepositories and PutImageTagMutability, and enforced on
/// PutImage and on an OCI manifest PUT.
#[test]
fn tag_mutability_exclusions_are_shown_and_enforced() {
    let s = BerthServer::start();
    let repo = unique("exclusions-");
    let created = ok_json(&s.aws(&[
        "ecr",
        "create-repository",
        "--repository-name",
        &repo,
        "--image-tag-mutability",
        "IMMUTABLE_WITH_EXCLUSION",
        "--image-tag-mutability-exclusion-filters",
        "filterType=WILDCARD,filter=latest",
        "filterType=WILDCARD,filter=dev-*",
    ]));
    let filters = json!([{"filterType": "WILDCARD", "filter": "latest"},
                         {"filterType": "WILDCARD", "filter": "dev-*"}]);
    assert_eq!(
        created["repository"]["imageTagMutability"],
        "IMMUTABLE_WITH_EXCLUSION"
    );
    assert_eq!(
        created["repository"]["imageTagMutabilityExclusionFilters"],
        filters
    );
    let described = ok_json(&s.aws(&["ecr", "describe-repositories", "--repository-names", &repo]));
    assert_eq!(
        described["repositories"][0]["imageTagMutabilityExclusionFilters"],
        filters
    );

    let (one, two) = (make_image("amd64", "one"), make_image("amd64", "two"));
    let reg = s.registry();
    for tag in ["v1", "latest", "dev-1"] {
        reg.push_image(&repo, tag, &one);
    }
    reg.upload_blob(&repo, &two.config);
    reg.upload_blob(&repo, &two.layer);
    // Excluded tags stay mutable, through the OCI API and through PutImage.
    let moved = reg.put_manifest(&repo, "latest", &two.manifest_media_type, &two.manifest);
    assert_eq!(moved.status, 201, "{}", moved.describe());
    ok_json(&put_image(&s, &repo, "dev-1", &two.manifest));
    // Any other tag is immutable.
    let refused_push = reg.put_manifest(&repo, "v1", &two.manifest_media_type, &two.manifest);
    assert_eq!(refused_push.status, 400, "{}", refused_push.describe());
    refused(
        &put_image(&s, &repo, "v1", &two.manifest),
        "ImageTagAlreadyExistsException",
        &format!(
            "The image tag 'v1' already exists in the '{repo}' repository and cannot be overwritten because the tag is immutable."
        ),
    );

    let put = ok_json(&s.aws(&[
        "ecr",
        "put-image-tag-mutability",
        "--repository-name",
        &repo,
        "--image-tag-mutability",
        "MUTABLE_WITH_EXCLUSION",
        "--image-tag-mutability-exclusion-filters",
        "filterType=WILDCARD,filter=release-*",
    ]));
    assert_eq!(put["imageTagMutability"], "MUTABLE_WITH_EXCLUSION");
    assert_eq!(
        put["imageTagMutabilityExclusionFilters"],
        json!([{"filterType": "WILDCARD", "filter": "release-*"}])
    );
    ok_json(&put_image(&s, &repo, "v1", &two.manifest));
    ok_json(&put_image(&s, &repo, "release-1", &one.manifest));
    refused(
        &put_image(&s, &repo, "release-1", &two.manifest),
        "ImageTagAlreadyExistsException",
        "cannot be overwritten because the tag is immutable",
    );
    // A *_WITH_EXCLUSION mutability needs its filters (1 to 5 of them).
    refused(
        &s.aws(&[
            "ecr",
            "put-image-tag-mutability",
            "--repository-name",
            &repo,
            "--image-tag-mutability",
            "IMMUTABLE_WITH_EXCLUSION",
        ]),
        "InvalidParameterException",
        "imageTagMutabilityExclusionFilters",
    );
}

/// A repository name outside ECR's pattern is refused with AWS's text (other emulators'
/// tests quote it as captured from CreateRepository: the API reference's current pattern,
/// no value echoed); the pattern's `__` and `-+` separators are accepted.
#[test]
fn repository_name_validation_answers_as_ecr_does() {
    let s = BerthServer::start();
    refused(
        &s.aws(&["ecr", "create-repository", "--repository-name", "Bad_Name!"]),
        "InvalidParameterException",
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*''",
    );
    let name = unique("double__under---dash-");
    let created = ok_json(&s.aws(&["ecr", "create-repository", "--repository-name", &name]));
    assert_eq!(created["repository"]["repositoryName"], json!(name));
}

/// Put/Get/DeleteRegistryPolicy: stored, validated as a policy document like
/// SetRepositoryPolicy's; RegistryPolicyNotFoundException says "Registry policy does not
/// exist in the registry with id '...'" (moto's text for it, modelled on AWS's answers).
#[test]
fn registry_policy_is_stored() {
    let s = BerthServer::start();
    let not_found = "Registry policy does not exist in the registry with id '000000000000'";
    refused(
        &s.aws(&["ecr", "get-registry-policy"]),
        "RegistryPolicyNotFoundException",
        not_found,
    );
    refused(
        &s.aws(&[
            "ecr",
            "put-registry-policy",
            "--policy-text",
            "not a policy",
        ]),
        "InvalidParameterException",
        "Invalid parameter at 'policyText' failed to satisfy constraint",
    );
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "replicate",
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"}]})
    .to_string();
    let put = ok_json(&s.aws(&["ecr", "put-registry-policy", "--policy-text", &policy]));
    assert_eq!(
        put,
        json!({"registryId": "000000000000", "policyText": policy})
    );
    let got = ok_json(&s.aws(&["ecr", "get-registry-policy"]));
    assert_eq!(
        got,
        json!({"registryId": "000000000000", "policyText": policy})
    );
    let deleted = ok_json(&s.aws(&["ecr", "delete-registry-policy"]));
    assert_eq!(deleted["policyText"], json!(policy));
    refused(
        &s.aws(&["ecr", "delete-registry-policy"]),
        "RegistryPolicyNotFoundException",
        not_found,
    );
}

/// The registry's scanning configuration is stored (BASIC with no rules until set), and
/// BatchGetRepositoryScanningConfiguration shows each repository under it: the frequency and
/// filters of the rule that matches its name, else its own scanOnPush; a missing repository
/// is a failure with failureCode REPOSITORY_NOT_FOUND (the only ScanningConfigurationFailureCode).
#[test]
fn scanning_configuration_is_stored_and_applied() {
    let s = BerthServer::start();
    let initial = ok_json(&s.aws(&["ecr", "get-registry-scanning-configuration"]));
    assert_eq!(
        initial,
        json!({"registryId": "000000000000", "scanningConfiguration": {"scanType": "BASIC", "rules": []}})
    );
    let rules = json!([{"scanFrequency": "CONTINUOUS_SCAN",
        "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}]);
    let put = ok_json(&s.aws(&[
        "ecr",
        "put-registry-scanning-configuration",
        "--scan-type",
        "ENHANCED",
        "--rules",
        &rules.to_string(),
    ]));
    let configured = json!({"scanType": "ENHANCED", "rules": rules});
    assert_eq!(put["registryScanningConfiguration"], configured);
    let got = ok_json(&s.aws(&["ecr", "get-registry-scanning-configuration"]));
    assert_eq!(got["scanningConfiguration"], configured);

    let prod = unique("prod-");
    let dev = unique("dev-");
    s.create_repo(&prod, &[]);
    s.create_repo(&dev, &["--image-scanning-configuration", "scanOnPush=true"]);
    let missing = unique("missing-");
    let batch = ok_json(&s.aws(&[
        "ecr",
        "batch-get-repository-scanning-configuration",
        "--repository-names",
        &prod,
        &dev,
        &missing,
    ]));
    let arn = |name: &str| {
        format!(
            "arn:aws:ecr:{}:000000000000:repository/{name}",
            berth_e2e::REGION
        )
    };
    assert_eq!(
        batch["scanningConfigurations"],
        json!([
            {"repositoryArn": arn(&prod), "repositoryName": prod, "scanOnPush": false,
             "scanFrequency": "CONTINUOUS_SCAN",
             "appliedScanFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]},
            {"repositoryArn": arn(&dev), "repositoryName": dev, "scanOnPush": true,
             "scanFrequency": "SCAN_ON_PUSH", "appliedScanFilters": []},
        ])
    );
    assert_eq!(
        batch["failures"],
        json!([{"repositoryName": missing, "failureCode": "REPOSITORY_NOT_FOUND",
                "failureReason": format!("The repository with name '{missing}' does not exist in the registry with id '000000000000'")}])
    );
}

/// ListImageReferrers (in the installed botocore, so through the CLI): the artifacts whose
/// `subject` is the image, as ImageReferrer {digest, mediaType, artifactType, size,
/// annotations, artifactStatus}; filter.artifactTypes selects; maxResults pages.
#[test]
fn list_image_referrers_answers_as_ecr_does() {
    use berth_e2e::oci::{OCI_EMPTY, OCI_MANIFEST, sha256_digest};
    let s = BerthServer::start();
    let repo = unique("referrers-");
    s.create_repo(&repo, &[]);
    let reg = s.registry();
    let target = make_image("amd64", "the subject");
    reg.push_image(&repo, "v1", &target);
    let empty = reg.upload_blob(&repo, b"{}");
    let artifact = |artifact_type: &str, payload: &[u8]| {
        let blob = reg.upload_blob(&repo, payload);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/json", "digest": blob, "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": target.manifest_digest,
                        "size": target.manifest.len()},
            "annotations": {"org.example.kind": artifact_type},
        }))
        .unwrap();
        let digest = sha256_digest(&manifest);
        let r = reg.put_manifest(&repo, &digest, OCI_MANIFEST, &manifest);
        assert_eq!(r.status, 201, "{}", r.describe());
        (digest, manifest.len())
    };
    let (sbom, sbom_size) = artifact("application/vnd.example.sbom", br#"{"sbom":1}"#);
    let (sig, _) = artifact("application/vnd.example.signature", br#"{"sig":1}"#);
    let list = |extra: &[&str]| {
        let mut args = vec![
            "ecr",
            "list-image-referrers",
            "--repository-name",
            &repo,
            "--subject-id",
        ];
        let subject = format!("imageDigest={}", target.manifest_digest);
        args.push(&subject);
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args))
    };
    let all = list(&[]);
    let digests: Vec<&str> = all["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    let mut expected = vec![sbom.as_str(), sig.as_str()];
    expected.sort_unstable();
    assert_eq!(digests, expected, "{all:#}");
    let only_sbom = list(&["--filter", "artifactTypes=application/vnd.example.sbom"]);
    assert_eq!(
        only_sbom["referrers"],
        json!([{"digest": sbom, "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.sbom", "size": sbom_size,
                "annotations": {"org.example.kind": "application/vnd.example.sbom"},
                "artifactStatus": "ACTIVE"}])
    );
    let raw = s
        .aws_json(
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921.ListImageReferrers",
            &json!({"repositoryName": repo, "subjectId": {"imageDigest": target.manifest_digest},
                    "maxResults": 1}),
        )
        .unwrap();
    let page = raw.json();
    assert_eq!(page["referrers"].as_array().unwrap().len(), 1, "{page:#}");
    assert_eq!(
        page["referrers"][0]["digest"],
        json!(expected[0]),
        "{page:#}"
    );
    // The token leads to the next referrer in digest order.
    let next = s
        .aws_json(
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921.ListImageReferrers",
            &json!({"repositoryName": repo, "subjectId": {"imageDigest": target.manifest_digest},
                    "maxResults": 1, "nextToken": page["nextToken"]}),
        )
        .unwrap()
        .json();
    assert_eq!(
        next["referrers"][0]["digest"],
        json!(expected[1]),
        "{next:#}"
    );
    let none = list(&["--filter", "artifactStatus=ARCHIVED"]);
    assert_eq!(none["referrers"], json!([]));
}

/// OCI 1.1 mount without `from`: a blob another repository of the account has is mounted
/// (201 Created, Location, Docker-Content-Digest) and then available to ECR's
/// BatchCheckLayerAvailability; a blob the account does not have opens an upload (202).
/// (docker does not send this request; the raw registry client does.)
#[test]
fn anonymous_blob_mount_answers_201() {
    let s = BerthServer::start();
    let (source, target) = (unique("mount-src-"), unique("mount-dst-"));
    s.create_repo(&source, &[]);
    s.create_repo(&target, &[]);
    let reg = s.registry();
    let digest = reg.upload_blob(&source, b"a layer to mount");
    let mounted = reg.request(
        "POST",
        &format!("/v2/{target}/blobs/uploads/?mount={digest}"),
        &[],
        b"",
    );
    assert_eq!(mounted.status, 201, "{}", mounted.describe());
    assert_eq!(
        mounted.header("docker-content-digest"),
        Some(digest.as_str())
    );
    assert_eq!(
        mounted.header("location"),
        Some(format!("/v2/{target}/blobs/{digest}").as_str())
    );
    let checked = ok_json(&s.aws(&[
        "ecr",
        "batch-check-layer-availability",
        "--repository-name",
        &target,
        "--layer-digests",
        &digest,
    ]));
    assert_eq!(
        checked["layers"][0]["layerAvailability"], "AVAILABLE",
        "{checked:#}"
    );
    let unknown = format!("sha256:{}", "0".repeat(64));
    let upload = reg.request(
        "POST",
        &format!("/v2/{target}/blobs/uploads/?mount={unknown}"),
        &[],
        b"",
    );
    assert_eq!(upload.status, 202, "{}", upload.describe());
}
