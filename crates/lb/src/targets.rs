//! A target group at run time: its registered targets with their health, the set requests
//! go to (healthy ones; all registered ones when none is healthy, as ALB fails open), and
//! the targets draining after deregistration.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::health::{self, HealthSink, TargetHealth, TargetHealthState};
use crate::plan::{TargetGroupId, TargetGroupPlan, TargetId};
use crate::swap::Swap;
use crate::traffic::{GroupCounters, TargetGroupTraffic};
use crate::workers;

pub(crate) struct Target {
    pub id: TargetId,
    pub addr: SocketAddr,
    /// The `AWSALB` cookie value naming this target: opaque, and stable across restarts.
    pub cookie: String,
    state: AtomicU8,
    draining: AtomicBool,
    /// Set while the drain decides the target is quiet; see `enter`.
    closing: AtomicBool,
    in_flight: AtomicUsize,
    /// Cancelled when the target is no longer health-checked.
    checks: Mutex<CancellationToken>,
    /// Cancelled once the deregistration delay is over: what is still open is cut.
    pub kill: CancellationToken,
    /// Keep-alive connections to it no request is using, shared by all client connections.
    pub idle: IdlePool,
    /// Its group's counters.
    pub traffic: Arc<GroupCounters>,
}

/// One keep-alive connection to a target.
pub(crate) struct Upstream {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// It served an earlier request (so the target may have closed it meanwhile).
    pub reused: bool,
}

impl Upstream {
    /// False when the target closed the idle connection (or sent something unasked).
    pub fn still_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Idle keep-alive connections to one target, apart for each worker thread (a connection
/// is registered with its worker's runtime: `workers.rs`). A std lock, never held across an
/// `.await`.
#[derive(Default)]
pub(crate) struct IdlePool(Mutex<Vec<Vec<Upstream>>>);

impl IdlePool {
    pub fn take(&self) -> Option<Upstream> {
        lock(&self.0).get_mut(workers::current())?.pop()
    }

    /// Keeps `up` for the next request, unless `max` are kept already.
    pub fn put(&self, up: Upstream, max: usize) {
        let worker = workers::current();
        let mut pools = lock(&self.0);
        if pools.len() <= worker {
            pools.resize_with(worker + 1, Vec::new);
        }
        let idle = &mut pools[worker];
        if idle.len() < max {
            idle.push(up);
        }
    }

    fn clear(&self) {
        lock(&self.0).clear();
    }
}

impl Target {
    pub fn state(&self) -> TargetHealthState {
        TargetHealthState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Counts a request or connection until the guard drops, so draining knows when the
    /// target has nothing left in flight. None when the target is being closed: a request
    /// that picked it from an older routing snapshot picks again. (The drain sets `closing`
    /// then reads the count; this bumps the count then reads `closing`; with SeqCst one of
    /// the two sees the other, so no request slips in after the drain called it quiet.)
    pub fn enter(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.clone());
        (!self.closing.load(Ordering::SeqCst)).then_some(guard)
    }

    /// True when nothing is in flight, and from then on nothing can enter.
    fn close_if_quiet(&self) -> bool {
        self.closing.store(true, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            return true;
        }
        self.closing.store(false, Ordering::SeqCst);
        false
    }
}

pub(crate) struct InFlight(pub Arc<Target>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) struct Group {
    pub id: TargetGroupId,
    pub settings: Swap<TargetGroupPlan>,
    members: Mutex<HashMap<TargetId, Arc<Target>>>,
    /// Shared with the drain tasks, which outlive a retired group.
    draining: Arc<Mutex<HashMap<TargetId, Arc<Target>>>>,
    routable: Swap<Vec<Arc<Target>>>,
    next: AtomicUsize,
    sink: Arc<dyn HealthSink>,
    shutdown: CancellationToken,
    traffic: Arc<GroupCounters>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Group {
    pub fn new(
        plan: &TargetGroupPlan,
        sink: Arc<dyn HealthSink>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let group = Arc::new(Self {
            id: plan.id.clone(),
            settings: Swap::new(plan.clone()),
            members: Mutex::new(HashMap::new()),
            draining: Arc::new(Mutex::new(HashMap::new())),
            routable: Swap::new(Vec::new()),
            next: AtomicUsize::new(0),
            sink,
            shutdown,
            traffic: Arc::default(),
        });
        group.apply(plan);
        group
    }

    /// The group's traffic so far, with its healthy and unhealthy registered targets now.
    pub fn traffic(&self) -> TargetGroupTraffic {
        let (mut healthy, mut unhealthy) = (0, 0);
        for target in lock(&self.members).values() {
            match target.state() {
                TargetHealthState::Healthy => healthy += 1,
                TargetHealthState::Unhealthy => unhealthy += 1,
                _ => {}
            }
        }
        self.traffic.snapshot(healthy, unhealthy)
    }

    /// Registers the plan's new targets and deregisters (drains) the ones it no longer names.
    pub fn apply(self: &Arc<Self>, plan: &TargetGroupPlan) {
        self.settings.store(plan.clone());
        let mut members = lock(&self.members);
        let wanted: HashMap<&TargetId, SocketAddr> =
            plan.targets.iter().map(|t| (&t.id, t.address)).collect();
        let gone: Vec<TargetId> = members
            .iter()
            .filter(|(id, t)| wanted.get(id) != Some(&t.addr))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(target) = members.remove(&id) {
                self.deregister(target);
            }
        }
        for t in &plan.targets {
            if !members.contains_key(&t.id) {
                let target = self.register(&t.id, t.address);
                members.insert(t.id.clone(), target);
            }
        }
        drop(members);
        self.refresh_routable();
    }

    /// The group left the plan: every target drains.
    pub fn retire(&self) {
        let mut members = lock(&self.members);
        for (_, target) in members.drain() {
            self.deregister(target);
        }
        drop(members);
        self.routable.store(Vec::new());
    }

    fn register(self: &Arc<Self>, id: &TargetId, addr: SocketAddr) -> Arc<Target> {
        // Registered again while draining: it stops draining and is checked afresh.
        let revived = lock(&self.draining)
            .remove(id)
            .filter(|t| t.addr == addr && !t.kill.is_cancelled());
        let target = match revived {
            Some(t) => {
                t.draining.store(false, Ordering::Relaxed);
                t.closing.store(false, Ordering::SeqCst);
                *lock(&t.checks) = self.shutdown.child_token();
                t
            }
            None => Arc::new(Target {
                id: id.clone(),
                addr,
                cookie: cookie_value(&self.id, id, addr),
                state: AtomicU8::new(TargetHealthState::Initial as u8),
                draining: AtomicBool::new(false),
                closing: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                checks: Mutex::new(self.shutdown.child_token()),
                kill: CancellationToken::new(),
                idle: IdlePool::default(),
                traffic: self.traffic.clone(),
            }),
        };
        target
            .state
            .store(TargetHealthState::Initial as u8, Ordering::Relaxed);
        self.sink
            .target_health_changed(&self.id, id, &TargetHealth::initial());
        let checks = lock(&target.checks).clone();
        tokio::spawn(check_target(self.clone(), target.clone(), checks));
        target
    }

    /// New requests stop at once (the caller refreshes the routable set); what is in flight
    /// finishes, up to the deregistration delay, then is cut and the removal reported.
    fn deregister(&self, target: Arc<Target>) {
        target.draining.store(true, Ordering::Relaxed);
        lock(&target.checks).cancel();
        target
            .state
            .store(TargetHealthState::Draining as u8, Ordering::Relaxed);
        self.sink
            .target_health_changed(&self.id, &target.id, &TargetHealth::draining());
        lock(&self.draining).insert(target.id.clone(), target.clone());
        let delay = self.settings.load().deregistration_delay;
        let (group, sink, shutdown) = (self.id.clone(), self.sink.clone(), self.shutdown.clone());
        // The drain task takes what it needs rather than the group: a retired group goes.
        let draining = self.draining.clone();
        tokio::spawn(async move {
            let quiet = async {
                while !target.close_if_quiet() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                () = quiet => {}
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => {}
            }
            if !target.draining.load(Ordering::Relaxed) {
                target.closing.store(false, Ordering::SeqCst);
                return; // registered again meanwhile
            }
            target.closing.store(true, Ordering::SeqCst);
            target.kill.cancel();
            target.idle.clear();
            {
                let mut draining = lock(&draining);
                if draining
                    .get(&target.id)
                    .is_some_and(|t| Arc::ptr_eq(t, &target))
                {
                    draining.remove(&target.id);
                }
            }
            sink.target_removed(&group, &target.id);
        });
    }

    pub fn set_health(&self, target: &Target, health: TargetHealth) {
        let new = health.state as u8;
        // A draining target keeps its state whatever a late check says.
        let changed = target
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur != new && cur != TargetHealthState::Draining as u8).then_some(new)
            });
        if changed.is_err() {
            return;
        }
        // Routing first: whoever reads the report finds routing already following it.
        self.refresh_routable();
        self.sink
            .target_health_changed(&self.id, &target.id, &health);
    }

    fn refresh_routable(&self) {
        let members = lock(&self.members);
        let mut all: Vec<Arc<Target>> = members.values().cloned().collect();
        drop(members);
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let healthy: Vec<Arc<Target>> = all
            .iter()
            .filter(|t| t.state() == TargetHealthState::Healthy)
            .cloned()
            .collect();
        self.routable
            .store(if healthy.is_empty() { all } else { healthy });
    }

    /// The targets requests may go to now; empty when none is registered.
    pub fn routable(&self) -> Arc<Vec<Arc<Target>>> {
        self.routable.load()
    }

    /// The next target in turn, entered (see `Target::enter`).
    pub fn pick_round_robin(&self, routable: &[Arc<Target>]) -> Option<InFlight> {
        for _ in 0..routable.len() {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if let Some(entered) = routable[n % routable.len()].enter() {
                return Some(entered);
            }
        }
        None
    }
}

fn cookie_value(group: &TargetGroupId, target: &TargetId, addr: SocketAddr) -> String {
    let mut h = DefaultHasher::new();
    (group, target, addr).hash(&mut h);
    let a = h.finish();
    "berth-lb".hash(&mut h);
    format!("{a:016x}{:016x}", h.finish())
}

/// The health check loop of one target: consecutive results against the thresholds move it
/// between states. Ends when the target is deregistered or the data plane stops.
async fn check_target(group: Arc<Group>, target: Arc<Target>, stop: CancellationToken) {
    let (mut passes, mut fails) = (0u32, 0u32);
    loop {
        let settings = group.settings.load();
        let check = &settings.health_check;
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            r = health::probe(check, target.addr) => r,
        };
        match outcome {
            Ok(()) => {
                passes += 1;
                fails = 0;
                if passes >= check.healthy_threshold {
                    group.set_health(&target, TargetHealth::healthy());
                }
            }
            Err(unhealthy) => {
                fails += 1;
                passes = 0;
                if fails >= check.unhealthy_threshold {
                    group.set_health(&target, unhealthy);
                }
            }
        }
        let interval = check.interval;
        drop(settings);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
