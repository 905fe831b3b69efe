//! Tasks' role credentials as ACS hands them over: a task's role (`TaskApplication`) and its
//! execution role (`TaskExecution`), from a PayloadMessage (`roleCredentials`,
//! `executionRoleCredentials`) and renewed by `IAMRoleCredentialsMessage`s. Kept in memory
//! only — never in the state file: a restarted agent gets them again with the payload of
//! its next ACS session. The task role's are served to the task's containers at the
//! credentials endpoint (`metadata::credentials`); the execution role's are the agent's to
//! use for the task (pulls from ECR, awslogs, secrets).

use std::collections::HashMap;
use std::sync::Mutex;

use berth_agent_protocol::acs::{IAMRoleCredentials, Task};

/// `roleType` of a task's own role.
pub const TASK_APPLICATION: &str = "TaskApplication";
/// `roleType` of a task's execution role.
pub const TASK_EXECUTION: &str = "TaskExecution";

/// Credentials held for one task's role.
#[derive(Clone)]
pub struct Held {
    pub task_arn: String,
    pub role_type: String,
    pub credentials: IAMRoleCredentials,
}

/// Every task's credentials, by credentials id.
#[derive(Default)]
pub struct CredentialStore {
    by_id: Mutex<HashMap<String, Held>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CredentialStore {
    /// Keeps credentials for `task_arn`'s role of `role_type`; `false` when they carry no
    /// credentials id (nothing kept). Newer credentials of the same id replace older ones.
    pub fn put(&self, task_arn: &str, role_type: &str, credentials: IAMRoleCredentials) -> bool {
        let Some(id) = credentials
            .credentials_id
            .clone()
            .filter(|id| !id.is_empty())
        else {
            return false;
        };
        lock(&self.by_id).insert(
            id,
            Held {
                task_arn: task_arn.to_owned(),
                role_type: role_type.to_owned(),
                credentials,
            },
        );
        true
    }

    /// Takes the credentials out of a payload's task (so that they never reach the task's
    /// record and the state file) and keeps them.
    pub fn take_from(&self, task: &mut Task) {
        let Some(arn) = task.arn.clone() else {
            return;
        };
        if let Some(c) = task.role_credentials.take() {
            self.put(&arn, TASK_APPLICATION, c);
        }
        if let Some(c) = task.execution_role_credentials.take() {
            self.put(&arn, TASK_EXECUTION, c);
        }
    }

    /// The credentials with id `id`.
    pub fn get(&self, id: &str) -> Option<Held> {
        lock(&self.by_id).get(id).cloned()
    }

    /// The credentials of `task_arn`'s role of `role_type`.
    pub fn of_task(&self, task_arn: &str, role_type: &str) -> Option<IAMRoleCredentials> {
        lock(&self.by_id)
            .values()
            .find(|h| h.task_arn == task_arn && h.role_type == role_type)
            .map(|h| h.credentials.clone())
    }

    /// Forgets a task's credentials (it was cleaned up).
    pub fn forget_task(&self, task_arn: &str) {
        lock(&self.by_id).retain(|_, h| h.task_arn != task_arn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(id: &str, key: &str) -> IAMRoleCredentials {
        IAMRoleCredentials {
            credentials_id: Some(id.into()),
            access_key_id: Some(key.into()),
            ..IAMRoleCredentials::default()
        }
    }

    #[test]
    fn payload_credentials_are_taken_out_of_the_task_and_renewed_by_id() {
        let store = CredentialStore::default();
        let mut task = Task {
            arn: Some("arn:task/1".into()),
            role_credentials: Some(credentials("c1", "ASIA1")),
            execution_role_credentials: Some(credentials("c2", "ASIA2")),
            ..Task::default()
        };
        store.take_from(&mut task);
        assert!(task.role_credentials.is_none() && task.execution_role_credentials.is_none());
        assert_eq!(store.get("c1").unwrap().task_arn, "arn:task/1");
        assert_eq!(
            store
                .of_task("arn:task/1", TASK_EXECUTION)
                .unwrap()
                .access_key_id
                .as_deref(),
            Some("ASIA2")
        );
        assert!(store.put("arn:task/1", TASK_APPLICATION, credentials("c1", "ASIA3")));
        assert_eq!(
            store
                .get("c1")
                .unwrap()
                .credentials
                .access_key_id
                .as_deref(),
            Some("ASIA3")
        );
        assert!(!store.put(
            "arn:task/1",
            TASK_APPLICATION,
            IAMRoleCredentials::default()
        ));
        store.forget_task("arn:task/1");
        assert!(store.get("c1").is_none() && store.get("c2").is_none());
    }
}
