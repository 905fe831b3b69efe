//! `berth server --blobs s3://BUCKET/PREFIX` against an S3-compatible server (moto_server
//! on a free loopback port, a bucket of a unique name): docker push of an image with a
//! 20 MiB layer (a multipart upload), docker pull after docker rmi, skopeo copies out and
//! back in, and the bytes really in the bucket (listed with the aws CLI), none in the data
//! dir; then `berth gc --blobs s3://…` deletes the objects of deleted images from the
//! bucket; and a bucket behind an https endpoint trusted through AWS_CA_BUNDLE. Two `berth
//! server` processes sharing one bucket need a shared store (etcd): not tested here yet.
//! Says SKIPPED when moto_server (or, for https, openssl) is not installed.

use std::io::Read;
use std::process::{Command, Output, Stdio};

use berth_e2e::{
    BerthServer, ServerOptions, assert_ok, aws_program, stdout_of, unique, write_test_image_context,
};
use berth_registry::s3_testing::{
    ACCESS_KEY_ID, MotoServer, REGION, SECRET_ACCESS_KEY, unique_bucket_name,
};
use serde_json::Value;

const PREFIX: &str = "berth-e2e";

/// `aws s3api ...` against moto.
fn s3api(moto: &MotoServer, args: &[&str]) -> Output {
    Command::new(aws_program())
        .arg("s3api")
        .args(args)
        .args([
            "--endpoint-url",
            &moto.endpoint(),
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run aws s3api")
}

/// Every object under the prefix: (key, size).
fn objects(moto: &MotoServer, bucket: &str) -> Vec<(String, u64)> {
    let out = s3api(
        moto,
        &[
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            &format!("{PREFIX}/blobs/"),
        ],
    );
    assert_ok(&out, "aws s3api list-objects-v2");
    let text = stdout_of(&out);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    v["Contents"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|o| {
                    (
                        o["Key"].as_str().unwrap().to_owned(),
                        o["Size"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn server_on_bucket(moto: &MotoServer, bucket: &str) -> BerthServer {
    BerthServer::start_with(ServerOptions {
        args: blobs_flags(moto, bucket),
        env: vec![
            ("BERTH_S3_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
            (
                "BERTH_S3_SECRET_ACCESS_KEY".into(),
                SECRET_ACCESS_KEY.into(),
            ),
        ],
        ..ServerOptions::default()
    })
}

#[test]
fn docker_push_pull_and_skopeo_copy_with_blobs_in_s3() {
    let Some(moto) = MotoServer::start_or_skip("s3_blobs::docker_push_pull_and_skopeo_copy") else {
        return;
    };
    let bucket = unique_bucket_name();
    assert_ok(
        &s3api(&moto, &["create-bucket", "--bucket", &bucket]),
        "create-bucket",
    );
    let s = server_on_bucket(&moto, &bucket);
    let name = unique("s3-");
    s.create_repo(&name, &[]);
    assert_ok(&s.docker_login(), "docker login");

    // The busybox test image plus 20 MiB of random bytes: a layer larger than one part.
    let ctx = s.scratch(&unique("image-"));
    write_test_image_context(&ctx);
    let mut random = vec![0u8; 20 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    std::fs::write(ctx.join("rootfs/etc/random.bin"), &random).unwrap();
    let reference = format!("{}/{name}:v1", s.host());
    s.docker_build(&reference, &ctx, "docker build");
    let push = s.docker(&["push", &reference]);
    assert_ok(&push, "docker push");

    // The bytes are in the bucket: config, manifest, and the big layer as one object.
    let stored = objects(&moto, &bucket);
    assert!(stored.len() >= 3, "objects in the bucket: {stored:?}");
    assert!(
        stored.iter().any(|(_, size)| *size > 20 << 20),
        "no object holds the 20 MiB layer: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .all(|(key, _)| key.starts_with(&format!("{PREFIX}/blobs/sha256/"))),
        "{stored:?}"
    );
    let local_blobs = s.data_dir().join("blobs");
    let local_files = std::fs::read_dir(&local_blobs)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(local_files, 0, "blobs were written to the data dir");

    // Gone from the engine, back from Berth (ranged GETs from the bucket), and it runs.
    assert_ok(&s.docker(&["rmi", &reference]), "docker rmi");
    assert_ok(&s.docker(&["pull", &reference]), "docker pull");
    let run = s.docker(&[
        "run",
        "--rm",
        &reference,
        "sh",
        "-c",
        "sha256sum /etc/random.bin",
    ]);
    assert_ok(&run, "docker run");
    let expected = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&random))
    };
    assert!(
        stdout_of(&run).starts_with(&expected),
        "{}",
        stdout_of(&run)
    );

    // skopeo: out to an OCI layout (every blob read from the bucket and verified by
    // skopeo), then into another repository.
    let creds = s.registry_creds();
    let layout = s.scratch("layout");
    let out = s.skopeo(&[
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{reference}"),
        &format!("oci:{}:v1", layout.display()),
    ]);
    assert_ok(&out, "skopeo copy docker:// -> oci:");
    let copy = unique("s3-copy-");
    s.create_repo(&copy, &[]);
    let out = s.skopeo(&[
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/{copy}:v1", s.host()),
    ]);
    assert_ok(&out, "skopeo copy oci: -> docker://");
    let out = s.skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/{copy}:v1", s.host()),
    ]);
    assert_ok(&out, "skopeo inspect");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!info["Layers"].as_array().unwrap().is_empty(), "{info}");
    // The copy's layers were the same bytes: no new object for them.
    let after = objects(&moto, &bucket);
    assert!(after.len() <= stored.len() + 2, "{stored:?} -> {after:?}");

    // Every image deleted, the server stopped: `berth gc` on the same bucket empties it.
    for repo in [&name, &copy] {
        s.aws(&[
            "ecr",
            "delete-repository",
            "--repository-name",
            repo,
            "--force",
        ]);
    }
    let mut s = s;
    s.kill9();
    let gc = Command::new(berth_bin())
        .args(["gc", "--grace-seconds", "0", "--data-dir"])
        .arg(s.data_dir())
        .args(blobs_flags(&moto, &bucket))
        .env("BERTH_S3_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("BERTH_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .output()
        .expect("run berth gc");
    assert_ok(&gc, "berth gc --blobs s3://…");
    assert!(
        objects(&moto, &bucket).is_empty(),
        "{}\nleft in the bucket: {:?}",
        stdout_of(&gc),
        objects(&moto, &bucket)
    );
}

fn berth_bin() -> std::path::PathBuf {
    std::env::var_os("BERTH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| berth_e2e::workspace_root().join("target/debug/berth"))
}

fn blobs_flags(moto: &MotoServer, bucket: &str) -> Vec<String> {
    vec![
        "--blobs".into(),
        format!("s3://{bucket}/{PREFIX}"),
        "--s3-endpoint".into(),
        moto.endpoint(),
        "--s3-region".into(),
        REGION.into(),
    ]
}

#[test]
fn a_server_with_an_unreachable_bucket_stops_with_s3s_words() {
    let Some(moto) = MotoServer::start_or_skip("s3_blobs::a_server_with_an_unreachable_bucket")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(berth_bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--blobs",
            "s3://berth-no-such-bucket",
            "--s3-endpoint",
            &moto.endpoint(),
        ])
        .env("BERTH_S3_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("BERTH_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("BERTH_ROOT_ACCESS_KEY_ID", "AKIABERTHE2E00000001")
        .env("BERTH_ROOT_SECRET_ACCESS_KEY", "secret")
        .stdin(Stdio::null())
        .output()
        .expect("run berth server");
    assert!(
        !out.status.success(),
        "berth server started without its bucket"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NoSuchBucket"), "{err}");
}

/// The bucket behind an https endpoint (moto with a test CA's certificate), trusted through
/// AWS_CA_BUNDLE: an image pushed through Berth's registry API comes back byte for byte.
#[test]
fn blobs_on_an_https_endpoint_trusted_through_aws_ca_bundle() {
    let Some(moto) = MotoServer::start_tls_or_skip("s3_blobs::blobs_on_an_https_endpoint") else {
        return;
    };
    let bucket = unique_bucket_name();
    let ca = moto.ca_bundle().unwrap().to_string_lossy().into_owned();
    let created = Command::new(aws_program())
        .args(["s3api", "create-bucket", "--bucket", &bucket])
        .args([
            "--endpoint-url",
            &moto.endpoint(),
            "--region",
            REGION,
            "--ca-bundle",
            &ca,
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run aws s3api create-bucket");
    assert_ok(&created, "create-bucket over https");
    let s = BerthServer::start_with(ServerOptions {
        args: blobs_flags(&moto, &bucket),
        env: vec![
            ("BERTH_S3_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
            (
                "BERTH_S3_SECRET_ACCESS_KEY".into(),
                SECRET_ACCESS_KEY.into(),
            ),
            ("AWS_CA_BUNDLE".into(), ca),
        ],
        ..ServerOptions::default()
    });
    let name = unique("s3-tls-");
    s.create_repo(&name, &[]);
    let image = berth_e2e::oci::make_image("amd64", "over https");
    let registry = s.registry();
    registry.push_image(&name, "v1", &image);
    let layer = registry.get(&format!("/v2/{name}/blobs/{}", image.layer_digest));
    assert_eq!(layer.status, 200, "{}", layer.describe());
    assert_eq!(layer.body, image.layer);
}
