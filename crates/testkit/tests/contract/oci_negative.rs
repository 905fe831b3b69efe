//! The OCI distribution API over raw HTTP, in-process: authentication as ECR does it, every
//! refusal with its exact error code, and the protocol corners no client library
//! shows (chunked uploads, ranges, mounts, pagination, referrers, sha512).

use berth_testkit::http::{location_path, with_query};
use berth_testkit::oci::{
    OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, make_image, sha256_digest, sha512_digest,
};
use berth_testkit::{Endpoint, Registry, TestServer, basic_auth, unique};
use serde_json::json;

fn server_with_repo(prefix: &str) -> (TestServer, Registry, String) {
    let s = TestServer::start();
    let name = unique(prefix);
    s.create_repo(&name, json!({}));
    let reg = s.registry();
    (s, reg, name)
}

#[test]
fn v2_without_credentials_is_401_basic_for_ecr() {
    let s = TestServer::start();
    let r = s.registry_anonymous().get("/v2/");
    assert_eq!(r.status, 401, "{}", r.describe());
    let challenge = r
        .header("www-authenticate")
        .expect("WWW-Authenticate header");
    assert!(challenge.starts_with("Basic "), "Basic scheme: {challenge}");
    assert!(challenge.contains("realm="), "{challenge}");
    assert!(
        challenge.contains(r#"service="ecr.amazonaws.com""#),
        "{challenge}"
    );
    r.assert_oci_error(401, "UNAUTHORIZED");

    let r = s.registry().get("/v2/");
    assert_eq!(r.status, 200, "{}", r.describe());

    // Every other route asks for credentials too.
    let name = unique("anon-");
    s.create_repo(&name, json!({}));
    let r = s.registry_anonymous().get(&format!("/v2/{name}/tags/list"));
    assert_eq!(r.status, 401, "{}", r.describe());
}

#[test]
fn forged_and_wrong_tokens_are_401() {
    let s = TestServer::start();
    let real = s.login_password();
    let mut tampered = real.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (user, pw) in [
        ("AWS", "garbage"),
        ("AWS", ""),
        ("AWS", tampered.as_str()),
        ("admin", real.as_str()),
    ] {
        let reg = Registry {
            port: s.port(),
            authorization: Some(basic_auth(user, pw)),
        };
        let r = reg.get("/v2/");
        assert_eq!(r.status, 401, "{user}:{pw} was accepted: {}", r.describe());
    }
    for header in ["Basic !!!notbase64", "Bearer abc", "Basic"] {
        let reg = Registry {
            port: s.port(),
            authorization: Some(header.to_owned()),
        };
        assert_eq!(reg.get("/v2/").status, 401, "{header} was accepted");
    }
}

#[test]
fn a_blob_with_the_wrong_digest_is_digest_invalid() {
    let (_s, reg, name) = server_with_repo("digest-");
    let data = b"the real content";
    let wrong = sha256_digest(b"other content");
    let r = reg.upload_blob_as(&name, data, &wrong);
    r.assert_oci_error(400, "DIGEST_INVALID");
    // Nothing is stored under either digest.
    for d in [wrong, sha256_digest(data)] {
        let r = reg.request("HEAD", &format!("/v2/{name}/blobs/{d}"), &[], b"");
        assert_eq!(r.status, 404, "{d}: {}", r.describe());
    }
}

#[test]
fn a_manifest_referencing_a_missing_blob_is_manifest_blob_unknown() {
    let (_s, reg, name) = server_with_repo("missingblob-");
    let image = make_image("amd64", "missing layer");
    reg.upload_blob(&name, &image.config); // the layer is never uploaded
    let r = reg.put_manifest(&name, "v1", OCI_MANIFEST, &image.manifest);
    r.assert_oci_error(400, "MANIFEST_BLOB_UNKNOWN");
    reg.get_manifest(&name, "v1")
        .assert_oci_error(404, "MANIFEST_UNKNOWN");

    // An index over a manifest that is not there is refused the same way.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.descriptor()],
    }))
    .unwrap();
    let r = reg.put_manifest(&name, "idx", OCI_INDEX, &index);
    assert_eq!(r.status, 400, "{}", r.describe());
    let codes = r.error_codes();
    assert!(
        codes
            .iter()
            .any(|c| c == "MANIFEST_UNKNOWN" || c == "MANIFEST_BLOB_UNKNOWN"),
        "{}",
        r.describe()
    );

    // A manifest that is not JSON, or whose body does not match its digest.
    let r = reg.put_manifest(&name, "bad", OCI_MANIFEST, b"{not json");
    r.assert_oci_error(400, "MANIFEST_INVALID");
    reg.upload_blob(&name, &image.layer);
    let wrong = sha256_digest(b"not the manifest");
    let r = reg.put_manifest(&name, &wrong, OCI_MANIFEST, &image.manifest);
    r.assert_oci_error(400, "DIGEST_INVALID");
}

#[test]
fn path_traversal_in_names_is_refused() {
    let (_s, reg, name) = server_with_repo("traversal-");
    let digest = sha256_digest(b"x");
    let paths = [
        "/v2/../../x/manifests/latest".to_owned(),
        "/v2/a/../../x/manifests/latest".to_owned(),
        format!("/v2/a/..%2f..%2fx/blobs/{digest}"),
        format!("/v2/{name}/..%2f..%2fetc/blobs/{digest}"),
        "/v2/%2e%2e/x/manifests/latest".to_owned(),
        "/v2/UPPER/manifests/latest".to_owned(),
        "/v2/a//b/manifests/latest".to_owned(),
    ];
    for path in &paths {
        for method in ["GET", "HEAD", "PUT"] {
            let r = reg.request(method, path, &[("Content-Type", OCI_MANIFEST)], b"");
            assert!(
                (400..500).contains(&r.status),
                "{method} {path} must be refused with a 4xx: {}",
                r.describe()
            );
            if method == "GET" {
                let codes = r.error_codes();
                assert!(
                    codes
                        .iter()
                        .any(|c| c == "NAME_INVALID" || c == "NAME_UNKNOWN"),
                    "{method} {path}: expected NAME_INVALID or NAME_UNKNOWN: {}",
                    r.describe()
                );
            }
        }
    }
    let r = reg.request("POST", "/v2/a/..%2f..%2fx/blobs/uploads/", &[], b"");
    assert!((400..500).contains(&r.status), "{}", r.describe());
}

#[test]
fn malformed_digests_in_urls_are_digest_invalid() {
    let (_s, reg, name) = server_with_repo("baddigest-");
    for digest in [
        "sha256:xyz",
        "sha256:1234",
        "sha256:..%2f..%2fetc%2fpasswd",
        "sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nocolon",
    ] {
        let r = reg.get(&format!("/v2/{name}/blobs/{digest}"));
        r.assert_oci_error(400, "DIGEST_INVALID");
    }
    // In an upload's ?digest= as well.
    let upload = reg.start_upload(&name);
    let r = reg.request(
        "PUT",
        &with_query(&upload, "digest=sha256:nothex"),
        &[],
        b"abc",
    );
    r.assert_oci_error(400, "DIGEST_INVALID");
}

#[test]
fn chunked_upload_status_and_out_of_order_chunks() {
    let (_s, reg, name) = server_with_repo("chunked-");
    let data: Vec<u8> = (0..30u8).collect();
    let upload = reg.start_upload(&name);

    let patch = |path: &str, range: &str, body: &[u8]| {
        reg.request(
            "PATCH",
            path,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range),
            ],
            body,
        )
    };
    let r = patch(&upload, "0-9", &data[..10]);
    assert_eq!(r.status, 202, "{}", r.describe());
    assert_eq!(range_of(&r), "0-9");
    let upload = r.header("location").map(location_path).unwrap_or(upload);

    // Upload status.
    let r = reg.get(&upload);
    assert_eq!(r.status, 204, "{}", r.describe());
    assert_eq!(range_of(&r), "0-9");
    assert!(r.header("docker-upload-uuid").is_some() || r.header("location").is_some());

    // A chunk that does not start where the last ended.
    let r = patch(&upload, "20-29", &data[20..]);
    assert_eq!(r.status, 416, "{}", r.describe());

    let r = patch(&upload, "10-19", &data[10..20]);
    assert_eq!(r.status, 202, "{}", r.describe());
    assert_eq!(range_of(&r), "0-19");
    let upload = r.header("location").map(location_path).unwrap_or(upload);

    // The last chunk comes with the closing PUT.
    let digest = sha256_digest(&data);
    let r = reg.request(
        "PUT",
        &with_query(&upload, &format!("digest={digest}")),
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "20-29"),
        ],
        &data[20..],
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let loc = r.header("location").expect("Location of the blob");
    assert!(
        loc.ends_with(&format!("/v2/{name}/blobs/{digest}")),
        "{loc}"
    );

    let r = reg.get(&format!("/v2/{name}/blobs/{digest}"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, data);
}

fn range_of(r: &berth_testkit::HttpResponse) -> String {
    let range = r
        .header("range")
        .unwrap_or_else(|| panic!("no Range header: {}", r.describe()));
    range.trim_start_matches("bytes=").to_owned()
}

#[test]
fn a_cancelled_upload_is_blob_upload_unknown() {
    let (_s, reg, name) = server_with_repo("cancel-");
    let upload = reg.start_upload(&name);
    let r = reg.request("PATCH", &upload, &[("Content-Range", "0-3")], b"abcd");
    assert_eq!(r.status, 202, "{}", r.describe());
    let upload = r.header("location").map(location_path).unwrap_or(upload);
    let r = reg.request("DELETE", &upload, &[], b"");
    assert!(r.status == 204 || r.status == 202, "{}", r.describe());
    let r = reg.request("PATCH", &upload, &[("Content-Range", "4-7")], b"efgh");
    r.assert_oci_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&upload)
        .assert_oci_error(404, "BLOB_UPLOAD_UNKNOWN");
    // An upload id that never existed.
    let r = reg.get(&format!(
        "/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000"
    ));
    r.assert_oci_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn cross_repository_mount() {
    let s = TestServer::start();
    let a = unique("mount-a-");
    let b = unique("mount-b-");
    s.create_repo(&a, json!({}));
    s.create_repo(&b, json!({}));
    let reg = s.registry();
    let digest = reg.upload_blob(&a, b"shared layer bytes");

    let r = reg.request(
        "POST",
        &format!("/v2/{b}/blobs/uploads/?mount={digest}&from={a}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert!(r.header("location").is_some());
    let r = reg.request("HEAD", &format!("/v2/{b}/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.describe());

    // Mounting a blob that the source does not have falls back to an upload (202).
    let absent = sha256_digest(b"absent");
    let r = reg.request(
        "POST",
        &format!("/v2/{b}/blobs/uploads/?mount={absent}&from={a}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.describe());
}

#[test]
fn tags_list_paginates_with_a_link_header() {
    let (_s, reg, name) = server_with_repo("tags-");
    let image = make_image("amd64", "tagged");
    let mut tags = vec!["v5", "v1", "v3", "v2", "v4"];
    for t in &tags {
        reg.push_image(&name, t, &image);
    }
    tags.sort();

    let r = reg.get(&format!("/v2/{name}/tags/list"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json(), json!({"name": name, "tags": tags}));

    let mut collected: Vec<String> = Vec::new();
    let mut path = format!("/v2/{name}/tags/list?n=2");
    for _ in 0..10 {
        let r = reg.get(&path);
        assert_eq!(r.status, 200, "{}", r.describe());
        let page: Vec<String> = r.json()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert!(page.len() <= 2, "n=2 gave {page:?}");
        collected.extend(page);
        match r.header("link") {
            Some(link) => {
                assert!(link.contains(r#"rel="next""#), "{link}");
                let start = link.find('<').unwrap() + 1;
                let end = link.find('>').unwrap();
                path = location_path(&link[start..end]);
                assert!(path.contains("last="), "{path}");
            }
            None => break,
        }
    }
    assert_eq!(collected, tags);

    let r = reg.get(&format!("/v2/{name}/tags/list?n=2&last=v2"));
    assert_eq!(r.json()["tags"], json!(["v3", "v4"]));
}

#[test]
fn catalog_lists_repositories() {
    let s = TestServer::start();
    let a = unique("cat-a-");
    let b = unique("cat-b-");
    s.create_repo(&a, json!({}));
    s.create_repo(&b, json!({}));
    let r = s.registry().get("/v2/_catalog");
    assert_eq!(r.status, 200, "{}", r.describe());
    let repos = r.json()["repositories"].clone();
    let repos: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        repos.contains(&a.as_str()) && repos.contains(&b.as_str()),
        "{repos:?}"
    );

    let r = s.registry().get("/v2/_catalog?n=1");
    assert_eq!(r.json()["repositories"].as_array().unwrap().len(), 1);
    assert!(r.header("link").is_some(), "{}", r.describe());
}

#[test]
fn manifest_head_get_and_delete() {
    let (_s, reg, name) = server_with_repo("head-");
    let image = make_image("amd64", "head");
    reg.push_image(&name, "v1", &image);

    for reference in ["v1", image.manifest_digest.as_str()] {
        let path = format!("/v2/{name}/manifests/{reference}");
        let r = reg.request("HEAD", &path, &[("Accept", OCI_MANIFEST)], b"");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(
            r.header("docker-content-digest"),
            Some(image.manifest_digest.as_str())
        );
        assert_eq!(
            r.header("content-length"),
            Some(image.manifest.len().to_string().as_str())
        );
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert!(r.body.is_empty());

        let r = reg.get_manifest(&name, reference);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body, image.manifest);
    }
    let r = reg.request("HEAD", &format!("/v2/{name}/manifests/nope"), &[], b"");
    assert_eq!(r.status, 404);

    let r = reg.request(
        "DELETE",
        &format!("/v2/{name}/manifests/{}", image.manifest_digest),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.describe());
    reg.get_manifest(&name, &image.manifest_digest)
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&name, "v1")
        .assert_oci_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn blob_range_requests() {
    let (_s, reg, name) = server_with_repo("range-");
    let data = b"0123456789abcdef";
    let digest = reg.upload_blob(&name, data);
    let path = format!("/v2/{name}/blobs/{digest}");

    let r = reg.request("GET", &path, &[("Range", "bytes=0-3")], b"");
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, b"0123");
    assert_eq!(r.header("content-range"), Some("bytes 0-3/16"));

    let r = reg.request("GET", &path, &[("Range", "bytes=10-")], b"");
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, b"abcdef");

    let r = reg.request("GET", &path, &[("Range", "bytes=100-200")], b"");
    assert_eq!(r.status, 416, "{}", r.describe());

    let r = reg.request("HEAD", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("16"));
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));

    let r = reg.get(&format!("/v2/{name}/blobs/{}", sha256_digest(b"absent")));
    r.assert_oci_error(404, "BLOB_UNKNOWN");
}

#[test]
fn referrers_api_and_oci_subject() {
    let (_s, reg, name) = server_with_repo("referrers-");
    let target = make_image("amd64", "subject");
    reg.push_image(&name, "v1", &target);

    let empty = reg.upload_blob(&name, b"{}");
    let sbom = br#"{"sbom":"example"}"#;
    let sbom_digest = reg.upload_blob(&name, sbom);
    let artifact_type = "application/vnd.example.sbom.v1";
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/json", "digest": sbom_digest, "size": sbom.len()}],
        "subject": {
            "mediaType": OCI_MANIFEST,
            "digest": target.manifest_digest,
            "size": target.manifest.len(),
        },
        "annotations": {"org.example.kind": "sbom"},
    }))
    .unwrap();
    let artifact_digest = sha256_digest(&artifact);
    let r = reg.put_manifest(&name, &artifact_digest, OCI_MANIFEST, &artifact);
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(
        r.header("oci-subject"),
        Some(target.manifest_digest.as_str())
    );

    let r = reg.get(&format!("/v2/{name}/referrers/{}", target.manifest_digest));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with(OCI_INDEX),
        "{}",
        r.describe()
    );
    let index = r.json();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], artifact_digest.as_str());
    assert_eq!(manifests[0]["artifactType"], artifact_type);
    assert_eq!(manifests[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(manifests[0]["size"], artifact.len());
    assert_eq!(manifests[0]["annotations"]["org.example.kind"], "sbom");

    // Filtered by another artifact type: nothing.
    let r = reg.get(&format!(
        "/v2/{name}/referrers/{}?artifactType=application/vnd.other",
        target.manifest_digest
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["manifests"], json!([]));

    // A digest nothing refers to: an empty index, not a 404.
    let r = reg.get(&format!(
        "/v2/{name}/referrers/{}",
        sha256_digest(b"lonely")
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["manifests"], json!([]));
}

#[test]
fn sha512_blobs() {
    let (_s, reg, name) = server_with_repo("sha512-");
    let data = b"content addressed by sha512";
    let digest = sha512_digest(data);
    let r = reg.upload_blob_as(&name, data, &digest);
    assert_eq!(r.status, 201, "{}", r.describe());
    let path = format!("/v2/{name}/blobs/{digest}");
    let r = reg.request("HEAD", &path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let r = reg.get(&path);
    assert_eq!(r.body, data);

    let wrong = sha512_digest(b"else");
    reg.upload_blob_as(&name, data, &wrong)
        .assert_oci_error(400, "DIGEST_INVALID");
}

#[test]
fn pushing_to_a_missing_repository_is_name_unknown() {
    let s = TestServer::start();
    let reg = s.registry();
    let name = unique("absent-");
    let r = reg.request("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"");
    r.assert_oci_error(404, "NAME_UNKNOWN");
    let image = make_image("amd64", "absent");
    reg.put_manifest(&name, "v1", OCI_MANIFEST, &image.manifest)
        .assert_oci_error(404, "NAME_UNKNOWN");
    reg.get_manifest(&name, "v1")
        .assert_oci_error(404, "NAME_UNKNOWN");
}
