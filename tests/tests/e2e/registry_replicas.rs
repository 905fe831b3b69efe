//! Registry uploads that any replica continues: two `berth server`s on one etcd (a
//! three-member cluster from Debian's etcd-server) and one bucket (moto_server). docker
//! and skopeo push through a proxy that sends each upload's POST, PATCH and PUT to
//! alternate replicas (POST and PUT to A, PATCH to B), and every blob is sent once; the
//! images are pulled whole through the other replica. At the OCI level, with raw HTTP:
//! chunks alternating between the replicas, a 416 with the real range for a stale
//! Content-Range, and a wrong digest refused with nothing left in the bucket (checked with
//! the aws CLI). Each test says SKIPPED plainly when etcd or moto_server is not installed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_e2e::{BerthServer, ServerOptions, ok_json, random_secret, unique};
use berth_registry::s3_testing::{
    ACCESS_KEY_ID, MotoServer, REGION as S3_REGION, SECRET_ACCESS_KEY, unique_bucket_name,
};
use berth_store::testing::EtcdCluster;
use berth_testkit::oci::sha256_digest;
use serde_json::Value;

const MIB: usize = 1 << 20;

/// Two replicas on `etcd`, their blobs in a fresh bucket of `moto` under `replicas/`;
/// returns them and the bucket's name.
pub(crate) fn s3_replicas(
    etcd: &EtcdCluster,
    moto: &MotoServer,
) -> (BerthServer, BerthServer, String) {
    let bucket = unique_bucket_name();
    berth_e2e::assert_ok(
        &s3api(moto, &["create-bucket", "--bucket", &bucket]),
        "create-bucket",
    );
    let secret = random_secret();
    let replica = || {
        BerthServer::start_with(ServerOptions {
            args: vec![
                "--store".into(),
                etcd.url(),
                "--blobs".into(),
                format!("s3://{bucket}/replicas"),
                "--s3-endpoint".into(),
                moto.endpoint(),
                "--s3-region".into(),
                S3_REGION.into(),
            ],
            env: vec![
                ("BERTH_S3_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
                (
                    "BERTH_S3_SECRET_ACCESS_KEY".into(),
                    SECRET_ACCESS_KEY.into(),
                ),
            ],
            secret_key: Some(secret.clone()),
            ..Default::default()
        })
    };
    (replica(), replica(), bucket)
}

/// `aws s3api ARGS` against moto.
pub(crate) fn s3api(moto: &MotoServer, args: &[&str]) -> std::process::Output {
    std::process::Command::new(berth_e2e::aws_program())
        .arg("s3api")
        .args(args)
        .args(["--endpoint-url", &moto.endpoint(), "--region", S3_REGION])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn etcd_and_moto(test: &str) -> Option<(EtcdCluster, MotoServer)> {
    let Some(etcd) = EtcdCluster::start(3) else {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
        return None;
    };
    let moto = MotoServer::start_or_skip(test)?;
    Some((etcd, moto))
}

/// What the upload sessions left in the bucket: objects under `replicas/uploads/` and
/// multipart uploads in progress.
fn staged_leftovers(moto: &MotoServer, bucket: &str) -> (Value, Value) {
    let objects = s3api(
        moto,
        &[
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            "replicas/uploads/",
        ],
    );
    let uploads = s3api(moto, &["list-multipart-uploads", "--bucket", bucket]);
    let parse = |out: &std::process::Output| -> Value {
        berth_e2e::assert_ok(out, "aws s3api");
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    };
    (
        parse(&objects)
            .get("Contents")
            .cloned()
            .unwrap_or(Value::Null),
        parse(&uploads)
            .get("Uploads")
            .cloned()
            .unwrap_or(Value::Null),
    )
}

/// An HTTP/1.1 proxy in front of two replicas that chooses the replica per request:
/// POST and PUT go to the first, PATCH to the second, anything else alternates. Each
/// request gets `Connection: close`, so a client's next request comes on a new
/// connection and is routed afresh. Every request line is logged with its replica.
struct SplitProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(String, usize)>>>,
}

impl SplitProxy {
    fn start(targets: [String; 2]) -> SplitProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop2, log2) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            let turn = AtomicUsize::new(0);
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (targets, log) = (targets.clone(), log2.clone());
                let other = turn.fetch_add(1, Ordering::SeqCst) % 2;
                std::thread::spawn(move || route(client, &targets, other, &log));
            }
        });
        SplitProxy { addr, stop, log }
    }

    fn requests(&self) -> Vec<(String, usize)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for SplitProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn route(
    mut client: TcpStream,
    targets: &[String; 2],
    other: usize,
    log: &Mutex<Vec<(String, usize)>>,
) {
    // The request head, byte by byte up to its blank line (heads are small).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let replica = match request_line.split(' ').next() {
        Some("POST" | "PUT") => 0,
        Some("PATCH") => 1,
        _ => other,
    };
    log.lock().unwrap().push((request_line.clone(), replica));
    let mut rewritten = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let Ok(mut server) = TcpStream::connect(&targets[replica]) else {
        return;
    };
    if server.write_all(rewritten.as_bytes()).is_err() {
        return;
    }
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

/// The uploads of `log`: sessions started (POSTs that are not mounts) and the digests
/// completed (PUTs with a digest), asserting that every session started was completed,
/// each digest once (a blob sent again, after a PATCH or PUT that found no session, would
/// show as one more POST and a digest PUT twice), every PATCH on replica 1 and every
/// POST on replica 0. Returns the digests completed.
#[track_caller]
fn check_uploads(log: &[(String, usize)]) -> Vec<String> {
    let mut started = 0;
    let mut completed = Vec::new();
    for (line, replica) in log {
        let (method, rest) = line.split_once(' ').unwrap_or_default();
        let path = rest.split(' ').next().unwrap_or_default();
        if !path.contains("/blobs/uploads/") {
            continue;
        }
        match method {
            "POST" if !path.contains("mount=") => {
                assert_eq!(*replica, 0, "{line}");
                started += 1;
            }
            "PATCH" => assert_eq!(*replica, 1, "{line}"),
            "PUT" => {
                let digest = path
                    .split(['?', '&'])
                    .find_map(|p| p.strip_prefix("digest="))
                    .unwrap_or_else(|| panic!("a PUT without a digest: {line}"))
                    .replace("%3A", ":")
                    .replace("%3a", ":");
                assert!(
                    !completed.contains(&digest),
                    "{digest} sent twice: {log:#?}"
                );
                completed.push(digest);
            }
            _ => {}
        }
    }
    assert_eq!(
        started,
        completed.len(),
        "sessions started and completed: {log:#?}"
    );
    assert!(
        log.iter().any(|(line, _)| line.starts_with("PATCH ")),
        "the client sent its blobs by PATCH: {log:#?}"
    );
    completed.sort();
    completed
}

/// The blobs (config and layers) a manifest references, read through `server`.
fn manifest_blobs(server: &BerthServer, repo: &str, tag: &str) -> (String, Vec<String>) {
    let r = server.registry().request(
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let digest = r.header("docker-content-digest").unwrap().to_owned();
    let manifest: Value = serde_json::from_slice(&r.body).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_owned());
    }
    (digest, blobs)
}

/// docker push and skopeo copy through the split proxy: each upload's PATCH lands on the
/// replica that did not start it, and no blob is sent twice (one POST per blob); the
/// image pulled through the other replica has the same digests.
#[test]
fn pushes_through_a_proxy_that_splits_every_upload_send_each_blob_once() {
    let Some((etcd, moto)) = etcd_and_moto("registry_replicas::pushes_through_a_split_proxy")
    else {
        return;
    };
    let (a, b, bucket) = s3_replicas(&etcd, &moto);
    let proxy = SplitProxy::start([a.host(), b.host()]);
    let repo = unique("split-");
    a.create_repo(&repo, &[]);

    // An image with a 20 MiB layer of random bytes (a multipart upload of two parts at
    // the default 16 MiB part size) on top of the suite's busybox image.
    let ctx = a.scratch(&unique("image-"));
    berth_e2e::write_test_image_context(&ctx);
    let mut random = vec![0u8; 20 * MIB];
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ std::process::id() as u64;
    for chunk in random.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(ctx.join("rootfs/random.bin"), &random).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/bin/ /bin/\nCOPY rootfs/etc/ /etc/\nCOPY rootfs/random.bin /random.bin\n\
         CMD [\"/bin/sh\",\"-c\",\"echo hello from berth\"]\n",
    )
    .unwrap();
    let reference = format!("{}/{repo}:v1", proxy.addr);
    a.docker_build(&reference, &ctx, "docker build");
    let pw = a.login_password();
    berth_e2e::assert_ok(
        &a.docker_stdin(
            &[
                "login",
                "--username",
                "AWS",
                "--password-stdin",
                &proxy.addr,
            ],
            Some(&pw),
        ),
        "docker login through the proxy",
    );
    berth_e2e::assert_ok(
        &a.docker(&["push", &reference]),
        "docker push through the proxy",
    );

    let (pushed, blobs) = manifest_blobs(&b, &repo, "v1");
    assert!(blobs.len() >= 4, "config and three layers: {blobs:?}");
    let mut sorted = blobs.clone();
    sorted.sort();
    assert_eq!(
        check_uploads(&proxy.requests()),
        sorted,
        "every blob uploaded once"
    );

    // Pulled whole through A (skopeo checks every blob's digest), the same manifest.
    let out_dir = a.scratch("pulled");
    let creds = a.registry_creds();
    berth_e2e::assert_ok(
        &a.skopeo(&[
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{}/{repo}:v1", a.host()),
            &format!("oci:{}:v1", out_dir.display()),
        ]),
        "skopeo copy through replica A",
    );
    let (pulled, pulled_blobs) = manifest_blobs(&a, &repo, "v1");
    assert_eq!(pulled, pushed);
    assert_eq!(pulled_blobs, blobs);

    // skopeo pushes the pulled image to another repository through the proxy: again one
    // upload per blob, PATCHes on the other replica.
    let repo2 = unique("split-skopeo-");
    a.create_repo(&repo2, &[]);
    let before = proxy.requests().len();
    berth_e2e::assert_ok(
        &a.skopeo(&[
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", out_dir.display()),
            &format!("docker://{}/{repo2}:v1", proxy.addr),
        ]),
        "skopeo copy through the proxy",
    );
    let (_, blobs2) = manifest_blobs(&b, &repo2, "v1");
    // The layers are the same bytes (the config is rewritten in the OCI layout's form).
    assert_eq!(blobs2[1..], blobs[1..], "skopeo keeps the layers");
    // Blobs the registry already holds may be mounted rather than sent; none twice.
    let sent = check_uploads(&proxy.requests()[before..]);
    assert!(
        sent.iter().all(|d| blobs2.contains(d)),
        "{sent:?} {blobs2:?}"
    );
    let (objects, uploads) = staged_leftovers(&moto, &bucket);
    assert_eq!(objects, Value::Null, "staging objects left: {objects}");
    assert_eq!(uploads, Value::Null, "multipart uploads left: {uploads}");
}

/// Raw OCI requests: chunks PATCHed alternately to A and B, the status read from either,
/// a stale Content-Range answered 416 with the real range, the PUT on the other replica;
/// a wrong digest answered DIGEST_INVALID with the session gone; the bucket left clean.
#[test]
fn chunks_alternate_between_replicas_at_the_oci_level() {
    let Some((etcd, moto)) = etcd_and_moto("registry_replicas::chunks_alternate") else {
        return;
    };
    let (a, b, bucket) = s3_replicas(&etcd, &moto);
    let repo = unique("chunks-");
    a.create_repo(&repo, &[]);
    let (ra, rb) = (a.registry(), b.registry());
    let replica = |i: usize| if i.is_multiple_of(2) { &ra } else { &rb };

    // Chunks of 3 MiB (a tail), 7 MiB (a part and a tail), 17 MiB (parts), 1 byte.
    let sizes = [3 * MIB, 7 * MIB + 3, 17 * MIB, 1];
    let data: Vec<u8> = (0..sizes.iter().sum::<usize>() + 5 * MIB + 9)
        .map(|i| ((i * 131 + i / 7919) % 253) as u8)
        .collect();
    let digest = sha256_digest(&data);
    let upload = ra.start_upload(&repo);
    let mut offset = 0;
    for (i, size) in sizes.iter().enumerate() {
        let range = format!("{offset}-{}", offset + size - 1);
        let r = replica(i + 1).request(
            "PATCH",
            &upload,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            &data[offset..offset + size],
        );
        assert_eq!(r.status, 202, "PATCH {range}: {}", r.describe());
        offset += size;
        assert_eq!(
            r.header("range"),
            Some(format!("0-{}", offset - 1).as_str())
        );
        let status = replica(i).get(&upload);
        assert_eq!(status.status, 204, "{}", status.describe());
        assert_eq!(
            status.header("range"),
            Some(format!("0-{}", offset - 1).as_str())
        );
    }
    // A client resending the first chunk on the other replica: 416 and where it stands.
    let stale = rb.request(
        "PATCH",
        &upload,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "0-9"),
        ],
        &data[..10],
    );
    assert_eq!(stale.status, 416, "{}", stale.describe());
    assert_eq!(
        stale.header("range"),
        Some(format!("0-{}", offset - 1).as_str())
    );
    let put = rb.request(
        "PUT",
        &berth_e2e::http::with_query(&upload, &format!("digest={digest}")),
        &[("Content-Type", "application/octet-stream")],
        &data[offset..],
    );
    assert_eq!(put.status, 201, "{}", put.describe());
    let got = ra.get(&format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(got.status, 200, "{}", got.describe());
    assert!(got.body == data, "the blob read through A differs");

    // A wrong digest: refused, the session gone on both replicas, no blob.
    let upload = rb.start_upload(&repo);
    let r = ra.request(
        "PATCH",
        &upload,
        &[("Content-Type", "application/octet-stream")],
        &data[..6 * MIB],
    );
    assert_eq!(r.status, 202, "{}", r.describe());
    let wrong = sha256_digest(b"not these bytes");
    let put = rb.request(
        "PUT",
        &berth_e2e::http::with_query(&upload, &format!("digest={wrong}")),
        &[("Content-Type", "application/octet-stream")],
        &data[6 * MIB..7 * MIB],
    );
    put.assert_oci_error(400, "DIGEST_INVALID");
    ra.get(&upload).assert_oci_error(404, "BLOB_UPLOAD_UNKNOWN");
    ra.get(&format!("/v2/{repo}/blobs/{wrong}"))
        .assert_oci_error(404, "BLOB_UNKNOWN");

    // A cancelled session (DELETE on the other replica) and nothing staged left over.
    let upload = ra.start_upload(&repo);
    let r = rb.request("PATCH", &upload, &[], &data[..2 * MIB]);
    assert_eq!(r.status, 202, "{}", r.describe());
    let r = ra.request("DELETE", &upload, &[], b"");
    assert_eq!(r.status, 204, "{}", r.describe());
    rb.get(&upload).assert_oci_error(404, "BLOB_UPLOAD_UNKNOWN");
    let (objects, uploads) = staged_leftovers(&moto, &bucket);
    assert_eq!(objects, Value::Null, "staging objects left: {objects}");
    assert_eq!(uploads, Value::Null, "multipart uploads left: {uploads}");
    let described = ok_json(&b.aws(&["ecr", "describe-repositories", "--repository-names", &repo]));
    assert_eq!(
        described["repositories"][0]["repositoryName"],
        repo.as_str()
    );
}
