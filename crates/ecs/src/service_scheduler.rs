//! The service scheduler: a reconciler over stored state. A round for one service reads the
//! service, its tasks and their instances, asks the pure planner
//! (`berth_scheduler::service::plan_replica`) what to do, and does it: stops tasks (stop
//! code `ServiceSchedulerInitiated`), starts tasks of the PRIMARY deployment through
//! RunTask's placement (group `service:NAME`, `startedBy` = the deployment id), and writes
//! the deployments' counts and rollout states and the service's events. Nothing is kept
//! between rounds but what the store holds, so a control plane killed mid-deployment carries
//! on where it was when it comes back.
//!
//! [`run`] drives the rounds: it watches the store and runs a round for a service when the
//! service, one of its cluster's tasks or instances changes, and every second for services
//! not yet steady (grace periods, stability windows, placement retries). A service the
//! throttle holds back (its tasks keep failing to start) sleeps until its retry time
//! instead, unless something changes first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_model::Scope;
use berth_model::ecs::{
    DeploymentStatus, DesiredStatus, HealthStatus, LaunchType, ServiceDeploymentStatus,
    ServiceStatus, StopCode, TaskStatus,
};
use berth_scheduler::service::{
    DaemonInstance, DeploymentView, REASON_UNHEALTHY, RolloutState, ServicePlan, ServiceView,
    TaskHealth, TaskPhase, TaskView, Throttle, plan_daemon, plan_replica,
};
use berth_store::EventKind;

use crate::keys::split_cluster_key;
use crate::services::{RollbackRecord, Service, revision_of};
use crate::tasks::RunTask;
use crate::{Ecs, EcsError, InstanceStatus, Result, Task, now_epoch};

/// RunTask's and StartTask's limit on tasks per call.
const MAX_TASKS_PER_CALL: usize = 10;

/// The throttle's event is said at most this often for a service (seconds).
const THROTTLE_EVENT_EVERY_SECONDS: f64 = 15.0 * 60.0;

/// A service, by where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    pub scope: Scope,
    pub cluster: String,
    pub name: String,
}

/// What a round saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RoundOutcome {
    /// Nothing to do until something changes.
    Steady,
    /// Still moving (or waiting on time): run again soon.
    Busy,
    /// The throttle holds its starts back: nothing to do until this time (seconds since the
    /// epoch) or until something changes.
    Wait(f64),
    /// The service is gone or INACTIVE.
    Gone,
}

impl Ecs {
    /// Every service not INACTIVE, in every account and region (read once when the
    /// scheduler starts).
    pub fn service_refs(&self) -> Result<Vec<ServiceRef>> {
        let mut refs = Vec::new();
        for kv in self.store.range(crate::keys::ROOT, None, 0)? {
            if let Some((scope, "service", cluster, name)) = split_cluster_key(&kv.key) {
                let service: Service = crate::decode(&kv)?;
                if service.status != ServiceStatus::Inactive {
                    refs.push(ServiceRef {
                        scope,
                        cluster: cluster.to_owned(),
                        name: name.to_owned(),
                    });
                }
            }
        }
        Ok(refs)
    }

    /// One round for a service (see the module documentation).
    pub fn reconcile_service(&self, r: &ServiceRef) -> Result<RoundOutcome> {
        let service = match self.service(&r.scope, Some(&r.cluster), &r.name) {
            Ok(s) => s,
            Err(EcsError::ServiceNotFound | EcsError::ClusterNotFound) => {
                return Ok(RoundOutcome::Gone);
            }
            Err(e) => return Err(e),
        };
        if service.status == ServiceStatus::Inactive {
            return Ok(RoundOutcome::Gone);
        }
        let group = format!("service:{}", service.service_name);
        let mut tasks: Vec<Task> = self.group_tasks(&r.scope, &r.cluster, &group)?;
        // Behind load balancers: targets registered, deregistered, drained, read.
        let targets = self.targets_round(&r.scope, &service, &tasks)?;
        if !targets.events.is_empty() || !targets.stopped.is_empty() {
            self.note_targets_round(r, &targets)?;
            tasks = self.group_tasks(&r.scope, &r.cluster, &group)?;
        }
        if service.status == ServiceStatus::Draining {
            // A deleted service: stop what is left, then it is INACTIVE.
            return self.drain_deleted(r, &tasks);
        }
        let instances = self.instance_states(&r.scope, &r.cluster, &tasks)?;
        let now = now_epoch();
        let view = service_view(&service, now);
        let task_views: Vec<TaskView> = tasks
            .iter()
            .map(|t| {
                let mut v = task_view(t, &instances, now);
                if let Some(h) = targets.health.get(&t.id) {
                    v.health =
                        crate::service_load_balancers::with_targets_health(v.health, h.health);
                }
                v
            })
            .collect();
        if service.is_external() {
            // An external controller deploys it: keep its task sets at their counts.
            return self.reconcile_task_sets(r, &service, &task_views);
        }
        let mut plan = if service.scheduling_strategy == "DAEMON" {
            let eligible = self.daemon_instances(&r.scope, &service)?;
            plan_daemon(&view, &task_views, &eligible)
        } else {
            plan_replica(&view, &task_views)
        };
        // A task replaced for its targets' health says which target group failed it, and
        // the service says why (once: the task leaves its groups now).
        let mut events = Vec::new();
        for (id, reason) in &mut plan.stop {
            if reason == REASON_UNHEALTHY
                && let Some(Some(failing)) = targets.health.get(id).map(|h| &h.unhealthy)
            {
                *reason = failing.stop_reason();
                events.push(failing.event(&service.service_name, id));
            }
        }
        let outcome = self.apply_plan(r, &service, &plan, &tasks, events)?;
        Ok(match outcome {
            RoundOutcome::Steady | RoundOutcome::Wait(_) if targets.busy => RoundOutcome::Busy,
            other => other,
        })
    }

    /// The events of a round's work on targets, written into the service.
    fn note_targets_round(
        &self,
        r: &ServiceRef,
        targets: &crate::service_load_balancers::TargetsRound,
    ) -> Result<()> {
        let mut events = targets.events.clone();
        if !targets.stopped.is_empty() {
            events.push(stopped_event(&r.name, &targets.stopped));
        }
        self.change_service(&r.scope, Some(&r.cluster), &r.name, |s| {
            let now = now_epoch();
            for message in &events {
                s.push_event(message.clone(), now);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The cluster's registered instances and whether a DAEMON service may run there:
    /// ACTIVE, agent connected, meeting its `memberOf` constraints.
    fn daemon_instances(&self, scope: &Scope, service: &Service) -> Result<Vec<DaemonInstance>> {
        let constraints: Vec<berth_scheduler::PlacementConstraint> = service
            .placement_constraints
            .iter()
            .filter_map(|c| {
                berth_scheduler::parse_placement_constraint(&c.kind, c.expression.as_deref()).ok()
            })
            .collect();
        Ok(self
            .container_instances(scope, Some(&service.cluster))?
            .into_iter()
            .map(|i| {
                let view = i.placement_view(scope);
                let meets = constraints.iter().all(|c| match c {
                    berth_scheduler::PlacementConstraint::MemberOf(e) => e.matches(&view),
                    berth_scheduler::PlacementConstraint::DistinctInstance => true,
                });
                DaemonInstance {
                    eligible: i.status == InstanceStatus::Active && i.agent_connected && meets,
                    id: i.id,
                }
            })
            .collect())
    }

    /// (status, agent connected) of the instances the tasks are on, by (cluster, id).
    fn instance_states(
        &self,
        scope: &Scope,
        cluster: &str,
        tasks: &[Task],
    ) -> Result<HashMap<(String, String), (InstanceStatus, bool)>> {
        let mut clusters: HashSet<&str> = tasks.iter().map(|t| t.instance_cluster()).collect();
        clusters.insert(cluster);
        let mut states = HashMap::new();
        for c in clusters {
            let instances = match self.container_instances(scope, Some(c)) {
                Ok(i) => i,
                Err(EcsError::ClusterNotFound) => continue,
                Err(e) => return Err(e),
            };
            for i in instances {
                states.insert((c.to_owned(), i.id.clone()), (i.status, i.agent_connected));
            }
        }
        Ok(states)
    }

    fn apply_plan(
        &self,
        r: &ServiceRef,
        service: &Service,
        plan: &ServicePlan,
        tasks: &[Task],
        mut events: Vec<String>,
    ) -> Result<RoundOutcome> {
        events.extend(self.stop_tasks(r, &service.service_name, &plan.stop, tasks)?);
        let primary = service
            .deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary);
        let mut unplaced = false;
        if let Some(primary) = primary {
            // RunTask and StartTask take at most 10 tasks a call: queue them all on the
            // placement lane at once, then collect the answers.
            let pending: Vec<_> = self
                .start_requests(service, primary, plan)
                .into_iter()
                .map(|request| self.queue_run_task(&r.scope, request))
                .collect();
            let mut failure = None;
            for answer in pending {
                match answer.wait() {
                    Ok(outcome) => {
                        if !outcome.tasks.is_empty() {
                            let ids: Vec<String> =
                                outcome.tasks.iter().map(|t| t.id.clone()).collect();
                            events.push(format!(
                                "(service {}) has started {} tasks: {}.",
                                service.service_name,
                                ids.len(),
                                task_list(&ids)
                            ));
                        }
                        if let Some((_, reason)) = outcome.failures.first() {
                            failure.get_or_insert(format!(
                                "(service {}) was unable to place a task because no container instance met all of its requirements. Reason: {}.",
                                service.service_name,
                                reason.trim_end_matches('.')
                            ));
                        }
                    }
                    Err(e) => {
                        failure.get_or_insert(format!(
                            "(service {}) was unable to place a task. Reason: {e}",
                            service.service_name
                        ));
                    }
                }
            }
            if let Some(message) = failure {
                unplaced = true;
                events.push(message);
            }
        }
        let changed = self.record_plan(r, plan, &service.throttle, events)?;
        Ok(match plan.wake_at {
            _ if plan.steady && !unplaced && !changed => RoundOutcome::Steady,
            // Only waiting for the throttle (what this round wrote wakes the next anyway).
            Some(at) if plan.stop.is_empty() && !unplaced => RoundOutcome::Wait(at),
            _ => RoundOutcome::Busy,
        })
    }

    /// The RunTask (REPLICA) or StartTask (DAEMON) requests that start the plan's tasks, at
    /// most [`MAX_TASKS_PER_CALL`] each.
    fn start_requests(
        &self,
        service: &Service,
        primary: &crate::services::Deployment,
        plan: &ServicePlan,
    ) -> Vec<RunTask> {
        let mut requests = Vec::new();
        let mut left = plan.start;
        while left > 0 {
            let count = left.min(MAX_TASKS_PER_CALL as u32);
            requests.push(self.service_run_task(service, primary, count));
            left -= count;
        }
        for instances in plan.start_on.chunks(MAX_TASKS_PER_CALL) {
            // DAEMON: one task on each instance named (StartTask's path, fit re-checked).
            let mut request = self.service_run_task(service, primary, instances.len() as u32);
            request.container_instances = Some(instances.to_vec());
            request.placement_constraints.clear();
            request.placement_strategy.clear();
            requests.push(request);
        }
        requests
    }

    /// RunTask for `count` tasks of the PRIMARY deployment.
    fn service_run_task(
        &self,
        service: &Service,
        primary: &crate::services::Deployment,
        count: u32,
    ) -> RunTask {
        service.run_task(
            ServiceTasks {
                task_definition: &primary.task_definition,
                started_by: &primary.id,
                launch_type: primary.launch_type,
                capacity_provider_strategy: &service.capacity_provider_strategy,
                platform_version: service.platform_version.as_ref(),
                network_configuration: service.network_configuration.as_ref(),
            },
            count,
        )
    }

    /// Writes the plan's deployment states, the throttle's state (`read`: as the plan found
    /// it), a rollback, and the events into the service. Whether the record changed in a way
    /// that matters for the next round.
    fn record_plan(
        &self,
        r: &ServiceRef,
        plan: &ServicePlan,
        read: &Throttle,
        events: Vec<String>,
    ) -> Result<bool> {
        // Whether the (last, committed) attempt changed what the next round depends on.
        let changed = std::cell::Cell::new(false);
        self.change_service(&r.scope, Some(&r.cluster), &r.name, |s| {
            let (deployments_before, steady_before) = (s.deployments.clone(), s.steady);
            let throttle_before = s.throttle;
            let now = now_epoch();
            let mut new_events = events.clone();
            // An UpdateService since the round read the service has reset the throttle:
            // that stands (its write wakes a round that plans from it).
            if s.throttle == *read {
                s.throttle = plan.throttle;
                let new_attempt = plan.throttle.failures != read.failures;
                if new_attempt
                    && plan.throttle.failures >= 2
                    && now - s.throttle.noted_at >= THROTTLE_EVENT_EVERY_SECONDS
                {
                    new_events.push(format!(
                        "(service {}) is unable to consistently start tasks successfully.",
                        s.service_name
                    ));
                    s.throttle.noted_at = now;
                }
            }
            if let Some(desired) = plan.desired {
                // DAEMON: as many as there are instances to run on.
                s.desired_count = i64::from(desired);
                for d in s.deployments.iter_mut().filter(|d| d.status == DeploymentStatus::Primary) {
                    d.desired_count = i64::from(desired);
                }
            }
            let mut outcomes: Vec<(String, RolloutState, Option<String>)> = Vec::new();
            for status in &plan.deployments {
                let Some(d) = s.deployments.iter_mut().find(|d| d.id == status.id) else {
                    continue;
                };
                d.running_count = i64::from(status.running);
                d.pending_count = i64::from(status.pending);
                d.failed_tasks = i64::from(status.failed);
                if d.rollout_state != status.rollout {
                    d.rollout_state = status.rollout;
                    d.updated_at = now;
                    if let Some(reason) = &status.reason {
                        d.rollout_state_reason = reason.clone();
                    }
                    outcomes.push((d.id.clone(), status.rollout, status.reason.clone()));
                    match status.rollout {
                        RolloutState::Completed => {
                            new_events.push(format!(
                                "(service {}) (deployment {}) deployment completed.",
                                s.service_name, d.id
                            ));
                            if d.status == DeploymentStatus::Primary {
                                s.last_completed = Some((d.id.clone(), d.task_definition.clone()));
                            }
                        }
                        RolloutState::Failed => new_events.push(format!(
                            "(service {}) (deployment {}) deployment failed: tasks failed to start.",
                            s.service_name, d.id
                        )),
                        RolloutState::InProgress => {}
                    }
                }
            }
            let drained: Vec<&str> = plan
                .deployments
                .iter()
                .filter(|d| d.drained)
                .map(|d| d.id.as_str())
                .collect();
            s.deployments
                .retain(|d| d.status == DeploymentStatus::Primary || !drained.contains(&d.id.as_str()));
            let rollback = plan.rollback_to.as_ref().map(|(id, task_definition)| {
                new_events.push(format!(
                    "(service {}) rolling back to deployment {id}.",
                    s.service_name
                ));
                s.task_definition = task_definition.clone();
                (revision_of(id), Ecs::start_deployment(s, task_definition))
            });
            for (id, rollout, reason) in outcomes {
                follow_outcome(s, &id, rollout, reason, rollback.clone(), now);
            }
            let steady = plan.steady;
            if steady && !s.steady {
                new_events.push(format!("(service {}) has reached a steady state.", s.service_name));
            }
            s.steady = steady;
            for message in new_events {
                // A placement failure retried every round is said once a minute.
                let repeated = message.contains("was unable to place a task")
                    && s.events.iter().take(5).any(|e| {
                        e.message == message && now - e.created_at < 60.0
                    });
                if repeated {
                    continue;
                }
                s.push_event(message, now);
            }
            changed.set(
                s.deployments != deployments_before
                    || s.steady != steady_before
                    || s.throttle != throttle_before,
            );
            Ok(())
        })?;
        Ok(changed.get())
    }

    /// Stops the scheduler's tasks (`stops`: ids and reasons): those behind load balancers
    /// leave their target groups first (DEACTIVATING), the others are stopped now. ECS's
    /// events for it.
    fn stop_tasks(
        &self,
        r: &ServiceRef,
        service: &str,
        stops: &[(String, String)],
        tasks: &[Task],
    ) -> Result<Vec<String>> {
        let mut events = Vec::new();
        let mut stopped = Vec::new();
        let mut draining = 0;
        let mut left: HashMap<String, usize> = HashMap::new();
        for (id, reason) in stops {
            if let Some(task) = tasks.iter().find(|t| &t.id == id)
                && let Some(groups) =
                    self.deactivate(&r.scope, task, reason, StopCode::ServiceSchedulerInitiated)?
            {
                draining += 1;
                for g in groups {
                    *left.entry(g).or_default() += 1;
                }
                continue;
            }
            match self.stop_task_as(
                &r.scope,
                Some(&r.cluster),
                id,
                Some(reason.clone()),
                StopCode::ServiceSchedulerInitiated,
            ) {
                Ok(_) => stopped.push(id.clone()),
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "service scheduler: stopping a task failed")
                }
            }
        }
        for (group, n) in left {
            events.push(crate::service_load_balancers::deregistered_event(
                service, n, &group,
            ));
        }
        if draining > 0 {
            events.push(crate::service_load_balancers::draining_event(
                service, draining,
            ));
        }
        if !stopped.is_empty() {
            events.push(stopped_event(service, &stopped));
        }
        Ok(events)
    }

    /// A DRAINING (deleted) service: stop its live tasks (those behind load balancers
    /// drain first); with none left it is INACTIVE.
    fn drain_deleted(&self, r: &ServiceRef, tasks: &[Task]) -> Result<RoundOutcome> {
        let live: Vec<&Task> = tasks.iter().filter(|t| t.is_live()).collect();
        let stops: Vec<(String, String)> = live
            .iter()
            .filter(|t| t.desired_status != DesiredStatus::Stopped && t.deactivating.is_none())
            .map(|t| (t.id.clone(), "Service is being deleted".to_owned()))
            .collect();
        let events = self.stop_tasks(r, &r.name, &stops, tasks)?;
        if !events.is_empty() {
            self.change_service(&r.scope, Some(&r.cluster), &r.name, |s| {
                let now = now_epoch();
                for message in &events {
                    s.push_event(message.clone(), now);
                }
                Ok(())
            })?;
        }
        if live.is_empty() {
            self.change_service(&r.scope, Some(&r.cluster), &r.name, |s| {
                s.status = ServiceStatus::Inactive;
                Ok(())
            })?;
            return Ok(RoundOutcome::Gone);
        }
        Ok(RoundOutcome::Busy)
    }
}

/// Moves the service deployment records a deployment's new rollout concerns: its own, or the
/// one it rolls back.
fn follow_outcome(
    s: &mut Service,
    deployment: &str,
    rollout: RolloutState,
    reason: Option<String>,
    rollback: Option<(u64, String)>,
    now: f64,
) {
    for r in &mut s.service_deployments {
        let own = r.deployment_id == deployment && r.status == ServiceDeploymentStatus::InProgress;
        let rolling_back = r.status == ServiceDeploymentStatus::RollbackInProgress
            && r.rollback
                .as_ref()
                .is_some_and(|b| b.deployment_id == deployment);
        if !own && !rolling_back {
            continue;
        }
        r.updated_at = now;
        match (rollout, own) {
            (RolloutState::Completed, true) => {
                r.status = ServiceDeploymentStatus::Successful;
                r.finished_at = Some(now);
            }
            (RolloutState::Completed, false) => {
                r.status = ServiceDeploymentStatus::RollbackSuccessful;
                r.finished_at = Some(now);
            }
            (RolloutState::Failed, true) => match &rollback {
                Some((revision, rollback_deployment)) => {
                    r.status = ServiceDeploymentStatus::RollbackInProgress;
                    r.status_reason = reason.clone();
                    r.rollback = Some(RollbackRecord {
                        reason: reason.clone().unwrap_or_default(),
                        started_at: now,
                        revision: *revision,
                        deployment_id: rollback_deployment.clone(),
                    });
                }
                None => {
                    r.status = ServiceDeploymentStatus::Stopped;
                    r.status_reason = reason.clone();
                    r.stopped_at = Some(now);
                }
            },
            (RolloutState::Failed, false) => {
                r.status = ServiceDeploymentStatus::RollbackFailed;
                r.status_reason = reason.clone();
                r.finished_at = Some(now);
            }
            (RolloutState::InProgress, _) => {}
        }
    }
}

fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn service_view(s: &Service, now: f64) -> ServiceView {
    let c = &s.deployment_configuration;
    let breaker = c.deployment_circuit_breaker.as_ref();
    ServiceView {
        name: s.service_name.clone(),
        desired_count: s.desired_count.max(0) as u32,
        minimum_healthy_percent: c.minimum_healthy_percent.unwrap_or(100).clamp(0, 100) as u32,
        maximum_percent: c.maximum_percent.unwrap_or(200).clamp(100, 2000) as u32,
        circuit_breaker: breaker.is_some_and(|b| b.enable),
        // A rollback is not rolled back again.
        rollback: breaker.is_some_and(|b| b.enable && b.rollback) && !primary_is_rollback(s),
        health_check_grace_period: s.health_check_grace_period_seconds.unwrap_or(0).max(0) as f64,
        deployments: s
            .deployments
            .iter()
            .map(|d| DeploymentView {
                id: d.id.clone(),
                primary: d.status == DeploymentStatus::Primary,
                rollout: d.rollout_state,
                task_definition: d.task_definition.clone(),
            })
            .collect(),
        last_completed: s.last_completed.clone(),
        throttle: s.throttle,
        now,
    }
}

fn primary_is_rollback(s: &Service) -> bool {
    let Some(primary) = s
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
    else {
        return false;
    };
    s.service_deployments.iter().any(|r| {
        r.rollback
            .as_ref()
            .is_some_and(|b| b.deployment_id == primary.id)
    })
}

fn task_view(
    t: &Task,
    instances: &HashMap<(String, String), (InstanceStatus, bool)>,
    now: f64,
) -> TaskView {
    let phase = match (t.last_status, t.desired_status) {
        (TaskStatus::Stopped, _) => TaskPhase::Stopped,
        (_, DesiredStatus::Stopped) => TaskPhase::Stopping,
        // Leaving its target groups before its stop (its agent still runs it).
        _ if t.deactivating.is_some() => TaskPhase::Stopping,
        (TaskStatus::Running, _) => TaskPhase::Running,
        _ => TaskPhase::Pending,
    };
    let checked = t.containers.iter().any(|c| c.health_status.is_some());
    let health = match (checked, t.health_status) {
        (false, _) => TaskHealth::None,
        (true, Some(HealthStatus::Healthy)) => TaskHealth::Healthy,
        (true, Some(HealthStatus::Unhealthy)) => TaskHealth::Unhealthy,
        (true, _) => TaskHealth::Unknown,
    };
    let instance = t.container_instance_id.clone().unwrap_or_default();
    let (status, connected) = instances
        .get(&(t.instance_cluster().to_owned(), instance.clone()))
        .copied()
        .unwrap_or((InstanceStatus::Active, true));
    let unhealthy_stop = phase == TaskPhase::Stopped
        && t.stopped_reason.as_deref().is_some_and(|r| {
            r == REASON_UNHEALTHY
                || r.starts_with(crate::service_load_balancers::REASON_ELB_UNHEALTHY)
        });
    let failed = phase == TaskPhase::Stopped
        && (!matches!(
            t.stop_code,
            Some(StopCode::ServiceSchedulerInitiated | StopCode::UserInitiated)
        ) || unhealthy_stop);
    TaskView {
        id: t.id.clone(),
        deployment: t.started_by.clone().unwrap_or_default(),
        phase,
        health,
        started_at: t.started_at,
        stopped_at: t.stopped_at,
        created_at: t.created_at,
        failed,
        unhealthy_stop,
        draining: status == InstanceStatus::Draining,
        lost: !connected,
        instance,
        protected: t.protected_until(now).is_some(),
    }
}

/// Drives the rounds until `shutdown` turns true (see the module documentation).
pub async fn run(ecs: Ecs, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let revision = match ecs.store.current_revision() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the service scheduler cannot start");
            return;
        }
    };
    let mut watch = match ecs.store.watch(crate::keys::ROOT, revision) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the service scheduler cannot watch the store");
            return;
        }
    };
    let loaded = {
        let ecs = ecs.clone();
        tokio::task::spawn_blocking(move || ecs.service_refs()).await
    };
    // Services by cluster, and which to run a round for.
    let mut known: HashMap<(Scope, String), HashSet<String>> = HashMap::new();
    let mut dirty: HashSet<ServiceRef> = HashSet::new();
    if let Ok(Ok(refs)) = loaded {
        for r in refs {
            known
                .entry((r.scope.clone(), r.cluster.clone()))
                .or_default()
                .insert(r.name.clone());
            dirty.insert(r);
        }
    }
    let mut busy: HashSet<ServiceRef> = HashSet::new();
    // Services the throttle holds back, and when to wake them (seconds since the epoch).
    let mut sleeping: HashMap<ServiceRef, f64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !dirty.is_empty() {
            let round: Vec<ServiceRef> = dirty.drain().collect();
            let ecs2 = ecs.clone();
            let results = tokio::task::spawn_blocking(move || {
                round
                    .into_iter()
                    .map(|r| {
                        let outcome = ecs2.reconcile_service(&r);
                        (r, outcome)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (r, outcome) in results {
                sleeping.remove(&r);
                match outcome {
                    Ok(RoundOutcome::Steady) => {
                        busy.remove(&r);
                    }
                    Ok(RoundOutcome::Busy) => {
                        busy.insert(r);
                    }
                    Ok(RoundOutcome::Wait(at)) => {
                        busy.remove(&r);
                        sleeping.insert(r, at);
                    }
                    Ok(RoundOutcome::Gone) => {
                        busy.remove(&r);
                        if let Some(names) = known.get_mut(&(r.scope.clone(), r.cluster.clone())) {
                            names.remove(&r.name);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(service = %r.name, error = %e, "service scheduler round failed");
                        busy.insert(r);
                    }
                }
            }
        }
        // Gather what changed meanwhile (waiting for the first change, a tick, or shutdown).
        tokio::select! {
            event = watch.recv() => {
                let Some(event) = event else { return };
                note_change(&event, &mut known, &mut dirty);
                while let Ok(event) = watch.try_recv() {
                    note_change(&event, &mut known, &mut dirty);
                }
            }
            _ = tick.tick() => {
                dirty.extend(busy.iter().cloned());
                let now = now_epoch();
                sleeping.retain(|r, at| {
                    let due = *at <= now;
                    if due {
                        dirty.insert(r.clone());
                    }
                    !due
                });
            }
            _ = shutdown.changed() => return,
        }
        // Let a burst of changes settle into one round.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(event) = watch.try_recv() {
            note_change(&event, &mut known, &mut dirty);
        }
    }
}

/// Marks the services a store change concerns.
fn note_change(
    event: &berth_store::WatchEvent,
    known: &mut HashMap<(Scope, String), HashSet<String>>,
    dirty: &mut HashSet<ServiceRef>,
) {
    let Some((scope, kind, cluster, rest)) = split_cluster_key(&event.kv.key) else {
        return;
    };
    let mark_cluster = |known: &HashMap<(Scope, String), HashSet<String>>,
                        dirty: &mut HashSet<ServiceRef>,
                        cluster: &str| {
        if let Some(names) = known.get(&(scope.clone(), cluster.to_owned())) {
            for name in names {
                dirty.insert(ServiceRef {
                    scope: scope.clone(),
                    cluster: cluster.to_owned(),
                    name: name.clone(),
                });
            }
        }
    };
    match kind {
        "service" => {
            let r = ServiceRef {
                scope: scope.clone(),
                cluster: cluster.to_owned(),
                name: rest.to_owned(),
            };
            if event.kind == EventKind::Put {
                known
                    .entry((scope.clone(), cluster.to_owned()))
                    .or_default()
                    .insert(rest.to_owned());
            }
            dirty.insert(r);
        }
        "task" => {
            // Only a service's own tasks concern it.
            if let Ok(Some(task)) = Task::from_event(event)
                && let Some(name) = task.group.strip_prefix("service:")
                && known
                    .get(&(scope.clone(), cluster.to_owned()))
                    .is_some_and(|names| names.contains(name))
            {
                dirty.insert(ServiceRef {
                    scope: scope.clone(),
                    cluster: cluster.to_owned(),
                    name: name.to_owned(),
                });
            }
        }
        "instance" => {
            if cluster == crate::fargate::POOL_CLUSTER {
                // A pool host changed: every cluster's Fargate services may care.
                let clusters: Vec<String> = known
                    .keys()
                    .filter(|(s, _)| *s == scope)
                    .map(|(_, c)| c.clone())
                    .collect();
                for c in clusters {
                    mark_cluster(known, dirty, &c);
                }
            } else {
                mark_cluster(known, dirty, cluster);
            }
        }
        _ => {}
    }
}

/// What one deployment's or task set's tasks of a service run as.
pub(crate) struct ServiceTasks<'a> {
    pub task_definition: &'a str,
    /// The deployment's or task set's id.
    pub started_by: &'a str,
    pub launch_type: LaunchType,
    pub capacity_provider_strategy: &'a [crate::CapacityProviderStrategyItem],
    pub platform_version: Option<&'a String>,
    pub network_configuration: Option<&'a crate::network::NetworkConfiguration>,
}

impl Service {
    /// RunTask for `count` of the service's tasks: its group, placement (none on Fargate)
    /// and, with `propagateTags: SERVICE`, its tags.
    pub(crate) fn run_task(&self, tasks: ServiceTasks<'_>, count: u32) -> RunTask {
        RunTask {
            cluster: Some(self.cluster.clone()),
            task_definition: tasks.task_definition.to_owned(),
            count,
            group: Some(format!("service:{}", self.service_name)),
            started_by: Some(tasks.started_by.to_owned()),
            launch_type: tasks
                .capacity_provider_strategy
                .is_empty()
                .then(|| tasks.launch_type.to_string()),
            capacity_provider_strategy: (!tasks.capacity_provider_strategy.is_empty())
                .then(|| tasks.capacity_provider_strategy.to_vec()),
            placement_constraints: self
                .placement_constraints
                .iter()
                .map(|p| (p.kind.clone(), p.expression.clone()))
                .collect(),
            placement_strategy: if tasks.launch_type == LaunchType::Fargate {
                Vec::new()
            } else {
                self.placement_strategy
                    .iter()
                    .map(|p| (p.kind.clone(), p.field.clone()))
                    .collect()
            },
            platform_version: tasks.platform_version.cloned(),
            network_configuration: tasks.network_configuration.cloned(),
            tags: if self.propagate_tags.as_deref() == Some("SERVICE") {
                self.tags.clone()
            } else {
                Vec::new()
            },
            ..RunTask::default()
        }
    }
}

/// ECS's event for tasks the scheduler stopped.
fn stopped_event(service: &str, ids: &[String]) -> String {
    format!(
        "(service {service}) has stopped {} running tasks: {}.",
        ids.len(),
        task_list(ids)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_scope_kind_and_cluster() {
        let (scope, kind, cluster, rest) =
            split_cluster_key("ecs/123456789012/us-east-1/service/prod/web").unwrap();
        assert_eq!(scope.account.to_string(), "123456789012");
        assert_eq!((kind, cluster, rest), ("service", "prod", "web"));
        assert!(split_cluster_key("ecr/x").is_none());
        assert!(split_cluster_key("ecs/123456789012/us-east-1/cluster").is_none());
    }
}
