//! Warm infra containers: pause containers started ahead of time with no network, so an
//! awsvpc task's namespace comes up by connecting one to the subnet's network with the task's
//! address (`docker network connect`, ~130 ms on the reference machine) instead of creating
//! and starting one there (~450 ms, most of the Fargate launch type's extra launch time; see
//! BENCHMARKS.md, "Fargate launch latency").
//!
//! A warm container carries the instance and cluster labels and [`LABEL_WARM`], never a
//! task's (labels cannot change after creation): a task that takes one records its id in its
//! state record before connecting it, and an agent starting up removes the warm containers no
//! task record names. The pool fills from the start on Fargate capacity (every task there is
//! awsvpc) and from the first awsvpc task on elsewhere, so an instance that never runs one
//! never holds one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_model::{InstallationId, LABEL_INSTALLATION};
use berth_runtime::{ContainerId, ContainerSpec, NetworkMode};

use crate::infra::{PAUSE_CONTAINER_NAME, PAUSE_IMAGE};
use crate::translate::{LABEL_CLUSTER, LABEL_CONTAINER_NAME, LABEL_INSTANCE};

/// Marks a warm infra container (its value is "true").
pub const LABEL_WARM: &str = "berth.warm-infra";

/// A started warm container, not yet any task's.
#[derive(Debug, Clone, PartialEq)]
pub struct Warm {
    pub id: ContainerId,
    pub name: String,
}

/// The name of a new warm container: `berth-<installation>-warm-infra-<random>`.
pub fn warm_name(installation: &InstallationId) -> String {
    format!(
        "berth-{installation}-warm-infra-{:016x}",
        rand::random::<u64>()
    )
}

/// The spec of a warm container: the pause image with no network, labelled for this instance
/// and installation.
pub fn warm_spec(
    name: &str,
    cluster: &str,
    instance_arn: &str,
    installation: &InstallationId,
) -> ContainerSpec {
    ContainerSpec {
        name: Some(name.to_owned()),
        image: PAUSE_IMAGE.to_owned(),
        network_mode: NetworkMode::None,
        labels: BTreeMap::from([
            (LABEL_INSTALLATION.to_owned(), installation.to_string()),
            (LABEL_CLUSTER.to_owned(), cluster.to_owned()),
            (LABEL_INSTANCE.to_owned(), instance_arn.to_owned()),
            (
                LABEL_CONTAINER_NAME.to_owned(),
                PAUSE_CONTAINER_NAME.to_owned(),
            ),
            (LABEL_WARM.to_owned(), "true".to_owned()),
        ]),
        // The smallest limits Docker takes, as the infra container's: it only waits.
        cpu_shares: Some(2),
        memory_mib: Some(6),
        ..ContainerSpec::default()
    }
}

/// The pool's bookkeeping (the engine creates and removes the containers).
pub struct WarmPool {
    target: usize,
    inner: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    active: bool,
    filling: bool,
    ready: Vec<Warm>,
}

impl WarmPool {
    /// A pool of `target` containers (0: none, ever); `active` fills it from the start.
    pub fn new(target: usize, active: bool) -> Self {
        WarmPool {
            target,
            inner: Mutex::new(PoolState {
                active,
                ..PoolState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns the pool on (an awsvpc task came).
    pub fn activate(&self) {
        self.lock().active = true;
    }

    /// A warm container, if one is ready.
    pub fn take(&self) -> Option<Warm> {
        self.lock().ready.pop()
    }

    /// Whether a filler should start now; if so the caller is it, until [`Self::done`].
    pub fn start_filling(&self) -> bool {
        let mut state = self.lock();
        if state.filling || !state.active || state.ready.len() >= self.target {
            return false;
        }
        state.filling = true;
        true
    }

    /// Whether the filler should make another.
    pub fn wants_more(&self) -> bool {
        let state = self.lock();
        state.active && state.ready.len() < self.target
    }

    pub fn put(&self, warm: Warm) {
        self.lock().ready.push(warm);
    }

    /// The filler stopped.
    pub fn done(&self) {
        self.lock().filling = false;
    }

    /// Empties the pool, for removal on shutdown.
    pub fn drain(&self) -> Vec<Warm> {
        let mut state = self.lock();
        state.active = false;
        std::mem::take(&mut state.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(n: u32) -> Warm {
        Warm {
            id: ContainerId::from(format!("c{n}")),
            name: format!("w{n}"),
        }
    }

    #[test]
    fn an_inactive_pool_never_fills() {
        let pool = WarmPool::new(2, false);
        assert!(!pool.start_filling());
        assert!(!pool.wants_more());
        pool.activate();
        assert!(pool.start_filling());
        assert!(!pool.start_filling(), "one filler at a time");
        pool.put(warm(1));
        assert!(pool.wants_more());
        pool.put(warm(2));
        assert!(!pool.wants_more());
        pool.done();
        assert!(!pool.start_filling(), "full");
        assert_eq!(pool.take(), Some(warm(2)));
        assert!(pool.start_filling());
    }

    #[test]
    fn a_zero_target_pool_stays_empty_and_drain_stops_it() {
        let pool = WarmPool::new(0, true);
        assert!(!pool.start_filling());
        assert_eq!(pool.take(), None);
        let pool = WarmPool::new(1, true);
        pool.put(warm(1));
        assert_eq!(pool.drain(), vec![warm(1)]);
        assert!(!pool.start_filling());
    }

    #[test]
    fn the_spec_has_no_network_and_no_task_labels() {
        let installation: InstallationId = "inst000001".parse().unwrap();
        let name = warm_name(&installation);
        assert!(name.starts_with("berth-inst000001-warm-infra-"), "{name}");
        let spec = warm_spec(&name, "c", "arn:i", &installation);
        assert_eq!(spec.network_mode, NetworkMode::None);
        assert_eq!(spec.labels[LABEL_WARM], "true");
        assert_eq!(spec.labels[LABEL_INSTALLATION], "inst000001");
        assert_eq!(spec.labels[LABEL_INSTANCE], "arn:i");
        assert!(!spec.labels.contains_key(crate::translate::LABEL_TASK_ARN));
    }
}
