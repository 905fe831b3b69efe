//! StopTask and the agent's reports: SubmitTaskStateChange, SubmitContainerStateChange,
//! container health; every change to a task is one compare-and-swap transaction that also
//! moves its markers and its instance's reservation.

use berth_model::Scope;

use berth_store::{Change, Compare, Op, Update};

use crate::instances::ContainerInstance;
use crate::network::release_ops;
use crate::{Ecs, EcsError, Result, decode, encode, now_epoch};

use super::*;
use crate::keys::{marker_key, task_key};
use berth_model::ecs::{
    AttachmentStatus, ContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus,
};

/// Gives back what a stopped task held on its instance record.
pub(super) fn release(instance: &mut ContainerInstance, task: &Task) {
    if let Some(n) = instance.task_groups.get_mut(&task.group) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            instance.task_groups.remove(&task.group);
        }
    }
    let r = &task.reservation;
    instance.remaining.cpu += r.cpu;
    instance.remaining.memory += r.memory;
    for p in &r.tcp_ports {
        instance.remaining.ports.remove(p);
    }
    for p in &r.udp_ports {
        instance.remaining.ports_udp.remove(p);
    }
    // Ports reserved at registration stay reserved.
    let registered = instance.registered.clone();
    instance.remaining.ports.extend(registered.ports);
    instance.remaining.ports_udp.extend(registered.ports_udp);
    instance.version += 1;
}

/// ECS's stoppedReason for StopTask without a reason.
const STOPPED_BY_USER: &str = "Task stopped by user";

/// ECS's stoppedReason when an essential container of a task exits.
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";

impl Ecs {
    /// StopTask: the task is to stop. A task no agent has picked up yet (still
    /// PROVISIONING) stops at once; a service's task registered in target groups leaves
    /// them first and is stopped once they have drained (DEACTIVATING, as ECS does);
    /// otherwise its agent stops it and reports STOPPED.
    pub fn stop_task(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        reason: Option<String>,
    ) -> Result<Task> {
        let name = self.active_cluster(scope, cluster)?.name;
        let id = self.task_id(scope, &name, id_or_arn)?;
        let why = reason.as_deref().unwrap_or(STOPPED_BY_USER);
        if let Some(task) =
            self.stop_after_drain(scope, &name, &id, why, StopCode::UserInitiated)?
        {
            return Ok(task);
        }
        self.stop_task_as(scope, Some(&name), &id, reason, StopCode::UserInitiated)
    }

    /// StopTask with ECS's `stopCode` for who asked (`UserInitiated`,
    /// `ServiceSchedulerInitiated`).
    pub fn stop_task_as(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        reason: Option<String>,
        stop_code: StopCode,
    ) -> Result<Task> {
        let cluster = self.active_cluster(scope, cluster)?;
        let id = self.task_id(scope, &cluster.name, id_or_arn)?;
        self.change_task(scope, &cluster.name, &id, |t| {
            if t.desired_status != DesiredStatus::Stopped {
                t.desired_status = DesiredStatus::Stopped;
                // A task that drained first has been stopping since its drain began.
                t.stopping_at.get_or_insert_with(now_epoch);
                t.stop_code = Some(stop_code);
                t.stopped_reason = Some(reason.clone().unwrap_or_else(|| STOPPED_BY_USER.into()));
            }
            (t.last_status == TaskStatus::Provisioning).then_some(TaskStatus::Stopped)
        })
    }

    /// SubmitTaskStateChange, the agent's report of a task's new status.
    pub fn submit_task_state_change(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        change: TaskStateChange,
    ) -> Result<Task> {
        let TaskStateChange {
            task: id_or_arn,
            status,
            reason,
            pull_started_at,
            pull_stopped_at,
            execution_stopped_at,
            containers,
            attachments,
        } = change;
        // What an agent may report: everything after the control plane's own PROVISIONING.
        let status = status
            .parse::<TaskStatus>()
            .ok()
            .filter(|s| !matches!(s, TaskStatus::Provisioning | TaskStatus::Deprovisioning))
            .ok_or_else(|| {
                EcsError::InvalidParameter(format!("Invalid task status '{status}'."))
            })?;
        let (cluster, id) = self.reported_task(scope, cluster, &id_or_arn)?;
        self.change_task(scope, &cluster.name, &id, |t| {
            if pull_started_at.is_some() {
                t.pull_started_at = pull_started_at;
            }
            if pull_stopped_at.is_some() {
                t.pull_stopped_at = pull_stopped_at;
            }
            if execution_stopped_at.is_some() {
                t.execution_stopped_at = execution_stopped_at;
            }
            for c in &containers {
                c.apply(t);
            }
            for (arn, status) in &attachments {
                if let Some(a) = t.attachments.iter_mut().find(|a| &a.arn(scope) == arn) {
                    a.status = *status;
                }
            }
            if status == TaskStatus::Stopped && t.stopped_reason.is_none() {
                // ECS's codes: a task none of whose containers ever ran failed to start
                // (an image not pulled, a container not created or started…). One whose
                // container ran and exited is EssentialContainerExited even if it exited
                // before the agent saw the task RUNNING (the agent then reports STOPPED
                // only, with the exit code).
                let ran =
                    t.started_at.is_some() || t.containers.iter().any(|c| c.exit_code.is_some());
                let code = if ran {
                    StopCode::EssentialContainerExited
                } else {
                    StopCode::TaskFailedToStart
                };
                let code = *t.stop_code.get_or_insert(code);
                // The official agent reports an essential container's exit with an empty
                // reason: the words are ECS's own.
                t.stopped_reason = reason.clone().filter(|r| !r.is_empty()).or_else(|| {
                    (code == StopCode::EssentialContainerExited)
                        .then(|| ESSENTIAL_CONTAINER_EXITED.to_owned())
                });
            }
            Some(status).filter(|_| t.last_status != TaskStatus::Stopped)
        })
    }

    /// SubmitContainerStateChange: one container's status, runtime id, exit code and
    /// bindings.
    pub fn submit_container_state_change(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        change: ContainerChange,
    ) -> Result<Task> {
        let (cluster, id) = self.reported_task(scope, cluster, id_or_arn)?;
        if self
            .task(scope, &cluster.name, &id)?
            .is_some_and(|t| !t.containers.iter().any(|c| c.name == change.name))
        {
            return Err(EcsError::InvalidParameter(format!(
                "The task has no container named '{}'.",
                change.name
            )));
        }
        self.change_task(scope, &cluster.name, &id, |t| {
            change.apply(t);
            None
        })
    }

    /// The agent's health report for a task's containers (telemetry): each container's
    /// status, and the task's as ECS derives it.
    pub fn record_task_health(
        &self,
        scope: &Scope,
        cluster: &str,
        task_arn: &str,
        containers: &[(String, HealthStatus)],
    ) -> Result<()> {
        let (cluster, id) = self.reported_task(scope, Some(cluster), task_arn)?;
        let cluster = cluster.name.as_str();
        let essential: Vec<String> = match self.task(scope, cluster, &id)? {
            None => return Ok(()),
            Some(task) => {
                let td = self.task_definition(scope, &task.task_definition_arn)?;
                td.task_definition
                    .container_definitions
                    .iter()
                    .flatten()
                    .filter(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
                    .filter_map(|c| c.name.clone())
                    .collect()
            }
        };
        self.change_task(scope, cluster, &id, |t| {
            for (name, status) in containers {
                if let Some(c) = t.containers.iter_mut().find(|c| &c.name == name) {
                    c.health_status = Some(*status);
                }
            }
            let of = |name: &String| {
                t.containers
                    .iter()
                    .find(|c| &c.name == name)
                    .and_then(|c| c.health_status)
            };
            let statuses: Vec<Option<HealthStatus>> = essential.iter().map(of).collect();
            t.health_status = Some(if statuses.contains(&Some(HealthStatus::Unhealthy)) {
                HealthStatus::Unhealthy
            } else if !statuses.is_empty()
                && statuses.iter().all(|s| *s == Some(HealthStatus::Healthy))
            {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unknown
            });
            None
        })
        .map(|_| ())
    }

    /// Changes a task's record without moving its status (the service scheduler's own
    /// fields).
    pub(crate) fn update_task_record(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        change: impl Fn(&mut Task),
    ) -> Result<Task> {
        self.change_task(scope, cluster, id, |t| {
            change(t);
            None
        })
    }

    /// Apply `change` to a task; when it returns a new last status, move the task there with
    /// its timestamps, live markers and (on STOPPED) the instance's resources given back,
    /// in one transaction.
    pub(super) fn change_task(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        change: impl Fn(&mut Task) -> Option<TaskStatus>,
    ) -> Result<Task> {
        let tkey = task_key(scope, cluster, id);
        let changed = berth_store::update(&*self.store, &tkey, |task: Option<Task>| {
            let Some(mut task) = task else {
                return Err(EcsError::InvalidParameter(
                    "The referenced task was not found.".into(),
                ));
            };
            let old_status = task.last_status;
            let next = change(&mut task);
            let mut compares = Vec::new();
            let mut ops = Vec::new();
            if let Some(next) = next.filter(|n| *n != old_status) {
                let now = now_epoch();
                task.last_status = next;
                match next {
                    TaskStatus::Running => {
                        task.started_at.get_or_insert(now);
                        // Containers the agent has not reported on run with the task; one
                        // reported already (a finished init container) keeps its status.
                        for c in task
                            .containers
                            .iter_mut()
                            .filter(|c| c.last_status == ContainerStatus::Pending)
                        {
                            c.last_status = ContainerStatus::Running;
                        }
                        // Its containers run in the interface's namespace, so it is there.
                        for a in &mut task.attachments {
                            if matches!(
                                a.status,
                                AttachmentStatus::Precreated | AttachmentStatus::Attaching
                            ) {
                                a.status = AttachmentStatus::Attached;
                            }
                        }
                    }
                    TaskStatus::Stopped => {
                        task.stopped_at = Some(now);
                        task.execution_stopped_at.get_or_insert(now);
                        task.desired_status = DesiredStatus::Stopped;
                        for c in &mut task.containers {
                            c.last_status = ContainerStatus::Stopped;
                        }
                        // The interface goes with the task, and its address is free again.
                        ops.extend(release_ops(&task.attachments));
                        for a in &mut task.attachments {
                            a.status = AttachmentStatus::Deleted;
                        }
                    }
                    _ => {}
                }
                let was_running = old_status == TaskStatus::Running;
                let is_running = next == TaskStatus::Running;
                if next == TaskStatus::Stopped || was_running != is_running {
                    ops.push(Op::delete(marker_key(scope, old_status, cluster, id)));
                }
                if next != TaskStatus::Stopped {
                    ops.push(Op::put(
                        marker_key(scope, next, cluster, id),
                        MARKER.to_vec(),
                    ));
                }
                // The instance's live-task index and, when the task stops, the
                // resources it held there. A status change short of STOPPED leaves the
                // instance record alone (placement lanes compare on it).
                if let Some(iid) = &task.container_instance_id {
                    let (entry, value) = index_entry(scope, &task, next);
                    if next == TaskStatus::Stopped {
                        ops.push(Op::delete(entry));
                        let ikey = crate::keys::instance_key(scope, task.instance_cluster(), iid);
                        if let Some(ikv) = self.store.get(&ikey)? {
                            let mut instance: ContainerInstance = decode(&ikv)?;
                            release(&mut instance, &task);
                            compares.push(Compare::ModRevision(ikey.clone(), ikv.mod_revision));
                            ops.push(Op::put(ikey, encode(&instance)));
                        }
                    } else {
                        ops.push(Op::put(entry, value));
                    }
                }
            }
            task.version += 1;
            Ok(Update {
                change: Change::Put(task),
                compares,
                ops,
            })
        })?;
        Ok(changed.expect("a Put leaves its value stored"))
    }
}
