//! The service scheduler's decisions for a REPLICA service, pure: the service and its tasks
//! as stored, in; what to start, what to stop and how its deployments stand, out. The
//! caller (core's reconciler) applies the plan and asks again whenever anything changes, so
//! every decision is made from stored state alone, and a plan cut short by a crash is simply
//! made again.
//!
//! The rules are ECS's rolling update:
//! - at most `floor(desired × maximumPercent / 100)` tasks live at once (never fewer than
//!   `desired` when `maximumPercent` allows it), and at least
//!   `ceil(desired × minimumHealthyPercent / 100)` of them healthy while old tasks are
//!   stopped;
//! - a task is *healthy* once RUNNING and, when its containers have health checks, HEALTHY;
//!   an UNHEALTHY task is stopped ("Task failed container health checks") once the service's
//!   `healthCheckGracePeriodSeconds` since its start have passed, and replaced;
//! - the tasks of older deployments, and tasks on DRAINING instances, are replaced by tasks
//!   of the PRIMARY deployment and stopped within those bounds;
//! - tasks on an instance whose agent is lost count as gone (replacements start); if the
//!   agent comes back, the extra tasks are stopped;
//! - a deployment is COMPLETED once its desired count of tasks is *stable* (HEALTHY, or
//!   without health checks RUNNING for [`STABLE_AFTER_SECONDS`]) and nothing else is live;
//! - a task with scale-in protection (UpdateTaskProtection, not yet expired) is never
//!   chosen for a scale-in, nor replaced by a deployment: the deployment starts its new
//!   tasks and leaves the protected ones running until their protection ends (unhealthy
//!   tasks and tasks on DRAINING instances are stopped all the same);
//! - the deployment circuit breaker fails the PRIMARY deployment once
//!   `clamp(ceil(desired / 2), 3, 200)` of its tasks failed since one of them last became
//!   healthy, and rolls back to the last COMPLETED deployment when `rollback` is set.
//!
//! And ECS's service throttle: a service whose tasks keep failing to start is retried ever
//! more slowly, never given up on. A *failed start* is a task that stopped without the
//! scheduler or a user asking and either never reached RUNNING or stopped within
//! [`FAST_FAILURE_SECONDS`] of it ([`failed_start`]); the tasks one round launched that fail
//! together are one failed *attempt* ([`throttle`]). After `f` failed attempts in a row the
//! next tasks start [`throttle_delay`]`(f)` after the last failure: at once for `f = 1` (one
//! transient failure costs nothing), then `min(27 min, 10 s × 2^(f−2))` — 10, 20, 40, …,
//! 1280 s, then 1620 s (27 min) from then on. A task that stays up resets the count (as
//! the reconciler does on an UpdateService or a new deployment). Only starts are held back:
//! stops, deployment states and the circuit breaker go on as without the throttle.

use std::collections::BTreeMap;

/// ECS's stop reason for a task the scheduler replaces after failed health checks.
pub const REASON_UNHEALTHY: &str = "Task failed container health checks";
/// ECS's stop reason for a task a deployment replaces or a scale-in removes.
pub const REASON_SCALED_IN: &str = "Scaling activity initiated by (deployment {})";
/// Stop reason for a task moved off a DRAINING instance.
pub const REASON_DRAINING: &str = "Container instance is being drained";
/// Stop reason for a DAEMON task on an instance that no longer meets its constraints.
pub const REASON_NOT_ELIGIBLE: &str =
    "Container instance no longer meets the service's placement constraints";

pub use berth_model::ecs::RolloutState;

/// A deployment of the service, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentView {
    pub id: String,
    /// The PRIMARY deployment is the one tasks are started for; there is exactly one.
    pub primary: bool,
    pub rollout: RolloutState,
    pub task_definition: String,
}

/// Where a task is in its life, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPhase {
    /// Placed, not yet RUNNING (PROVISIONING, PENDING, ACTIVATING).
    Pending,
    Running,
    /// Asked to stop (desired STOPPED) or stopping: no longer counted.
    Stopping,
    Stopped,
}

/// Container health of a task, as ECS rolls it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskHealth {
    /// No container has a health check: RUNNING is healthy.
    None,
    Unknown,
    Healthy,
    Unhealthy,
}

/// One task of the service (its group's tasks, stopped ones included while they are kept).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    /// The deployment that started it (the task's `startedBy`).
    pub deployment: String,
    pub phase: TaskPhase,
    pub health: TaskHealth,
    /// When it became RUNNING (seconds since the epoch).
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    /// When it was created (its `createdAt`): which launch attempt it belongs to.
    pub created_at: f64,
    /// Stopped without the scheduler or a user asking (its essential container exited, it
    /// failed to start, or failed health checks): a failure for the circuit breaker.
    pub failed: bool,
    /// Stopped by the scheduler for failing its health checks: a failure for the circuit
    /// breaker, but not a failed start for the throttle (it ran).
    pub unhealthy_stop: bool,
    /// Its instance is DRAINING.
    pub draining: bool,
    /// Its instance's agent is lost (disconnected past the timeout).
    pub lost: bool,
    /// Its instance (or pool host), for spreading stops over instances.
    pub instance: String,
    /// Scale-in protection is on and not yet expired: neither a scale-in nor a deployment
    /// stops it.
    pub protected: bool,
}

/// The service as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    pub name: String,
    pub desired_count: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub health_check_grace_period: f64,
    /// PRIMARY first, then the others newest first.
    pub deployments: Vec<DeploymentView>,
    /// The id of the last deployment that COMPLETED (for a rollback), if any.
    pub last_completed: Option<(String, String)>,
    /// The throttle's state as stored after the last round.
    pub throttle: Throttle,
    pub now: f64,
}

/// A deployment's state after the plan: counts and rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    pub id: String,
    pub running: u32,
    pub pending: u32,
    pub failed: u32,
    pub rollout: RolloutState,
    /// Why the rollout state changed in this plan, if it did.
    pub reason: Option<String>,
    /// Without live tasks and not PRIMARY: to be removed from the service.
    pub drained: bool,
}

/// What the reconciler should do now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServicePlan {
    /// Tasks to start for the PRIMARY deployment (REPLICA: placed by the strategies).
    pub start: u32,
    /// DAEMON: the instances to start one PRIMARY task on each.
    pub start_on: Vec<String>,
    /// DAEMON: the desired count (the eligible instances).
    pub desired: Option<u32>,
    /// (task id, stop reason).
    pub stop: Vec<(String, String)>,
    /// The deployments, in the order given.
    pub deployments: Vec<DeploymentStatus>,
    /// The circuit breaker failed the PRIMARY deployment and asks to roll back to this
    /// (deployment id, task definition).
    pub rollback_to: Option<(String, String)>,
    /// Everything is as desired: one PRIMARY deployment COMPLETED, desired count running and
    /// healthy, nothing else live.
    pub steady: bool,
    /// The throttle's state to store.
    pub throttle: Throttle,
    /// Starts were held back by the throttle: plan again at this time (or when something
    /// changes), the earliest time this plan changes with nothing else changing.
    pub wake_at: Option<f64>,
}

/// The circuit breaker's failure threshold for a desired count.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Plans one round for a REPLICA service.
pub fn plan_replica(service: &ServiceView, tasks: &[TaskView]) -> ServicePlan {
    let mut plan = ServicePlan {
        throttle: throttle(service, tasks),
        ..ServicePlan::default()
    };
    let Some(primary) = service.deployments.iter().find(|d| d.primary) else {
        return plan;
    };
    let desired = service.desired_count;
    // maximumPercent is at least 100 for a REPLICA service, so this is at least `desired`.
    let max_live = (u64::from(desired) * u64::from(service.maximum_percent.max(100)) / 100) as u32;
    let min_healthy = min_healthy(service, desired);

    // 1. Unhealthy tasks past their grace period go, whatever the bounds.
    let live = stop_unhealthy(service, tasks, &mut plan);
    // 2. The circuit breaker, before anything is started for a failing deployment.
    let (primary_rollout, primary_reason) =
        circuit_breaker(service, tasks, primary, desired, &mut plan);

    // Tasks that must go: older deployments' and those on DRAINING instances.
    let (keep, mut replace): (Vec<&TaskView>, Vec<&TaskView>) = live
        .iter()
        .copied()
        .partition(|t| t.deployment == primary.id && !t.draining);
    let mut keep = keep;

    // 3. Scale in: more PRIMARY tasks than desired (pending ones first, then spread),
    //    protected ones never (the service stays above its desired count meanwhile).
    if keep.len() > desired as usize {
        let excess = keep.len() - desired as usize;
        let unprotected: Vec<&TaskView> = keep.iter().copied().filter(|t| !t.protected).collect();
        let victims = pick_victims(&unprotected, excess);
        let reason = REASON_SCALED_IN.replace("{}", &primary.id);
        for id in &victims {
            plan.stop.push((id.clone(), reason.clone()));
        }
        keep.retain(|t| !victims.contains(&t.id));
    }

    // 4. Start PRIMARY tasks up to the desired count, within the maximum (a failed
    //    deployment starts nothing more).
    //    Every task not yet stopped counts toward the maximum, those asked to stop
    //    included (they run until their agent has stopped them), as ECS counts RUNNING and
    //    PENDING tasks.
    let occupied = tasks.iter().filter(not_stopped).count();
    if primary_rollout != RolloutState::Failed {
        let wanted = (desired as usize).saturating_sub(keep.len());
        let room = (max_live as usize).saturating_sub(occupied);
        plan.start = wanted.min(room) as u32;
    }

    // 5. Stop the tasks that must go, keeping the minimum healthy: those not healthy first
    //    (stopping them costs no health), then healthy ones while enough stay healthy.
    let healthy_now = keep.iter().chain(&replace).filter(|t| healthy(t)).count();
    replace.sort_by(|a, b| {
        healthy(a)
            .cmp(&healthy(b))
            .then(a.draining.cmp(&b.draining).reverse())
            .then(a.id.cmp(&b.id))
    });
    let mut healthy_left = healthy_now;
    for t in replace.iter().filter(|t| t.draining || !t.protected) {
        if !healthy(t) || healthy_left > min_healthy as usize {
            plan.stop.push((t.id.clone(), replaced_reason(t, primary)));
            healthy_left -= usize::from(healthy(t));
        }
    }

    let plan = finish(
        service,
        tasks,
        primary,
        desired,
        plan,
        primary_rollout,
        primary_reason,
    );
    hold_starts(service, tasks, plan)
}

/// An instance a DAEMON service may run on.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonInstance {
    pub id: String,
    /// ACTIVE, its agent connected, and meeting the service's placement constraints.
    pub eligible: bool,
}

/// Plans one round for a DAEMON service: one task of the PRIMARY deployment on every
/// eligible instance (its desired count is their number), none elsewhere. A new deployment
/// replaces an instance's task by stopping the old one first (maximumPercent is 100), as
/// far as `minimumHealthyPercent` of the instances allows.
pub fn plan_daemon(
    service: &ServiceView,
    tasks: &[TaskView],
    instances: &[DaemonInstance],
) -> ServicePlan {
    let mut plan = ServicePlan {
        throttle: throttle(service, tasks),
        ..ServicePlan::default()
    };
    let Some(primary) = service.deployments.iter().find(|d| d.primary) else {
        return plan;
    };
    let eligible: Vec<&str> = instances
        .iter()
        .filter(|i| i.eligible)
        .map(|i| i.id.as_str())
        .collect();
    let desired = eligible.len() as u32;
    plan.desired = Some(desired);
    let min_healthy = min_healthy(service, desired) as usize;

    let mut live = stop_unhealthy(service, tasks, &mut plan);
    let (primary_rollout, primary_reason) =
        circuit_breaker(service, tasks, primary, desired, &mut plan);
    // Tasks on instances it may no longer run on.
    live.retain(|t| {
        if eligible.contains(&t.instance.as_str()) {
            return true;
        }
        let reason = if t.draining {
            REASON_DRAINING
        } else {
            REASON_NOT_ELIGIBLE
        };
        plan.stop.push((t.id.clone(), reason.to_owned()));
        false
    });
    let mut healthy_left = live.iter().filter(|t| healthy(t)).count();
    for instance in &eligible {
        let here: Vec<&TaskView> = live
            .iter()
            .copied()
            .filter(|t| t.instance == *instance)
            .collect();
        let (mut new, old): (Vec<&TaskView>, Vec<&TaskView>) =
            here.into_iter().partition(|t| t.deployment == primary.id);
        // One task per instance: keep the longest-running of the PRIMARY's.
        new.sort_by(|a, b| {
            healthy(b)
                .cmp(&healthy(a))
                .then(
                    a.started_at
                        .unwrap_or(f64::MAX)
                        .total_cmp(&b.started_at.unwrap_or(f64::MAX)),
                )
                .then(a.id.cmp(&b.id))
        });
        for extra in new.iter().skip(1) {
            plan.stop.push((
                extra.id.clone(),
                REASON_SCALED_IN.replace("{}", &primary.id),
            ));
        }
        let replaced = !new.is_empty() && healthy(new[0]);
        for t in &old {
            // The old task goes once the new one is healthy, or while enough others are.
            if replaced || !healthy(t) || healthy_left > min_healthy {
                plan.stop.push((t.id.clone(), replaced_reason(t, primary)));
                healthy_left -= usize::from(healthy(t));
            }
        }
        // Start here once nothing else runs here any more (a stop takes its agent a moment).
        let occupied = tasks
            .iter()
            .filter(not_stopped)
            .any(|t| t.instance == *instance);
        if new.is_empty() && !occupied && primary_rollout != RolloutState::Failed {
            plan.start_on.push((*instance).to_owned());
        }
    }
    let plan = finish(
        service,
        tasks,
        primary,
        desired,
        plan,
        primary_rollout,
        primary_reason,
    );
    hold_starts(service, tasks, plan)
}

/// `ceil(desired × minimumHealthyPercent / 100)`.
fn min_healthy(service: &ServiceView, desired: u32) -> u32 {
    (u64::from(desired) * u64::from(service.minimum_healthy_percent)).div_ceil(100) as u32
}

/// RUNNING, and HEALTHY if it has health checks.
fn healthy(t: &TaskView) -> bool {
    t.phase == TaskPhase::Running && matches!(t.health, TaskHealth::None | TaskHealth::Healthy)
}

/// Not yet STOPPED (tasks asked to stop included: they run until stopped), and not lost.
fn not_stopped(t: &&TaskView) -> bool {
    t.phase != TaskPhase::Stopped && !t.lost
}

fn replaced_reason(t: &TaskView, primary: &DeploymentView) -> String {
    if t.draining {
        REASON_DRAINING.to_owned()
    } else {
        REASON_SCALED_IN.replace("{}", &primary.id)
    }
}

/// The live tasks (PENDING or RUNNING, agent not lost), less those stopped here for failing
/// their health checks past the grace period.
fn stop_unhealthy<'a>(
    service: &ServiceView,
    tasks: &'a [TaskView],
    plan: &mut ServicePlan,
) -> Vec<&'a TaskView> {
    let now = service.now;
    let past_grace = |t: &TaskView| {
        t.started_at
            .is_none_or(|at| now - at >= service.health_check_grace_period)
    };
    tasks
        .iter()
        .filter(|t| matches!(t.phase, TaskPhase::Pending | TaskPhase::Running) && !t.lost)
        .filter(|t| {
            let failing =
                t.phase == TaskPhase::Running && t.health == TaskHealth::Unhealthy && past_grace(t);
            if failing {
                plan.stop.push((t.id.clone(), REASON_UNHEALTHY.to_owned()));
            }
            !failing
        })
        .collect()
}

/// The PRIMARY deployment's rollout after the circuit breaker has looked at it (and the
/// reason when it failed it), asking for a rollback in `plan` when the service says so.
fn circuit_breaker(
    service: &ServiceView,
    tasks: &[TaskView],
    primary: &DeploymentView,
    desired: u32,
    plan: &mut ServicePlan,
) -> (RolloutState, Option<String>) {
    let failures = failures_since_healthy(tasks, &primary.id, service.now);
    if !(service.circuit_breaker
        && primary.rollout == RolloutState::InProgress
        && failures >= failure_threshold(desired))
    {
        return (primary.rollout, None);
    }
    let reason = match (&service.last_completed, service.rollback) {
        (Some((id, td)), true) if *id != primary.id => {
            plan.rollback_to = Some((id.clone(), td.clone()));
            format!(
                "ECS deployment circuit breaker: tasks failed to start. Rolling back to deployment {id}."
            )
        }
        _ => "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
    };
    (RolloutState::Failed, Some(reason))
}

/// The deployments' states after `plan`, the PRIMARY's completion and whether the service
/// is steady.
fn finish(
    service: &ServiceView,
    tasks: &[TaskView],
    primary: &DeploymentView,
    desired: u32,
    mut plan: ServicePlan,
    mut primary_rollout: RolloutState,
    mut primary_reason: Option<String>,
) -> ServicePlan {
    let now = service.now;
    let stopping: Vec<&str> = plan.stop.iter().map(|(id, _)| id.as_str()).collect();
    // Lost tasks are not counted as running: nobody knows that they run.
    let still_live = |t: &&TaskView| {
        matches!(t.phase, TaskPhase::Pending | TaskPhase::Running)
            && !t.lost
            && !stopping.contains(&t.id.as_str())
    };
    let primary_live: Vec<&TaskView> = tasks
        .iter()
        .filter(still_live)
        .filter(|t| t.deployment == primary.id)
        .collect();
    let others_live = tasks
        .iter()
        .filter(still_live)
        .any(|t| t.deployment != primary.id);
    // Tasks asked to stop still run until their agent has stopped them: the deployment is
    // not done (nor the service steady) before they have.
    let any_stopping = tasks
        .iter()
        .filter(not_stopped)
        .any(|t| t.phase == TaskPhase::Stopping || stopping.contains(&t.id.as_str()));
    let done = primary_live.len() == desired as usize
        && primary_live
            .iter()
            .all(|t| !t.draining && stable(t, now).is_some())
        && !others_live
        && !any_stopping
        && plan.start == 0
        && plan.start_on.is_empty();
    if primary_rollout == RolloutState::InProgress && done {
        primary_rollout = RolloutState::Completed;
        primary_reason = Some("ECS deployment completed.".to_owned());
    }
    for d in &service.deployments {
        let mine = tasks.iter().filter(|t| t.deployment == d.id);
        let (mut running, mut pending) = (0, 0);
        for t in mine.clone().filter(still_live) {
            match t.phase {
                TaskPhase::Running => running += 1,
                _ => pending += 1,
            }
        }
        let failed = mine.clone().filter(|t| t.failed).count() as u32;
        let gone = !mine.filter(not_stopped).any(|_| true);
        let (rollout, reason) = if d.primary {
            (primary_rollout, primary_reason.clone())
        } else {
            (d.rollout, None)
        };
        plan.deployments.push(DeploymentStatus {
            id: d.id.clone(),
            running,
            pending,
            failed,
            rollout,
            reason,
            drained: !d.primary && gone,
        });
    }
    plan.steady = primary_rollout == RolloutState::Completed
        && done
        && plan
            .deployments
            .iter()
            .all(|d| d.id == primary.id || d.drained)
        && plan.stop.is_empty();
    plan
}

/// How long a task without health checks must have been RUNNING to count as *stable*: to
/// complete a deployment and to reset the circuit breaker's count. Berth's choice (ECS does
/// not say): without it, a revision whose container exits a moment after starting would
/// complete its deployment, and reset the count, with every task it starts.
pub const STABLE_AFTER_SECONDS: f64 = 3.0;

/// RUNNING, and HEALTHY by its health checks or, without any, RUNNING long enough.
fn stable(t: &TaskView, now: f64) -> Option<f64> {
    if t.phase != TaskPhase::Running || t.lost {
        return None;
    }
    match (t.health, t.started_at) {
        (TaskHealth::Healthy, Some(at)) => Some(at),
        (TaskHealth::None, Some(at)) if now - at >= STABLE_AFTER_SECONDS => {
            Some(at + STABLE_AFTER_SECONDS)
        }
        _ => None,
    }
}

/// Failures of a deployment since one of its tasks last became healthy (the circuit
/// breaker's count, reset on a healthy task as ECS's `resetOnHealthyTask` default says).
/// Only a task still RUNNING and [`stable`] resets it.
fn failures_since_healthy(tasks: &[TaskView], deployment: &str, now: f64) -> u32 {
    let mine: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| t.deployment == deployment)
        .collect();
    let last_healthy = mine
        .iter()
        .filter_map(|t| stable(t, now))
        .fold(f64::NEG_INFINITY, f64::max);
    mine.iter()
        .filter(|t| t.failed && t.stopped_at.is_some_and(|at| at > last_healthy))
        .count() as u32
}

/// A task that stopped within this many seconds of becoming RUNNING failed to start, for
/// the throttle. ECS counts only tasks that went from PENDING straight to STOPPED; Berth
/// counts these too, because a container that exits at once piles up tasks just the same.
pub const FAST_FAILURE_SECONDS: f64 = 10.0;
/// The throttle's delay after the second failed attempt in a row, doubled after each one.
pub const THROTTLE_BASE_SECONDS: f64 = 10.0;
/// The throttle's longest delay: ECS's 27 minutes.
pub const THROTTLE_MAX_SECONDS: f64 = 1620.0;

/// The service throttle's state, stored in the service between rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Throttle {
    /// Failed launch attempts in a row.
    pub failures: u32,
    /// The latest `stopped_at` of the failed starts seen so far: those stopped later are
    /// new, and a task created after it belongs to a new attempt.
    pub last_stopped_at: f64,
    /// No task is started before this time.
    pub retry_at: f64,
    /// When the throttle's event was last added to the service (the reconciler's to keep).
    pub noted_at: f64,
}

/// The delay before the next launch after `failures` failed attempts in a row: none for
/// one, then `min(THROTTLE_MAX_SECONDS, THROTTLE_BASE_SECONDS × 2^(failures − 2))`.
pub fn throttle_delay(failures: u32) -> f64 {
    if failures < 2 {
        return 0.0;
    }
    // 2^8 × 10 s already passes the maximum: no need for larger powers.
    let doublings = (failures - 2).min(16) as i32;
    (THROTTLE_BASE_SECONDS * 2f64.powi(doublings)).min(THROTTLE_MAX_SECONDS)
}

/// The most launch attempts the schedule allows within `window_seconds` of the first, every
/// attempt failing at once: attempt `n + 1` comes `throttle_delay(n)` after attempt `n`. An
/// upper bound for an observer counting a failing service's launches.
pub fn max_attempts_within(window_seconds: f64) -> u32 {
    if !window_seconds.is_finite() {
        return u32::MAX;
    }
    let (mut attempts, mut at) = (1, 0.0);
    loop {
        at += throttle_delay(attempts);
        if at > window_seconds {
            return attempts;
        }
        attempts += 1;
    }
}

/// When the task stopped, if that was a failed start: stopped without the scheduler or a
/// user asking (health-check replacements excepted: those ran), before it was RUNNING or
/// within [`FAST_FAILURE_SECONDS`] of it.
pub fn failed_start(t: &TaskView) -> Option<f64> {
    if t.phase != TaskPhase::Stopped || !t.failed || t.unhealthy_stop {
        return None;
    }
    let stopped = t.stopped_at?;
    t.started_at
        .is_none_or(|started| stopped - started < FAST_FAILURE_SECONDS)
        .then_some(stopped)
}

/// The throttle's state after this round, from the stored one and the tasks: failed starts
/// not seen before are one more failed attempt when one of them was launched after the
/// last counted failure (the tasks one round launched fail together as one attempt; times
/// are the store's, to the millisecond, so a failure in the very millisecond of the last
/// counted one counts with it); a task
/// that started after the last failure and has stayed up (stable, and RUNNING past
/// [`FAST_FAILURE_SECONDS`], so that it can no longer become a failed start) resets the
/// count.
pub fn throttle(service: &ServiceView, tasks: &[TaskView]) -> Throttle {
    let now = service.now;
    let mut state = service.throttle;
    let unseen: Vec<(&TaskView, f64)> = tasks
        .iter()
        .filter_map(|t| failed_start(t).map(|at| (t, at)))
        .filter(|(_, at)| *at > state.last_stopped_at)
        .collect();
    if !unseen.is_empty() {
        if unseen
            .iter()
            .any(|(t, _)| t.created_at >= state.last_stopped_at)
        {
            state.failures = state.failures.saturating_add(1);
        }
        state.last_stopped_at = unseen
            .iter()
            .map(|(_, at)| *at)
            .fold(state.last_stopped_at, f64::max);
        state.retry_at = state.last_stopped_at + throttle_delay(state.failures);
    }
    let stayed_up = tasks.iter().any(|t| {
        stable(t, now).is_some()
            && t.started_at
                .is_some_and(|at| at > state.last_stopped_at && now - at >= FAST_FAILURE_SECONDS)
    });
    if stayed_up {
        state.failures = 0;
        state.retry_at = 0.0;
    }
    state
}

/// The plan with its starts held back while the throttle says to wait (nothing else in it
/// changes), and when to plan again.
fn hold_starts(service: &ServiceView, tasks: &[TaskView], mut plan: ServicePlan) -> ServicePlan {
    let retry_at = plan.throttle.retry_at;
    if service.now >= retry_at || (plan.start == 0 && plan.start_on.is_empty()) {
        return plan;
    }
    plan.start = 0;
    plan.start_on.clear();
    plan.steady = false;
    plan.wake_at =
        Some(next_deadline(service, tasks, &plan.throttle).map_or(retry_at, |at| at.min(retry_at)));
    plan
}

/// The earliest time after now at which time alone changes what the planner decides: a
/// task turning stable, one past its health-check grace period, one resetting the throttle.
fn next_deadline(service: &ServiceView, tasks: &[TaskView], state: &Throttle) -> Option<f64> {
    let now = service.now;
    tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Running && !t.lost)
        .filter_map(|t| t.started_at.map(|at| (t, at)))
        .flat_map(|(t, at)| {
            [
                (t.health == TaskHealth::None).then_some(at + STABLE_AFTER_SECONDS),
                (t.health == TaskHealth::Unhealthy)
                    .then_some(at + service.health_check_grace_period),
                (at > state.last_stopped_at).then_some(at + FAST_FAILURE_SECONDS),
            ]
        })
        .flatten()
        .filter(|at| *at > now)
        .min_by(f64::total_cmp)
}

/// Which `count` of these tasks to stop: pending ones first, then from the instances with
/// the most of them (keeping the rest spread), newest first; deterministic.
fn pick_victims(tasks: &[&TaskView], count: usize) -> Vec<String> {
    let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks {
        *per_instance.entry(t.instance.as_str()).or_default() += 1;
    }
    let mut order: Vec<&TaskView> = tasks.to_vec();
    let mut victims = Vec::new();
    while victims.len() < count && !order.is_empty() {
        order.sort_by(|a, b| {
            let pa = a.phase == TaskPhase::Pending;
            let pb = b.phase == TaskPhase::Pending;
            pb.cmp(&pa)
                .then(per_instance[b.instance.as_str()].cmp(&per_instance[a.instance.as_str()]))
                .then(
                    b.started_at
                        .unwrap_or(f64::MAX)
                        .total_cmp(&a.started_at.unwrap_or(f64::MAX)),
                )
                .then(a.id.cmp(&b.id))
        });
        let t = order.remove(0);
        *per_instance.get_mut(t.instance.as_str()).expect("counted") -= 1;
        victims.push(t.id.clone());
    }
    victims
}

pub mod task_sets;

#[cfg(test)]
mod tests;
