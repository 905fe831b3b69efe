//! Task scale-in protection (GetTaskProtection, UpdateTaskProtection): a service's task can
//! be kept from being stopped by a scale-in or a deployment for 1 minute to 48 hours (2
//! hours by default). The protection is stored on the task record with its expiration date;
//! once that passes the task counts as unprotected again (nothing has to clear it), which
//! is what the service planner (`TaskView::protected`) and GetTaskProtection read.

use berth_model::Scope;
use serde::{Deserialize, Serialize};

use super::Task;
use crate::keys::task_key;
use crate::{Ecs, EcsError, Result, decode, now_epoch};

/// ECS's default protection period: 2 hours.
pub const DEFAULT_EXPIRES_IN_MINUTES: i64 = 120;
/// ECS's longest protection period: 48 hours.
pub const MAX_EXPIRES_IN_MINUTES: i64 = 2880;
/// GetTaskProtection names at most 100 tasks, UpdateTaskProtection 10.
pub const MAX_GET_TASKS: usize = 100;
pub const MAX_UPDATE_TASKS: usize = 10;

/// A task's scale-in protection as stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProtection {
    /// Seconds since the epoch.
    pub expiration_date: f64,
}

/// ECS's ProtectedTask.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedTask {
    pub task_arn: String,
    pub protection_enabled: bool,
    /// Only while protection is on.
    pub expiration_date: Option<f64>,
}

/// One named task's answer: its protection, or ECS's failure reason (`MISSING`: no such
/// task in the cluster; `TASK_NOT_VALID`: not a service's task).
pub type ProtectionResult = std::result::Result<ProtectedTask, &'static str>;

/// ECS's failure reason for a task that is not found.
pub const REASON_MISSING: &str = "MISSING";
/// ECS's failure reason for a task that does not belong to a service (a standalone task),
/// as the API reference names it.
pub const REASON_TASK_NOT_VALID: &str = "TASK_NOT_VALID";

impl Task {
    /// When the task's scale-in protection expires, if it is on at `now`.
    pub fn protected_until(&self, now: f64) -> Option<f64> {
        self.protection
            .map(|p| p.expiration_date)
            .filter(|at| *at > now)
    }

    fn protected_task(&self, scope: &Scope, now: f64) -> ProtectedTask {
        let until = self.protected_until(now);
        ProtectedTask {
            task_arn: self.arn(scope),
            protection_enabled: until.is_some(),
            expiration_date: until,
        }
    }
}

impl Ecs {
    /// Whether the task is one of a service's (its group names a service of its cluster: a
    /// RunTask may name any group).
    fn in_service(&self, scope: &Scope, task: &Task) -> Result<bool> {
        let Some(name) = task.group.strip_prefix("service:") else {
            return Ok(false);
        };
        match self.service(scope, Some(&task.cluster), name) {
            Ok(_) => Ok(task.started_by.is_some()),
            Err(EcsError::ServiceNotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// GetTaskProtection: each named task's protection, in the order named.
    pub fn get_task_protection(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        tasks: &[String],
    ) -> Result<Vec<(String, ProtectionResult)>> {
        if tasks.len() > MAX_GET_TASKS {
            return Err(EcsError::InvalidParameter(format!(
                "tasks can have at most {MAX_GET_TASKS} items."
            )));
        }
        let cluster = self.active_cluster(scope, cluster)?;
        let now = now_epoch();
        let mut answers = Vec::new();
        for reference in tasks {
            let found = match self.task_id(scope, &cluster.name, reference) {
                Ok(id) => self.task(scope, &cluster.name, &id)?,
                Err(EcsError::InvalidParameter(_)) => None,
                Err(e) => return Err(e),
            };
            let answer = match found {
                None => Err(REASON_MISSING),
                Some(t) if !self.in_service(scope, &t)? => Err(REASON_TASK_NOT_VALID),
                Some(t) => Ok(t.protected_task(scope, now)),
            };
            answers.push((reference.clone(), answer));
        }
        Ok(answers)
    }

    /// UpdateTaskProtection: turns protection on (for `expires_in_minutes`, 120 by
    /// default, from now: a repeated call extends it) or off for each named task.
    pub fn update_task_protection(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        tasks: &[String],
        enabled: bool,
        expires_in_minutes: Option<i64>,
    ) -> Result<Vec<(String, ProtectionResult)>> {
        if tasks.is_empty() || tasks.len() > MAX_UPDATE_TASKS {
            return Err(EcsError::InvalidParameter(format!(
                "tasks must contain between 1 and {MAX_UPDATE_TASKS} items."
            )));
        }
        let minutes = expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
        if enabled && !(1..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
            return Err(EcsError::InvalidParameter(format!(
                "expiresInMinutes must be between 1 and {MAX_EXPIRES_IN_MINUTES}."
            )));
        }
        let cluster = self.active_cluster(scope, cluster)?;
        let mut answers = Vec::new();
        for reference in tasks {
            let id = match self.task_id(scope, &cluster.name, reference) {
                Ok(id) => id,
                Err(EcsError::InvalidParameter(_)) => {
                    answers.push((reference.clone(), Err(REASON_MISSING)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let key = task_key(scope, &cluster.name, &id);
            let refused = match self.store.get(&key)? {
                None => Some(REASON_MISSING),
                Some(kv) if !self.in_service(scope, &decode(&kv)?)? => Some(REASON_TASK_NOT_VALID),
                Some(_) => None,
            };
            if let Some(reason) = refused {
                answers.push((reference.clone(), Err(reason)));
                continue;
            }
            let mut refused = None;
            let now = now_epoch();
            let stored = berth_store::update(&*self.store, &key, |task: Option<Task>| {
                refused = None;
                let Some(mut task) = task else {
                    refused = Some(REASON_MISSING);
                    return Ok::<_, EcsError>(berth_store::Change::Keep);
                };
                task.protection = enabled.then_some(TaskProtection {
                    expiration_date: now + 60.0 * minutes as f64,
                });
                Ok(berth_store::Change::Put(task))
            })?;
            let answer = match (refused, stored) {
                (None, Some(t)) => Ok(t.protected_task(scope, now)),
                (reason, _) => Err(reason.unwrap_or(REASON_MISSING)),
            };
            answers.push((reference.clone(), answer));
        }
        Ok(answers)
    }
}
