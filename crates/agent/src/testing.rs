//! Test support shared by the agent's unit tests: a recording fake control plane and a
//! harness running the engine on the simulated runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_acs::acs::Task;
use berth_runtime::{ContainerRuntime, SimulatedRuntime, SimulationConfig};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::client::{ClientError, ContainerStateChange, EcrAuthorization, TaskStateChange};
use crate::engine::{ControlFuture, ControlPlane, Engine, EngineConfig};
use crate::spec::LABEL_TASK_ARN;
use crate::state::{AgentState, SharedState};

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
pub const WAIT: Duration = Duration::from_secs(10);

/// Records every state change, as JSON, in arrival order.
#[derive(Default)]
pub struct FakeControl {
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
        ..EngineConfig::new(CLUSTER, INSTANCE)
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
    task.desired_status = Some("STOPPED".into());
    task
}
