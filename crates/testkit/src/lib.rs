//! The test kit. [`TestServer`] is a whole Berth server (`berth_server::run`) in this
//! process, on a free port, with its own data dir: API contract tests call it through the
//! real HTTP stack, signed by the kit's own SigV4 signer (`sigv4`, written apart from
//! Berth's verifier), without forking a client per call. The rest serves both these tests
//! and the end-to-end tests that drive the real binary: a raw HTTP client (`http`),
//! hand-made OCI images (`oci`), the scripted ECS agent (`agent`).

pub mod agent;
pub mod ecr;
pub mod ecs;
pub mod http;
pub mod logs;
pub mod oci;
pub mod sigv4;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use http::{HttpResponse, Registry, basic_auth, http};

pub const ROOT_ACCESS_KEY_ID: &str = "AKIDBERTHTEST0000001";
pub const ACCOUNT_ID: &str = "000000000000";
pub const REGION: &str = "us-east-1";

/// The ECS, ECR and CloudWatch Logs `X-Amz-Target` prefixes.
pub const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
pub const ECR_TARGET: &str = sigv4::ECR_TARGET_PREFIX;
pub const LOGS_TARGET: &str = "Logs_20140328";
/// SSM's `X-Amz-Target` prefix.
pub const SSM_TARGET: &str = "AmazonSSM";

/// A server the kit's clients can reach: its address and root credentials.
pub trait Endpoint {
    fn port(&self) -> u16;
    fn access_key(&self) -> &str;
    fn secret_key(&self) -> &str;

    /// `127.0.0.1:PORT`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Raw SigV4-signed AWS JSON calls to it.
    fn json_client(&self) -> AwsJsonClient {
        AwsJsonClient {
            port: self.port(),
            host: self.host(),
            region: REGION.to_owned(),
            access_key: self.access_key().to_owned(),
            secret_key: self.secret_key().to_owned(),
        }
    }
}

/// Raw SigV4-signed AWS JSON 1.1 calls to one server.
#[derive(Debug, Clone)]
pub struct AwsJsonClient {
    port: u16,
    host: String,
    region: String,
    access_key: String,
    secret_key: String,
}

impl AwsJsonClient {
    /// The same client signing with other credentials (an IAM user's access key).
    pub fn with_keys(mut self, access_key: &str, secret_key: &str) -> AwsJsonClient {
        self.access_key = access_key.to_owned();
        self.secret_key = secret_key.to_owned();
        self
    }

    /// The same client signing for another region.
    pub fn in_region(mut self, region: &str) -> AwsJsonClient {
        self.region = region.to_owned();
        self
    }

    pub fn call(&self, service: &str, target: &str, body: &Value) -> std::io::Result<HttpResponse> {
        let body = serde_json::to_vec(body).unwrap();
        let headers = sigv4::sign_json_request(
            &self.host,
            &self.region,
            service,
            &self.access_key,
            &self.secret_key,
            target,
            &body,
            sigv4::now_unix(),
        );
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http(self.port, "POST", "/", &refs, &body)
    }
}

impl AwsJsonClient {
    /// A signed AWS Query protocol call (`form` like `Action=GetCallerIdentity&Version=…`)
    /// to `service`, signed for `region`.
    pub fn query(&self, service: &str, region: &str, form: &str) -> std::io::Result<HttpResponse> {
        let headers = sigv4::sign_query_request(
            &self.host,
            region,
            service,
            (&self.access_key, &self.secret_key),
            form.as_bytes(),
            sigv4::now_unix(),
        );
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http(self.port, "POST", "/", &refs, form.as_bytes())
    }
}

impl AwsJsonClient {
    /// A signed Smithy RPC v2 CBOR call: `body` (CBOR) to `operation` of `service_name`
    /// (the path's service, e.g. `GraniteServiceVersion20100801`), signed for `service`.
    pub fn cbor(
        &self,
        service: &str,
        service_name: &str,
        operation: &str,
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        let path = format!("/service/{service_name}/operation/{operation}");
        let mut headers = sigv4::sign_cbor_request(
            &self.host,
            &self.region,
            service,
            (&self.access_key, &self.secret_key),
            &path,
            body,
            sigv4::now_unix(),
        );
        headers.push(("smithy-protocol".into(), "rpc-v2-cbor".into()));
        headers.push(("Accept".into(), "application/cbor".into()));
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http(self.port, "POST", &path, &refs, body)
    }
}

/// An AWS JSON API's answer: the HTTP status and the body as JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body of a 200 answer; any other fails the test, showing the error.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {:#}", self.body);
        self.body
    }

    /// The error's code (`__type`, without a namespace prefix); fails the test on success.
    #[track_caller]
    pub fn error(&self) -> &str {
        assert_ne!(self.status, 200, "expected an error, got {:#}", self.body);
        let code = self.body["__type"].as_str().unwrap_or_default();
        code.rsplit('#').next().unwrap_or(code)
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        self.body["message"]
            .as_str()
            .or_else(|| self.body["Message"].as_str())
            .unwrap_or_default()
    }

    /// Fails the test unless this is an error with `code`.
    #[track_caller]
    pub fn expect_error(&self, code: &str) -> &Answer {
        assert_eq!(self.error(), code, "{:#}", self.body);
        self
    }
}

/// A Berth server running in this process (its own tokio runtime on a thread), on a free
/// port of 127.0.0.1, with a temporary data dir and fixed root credentials; stopped and its
/// data dir removed when dropped.
pub struct TestServer {
    port: u16,
    pub access_key: String,
    pub secret_key: String,
    data_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint for TestServer {
    fn port(&self) -> u16 {
        self.port
    }
    fn access_key(&self) -> &str {
        &self.access_key
    }
    fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl TestServer {
    /// A `berth server` with its defaults (no built-in capacity).
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server whose configuration `adjust` may change first.
    pub fn start_with(adjust: impl FnOnce(&mut berth_server::ServerConfig)) -> TestServer {
        let data_dir = tempfile::Builder::new()
            .prefix("berth-kit-")
            .tempdir()
            .unwrap();
        let mut config = berth_server::ServerConfig::new(data_dir.path());
        config.root_credentials = Some(berth_api::RootCredentials {
            access_key_id: ROOT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: random_secret(),
        });
        // Instances registered through the API without an agent stay connected.
        config.agent_timeout = Duration::from_secs(3600);
        adjust(&mut config);
        // `adjust` may have given other root credentials (two servers sharing a secret).
        let credentials = config
            .root_credentials
            .clone()
            .expect("the test server has root credentials");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let served = berth_server::run(
                    config,
                    listener,
                    async move {
                        let _ = stopped.await;
                    },
                    |_| ready_tx.send(Ok(port)).unwrap(),
                )
                .await;
                if let Err(e) = served {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            });
        });
        let port = ready
            .recv_timeout(Duration::from_secs(30))
            .expect("the in-process server starts")
            .unwrap_or_else(|e| panic!("the in-process server failed to start: {e}"));
        TestServer {
            port,
            access_key: credentials.access_key_id,
            secret_key: credentials.secret_access_key,
            data_dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.host())
    }

    /// One AWS JSON call: `target` is `Prefix.Operation`; signed for `service`.
    pub fn call(&self, service: &str, target: &str, body: Value) -> Answer {
        self.call_in(REGION, service, target, body)
    }

    /// [`TestServer::call`] in another region.
    pub fn call_in(&self, region: &str, service: &str, target: &str, body: Value) -> Answer {
        let response = self
            .json_client()
            .in_region(region)
            .call(service, target, &body)
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or_else(|e| {
                panic!("{target}: answer is not JSON ({e}): {}", response.text())
            })
        };
        Answer {
            status: response.status,
            body,
        }
    }

    /// An ECS operation (`"CreateCluster"`, …).
    pub fn ecs(&self, operation: &str, body: Value) -> Answer {
        self.call("ecs", &format!("{ECS_TARGET}.{operation}"), body)
    }

    /// An ECR operation.
    pub fn ecr(&self, operation: &str, body: Value) -> Answer {
        self.call("ecr", &format!("{ECR_TARGET}.{operation}"), body)
    }

    /// A CloudWatch Logs operation.
    pub fn logs(&self, operation: &str, body: Value) -> Answer {
        self.call("logs", &format!("{LOGS_TARGET}.{operation}"), body)
    }

    /// An SSM operation (`"PutParameter"`, …).
    pub fn ssm(&self, operation: &str, body: Value) -> Answer {
        self.call("ssm", &format!("{SSM_TARGET}.{operation}"), body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Milliseconds since the epoch, as CloudWatch Logs timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A name unique across processes and calls: lowercase letters and digits.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    format!("{prefix}{}", &oci::sha256_hex(seed.as_bytes())[..10])
}

/// 40 random characters from the secret-key alphabet.
pub fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    let mut round = 0;
    while out.len() < 40 {
        let h = oci::sha256_hex(format!("{}{round}", unique("s")).as_bytes());
        for pair in h.as_bytes().chunks(2) {
            let n = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
            out.push(ALPHABET[usize::from(n) % ALPHABET.len()] as char);
        }
        round += 1;
    }
    out.truncate(40);
    out
}
