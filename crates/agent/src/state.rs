//! The agent's durable memory, `DATA_DIR/agent-state.json`: which container instance it is,
//! and for each task it was given the task as ACS described it, the Docker container behind
//! each of its containers, and how far each has got (known and reported statuses). A
//! restarted agent reads it back to stay the same instance and to keep serving the same
//! tasks with the same containers; Docker's labels fill in anything written after the last
//! save (see `engine`).
//!
//! Saves are whole-file replacements (write a temporary file, fsync, rename, fsync the
//! directory), so a crash leaves the previous or the next version, never a torn one. The
//! engine marks the state dirty and one saver task coalesces bursts of changes into one write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_agent_protocol::acs::Task;
use berth_model::ecs::{ContainerKnownStatus, ContainerStatus, TaskStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::client::NetworkBinding;
use crate::translate::ResolvedVolume;

pub const STATE_FILE: &str = "agent-state.json";
/// Version of the file's layout, bumped on incompatible changes.
const LAYOUT_VERSION: u32 = 1;
/// Changes within this window after the first are written together.
const COALESCE: Duration = Duration::from_millis(25);

/// The agent's files in its data dir (the state file, the installation file) cannot be read
/// or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("agent state: {} is not readable: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("agent state: {} was written by a newer agent (layout {version})", .path.display())]
    Newer { path: PathBuf, version: u32 },
    #[error("agent state: reading {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent state: writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent state: creating {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The save, run off the async threads, did not finish.
    #[error("agent state: {0}")]
    Saver(tokio::task::JoinError),
    #[error("agent state: {}: {source}", .path.display())]
    Installation {
        path: PathBuf,
        source: berth_model::InstallationIdError,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    #[serde(default)]
    pub version: u32,
    /// The cluster the instance registered in, as configured.
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    /// By task ARN.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Images this agent has pulled (for the `once` pull behaviour).
    #[serde(default)]
    pub pulled_images: BTreeSet<String>,
    /// The port the task metadata endpoint listens on: containers carry it in their
    /// environment, so a restarted agent serves on the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The task as the last payload carried it (its `desiredStatus` included).
    pub task: Task,
    /// How far the task has got on this host: `PENDING`, `RUNNING` or `STOPPED`.
    pub known_status: TaskStatus,
    /// The last task status the control plane acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_status: Option<TaskStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// By the task definition's container name.
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerRecord>,
    /// Where each task volume comes from on this host, by volume name.
    #[serde(default)]
    pub volumes: BTreeMap<String, ResolvedVolume>,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    /// When the task's last container stopped (seconds since the epoch); cleanup counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    /// awsvpc: the infra container holding the task's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra: Option<ContainerRecord>,
}

impl TaskRecord {
    /// A task this host has just been given: PENDING, nothing done yet.
    pub fn new(task: Task) -> TaskRecord {
        TaskRecord {
            task,
            known_status: TaskStatus::Pending,
            sent_status: None,
            stopped_reason: None,
            containers: BTreeMap::new(),
            volumes: BTreeMap::new(),
            pull_started_at: None,
            pull_stopped_at: None,
            stopped_at: None,
            infra: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// The name the container is (or will be) created under.
    #[serde(default)]
    pub docker_name: String,
    /// The runtime's container id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// `NONE`, `CREATED`, `RUNNING` or `STOPPED`.
    pub known_status: ContainerKnownStatus,
    /// Whether it ever ran (one stopped before it started did not).
    #[serde(default)]
    pub started: bool,
    /// The last container status the control plane acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_status: Option<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bindings: Vec<NetworkBinding>,
    /// The last part of the container's task metadata endpoint URI, which names it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_token: Option<String>,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN` (not yet decided) for a container with a health
    /// check; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// When `health` last changed (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_since: Option<f64>,
    /// Its address on its network, as last inspected while it ran (bridge mode): the
    /// credentials endpoint tells the task's own containers by it without asking Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::IpAddr>,
}

impl AgentState {
    /// Reads the state file in `data_dir`; a missing file is a fresh agent.
    pub fn load(data_dir: &Path) -> Result<AgentState, StateError> {
        let path = data_dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: AgentState = match serde_json::from_slice(&bytes) {
                    Ok(state) => state,
                    Err(source) => return Err(StateError::Unreadable { path, source }),
                };
                if state.version > LAYOUT_VERSION {
                    return Err(StateError::Newer {
                        path,
                        version: state.version,
                    });
                }
                Ok(state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Replaces the state file atomically and durably.
    pub fn save(&self, data_dir: &Path) -> Result<(), StateError> {
        let mut copy = self.clone();
        copy.version = LAYOUT_VERSION;
        let bytes = serde_json::to_vec(&copy).expect("state serialises");
        let path = data_dir.join(STATE_FILE);
        write_atomically(&path, &bytes).map_err(|source| StateError::Write { path, source })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// The state shared by the agent's tasks, saved in the background when changed.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Shared>,
}

struct Shared {
    /// A std mutex: every critical section is a few map operations, never an `.await`.
    state: Mutex<AgentState>,
    dirty: Notify,
    data_dir: Option<PathBuf>,
}

impl SharedState {
    /// State saved under `data_dir`, or (`None`) kept in memory only (tests).
    pub fn new(state: AgentState, data_dir: Option<PathBuf>) -> SharedState {
        SharedState {
            inner: Arc::new(Shared {
                state: Mutex::new(state),
                dirty: Notify::new(),
                data_dir,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and schedules a save.
    pub fn update<R>(&self, change: impl FnOnce(&mut AgentState) -> R) -> R {
        let result = change(&mut self.lock());
        self.inner.dirty.notify_one();
        result
    }

    /// Changes one task's record, if it is still known.
    pub fn update_task<R>(
        &self,
        task_arn: &str,
        change: impl FnOnce(&mut TaskRecord) -> R,
    ) -> Option<R> {
        self.update(|state| state.tasks.get_mut(task_arn).map(change))
    }

    pub fn task(&self, task_arn: &str) -> Option<TaskRecord> {
        self.lock().tasks.get(task_arn).cloned()
    }

    /// Writes the state now (after registration, and at shutdown).
    pub async fn flush(&self) -> Result<(), StateError> {
        let Some(dir) = self.inner.data_dir.clone() else {
            return Ok(());
        };
        let snapshot = self.lock().clone();
        tokio::task::spawn_blocking(move || snapshot.save(&dir))
            .await
            .map_err(StateError::Saver)?
    }

    /// Saves whenever the state changes, until `shutdown`; then saves once more.
    pub async fn run_saver(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.inner.dirty.notified() => {}
                _ = shutdown.changed() => break,
            }
            tokio::time::sleep(COALESCE).await;
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "could not save the agent state");
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "could not save the agent state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(AgentState::load(dir.path()).unwrap(), AgentState::default());

        let mut state = AgentState {
            cluster: "prod".into(),
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/prod/abc".into(),
            ),
            ..AgentState::default()
        };
        let task: Task = serde_json::from_value(serde_json::json!({
            "arn": "arn:aws:ecs:us-east-1:000000000000:task/prod/t1",
            "family": "web", "version": "3", "desiredStatus": "RUNNING",
            "containers": [{"name": "app", "image": "busybox", "essential": true,
                            "environment": {"A": "1"}}]
        }))
        .unwrap();
        state.tasks.insert(
            "arn:aws:ecs:us-east-1:000000000000:task/prod/t1".into(),
            TaskRecord {
                task,
                known_status: TaskStatus::Running,
                sent_status: Some(TaskStatus::Running),
                containers: BTreeMap::from([(
                    "app".to_owned(),
                    ContainerRecord {
                        runtime_id: Some("c0ffee".into()),
                        known_status: ContainerKnownStatus::Running,
                        sent_status: Some(ContainerStatus::Running),
                        network_bindings: vec![NetworkBinding {
                            bind_ip: "0.0.0.0".into(),
                            container_port: 80,
                            host_port: 32768,
                            protocol: "tcp".into(),
                            ..NetworkBinding::default()
                        }],
                        ..ContainerRecord::default()
                    },
                )]),
                pull_started_at: Some(1_700_000_000.25),
                ..TaskRecord::new(Task::default())
            },
        );
        state.pulled_images.insert("busybox:latest".into());
        state.save(dir.path()).unwrap();

        let mut loaded = AgentState::load(dir.path()).unwrap();
        assert_eq!(loaded.version, LAYOUT_VERSION);
        loaded.version = 0;
        assert_eq!(loaded, state);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn unreadable_or_newer_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        assert!(matches!(
            AgentState::load(dir.path()),
            Err(StateError::Unreadable { .. })
        ));
        std::fs::write(
            dir.path().join(STATE_FILE),
            br#"{"version": 99, "cluster": "c"}"#,
        )
        .unwrap();
        assert!(matches!(
            AgentState::load(dir.path()),
            Err(StateError::Newer { version: 99, .. })
        ));
    }

    #[tokio::test]
    async fn the_saver_writes_changes() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedState::new(AgentState::default(), Some(dir.path().to_owned()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let saver = tokio::spawn(shared.clone().run_saver(stopped));
        shared.update(|s| s.cluster = "saved".into());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(AgentState::load(dir.path()).unwrap().cluster, "saved");
        shared.update(|s| s.cluster = "at-shutdown".into());
        stop.send_replace(true);
        saver.await.unwrap();
        assert_eq!(AgentState::load(dir.path()).unwrap().cluster, "at-shutdown");
    }
}
