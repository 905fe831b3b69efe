//! `S3BlobStore` against an S3-compatible server (moto_server on a free loopback port, a
//! bucket of a unique name per test): whole and ranged reads byte-exact, multipart uploads
//! of several parts, listing (paged past 1,000 objects), removal, and the registry on S3:
//! a wrong digest never becomes visible, garbage collection deletes the object, and a
//! write of a digest waits for a deletion of it in flight. Each test says `SKIPPED` and
//! returns when moto_server is not installed (scripts/test.sh installs it).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_model::{Digest, RepositoryName};
use berth_registry::s3_testing::MotoServer;
use berth_registry::{
    BlobStore, BlobStream, CreateRepository, EncryptionConfiguration, Registry, RegistryError,
    S3BlobStore, Scope, TagMutability,
};
use berth_store::MemStore;
use bytes::Bytes;
use futures_util::StreamExt;

const MIB: usize = 1 << 20;

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

async fn collect(mut stream: BlobStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn stage(dir: &tempfile::TempDir, data: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(uuid_like(data));
    std::fs::write(&path, data).unwrap();
    path
}

fn uuid_like(data: &[u8]) -> String {
    Digest::sha256_of(data).hex()[..16].to_owned()
}

#[tokio::test]
async fn small_blobs_round_trip_and_missing_ones_are_not_found() {
    let Some(moto) = MotoServer::start_or_skip("small_blobs_round_trip") else {
        return;
    };
    let (_, store) = moto.bucket("registry").await;
    store.check().await.unwrap();
    let data = b"{\"schemaVersion\":2}".to_vec();
    let digest = Digest::sha256_of(&data);
    store.write_whole(&digest, data.clone()).await.unwrap();
    assert_eq!(store.read_all(&digest).await.unwrap(), data);
    // Written twice (another replica, the same bytes): still the same object.
    store.write_whole(&digest, data.clone()).await.unwrap();
    assert_eq!(store.read_all(&digest).await.unwrap(), data);

    let missing = Digest::sha256_of(b"never stored");
    let err = store.read_all(&missing).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("NoSuchKey"), "{err}");
    let streamed = collect(store.stream(&missing, 0, 10).unwrap()).await;
    assert!(streamed.is_err(), "a missing object streamed");

    // Removing a missing blob is not an error; a removed one is gone.
    store.remove(&missing).await.unwrap();
    store.remove(&digest).await.unwrap();
    let err = store.read_all(&digest).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_missing_bucket_is_reported_with_s3s_code() {
    let Some(moto) = MotoServer::start_or_skip("a_missing_bucket_is_reported") else {
        return;
    };
    let store = S3BlobStore::new(&moto.config("berth-test-no-such-bucket", "")).unwrap();
    let err = store.check().await.unwrap_err();
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
}

#[tokio::test]
async fn multipart_uploads_stream_back_byte_exact() {
    let Some(moto) = MotoServer::start_or_skip("multipart_uploads_stream_back_byte_exact") else {
        return;
    };
    let (_, store) = moto.bucket("").await;
    // 8 MiB parts: a blob of two parts and a bit is three parts, the last one short.
    let store = store.with_part_size(8 * MIB as u64);
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(17 * MIB + 12_345, 1);
    let digest = Digest::sha256_of(&data);
    let staged = stage(&dir, &data);
    store.commit_file(&staged, &digest).await.unwrap();
    assert!(
        staged.exists(),
        "the registry removes the staging file, not the store"
    );

    let len = data.len() as u64;
    let whole = collect(store.stream(&digest, 0, len).unwrap())
        .await
        .unwrap();
    assert!(whole == data, "the whole blob differs");
    // Ranges inside a part, across part boundaries, the first and last byte.
    let p = 8 * MIB as u64;
    for (start, n) in [
        (0, 1),
        (len - 1, 1),
        (5, 100),
        (p - 10, 20),
        (p - 1, p + 2),
        (2 * p + 1, len - 2 * p - 1),
    ] {
        let got = collect(store.stream(&digest, start, n).unwrap())
            .await
            .unwrap();
        assert!(
            got == data[start as usize..(start + n) as usize],
            "range {start}+{n} differs"
        );
    }
    assert!(
        collect(store.stream(&digest, 3, 0).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // A range past the end of the object is refused, not answered short.
    assert!(
        collect(store.stream(&digest, len - 5, 10).unwrap())
            .await
            .is_err()
    );

    // A small file goes up as one PutObject.
    let small = pattern(1000, 2);
    let small_digest = Digest::sha256_of(&small);
    store
        .commit_file(&stage(&dir, &small), &small_digest)
        .await
        .unwrap();
    assert_eq!(store.read_all(&small_digest).await.unwrap(), small);
}

#[tokio::test]
async fn listing_names_every_blob_under_the_prefix_only() {
    let Some(moto) = MotoServer::start_or_skip("listing_names_every_blob") else {
        return;
    };
    let (bucket, store) = moto.bucket("one").await;
    let other = S3BlobStore::new(&moto.config(&bucket, "two")).unwrap();
    let before = SystemTime::now() - Duration::from_secs(120);
    // Past one page of ListObjectsV2 (1,000 keys).
    let n = 1_005;
    let digests: Vec<Digest> = futures_util::stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            async move {
                let data = format!("blob {i}").into_bytes();
                let digest = Digest::sha256_of(&data);
                store.write_whole(&digest, data).await.unwrap();
                digest
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let elsewhere = Digest::sha256_of(b"under another prefix");
    other
        .write_whole(&elsewhere, b"under another prefix".to_vec())
        .await
        .unwrap();

    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), n);
    let mut names: Vec<&Digest> = listed.iter().map(|(d, _)| d).collect();
    names.sort();
    let mut expected: Vec<&Digest> = digests.iter().collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(
        listed.iter().all(|(_, t)| *t > before),
        "LastModified is now"
    );
    assert_eq!(other.list().await.unwrap().len(), 1);
}

fn name(s: &str) -> RepositoryName {
    s.parse().unwrap()
}

fn body(
    data: &[u8],
) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

fn registry_on(store: S3BlobStore, dir: &tempfile::TempDir) -> Registry {
    let registry =
        Registry::with_blobs(Arc::new(MemStore::new()), dir.path(), Arc::new(store)).unwrap();
    registry
        .create_repository(
            &Scope::default_installation(),
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
    registry
}

#[tokio::test]
async fn the_registry_on_s3_verifies_uploads_and_collects_garbage() {
    let Some(moto) = MotoServer::start_or_skip("the_registry_on_s3") else {
        return;
    };
    let (_, store) = moto.bucket("reg").await;
    let store = store.with_part_size(8 * MIB as u64);
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_on(store.clone(), &dir);
    let scope = Scope::default_installation();
    let data = pattern(9 * MIB + 7, 3);
    let digest = Digest::sha256_of(&data);

    // A wrong digest: refused, and nothing in the bucket.
    let id = registry.start_upload(&scope, &name("app")).unwrap();
    let wrong = Digest::sha256_of(b"something else");
    let err = registry
        .complete_upload(&scope, &name("app"), &id, &wrong, None, body(&data))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(
        store.list().await.unwrap().is_empty(),
        "a refused blob is in the bucket"
    );
    assert!(registry.blob_size(&scope, &name("app"), &wrong).is_err());

    // Chunked, then completed: in the bucket, readable through the registry.
    let id = registry.start_upload(&scope, &name("app")).unwrap();
    let (head, tail) = data.split_at(5 * MIB + 3);
    registry
        .append_upload(&scope, &name("app"), &id, Some(0), body(head))
        .await
        .unwrap();
    registry
        .complete_upload(
            &scope,
            &name("app"),
            &id,
            &digest,
            Some(head.len() as u64),
            body(tail),
        )
        .await
        .unwrap();
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, digest);
    let read = registry
        .read_blob(&scope, &name("app"), &digest, |_| {
            Some((100, 8 * MIB as u64 + 99))
        })
        .unwrap();
    assert_eq!(read.size, data.len() as u64);
    let got = collect(read.stream).await.unwrap();
    assert!(
        got == data[100..8 * MIB + 100],
        "a ranged read through the registry differs"
    );

    // Unreferenced past the grace period: the record, the link and the object go.
    let report = registry.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.blobs_deleted, 1);
    assert!(
        store.list().await.unwrap().is_empty(),
        "the collected blob is still in the bucket"
    );
    assert!(registry.blob_size(&scope, &name("app"), &digest).is_err());

    // An object without a record (a replica died between its write and its commit) is
    // an orphan: collected once past the grace period.
    let orphan = b"orphan".to_vec();
    let orphan_digest = Digest::sha256_of(&orphan);
    store.write_whole(&orphan_digest, orphan).await.unwrap();
    let report = registry.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.orphan_files_deleted, 0, "a young orphan is kept");
    let report = registry.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.orphan_files_deleted, 1);
    assert!(store.list().await.unwrap().is_empty());
}

/// Two registries on one store and one bucket (two replicas): one collecting a blob while
/// the other pushes the same bytes again, many times over; whenever a push is
/// acknowledged, its blob is readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_racing_another_replicas_gc_never_loses_its_blob() {
    let Some(moto) = MotoServer::start_or_skip("a_push_racing_another_replicas_gc") else {
        return;
    };
    let (_, store) = moto.bucket("").await;
    let store_meta = Arc::new(MemStore::new());
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a =
        Registry::with_blobs(store_meta.clone(), dir_a.path(), Arc::new(store.clone())).unwrap();
    let b = Registry::with_blobs(store_meta, dir_b.path(), Arc::new(store.clone())).unwrap();
    a.create_repository(
        &Scope::default_installation(),
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
    let scope = Scope::default_installation();
    let data = b"a layer both replicas know".to_vec();
    let digest = Digest::sha256_of(&data);
    let collector = tokio::spawn(async move {
        for _ in 0..30 {
            a.gc(Duration::ZERO).await.unwrap();
        }
    });
    for _ in 0..30 {
        let id = b.start_upload(&scope, &name("app")).unwrap();
        b.complete_upload(&scope, &name("app"), &id, &digest, None, body(&data))
            .await
            .unwrap();
        // Acknowledged: readable now, unless a later GC already took it whole (record
        // and bytes together).
        match b.read_blob(&scope, &name("app"), &digest, |_| None) {
            Ok(read) => match collect(read.stream).await {
                Ok(got) => assert_eq!(got, data),
                Err(e) => assert!(
                    b.blob_size(&scope, &name("app"), &digest).is_err(),
                    "the record is there but the bytes are not: {e}"
                ),
            },
            Err(RegistryError::BlobUnknown(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    collector.await.unwrap();
    // At rest: the record and the bytes agree.
    let has_record = b.blob_size(&scope, &name("app"), &digest).is_ok();
    let has_bytes = store.read_all(&digest).await.is_ok();
    assert!(!has_record || has_bytes, "a record without its bytes");
}

/// An https endpoint: trusted through the CA bundle (AWS_CA_BUNDLE's role), refused
/// without it (moto's certificate is self-signed).
#[tokio::test]
async fn https_endpoints_trust_the_ca_bundle() {
    let Some(moto) = MotoServer::start_tls_or_skip("https_endpoints_trust_the_ca_bundle") else {
        return;
    };
    assert!(moto.endpoint().starts_with("https://"));
    let (bucket, store) = moto.bucket("tls").await;
    let store = store.with_part_size(8 * MIB as u64);
    let data = pattern(9 * MIB, 4);
    let digest = Digest::sha256_of(&data);
    let dir = tempfile::tempdir().unwrap();
    store
        .commit_file(&stage(&dir, &data), &digest)
        .await
        .unwrap();
    let got = collect(store.stream(&digest, 10, 8 * MIB as u64).unwrap())
        .await
        .unwrap();
    assert!(
        got == data[10..8 * MIB + 10],
        "a ranged read over TLS differs"
    );

    let untrusted = S3BlobStore::new(&berth_registry::S3Config {
        ca_bundle: None,
        ..moto.config(&bucket, "tls")
    })
    .unwrap();
    let err = untrusted.check().await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
