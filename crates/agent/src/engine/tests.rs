//! The engine against the simulated runtime and a recording fake control plane.

use std::sync::atomic::{AtomicUsize, Ordering};

use berth_runtime::{SimulatedRuntime, SimulationConfig};
use serde_json::{Value, json};

use super::*;
use crate::state::AgentState;

const CLUSTER: &str = "unit";
const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/unit/i-1";
const WAIT: Duration = Duration::from_secs(10);

/// Records every state change, as JSON, in arrival order.
#[derive(Default)]
struct FakeControl {
    changes: Mutex<Vec<(String, Value)>>,
    token_calls: AtomicUsize,
    /// While set, every state change fails as if the control plane were down.
    down: std::sync::atomic::AtomicBool,
}

impl FakeControl {
    fn record(&self, kind: &str, change: Value) -> Result<(), ClientError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ClientError::Transport {
                endpoint: "fake".into(),
                message: "down".into(),
            });
        }
        lock(&self.changes).push((kind.to_owned(), change));
        Ok(())
    }

    fn changes(&self) -> Vec<(String, Value)> {
        lock(&self.changes).clone()
    }

    fn task_changes(&self, task: &str) -> Vec<Value> {
        self.changes()
            .into_iter()
            .filter(|(kind, c)| kind == "task" && c["task"] == task)
            .map(|(_, c)| c)
            .collect()
    }

    fn container_changes(&self, task: &str, container: &str) -> Vec<Value> {
        self.changes()
            .into_iter()
            .filter(|(kind, c)| {
                kind == "container" && c["task"] == task && c["containerName"] == container
            })
            .map(|(_, c)| c)
            .collect()
    }

    /// Waits until the task has reported `status`, and returns that change.
    async fn wait_task(&self, task: &str, status: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(change) = self
                .task_changes(task)
                .into_iter()
                .find(|c| c["status"] == status)
            {
                return change;
            }
            assert!(
                Instant::now() < deadline,
                "task {task} never reported {status}; changes: {:#?}",
                self.changes()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl ControlPlane for FakeControl {
    fn submit_task_state_change<'a>(
        &'a self,
        change: &'a TaskStateChange,
    ) -> ControlFuture<'a, ()> {
        Box::pin(async move { self.record("task", serde_json::to_value(change).unwrap()) })
    }

    fn submit_container_state_change<'a>(
        &'a self,
        change: &'a ContainerStateChange,
    ) -> ControlFuture<'a, ()> {
        Box::pin(async move { self.record("container", serde_json::to_value(change).unwrap()) })
    }

    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        _region: Option<&'a str>,
        _registry_id: Option<&'a str>,
    ) -> ControlFuture<'a, EcrAuthorization> {
        Box::pin(async move {
            assert_eq!(endpoint, Some("http://127.0.0.1:4566"));
            self.token_calls.fetch_add(1, Ordering::SeqCst);
            Ok(EcrAuthorization {
                username: "AWS".into(),
                password: "token".into(),
                expires_at: Some(now_seconds() + 3600.0),
            })
        })
    }
}

struct Harness {
    engine: Engine,
    runtime: SimulatedRuntime,
    control: Arc<FakeControl>,
    state: SharedState,
    stop: watch::Sender<bool>,
}

impl Harness {
    async fn start(config: EngineConfig) -> Harness {
        let runtime = SimulatedRuntime::new(SimulationConfig {
            // Sleeps, health intervals and stop timeouts run ten times faster.
            time_scale: 0.1,
            ..SimulationConfig::default()
        });
        Harness::start_on(
            config,
            runtime,
            Arc::new(FakeControl::default()),
            AgentState::default(),
        )
        .await
    }

    async fn start_on(
        config: EngineConfig,
        runtime: SimulatedRuntime,
        control: Arc<FakeControl>,
        state: AgentState,
    ) -> Harness {
        let state = SharedState::new(state, None);
        let (stop, stopped) = watch::channel(false);
        let engine = Engine::start(
            config,
            Arc::new(runtime.clone()),
            control.clone(),
            state.clone(),
            stopped,
        )
        .await
        .unwrap();
        Harness {
            engine,
            runtime,
            control,
            state,
            stop,
        }
    }

    /// Stops the engine as an agent shutdown would (containers keep running) and returns
    /// what a restarted agent would find: the runtime, the control plane and the state.
    async fn shut_down(self) -> (SimulatedRuntime, Arc<FakeControl>, AgentState) {
        self.stop.send_replace(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let state = self.state.lock().clone();
        (self.runtime, self.control, state)
    }

    async fn containers_of(&self, task: &str) -> Vec<berth_runtime::ContainerSummary> {
        self.runtime
            .list_containers(&[(LABEL_TASK_ARN, task)])
            .await
            .unwrap()
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        default_stop_timeout: Duration::from_secs(2),
        ..EngineConfig::new(CLUSTER, INSTANCE)
    }
}

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task/unit/{id}")
}

fn task(id: &str, desired: &str, containers: Value) -> Task {
    serde_json::from_value(json!({
        "arn": task_arn(id),
        "family": "fam",
        "version": "3",
        "desiredStatus": desired,
        "networkMode": "bridge",
        "containers": containers,
    }))
    .unwrap()
}

fn stopped(mut task: Task) -> Task {
    task.desired_status = Some("STOPPED".into());
    task
}

#[tokio::test]
async fn a_task_runs_and_reports_its_host_ports() {
    let h = Harness::start(config()).await;
    let t = task(
        "web",
        "RUNNING",
        json!([{
            "name": "web", "image": "busybox", "essential": true, "memory": 64,
            "command": ["httpd", "-f"],
            "portMappings": [
                {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                {"containerPort": 81, "hostPort": 0, "protocol": "tcp"}
            ]
        }]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    let running = h.control.wait_task(&task_arn("web"), "RUNNING").await;
    assert_eq!(running["cluster"], CLUSTER);
    assert!(running["pullStartedAt"].as_f64().is_some());
    assert!(running["pullStoppedAt"].as_f64() >= running["pullStartedAt"].as_f64());
    let web = &h.control.container_changes(&task_arn("web"), "web")[0];
    assert_eq!(web["status"], "RUNNING");
    let bindings = web["networkBindings"].as_array().unwrap();
    let host_port = |container_port: u64| {
        bindings
            .iter()
            .find(|b| b["containerPort"] == container_port)
            .map(|b| b["hostPort"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(host_port(80), 8080);
    assert!(
        (32768..=60999).contains(&host_port(81)),
        "dynamic port {}",
        host_port(81)
    );
    assert_eq!(
        running["containers"][0]["networkBindings"],
        web["networkBindings"]
    );

    let containers = h.containers_of(&task_arn("web")).await;
    assert_eq!(containers.len(), 1);
    let labels = &containers[0].labels;
    assert_eq!(labels[spec::LABEL_CLUSTER], CLUSTER);
    assert_eq!(labels[spec::LABEL_CONTAINER_NAME], "web");
    assert_eq!(labels[spec::LABEL_FAMILY], "fam");
    assert_eq!(labels[spec::LABEL_VERSION], "3");
    assert!(containers[0].name.starts_with("ecs-fam-3-web-"));

    // The same payload again (a reconnect) changes nothing.
    h.engine.apply_payload(vec![t]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.containers_of(&task_arn("web")).await.len(), 1);
    assert_eq!(h.control.task_changes(&task_arn("web")).len(), 1);
    let record = h.state.task(&task_arn("web")).unwrap();
    assert_eq!(record.known_status, "RUNNING");
    assert_eq!(record.sent_status.as_deref(), Some("RUNNING"));
    assert_eq!(
        record.containers["web"].sent_status.as_deref(),
        Some("RUNNING")
    );
}

#[tokio::test]
async fn an_essential_container_exiting_stops_the_task() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "ess",
        "RUNNING",
        json!([
            {"name": "main", "image": "busybox", "essential": true,
             "command": ["sh", "-c", "sleep 2; exit 3"]},
            {"name": "sidecar", "image": "busybox", "essential": false, "command": ["sleep", "1000000"]}
        ]),
    )]);
    h.control.wait_task(&task_arn("ess"), "RUNNING").await;
    let stopped = h.control.wait_task(&task_arn("ess"), "STOPPED").await;
    assert_eq!(stopped["reason"], ESSENTIAL_EXITED);
    assert!(stopped["executionStoppedAt"].as_f64().is_some());
    let exit = |name: &str| {
        stopped["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["containerName"] == name)
            .map(|c| (c["status"].clone(), c["exitCode"].clone()))
            .unwrap()
    };
    assert_eq!(exit("main"), (json!("STOPPED"), json!(3)));
    // The sidecar was stopped with SIGTERM.
    assert_eq!(exit("sidecar"), (json!("STOPPED"), json!(143)));
    let main = h.control.container_changes(&task_arn("ess"), "main");
    assert_eq!(main.last().unwrap()["exitCode"], 3);
    // Container changes come before the task's.
    let order: Vec<String> = h
        .control
        .changes()
        .iter()
        .filter(|(_, c)| c["status"] == "STOPPED")
        .map(|(kind, _)| kind.clone())
        .collect();
    assert_eq!(order.last().map(String::as_str), Some("task"));
}

#[tokio::test]
async fn depends_on_orders_start_up() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "deps",
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox", "essential": true, "command": ["httpd"],
             "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"},
                           {"containerName": "db", "condition": "HEALTHY"}]},
            {"name": "migrate", "image": "busybox", "essential": false,
             "command": ["sh", "-c", "sleep 1; exit 0"]},
            {"name": "db", "image": "busybox", "essential": true, "command": ["db"],
             "dependsOn": [{"containerName": "migrate", "condition": "START"}],
             "dockerConfig": {"config": "{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,\"Retries\":3}}"}}
        ]),
    )]);
    h.control.wait_task(&task_arn("deps"), "RUNNING").await;
    let events: Vec<(String, String)> = h
        .control
        .changes()
        .into_iter()
        .filter(|(kind, _)| kind == "container")
        .map(|(_, c)| {
            (
                c["containerName"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let at = |name: &str, status: &str| {
        events
            .iter()
            .position(|(n, s)| n == name && s == status)
            .unwrap_or_else(|| panic!("{name} {status} missing from {events:?}"))
    };
    assert!(at("migrate", "RUNNING") < at("db", "RUNNING"));
    assert!(at("migrate", "STOPPED") < at("web", "RUNNING"));
    assert!(at("db", "RUNNING") < at("web", "RUNNING"));
    let migrate = h.control.container_changes(&task_arn("deps"), "migrate");
    assert_eq!(migrate.last().unwrap()["exitCode"], 0);
}

#[tokio::test]
async fn an_unmet_success_dependency_stops_the_task() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "unmet",
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox", "essential": true, "command": ["httpd"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
            {"name": "init", "image": "busybox", "essential": false, "command": ["sh", "-c", "exit 1"]}
        ]),
    )]);
    let stopped = h.control.wait_task(&task_arn("unmet"), "STOPPED").await;
    assert!(
        stopped["reason"].as_str().unwrap().contains("SUCCESS"),
        "{stopped}"
    );
    assert!(
        h.control
            .container_changes(&task_arn("unmet"), "web")
            .is_empty()
    );
    assert!(
        h.control
            .task_changes(&task_arn("unmet"))
            .iter()
            .all(|c| c["status"] != "RUNNING")
    );
}

#[tokio::test]
async fn desired_stopped_stops_with_the_stop_timeout() {
    let h = Harness::start(config()).await;
    let t = task(
        "stop",
        "RUNNING",
        json!([
            {"name": "polite", "image": "busybox", "essential": true, "command": ["httpd"]},
            {"name": "stubborn", "image": "busybox", "essential": true, "stopTimeout": 5,
             "command": ["sh", "-c", "trap '' TERM; httpd"]}
        ]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("stop"), "RUNNING").await;
    let asked = Instant::now();
    h.engine.apply_payload(vec![stopped(t)]);
    let change = h.control.wait_task(&task_arn("stop"), "STOPPED").await;
    // stopTimeout 5 s at the simulation's tenfold speed.
    assert!(
        asked.elapsed() >= Duration::from_millis(450),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(change["reason"], Value::Null);
    let code = |name: &str| {
        h.control
            .container_changes(&task_arn("stop"), name)
            .last()
            .unwrap()["exitCode"]
            .clone()
    };
    assert_eq!(code("polite"), 143);
    assert_eq!(code("stubborn"), 137);
    // Stopped containers stay until the cleanup delay (3 h by default).
    assert_eq!(h.containers_of(&task_arn("stop")).await.len(), 2);
}

#[tokio::test]
async fn stopped_tasks_are_cleaned_up_after_the_delay() {
    let h = Harness::start(EngineConfig {
        cleanup_delay: Duration::from_millis(300),
        ..config()
    })
    .await;
    let t = task(
        "clean",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["sh", "-c", "exit 0"]}]),
    );
    h.engine.apply_payload(vec![t]);
    h.control.wait_task(&task_arn("clean"), "STOPPED").await;
    assert_eq!(h.containers_of(&task_arn("clean")).await.len(), 1);
    let deadline = Instant::now() + WAIT;
    while !h.containers_of(&task_arn("clean")).await.is_empty()
        || h.state.task(&task_arn("clean")).is_some()
    {
        assert!(Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.engine.task_arns().is_empty());
}

#[tokio::test]
async fn a_failed_pull_stops_the_task_with_ecs_reason() {
    let h = Harness::start(config()).await;
    h.runtime.fail_pulls_of("missing:v1", "manifest unknown");
    h.engine.apply_payload(vec![task(
        "nopull",
        "RUNNING",
        json!([{"name": "app", "image": "missing:v1", "essential": true}]),
    )]);
    let stopped = h.control.wait_task(&task_arn("nopull"), "STOPPED").await;
    let reason = stopped["reason"].as_str().unwrap();
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");
    assert!(reason.contains("manifest unknown"));
    assert_eq!(
        h.control.container_changes(&task_arn("nopull"), "app")[0]["reason"],
        stopped["reason"]
    );
}

#[tokio::test]
async fn pull_behaviours() {
    let image = "cached:v1";
    // default: a failed pull falls back to the cached copy.
    let h = Harness::start(config()).await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    let run = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{"name": "app", "image": image, "essential": true, "command": ["httpd"]}]),
        )
    };
    h.engine.apply_payload(vec![run("fallback")]);
    h.control.wait_task(&task_arn("fallback"), "RUNNING").await;

    // always: it does not.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::Always,
        ..config()
    })
    .await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("always")]);
    let stopped = h.control.wait_task(&task_arn("always"), "STOPPED").await;
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("registry down")
    );

    // prefer-cached: no pull at all when present.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::PreferCached,
        ..config()
    })
    .await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("cached")]);
    h.control.wait_task(&task_arn("cached"), "RUNNING").await;

    // once: the first task pulls, the second does not.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::Once,
        ..config()
    })
    .await;
    h.engine.apply_payload(vec![run("once-1")]);
    h.control.wait_task(&task_arn("once-1"), "RUNNING").await;
    assert!(h.state.lock().pulled_images.contains("cached:v1"));
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("once-2")]);
    h.control.wait_task(&task_arn("once-2"), "RUNNING").await;
}

#[tokio::test]
async fn ecr_images_are_pulled_with_a_cached_token() {
    let h = Harness::start(config()).await;
    let with_auth = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{
                "name": "app", "image": "127.0.0.1:4566/app:v1", "essential": true, "command": ["httpd"],
                "registryAuthentication": {"type": "ecr", "ecrAuthData": {
                    "endpointOverride": "http://127.0.0.1:4566", "region": "us-east-1",
                    "registryId": "000000000000"}}
            }]),
        )
    };
    h.engine.apply_payload(vec![with_auth("ecr-1")]);
    h.control.wait_task(&task_arn("ecr-1"), "RUNNING").await;
    h.engine.apply_payload(vec![with_auth("ecr-2")]);
    h.control.wait_task(&task_arn("ecr-2"), "RUNNING").await;
    assert_eq!(h.control.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_containers_and_reports_what_died_meanwhile() {
    let h = Harness::start(config()).await;
    let tasks: Vec<Task> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| {
            task(
                id,
                "RUNNING",
                json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
            )
        })
        .collect();
    h.engine.apply_payload(tasks.clone());
    for id in ["r1", "r2", "r3"] {
        h.control.wait_task(&task_arn(id), "RUNNING").await;
    }
    let before: Vec<_> = {
        let mut ids = Vec::new();
        for id in ["r1", "r2", "r3"] {
            ids.push(h.containers_of(&task_arn(id)).await[0].id.clone());
        }
        ids
    };
    let (runtime, control, state) = h.shut_down().await;
    // While the agent is away, r2's container is killed.
    runtime.kill_container(&before[1], 137, false);

    let h = Harness::start_on(config(), runtime, control, state).await;
    // The control plane sends every live task again on connect.
    h.engine.apply_payload(tasks);
    let stopped = h.control.wait_task(&task_arn("r2"), "STOPPED").await;
    assert_eq!(stopped["reason"], ESSENTIAL_EXITED);
    assert_eq!(stopped["containers"][0]["exitCode"], 137);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
        let containers = h.containers_of(&task_arn(id)).await;
        assert_eq!(containers.len(), 1, "{id}: {containers:?}");
        assert_eq!(containers[0].id, before[i], "{id} kept its container");
    }
    // Nothing reported twice: each surviving task is RUNNING once.
    assert_eq!(h.control.task_changes(&task_arn("r1")).len(), 1);
    assert_eq!(h.control.task_changes(&task_arn("r3")).len(), 1);
}

#[tokio::test]
async fn containers_are_adopted_by_their_labels_when_the_state_file_is_behind() {
    let h = Harness::start(config()).await;
    let t = task(
        "lost",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("lost"), "RUNNING").await;
    let id = h.containers_of(&task_arn("lost")).await[0].id.clone();
    let (runtime, control, mut state) = h.shut_down().await;
    state.tasks.clear(); // as if the last save never happened

    let h = Harness::start_on(config(), runtime, control, state).await;
    h.engine.apply_payload(vec![t.clone()]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let containers = h.containers_of(&task_arn("lost")).await;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].id, id);
    assert_eq!(
        h.state.task(&task_arn("lost")).unwrap().containers["app"]
            .runtime_id
            .as_deref(),
        Some(id.as_str())
    );
    // And it can still be stopped.
    h.engine.apply_payload(vec![stopped(t)]);
    let change = h.control.wait_task(&task_arn("lost"), "STOPPED").await;
    assert_eq!(change["containers"][0]["exitCode"], 143);
}

#[tokio::test]
async fn reports_survive_a_control_plane_outage() {
    let h = Harness::start(config()).await;
    h.control.down.store(true, Ordering::SeqCst);
    h.engine.apply_payload(vec![task(
        "outage",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    )]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.control.changes().is_empty());
    h.control.down.store(false, Ordering::SeqCst);
    h.control.wait_task(&task_arn("outage"), "RUNNING").await;
    let kinds: Vec<String> = h.control.changes().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["container", "task"], "in order, once each");
}

#[tokio::test]
async fn unsupported_tasks_fail_visibly() {
    let h = Harness::start(config()).await;
    let mut t = task(
        "vpc",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true}]),
    );
    t.network_mode = Some("awsvpc".into());
    h.engine.apply_payload(vec![t]);
    let stopped = h.control.wait_task(&task_arn("vpc"), "STOPPED").await;
    assert!(stopped["reason"].as_str().unwrap().contains("awsvpc"));
}
