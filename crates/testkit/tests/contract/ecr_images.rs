//! ECR's image and layer API, in-process through the HTTP stack, on images pushed with the
//! raw registry protocol (in the Docker schema 2 format `docker push` sends where the CLI
//! test pushed with docker; docker_flow.rs in the e2e tier keeps the real `docker push`
//! followed by DescribeImages).

use base64::Engine;
use berth_testkit::ecr::{docker_image, epoch_seconds, image_ids};
use berth_testkit::http::location_path;
use berth_testkit::oci::{DOCKER_MANIFEST, OCI_MANIFEST, make_image, sha256_digest};
use berth_testkit::sigv4::now_unix;
use berth_testkit::{ACCOUNT_ID, Endpoint, TestServer, http, unique};
use serde_json::{Value, json};

#[test]
fn describe_images_after_a_docker_push() {
    let s = TestServer::start();
    let name = unique("described-");
    s.create_repo(&name, json!({}));
    let image = docker_image("amd64", &name);
    s.registry().push_image(&name, "v1", &image);

    let v = s
        .ecr("DescribeImages", json!({"repositoryName": name}))
        .ok();
    let details = v["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{v}");
    let d = &details[0];
    assert_eq!(d["repositoryName"], name.as_str());
    assert_eq!(d["registryId"], ACCOUNT_ID);
    let digest = d["imageDigest"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(digest, image.manifest_digest);
    assert_eq!(d["imageTags"], json!(["v1"]));
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
    for id in [json!({"imageTag": "v1"}), json!({"imageDigest": digest})] {
        let v = s
            .ecr(
                "DescribeImages",
                json!({"repositoryName": name, "imageIds": [id]}),
            )
            .ok();
        assert_eq!(v["imageDetails"][0]["imageDigest"], digest);
    }
}

#[test]
fn describe_images_of_a_missing_tag_is_image_not_found() {
    let s = TestServer::start();
    let name = unique("notag-");
    s.create_repo(&name, json!({}));
    s.ecr(
        "DescribeImages",
        json!({"repositoryName": name, "imageIds": [{"imageTag": "nope"}]}),
    )
    .expect_error("ImageNotFoundException");
    s.ecr(
        "DescribeImages",
        json!({"repositoryName": unique("norepo-")}),
    )
    .expect_error("RepositoryNotFoundException");
}

#[test]
fn list_images_filters_tagged_and_untagged() {
    let s = TestServer::start();
    let name = unique("listed-");
    s.create_repo(&name, json!({}));
    let reg = s.registry();
    let old = make_image("amd64", "old");
    let new = make_image("amd64", "new");
    reg.push_image(&name, "v1", &old);
    reg.push_image(&name, "v1", &new); // moves the tag; `old` is left untagged

    let all = s.ecr("ListImages", json!({"repositoryName": name})).ok();
    let mut expected_all = vec![
        (None, old.manifest_digest.clone()),
        (Some("v1".to_owned()), new.manifest_digest.clone()),
    ];
    expected_all.sort();
    assert_eq!(image_ids(&all), expected_all);

    let tagged = s
        .ecr(
            "ListImages",
            json!({"repositoryName": name, "filter": {"tagStatus": "TAGGED"}}),
        )
        .ok();
    assert_eq!(
        image_ids(&tagged),
        vec![(Some("v1".to_owned()), new.manifest_digest.clone())]
    );

    let untagged = s
        .ecr(
            "ListImages",
            json!({"repositoryName": name, "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .ok();
    assert_eq!(
        image_ids(&untagged),
        vec![(None, old.manifest_digest.clone())]
    );
}

#[test]
fn batch_get_image_returns_the_manifest_and_put_image_retags_it() {
    let s = TestServer::start();
    let name = unique("batchget-");
    s.create_repo(&name, json!({}));
    let pushed = docker_image("amd64", &name);
    s.registry().push_image(&name, "v1", &pushed);

    let v = s
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": name,
                   "imageIds": [{"imageTag": "v1"}, {"imageTag": "missing"}]}),
        )
        .ok();
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
    assert_eq!(digest, pushed.manifest_digest);
    assert_eq!(image["imageId"]["imageTag"], "v1");
    let media_type = image["imageManifestMediaType"].as_str().unwrap();
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["imageId"]["imageTag"], "missing");
    assert_eq!(failures[0]["failureCode"], "ImageNotFound");

    // PutImage: the same manifest under a new tag.
    let put = json!({"repositoryName": name, "imageTag": "v2", "imageManifest": manifest,
                     "imageManifestMediaType": media_type});
    let v = s.ecr("PutImage", put.clone()).ok();
    assert_eq!(v["image"]["imageId"]["imageDigest"], digest);
    assert_eq!(v["image"]["imageId"]["imageTag"], "v2");

    let d = s
        .ecr(
            "DescribeImages",
            json!({"repositoryName": name, "imageIds": [{"imageDigest": digest}]}),
        )
        .ok();
    let mut tags: Vec<&str> = d["imageDetails"][0]["imageTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);

    // Pushing the very same manifest and tag again changes nothing: AWS refuses it.
    s.ecr("PutImage", put)
        .expect_error("ImageAlreadyExistsException");

    // The registry serves the new tag.
    let r = s.registry().get_manifest(&name, "v2");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(sha256_digest(&r.body), digest);
}

#[test]
fn put_image_refuses_a_manifest_whose_layers_are_missing() {
    let s = TestServer::start();
    let name = unique("putmissing-");
    s.create_repo(&name, json!({}));
    let image = make_image("amd64", "never uploaded");
    s.ecr(
        "PutImage",
        json!({"repositoryName": name, "imageTag": "v1",
               "imageManifest": std::str::from_utf8(&image.manifest).unwrap(),
               "imageManifestMediaType": OCI_MANIFEST}),
    )
    .expect_error("LayersNotFoundException");
}

#[test]
fn batch_delete_image_by_tag_and_by_digest() {
    let s = TestServer::start();
    let name = unique("deleted-");
    s.create_repo(&name, json!({}));
    let reg = s.registry();
    let a = make_image("amd64", "a");
    let b = make_image("amd64", "b");
    reg.push_image(&name, "a", &a);
    reg.push_image(&name, "b", &b);

    let v = s
        .ecr(
            "BatchDeleteImage",
            json!({"repositoryName": name, "imageIds": [{"imageTag": "a"}]}),
        )
        .ok();
    assert_eq!(v["imageIds"][0]["imageDigest"], a.manifest_digest.as_str());
    assert_eq!(v["imageIds"][0]["imageTag"], "a");
    assert_eq!(v["failures"].as_array().map_or(0, Vec::len), 0, "{v}");

    let v = s
        .ecr(
            "BatchDeleteImage",
            json!({"repositoryName": name,
                   "imageIds": [{"imageDigest": b.manifest_digest},
                                {"imageTag": "never-existed"}]}),
        )
        .ok();
    assert_eq!(v["imageIds"][0]["imageDigest"], b.manifest_digest.as_str());
    assert_eq!(v["failures"][0]["imageId"]["imageTag"], "never-existed");
    assert_eq!(v["failures"][0]["failureCode"], "ImageNotFound");

    let v = s.ecr("ListImages", json!({"repositoryName": name})).ok();
    assert!(v["imageIds"].as_array().unwrap().is_empty(), "{v}");
    reg.get_manifest(&name, "b")
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&name, &a.manifest_digest)
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn an_immutable_repository_refuses_to_move_a_tag() {
    let s = TestServer::start();
    let name = unique("immutable-");
    s.create_repo(&name, json!({"imageTagMutability": "IMMUTABLE"}));
    let reg = s.registry();
    let first = make_image("amd64", "first");
    let second = make_image("amd64", "second");
    reg.push_image(&name, "v1", &first);
    reg.upload_blob(&name, &second.config);
    reg.upload_blob(&name, &second.layer);

    // Through the API.
    s.ecr(
        "PutImage",
        json!({"repositoryName": name, "imageTag": "v1",
               "imageManifest": std::str::from_utf8(&second.manifest).unwrap(),
               "imageManifestMediaType": OCI_MANIFEST}),
    )
    .expect_error("ImageTagAlreadyExistsException");

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
    let s = TestServer::start();
    let name = unique("download-");
    s.create_repo(&name, json!({}));
    let image = make_image("amd64", "download me");
    s.registry().push_image(&name, "v1", &image);

    let v = s
        .ecr(
            "GetDownloadUrlForLayer",
            json!({"repositoryName": name, "layerDigest": image.layer_digest}),
        )
        .ok();
    assert_eq!(v["layerDigest"], image.layer_digest.as_str());
    let url = v["downloadUrl"].as_str().unwrap();
    // The URL carries its own authorisation, like ECR's presigned S3 URL: a plain GET of
    // it (curl's in the CLI test), without credentials, on this server.
    assert!(url.starts_with(&format!("{}/", s.endpoint())), "{url}");
    let r = http(s.port(), "GET", &location_path(url), &[], b"").unwrap();
    assert_eq!(r.status, 200, "GET of the download URL: {}", r.describe());
    assert_eq!(sha256_digest(&r.body), image.layer_digest);

    s.ecr(
        "GetDownloadUrlForLayer",
        json!({"repositoryName": name, "layerDigest": sha256_digest(b"not a layer")}),
    )
    .expect_error("LayersNotFoundException");
}

#[test]
fn batch_check_layer_availability() {
    let s = TestServer::start();
    let name = unique("check-");
    s.create_repo(&name, json!({}));
    let image = make_image("amd64", "check me");
    s.registry().push_image(&name, "v1", &image);
    let missing = sha256_digest(b"missing layer");

    let v = s
        .ecr(
            "BatchCheckLayerAvailability",
            json!({"repositoryName": name, "layerDigests": [image.layer_digest, missing]}),
        )
        .ok();
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
    let s = TestServer::start();
    let name = unique("upload-");
    s.create_repo(&name, json!({}));

    let v = s
        .ecr("InitiateLayerUpload", json!({"repositoryName": name}))
        .ok();
    let upload_id = v["uploadId"].as_str().unwrap().to_owned();
    assert!(v["partSize"].as_u64().unwrap() > 0, "{v}");

    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256_digest(&data);
    // The CLI's `--layer-part-blob fileb://…` travels base64 in the JSON body.
    let blob = base64::engine::general_purpose::STANDARD.encode(&data);
    let part = |upload_id: &str, first: u64, last: u64| {
        s.ecr(
            "UploadLayerPart",
            json!({"repositoryName": name, "uploadId": upload_id, "partFirstByte": first,
                   "partLastByte": last, "layerPartBlob": blob}),
        )
    };
    let last = (data.len() - 1) as u64;

    let v = part(&upload_id, 0, last).ok();
    assert_eq!(v["uploadId"], upload_id.as_str());
    assert_eq!(v["lastByteReceived"], last);

    // A part that does not continue where the last one ended is refused.
    part(&upload_id, 5000, 7999).expect_error("InvalidLayerPartException");

    let v = s
        .ecr(
            "CompleteLayerUpload",
            json!({"repositoryName": name, "uploadId": upload_id, "layerDigests": [digest]}),
        )
        .ok();
    assert_eq!(v["layerDigest"], digest.as_str());

    let v = s
        .ecr(
            "BatchCheckLayerAvailability",
            json!({"repositoryName": name, "layerDigests": [digest]}),
        )
        .ok();
    assert_eq!(v["layers"][0]["layerAvailability"], "AVAILABLE", "{v}");
    assert_eq!(v["layers"][0]["layerSize"], data.len() as u64);

    // The same blob through the registry.
    let r = s.registry().get(&format!("/v2/{name}/blobs/{digest}"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, data);

    // Completing with the wrong digest is InvalidLayerException, and an unknown
    // upload id is UploadNotFoundException.
    let v = s
        .ecr("InitiateLayerUpload", json!({"repositoryName": name}))
        .ok();
    let second = v["uploadId"].as_str().unwrap().to_owned();
    part(&second, 0, last).ok();
    s.ecr(
        "CompleteLayerUpload",
        json!({"repositoryName": name, "uploadId": second,
               "layerDigests": [sha256_digest(b"something else")]}),
    )
    .expect_error("InvalidLayerException");
    s.ecr(
        "CompleteLayerUpload",
        json!({"repositoryName": name, "uploadId": "00000000-0000-0000-0000-000000000000",
               "layerDigests": [digest]}),
    )
    .expect_error("UploadNotFoundException");
}
