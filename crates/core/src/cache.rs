//! An in-memory view of each cluster's registered container instances for RunTask, kept
//! current by a store watch instead of re-reading and re-decoding every instance on every
//! call. It is only a planning aid: the applier re-reads the instance it commits to under
//! compare-and-swap, so a view that lags behind costs a re-plan, never an over-commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use berth_model::Scope;
use berth_store::{EventKind, Store, Watcher};

use crate::instances::ContainerInstance;
use crate::{Result, decode};

struct Entry {
    mod_revision: u64,
    instance: ContainerInstance,
    view: berth_scheduler::ContainerInstance,
}

struct ClusterView {
    scope: Scope,
    watcher: Watcher,
    entries: BTreeMap<String, Entry>,
}

/// Views by instance-key prefix. A std Mutex is fine: no `.await` happens while it is held.
#[derive(Default)]
pub(crate) struct InstanceCache {
    clusters: Mutex<HashMap<String, ClusterView>>,
}

impl InstanceCache {
    /// Apply the changes waiting for every cached cluster, so that the watch queues of
    /// clusters nobody runs tasks on stay short (called periodically by the server).
    pub(crate) fn refresh_all(&self, store: &dyn Store) -> Result<()> {
        let views: Vec<(String, Scope)> = {
            let clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
            clusters
                .iter()
                .map(|(prefix, v)| (prefix.clone(), v.scope.clone()))
                .collect()
        };
        for (prefix, scope) in views {
            self.instances(store, &scope, &prefix)?;
        }
        Ok(())
    }

    /// The instances under `prefix` (in key order) and their placement views.
    pub(crate) fn instances(
        &self,
        store: &dyn Store,
        scope: &Scope,
        prefix: &str,
    ) -> Result<Vec<(ContainerInstance, berth_scheduler::ContainerInstance)>> {
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        if !clusters.contains_key(prefix) {
            // Watch from the current revision first, then read: an event for a change the
            // read already saw is recognised by its revision and skipped.
            let revision = store.current_revision()?;
            let watcher = store.watch(prefix, revision)?;
            let mut entries = BTreeMap::new();
            for kv in store.range(prefix, None, 0)? {
                let instance: ContainerInstance = decode(&kv)?;
                let view = instance.placement_view(scope);
                entries.insert(
                    kv.key.clone(),
                    Entry {
                        mod_revision: kv.mod_revision,
                        instance,
                        view,
                    },
                );
            }
            clusters.insert(
                prefix.to_string(),
                ClusterView {
                    scope: scope.clone(),
                    watcher,
                    entries,
                },
            );
        }
        let cluster = clusters.get_mut(prefix).expect("inserted above");
        loop {
            match cluster.watcher.try_recv() {
                Ok(event) => {
                    let key = event.kv.key.clone();
                    let newer = cluster
                        .entries
                        .get(&key)
                        .is_none_or(|e| e.mod_revision < event.kv.mod_revision);
                    match event.kind {
                        EventKind::Put if newer => {
                            let instance: ContainerInstance = decode(&event.kv)?;
                            let view = instance.placement_view(scope);
                            cluster.entries.insert(
                                key,
                                Entry {
                                    mod_revision: event.kv.mod_revision,
                                    instance,
                                    view,
                                },
                            );
                        }
                        EventKind::Delete if newer => {
                            cluster.entries.remove(&key);
                        }
                        _ => {}
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    // The store dropped the watch: rebuild on the next call.
                    clusters.remove(prefix);
                    drop(clusters);
                    return self.instances(store, scope, prefix);
                }
            }
        }
        Ok(cluster
            .entries
            .values()
            .map(|e| (e.instance.clone(), e.view.clone()))
            .collect())
    }
}
