//! Durability: `kill -9` the server while skopeo pushes many small images, restart
//! it on the same data dir, and check that every acknowledged push is whole and
//! that nothing half-written is visible.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use berth_e2e::oci::{ImageParts, OciLayout, make_image, sha256_digest};
use berth_e2e::{BerthServer, Registry, ok_json, unique};
use serde_json::Value;

const IMAGES: usize = 30;
const REPOS: usize = 3;

/// Pulls `repo:tag` and checks the manifest and every blob it names against
/// their digests; returns the manifest digest.
#[track_caller]
fn verify_pullable(reg: &Registry, repo: &str, reference: &str) -> String {
    let r = reg.get_manifest(repo, reference);
    assert_eq!(r.status, 200, "{repo}:{reference}: {}", r.describe());
    let digest = sha256_digest(&r.body);
    if let Some(header) = r.header("docker-content-digest") {
        assert_eq!(header, digest, "{repo}:{reference}: Docker-Content-Digest");
    }
    let manifest: Value = serde_json::from_slice(&r.body).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for blob in blobs {
        let r = reg.get(&format!("/v2/{repo}/blobs/{blob}"));
        assert_eq!(
            r.status,
            200,
            "{repo}:{reference} blob {blob}: {}",
            r.describe()
        );
        assert_eq!(
            sha256_digest(&r.body),
            blob,
            "{repo}:{reference} blob {blob} is corrupt"
        );
    }
    digest
}

#[test]
fn kill_9_during_pushes_loses_no_acknowledged_image() {
    let mut s = BerthServer::start();
    berth_e2e::require_tool("skopeo");
    let repos: Vec<String> = (0..REPOS).map(|_| unique("crash-")).collect();
    for r in &repos {
        s.create_repo(r, &[]);
    }

    // One OCI layout with every image, each under its own tag.
    let layout_dir = s.scratch("layout");
    let mut layout = OciLayout::create(&layout_dir);
    let images: Vec<(String, String, ImageParts)> = (0..IMAGES)
        .map(|i| {
            let image = make_image("amd64", &format!("image {i} {}", unique("")));
            let tag = format!("t{i:02}");
            layout.add_image(&tag, &image);
            (repos[i % REPOS].clone(), tag, image)
        })
        .collect();

    let creds = s.registry_creds();
    let host = s.host();
    let acknowledged: Arc<Mutex<Vec<usize>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (acknowledged, killed) = (acknowledged.clone(), killed.clone());
        let jobs: Vec<(String, String)> = images
            .iter()
            .map(|(repo, tag, _)| (repo.clone(), tag.clone()))
            .collect();
        let layout_dir = layout_dir.clone();
        thread::spawn(move || {
            for (i, (repo, tag)) in jobs.iter().enumerate() {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                let status = Command::new("skopeo")
                    .args([
                        "--insecure-policy",
                        "copy",
                        "--dest-tls-verify=false",
                        "--dest-creds",
                        &creds,
                        &format!("oci:{}:{tag}", layout_dir.display()),
                        &format!("docker://{host}/{repo}:{tag}"),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run skopeo");
                // Acknowledged: skopeo exited 0, so the server said 201 to the manifest.
                if status.success() {
                    acknowledged.lock().unwrap().push(i);
                }
            }
        })
    };

    // Kill once about a third of the pushes are acknowledged (or after 60 s), so
    // that the kill lands in the middle of the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < IMAGES / 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    killed.store(true, Ordering::SeqCst);
    pusher.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "no push was acknowledged before the kill"
    );
    assert!(
        acknowledged.len() < IMAGES,
        "every push finished before the kill: no crash tested"
    );

    s.restart();
    let reg = s.registry();

    // Every acknowledged image is whole and is exactly what was pushed.
    for &i in &acknowledged {
        let (repo, tag, image) = &images[i];
        let digest = verify_pullable(&reg, repo, tag);
        assert_eq!(&digest, &image.manifest_digest, "{repo}:{tag}");
        let v = ok_json(&s.aws(&[
            "ecr",
            "describe-images",
            "--repository-name",
            repo,
            "--image-ids",
            &format!("imageTag={tag}"),
        ]));
        assert_eq!(
            v["imageDetails"][0]["imageDigest"],
            image.manifest_digest.as_str()
        );
    }

    // Nothing half-written: every repository in the catalog answers, and every tag
    // it lists, in the registry or in ECR, names a whole image.
    let r = reg.get("/v2/_catalog");
    assert_eq!(r.status, 200, "{}", r.describe());
    let catalog: Vec<String> = r.json()["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for repo in &repos {
        assert!(
            catalog.contains(repo),
            "{repo} missing from the catalog after restart"
        );
    }
    let expected: BTreeMap<(String, String), String> = images
        .iter()
        .map(|(repo, tag, image)| ((repo.clone(), tag.clone()), image.manifest_digest.clone()))
        .collect();
    for repo in &catalog {
        let r = reg.get(&format!("/v2/{repo}/tags/list"));
        assert_eq!(r.status, 200, "{repo}: {}", r.describe());
        let tags = r.json()["tags"].as_array().cloned().unwrap_or_default();
        for tag in tags {
            let tag = tag.as_str().unwrap();
            let digest = verify_pullable(&reg, repo, tag);
            if let Some(want) = expected.get(&(repo.clone(), tag.to_owned())) {
                assert_eq!(&digest, want, "{repo}:{tag} names another image");
            }
        }
        let v = ok_json(&s.aws(&["ecr", "describe-images", "--repository-name", repo]));
        for detail in v["imageDetails"].as_array().unwrap() {
            let digest = detail["imageDigest"].as_str().unwrap();
            verify_pullable(&reg, repo, digest);
        }
    }

    // And the server takes pushes again after the crash.
    let after = make_image("amd64", "after the crash");
    reg.push_image(&repos[0], "after", &after);
    assert_eq!(
        verify_pullable(&reg, &repos[0], "after"),
        after.manifest_digest
    );
}
