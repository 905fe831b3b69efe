//! ECR's image and layer API through the `aws` CLI, on images pushed with docker
//! or with the raw registry protocol.

use std::process::Command;

use berth_e2e::oci::{DOCKER_MANIFEST, OCI_MANIFEST, make_image, sha256_digest};
use berth_e2e::sigv4::now_unix;
use berth_e2e::{BerthServer, assert_aws_error, assert_ok, epoch_seconds, ok_json, unique};
use serde_json::Value;

fn image_ids(v: &Value) -> Vec<(Option<String>, String)> {
    let mut ids: Vec<(Option<String>, String)> = v["imageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["imageTag"].as_str().map(str::to_owned),
                i["imageDigest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn describe_images_after_a_docker_push() {
    let s = BerthServer::start();
    let name = unique("described-");
    s.create_repo(&name, &[]);
    s.docker_push_test_image(&name, "v1");

    let v = ok_json(&s.aws(&["ecr", "describe-images", "--repository-name", &name]));
    let details = v["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{v}");
    let d = &details[0];
    assert_eq!(d["repositoryName"], name.as_str());
    assert_eq!(d["registryId"], berth_e2e::ACCOUNT_ID);
    let digest = d["imageDigest"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(d["imageTags"], serde_json::json!(["v1"]));
    assert!(d["imageSizeInBytes"].as_u64().unwrap() > 0);
    let pushed = epoch_seconds(&d["imagePushedAt"]);
    assert!(
        (pushed - now_unix() as f64).abs() < 300.0,
        "imagePushedAt {pushed}"
    );
    let mt = d["imageManifestMediaType"].as_str().unwrap();
    assert!(
        mt == DOCKER_MANIFEST || mt == OCI_MANIFEST,
        "imageManifestMediaType {mt}"
    );
    assert!(d["artifactMediaType"].is_string(), "artifactMediaType: {d}");

    // By tag and by digest.
    for id in ["imageTag=v1".to_owned(), format!("imageDigest={digest}")] {
        let v = ok_json(&s.aws(&[
            "ecr",
            "describe-images",
            "--repository-name",
            &name,
            "--image-ids",
            &id,
        ]));
        assert_eq!(v["imageDetails"][0]["imageDigest"], digest);
    }
}

#[test]
fn describe_images_of_a_missing_tag_is_image_not_found() {
    let s = BerthServer::start();
    let name = unique("notag-");
    s.create_repo(&name, &[]);
    let out = s.aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &name,
        "--image-ids",
        "imageTag=nope",
    ]);
    assert_aws_error(&out, "ImageNotFoundException");
    let out = s.aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &unique("norepo-"),
    ]);
    assert_aws_error(&out, "RepositoryNotFoundException");
}

#[test]
fn list_images_filters_tagged_and_untagged() {
    let s = BerthServer::start();
    let name = unique("listed-");
    s.create_repo(&name, &[]);
    let reg = s.registry();
    let old = make_image("amd64", "old");
    let new = make_image("amd64", "new");
    reg.push_image(&name, "v1", &old);
    reg.push_image(&name, "v1", &new); // moves the tag; `old` is left untagged

    let all = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &name]));
    let mut expected_all = vec![
        (None, old.manifest_digest.clone()),
        (Some("v1".to_owned()), new.manifest_digest.clone()),
    ];
    expected_all.sort();
    assert_eq!(image_ids(&all), expected_all);

    let tagged = ok_json(&s.aws(&[
        "ecr",
        "list-images",
        "--repository-name",
        &name,
        "--filter",
        "tagStatus=TAGGED",
    ]));
    assert_eq!(
        image_ids(&tagged),
        vec![(Some("v1".to_owned()), new.manifest_digest.clone())]
    );

    let untagged = ok_json(&s.aws(&[
        "ecr",
        "list-images",
        "--repository-name",
        &name,
        "--filter",
        "tagStatus=UNTAGGED",
    ]));
    assert_eq!(
        image_ids(&untagged),
        vec![(None, old.manifest_digest.clone())]
    );
}

#[test]
fn batch_get_image_returns_the_manifest_and_put_image_retags_it() {
    let s = BerthServer::start();
    let name = unique("batchget-");
    s.create_repo(&name, &[]);
    s.docker_push_test_image(&name, "v1");

    let v = ok_json(&s.aws(&[
        "ecr",
        "batch-get-image",
        "--repository-name",
        &name,
        "--image-ids",
        "imageTag=v1",
        "imageTag=missing",
    ]));
    let image = &v["images"][0];
    let manifest = image["imageManifest"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(manifest).expect("imageManifest is JSON");
    assert_eq!(parsed["schemaVersion"], 2);
    let digest = image["imageId"]["imageDigest"].as_str().unwrap();
    assert_eq!(
        sha256_digest(manifest.as_bytes()),
        digest,
        "the manifest hashes to its digest"
    );
    assert_eq!(image["imageId"]["imageTag"], "v1");
    let media_type = image["imageManifestMediaType"].as_str().unwrap();
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["imageId"]["imageTag"], "missing");
    assert_eq!(failures[0]["failureCode"], "ImageNotFound");

    // put-image: the same manifest under a new tag.
    let v = ok_json(&s.aws(&[
        "ecr",
        "put-image",
        "--repository-name",
        &name,
        "--image-tag",
        "v2",
        "--image-manifest",
        manifest,
        "--image-manifest-media-type",
        media_type,
    ]));
    assert_eq!(v["image"]["imageId"]["imageDigest"], digest);
    assert_eq!(v["image"]["imageId"]["imageTag"], "v2");

    let d = ok_json(&s.aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &name,
        "--image-ids",
        &format!("imageDigest={digest}"),
    ]));
    let mut tags: Vec<&str> = d["imageDetails"][0]["imageTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);

    // Pushing the very same manifest and tag again changes nothing: AWS refuses it.
    let out = s.aws(&[
        "ecr",
        "put-image",
        "--repository-name",
        &name,
        "--image-tag",
        "v2",
        "--image-manifest",
        manifest,
        "--image-manifest-media-type",
        media_type,
    ]);
    assert_aws_error(&out, "ImageAlreadyExistsException");

    // The registry serves the new tag.
    let r = s.registry().get_manifest(&name, "v2");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(sha256_digest(&r.body), digest);
}

#[test]
fn put_image_refuses_a_manifest_whose_layers_are_missing() {
    let s = BerthServer::start();
    let name = unique("putmissing-");
    s.create_repo(&name, &[]);
    let image = make_image("amd64", "never uploaded");
    let out = s.aws(&[
        "ecr",
        "put-image",
        "--repository-name",
        &name,
        "--image-tag",
        "v1",
        "--image-manifest",
        std::str::from_utf8(&image.manifest).unwrap(),
        "--image-manifest-media-type",
        OCI_MANIFEST,
    ]);
    assert_aws_error(&out, "LayersNotFoundException");
}

#[test]
fn batch_delete_image_by_tag_and_by_digest() {
    let s = BerthServer::start();
    let name = unique("deleted-");
    s.create_repo(&name, &[]);
    let reg = s.registry();
    let a = make_image("amd64", "a");
    let b = make_image("amd64", "b");
    reg.push_image(&name, "a", &a);
    reg.push_image(&name, "b", &b);

    let v = ok_json(&s.aws(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        &name,
        "--image-ids",
        "imageTag=a",
    ]));
    assert_eq!(v["imageIds"][0]["imageDigest"], a.manifest_digest.as_str());
    assert_eq!(v["imageIds"][0]["imageTag"], "a");
    assert_eq!(v["failures"].as_array().map_or(0, Vec::len), 0, "{v}");

    let v = ok_json(&s.aws(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        &name,
        "--image-ids",
        &format!("imageDigest={}", b.manifest_digest),
        "imageTag=never-existed",
    ]));
    assert_eq!(v["imageIds"][0]["imageDigest"], b.manifest_digest.as_str());
    assert_eq!(v["failures"][0]["imageId"]["imageTag"], "never-existed");
    assert_eq!(v["failures"][0]["failureCode"], "ImageNotFound");

    let v = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &name]));
    assert!(v["imageIds"].as_array().unwrap().is_empty(), "{v}");
    reg.get_manifest(&name, "b")
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&name, &a.manifest_digest)
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn an_immutable_repository_refuses_to_move_a_tag() {
    let s = BerthServer::start();
    let name = unique("immutable-");
    s.create_repo(&name, &["--image-tag-mutability", "IMMUTABLE"]);
    let reg = s.registry();
    let first = make_image("amd64", "first");
    let second = make_image("amd64", "second");
    reg.push_image(&name, "v1", &first);
    reg.upload_blob(&name, &second.config);
    reg.upload_blob(&name, &second.layer);

    // Through the API.
    let out = s.aws(&[
        "ecr",
        "put-image",
        "--repository-name",
        &name,
        "--image-tag",
        "v1",
        "--image-manifest",
        std::str::from_utf8(&second.manifest).unwrap(),
        "--image-manifest-media-type",
        OCI_MANIFEST,
    ]);
    assert_aws_error(&out, "ImageTagAlreadyExistsException");

    // Through the registry.
    let r = reg.put_manifest(&name, "v1", OCI_MANIFEST, &second.manifest);
    assert!(
        (400..500).contains(&r.status),
        "moving an immutable tag: {}",
        r.describe()
    );

    // The tag still names the first image; a new tag is fine.
    let r = reg.get_manifest(&name, "v1");
    assert_eq!(sha256_digest(&r.body), first.manifest_digest);
    reg.push_image(&name, "v2", &second);
}

#[test]
fn get_download_url_for_layer_serves_the_layer() {
    let s = BerthServer::start();
    let name = unique("download-");
    s.create_repo(&name, &[]);
    let image = make_image("amd64", "download me");
    s.registry().push_image(&name, "v1", &image);

    let v = ok_json(&s.aws(&[
        "ecr",
        "get-download-url-for-layer",
        "--repository-name",
        &name,
        "--layer-digest",
        &image.layer_digest,
    ]));
    assert_eq!(v["layerDigest"], image.layer_digest.as_str());
    let url = v["downloadUrl"].as_str().unwrap();
    // The URL carries its own authorisation, like ECR's presigned S3 URL.
    berth_e2e::require_tool("curl");
    let out = Command::new("curl")
        .args(["-sS", "--fail", url])
        .output()
        .unwrap();
    assert_ok(&out, "curl of the download URL");
    assert_eq!(sha256_digest(&out.stdout), image.layer_digest);

    let out = s.aws(&[
        "ecr",
        "get-download-url-for-layer",
        "--repository-name",
        &name,
        "--layer-digest",
        &sha256_digest(b"not a layer"),
    ]);
    assert_aws_error(&out, "LayersNotFoundException");
}

#[test]
fn batch_check_layer_availability() {
    let s = BerthServer::start();
    let name = unique("check-");
    s.create_repo(&name, &[]);
    let image = make_image("amd64", "check me");
    s.registry().push_image(&name, "v1", &image);
    let missing = sha256_digest(b"missing layer");

    let v = ok_json(&s.aws(&[
        "ecr",
        "batch-check-layer-availability",
        "--repository-name",
        &name,
        "--layer-digests",
        &image.layer_digest,
        &missing,
    ]));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{v}");
    assert_eq!(layers[0]["layerDigest"], image.layer_digest.as_str());
    assert_eq!(layers[0]["layerAvailability"], "AVAILABLE");
    assert_eq!(layers[0]["layerSize"], image.layer.len() as u64);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["layerDigest"], missing.as_str());
    assert_eq!(failures[0]["failureCode"], "MissingLayerDigest");
}

#[test]
fn layer_upload_api_initiate_upload_complete() {
    let s = BerthServer::start();
    let name = unique("upload-");
    s.create_repo(&name, &[]);

    let v = ok_json(&s.aws(&["ecr", "initiate-layer-upload", "--repository-name", &name]));
    let upload_id = v["uploadId"].as_str().unwrap().to_owned();
    assert!(v["partSize"].as_u64().unwrap() > 0, "{v}");

    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256_digest(&data);
    let dir = s.scratch("layer");
    let part = dir.join("part.bin");
    std::fs::write(&part, &data).unwrap();
    let blob_arg = format!("fileb://{}", part.display());

    let v = ok_json(&s.aws(&[
        "ecr",
        "upload-layer-part",
        "--repository-name",
        &name,
        "--upload-id",
        &upload_id,
        "--part-first-byte",
        "0",
        "--part-last-byte",
        &(data.len() - 1).to_string(),
        "--layer-part-blob",
        &blob_arg,
    ]));
    assert_eq!(v["uploadId"], upload_id.as_str());
    assert_eq!(v["lastByteReceived"], (data.len() - 1) as u64);

    // A part that does not continue where the last one ended is refused.
    let out = s.aws(&[
        "ecr",
        "upload-layer-part",
        "--repository-name",
        &name,
        "--upload-id",
        &upload_id,
        "--part-first-byte",
        "5000",
        "--part-last-byte",
        "7999",
        "--layer-part-blob",
        &blob_arg,
    ]);
    assert_aws_error(&out, "InvalidLayerPartException");

    let v = ok_json(&s.aws(&[
        "ecr",
        "complete-layer-upload",
        "--repository-name",
        &name,
        "--upload-id",
        &upload_id,
        "--layer-digests",
        &digest,
    ]));
    assert_eq!(v["layerDigest"], digest.as_str());

    let v = ok_json(&s.aws(&[
        "ecr",
        "batch-check-layer-availability",
        "--repository-name",
        &name,
        "--layer-digests",
        &digest,
    ]));
    assert_eq!(v["layers"][0]["layerAvailability"], "AVAILABLE", "{v}");
    assert_eq!(v["layers"][0]["layerSize"], data.len() as u64);

    // The same blob through the registry.
    let r = s.registry().get(&format!("/v2/{name}/blobs/{digest}"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, data);

    // Completing with the wrong digest is InvalidLayerException, and an unknown
    // upload id is UploadNotFoundException.
    let v = ok_json(&s.aws(&["ecr", "initiate-layer-upload", "--repository-name", &name]));
    let second = v["uploadId"].as_str().unwrap().to_owned();
    ok_json(&s.aws(&[
        "ecr",
        "upload-layer-part",
        "--repository-name",
        &name,
        "--upload-id",
        &second,
        "--part-first-byte",
        "0",
        "--part-last-byte",
        &(data.len() - 1).to_string(),
        "--layer-part-blob",
        &blob_arg,
    ]));
    let out = s.aws(&[
        "ecr",
        "complete-layer-upload",
        "--repository-name",
        &name,
        "--upload-id",
        &second,
        "--layer-digests",
        &sha256_digest(b"something else"),
    ]);
    assert_aws_error(&out, "InvalidLayerException");
    let out = s.aws(&[
        "ecr",
        "complete-layer-upload",
        "--repository-name",
        &name,
        "--upload-id",
        "00000000-0000-0000-0000-000000000000",
        "--layer-digests",
        &digest,
    ]);
    assert_aws_error(&out, "UploadNotFoundException");
}
