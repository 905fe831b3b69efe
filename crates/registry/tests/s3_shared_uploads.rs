//! Uploads staged in the bucket, continued by any replica: two registries on one store
//! and one bucket (moto_server), as two `berth server`s on etcd and S3. Chunks alternate
//! between them byte-exact whatever their sizes (tails under 5 MiB, parts, both); a stale
//! range and a PATCH that lost a race answer with the session's real size; a wrong digest,
//! a cancel and garbage collection leave nothing in the bucket; blobs beyond the copy
//! limit are copied part by part. Each test says `SKIPPED` and returns when moto_server
//! is not installed.

use std::sync::Arc;
use std::time::Duration;

use berth_model::{Digest, DigestAlgorithm, Hasher, RepositoryName};
use berth_registry::s3_testing::MotoServer;
use berth_registry::{
    BlobStream, CreateRepository, EncryptionConfiguration, Registry, RegistryError, S3BlobStore,
    Scope, TagMutability,
};
use berth_store::{MemStore, Store};
use bytes::Bytes;
use futures_util::StreamExt;

const MIB: usize = 1 << 20;

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7 + i / 4093) % 251) as u8)
        .collect()
}

fn name(s: &str) -> RepositoryName {
    s.parse().unwrap()
}

fn body(
    data: &[u8],
) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>> {
    // In pieces of 64 KiB, as a request body arrives.
    let pieces: Vec<_> = data
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(pieces)
}

async fn collect(mut stream: BlobStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

struct Replicas {
    a: Registry,
    b: Registry,
    meta: Arc<MemStore>,
    store: S3BlobStore,
    dirs: [tempfile::TempDir; 2],
}

impl Replicas {
    fn new(store: S3BlobStore) -> Replicas {
        let meta = Arc::new(MemStore::new());
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let a = Registry::with_s3_blobs(meta.clone(), dirs[0].path(), store.clone(), true).unwrap();
        let b = Registry::with_s3_blobs(meta.clone(), dirs[1].path(), store.clone(), true).unwrap();
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
        Replicas {
            a,
            b,
            meta,
            store,
            dirs,
        }
    }

    fn get(&self, i: usize) -> &Registry {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }

    /// Object keys in the bucket other than blobs (what sessions left behind).
    async fn staged_keys(&self) -> Vec<String> {
        let keys = self.store.list_keys().await.unwrap();
        keys.into_iter().filter(|k| !k.contains("blobs/")).collect()
    }

    /// Nothing was staged on either replica's disk.
    fn no_local_staging(&self) {
        for dir in &self.dirs {
            let uploads = dir.path().join("uploads");
            let files: Vec<_> = std::fs::read_dir(&uploads)
                .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                .unwrap_or_default();
            assert!(files.is_empty(), "staged locally: {files:?}");
        }
    }

    async fn read(&self, i: usize, digest: &Digest) -> Vec<u8> {
        let scope = Scope::default_installation();
        let read = self
            .get(i)
            .read_blob(&scope, &name("app"), digest, |_| None)
            .unwrap();
        collect(read.stream).await
    }
}

async fn replicas(test: &str) -> Option<(MotoServer, Replicas)> {
    let moto = MotoServer::start_or_skip(test)?;
    let (_, store) = moto.bucket("reg").await;
    // S3's smallest parts, so a few MiB cover several parts, tails and their mixes.
    let store = store.with_part_size(5 * MIB as u64);
    Some((moto, Replicas::new(store)))
}

#[tokio::test]
async fn chunks_alternating_between_replicas_make_one_blob() {
    let Some((_moto, r)) = replicas("chunks_alternating_between_replicas").await else {
        return;
    };
    let scope = Scope::default_installation();
    // A tail alone, tails adding up past a part, a chunk of parts and a tail, two bytes,
    // exactly a part, a big chunk, and the last chunk in the PUT.
    let sizes = [
        MIB,
        3 * MIB,
        7 * MIB + 5,
        2,
        5 * MIB,
        12 * MIB + 1,
        3 * MIB + 17,
    ];
    let total: usize = sizes.iter().sum();
    let data = pattern(total, 1);
    let digest = Digest::sha256_of(&data);

    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    let mut offset = 0;
    for (i, size) in sizes[..sizes.len() - 1].iter().enumerate() {
        let chunk = &data[offset..offset + size];
        let status = r
            .get(i)
            .append_upload(&scope, &name("app"), &id, Some(offset as u64), body(chunk))
            .await
            .unwrap();
        offset += size;
        assert_eq!(status.size, offset as u64);
        // The other replica sees where the session stands.
        let seen = r.get(i + 1).upload_status(&scope, &name("app"), &id).await;
        assert_eq!(seen.unwrap().size, offset as u64);
    }
    let size = r
        .get(sizes.len() - 1)
        .complete_upload(
            &scope,
            &name("app"),
            &id,
            &digest,
            Some(offset as u64),
            body(&data[offset..]),
        )
        .await
        .unwrap();
    assert_eq!(size, total as u64);
    assert!(r.read(0, &digest).await == data, "read through A differs");
    assert!(r.read(1, &digest).await == data, "read through B differs");
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
    r.no_local_staging();
    for i in 0..2 {
        let gone = r.get(i).upload_status(&scope, &name("app"), &id).await;
        assert!(
            matches!(gone, Err(RegistryError::UploadUnknown)),
            "{gone:?}"
        );
    }
}

#[tokio::test]
async fn a_stale_range_and_a_patch_that_lost_a_race_answer_with_the_real_size() {
    let Some((_moto, r)) = replicas("a_stale_range_and_a_lost_race").await else {
        return;
    };
    let scope = Scope::default_installation();
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    let first = pattern(6 * MIB + 3, 2);
    r.a.append_upload(&scope, &name("app"), &id, Some(0), body(&first))
        .await
        .unwrap();
    // A client resending from 0 on the other replica: 416 with where the session is.
    let stale =
        r.b.append_upload(&scope, &name("app"), &id, Some(0), body(b"late"))
            .await
            .unwrap_err();
    assert!(
        matches!(stale, RegistryError::RangeInvalid { offset: 0, size } if size == first.len() as u64),
        "{stale}"
    );

    // Two PATCHes of the next chunk at once, on A and B: A's body is held open until B
    // committed, so A commits second and loses.
    let start = first.len() as u64;
    let loser_data = pattern(MIB + 11, 3);
    let winner_data = pattern(2 * MIB + 5, 4);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let rx = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let a = r.a.clone();
    let (sid, sc) = (id.clone(), scope.clone());
    let loser = tokio::spawn(async move {
        a.append_upload(&sc, &name("app"), &sid, Some(start), rx)
            .await
    });
    tx.send(Ok(Bytes::copy_from_slice(&loser_data[..MIB])))
        .unwrap();
    let won =
        r.b.append_upload(&scope, &name("app"), &id, Some(start), body(&winner_data))
            .await
            .unwrap();
    assert_eq!(won.size, start + winner_data.len() as u64);
    tx.send(Ok(Bytes::copy_from_slice(&loser_data[MIB..])))
        .unwrap();
    drop(tx);
    let lost = loser.await.unwrap().unwrap_err();
    assert!(
        matches!(lost, RegistryError::RangeInvalid { offset, size } if offset == start && size == won.size),
        "{lost}"
    );

    // The session holds the winner's bytes: completed on A, the blob is first + winner.
    let mut data = first.clone();
    data.extend_from_slice(&winner_data);
    let digest = Digest::sha256_of(&data);
    r.a.complete_upload(&scope, &name("app"), &id, &digest, None, body(b""))
        .await
        .unwrap();
    assert!(r.read(1, &digest).await == data);
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_wrong_digest_aborts_the_session_and_leaves_nothing() {
    let Some((_moto, r)) = replicas("a_wrong_digest_aborts").await else {
        return;
    };
    let scope = Scope::default_installation();
    let data = pattern(11 * MIB + 1, 5);
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    r.a.append_upload(&scope, &name("app"), &id, None, body(&data[..6 * MIB]))
        .await
        .unwrap();
    r.b.append_upload(
        &scope,
        &name("app"),
        &id,
        None,
        body(&data[6 * MIB..9 * MIB]),
    )
    .await
    .unwrap();
    let wrong = Digest::sha256_of(b"something else");
    let err =
        r.a.complete_upload(
            &scope,
            &name("app"),
            &id,
            &wrong,
            None,
            body(&data[9 * MIB..]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { actual, .. } if *actual == Digest::sha256_of(&data)),
        "{err}"
    );
    assert!(r.a.blob_size(&scope, &name("app"), &wrong).is_err());
    let gone = r.b.upload_status(&scope, &name("app"), &id).await;
    assert!(
        matches!(gone, Err(RegistryError::UploadUnknown)),
        "{gone:?}"
    );
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
    assert!(r.store.list_keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn monolithic_small_empty_and_sha512_uploads() {
    let Some((_moto, r)) = replicas("monolithic_small_empty_and_sha512").await else {
        return;
    };
    let scope = Scope::default_installation();
    for (i, data) in [
        Vec::new(),
        b"{\"config\":true}".to_vec(),
        pattern(4 * MIB, 6),
        pattern(17 * MIB + 9, 7),
    ]
    .into_iter()
    .enumerate()
    {
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let mut h = Hasher::new(algorithm);
            h.update(&data);
            let digest = h.finish();
            // POST ?digest= on one replica: start and complete in one request.
            let id = r.get(i).start_upload(&scope, &name("app")).unwrap();
            r.get(i)
                .complete_upload(&scope, &name("app"), &id, &digest, None, body(&data))
                .await
                .unwrap();
            assert!(r.read(i + 1, &digest).await == data, "{} bytes", data.len());
        }
    }
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
    r.no_local_staging();
}

#[tokio::test]
async fn cancel_and_garbage_collection_from_any_replica() {
    let Some((_moto, r)) = replicas("cancel_and_gc_from_any_replica").await else {
        return;
    };
    let scope = Scope::default_installation();
    // A part and a tail staged through A, cancelled through B.
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    r.a.append_upload(&scope, &name("app"), &id, None, body(&pattern(6 * MIB, 8)))
        .await
        .unwrap();
    r.a.append_upload(&scope, &name("app"), &id, None, body(b"tail"))
        .await
        .unwrap();
    assert!(!r.staged_keys().await.is_empty(), "the tail is an object");
    r.b.cancel_upload(&scope, &name("app"), &id).await.unwrap();
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
    let gone = r.a.upload_status(&scope, &name("app"), &id).await;
    assert!(
        matches!(gone, Err(RegistryError::UploadUnknown)),
        "{gone:?}"
    );

    // Abandoned on A: B's garbage collection keeps it within the grace period and takes
    // it (multipart upload, tail, record) past it.
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    r.a.append_upload(&scope, &name("app"), &id, None, body(&pattern(7 * MIB, 9)))
        .await
        .unwrap();
    let report = r.b.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.uploads_deleted, 0);
    assert_eq!(
        r.a.upload_status(&scope, &name("app"), &id)
            .await
            .unwrap()
            .size,
        7 * MIB as u64
    );
    let report = r.b.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.uploads_deleted, 1);
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
    let gone = r.a.upload_status(&scope, &name("app"), &id).await;
    assert!(
        matches!(gone, Err(RegistryError::UploadUnknown)),
        "{gone:?}"
    );
}

#[tokio::test]
async fn blobs_beyond_the_copy_limit_are_copied_part_by_part() {
    let Some(moto) = MotoServer::start_or_skip("blobs_beyond_the_copy_limit") else {
        return;
    };
    let (_, store) = moto.bucket("big").await;
    let store = store
        .with_part_size(5 * MIB as u64)
        .with_copy_limit(6 * MIB as u64, 5 * MIB as u64);
    let r = Replicas::new(store);
    let scope = Scope::default_installation();
    let data = pattern(13 * MIB + 321, 10);
    let digest = Digest::sha256_of(&data);
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    r.a.append_upload(&scope, &name("app"), &id, None, body(&data[..8 * MIB]))
        .await
        .unwrap();
    r.b.complete_upload(
        &scope,
        &name("app"),
        &id,
        &digest,
        None,
        body(&data[8 * MIB..]),
    )
    .await
    .unwrap();
    assert!(r.read(0, &digest).await == data);
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
}

/// Two PATCHes at once that both send parts: the one that reserves a part number second
/// (A, held open after its first part) loses there, before sending more, and answers 416;
/// the session is completed with the winner's part alone (part numbers with a gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_never_share_a_part_number() {
    let Some((_moto, r)) = replicas("racing_patches_never_share_a_part_number").await else {
        return;
    };
    let scope = Scope::default_installation();
    let id = r.a.start_upload(&scope, &name("app")).unwrap();
    let loser_data = pattern(12 * MIB, 11);
    let winner_data = pattern(7 * MIB + 1, 12);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let rx = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let a = r.a.clone();
    let (sid, sc) = (id.clone(), scope.clone());
    let loser =
        tokio::spawn(async move { a.append_upload(&sc, &name("app"), &sid, Some(0), rx).await });
    tx.send(Ok(Bytes::copy_from_slice(&loser_data[..6 * MIB])))
        .unwrap();
    // Wait for A's reservation of part 1 (its record write names the next part).
    let key = format!("upload/{id}");
    let reserved = || {
        let kv = r.meta.get(&key).unwrap().unwrap();
        String::from_utf8_lossy(&kv.value).contains("\"nextPart\":2")
    };
    for _ in 0..6000 {
        if reserved() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reserved(), "A never reserved its first part");
    let won =
        r.b.append_upload(&scope, &name("app"), &id, Some(0), body(&winner_data))
            .await
            .unwrap();
    assert_eq!(won.size, winner_data.len() as u64);
    tx.send(Ok(Bytes::copy_from_slice(&loser_data[6 * MIB..])))
        .unwrap();
    drop(tx);
    let lost = loser.await.unwrap().unwrap_err();
    assert!(
        matches!(lost, RegistryError::RangeInvalid { offset: 0, size } if size == won.size),
        "{lost}"
    );
    let digest = Digest::sha256_of(&winner_data);
    r.a.complete_upload(&scope, &name("app"), &id, &digest, None, body(b""))
        .await
        .unwrap();
    assert!(r.read(1, &digest).await == winner_data);
    assert_eq!(r.staged_keys().await, Vec::<String>::new());
}
