//! RunTask's placement lanes, one per cluster. A lane holds a long-lived
//! [`berth_scheduler::Placer`] over the cluster's container instances (its indexes carry
//! over from one request to the next, so a placement costs O(log n)), the decoded instance
//! records beside it, and the store revision each record was read at; a store watch keeps
//! them current. Concurrent RunTasks on one cluster are combined: the lane's worker thread
//! takes every request waiting in its queue, plans them in turn and commits them all in one
//! transaction (one fsync), with a compare on the revision of every instance it changed.
//! Callers wait on a oneshot, so an async caller holds no thread while it waits. A compare
//! that fails (someone else changed one of those instances since the lane last saw it:
//! a task stopping there, StartTask, an attribute change) reads those instances again and
//! plans the batch again, so nothing is ever over-committed. Agents' reports short of
//! STOPPED never touch instance records (see the live-task index in tasks.rs), so they
//! cannot make a batch lose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_model::Scope;
use berth_store::{EventKind, KeyValue, Revision, Store, Watcher};
use tokio::sync::oneshot;

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

    /// Slot `i` (and its placement view) as the store holds it in `kv`.
    pub(crate) fn replace_slot(&mut self, i: usize, scope: &Scope, kv: KeyValue) -> Result<()> {
        let instance: ContainerInstance = decode(&kv)?;
        self.placer
            .replace_instance(i, instance.placement_view(scope));
        self.slots[i] = Slot {
            key: kv.key,
            mod_revision: kv.mod_revision,
            instance,
        };
        Ok(())
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
                (EventKind::Put, Some(i)) => self.replace_slot(i, scope, event.kv)?,
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
    answer: oneshot::Sender<Result<RunTaskOutcome>>,
}

impl Job {
    pub(crate) fn answer(self, result: Result<RunTaskOutcome>) {
        // The caller may have given up waiting; nothing to do then.
        let _ = self.answer.send(result);
    }
}

/// The most RunTasks one batch commits together.
const MAX_BATCH: usize = 256;

/// One cluster's lane: the queue of waiting RunTasks, and the state its worker plans on.
pub(crate) struct Lane {
    context: Arc<LaneContext>,
    queue: std::sync::mpsc::Sender<Job>,
    state: Arc<Mutex<Option<LaneState>>>,
}

/// What a batch is processed with: the store, the lane's scope and key prefix, the lane's
/// state (`None` when it must be rebuilt from the store) and the jobs, each to be answered.
pub(crate) type BatchFn = fn(&dyn Store, &LaneContext, &mut Option<LaneState>, Vec<Job>);

/// The lane's identity, as the batch function needs it.
pub(crate) struct LaneContext {
    pub(crate) scope: Scope,
    pub(crate) prefix: String,
}

impl LaneContext {
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

impl Lane {
    /// Queues `input`; the answer arrives on the returned receiver.
    pub(crate) fn submit(&self, input: PlacementJob) -> oneshot::Receiver<Result<RunTaskOutcome>> {
        let (tx, rx) = oneshot::channel();
        let job = Job { input, answer: tx };
        if let Err(std::sync::mpsc::SendError(job)) = self.queue.send(job) {
            job.answer(Err(crate::EcsError::Server(
                "The placement lane of this cluster has stopped.".into(),
            )));
        }
        rx
    }

    fn spawn(store: Arc<dyn Store>, scope: Scope, prefix: String, process: BatchFn) -> Lane {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let state: Arc<Mutex<Option<LaneState>>> = Arc::new(Mutex::new(None));
        let context = Arc::new(LaneContext { scope, prefix });
        let worker_context = context.clone();
        let worker_state = state.clone();
        std::thread::Builder::new()
            .name("placement-lane".into())
            .spawn(move || {
                // Ends when the lane (and so the queue's sender) is dropped.
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let mut state = lock(&worker_state);
                    process(&*store, &worker_context, &mut state, batch);
                }
            })
            .expect("spawning a placement lane thread");
        Lane {
            context,
            queue,
            state,
        }
    }
}

/// Every cluster's lane, by the key prefix of its instances.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

impl Lanes {
    pub(crate) fn lane(
        &self,
        store: &Arc<dyn Store>,
        scope: &Scope,
        prefix: &str,
        process: BatchFn,
    ) -> Arc<Lane> {
        lock(&self.lanes)
            .entry(prefix.to_string())
            .or_insert_with(|| {
                Arc::new(Lane::spawn(
                    store.clone(),
                    scope.clone(),
                    prefix.to_string(),
                    process,
                ))
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
                lane.context.current(store, &mut state)?;
            }
        }
        Ok(())
    }
}
