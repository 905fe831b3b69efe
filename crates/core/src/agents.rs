//! Agent presence: whether each container instance's agent is connected. An agent counts
//! as connected from its registration or from the start of its websocket session, and
//! stays so while frames keep arriving; an agent not heard from for the heartbeat timeout
//! is marked disconnected (`agentConnected: false`), which takes its instance out of
//! placement. Presence itself is in memory (frames arrive every few seconds); only the
//! flips are written to the store. After a restart every known instance gets one timeout
//! to reconnect.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_model::Scope;
use berth_store::{Compare, Op};

use crate::instances::{ContainerInstance, instance_key};
use crate::{Ecs, Result, decode, encode, now_epoch};

struct Seen {
    scope: Scope,
    cluster: String,
    id: String,
    /// Epoch seconds of the last sign of life.
    at: f64,
    /// As last written to the store.
    connected: bool,
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
        });
        entry.at = now_epoch();
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

    fn set_agent_connected(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        value: bool,
    ) -> Result<()> {
        let key = instance_key(scope, cluster, id);
        loop {
            let Some(kv) = self.store.get(&key)? else {
                return Ok(());
            };
            let mut instance: ContainerInstance = decode(&kv)?;
            if instance.agent_connected == value {
                return Ok(());
            }
            instance.agent_connected = value;
            instance.version += 1;
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                    &[Op::put(key.clone(), encode(&instance))],
                )?
                .is_committed()
            {
                return Ok(());
            }
        }
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
            // Heard from meanwhile? Then leave it.
            {
                let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
                match seen.get_mut(&key) {
                    Some(s) if s.at < cutoff => s.connected = false,
                    _ => continue,
                }
            }
            if self.store.get(&key)?.is_none() {
                // Deregistered: forget it.
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
        crate::scan(&*self.store, "ecs/", None, |kv| {
            if !kv.key.contains("/instance/") {
                return Ok(true);
            }
            let instance: ContainerInstance = decode(kv)?;
            if let Some(scope) = scope_of(&kv.key) {
                let mut seen = self.presence.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.entry(kv.key.clone()).or_insert(Seen {
                    scope,
                    cluster: instance.cluster.clone(),
                    id: instance.id.clone(),
                    at: now,
                    connected: instance.agent_connected,
                });
            }
            Ok(true)
        })?;
        *seeded = true;
        Ok(())
    }
}

/// The scope of an `ecs/{account}/{region}/...` key.
pub(crate) fn scope_of(key: &str) -> Option<Scope> {
    let mut parts = key.split('/');
    parts.next()?;
    let account = parts.next()?.parse().ok()?;
    let region = parts.next()?.parse().ok()?;
    Some(Scope::new(account, region))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{CreateCluster, RegisterContainerInstance};

    fn connected(ecs: &Ecs, scope: &Scope, id: &str) -> bool {
        ecs.container_instance(scope, None, id)
            .unwrap()
            .unwrap()
            .agent_connected
    }

    #[test]
    fn silent_agents_are_marked_disconnected_and_come_back() {
        let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
        let scope = Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        );
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
        let scope = Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        );
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
}
