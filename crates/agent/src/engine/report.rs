//! What a supervisor reports: a container's change of status, and the task's RUNNING and
//! STOPPED with every container's latest status, handed to the task's reporter in order.

use super::reporter::Report;
use super::supervisor::{Status, Supervisor};
use crate::client::{
    AttachmentStateChange, ContainerChangeInTask, ContainerStateChange, TaskStateChange,
};
use berth_model::ecs::{ContainerStatus, TaskStatus};

impl Supervisor {
    pub(super) fn report_container_if_changed(&mut self, name: &str) {
        let member = self.members.get_mut(name).expect("member");
        let status = match member.status {
            Status::Running => ContainerStatus::Running,
            Status::Stopped if member.started || member.reason.is_some() => {
                ContainerStatus::Stopped
            }
            _ => return,
        };
        if member.reported == Some(status) {
            return;
        }
        member.reported = Some(status);
        let change = ContainerStateChange {
            cluster: Some(self.engine.config.cluster.clone()),
            task: self.arn.clone(),
            container_name: name.to_owned(),
            status: status.to_string(),
            runtime_id: member.id.as_ref().map(|id| id.to_string()),
            image_digest: None,
            exit_code: member
                .exit_code
                .filter(|_| status == ContainerStatus::Stopped),
            reason: member.reason.clone(),
            network_bindings: if status == ContainerStatus::Running {
                member.bindings.clone()
            } else {
                Vec::new()
            },
        };
        let _ = self.reports.send(Report::Container(change));
    }

    fn containers_in_change(&self) -> Vec<ContainerChangeInTask> {
        self.members
            .iter()
            .map(|(name, m)| ContainerChangeInTask {
                container_name: name.clone(),
                status: Some(m.status.reported().to_string()),
                runtime_id: m.id.as_ref().map(|id| id.to_string()),
                image_digest: None,
                exit_code: m.exit_code.filter(|_| m.status == Status::Stopped),
                reason: m.reason.clone(),
                network_bindings: if m.status == Status::Running {
                    m.bindings.clone()
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    /// RUNNING once every container has started (those that have since exited included).
    pub(super) fn report_running_if_started(&mut self) {
        if self.task_reported.is_some() || !self.members.values().all(|m| m.started) {
            return;
        }
        self.task_reported = Some(TaskStatus::Running);
        self.engine
            .state
            .update_task(&self.arn, |r| r.known_status = TaskStatus::Running);
        let change = TaskStateChange {
            cluster: Some(self.engine.config.cluster.clone()),
            task: self.arn.clone(),
            status: TaskStatus::Running.to_string(),
            reason: None,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: None,
            containers: self.containers_in_change(),
            // Its containers run in the interface's namespace, so it is attached.
            attachments: self
                .eni
                .iter()
                .map(|eni| AttachmentStateChange {
                    attachment_arn: eni.attachment_arn.clone(),
                    status: berth_model::ecs::AttachmentStatus::Attached.to_string(),
                })
                .collect(),
        };
        let _ = self.reports.send(Report::Task(change));
    }

    pub(super) fn report_stopped(&mut self) {
        let reason = self.stopping.clone().flatten();
        let stopped_at = self.stopped_at;
        self.engine.state.update_task(&self.arn, |r| {
            r.known_status = TaskStatus::Stopped;
            r.stopped_reason = reason.clone();
            r.stopped_at = stopped_at;
        });
        if self.task_reported == Some(TaskStatus::Stopped) {
            return;
        }
        self.task_reported = Some(TaskStatus::Stopped);
        let change = TaskStateChange {
            cluster: Some(self.engine.config.cluster.clone()),
            task: self.arn.clone(),
            status: TaskStatus::Stopped.to_string(),
            reason,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: stopped_at,
            containers: self.containers_in_change(),
            attachments: Vec::new(),
        };
        let _ = self.reports.send(Report::Task(change));
    }
}
