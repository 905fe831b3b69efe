//! The registry's behaviour over the in-memory store and a temp-dir blob store: uploads,
//! manifests, tags, deletes, referrers, and garbage collection's safety.

use std::sync::Arc;
use std::time::Duration;

use berth_model::{Digest, ImageTag, Reference, RepositoryName};
use berth_registry::{
    CreateRepository, EncryptionConfiguration, ImageIdentifier, ListImagesFilter, Registry,
    RegistryError, Scope, TagMutability, media_types,
};
use berth_store::MemStore;
use bytes::Bytes;

type Chunks = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>>;

fn body(parts: &[&[u8]]) -> Chunks {
    let v: Vec<Result<Bytes, std::io::Error>> = parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    futures_util::stream::iter(v)
}

fn name(s: &str) -> RepositoryName {
    s.parse().unwrap()
}

struct Fixture {
    registry: Registry,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(Arc::new(MemStore::new()), dir.path()).unwrap();
    Fixture {
        registry,
        _dir: dir,
    }
}

fn create(r: &Registry, repo: &str, mutability: TagMutability) {
    r.create_repository(
        &Scope::default_installation(),
        CreateRepository {
            name: name(repo),
            image_tag_mutability: mutability,
            image_tag_mutability_exclusion_filters: vec![],
            scan_on_push: false,
            encryption: EncryptionConfiguration::default(),
            tags: vec![],
        },
    )
    .unwrap();
}

async fn push_blob(r: &Registry, repo: &str, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    let id = r
        .start_upload(&Scope::default_installation(), &name(repo))
        .unwrap();
    r.complete_upload(
        &Scope::default_installation(),
        &name(repo),
        &id,
        &digest,
        None,
        body(&[data]),
    )
    .await
    .unwrap();
    digest
}

fn image_manifest(config: &Digest, config_len: usize, layer: &Digest, layer_len: usize) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_len}],
    })
    .to_string()
    .into_bytes()
}

async fn push_image(r: &Registry, repo: &str, tag: &str, layer: &[u8]) -> Digest {
    let config = push_blob(r, repo, b"{}").await;
    let layer_digest = push_blob(r, repo, layer).await;
    let m = image_manifest(&config, 2, &layer_digest, layer.len());
    r.put_manifest(
        &Scope::default_installation(),
        &name(repo),
        Some(&tag.parse::<ImageTag>().unwrap()),
        None,
        Some(media_types::OCI_MANIFEST),
        m,
    )
    .await
    .unwrap()
    .digest
}

#[tokio::test]
async fn chunked_upload_resumes_and_refuses_out_of_order_chunks() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    let repo = name("app");
    let id = f
        .registry
        .start_upload(&Scope::default_installation(), &repo)
        .unwrap();
    let s = f
        .registry
        .append_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            Some(0),
            body(&[b"hello "]),
        )
        .await
        .unwrap();
    assert_eq!(s.size, 6);
    let err = f
        .registry
        .append_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            Some(3),
            body(&[b"x"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RegistryError::RangeInvalid { offset: 3, size: 6 }
    ));
    // A body that breaks off keeps what arrived; the client resumes from the status.
    let broken: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"wor")),
        Err(std::io::Error::other("connection reset")),
    ];
    let err = f
        .registry
        .append_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            Some(6),
            futures_util::stream::iter(broken),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Body(_)));
    assert_eq!(
        f.registry
            .upload_status(&Scope::default_installation(), &repo, &id)
            .await
            .unwrap()
            .size,
        9
    );
    let digest = Digest::sha256_of(b"hello world");
    f.registry
        .complete_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            &digest,
            Some(9),
            body(&[b"ld"]),
        )
        .await
        .unwrap();
    assert_eq!(
        f.registry
            .blob_size(&Scope::default_installation(), &repo, &digest)
            .unwrap(),
        11
    );
    // The upload is gone once complete.
    assert!(matches!(
        f.registry
            .upload_status(&Scope::default_installation(), &repo, &id)
            .await,
        Err(RegistryError::UploadUnknown)
    ));
}

#[tokio::test]
async fn wrong_digest_is_refused_and_nothing_shows() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    let repo = name("app");
    let id = f
        .registry
        .start_upload(&Scope::default_installation(), &repo)
        .unwrap();
    let wrong = Digest::sha256_of(b"something else");
    let err = f
        .registry
        .complete_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            &wrong,
            None,
            body(&[b"data"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }));
    assert!(matches!(
        f.registry
            .blob_size(&Scope::default_installation(), &repo, &wrong),
        Err(RegistryError::BlobUnknown(_))
    ));
    assert!(matches!(
        f.registry.blob_size(
            &Scope::default_installation(),
            &repo,
            &Digest::sha256_of(b"data")
        ),
        Err(RegistryError::BlobUnknown(_))
    ));
}

#[tokio::test]
async fn sha512_blobs_verify() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    let repo = name("app");
    let mut h = berth_model::Hasher::new(berth_model::DigestAlgorithm::Sha512);
    h.update(b"abc");
    let digest = h.finish();
    let id = f
        .registry
        .start_upload(&Scope::default_installation(), &repo)
        .unwrap();
    f.registry
        .complete_upload(
            &Scope::default_installation(),
            &repo,
            &id,
            &digest,
            None,
            body(&[b"a", b"bc"]),
        )
        .await
        .unwrap();
    assert_eq!(
        f.registry
            .blob_size(&Scope::default_installation(), &repo, &digest)
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn manifests_need_their_blobs_in_the_repository() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    create(&f.registry, "other", TagMutability::Mutable);
    let config = push_blob(&f.registry, "other", b"{}").await;
    let layer = push_blob(&f.registry, "other", b"layer").await;
    let m = image_manifest(&config, 2, &layer, 5);
    // The blobs exist, but only in "other": not usable from "app" until mounted.
    let err = f
        .registry
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            None,
            None,
            None,
            m.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::ManifestBlobUnknown(_)));
    for d in [&config, &layer] {
        assert!(
            f.registry
                .mount_blob(
                    &Scope::default_installation(),
                    &name("app"),
                    &name("other"),
                    d
                )
                .unwrap()
                .is_some()
        );
    }
    f.registry
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            None,
            None,
            None,
            m,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn immutable_tags_do_not_move_and_deletes_follow_ecr() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Immutable);
    let d1 = push_image(&f.registry, "app", "v1", b"one").await;
    // Same content under the same tag is fine; other content is refused.
    assert_eq!(push_image(&f.registry, "app", "v1", b"one").await, d1);
    let config = push_blob(&f.registry, "app", b"{}").await;
    let layer = push_blob(&f.registry, "app", b"two").await;
    let err = f
        .registry
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            Some(&"v1".parse().unwrap()),
            None,
            None,
            image_manifest(&config, 2, &layer, 3),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::ImageTagAlreadyExists { .. }));

    // Two tags on one image: deleting one tag keeps the image; the last takes it along.
    let r = &f.registry;
    r.put_image_tag_mutability(
        &Scope::default_installation(),
        &name("app"),
        TagMutability::Mutable,
        &[],
    )
    .unwrap();
    push_image(r, "app", "v2", b"one").await;
    let by_tag = |t: &str| ImageIdentifier {
        image_digest: None,
        image_tag: Some(t.into()),
    };
    let (deleted, failures) = r
        .batch_delete_image(
            &Scope::default_installation(),
            &name("app"),
            &[by_tag("v1")],
        )
        .unwrap();
    assert_eq!((deleted.len(), failures.len()), (1, 0));
    assert!(
        r.resolve(
            &Scope::default_installation(),
            &name("app"),
            &Reference::Digest(d1.clone())
        )
        .is_ok()
    );
    r.batch_delete_image(
        &Scope::default_installation(),
        &name("app"),
        &[by_tag("v2")],
    )
    .unwrap();
    assert!(matches!(
        r.resolve(
            &Scope::default_installation(),
            &name("app"),
            &Reference::Digest(d1)
        ),
        Err(RegistryError::ManifestUnknown(_))
    ));
    let (_, failures) = r
        .batch_delete_image(
            &Scope::default_installation(),
            &name("app"),
            &[by_tag("nope")],
        )
        .unwrap();
    assert_eq!(failures[0].failure_code, "ImageNotFound");
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    for i in 0..5 {
        push_image(
            &f.registry,
            "app",
            &format!("t{i}"),
            format!("layer{i}").as_bytes(),
        )
        .await;
    }
    // Retag t0 onto t1's image: t0's old image becomes untagged.
    let t1 = f
        .registry
        .resolve(
            &Scope::default_installation(),
            &name("app"),
            &Reference::Tag("t1".parse().unwrap()),
        )
        .unwrap();
    let bytes = f
        .registry
        .get_manifest(
            &Scope::default_installation(),
            &name("app"),
            &Reference::Digest(t1.digest.clone()),
        )
        .await
        .unwrap()
        .bytes;
    f.registry
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            Some(&"t0".parse().unwrap()),
            None,
            None,
            bytes,
        )
        .await
        .unwrap();
    let (untagged, _) = f
        .registry
        .list_images(
            &Scope::default_installation(),
            &name("app"),
            ListImagesFilter::Untagged,
            None,
            100,
        )
        .unwrap();
    assert_eq!(untagged.len(), 1);
    assert!(untagged[0].image_tag.is_none());
    let (tagged, _) = f
        .registry
        .list_images(
            &Scope::default_installation(),
            &name("app"),
            ListImagesFilter::Tagged,
            None,
            100,
        )
        .unwrap();
    assert_eq!(tagged.len(), 5);
    let (page1, next) = f
        .registry
        .describe_images(
            &Scope::default_installation(),
            &name("app"),
            ListImagesFilter::Any,
            None,
            3,
        )
        .unwrap();
    let (page2, end) = f
        .registry
        .describe_images(
            &Scope::default_installation(),
            &name("app"),
            ListImagesFilter::Any,
            next.as_deref(),
            3,
        )
        .unwrap();
    assert_eq!((page1.len(), page2.len(), end), (3, 2, None));
    let (tags, more) = f
        .registry
        .list_tags(
            &Scope::default_installation(),
            &name("app"),
            Some(2),
            Some("t1"),
        )
        .unwrap();
    assert_eq!(
        (tags, more),
        (vec!["t2".to_string(), "t3".to_string()], true)
    );
    assert!(
        f.registry
            .describe_images(
                &Scope::default_installation(),
                &name("app"),
                ListImagesFilter::Any,
                Some("zz"),
                3
            )
            .is_err()
    );
}

#[tokio::test]
async fn referrers_are_indexed_by_subject() {
    let f = fixture();
    create(&f.registry, "app", TagMutability::Mutable);
    let subject = push_image(&f.registry, "app", "v1", b"one").await;
    let empty = push_blob(&f.registry, "app", b"{}").await;
    let sig = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": media_types::OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": media_types::OCI_EMPTY, "digest": empty, "size": 2}],
        "subject": {"mediaType": media_types::OCI_MANIFEST, "digest": subject, "size": 1},
    })
    .to_string()
    .into_bytes();
    let out = f
        .registry
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            None,
            None,
            None,
            sig,
        )
        .await
        .unwrap();
    assert_eq!(out.subject.as_ref(), Some(&subject));
    let refs = f
        .registry
        .referrers(&Scope::default_installation(), &name("app"), &subject, None)
        .unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, out.digest);
    assert_eq!(
        refs[0].artifact_type.as_deref(),
        Some("application/vnd.example.signature")
    );
    assert!(
        f.registry
            .referrers(
                &Scope::default_installation(),
                &name("app"),
                &subject,
                Some("other/type")
            )
            .unwrap()
            .is_empty()
    );
    f.registry
        .delete_manifest(&Scope::default_installation(), &name("app"), &out.digest)
        .unwrap();
    assert!(
        f.registry
            .referrers(&Scope::default_installation(), &name("app"), &subject, None)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn gc_deletes_only_unreferenced_blobs() {
    let f = fixture();
    let r = &f.registry;
    create(r, "app", TagMutability::Mutable);
    let kept = push_image(r, "app", "v1", b"kept").await;
    let doomed = push_image(r, "app", "v2", b"doomed").await;
    let stray = push_blob(r, "app", b"never referenced").await;
    r.delete_manifest(&Scope::default_installation(), &name("app"), &doomed)
        .unwrap();

    // Within the grace period nothing goes.
    let report = r.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.blobs_deleted, 0);

    let report = r.gc(Duration::ZERO).await.unwrap();
    // The deleted manifest, its layer, and the stray blob; the shared config stays.
    assert_eq!(report.blobs_deleted, 3, "{report:?}");
    assert!(matches!(
        r.blob_size(&Scope::default_installation(), &name("app"), &stray),
        Err(RegistryError::BlobUnknown(_))
    ));
    let m = r
        .get_manifest(
            &Scope::default_installation(),
            &name("app"),
            &Reference::Digest(kept.clone()),
        )
        .await
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    for d in [&parsed["config"]["digest"], &parsed["layers"][0]["digest"]] {
        let d: Digest = d.as_str().unwrap().parse().unwrap();
        assert!(
            r.blob_size(&Scope::default_installation(), &name("app"), &d)
                .is_ok()
        );
    }
    // Pushing the collected content again works (nothing stale left behind).
    assert_eq!(push_image(r, "app", "v3", b"doomed").await, doomed);
}

#[tokio::test]
async fn gc_racing_pushes_never_loses_a_referenced_blob() {
    let f = fixture();
    let r = f.registry.clone();
    create(&r, "app", TagMutability::Mutable);
    // Blobs pushed, manifests to come: exactly the window GC must not break.
    let mut blobs = Vec::new();
    for i in 0..40 {
        let layer = format!("layer-{i}");
        blobs.push((
            push_blob(&r, "app", b"{}").await,
            push_blob(&r, "app", layer.as_bytes()).await,
            layer.len(),
        ));
    }
    let pusher = {
        let r = r.clone();
        tokio::spawn(async move {
            let mut ok = Vec::new();
            for (i, (config, layer, len)) in blobs.into_iter().enumerate() {
                let m = image_manifest(&config, 2, &layer, len);
                let tag: ImageTag = format!("t{i}").parse().unwrap();
                match r
                    .put_manifest(
                        &Scope::default_installation(),
                        &name("app"),
                        Some(&tag),
                        None,
                        None,
                        m,
                    )
                    .await
                {
                    Ok(out) => ok.push(out.digest),
                    Err(RegistryError::ManifestBlobUnknown(_)) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
                tokio::task::yield_now().await;
            }
            ok
        })
    };
    for _ in 0..20 {
        r.gc(Duration::ZERO).await.unwrap();
        tokio::task::yield_now().await;
    }
    let pushed = pusher.await.unwrap();
    r.gc(Duration::ZERO).await.unwrap();
    // Every acknowledged manifest still has all its blobs.
    for digest in pushed {
        let m = r
            .get_manifest(
                &Scope::default_installation(),
                &name("app"),
                &Reference::Digest(digest),
            )
            .await
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        for d in [&parsed["config"]["digest"], &parsed["layers"][0]["digest"]] {
            let d: Digest = d.as_str().unwrap().parse().unwrap();
            assert!(
                r.blob_size(&Scope::default_installation(), &name("app"), &d)
                    .is_ok(),
                "{d} lost"
            );
        }
    }
}

#[tokio::test]
async fn force_delete_removes_everything_of_the_repository() {
    let f = fixture();
    let r = &f.registry;
    create(r, "app", TagMutability::Mutable);
    push_image(r, "app", "v1", b"one").await;
    assert!(matches!(
        r.delete_repository(&Scope::default_installation(), &name("app"), false),
        Err(RegistryError::RepositoryNotEmpty { .. })
    ));
    r.delete_repository(&Scope::default_installation(), &name("app"), true)
        .unwrap();
    create(r, "app", TagMutability::Mutable);
    assert!(
        r.list_tags(&Scope::default_installation(), &name("app"), None, None)
            .unwrap()
            .0
            .is_empty()
    );
    // Regions are separate.
    let eu = Scope::new(
        "000000000000".parse().unwrap(),
        "eu-west-1".parse().unwrap(),
    );
    assert!(matches!(
        r.repository(&eu, &name("app")),
        Err(RegistryError::RepositoryNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manifest_pushes_sharing_blobs_all_succeed() {
    let f = fixture();
    let r = f.registry.clone();
    create(&r, "app", TagMutability::Mutable);
    let config = push_blob(&r, "app", b"{}").await;
    let layer = push_blob(&r, "app", b"shared layer").await;
    let mut tasks = Vec::new();
    for client in 0..8 {
        let r = r.clone();
        let (config, layer) = (config.clone(), layer.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                // Distinct manifests (an annotation differs), the same blobs.
                let mut m: serde_json::Value =
                    serde_json::from_slice(&image_manifest(&config, 2, &layer, 12)).unwrap();
                m["annotations"] = serde_json::json!({"n": format!("{client}-{i}")});
                let tag: ImageTag = format!("c{client}-{i}").parse().unwrap();
                r.put_manifest(
                    &Scope::default_installation(),
                    &name("app"),
                    Some(&tag),
                    None,
                    None,
                    m.to_string().into_bytes(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (tags, _) = r
        .list_tags(&Scope::default_installation(), &name("app"), None, None)
        .unwrap();
    assert_eq!(tags.len(), 200);
}

#[tokio::test]
async fn images_listed_by_an_index_stay_while_the_index_does() {
    let f = fixture();
    let r = &f.registry;
    create(r, "app", TagMutability::Mutable);
    let amd = push_image(r, "app", "amd", b"amd64 layer").await;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{"mediaType": media_types::OCI_MANIFEST, "digest": amd, "size": 1,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    })
    .to_string()
    .into_bytes();
    // An index whose child is missing is refused.
    let missing = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{"mediaType": media_types::OCI_MANIFEST,
                       "digest": Digest::sha256_of(b"nothing"), "size": 1}],
    })
    .to_string()
    .into_bytes();
    assert!(matches!(
        r.put_manifest(
            &Scope::default_installation(),
            &name("app"),
            None,
            None,
            None,
            missing
        )
        .await,
        Err(RegistryError::ManifestChildUnknown(_))
    ));
    let index = r
        .put_manifest(
            &Scope::default_installation(),
            &name("app"),
            Some(&"multi".parse().unwrap()),
            None,
            None,
            index,
        )
        .await
        .unwrap()
        .digest;
    let by_digest = |d: &Digest| ImageIdentifier {
        image_digest: Some(d.to_string()),
        image_tag: None,
    };
    let (deleted, failures) = r
        .batch_delete_image(
            &Scope::default_installation(),
            &name("app"),
            &[by_digest(&amd)],
        )
        .unwrap();
    assert!(deleted.is_empty());
    assert_eq!(failures[0].failure_code, "ImageReferencedByManifestList");
    assert!(failures[0].failure_reason.contains(&index.to_string()));
    // Once the index is gone, so is the hold on its child.
    r.delete_manifest(&Scope::default_installation(), &name("app"), &index)
        .unwrap();
    r.delete_manifest(&Scope::default_installation(), &name("app"), &amd)
        .unwrap();
}

#[tokio::test]
async fn reusing_an_old_blob_restarts_its_grace_period() {
    let f = fixture();
    let r = &f.registry;
    create(r, "app", TagMutability::Mutable);
    create(r, "other", TagMutability::Mutable);
    let grace = Duration::from_millis(600);
    let digest = push_blob(r, "app", b"layer pushed long ago").await;
    tokio::time::sleep(grace + Duration::from_millis(100)).await;
    // Uploaded again (deduplicated) and mounted: the blob is in use again, not garbage.
    push_blob(r, "app", b"layer pushed long ago").await;
    assert!(
        r.mount_blob(
            &Scope::default_installation(),
            &name("other"),
            &name("app"),
            &digest
        )
        .unwrap()
        .is_some()
    );
    assert_eq!(r.gc(grace).await.unwrap().blobs_deleted, 0);
    assert!(
        r.blob_size(&Scope::default_installation(), &name("other"), &digest)
            .is_ok()
    );
    // Left alone past the grace period, unreferenced, it goes.
    tokio::time::sleep(grace + Duration::from_millis(100)).await;
    assert_eq!(r.gc(grace).await.unwrap().blobs_deleted, 1);
}

/// The daily lifecycle run visits every account and region with ECR records, expires what
/// each repository's policy selects and records when it ran.
#[tokio::test]
async fn lifecycle_policies_run_in_every_scope() {
    let f = fixture();
    let r = &f.registry;
    let here = Scope::default_installation();
    let other = Scope::new(
        "111122223333".parse().unwrap(),
        "eu-west-1".parse().unwrap(),
    );
    create(r, "app", TagMutability::Mutable);
    r.create_repository(
        &other,
        CreateRepository {
            name: name("app"),
            image_tag_mutability: TagMutability::Mutable,
            image_tag_mutability_exclusion_filters: vec![],
            scan_on_push: false,
            encryption: EncryptionConfiguration::default(),
            tags: vec![],
        },
    )
    .unwrap();
    let old = push_image(r, "app", "v1", b"one").await;
    let new = push_image(r, "app", "v2", b"two").await;
    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    for scope in [&here, &other] {
        r.put_lifecycle_policy(scope, &name("app"), policy).unwrap();
    }
    assert_eq!(r.apply_lifecycle_policies().unwrap(), 1);
    assert!(
        r.resolve(&here, &name("app"), &Reference::Digest(old))
            .is_err()
    );
    assert!(
        r.resolve(&here, &name("app"), &Reference::Digest(new))
            .is_ok()
    );
    for scope in [&here, &other] {
        let state = r.get_lifecycle_policy(scope, &name("app")).unwrap();
        assert!(state.last_evaluated_at.is_some(), "{scope:?}");
    }
}
