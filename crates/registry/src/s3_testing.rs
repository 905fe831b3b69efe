//! An S3-compatible server for tests: `moto_server` (PyPI's `moto[server]`, which
//! scripts/test.sh installs into target/venv) on a free loopback port, with a bucket of a
//! unique name. Where moto_server is not installed, [`MotoServer::start_or_skip`] says so
//! plainly and the test returns.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{S3BlobStore, S3Config};

/// The credentials moto accepts (it checks none).
pub const ACCESS_KEY_ID: &str = "AKIABERTHTESTMOTO000";
pub const SECRET_ACCESS_KEY: &str = "berth-test-moto-secret";
pub const REGION: &str = "us-east-1";

/// A running moto_server; killed when dropped (its log printed if the test is failing).
pub struct MotoServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
    /// With TLS: its certificate (for 127.0.0.1), key and the test CA that signed it.
    tls: Option<TestCertificates>,
}

/// `BERTH_MOTO_SERVER`, else target/venv/bin/moto_server of this workspace, else
/// `moto_server` on PATH.
pub fn moto_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BERTH_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.exists())
    })
}

impl MotoServer {
    /// A server, or `None` after printing `SKIPPED {test}: …` when moto_server is absent.
    pub fn start_or_skip(test: &str) -> Option<MotoServer> {
        let Some(binary) = moto_server_binary() else {
            eprintln!(
                "SKIPPED {test}: moto_server is not installed (scripts/test.sh installs \
                 moto[server] into target/venv; or set BERTH_MOTO_SERVER)"
            );
            return None;
        };
        Some(MotoServer::start(&binary, false))
    }

    /// The same over https, with certificates made by `openssl` (None, after
    /// saying SKIPPED, without moto_server or openssl).
    pub fn start_tls_or_skip(test: &str) -> Option<MotoServer> {
        let binary = moto_server_binary();
        let openssl = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        match binary {
            Some(binary) if openssl => Some(MotoServer::start(&binary, true)),
            _ => {
                eprintln!(
                    "SKIPPED {test}: moto_server or openssl is not installed (scripts/test.sh \
                     installs moto[server] into target/venv)"
                );
                None
            }
        }
    }

    /// Starts moto_server on a free port and waits until it accepts connections.
    pub fn start(binary: &std::path::Path, tls: bool) -> MotoServer {
        let tls = tls.then(test_certificates);
        let mut last_error = String::new();
        // A port picked free can be taken before moto binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let log =
                std::env::temp_dir().join(format!("berth-moto-{port}-{}.log", std::process::id()));
            let log_file = std::fs::File::create(&log).expect("a moto_server log file");
            let mut command = Command::new(binary);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if let Some(certificates) = &tls {
                command
                    .arg("-c")
                    .arg(&certificates.cert)
                    .arg("-k")
                    .arg(&certificates.key);
            }
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log_file))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let err = std::fs::read_to_string(&log).unwrap_or_default();
                    let _ = std::fs::remove_file(&log);
                    last_error = format!("moto_server exited with {status}: {err}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return MotoServer {
                        child,
                        port,
                        log,
                        tls,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "moto_server did not listen on port {port} within 60 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The certificate to trust (as AWS_CA_BUNDLE) when it serves https.
    pub fn ca_bundle(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(|c| c.ca.as_path())
    }

    /// The configuration of a bucket of this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: self.endpoint(),
            region: REGION.to_owned(),
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            session_token: None,
            ca_bundle: self.ca_bundle().map(std::path::Path::to_path_buf),
        }
    }

    /// A new bucket with a unique name, and a store on it under `prefix`.
    pub async fn bucket(&self, prefix: &str) -> (String, S3BlobStore) {
        let name = unique_bucket_name();
        let store = S3BlobStore::new(&self.config(&name, prefix)).expect("a valid S3 config");
        store.create_bucket().await.expect("CreateBucket on moto");
        (name, store)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("---- moto_server log (last lines) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A test CA's certificate and a certificate for 127.0.0.1 it signed (webpki refuses a
/// CA certificate as the server's own), with the latter's key, made by `openssl` in the
/// temp dir. Returns (CA certificate, server certificate, server key).
fn test_certificates() -> TestCertificates {
    let base =
        std::env::temp_dir().join(format!("berth-moto-tls-{}", uuid::Uuid::new_v4().simple()));
    let file = |ext: &str| base.with_extension(ext);
    std::fs::write(
        file("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the extensions file");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let path = |ext: &str| file(ext).to_string_lossy().into_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=berth-test-ca",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.crt"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &path("key"),
        "-out",
        &path("csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("csr"),
        "-CA",
        &path("ca.crt"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &path("ext"),
        "-out",
        &path("crt"),
    ]);
    TestCertificates {
        ca: file("ca.crt"),
        cert: file("crt"),
        key: file("key"),
        others: ["ext", "csr", "ca.key", "ca.srl"]
            .iter()
            .map(|e| file(e))
            .collect(),
    }
}

struct TestCertificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    others: Vec<PathBuf>,
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        for f in [&self.ca, &self.cert, &self.key]
            .into_iter()
            .chain(&self.others)
        {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `berth-test-{random}`: a valid, unique bucket name.
pub fn unique_bucket_name() -> String {
    format!("berth-test-{}", uuid::Uuid::new_v4().simple())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
