//! Harness for the end-to-end tests: starts the real `berth` binary on a free port
//! with a temp data dir and drives it with the real clients (`aws`, `docker`,
//! `skopeo`) and a raw HTTP client. A missing tool fails the test with a message
//! naming it; `scripts/test.sh` installs them all.

pub mod docker_agent;
pub mod network;
pub mod official_agent;
pub mod partition;
pub mod service;
pub mod web;

pub use berth_testkit::{
    ACCOUNT_ID, AwsJsonClient, Endpoint, HttpResponse, REGION, ROOT_ACCESS_KEY_ID, Registry, agent,
    basic_auth, http, now_ms, oci, random_secret, sigv4, unique,
};

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A running `aws logs start-live-tail`: each line it prints arrives on `lines` with the
/// time it was read (ms since the epoch). Killed when dropped.
pub struct LiveTail {
    child: Child,
    pub lines: mpsc::Receiver<(String, i64)>,
}

impl Drop for LiveTail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The readiness line the server prints on stdout once it accepts connections.
const READY_PREFIX: &str = "berth listening on http://";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Fails the test clearly when a tool the test drives is not installed.
#[track_caller]
pub fn require_tool(program: &str) {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) => panic!(
            "`{program}` is required by this test and could not be run ({e}); \
             scripts/test.sh installs it"
        ),
    }
}

/// The `aws` CLI: target/venv/bin/aws when present, else the one on PATH.
pub fn aws_program() -> PathBuf {
    let venv = workspace_root().join("target/venv/bin/aws");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("aws")
    }
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command succeeded, with its output in the message otherwise.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    );
}

/// Asserts success and parses stdout as JSON (`null` when empty).
#[track_caller]
pub fn ok_json(out: &Output) -> Value {
    assert_ok(out, "command");
    let s = stdout_of(out);
    if s.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {s}"))
}

/// Asserts the aws CLI failed with the AWS error `code`
/// (`An error occurred (CODE) when calling the ... operation: ...`).
#[track_caller]
pub fn assert_aws_error(out: &Output, code: &str) {
    let stderr = stderr_of(out);
    assert!(
        !out.status.success(),
        "expected {code}, but the command succeeded: {}",
        stdout_of(out)
    );
    assert!(
        stderr.contains(&format!("An error occurred ({code})")),
        "expected error {code}, got status {}\nstderr: {stderr}",
        out.status
    );
}

/// Seconds since the epoch of an AWS timestamp as the CLI prints it: a number
/// (with `cli_timestamp_format = none`, as configured here) or an ISO 8601 string.
#[track_caller]
pub fn epoch_seconds(v: &Value) -> f64 {
    if let Some(n) = v.as_f64() {
        return n;
    }
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    if let Ok(n) = s.parse::<f64>() {
        return n;
    }
    // 2024-01-01T00:00:00[.fff][Z|+00:00]
    let num = |r: std::ops::Range<usize>| -> u32 {
        s.get(r)
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp {s}"))
    };
    let base = sigv4::unix_from_parts(
        i64::from(num(0..4)),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    );
    let tail = &s[19..];
    let tail = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match tail {
        "" | "Z" => 0,
        t if t.len() == 6 => {
            let sign = if t.starts_with('-') { -1 } else { 1 };
            let h: i64 = t[1..3].parse().unwrap();
            let m: i64 = t[4..6].parse().unwrap();
            sign * (h * 3600 + m * 60)
        }
        t => panic!("bad timestamp offset {t} in {s}"),
    };
    (base - offset) as f64
}

/// Extra arguments and environment for a server start.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `up` runs `berth up` (with its built-in capacity); `None` runs `berth server`.
    pub command: Option<&'static str>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Root credentials; random when `None`.
    pub secret_key: Option<String>,
    /// The address to listen on (`--listen IP:0`); 127.0.0.1 when `None`. `0.0.0.0` lets
    /// containers on Docker's bridge reach the server at the bridge's gateway; clients on
    /// the host still use 127.0.0.1.
    pub listen_ip: Option<&'static str>,
}

/// A running `berth server` on 127.0.0.1 with its own data dir, aws config and
/// docker config. Dropping it kills the server, removes every Docker object of its
/// installation (`berth down`: the containers, networks and volumes its agents made) and
/// the images the test tagged; when the test is failing, the server's stderr is printed.
#[derive(Debug)]
pub struct BerthServer {
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    root: TempDir,
    data_dir: PathBuf,
    options: ServerOptions,
    child: Option<Child>,
    images: Mutex<Vec<String>>,
    /// Copies the server's stdout to its log; done once the process has exited.
    stdout_pump: Option<thread::JoinHandle<()>>,
}

impl BerthServer {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .unwrap();
        let data_dir = root.path().join("data");
        fs::create_dir_all(&data_dir).unwrap();
        fs::create_dir_all(root.path().join("docker")).unwrap();
        // Numbers, not formatted dates, for timestamps: `none` prints them as received.
        fs::write(
            root.path().join("aws-config"),
            "[default]\ncli_timestamp_format = none\n",
        )
        .unwrap();
        fs::write(root.path().join("aws-credentials"), "").unwrap();
        let secret_key = options.secret_key.clone().unwrap_or_else(random_secret);
        let mut server = Self {
            port: 0,
            access_key: ROOT_ACCESS_KEY_ID.to_owned(),
            secret_key,
            root,
            data_dir,
            options,
            child: None,
            images: Mutex::new(Vec::new()),
            stdout_pump: None,
        };
        server.spawn(0);
        server
    }

    fn berth_bin() -> PathBuf {
        let bin = std::env::var_os("BERTH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/debug/berth"));
        assert!(
            bin.exists(),
            "berth binary not found at {} (set BERTH_BIN or run `cargo build -p berth`)",
            bin.display()
        );
        bin
    }

    /// Everything of this server's on disk: its data dir, its logs, its clients' configs.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The installation's id (every Docker object of this server's carries it).
    pub fn installation(&self) -> String {
        fs::read_to_string(self.data_dir.join("installation"))
            .expect("the server records its installation id")
            .trim()
            .to_owned()
    }

    /// The Docker network of a subnet of this installation's.
    pub fn network_name(&self, subnet: &str) -> String {
        format!("berth-{}-{subnet}", self.installation())
    }

    /// `berth down --data-dir DATA_DIR ARGS…` (the server must not be running).
    pub fn down(&self, args: &[&str]) -> Output {
        Command::new(Self::berth_bin())
            .arg("down")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .output()
            .expect("run berth down")
    }

    /// `berth SUBCOMMAND --data-dir DATA_DIR ARGS…`, e.g. `metric-filter-counts` (the
    /// server must not be running).
    pub fn berth_offline(&self, subcommand: &str, args: &[&str]) -> Output {
        Command::new(Self::berth_bin())
            .arg(subcommand)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .output()
            .expect("run berth")
    }

    /// `berth accounts ARGS… --endpoint URL --data-dir DATA_DIR` as the default account's
    /// root (its credentials in the environment, as the server has them).
    pub fn berth_accounts(&self, args: &[&str]) -> Output {
        self.berth_accounts_as(&self.access_key, &self.secret_key, args)
    }

    /// `berth accounts ARGS…` signed with another root key pair.
    pub fn berth_accounts_as(&self, key: &str, secret: &str, args: &[&str]) -> Output {
        Command::new(Self::berth_bin())
            .arg("accounts")
            .args(args)
            .arg("--endpoint")
            .arg(self.endpoint())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("BERTH_ROOT_ACCESS_KEY_ID", key)
            .env("BERTH_ROOT_SECRET_ACCESS_KEY", secret)
            .output()
            .expect("run berth accounts")
    }

    /// `berth ARGS…` with nothing added (e.g. `store copy`).
    pub fn berth_plain(&self, args: &[&str]) -> Output {
        Command::new(Self::berth_bin())
            .args(args)
            .output()
            .expect("run berth")
    }

    /// A scratch directory that lives as long as the server.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.root.path().join("scratch").join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn stderr_path(&self) -> PathBuf {
        self.root.path().join("server.stderr.log")
    }

    fn spawn(&mut self, port: u16) {
        if let Err(e) = self.try_spawn(port) {
            panic!("{e}");
        }
    }

    /// Starts the server and waits for readiness; `Err` when it exits first.
    fn try_spawn(&mut self, port: u16) -> Result<(), String> {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap();
        let stdout_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("server.stdout.log"))
            .unwrap();
        let mut cmd = Command::new(Self::berth_bin());
        cmd.arg(self.options.command.unwrap_or("server"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!(
                "{}:{port}",
                self.options.listen_ip.unwrap_or("127.0.0.1")
            ))
            .args(&self.options.args)
            .env("BERTH_ROOT_ACCESS_KEY_ID", &self.access_key)
            .env("BERTH_ROOT_SECRET_ACCESS_KEY", &self.secret_key)
            // Tests that register instances without running an agent keep them connected
            // for the whole test; agent tests pass --agent-timeout-seconds.
            .env("BERTH_AGENT_TIMEOUT_SECONDS", "3600")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("spawn berth server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        self.stdout_pump = Some(thread::spawn(move || {
            let mut log = stdout_log;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                let _ = tx.send(line);
            }
        }));
        let deadline = Instant::now() + Duration::from_secs(60);
        let found = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "berth server exited with {status} before it was ready\nstderr:\n{}",
                    self.stderr_tail()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "berth server printed no `{READY_PREFIX}127.0.0.1:PORT` line within 60 s\nstderr:\n{}",
                    self.stderr_tail()
                );
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix(READY_PREFIX) {
                        let addr = addr.trim_end_matches('/');
                        let port: u16 = addr
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or_else(|| panic!("bad readiness line: {line}"));
                        break port;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(100));
                }
            }
        };
        assert!(
            port == 0 || found == port,
            "server listens on {found}, asked for {port}"
        );
        self.port = found;
        self.child = Some(child);
        self.wait_healthy();
        Ok(())
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http(self.port, "GET", "/health", &[], b"")
                && r.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GET /health never answered 200\nstderr:\n{}",
                self.stderr_tail()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything the server printed on stdout (every start appends to one file).
    pub fn stdout_log(&self) -> String {
        fs::read_to_string(self.root.path().join("server.stdout.log")).unwrap_or_default()
    }

    /// Everything the server wrote to stderr (every start appends to one file), without
    /// terminal colours.
    pub fn stderr_log(&self) -> String {
        let text = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let mut plain = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // An ANSI sequence: ESC [ ... letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the server: a process that stops answering
    /// without dying, then wakes up.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// The last lines of the server's stderr (every start appends to one file).
    pub fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(200)..].join("\n")
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Ctrl-C: SIGINT, then waits for the server to exit (and for what it printed last to
    /// reach `stdout_log`); its exit status.
    pub fn interrupt(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let status = child.wait().ok();
        if let Some(pump) = self.stdout_pump.take() {
            let _ = pump.join();
        }
        status
    }

    /// Starts the server again on the same data dir, on the same port when it is
    /// free again, else on a new one.
    pub fn restart(&mut self) {
        self.kill9();
        let port = self.port;
        if let Err(e) = self.try_spawn(port) {
            eprintln!("restart on port {port} failed, trying a new port: {e}");
            self.spawn(0);
        }
    }

    /// The extra arguments the next start (`restart`) passes, e.g. another `--store`.
    pub fn set_args(&mut self, args: Vec<String>) {
        self.options.args = args;
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Raw SigV4-signed AWS JSON calls to this server.
    pub fn json_client(&self) -> AwsJsonClient {
        Endpoint::json_client(self)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `aws ...` in us-east-1 with the root credentials.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_with(REGION, &self.access_key, &self.secret_key, args)
    }

    /// `aws ...` with the given region and credentials.
    pub fn aws_with(
        &self,
        region: &str,
        access_key: &str,
        secret_key: &str,
        args: &[&str],
    ) -> Output {
        self.aws_command(region, access_key, secret_key, args)
            .stdin(Stdio::null())
            .output()
            .expect("run aws")
    }

    /// The `aws` command `aws_with` runs, for a caller that spawns it (a long-running
    /// `aws logs start-live-tail`, say).
    pub fn aws_command(
        &self,
        region: &str,
        access_key: &str,
        secret_key: &str,
        args: &[&str],
    ) -> Command {
        let program = aws_program();
        require_tool(program.to_str().unwrap());
        let mut command = Command::new(&program);
        command
            .args(args)
            .args([
                "--endpoint-url",
                &self.endpoint(),
                "--region",
                region,
                "--output",
                "json",
            ])
            .env("AWS_ACCESS_KEY_ID", access_key)
            .env("AWS_SECRET_ACCESS_KEY", secret_key)
            .env("AWS_CONFIG_FILE", self.root.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.root.path().join("aws-credentials"),
            )
            .env("AWS_PAGER", "")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // One attempt: an error shows at once and as the server sent it.
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_REGION");
        command
    }

    /// A raw SigV4-signed AWS JSON 1.1 call (`target` like `Logs_20140328.PutLogEvents`),
    /// for tests that need many calls quickly.
    pub fn aws_json(
        &self,
        service: &str,
        target: &str,
        body: &Value,
    ) -> std::io::Result<HttpResponse> {
        self.json_client().call(service, target, body)
    }

    /// `aws logs start-live-tail` on one log group (by ARN), in us-east-1.
    pub fn start_live_tail(&self, group: &str) -> LiveTail {
        let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}");
        let mut child = self
            .aws_command(
                REGION,
                &self.access_key,
                &self.secret_key,
                &["logs", "start-live-tail", "--log-group-identifiers", &arn],
            )
            // The SDKs send StartLiveTail to the `stream-` host prefix; with an endpoint
            // URL that is an IP address that must be turned off.
            .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aws logs start-live-tail");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send((line, now_ms())).is_err() {
                    return;
                }
            }
        });
        LiveTail { child, lines }
    }

    /// `aws ecr create-repository --repository-name NAME [extra]`; returns `repository`.
    #[track_caller]
    pub fn create_repo(&self, name: &str, extra: &[&str]) -> Value {
        let mut args = vec!["ecr", "create-repository", "--repository-name", name];
        args.extend_from_slice(extra);
        let v = ok_json(&self.aws(&args));
        v["repository"].clone()
    }

    /// A fresh registry password from `aws ecr get-login-password`.
    #[track_caller]
    pub fn login_password(&self) -> String {
        let out = self.aws(&["ecr", "get-login-password"]);
        assert_ok(&out, "aws ecr get-login-password");
        let pw = stdout_of(&out).trim().to_owned();
        assert!(!pw.is_empty(), "empty login password");
        pw
    }

    /// `AWS:<password>` for skopeo's `--creds`.
    pub fn registry_creds(&self) -> String {
        format!("AWS:{}", self.login_password())
    }

    /// A raw registry client logged in as `AWS`.
    pub fn registry(&self) -> Registry {
        Registry {
            port: self.port,
            authorization: Some(basic_auth("AWS", &self.login_password())),
        }
    }

    /// `docker ...` with this test's own DOCKER_CONFIG.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_stdin(args, None)
    }

    pub fn docker_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        require_tool("docker");
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.root.path().join("docker"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("wait for docker")
    }

    /// `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`.
    pub fn docker_login(&self) -> Output {
        let pw = self.login_password();
        self.docker_stdin(
            &[
                "login",
                "--username",
                "AWS",
                "--password-stdin",
                &self.host(),
            ],
            Some(&pw),
        )
    }

    /// Remembers an image reference to remove (`docker rmi -f`) when the test ends.
    pub fn track_image(&self, reference: &str) {
        self.images.lock().unwrap().push(reference.to_owned());
    }

    /// Builds the busybox test image as `tag` (tracked for clean-up). Every build
    /// holds a nonce, so its image id is this test's own and `docker rmi` really
    /// removes it.
    #[track_caller]
    pub fn build_test_image(&self, tag: &str) {
        let ctx = self.scratch(&unique("image-"));
        write_test_image_context(&ctx);
        self.docker_build(tag, &ctx, "docker build of the test image");
    }

    /// `docker build -q --no-cache -t TAG CTX` (the image tracked for clean-up), asserted
    /// to succeed. No cache: the legacy builder's cache probe walks every image without a
    /// parent, and another test's `docker rmi` removing one mid-walk fails the build with
    /// "unable to find image sha256:…" (a Docker Engine race, seen in CI).
    #[track_caller]
    pub fn docker_build(&self, tag: &str, ctx: &Path, what: &str) {
        self.track_image(tag);
        let out = self.docker(&[
            "build",
            "-q",
            "--no-cache",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ]);
        assert_ok(&out, what);
    }

    /// Logs docker in, builds the test image as `HOST:PORT/REPO:TAG` and pushes it;
    /// returns that reference.
    #[track_caller]
    pub fn docker_push_test_image(&self, repo: &str, tag: &str) -> String {
        assert_ok(&self.docker_login(), "docker login");
        let reference = format!("{}/{repo}:{tag}", self.host());
        self.build_test_image(&reference);
        assert_ok(&self.docker(&["push", &reference]), "docker push");
        reference
    }

    /// `skopeo ARGS...`.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        require_tool("skopeo");
        Command::new("skopeo")
            .args(args)
            .env(
                "REGISTRY_AUTH_FILE",
                self.root.path().join("skopeo-auth.json"),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run skopeo")
    }
}

impl Drop for BerthServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- berth server stderr ({}) ----\n{}\n---- end of server stderr ----",
                self.stderr_path().display(),
                self.stderr_tail()
            );
        }
        self.kill9();
        if self.data_dir.join("installation").exists() {
            let _ = self.down(&[]);
        }
        let images = std::mem::take(&mut *self.images.lock().unwrap());
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            let _ = Command::new("docker")
                .args(&args)
                .env("DOCKER_CONFIG", self.root.path().join("docker"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Debian's busybox-static binary.
pub fn busybox_path() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("busybox not found: install busybox-static (scripts/test.sh does)")
        })
}

/// A docker build context: `FROM scratch`, a rootfs with busybox and one relative
/// symlink per applet (no RUN step, so nothing needs pulling), a nonce file, and
/// `CMD ["/bin/sh","-c","echo hello from berth"]`.
pub fn write_test_image_context(dir: &Path) {
    let bin = dir.join("rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    let busybox = busybox_path();
    fs::copy(&busybox, bin.join("busybox")).unwrap();
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    assert_ok(&list, "busybox --list");
    for applet in stdout_of(&list).lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    File::create(dir.join("rootfs/etc/berth-nonce"))
        .unwrap()
        .write_all(unique("nonce-").as_bytes())
        .unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\",\"-c\",\"echo hello from berth\"]\n",
    )
    .unwrap();
}

impl Endpoint for BerthServer {
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
