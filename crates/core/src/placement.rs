//! RunTask's placement lanes, one per cluster. A lane holds a long-lived
//! [`berth_scheduler::Placer`] over the cluster's container instances (its indexes carry
//! over from one request to the next, so a placement costs O(log n)), the decoded instance
//! records beside it, and the store revision each record was read at; a store watch keeps
//! them current. Concurrent RunTasks on one cluster are combined: whoever holds the lane
//! plans every request waiting in its queue and commits them all in one transaction, with
//! a compare on the revision of every instance it changed. A compare that fails (someone
//! else changed one of those instances since the lane last saw it) rebuilds the lane from
//! the store and plans the batch again, so nothing is ever over-committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_model::Scope;
use berth_store::{EventKind, Revision, Store, Watcher};

use crate::instances::ContainerInstance;
use crate::tasks::PlacementJob;
use crate::{Result, RunTaskOutcome, decode};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One registered instance as the lane holds it, at the same position as its view in
/// the placer's snapshot.
pub(crate) struct Slot {
    pub(crate) key: String,
    pub(crate) mod_revision: Revision,
    pub(crate) instance: ContainerInstance,
}

/// A cluster's instances, their placement views and the watch that keeps both current.
pub(crate) struct LaneState {
    watcher: Watcher,
    pub(crate) slots: Vec<Slot>,
    slot_of: HashMap<String, usize>,
    pub(crate) placer: berth_scheduler::Placer,
}

impl LaneState {
    fn load(store: &dyn Store, scope: &Scope, prefix: &str) -> Result<LaneState> {
        // Watch from the current revision first, then read: an event for a change the
        // read already saw is recognised by its revision and skipped.
        let revision = store.current_revision()?;
        let watcher = store.watch(prefix, revision)?;
        let mut slots = Vec::new();
        let mut views = Vec::new();
        for kv in store.range(prefix, None, 0)? {
            let instance: ContainerInstance = decode(&kv)?;
            views.push(instance.placement_view(scope));
            slots.push(Slot {
                key: kv.key.clone(),
                mod_revision: kv.mod_revision,
                instance,
            });
        }
        let slot_of = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i))
            .collect();
        Ok(LaneState {
            watcher,
            slots,
            slot_of,
            placer: berth_scheduler::Placer::new(
                berth_scheduler::ClusterSnapshot { instances: views },
                crate::tasks::rand_seed(),
            ),
        })
    }

    /// Applies the changes committed since the last call. `false`: the lane cannot follow
    /// (an instance left, or the store dropped the watch) and must be rebuilt.
    fn catch_up(&mut self, scope: &Scope) -> Result<bool> {
        loop {
            let event = match self.watcher.try_recv() {
                Ok(event) => event,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return Ok(true),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return Ok(false),
            };
            let slot = self.slot_of.get(&event.kv.key).copied();
            if slot.is_some_and(|i| self.slots[i].mod_revision >= event.kv.mod_revision) {
                continue; // already seen (read at load, or committed by this lane)
            }
            match (event.kind, slot) {
                (EventKind::Delete, None) => {}
                // Deregistration is rare: rebuilding is simpler than holes in the snapshot.
                (EventKind::Delete, Some(_)) => return Ok(false),
                (EventKind::Put, Some(i)) => {
                    let instance: ContainerInstance = decode(&event.kv)?;
                    self.placer
                        .replace_instance(i, instance.placement_view(scope));
                    self.slots[i] = Slot {
                        key: event.kv.key.clone(),
                        mod_revision: event.kv.mod_revision,
                        instance,
                    };
                }
                (EventKind::Put, None) => {
                    let instance: ContainerInstance = decode(&event.kv)?;
                    let i = self.placer.push_instance(instance.placement_view(scope));
                    debug_assert_eq!(i, self.slots.len());
                    self.slot_of.insert(event.kv.key.clone(), i);
                    self.slots.push(Slot {
                        key: event.kv.key.clone(),
                        mod_revision: event.kv.mod_revision,
                        instance,
                    });
                }
            }
        }
    }
}

/// A RunTask waiting in a lane, and where its answer goes.
pub(crate) struct Job {
    pub(crate) input: PlacementJob,
    answer: Mutex<Option<Result<RunTaskOutcome>>>,
}

impl Job {
    pub(crate) fn answer(&self, result: Result<RunTaskOutcome>) {
        *lock(&self.answer) = Some(result);
    }
}

/// One cluster's lane: the queue of waiting RunTasks and the state that plans them.
pub(crate) struct Lane {
    scope: Scope,
    prefix: String,
    queue: Mutex<Vec<Arc<Job>>>,
    state: Mutex<Option<LaneState>>,
}

impl Lane {
    /// Runs `input` through the lane. The caller queues its job, then takes the lane; if a
    /// previous holder already planned its job (in that holder's batch), its answer is
    /// waiting; otherwise it plans everything queued so far with `process`, which must
    /// answer every job of the batch. The lane's state is `None` when it must be (re)built
    /// from the store.
    pub(crate) fn run(
        &self,
        input: PlacementJob,
        process: impl FnOnce(&mut Option<LaneState>, &[Arc<Job>]),
    ) -> Result<RunTaskOutcome> {
        let job = Arc::new(Job {
            input,
            answer: Mutex::new(None),
        });
        lock(&self.queue).push(job.clone());
        let mut state = lock(&self.state);
        if let Some(answer) = lock(&job.answer).take() {
            return answer;
        }
        let batch = std::mem::take(&mut *lock(&self.queue));
        process(&mut state, &batch);
        drop(state);
        lock(&job.answer)
            .take()
            .expect("a batch answers every job it holds, and this job was in it")
    }

    /// The lane's state, loaded and caught up with the store.
    pub(crate) fn current<'a>(
        &self,
        store: &dyn Store,
        state: &'a mut Option<LaneState>,
    ) -> Result<&'a mut LaneState> {
        if let Some(s) = state.as_mut()
            && !s.catch_up(&self.scope)?
        {
            *state = None;
        }
        if state.is_none() {
            *state = Some(LaneState::load(store, &self.scope, &self.prefix)?);
        }
        Ok(state.as_mut().expect("loaded above"))
    }
}

/// Every cluster's lane, by the key prefix of its instances.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

impl Lanes {
    pub(crate) fn lane(&self, scope: &Scope, prefix: &str) -> Arc<Lane> {
        lock(&self.lanes)
            .entry(prefix.to_string())
            .or_insert_with(|| {
                Arc::new(Lane {
                    scope: scope.clone(),
                    prefix: prefix.to_string(),
                    queue: Mutex::new(Vec::new()),
                    state: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Applies the changes waiting for every lane, so that the watch queues of clusters
    /// nobody runs tasks on stay short (called periodically by the server).
    pub(crate) fn refresh_all(&self, store: &dyn Store) -> Result<()> {
        let lanes: Vec<Arc<Lane>> = lock(&self.lanes).values().cloned().collect();
        for lane in lanes {
            let mut state = lock(&lane.state);
            if state.is_some() {
                lane.current(store, &mut state)?;
            }
        }
        Ok(())
    }
}
