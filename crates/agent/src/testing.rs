//! Test support shared by the agent's unit tests: a recording fake control plane and a
//! harness running the engine on the simulated runtime.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_agent_protocol::acs::Task;
use berth_runtime::{ContainerRuntime, SimulatedRuntime, SimulationConfig};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::awslogs::{
    InputLogEvent, LogsApi, PutLogEventsRequest, RejectedLogEventsInfo, StreamLookup,
};
use crate::client::{
    ClientError, ContainerStateChange, ControlFuture, EcrAuthorization, TaskStateChange,
};
use crate::engine::{ControlPlane, Engine, EngineConfig};
use crate::state::{AgentState, SharedState};
use crate::translate::LABEL_TASK_ARN;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub const CLUSTER: &str = "unit";
pub const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/unit/i-1";
pub const INSTALLATION: &str = "unittest01";
pub const WAIT: Duration = Duration::from_secs(10);

/// Records every state change, as JSON, in arrival order; CloudWatch Logs is a
/// [`FakeLogs`].
#[derive(Default)]
pub struct FakeControl {
    pub logs: FakeLogs,
    changes: Mutex<Vec<(String, Value)>>,
    pub token_calls: AtomicUsize,
    /// While set, every state change fails as if the control plane were down.
    pub down: std::sync::atomic::AtomicBool,
}

impl FakeControl {
    fn record(&self, kind: &str, change: Value) -> Result<(), ClientError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ClientError::Transport {
                endpoint: "fake".into(),
                message: "down".into(),
            });
        }
        let mut changes = lock(&self.changes);
        // The containers a task change carries are container changes too, as the control
        // plane applies them; those whose status is news are listed before the task's.
        if kind == "task" {
            for carried in change["containers"].as_array().into_iter().flatten() {
                let name = &carried["containerName"];
                let known = changes.iter().rev().find(|(k, c)| {
                    k == "container" && c["task"] == change["task"] && &c["containerName"] == name
                });
                if known.is_some_and(|(_, c)| c["status"] == carried["status"]) {
                    continue;
                }
                let mut entry = carried.clone();
                entry["task"] = change["task"].clone();
                entry["cluster"] = change["cluster"].clone();
                changes.push(("container".to_owned(), entry));
            }
        }
        changes.push((kind.to_owned(), change));
        Ok(())
    }

    pub fn changes(&self) -> Vec<(String, Value)> {
        lock(&self.changes).clone()
    }

    pub fn task_changes(&self, task: &str) -> Vec<Value> {
        self.changes()
            .into_iter()
            .filter(|(kind, c)| kind == "task" && c["task"] == task)
            .map(|(_, c)| c)
            .collect()
    }

    pub fn container_changes(&self, task: &str, container: &str) -> Vec<Value> {
        self.changes()
            .into_iter()
            .filter(|(kind, c)| {
                kind == "container" && c["task"] == task && c["containerName"] == container
            })
            .map(|(_, c)| c)
            .collect()
    }

    /// Waits until the task has reported `status`, and returns that change.
    pub async fn wait_task(&self, task: &str, status: &str) -> Value {
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

    fn json_call_as<'a>(
        &'a self,
        _credentials: &'a crate::config::Credentials,
        _service: &'a str,
        _region: &'a str,
        target: &'a str,
        body: Value,
    ) -> ControlFuture<'a, Value> {
        Box::pin(async move {
            let _ = self.record("call", serde_json::json!({"target": target, "body": body}));
            Err(crate::client::ClientError::Protocol(format!(
                "the fake control plane does not answer {target}"
            )))
        })
    }

    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        _region: Option<&'a str>,
        _registry_id: Option<&'a str>,
        _credentials: Option<&'a crate::config::Credentials>,
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

impl LogsApi for FakeControl {
    fn create_log_group<'a>(&'a self, region: &'a str, group: &'a str) -> ControlFuture<'a, ()> {
        self.logs.create_log_group(region, group)
    }

    fn create_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, ()> {
        self.logs.create_log_stream(region, group, stream)
    }

    fn find_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, StreamLookup> {
        self.logs.find_log_stream(region, group, stream)
    }

    fn put_log_events<'a>(
        &'a self,
        region: &'a str,
        request: &'a PutLogEventsRequest,
    ) -> ControlFuture<'a, RejectedLogEventsInfo> {
        self.logs.put_log_events(region, request)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The put is refused as if the service were down.
    Before,
    /// The put is stored, but its answer is lost.
    After,
}

#[derive(Default)]
struct FakeStream {
    events: Vec<InputLogEvent>,
    cursor: Option<String>,
}

#[derive(Default)]
struct FakeLogsState {
    groups: BTreeMap<String, BTreeMap<String, FakeStream>>,
    failures: Vec<Failure>,
    puts: usize,
    lost_answers: usize,
}

/// CloudWatch Logs in memory, with PutLogEvents' checks and scripted failures.
#[derive(Default)]
pub struct FakeLogs {
    state: Mutex<FakeLogsState>,
}

fn not_found(what: &str) -> ClientError {
    ClientError::Aws {
        status: 400,
        code: "ResourceNotFoundException".into(),
        message: format!("The specified log {what} does not exist."),
    }
}

fn down() -> ClientError {
    ClientError::Transport {
        endpoint: "fake".into(),
        message: "connection reset".into(),
    }
}

impl FakeLogs {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeLogsState> {
        self.state.lock().unwrap()
    }

    pub fn add_group(&self, group: &str) {
        self.lock().groups.entry(group.into()).or_default();
    }

    pub fn fail(&self, failures: &[Failure]) {
        self.lock().failures.extend_from_slice(failures);
    }

    pub fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(group)
            .and_then(|g| g.get(stream))
            .map(|s| s.events.iter().map(|e| e.message.clone()).collect())
            .unwrap_or_default()
    }

    /// (puts tried, puts stored whose answer was lost)
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.puts, state.lost_answers)
    }

    pub fn remove_streams(&self, group: &str) {
        if let Some(streams) = self.lock().groups.get_mut(group) {
            streams.clear();
        }
    }

    pub fn streams(&self, group: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl LogsApi for FakeLogs {
    fn create_log_group<'a>(&'a self, _: &'a str, group: &'a str) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            self.add_group(group);
            Ok(())
        })
    }

    fn create_log_stream<'a>(
        &'a self,
        _: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.lock();
            let group = state
                .groups
                .get_mut(group)
                .ok_or_else(|| not_found("group"))?;
            group.entry(stream.into()).or_default();
            Ok(())
        })
    }

    fn find_log_stream<'a>(
        &'a self,
        _: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, StreamLookup> {
        Box::pin(async move {
            let state = self.lock();
            let group = state.groups.get(group).ok_or_else(|| not_found("group"))?;
            Ok(match group.get(stream) {
                Some(s) => StreamLookup::Found(s.cursor.clone()),
                None => StreamLookup::Missing,
            })
        })
    }

    fn put_log_events<'a>(
        &'a self,
        _: &'a str,
        request: &'a PutLogEventsRequest,
    ) -> ControlFuture<'a, RejectedLogEventsInfo> {
        Box::pin(async move {
            let mut state = self.lock();
            state.puts += 1;
            let failure = (!state.failures.is_empty()).then(|| state.failures.remove(0));
            if failure == Some(Failure::Before) {
                return Err(down());
            }
            let events = &request.log_events;
            assert!(!events.is_empty() && events.len() <= 10_000);
            let bytes: usize = events.iter().map(|e| e.message.len() + 26).sum();
            assert!(bytes <= 1_048_576);
            assert!(events.iter().all(|e| !e.message.is_empty()));
            assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
            assert!(
                request
                    .berth_shipper_cursor
                    .as_ref()
                    .is_some_and(|c| c.len() <= 512)
            );
            let stream = state
                .groups
                .get_mut(&request.log_group_name)
                .ok_or_else(|| not_found("group"))?
                .get_mut(&request.log_stream_name)
                .ok_or_else(|| not_found("stream"))?;
            stream.events.extend(events.iter().cloned());
            stream.cursor = request.berth_shipper_cursor.clone();
            match failure {
                Some(_) => {
                    state.lost_answers += 1;
                    Err(down())
                }
                None => Ok(RejectedLogEventsInfo::default()),
            }
        })
    }
}

pub struct Harness {
    pub engine: Engine,
    pub runtime: SimulatedRuntime,
    pub control: Arc<FakeControl>,
    pub state: SharedState,
    pub stop: watch::Sender<bool>,
}

impl Harness {
    pub async fn start(config: EngineConfig) -> Harness {
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

    pub async fn start_on(
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
    pub async fn shut_down(self) -> (SimulatedRuntime, Arc<FakeControl>, AgentState) {
        self.stop.send_replace(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let state = self.state.lock().clone();
        (self.runtime, self.control, state)
    }

    pub async fn containers_of(&self, task: &str) -> Vec<berth_runtime::ContainerSummary> {
        self.runtime
            .list_containers(&[(LABEL_TASK_ARN, task)])
            .await
            .unwrap()
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        default_stop_timeout: Duration::from_secs(2),
        ..EngineConfig::new(CLUSTER, INSTANCE, &INSTALLATION.parse().unwrap())
    }
}

pub fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task/unit/{id}")
}

pub fn task(id: &str, desired: &str, containers: Value) -> Task {
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

pub fn stopped(mut task: Task) -> Task {
    task.desired_status =
        crate::translate::desired_member(berth_model::ecs::DesiredStatus::Stopped);
    task
}
