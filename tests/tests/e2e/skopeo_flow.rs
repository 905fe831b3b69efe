//! skopeo against Berth: a multi-architecture OCI index written by hand as an OCI
//! layout, copied in with `--all`, inspected, copied back out and deleted.

use berth_e2e::oci::{OCI_INDEX, OciLayout, layout_ref_digest, make_image, sha256_digest};
use berth_e2e::{BerthServer, assert_ok, stderr_of, stdout_of, unique};
use serde_json::Value;

#[test]
fn multi_arch_index_copy_inspect_copy_back_delete() {
    let s = BerthServer::start();
    let name = unique("multi-");
    s.create_repo(&name, &[]);
    let creds = s.registry_creds();

    let amd64 = make_image("amd64", "amd64 payload");
    let arm64 = make_image("arm64", "arm64 payload");
    let src = s.scratch("src");
    let mut layout = OciLayout::create(&src);
    let index_digest = layout.add_index("multi", &[&amd64, &arm64]);
    let remote = format!("docker://{}/{name}:multi", s.host());

    let out = s.skopeo(&[
        "--insecure-policy",
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:multi", src.display()),
        &remote,
    ]);
    assert_ok(&out, "skopeo copy --all oci: -> docker://");

    // inspect --raw: our index, byte for byte.
    let out = s.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote,
    ]);
    assert_ok(&out, "skopeo inspect --raw");
    assert_eq!(
        sha256_digest(&out.stdout),
        index_digest,
        "the index comes back unchanged"
    );
    let index: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    digests.sort();
    let mut expected = vec![
        amd64.manifest_digest.as_str(),
        arm64.manifest_digest.as_str(),
    ];
    expected.sort();
    assert_eq!(digests, expected);

    // inspect (resolves the platform manifest and reads its config).
    let out = s.skopeo(&[
        "--override-arch",
        "arm64",
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote,
    ]);
    assert_ok(&out, "skopeo inspect");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Architecture"], "arm64", "{info}");
    // skopeo reports the digest of what the tag names: the index.
    assert_eq!(info["Digest"], index_digest.as_str(), "{info}");
    assert_eq!(info["Layers"][0], arm64.layer_digest.as_str(), "{info}");

    // ECR sees the index as an image.
    let v = berth_e2e::ok_json(&s.aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &name,
        "--image-ids",
        "imageTag=multi",
    ]));
    assert_eq!(v["imageDetails"][0]["imageDigest"], index_digest.as_str());
    assert_eq!(v["imageDetails"][0]["imageManifestMediaType"], OCI_INDEX);

    // Copy back out: same digests, same blobs.
    let dst = s.scratch("dst");
    let out = s.skopeo(&[
        "--insecure-policy",
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &remote,
        &format!("oci:{}:multi", dst.display()),
    ]);
    assert_ok(&out, "skopeo copy --all docker:// -> oci:");
    assert_eq!(
        layout_ref_digest(&dst, "multi").as_deref(),
        Some(index_digest.as_str())
    );
    let back = OciLayout::open(&dst);
    for image in [&amd64, &arm64] {
        for digest in [
            image.manifest_digest.as_str(),
            image.config_digest.as_str(),
            image.layer_digest.as_str(),
        ] {
            let blob = back
                .read_blob(digest)
                .unwrap_or_else(|| panic!("{digest} not copied back"));
            assert_eq!(sha256_digest(&blob), digest);
        }
    }

    // Delete by digest: the index and its tag are gone.
    let by_digest = format!("docker://{}/{name}@{index_digest}", s.host());
    let out = s.skopeo(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        &creds,
        &by_digest,
    ]);
    assert_ok(&out, "skopeo delete");
    for reference in [&by_digest, &remote] {
        let out = s.skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            reference,
        ]);
        assert!(
            !out.status.success(),
            "{reference} still there after delete: {}",
            stdout_of(&out)
        );
        let err = stderr_of(&out).to_lowercase();
        assert!(
            err.contains("manifest unknown") || err.contains("not found"),
            "expected manifest unknown: {err}"
        );
    }
}

#[test]
fn single_image_copy_with_skopeo() {
    let s = BerthServer::start();
    let name = unique("single-");
    s.create_repo(&name, &[]);
    let creds = s.registry_creds();
    let image = make_image("amd64", "single");
    let src = s.scratch("src");
    let mut layout = OciLayout::create(&src);
    layout.add_image("v1", &image);

    let remote = format!("docker://{}/{name}:v1", s.host());
    let out = s.skopeo(&[
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", src.display()),
        &remote,
    ]);
    assert_ok(&out, "skopeo copy");
    let out = s.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote,
    ]);
    assert_ok(&out, "skopeo inspect --raw");
    assert_eq!(sha256_digest(&out.stdout), image.manifest_digest);

    // Wrong credentials are refused.
    let out = s.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "AWS:wrong",
        &remote,
    ]);
    assert!(
        !out.status.success(),
        "inspect with wrong credentials succeeded"
    );
}
