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
        Some(MotoServer::start(&binary))
    }

    /// Starts moto_server on a free port and waits until it accepts connections.
    pub fn start(binary: &std::path::Path) -> MotoServer {
        let mut last_error = String::new();
        // A port picked free can be taken before moto binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let log =
                std::env::temp_dir().join(format!("berth-moto-{port}-{}.log", std::process::id()));
            let log_file = std::fs::File::create(&log).expect("a moto_server log file");
            let mut child = Command::new(binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
                    return MotoServer { child, port, log };
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
        format!("http://127.0.0.1:{}", self.port)
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
