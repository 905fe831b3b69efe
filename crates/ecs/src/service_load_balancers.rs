//! Services behind load balancers (a service's `loadBalancers`), as ECS does it: a task is
//! registered in each target group once it is RUNNING (awsvpc: an `ip` target, its
//! interface's address and the container port; bridge and host: an `instance` target, its
//! instance's id and the host port the container port is published on); a task the
//! scheduler stops is first deregistered and stopped only when its deregistration delay has
//! passed (it is DEACTIVATING meanwhile); a task that stops by itself is deregistered at
//! once. StopTask of such a task drains it the same way (DescribeTasks shows it DEACTIVATING,
//! desired STOPPED, while its agent keeps it running). While registered, its targets' health
//! is its health for the service: a deployment counts it healthy only when every target is
//! healthy, and a target unhealthy past the grace period gets the task replaced (with ECS's
//! "is unhealthy in (target-group …)" event, once per replacement).
//!
//! ELBv2 itself is behind [`TargetGroups`], which the server implements over `berth-elbv2`.

use std::collections::HashMap;
use std::sync::Arc;

use berth_model::Scope;
use berth_model::ecs::{DesiredStatus, LoadBalancer, StopCode, TaskStatus};
use berth_scheduler::service::TaskHealth;
use serde::{Deserialize, Serialize};

use crate::services::Service;
use crate::{Ecs, EcsError, Result, Task, now_epoch};

/// A target as ELBv2 names it: an instance id or an IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub id: String,
    pub port: u16,
}

/// A target registered for a task, in its target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTarget {
    pub target_group_arn: String,
    #[serde(flatten)]
    pub target: Target,
}

/// A task leaving its target groups before it is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deactivation {
    /// When its targets have drained and it is stopped (seconds since the epoch).
    pub until: f64,
    pub reason: String,
    /// Who asked for the stop (records from before StopTask drained say nothing: the
    /// scheduler).
    #[serde(default = "scheduler_initiated")]
    pub stop_code: StopCode,
}

fn scheduler_initiated() -> StopCode {
    StopCode::ServiceSchedulerInitiated
}

/// A target's health as the service scheduler reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    /// Failing its health checks: ELBv2's description of why (`TargetHealth.Description`,
    /// such as "Health checks failed with these codes: [502]").
    Unhealthy(String),
    /// Not registered in the group (a registration that did not happen, or was undone).
    NotRegistered,
    /// Draining, unused, unavailable: not serving.
    Other,
}

/// A target group's kind of targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Instance,
    Ip,
}

/// ELBv2 could not be asked (its own error's text).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TargetGroupsError(pub String);

type Answer<T> = std::result::Result<T, TargetGroupsError>;

/// What the service scheduler asks of ELBv2 (the server implements it over `berth-elbv2`),
/// by ELBv2's operation names. DeregisterTargets of a target not registered succeeds, as on
/// AWS.
pub trait TargetGroups: Send + Sync + 'static {
    /// The group's target type and whether a load balancer forwards to it; `None` when
    /// there is no such group.
    fn target_kind(&self, scope: &Scope, target_group: &str) -> Answer<Option<(TargetKind, bool)>>;
    fn register_targets(&self, scope: &Scope, target_group: &str, targets: &[Target])
    -> Answer<()>;
    fn deregister_targets(
        &self,
        scope: &Scope,
        target_group: &str,
        targets: &[Target],
    ) -> Answer<()>;
    /// The targets' health, in the order asked.
    fn describe_target_health(
        &self,
        scope: &Scope,
        target_group: &str,
        targets: &[Target],
    ) -> Answer<Vec<TargetState>>;
    /// `deregistration_delay.timeout_seconds`.
    fn deregistration_delay(&self, scope: &Scope, target_group: &str) -> Answer<f64>;
}

/// How ECS's stop reason for a task whose targets fail their health checks begins.
pub const REASON_ELB_UNHEALTHY: &str = "Task failed ELB health checks";

/// ECS's stop reason for a task whose targets fail their health checks.
pub fn reason_elb_unhealthy(target_group: &str) -> String {
    format!("{REASON_ELB_UNHEALTHY} in (target-group {target_group})")
}

/// ECS's event for targets of a service leaving a target group.
pub(crate) fn deregistered_event(service: &str, n: usize, group: &str) -> String {
    format!("(service {service}) deregistered {n} targets in (target-group {group})")
}

/// ECS's event for tasks of a service whose targets begin to drain.
pub(crate) fn draining_event(service: &str, n: usize) -> String {
    format!("(service {service}) has begun draining connections on {n} tasks.")
}

/// A task's target that fails its health checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnhealthyTarget {
    pub target_group: String,
    pub target: Target,
    /// ELBv2's description of the failure.
    pub reason: String,
}

impl UnhealthyTarget {
    /// ECS's stop reason for the task this target fails.
    pub fn stop_reason(&self) -> String {
        reason_elb_unhealthy(&self.target_group)
    }

    /// ECS's service event for it: the instance is named for an `instance` target (bridge
    /// and host tasks), not for an `ip` one (awsvpc).
    pub fn event(&self, service: &str, task: &str) -> String {
        let instance = if self.target.id.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            format!("(instance {}) ", self.target.id)
        };
        format!(
            "(service {service}) (task {task}) {instance}(port {}) is unhealthy in (target-group {}) due to (reason {}).",
            self.target.port, self.target_group, self.reason
        )
    }
}

/// A task's health as its targets tell it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetsHealth {
    pub health: TaskHealth,
    /// The first of its targets found unhealthy.
    pub unhealthy: Option<UnhealthyTarget>,
}

impl TargetsHealth {
    const UNKNOWN: TargetsHealth = TargetsHealth {
        health: TaskHealth::Unknown,
        unhealthy: None,
    };
    const HEALTHY: TargetsHealth = TargetsHealth {
        health: TaskHealth::Healthy,
        unhealthy: None,
    };
}

/// What a round learnt of the service's targets.
#[derive(Debug, Default)]
pub(crate) struct TargetsRound {
    /// Health from the targets, for tasks registered (or due to be).
    pub health: HashMap<String, TargetsHealth>,
    pub events: Vec<String>,
    /// DEACTIVATING tasks stopped now that their targets have drained.
    pub stopped: Vec<String>,
    /// Something is waiting on time (a drain, a target to register).
    pub busy: bool,
}

impl Ecs {
    /// Serves ELBv2 to the service scheduler (the server's ELBv2).
    pub fn with_target_groups(mut self, groups: Arc<dyn TargetGroups>) -> Ecs {
        self.target_groups = Some(groups);
        self
    }

    pub(crate) fn target_groups(&self) -> Option<&Arc<dyn TargetGroups>> {
        self.target_groups.as_ref()
    }

    /// CreateService's and UpdateService's checks of `loadBalancers` against ELBv2 and the
    /// task definition, with ECS's messages.
    pub(crate) fn check_load_balancers(
        &self,
        scope: &Scope,
        balancers: &[LoadBalancer],
        task_definition: &str,
    ) -> Result<()> {
        if balancers.is_empty() {
            return Ok(());
        }
        let Some(groups) = self.target_groups().cloned() else {
            return Ok(());
        };
        let definition = self
            .task_definition(scope, task_definition)?
            .task_definition;
        let awsvpc = definition.network_mode.as_deref() == Some("awsvpc");
        let containers = definition.container_definitions.unwrap_or_default();
        for l in balancers {
            let Some(arn) = l.target_group_arn.as_deref() else {
                return Err(EcsError::InvalidParameter(
                    "Load balancers must have a targetGroupArn: classic load balancers are not supported by Berth.".into(),
                ));
            };
            let found = groups
                .target_kind(scope, arn)
                .map_err(|e| EcsError::Server(e.to_string()))?;
            let Some((kind, associated)) = found else {
                return Err(EcsError::InvalidParameter(
                    "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.".into(),
                ));
            };
            if !associated {
                return Err(EcsError::InvalidParameter(format!(
                    "The target group with targetGroupArn {arn} does not have an associated load balancer."
                )));
            }
            if awsvpc && kind == TargetKind::Instance {
                return Err(EcsError::InvalidParameter(format!(
                    "The provided target group {arn} has target type instance, which is incompatible with the awsvpc network mode specified in the task definition."
                )));
            }
            if !awsvpc && kind == TargetKind::Ip {
                let mode = definition.network_mode.as_deref().unwrap_or("bridge");
                return Err(EcsError::InvalidParameter(format!(
                    "The provided target group {arn} has target type ip, which is incompatible with the {mode} network mode specified in the task definition."
                )));
            }
            let name = l.container_name.as_deref().unwrap_or_default();
            let Some(container) = containers.iter().find(|c| c.name.as_deref() == Some(name))
            else {
                return Err(EcsError::InvalidParameter(format!(
                    "The container {name} does not exist in the task definition."
                )));
            };
            let port = l.container_port.unwrap_or(0);
            let mapped = container
                .port_mappings
                .iter()
                .flatten()
                .any(|m| m.container_port.map(i64::from) == Some(port));
            if !mapped {
                return Err(EcsError::InvalidParameter(format!(
                    "The container {name} did not have a container port {port} defined."
                )));
            }
        }
        Ok(())
    }

    /// The round's work on the service's targets before planning: registers RUNNING tasks,
    /// deregisters tasks that stopped, stops DEACTIVATING tasks whose drain is over, and
    /// reads the registered targets' health.
    pub(crate) fn targets_round(
        &self,
        scope: &Scope,
        service: &Service,
        tasks: &[Task],
    ) -> Result<TargetsRound> {
        let mut round = TargetsRound::default();
        let Some(groups) = self.target_groups().cloned() else {
            return Ok(round);
        };
        let balancers: Vec<&LoadBalancer> = service
            .load_balancers
            .iter()
            .filter(|l| l.target_group_arn.is_some())
            .collect();
        if balancers.is_empty() && tasks.iter().all(|t| t.load_balancer_targets.is_empty()) {
            return Ok(round);
        }
        let now = now_epoch();
        let mut registered: HashMap<String, usize> = HashMap::new();
        let mut deregistered: HashMap<String, usize> = HashMap::new();
        let mut serving: Vec<&Task> = Vec::new();
        for t in tasks {
            if let Some(d) = &t.deactivating {
                if t.desired_status == DesiredStatus::Stopped
                    || t.last_status == TaskStatus::Stopped
                {
                    continue;
                }
                // Its targets are deregistered again, in case the first try failed
                // (deregistering a target not registered succeeds; not news for the events).
                self.leave_groups(scope, groups.as_ref(), t, &mut HashMap::new());
                if d.until <= now {
                    self.stop_task_as(
                        scope,
                        Some(&service.cluster),
                        &t.id,
                        Some(d.reason.clone()),
                        d.stop_code,
                    )?;
                    round.stopped.push(t.id.clone());
                } else {
                    round.busy = true;
                }
                continue;
            }
            let running =
                t.last_status == TaskStatus::Running && t.desired_status == DesiredStatus::Running;
            if !running {
                // Stopped, or asked to stop by someone else: out of the groups at once.
                if self.leave_groups(scope, groups.as_ref(), t, &mut deregistered) {
                    self.update_task_record(scope, &t.cluster, &t.id, |t| {
                        t.load_balancer_targets.clear();
                    })?;
                }
                continue;
            }
            if t.load_balancer_targets.is_empty() && !balancers.is_empty() {
                round.health.insert(t.id.clone(), TargetsHealth::UNKNOWN);
                round.busy = true;
                // The targets are recorded on the task before ELBv2 hears of them, so a
                // registration is never left without a record to undo it by.
                let Some(targets) = self.targets_of(scope, t, &balancers)? else {
                    continue; // Its port bindings are not reported yet.
                };
                self.update_task_record(scope, &t.cluster, &t.id, |t| {
                    t.load_balancer_targets = targets.clone();
                })?;
                for r in &targets {
                    if self.join_group(scope, groups.as_ref(), t, r) {
                        *registered.entry(r.target_group_arn.clone()).or_default() += 1;
                    }
                }
                continue;
            }
            serving.push(t);
        }
        for (task, health) in self.serving_health(scope, groups.as_ref(), &serving, &mut registered)
        {
            round.health.insert(task, health);
        }
        // Target health lives in ELBv2's records, which wake no round: a service behind
        // load balancers is looked at every second.
        if !balancers.is_empty() {
            round.busy = true;
        }
        for (group, n) in registered {
            round.events.push(format!(
                "(service {}) registered {n} targets in (target-group {group})",
                service.service_name
            ));
        }
        for (group, n) in deregistered {
            round
                .events
                .push(deregistered_event(&service.service_name, n, &group));
        }
        Ok(round)
    }

    /// StopTask of a task of a service registered in target groups: it drains first
    /// (see [`Ecs::deactivate`]) and its service says so in its events. The task as
    /// StopTask answers it; `None` when it is not behind load balancers (or no longer
    /// running), and is stopped at once.
    pub(crate) fn stop_after_drain(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        reason: &str,
        stop_code: StopCode,
    ) -> Result<Option<Task>> {
        let Some(t) = self.task(scope, cluster, id)? else {
            return Ok(None);
        };
        let Some(left) = self.deactivate(scope, &t, reason, stop_code)? else {
            return Ok(None);
        };
        if let Some(service) = t.group.strip_prefix("service:")
            && !left.is_empty()
        {
            let mut events: Vec<String> = left
                .iter()
                .map(|group| deregistered_event(service, 1, group))
                .collect();
            events.push(draining_event(service, 1));
            let noted = self.change_service(scope, Some(cluster), service, |s| {
                let now = now_epoch();
                for message in &events {
                    s.push_event(message.clone(), now);
                }
                Ok(())
            });
            if let Err(e) = noted {
                tracing::debug!(task = %id, error = %e, "noting a drain in the service's events");
            }
        }
        self.task(scope, cluster, id)
    }

    /// RegisterTargets for one of a task's targets; whether it was registered (a failure is
    /// logged and tried again next round, when the target shows as not registered).
    fn join_group(
        &self,
        scope: &Scope,
        groups: &dyn TargetGroups,
        t: &Task,
        r: &RegisteredTarget,
    ) -> bool {
        match groups.register_targets(scope, &r.target_group_arn, std::slice::from_ref(&r.target)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(task = %t.id, target_group = %r.target_group_arn, error = %e, "registering a task's target");
                false
            }
        }
    }

    /// DeregisterTargets for each of a task's targets; whether all left (the record may be
    /// cleared then, and they are counted per group).
    fn leave_groups(
        &self,
        scope: &Scope,
        groups: &dyn TargetGroups,
        t: &Task,
        deregistered: &mut HashMap<String, usize>,
    ) -> bool {
        let mut all = !t.load_balancer_targets.is_empty();
        for r in &t.load_balancer_targets {
            let left = groups.deregister_targets(
                scope,
                &r.target_group_arn,
                std::slice::from_ref(&r.target),
            );
            if let Err(e) = left {
                all = false;
                tracing::warn!(task = %t.id, target_group = %r.target_group_arn, error = %e, "deregistering a task's target");
            }
        }
        if all {
            for r in &t.load_balancer_targets {
                *deregistered.entry(r.target_group_arn.clone()).or_default() += 1;
            }
        }
        all
    }

    /// The health of each serving task's targets together (one DescribeTargetHealth per
    /// group): unhealthy if one is (with the stop reason naming its group), healthy if all
    /// are, else not yet known. A target ELBv2 does not have is registered again.
    fn serving_health(
        &self,
        scope: &Scope,
        groups: &dyn TargetGroups,
        serving: &[&Task],
        registered: &mut HashMap<String, usize>,
    ) -> Vec<(String, TargetsHealth)> {
        let mut by_group: HashMap<&str, Vec<(usize, &RegisteredTarget)>> = HashMap::new();
        for (i, t) in serving.iter().enumerate() {
            for r in &t.load_balancer_targets {
                by_group
                    .entry(&r.target_group_arn)
                    .or_default()
                    .push((i, r));
            }
        }
        let mut health: Vec<TargetsHealth> = vec![TargetsHealth::HEALTHY; serving.len()];
        let mut worse = |i: usize, h: TaskHealth, unhealthy: Option<UnhealthyTarget>| {
            let current = &mut health[i];
            match (current.health, h) {
                (TaskHealth::Unhealthy, _) => {}
                (_, TaskHealth::Unhealthy) => {
                    *current = TargetsHealth {
                        health: h,
                        unhealthy,
                    }
                }
                (_, TaskHealth::Unknown) => current.health = TaskHealth::Unknown,
                _ => {}
            }
        };
        for (group, members) in by_group {
            let targets: Vec<Target> = members.iter().map(|(_, r)| r.target.clone()).collect();
            let states = match groups.describe_target_health(scope, group, &targets) {
                Ok(states) => states,
                Err(e) => {
                    tracing::debug!(target_group = group, error = %e, "reading target health");
                    vec![TargetState::Other; targets.len()]
                }
            };
            for ((i, r), state) in members.into_iter().zip(states) {
                match state {
                    TargetState::Healthy => {}
                    TargetState::Unhealthy(reason) => {
                        let failing = UnhealthyTarget {
                            target_group: group.to_owned(),
                            target: r.target.clone(),
                            reason,
                        };
                        worse(i, TaskHealth::Unhealthy, Some(failing))
                    }
                    TargetState::NotRegistered => {
                        if self.join_group(scope, groups, serving[i], r) {
                            *registered.entry(group.to_owned()).or_default() += 1;
                        }
                        worse(i, TaskHealth::Unknown, None);
                    }
                    TargetState::Initial | TargetState::Other => {
                        worse(i, TaskHealth::Unknown, None)
                    }
                }
            }
        }
        serving
            .iter()
            .zip(health)
            .map(|(t, h)| (t.id.clone(), h))
            .collect()
    }

    /// The targets a RUNNING task is registered as, one per load balancer of its service;
    /// `None` while a port binding it needs is not yet reported.
    fn targets_of(
        &self,
        scope: &Scope,
        t: &Task,
        balancers: &[&LoadBalancer],
    ) -> Result<Option<Vec<RegisteredTarget>>> {
        let mut targets = Vec::new();
        for l in balancers {
            let group = l.target_group_arn.clone().unwrap_or_default();
            let container_port = l.container_port.unwrap_or(0) as u16;
            let target = if let Some(ip) = t
                .eni()
                .and_then(|a| a.detail("privateIPv4Address"))
                .filter(|ip| !ip.is_empty())
            {
                Target {
                    id: ip.to_owned(),
                    port: container_port,
                }
            } else {
                let container = t
                    .containers
                    .iter()
                    .find(|c| Some(&c.name) == l.container_name.as_ref());
                let binding = container.and_then(|c| {
                    c.network_bindings
                        .iter()
                        .find(|b| b.container_port == container_port && b.protocol != "udp")
                });
                let Some(binding) = binding else {
                    return Ok(None);
                };
                let Some(instance) = t.container_instance_id.as_deref() else {
                    return Ok(None);
                };
                let Some(instance) =
                    self.container_instance(scope, Some(t.instance_cluster()), instance)?
                else {
                    return Ok(None);
                };
                if binding.host_port == 0 {
                    return Ok(None);
                }
                Target {
                    id: instance.ec2_instance_id,
                    port: binding.host_port,
                }
            };
            targets.push(RegisteredTarget {
                target_group_arn: group,
                target,
            });
        }
        Ok(Some(targets))
    }

    /// A task behind load balancers is stopped by deregistering it first: it keeps
    /// running (DEACTIVATING; its record says RUNNING, as its agent runs it) until its
    /// groups' longest deregistration delay has passed, when the service scheduler stops
    /// it. What DescribeTasks shows of a stop (desired STOPPED, `stoppingAt`, the reason
    /// and code) is recorded now. The groups it left (`None`: it has no targets, or is
    /// stopped or stopping already: the caller stops it now).
    pub(crate) fn deactivate(
        &self,
        scope: &Scope,
        t: &Task,
        reason: &str,
        stop_code: StopCode,
    ) -> Result<Option<Vec<String>>> {
        let Some(groups) = self.target_groups().cloned() else {
            return Ok(None);
        };
        if t.deactivating.is_some() {
            return Ok(Some(Vec::new()));
        }
        if t.load_balancer_targets.is_empty() || !drainable(t) {
            return Ok(None);
        }
        // The drain is recorded before ELBv2 hears of it: a failure after this point
        // leaves a DEACTIVATING task whose targets the next rounds deregister.
        let delay = t
            .load_balancer_targets
            .iter()
            .map(|r| {
                groups
                    .deregistration_delay(scope, &r.target_group_arn)
                    .unwrap_or(0.0)
            })
            .fold(0.0_f64, f64::max);
        let now = now_epoch();
        let drain = Deactivation {
            until: now + delay,
            reason: reason.to_owned(),
            stop_code,
        };
        let recorded = self.update_task_record(scope, &t.cluster, &t.id, |t| {
            if drainable(t) && t.deactivating.is_none() {
                t.deactivating = Some(drain.clone());
                t.stopping_at = Some(now);
                t.stop_code = Some(stop_code);
                t.stopped_reason = Some(drain.reason.clone());
            }
        })?;
        if recorded.deactivating.as_ref() != Some(&drain) {
            // Stopped or drained meanwhile by someone else.
            return Ok(recorded.deactivating.is_some().then(Vec::new));
        }
        let mut deregistered = HashMap::new();
        self.leave_groups(scope, groups.as_ref(), t, &mut deregistered);
        let left: Vec<String> = deregistered.into_keys().collect();
        Ok(Some(left))
    }
}

/// Whether a task may still drain before its stop: RUNNING and meant to run.
fn drainable(t: &Task) -> bool {
    t.last_status == TaskStatus::Running && t.desired_status == DesiredStatus::Running
}

/// A task's health with its load balancer targets' health: unhealthy if either says so,
/// healthy only when the targets are (and its containers, when they have health checks).
pub(crate) fn with_targets_health(containers: TaskHealth, targets: TaskHealth) -> TaskHealth {
    match (containers, targets) {
        (TaskHealth::Unhealthy, _) | (_, TaskHealth::Unhealthy) => TaskHealth::Unhealthy,
        (TaskHealth::None | TaskHealth::Healthy, TaskHealth::Healthy) => TaskHealth::Healthy,
        (TaskHealth::None | TaskHealth::Healthy | TaskHealth::Unknown, _) => TaskHealth::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_healthy_only_when_its_targets_and_checked_containers_are() {
        use TaskHealth::*;
        assert_eq!(with_targets_health(None, Healthy), Healthy);
        assert_eq!(with_targets_health(Healthy, Healthy), Healthy);
        assert_eq!(with_targets_health(Unknown, Healthy), Unknown);
        assert_eq!(with_targets_health(None, Unknown), Unknown);
        assert_eq!(with_targets_health(Healthy, Unhealthy), Unhealthy);
        assert_eq!(with_targets_health(Unhealthy, Healthy), Unhealthy);
    }
}
