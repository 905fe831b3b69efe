//! Agent presence: whether each container instance's agent is connected. An agent counts
//! as connected from its registration or from the start of its websocket session, and
//! stays so while frames keep arriving; an agent not heard from for the heartbeat timeout
//! is marked disconnected (`agentConnected: false`), which takes its instance out of
//! placement. Presence itself is in memory (frames arrive every few seconds); only the
//! flips are written to the store. After a restart every known instance gets one timeout
//! to reconnect.
//!
//! Beside presence, the instance health checks each agent last reported over telemetry
//! (DescribeContainerInstances' `healthStatus` with `include: CONTAINER_INSTANCE_HEALTH`).
//! They are in memory too: agents report every publish interval and at every new telemetry
//! session, so after a server restart an instance shows `INSUFFICIENT_DATA` only until its
//! agent's telemetry reconnects. An instance whose agent is disconnected shows its last
//! checks as `INSUFFICIENT_DATA` (nobody can vouch for them now), keeping the timestamps of
//! the last report.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_model::Scope;
use berth_model::ecs::VersionInfo;
use berth_store::Change;
use serde::Serialize;

use crate::instances::ContainerInstance;
use crate::keys::{instance_key, split_key};
use crate::{Ecs, EcsError, Result, decode, now_epoch};

struct Seen {
    scope: Scope,
    cluster: String,
    id: String,
    /// Epoch seconds of the last sign of life.
    at: f64,
    /// As last written to the store.
    connected: bool,
    /// The instance health checks of the agent's last report; empty before one.
    health: Vec<InstanceHealthCheckResult>,
    /// Heard by this process (not only seeded from the store at start).
    heard: bool,
}

/// Where a replica says which agents it hears (replicas on one store: an agent's session is
/// with one of them, and the leader expires agents).
fn presence_key(instance_key: &str) -> String {
    format!("presence/{instance_key}")
}

/// A replica's word that it heard an instance's agent.
#[derive(serde::Serialize, serde::Deserialize)]
struct Heard {
    /// Epoch seconds.
    at: f64,
    replica: String,
}

/// What an instance health check looks at (`InstanceHealthCheckResult.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceHealthCheckType {
    /// The container runtime (Docker) answers.
    ContainerRuntime,
    /// GPUs.
    AcceleratedCompute,
    /// A daemon the instance depends on (the EBS CSI driver).
    Daemon,
}

/// An instance health check's status; ordered from the least to the most severe, the order
/// in which one status outweighs another in `overallStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceHealthStatus {
    Ok,
    Initializing,
    InsufficientData,
    Impaired,
}

/// One instance health check as the agent reported it (ECS's `InstanceHealthCheckResult`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealthCheckResult {
    #[serde(rename = "type")]
    pub kind: InstanceHealthCheckType,
    pub status: InstanceHealthStatus,
    /// Epoch seconds.
    pub last_updated: f64,
    /// Epoch seconds.
    pub last_status_change: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// A container instance's health (ECS's `ContainerInstanceHealthStatus`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceHealth {
    pub overall_status: InstanceHealthStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<InstanceHealthCheckResult>,
}

impl ContainerInstanceHealth {
    /// What reported `checks` say of an instance: with no report, `INSUFFICIENT_DATA`;
    /// with its agent disconnected, every check `INSUFFICIENT_DATA`; the overall status is
    /// the most severe of the checks' (IMPAIRED, then INSUFFICIENT_DATA, INITIALIZING, OK).
    pub fn of(checks: &[InstanceHealthCheckResult], agent_connected: bool) -> Self {
        let details: Vec<InstanceHealthCheckResult> = checks
            .iter()
            .cloned()
            .map(|mut check| {
                if !agent_connected {
                    check.status = InstanceHealthStatus::InsufficientData;
                    check.status_reason =
                        Some("The container instance's agent is disconnected".into());
                }
                check
            })
            .collect();
        let overall_status = details
            .iter()
            .map(|check| check.status)
            .max()
            .unwrap_or(InstanceHealthStatus::InsufficientData);
        ContainerInstanceHealth {
            overall_status,
            details,
        }
    }
}

#[derive(Default)]
pub(crate) struct Presence {
    seen: Mutex<HashMap<String, Seen>>,
    /// Whether the instances already in the store have been taken in (first expiry pass).
    seeded: Mutex<bool>,
}

impl Presence {
    fn touch(&self, scope: &Scope, cluster: &str, id: &str, connected: bool) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = instance_key(scope, cluster, id);
        let entry = seen.entry(key).or_insert_with(|| Seen {
            scope: scope.clone(),
            cluster: cluster.to_string(),
            id: id.to_string(),
            at: 0.0,
            connected: false,
            health: Vec::new(),
            heard: true,
        });
        entry.at = now_epoch();
        entry.heard = true;
        let was = entry.connected;
        entry.connected = connected || was;
        was
    }
}

impl Ecs {
    /// Registration counts as a sign of life (the agent registers, then connects).
    pub(crate) fn agent_registered(&self, scope: &Scope, cluster: &str, id: &str) {
        self.presence.touch(scope, cluster, id, true);
    }

    /// A frame from the instance's agent arrived (in memory only).
    pub fn agent_heartbeat(&self, scope: &Scope, cluster: &str, id: &str) {
        self.presence.touch(scope, cluster, id, false);
    }

    /// The instance's agent opened a session: it is connected now.
    pub fn agent_connected(&self, scope: &Scope, cluster: &str, id: &str) -> Result<()> {
        self.presence.touch(scope, cluster, id, true);
        self.set_agent_connected(scope, cluster, id, true)
    }

    /// The instance's agent reported its health checks (in memory only). Checks of a kind
    /// the report leaves out are kept, as a report may carry only some.
    pub fn record_instance_health(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        checks: Vec<InstanceHealthCheckResult>,
    ) {
        self.presence.touch(scope, cluster, id, false);
        let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(&instance_key(scope, cluster, id)) {
            for check in checks {
                match entry.health.iter_mut().find(|c| c.kind == check.kind) {
                    Some(known) => *known = check,
                    None => entry.health.push(check),
                }
            }
        }
    }

    /// The instance's `healthStatus`, from its agent's last report and whether the agent is
    /// connected.
    pub fn container_instance_health(
        &self,
        scope: &Scope,
        instance: &ContainerInstance,
    ) -> ContainerInstanceHealth {
        let seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
        let checks = seen
            .get(&instance_key(scope, &instance.cluster, &instance.id))
            .map(|s| s.health.as_slice())
            .unwrap_or_default();
        ContainerInstanceHealth::of(checks, instance.agent_connected)
    }

    /// The agent's and Docker's versions as the agent's ACS connection names them
    /// (`agentVersion`, `agentHash`, `dockerVersion`): DescribeContainerInstances'
    /// `versionInfo`. The official agent sends them only there, not with its registration.
    /// What the connection leaves out stays as it was; an unchanged record is not rewritten.
    pub fn record_agent_version(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        seen: &VersionInfo,
    ) -> Result<()> {
        let key = instance_key(scope, cluster, id);
        berth_store::update(&*self.store, &key, |instance: Option<ContainerInstance>| {
            let Some(mut instance) = instance else {
                return Ok::<_, EcsError>(Change::Keep);
            };
            let mut version = instance.version_info.clone().unwrap_or_default();
            let fields = [
                (&mut version.agent_version, &seen.agent_version),
                (&mut version.agent_hash, &seen.agent_hash),
                (&mut version.docker_version, &seen.docker_version),
            ];
            for (field, new) in fields {
                if new.is_some() {
                    field.clone_from(new);
                }
            }
            if instance.version_info.as_ref() == Some(&version) || version == VersionInfo::default()
            {
                return Ok(Change::Keep);
            }
            instance.version_info = Some(version);
            Ok(Change::Put(instance))
        })?;
        Ok(())
    }

    fn set_agent_connected(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        value: bool,
    ) -> Result<()> {
        let key = instance_key(scope, cluster, id);
        berth_store::update(&*self.store, &key, |instance: Option<ContainerInstance>| {
            Ok::<_, EcsError>(match instance {
                Some(mut instance) if instance.agent_connected != value => {
                    instance.agent_connected = value;
                    instance.version += 1;
                    Change::Put(instance)
                }
                _ => Change::Keep,
            })
        })?;
        Ok(())
    }

    /// Marks disconnected every instance whose agent has not been heard from for
    /// `timeout_seconds`; returns how many it marked. Run periodically by the server.
    pub fn expire_agents(&self, timeout_seconds: f64) -> Result<usize> {
        self.seed_presence()?;
        let cutoff = now_epoch() - timeout_seconds;
        let stale: Vec<(String, Scope, String, String)> = {
            let seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.iter()
                .filter(|(_, s)| s.connected && s.at < cutoff)
                .map(|(k, s)| (k.clone(), s.scope.clone(), s.cluster.clone(), s.id.clone()))
                .collect()
        };
        let mut marked = 0;
        for (key, scope, cluster, id) in stale {
            // Another replica hears it? (Its session is there.)
            if let Some(kv) = self.store.get(&presence_key(&key))?
                && let Ok(heard) = serde_json::from_slice::<Heard>(&kv.value)
                && heard.at >= cutoff
            {
                let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = seen.get_mut(&key) {
                    s.at = s.at.max(heard.at);
                }
                continue;
            }
            // Heard from meanwhile? Then leave it.
            {
                let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
                match seen.get_mut(&key) {
                    Some(s) if s.at < cutoff => s.connected = false,
                    _ => continue,
                }
            }
            if self.store.get(&key)?.is_none() {
                // Deregistered: forget it, and its presence record (replicas).
                self.store
                    .txn(&[], &[berth_store::Op::delete(presence_key(&key))])?;
                self.presence
                    .seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                continue;
            }
            self.set_agent_connected(&scope, &cluster, &id, false)?;
            marked += 1;
        }
        Ok(marked)
    }

    /// Replicas: writes to the store which agents this replica has heard from within
    /// `within_seconds`, for the leader's expiry (which only hears its own sessions).
    /// Returns how many it wrote.
    pub fn publish_presence(&self, replica: &str, within_seconds: f64) -> Result<usize> {
        let now = now_epoch();
        let heard: Vec<String> = {
            let seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.iter()
                .filter(|(_, s)| s.heard && s.at >= now - within_seconds)
                .map(|(k, _)| presence_key(k))
                .collect()
        };
        let value = serde_json::to_vec(&Heard {
            at: now,
            replica: replica.to_owned(),
        })
        .expect("presence serialises");
        for batch in heard.chunks(64) {
            let ops: Vec<_> = batch
                .iter()
                .map(|k| berth_store::Op::put(k, value.clone()))
                .collect();
            self.store.txn(&[], &ops)?;
        }
        Ok(heard.len())
    }

    /// Once per process: every registered instance whose agent the store says is connected
    /// gets one timeout from now to show up.
    fn seed_presence(&self) -> Result<()> {
        let mut seeded = self
            .presence
            .seeded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *seeded {
            return Ok(());
        }
        let now = now_epoch();
        crate::scan(&*self.store, crate::keys::ROOT, None, |kv| {
            let Some((scope, rest)) = split_key(&kv.key) else {
                return Ok(true);
            };
            if !rest.starts_with("instance/") {
                return Ok(true);
            }
            let instance: ContainerInstance = decode(kv)?;
            {
                let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.entry(kv.key.clone()).or_insert(Seen {
                    scope,
                    cluster: instance.cluster.clone(),
                    id: instance.id.clone(),
                    at: now,
                    connected: instance.agent_connected,
                    health: Vec::new(),
                    heard: false,
                });
            }
            Ok(true)
        })?;
        *seeded = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{CreateCluster, RegisterContainerInstance};

    /// The official agent names its versions only in its ACS connection: they become the
    /// instance's versionInfo, and a connection without them changes nothing.
    #[test]
    fn the_acs_connection_names_the_agent_version() {
        let w = crate::testing::World::new();
        let id = w.instance(1024, 1024).id;
        let version = |w: &crate::testing::World| {
            w.ecs
                .container_instance(&w.scope, None, &id)
                .unwrap()
                .unwrap()
                .version_info
        };
        assert_eq!(version(&w), None);
        let seen = VersionInfo {
            agent_version: Some("1.105.0".into()),
            agent_hash: Some("5c45eef5".into()),
            docker_version: Some("DockerVersion: 20.10.24+dfsg1".into()),
        };
        w.ecs
            .record_agent_version(&w.scope, "default", &id, &seen)
            .unwrap();
        assert_eq!(version(&w), Some(seen.clone()));
        w.ecs
            .record_agent_version(&w.scope, "default", &id, &VersionInfo::default())
            .unwrap();
        assert_eq!(version(&w), Some(seen));
    }

    fn connected(ecs: &Ecs, scope: &Scope, id: &str) -> bool {
        ecs.container_instance(scope, None, id)
            .unwrap()
            .unwrap()
            .agent_connected
    }

    #[test]
    fn silent_agents_are_marked_disconnected_and_come_back() {
        let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
        let scope = Scope::default_installation();
        ecs.create_cluster(&scope, CreateCluster::default())
            .unwrap();
        let instance = ecs
            .register_container_instance(&scope, RegisterContainerInstance::default())
            .unwrap();
        // Just registered: within any timeout.
        assert_eq!(ecs.expire_agents(60.0).unwrap(), 0);
        assert!(connected(&ecs, &scope, &instance.id));
        // Silent for longer than the timeout: disconnected, once.
        assert_eq!(ecs.expire_agents(-1.0).unwrap(), 1);
        assert!(!connected(&ecs, &scope, &instance.id));
        assert_eq!(ecs.expire_agents(-1.0).unwrap(), 0);
        // A session opens: connected again.
        ecs.agent_connected(&scope, "default", &instance.id)
            .unwrap();
        assert!(connected(&ecs, &scope, &instance.id));
        // Frames keep it so; a deregistered instance is forgotten.
        ecs.agent_heartbeat(&scope, "default", &instance.id);
        assert_eq!(ecs.expire_agents(60.0).unwrap(), 0);
    }

    /// After a restart, instances the store says are connected get one timeout to show up.
    #[test]
    fn a_restart_gives_known_agents_one_timeout() {
        let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::MemStore::new());
        let scope = Scope::default_installation();
        let first = Ecs::new(store.clone());
        first
            .create_cluster(&scope, CreateCluster::default())
            .unwrap();
        let instance = first
            .register_container_instance(&scope, RegisterContainerInstance::default())
            .unwrap();
        let restarted = Ecs::new(store);
        assert_eq!(restarted.expire_agents(60.0).unwrap(), 0);
        assert!(connected(&restarted, &scope, &instance.id));
        assert_eq!(restarted.expire_agents(-1.0).unwrap(), 1);
        assert!(!connected(&restarted, &scope, &instance.id));
    }

    fn check(status: InstanceHealthStatus, at: f64) -> InstanceHealthCheckResult {
        InstanceHealthCheckResult {
            kind: InstanceHealthCheckType::ContainerRuntime,
            status,
            last_updated: at,
            last_status_change: at - 10.0,
            status_reason: None,
        }
    }

    #[test]
    fn overall_status_is_the_most_severe_check_and_unknown_without_a_report() {
        use InstanceHealthStatus::*;
        let none = ContainerInstanceHealth::of(&[], true);
        assert_eq!(none.overall_status, InsufficientData);
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            serde_json::json!({"overallStatus": "INSUFFICIENT_DATA"})
        );
        for (statuses, overall) in [
            (vec![Ok], Ok),
            (vec![Ok, Initializing], Initializing),
            (vec![Initializing, InsufficientData, Ok], InsufficientData),
            (vec![Ok, Impaired, InsufficientData], Impaired),
        ] {
            let checks: Vec<_> = statuses.iter().map(|s| check(*s, 100.0)).collect();
            assert_eq!(
                ContainerInstanceHealth::of(&checks, true).overall_status,
                overall,
                "{statuses:?}"
            );
        }
    }

    #[test]
    fn health_has_ecs_shape_and_a_disconnected_agent_vouches_for_nothing() {
        let mut impaired = check(InstanceHealthStatus::Impaired, 1_700_000_020.5);
        impaired.status_reason = Some("connection refused".into());
        let health = ContainerInstanceHealth::of(std::slice::from_ref(&impaired), true);
        assert_eq!(
            serde_json::to_value(&health).unwrap(),
            serde_json::json!({
                "overallStatus": "IMPAIRED",
                "details": [{
                    "type": "CONTAINER_RUNTIME",
                    "status": "IMPAIRED",
                    "lastUpdated": 1_700_000_020.5,
                    "lastStatusChange": 1_700_000_010.5,
                    "statusReason": "connection refused",
                }]
            })
        );
        let away = ContainerInstanceHealth::of(&[check(InstanceHealthStatus::Ok, 50.0)], false);
        assert_eq!(away.overall_status, InstanceHealthStatus::InsufficientData);
        assert_eq!(
            away.details[0].status,
            InstanceHealthStatus::InsufficientData
        );
        assert_eq!(away.details[0].last_updated, 50.0, "the last report's time");
    }

    #[test]
    fn the_latest_report_per_check_is_kept_per_instance_in_memory() {
        let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
        let scope = Scope::default_installation();
        ecs.create_cluster(&scope, CreateCluster::default())
            .unwrap();
        let registered = ecs
            .register_container_instance(&scope, RegisterContainerInstance::default())
            .unwrap();
        let health = |ecs: &Ecs| {
            let instance = ecs
                .container_instance(&scope, None, &registered.id)
                .unwrap()
                .unwrap();
            ecs.container_instance_health(&scope, &instance)
        };
        assert_eq!(
            health(&ecs).overall_status,
            InstanceHealthStatus::InsufficientData
        );
        ecs.record_instance_health(
            &scope,
            "default",
            &registered.id,
            vec![check(InstanceHealthStatus::Impaired, 10.0)],
        );
        assert_eq!(health(&ecs).overall_status, InstanceHealthStatus::Impaired);
        let mut gpu = check(InstanceHealthStatus::Ok, 20.0);
        gpu.kind = InstanceHealthCheckType::AcceleratedCompute;
        ecs.record_instance_health(
            &scope,
            "default",
            &registered.id,
            vec![check(InstanceHealthStatus::Ok, 20.0), gpu],
        );
        let now = health(&ecs);
        assert_eq!(now.overall_status, InstanceHealthStatus::Ok);
        assert_eq!(now.details.len(), 2, "one entry per kind of check");
        assert_eq!(now.details[0].last_updated, 20.0);
        // The agent goes silent past the timeout.
        assert_eq!(ecs.expire_agents(-1.0).unwrap(), 1);
        assert_eq!(
            health(&ecs).overall_status,
            InstanceHealthStatus::InsufficientData
        );
        // A restarted server knows nothing until the agent reports again.
        let restarted = Ecs::new(ecs.store.clone());
        assert_eq!(
            health(&restarted).overall_status,
            InstanceHealthStatus::InsufficientData
        );
        assert!(health(&restarted).details.is_empty());
    }
}
