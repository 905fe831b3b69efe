//! Garbage collection through the real binary: `berth gc` removes the blobs of deleted
//! images from disk and keeps everything a manifest still references.

use std::process::Command;

use berth_e2e::oci::make_image;
use berth_e2e::{BerthServer, ok_json, unique};

fn blob_file(data_dir: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data_dir.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn berth_gc(data_dir: &std::path::Path) -> std::process::Output {
    let bin = std::env::var_os("BERTH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| berth_e2e::workspace_root().join("target/debug/berth"));
    Command::new(bin)
        .args(["gc", "--grace-seconds", "0", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap()
}

#[test]
fn berth_gc_deletes_only_unreferenced_blobs() {
    let mut s = BerthServer::start();
    let repo = unique("gc-");
    s.create_repo(&repo, &[]);
    let keep = make_image("amd64", "kept payload");
    let drop = make_image("amd64", "dropped payload");
    let reg = s.registry();
    reg.push_image(&repo, "keep", &keep);
    reg.push_image(&repo, "drop", &drop);
    ok_json(&s.aws(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        &repo,
        "--image-ids",
        "imageTag=drop",
    ]));

    // The store belongs to the running server: gc refuses, clearly, and changes nothing.
    let out = berth_gc(s.data_dir());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another berth process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    s.kill9();
    let dropped = [
        &drop.layer_digest,
        &drop.config_digest,
        &drop.manifest_digest,
    ];
    for d in dropped {
        assert!(
            blob_file(s.data_dir(), d).exists(),
            "{d} should still be on disk"
        );
    }
    let out = berth_gc(s.data_dir());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.starts_with("deleted 3 blobs"), "{report}");
    for d in dropped {
        assert!(
            !blob_file(s.data_dir(), d).exists(),
            "{d} was not collected"
        );
    }
    for d in [
        &keep.layer_digest,
        &keep.config_digest,
        &keep.manifest_digest,
    ] {
        assert!(blob_file(s.data_dir(), d).exists(), "{d} was collected");
    }

    s.restart();
    let reg = s.registry();
    let r = reg.get_manifest(&repo, "keep");
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = reg.get(&format!("/v2/{repo}/blobs/{}", keep.layer_digest));
    assert_eq!(r.body, keep.layer);
    reg.get(&format!("/v2/{repo}/blobs/{}", drop.layer_digest))
        .assert_oci_error(404, "BLOB_UNKNOWN");
    // What was collected can be pushed again.
    reg.push_image(&repo, "drop", &drop);
    assert_eq!(reg.get_manifest(&repo, "drop").status, 200);
}
