//! `DockerRuntime` against the machine's real Docker Engine. Nothing is pulled: each test
//! builds its own image `FROM scratch` with a static busybox (Debian's `busybox-static`)
//! through the docker CLI, tags and labels everything uniquely so tests run in parallel, and
//! removes its containers, volumes and image when it ends, failed or not.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::{
    ContainerEventKind, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, CpuQuota,
    DockerRuntime, EventStream, HealthCheck, HealthStatus, LogConfig, LogFrame, LogSource,
    MountSpec, NetworkMode, NetworkSpec, PortMapping, Protocol, RegistryAuth, RuntimeError,
    VolumeSpec,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LABEL: &str = "berth.runtime-test";
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "httpd", "sleep", "cat", "echo", "id", "test", "touch", "true", "false", "head", "tr",
    "printf",
];

/// One test's image, label and Docker connection; cleans up after the test on drop.
struct Fixture {
    runtime: DockerRuntime,
    image: String,
    run: String,
    page: String,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        let runtime = DockerRuntime::connect().await.unwrap_or_else(|e| {
            panic!(
                "these tests need a running Docker Engine (DOCKER_HOST or \
                 /var/run/docker.sock): {e}"
            )
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let run = format!("{test}-{}-{nanos}", std::process::id());
        let image = format!("berth-runtime-test:{run}");
        let page = format!("hello from {run}");
        let fixture = Fixture {
            runtime,
            image,
            run,
            page,
        };
        fixture.build_image();
        fixture
    }

    /// `FROM scratch` + static busybox + applet links + a page for httpd.
    fn build_image(&self) {
        assert!(
            is_static_elf(Path::new(BUSYBOX)),
            "{BUSYBOX} must be a statically linked busybox: apt-get install -y busybox-static"
        );
        let context = tempfile::tempdir().unwrap();
        let root = context.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("www/index.html"), &self.page).unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        )
        .unwrap();
        // --no-cache: every test gets an image of its own, so one test removing its image
        // never races another building from the same cached layers.
        let output = Command::new("docker")
            .args(["build", "--quiet", "--no-cache", "--tag", &self.image])
            .arg(context.path())
            .output()
            .unwrap_or_else(|e| panic!("the docker CLI is needed to build the test image: {e}"));
        assert!(
            output.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn label(&self) -> [(&str, &str); 1] {
        [(LABEL, self.run.as_str())]
    }

    fn spec(&self, command: &[&str]) -> ContainerSpec {
        ContainerSpec {
            image: self.image.clone(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            labels: BTreeMap::from([(LABEL.to_owned(), self.run.clone())]),
            ..Default::default()
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> ContainerId {
        let id = self.runtime.create_container(spec).await.unwrap();
        self.runtime.start_container(&id).await.unwrap();
        id
    }

    async fn events(&self) -> EventStream {
        self.runtime.events(&self.label()).await.unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let filter = format!("label={LABEL}={}", self.run);
        let listed = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = listed(&["ps", "--all", "--quiet", "--filter", &filter]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes"])
                .args(&containers)
                .output();
        }
        let volumes = listed(&["volume", "ls", "--quiet", "--filter", &filter]);
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "--force"])
                .args(&volumes)
                .output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "--force", &self.image])
            .output();
    }
}

/// An ELF executable without a PT_INTERP program header needs no dynamic loader, so it runs
/// in an empty image.
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u64_at = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word) as usize
    };
    let (offset, size, count) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = offset + i * size;
        at + 4 <= bytes.len() && u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) != 3
    })
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / until the server answers 200 (Docker's proxy accepts before the server listens).
async fn fetch_page(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
            stream
                .write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        match attempt.await {
            Ok(response) if response.starts_with("HTTP/1.") && response.contains(" 200 ") => {
                return response;
            }
            other => assert!(
                Instant::now() < deadline,
                "no page from 127.0.0.1:{port}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next event of `id` satisfying `wanted`, or a panic after `within`.
async fn next_event(
    events: &mut EventStream,
    id: &ContainerId,
    within: Duration,
    wanted: impl Fn(&ContainerEventKind) -> bool,
) -> ContainerEventKind {
    tokio::time::timeout(within, async {
        loop {
            let event = events.next().await.expect("event stream ended").unwrap();
            if &event.id == id && wanted(&event.kind) {
                return event.kind;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no such event for {id} within {within:?}"))
}

fn httpd(fixture: &Fixture, mapping: PortMapping) -> ContainerSpec {
    ContainerSpec {
        port_mappings: vec![mapping],
        ..fixture.spec(&["httpd", "-f", "-p", "80", "-h", "/www"])
    }
}

#[tokio::test]
async fn info_reports_the_host() {
    let runtime = DockerRuntime::connect()
        .await
        .expect("Docker Engine is needed");
    let info = runtime.info().await.unwrap();
    assert!(!info.server_version.is_empty());
    assert!(info.api_version.starts_with("1."), "{info:?}");
    assert!(info.cpus >= 1);
    assert!(info.memory_bytes > 64 << 20);
    assert_eq!(info.os_type, "linux");
    assert!(!info.architecture.is_empty());
}

#[tokio::test]
async fn images_present_absent_and_failing_to_pull() {
    let fixture = Fixture::new("images").await;
    let runtime = &fixture.runtime;
    assert!(runtime.image_present(&fixture.image).await.unwrap());
    let absent = format!("berth-runtime-absent:{}", fixture.run);
    assert!(!runtime.image_present(&absent).await.unwrap());

    // A plain-HTTP registry on loopback that nobody runs: Docker tries it (loopback is
    // insecure by default) and the pull fails cleanly.
    let auth = RegistryAuth {
        username: "AWS".into(),
        password: "token".into(),
        server_address: format!("127.0.0.1:{}", free_port()),
    };
    let image = format!("{}/nothing/here:v1", auth.server_address);
    match runtime.pull_image(&image, Some(&auth)).await {
        Err(RuntimeError::ImagePull { image: failed, .. }) => assert_eq!(failed, image),
        other => panic!("expected ImagePull, got {other:?}"),
    }
}

#[tokio::test]
async fn a_static_host_port_serves_the_page() {
    let fixture = Fixture::new("static-port").await;
    let port = free_port();
    let spec = httpd(
        &fixture,
        PortMapping {
            container_port: 80,
            host_port: Some(port),
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".into()),
        },
    );
    let id = fixture.run(&spec).await;
    let response = fetch_page(port).await;
    assert!(response.contains(&fixture.page), "{response}");

    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::Running);
    assert_eq!(status.port_bindings.len(), 1, "{:?}", status.port_bindings);
    assert_eq!(status.port_bindings[0].host_port, port);
    assert_eq!(status.port_bindings[0].host_ip, "127.0.0.1");
    assert!(status.ip_address.is_some());

    // A second container on the same host port is refused when it starts.
    let second = fixture.runtime.create_container(&spec).await.unwrap();
    match fixture.runtime.start_container(&second).await {
        Err(RuntimeError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dynamic_host_port_is_reported_and_answers() {
    let fixture = Fixture::new("dynamic-port").await;
    let spec = httpd(
        &fixture,
        PortMapping {
            container_port: 80,
            host_port: None,
            ..Default::default()
        },
    );
    let id = fixture.run(&spec).await;
    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    let binding = status
        .port_bindings
        .iter()
        .find(|b| b.container_port == 80 && b.protocol == Protocol::Tcp)
        .expect("port 80 bound");
    assert_ne!(binding.host_port, 0);
    let response = fetch_page(binding.host_port).await;
    assert!(response.contains(&fixture.page), "{response}");
}

#[tokio::test]
async fn the_exit_code_of_a_container() {
    let fixture = Fixture::new("exit-code").await;
    let id = fixture.run(&fixture.spec(&["sh", "-c", "exit 3"])).await;
    assert_eq!(fixture.runtime.wait_exit(&id).await.unwrap(), 3);
    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::Exited);
    assert_eq!(status.exit_code, Some(3));
    assert!(!status.oom_killed);
    let (started, finished) = (status.started_at.unwrap(), status.finished_at.unwrap());
    assert!(finished >= started);
}

/// The log as the agent's awslogs shipper reads it: both streams, timestamped entries, long
/// lines in partial entries, followed until the container ends, and resumed from a time.
#[tokio::test]
async fn logs_are_followed_with_timestamps_partials_and_since() {
    let fixture = Fixture::new("logs").await;
    let mut spec = fixture.spec(&[
        "sh",
        "-c",
        "echo out1; echo err1 >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; \
         sleep 1; echo late; printf tail",
    ]);
    spec.log_config = Some(LogConfig {
        driver: "json-file".into(),
        options: BTreeMap::new(),
    });
    let id = fixture.run(&spec).await;
    let frames: Vec<LogFrame> = fixture
        .runtime
        .logs(&id, None, true)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    // `follow` ended with the container.
    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::Exited);
    let text = |frame: &LogFrame| String::from_utf8_lossy(&frame.bytes).into_owned();
    let stderr: Vec<String> = frames
        .iter()
        .filter(|f| f.source == LogSource::Stderr)
        .map(text)
        .collect();
    assert_eq!(stderr, ["err1\n"]);
    let stdout: Vec<&LogFrame> = frames
        .iter()
        .filter(|f| f.source == LogSource::Stdout)
        .collect();
    assert_eq!(text(stdout[0]), "out1\n");
    // The 40000-byte line comes in partial entries (no newline) ended by a complete one.
    let long_end = stdout
        .iter()
        .position(|f| f.bytes.len() > 1 && f.bytes.ends_with(b"x\n"))
        .expect("the long line's last entry");
    let long: Vec<u8> = stdout[1..=long_end]
        .iter()
        .flat_map(|f| f.bytes.iter().copied())
        .collect();
    assert!(
        long_end >= 3,
        "a 40000-byte line is split in 16 KiB entries"
    );
    assert!(
        stdout[1..long_end]
            .iter()
            .all(|f| !f.bytes.ends_with(b"\n"))
    );
    assert_eq!(long.len(), 40001);
    assert_eq!(text(stdout[long_end + 1]), "late\n");
    for pair in stdout.windows(2) {
        assert!(pair[0].timestamp <= pair[1].timestamp);
    }
    // Docker 20.10 may end a follow without the last entries written just before the
    // container stopped (here the unterminated `tail`); reading again once it has stopped
    // has them. The shipper does that.
    let again: Vec<LogFrame> = fixture
        .runtime
        .logs(&id, None, false)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(again[..frames.len()], frames[..]);
    assert_eq!(text(again.last().unwrap()), "tail", "no newline was added");

    // From a time, to the nanosecond, without following: the entries at or after it.
    let late = stdout[long_end + 1].clone();
    let since: Vec<String> = fixture
        .runtime
        .logs(&id, Some(late.timestamp), false)
        .await
        .unwrap()
        .map(|frame| text(&frame.unwrap()))
        .collect()
        .await;
    assert_eq!(since.len(), 2, "{since:?}");
    assert_eq!(since[0], "late\n");
    let after = late.timestamp + time::Duration::nanoseconds(1);
    let rest = fixture.runtime.logs(&id, Some(after), false).await.unwrap();
    assert_eq!(rest.count().await, 1);
}

#[tokio::test]
async fn stop_kills_a_container_that_ignores_sigterm_after_the_timeout() {
    let fixture = Fixture::new("stop-timeout").await;
    // A one-second request timeout: stop must still wait out its own two seconds.
    let runtime = fixture
        .runtime
        .clone()
        .with_request_timeout(Duration::from_secs(1));
    let id = fixture
        .run(&fixture.spec(&["sh", "-c", "trap '' TERM; sleep 1000"]))
        .await;
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    runtime
        .stop_container(&id, Duration::from_secs(2))
        .await
        .unwrap();
    let took = began.elapsed();
    // It waited out the 2 s grace (longer than the 1 s request timeout) before the SIGKILL;
    // a loaded machine only makes it longer, so there is no upper bound.
    assert!(took >= Duration::from_millis(1900), "stop took {took:?}");
    let status = runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.exit_code, Some(137));
    // Stopping again is a no-op.
    runtime
        .stop_container(&id, Duration::from_secs(2))
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_with_init_ends_the_process_with_sigterm() {
    let fixture = Fixture::new("stop-init").await;
    let spec = ContainerSpec {
        init: true,
        ..fixture.spec(&["sleep", "1000"])
    };
    let id = fixture.run(&spec).await;
    // Stop only once the init process runs `sleep`: it forks its child after installing its
    // signal handlers, and a SIGTERM sent before that to PID 1 without a handler is dropped
    // (on a loaded host the stop could otherwise arrive first and wait out the timeout).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let top = std::process::Command::new("docker")
            .args(["top", id.as_str()])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&top.stdout).contains("sleep 1000") {
            break;
        }
        assert!(Instant::now() < deadline, "sleep never started under init");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fixture
        .runtime
        .stop_container(&id, Duration::from_secs(20))
        .await
        .unwrap();
    // 143: SIGTERM ended it (a stop that waited out the 20 s timeout would be SIGKILL, 137).
    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.exit_code, Some(143));
}

#[tokio::test]
async fn health_checks_turn_healthy_and_unhealthy() {
    let fixture = Fixture::new("health").await;
    let mut events = fixture.events().await;
    let with_check = |command: &str, interval: u32| ContainerSpec {
        health_check: Some(HealthCheck {
            command: vec!["CMD-SHELL".into(), command.into()],
            interval_secs: Some(interval),
            timeout_secs: Some(2),
            retries: Some(1),
            start_period_secs: None,
        }),
        ..fixture.spec(&["sleep", "1000"])
    };
    // Before its first check (a minute away) a container's health is `starting`. (Asking a
    // container checked every second raced its first check on a loaded host.)
    let pending = fixture.run(&with_check("exit 0", 60)).await;
    assert_eq!(
        fixture
            .runtime
            .inspect_container(&pending)
            .await
            .unwrap()
            .health,
        HealthStatus::Starting
    );
    let good = fixture.run(&with_check("exit 0", 1)).await;
    let bad = fixture.run(&with_check("exit 1", 1)).await;

    // One stream carries both containers' events, subscribed before either started.
    let mut seen = std::collections::HashMap::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while seen.len() < 2 {
            let event = events.next().await.expect("event stream ended").unwrap();
            if let ContainerEventKind::Health(health) = event.kind {
                seen.insert(event.id, health);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("health events so far: {seen:?}"));
    assert_eq!(seen[&good], HealthStatus::Healthy);
    assert_eq!(seen[&bad], HealthStatus::Unhealthy);
    assert_eq!(
        fixture
            .runtime
            .inspect_container(&good)
            .await
            .unwrap()
            .health,
        HealthStatus::Healthy
    );
    assert_eq!(
        fixture
            .runtime
            .inspect_container(&bad)
            .await
            .unwrap()
            .health,
        HealthStatus::Unhealthy
    );
}

#[tokio::test]
async fn list_by_label_finds_exactly_this_tests_containers() {
    let fixture = Fixture::new("list").await;
    let created = fixture
        .runtime
        .create_container(&fixture.spec(&["true"]))
        .await
        .unwrap();
    let exited = fixture.run(&fixture.spec(&["true"])).await;
    fixture.runtime.wait_exit(&exited).await.unwrap();

    let listed = fixture
        .runtime
        .list_containers(&fixture.label())
        .await
        .unwrap();
    let mut ids: Vec<_> = listed.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut expected = vec![created.clone(), exited.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let state_of = |id: &ContainerId| listed.iter().find(|c| &c.id == id).unwrap().state;
    assert_eq!(state_of(&created), ContainerState::Created);
    assert_eq!(state_of(&exited), ContainerState::Exited);
    assert!(listed.iter().all(|c| c.image == fixture.image));
    assert!(listed.iter().all(|c| c.labels[LABEL] == fixture.run));

    let nobody = fixture
        .runtime
        .list_containers(&[(LABEL, "no-such-run")])
        .await
        .unwrap();
    assert!(nobody.is_empty());
}

#[tokio::test]
async fn events_report_start_exit_and_removal_promptly() {
    let fixture = Fixture::new("events").await;
    let mut events = fixture.events().await;
    // The stream is first polled only after the start: the subscription must still have
    // begun when `events` returned.
    let id = fixture
        .run(&fixture.spec(&["sh", "-c", "sleep 1; exit 5"]))
        .await;
    let any = |_: &ContainerEventKind| true;
    let within = Duration::from_secs(10);
    assert_eq!(
        next_event(&mut events, &id, within, any).await,
        ContainerEventKind::Started
    );
    assert_eq!(
        next_event(&mut events, &id, within, any).await,
        ContainerEventKind::Died { exit_code: Some(5) }
    );
    fixture.runtime.remove_container(&id).await.unwrap();
    assert_eq!(
        next_event(&mut events, &id, within, any).await,
        ContainerEventKind::Destroyed
    );
}

#[tokio::test]
async fn wait_and_events_outlive_the_request_timeout() {
    let fixture = Fixture::new("long-wait").await;
    let runtime = fixture
        .runtime
        .clone()
        .with_request_timeout(Duration::from_secs(1));
    let mut events = runtime.events(&fixture.label()).await.unwrap();
    let id = fixture
        .run(&fixture.spec(&["sh", "-c", "sleep 3; exit 4"]))
        .await;
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 4);
    let died = |kind: &ContainerEventKind| matches!(kind, ContainerEventKind::Died { .. });
    assert_eq!(
        next_event(&mut events, &id, Duration::from_secs(5), died).await,
        ContainerEventKind::Died { exit_code: Some(4) }
    );
}

#[tokio::test]
async fn env_working_dir_user_and_labels_take_effect() {
    let fixture = Fixture::new("process").await;
    let mut spec = fixture.spec(&[
        "sh",
        "-c",
        r#"test "$FOO" = "bar baz" && test "$(pwd)" = /work && test "$(id -u)" = 1234 && exit 7"#,
    ]);
    spec.env = vec![("FOO".into(), "bar baz".into())];
    spec.working_dir = Some("/work".into());
    spec.user = Some("1234:1234".into());
    spec.labels.insert("team".into(), "runtime".into());
    spec.name = Some(format!("berth-{}", fixture.run));
    let id = fixture.run(&spec).await;
    // 7 only if every check passed inside the container.
    assert_eq!(fixture.runtime.wait_exit(&id).await.unwrap(), 7);

    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert!(
        status.env.contains(&"FOO=bar baz".to_owned()),
        "{:?}",
        status.env
    );
    assert_eq!(status.working_dir, "/work");
    assert_eq!(status.user, "1234:1234");
    assert_eq!(status.labels["team"], "runtime");
    assert_eq!(status.name, format!("berth-{}", fixture.run));
    assert_eq!(status.image, fixture.image);

    // The name is taken now; it also works as an id.
    match fixture.runtime.create_container(&spec).await {
        Err(RuntimeError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let by_name = ContainerId::from(format!("berth-{}", fixture.run));
    assert_eq!(
        fixture
            .runtime
            .inspect_container(&by_name)
            .await
            .unwrap()
            .id,
        id
    );
}

#[tokio::test]
async fn stats_limits_and_the_bridge_gateway() {
    let fixture = Fixture::new("stats").await;
    let mut spec = fixture.spec(&["sh", "-c", "while true; do :; done"]);
    spec.memory_mib = Some(32);
    spec.cpu_quota = Some(CpuQuota {
        quota_us: 20_000,
        period_us: 100_000,
    });
    let id = fixture.run(&spec).await;
    let first = fixture.runtime.stats(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = fixture.runtime.stats(&id).await.unwrap();
    assert_eq!(second.memory_limit_bytes, Some(32 << 20));
    assert!(second.memory_usage_bytes > 0);
    assert_eq!(second.document["id"], id.as_str());
    // A busy loop capped at a fifth of a CPU uses about that much.
    let used = (second.cpu_total_ns - first.cpu_total_ns) as f64;
    let elapsed = (second.read - first.read).whole_nanoseconds() as f64;
    let share = used / elapsed;
    assert!((0.05..0.35).contains(&share), "CPU share {share}");

    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert!(
        status.image_id.starts_with("sha256:"),
        "{}",
        status.image_id
    );
    assert!(status.created_at.is_some());

    let gateway = fixture.runtime.bridge_gateway().await.unwrap().unwrap();
    let gateway: std::net::Ipv4Addr = gateway.parse().unwrap();
    let address: std::net::Ipv4Addr = status.ip_address.unwrap().parse().unwrap();
    // The container's address is on the gateway's network.
    assert_eq!(address.octets()[..2], gateway.octets()[..2]);
}

#[tokio::test]
async fn bind_mounts_and_named_volumes() {
    let fixture = Fixture::new("mounts").await;
    let runtime = &fixture.runtime;
    let host = tempfile::tempdir().unwrap();
    let input = host.path().join("in");
    let output = host.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("in.txt"), "from the host").unwrap();
    let binds = vec![
        MountSpec::Bind {
            host_path: input.display().to_string(),
            container_path: "/in".into(),
            read_only: true,
        },
        MountSpec::Bind {
            // Does not exist yet: Docker creates it, as ECS host volumes expect.
            host_path: output.display().to_string(),
            container_path: "/out".into(),
            read_only: false,
        },
    ];
    let copy = ContainerSpec {
        mounts: binds.clone(),
        ..fixture.spec(&["sh", "-c", "cat /in/in.txt > /out/copy.txt"])
    };
    let id = fixture.run(&copy).await;
    assert_eq!(runtime.wait_exit(&id).await.unwrap(), 0);
    assert_eq!(
        std::fs::read_to_string(output.join("copy.txt")).unwrap(),
        "from the host"
    );
    let write_read_only = ContainerSpec {
        mounts: binds,
        ..fixture.spec(&["sh", "-c", "touch /in/nope"])
    };
    let id = fixture.run(&write_read_only).await;
    assert_ne!(runtime.wait_exit(&id).await.unwrap(), 0);

    let volume = VolumeSpec {
        name: format!("berth-{}", fixture.run),
        labels: BTreeMap::from([(LABEL.to_owned(), fixture.run.clone())]),
        ..Default::default()
    };
    runtime.create_volume(&volume).await.unwrap();
    runtime.create_volume(&volume).await.unwrap();
    let on_volume = |command: &str| ContainerSpec {
        mounts: vec![MountSpec::Volume {
            name: volume.name.clone(),
            container_path: "/data".into(),
            read_only: false,
        }],
        ..fixture.spec(&["sh", "-c", command])
    };
    let writer = fixture.run(&on_volume("echo kept > /data/file")).await;
    assert_eq!(runtime.wait_exit(&writer).await.unwrap(), 0);
    let reader = fixture
        .run(&on_volume(r#"test "$(cat /data/file)" = kept"#))
        .await;
    assert_eq!(runtime.wait_exit(&reader).await.unwrap(), 0);

    match runtime.remove_volume(&volume.name).await {
        Err(RuntimeError::Conflict(_)) => {}
        other => panic!("a volume in use must not be removed: {other:?}"),
    }
    runtime.remove_container(&writer).await.unwrap();
    runtime.remove_container(&reader).await.unwrap();
    runtime.remove_volume(&volume.name).await.unwrap();
    match runtime.remove_volume(&volume.name).await {
        Err(RuntimeError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn remove_kills_a_running_container() {
    let fixture = Fixture::new("remove").await;
    let id = fixture.run(&fixture.spec(&["sleep", "1000"])).await;
    fixture.runtime.remove_container(&id).await.unwrap();
    match fixture.runtime.inspect_container(&id).await {
        Err(RuntimeError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    match fixture.runtime.remove_container(&id).await {
        Err(RuntimeError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_docker_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on any more: connection refused.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let missing = dir.path().join("missing.sock");
    for host in [
        format!("unix://{}", dead.display()),
        dead.display().to_string(),
        format!("unix://{}", missing.display()),
    ] {
        match DockerRuntime::connect_with_host(&host).await {
            Err(RuntimeError::Unavailable(message)) => assert!(!message.is_empty()),
            other => panic!("{host}: expected Unavailable, got {other:?}"),
        }
    }
    // An address Berth cannot use is a configuration error, not worth waiting for.
    match DockerRuntime::connect_with_host("tcp://127.0.0.1:2375").await {
        Err(RuntimeError::Other(message)) => assert!(message.contains("not supported")),
        other => panic!("tcp: expected Other, got {other:?}"),
    }
}

/// What a warm infra container goes through: started with no network, taken off `none`,
/// then connected to a subnet's network with a fixed address and MAC and renamed. A second
/// container asking for the same address on that network is refused.
#[tokio::test]
async fn a_container_started_without_a_network_joins_one_with_a_fixed_address() {
    let fixture = Fixture::new("connect").await;
    let octet = 1 + rand_octet(&fixture.run);
    let network = NetworkSpec {
        name: format!("berth-runtime-test-{}", fixture.run),
        subnet: format!("10.251.{octet}.0/24"),
        gateway: format!("10.251.{octet}.1"),
        labels: BTreeMap::from([(LABEL.to_owned(), fixture.run.clone())]),
    };
    /// Removes the network (after the test's containers, which the fixture would remove
    /// only after this guard is dropped).
    struct RemoveNetwork(String, String);
    impl Drop for RemoveNetwork {
        fn drop(&mut self) {
            let filter = format!("label={LABEL}={}", self.1);
            if let Ok(out) = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output()
            {
                let ids = String::from_utf8_lossy(&out.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker").args(["rm", "-f"]).args(ids).output();
                }
            }
            let _ = Command::new("docker")
                .args(["network", "rm", &self.0])
                .output();
        }
    }
    fixture.runtime.ensure_network(&network).await.unwrap();
    let _remove = RemoveNetwork(network.name.clone(), fixture.run.clone());

    let detached = |name: &str| ContainerSpec {
        network_mode: NetworkMode::None,
        name: Some(name.to_owned()),
        ..fixture.spec(&["sleep", "1000"])
    };
    let first_name = format!("{}-a", fixture.run);
    let id = fixture.run(&detached(&first_name)).await;
    fixture
        .runtime
        .disconnect_network(&id, "none")
        .await
        .unwrap();
    assert_eq!(
        fixture
            .runtime
            .inspect_container(&id)
            .await
            .unwrap()
            .ip_address,
        None
    );
    let ip = format!("10.251.{octet}.9");
    // Docker's bridge driver derives a MAC from the address (02:42 + its four bytes), and
    // Docker 20.10 (API 1.41) takes no other on connect: ECS's MAC in Berth is that one.
    let mac = format!("02:42:0a:fb:{octet:02x}:09");
    fixture
        .runtime
        .connect_network(&id, &network.name, &ip, Some(&mac))
        .await
        .unwrap();
    let renamed = format!("{}-renamed", fixture.run);
    fixture
        .runtime
        .rename_container(&id, &renamed)
        .await
        .unwrap();
    let status = fixture.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some(ip.as_str()));
    assert_eq!(status.name, renamed);
    let inspected = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            id.as_str(),
        ])
        .output()
        .unwrap();
    let networks: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(networks[&network.name]["MacAddress"], mac.as_str());

    let other = fixture.run(&detached(&format!("{}-b", fixture.run))).await;
    fixture
        .runtime
        .disconnect_network(&other, "none")
        .await
        .unwrap();
    match fixture
        .runtime
        .connect_network(&other, &network.name, &ip, None)
        .await
    {
        Err(RuntimeError::Conflict(_)) => {}
        other => panic!("expected Conflict for an address in use, got {other:?}"),
    }
    match fixture
        .runtime
        .connect_network(&other, "berth-runtime-test-no-such-network", &ip, None)
        .await
    {
        Err(RuntimeError::NotFound(_)) => {}
        other => panic!("expected NotFound for a missing network, got {other:?}"),
    }
    match fixture.runtime.rename_container(&other, &renamed).await {
        Err(RuntimeError::Conflict(_)) => {}
        other => panic!("expected Conflict for a name in use, got {other:?}"),
    }
}

/// 0..=253 from a test run's name, so parallel runs rarely pick the same subnet.
fn rand_octet(run: &str) -> u32 {
    run.bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 254
}
