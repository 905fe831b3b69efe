//! Task credentials on ACS: a task's role (`taskRoleArn`, `TaskApplication`) and execution
//! role (`executionRoleArn`, `TaskExecution`) are assumed on behalf of
//! `ecs-tasks.amazonaws.com` (the role's trust policy must allow that service) in a session
//! named after the task's id, and the credentials travel to the instance's agent with the
//! task (`roleCredentials`, `executionRoleCredentials` in the PayloadMessage), then again in
//! an `IAMRoleCredentialsMessage` once half their lifetime has passed, so the agent always
//! holds credentials well before the ones it serves expire. A credentials id stays the
//! task's for its whole life (`TokenIssuer::credentials_id`): the agent tells containers
//! their path once. A session that starts (a reconnecting agent, a restarted server) sends
//! every live task again, with fresh credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::acs::{IAMRoleCredentials, IAMRoleCredentialsMessage, ServerMessage};
use berth_ecs::Task;
use berth_model::Scope;
use berth_model::ecs::{EcsArn, TaskOverride};
use berth_model::task_definition::TaskDefinition;

use crate::AppState;

/// The service that assumes tasks' roles.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";
/// `roleType` of a task's own role.
pub const TASK_APPLICATION: &str = "TaskApplication";
/// `roleType` of a task's execution role.
pub const TASK_EXECUTION: &str = "TaskExecution";

/// The roles a task runs with, as (role type, role ARN): its overrides' over its task
/// definition's; a role given by name is a role of the task's account.
pub fn task_roles(
    scope: &Scope,
    overrides: Option<&TaskOverride>,
    td: &TaskDefinition,
) -> Vec<(&'static str, String)> {
    let given = |o: Option<&String>, d: &Option<String>| {
        o.or(d.as_ref())
            .filter(|r| !r.is_empty())
            .map(|r| role_arn(scope, r))
    };
    let mut roles = Vec::new();
    if let Some(role) = given(
        overrides.and_then(|o| o.task_role_arn.as_ref()),
        &td.task_role_arn,
    ) {
        roles.push((TASK_APPLICATION, role));
    }
    if let Some(role) = given(
        overrides.and_then(|o| o.execution_role_arn.as_ref()),
        &td.execution_role_arn,
    ) {
        roles.push((TASK_EXECUTION, role));
    }
    roles
}

/// A role named by ARN or by name (a role of `scope`'s account), as an ARN.
pub fn role_arn(scope: &Scope, role: &str) -> String {
    if role.starts_with("arn:") {
        role.to_string()
    } else {
        format!("arn:aws:iam::{}:role/{role}", scope.account)
    }
}

/// ECS's refusal of a role it cannot assume for a task.
pub fn unassumable_role_message(role_arn: &str) -> String {
    format!(
        "ECS was unable to assume the role '{role_arn}' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
    )
}

/// RunTask's, StartTask's, CreateService's and UpdateService's check of the task role a
/// task would run with: ECS must be able to assume it (the role exists and its trust policy
/// lets `ecs-tasks.amazonaws.com` assume it). `Err`: ECS's message. A store read.
pub fn check_task_role(
    app: &AppState,
    scope: &Scope,
    overrides: Option<&TaskOverride>,
    td: &TaskDefinition,
) -> Result<(), String> {
    for (role_type, role) in task_roles(scope, overrides, td) {
        if role_type != TASK_APPLICATION {
            continue;
        }
        match app.iam.role_trusting_service(&role, ECS_TASKS) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(unassumable_role_message(&role)),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Credentials one ACS session handed out.
struct Issued {
    task_cluster_arn: String,
    role_arn: String,
    task_id: String,
    issued_at: f64,
    expires_at: f64,
}

/// The credentials of the tasks an ACS session told its agent about.
#[derive(Default)]
pub struct SessionCredentials {
    /// By (task ARN, role type).
    issued: HashMap<(String, &'static str), Issued>,
}

impl SessionCredentials {
    /// Fills in `out`'s credentials for a task about to be sent as RUNNING, issuing those
    /// this session has not handed out yet. Runs on the blocking pool (store writes).
    pub fn for_payload(
        &mut self,
        app: &Arc<AppState>,
        scope: &Scope,
        task: &Task,
        td: &TaskDefinition,
        out: &mut berth_agent_protocol::acs::Task,
    ) {
        let task_arn = task.arn(scope);
        for (role_type, role) in task_roles(scope, task.overrides.as_ref(), td) {
            let Some((credentials, issued)) = issue(app, &task_arn, &task.id, role_type, &role)
            else {
                continue;
            };
            let issued = Issued {
                task_cluster_arn: EcsArn::cluster(scope, &task.cluster).into_string(),
                ..issued
            };
            self.issued.insert((task_arn.clone(), role_type), issued);
            match role_type {
                TASK_APPLICATION => out.role_credentials = Some(credentials),
                _ => out.execution_role_credentials = Some(credentials),
            }
        }
    }

    /// Forgets a task that stopped.
    pub fn forget(&mut self, task_arn: &str) {
        self.issued.retain(|(arn, _), _| arn != task_arn);
    }

    /// Whether any credentials are due for renewal at `now` (seconds since the epoch).
    pub fn any_due(&self, now: f64) -> bool {
        self.issued.values().any(|i| due(i, now))
    }

    /// `IAMRoleCredentialsMessage` frames renewing every credentials past half their life.
    /// Runs on the blocking pool (store writes).
    pub fn renew(&mut self, app: &Arc<AppState>, now: f64) -> Vec<String> {
        let mut frames = Vec::new();
        for ((task_arn, role_type), issued) in self.issued.iter_mut() {
            if !due(issued, now) {
                continue;
            }
            let Some((credentials, fresh)) =
                issue(app, task_arn, &issued.task_id, role_type, &issued.role_arn)
            else {
                // The role went away or stopped trusting ECS: the agent keeps what it has
                // until it expires; try again at the next check.
                continue;
            };
            issued.issued_at = fresh.issued_at;
            issued.expires_at = fresh.expires_at;
            let message = IAMRoleCredentialsMessage {
                task_arn: Some(task_arn.clone()),
                task_cluster_arn: Some(issued.task_cluster_arn.clone()),
                role_credentials: Some(credentials),
                role_type: Some(role_type.to_string()),
                message_id: Some(uuid::Uuid::new_v4().to_string()),
            };
            frames.push(ServerMessage::IamRoleCredentials(message).encode());
        }
        frames
    }
}

/// Renewed once half the lifetime has passed.
fn due(issued: &Issued, now: f64) -> bool {
    now >= issued.issued_at + (issued.expires_at - issued.issued_at) / 2.0
}

/// How often a session looks for credentials to renew, for credentials lasting `lifetime`.
pub fn renewal_check_interval(lifetime: Duration) -> Duration {
    (lifetime / 8).clamp(Duration::from_millis(500), Duration::from_secs(60))
}

/// A fresh session of `role` for the task, or `None` (logged) when ECS cannot assume it.
fn issue(
    app: &Arc<AppState>,
    task_arn: &str,
    task_id: &str,
    role_type: &'static str,
    role: &str,
) -> Option<(IAMRoleCredentials, Issued)> {
    let found = match app.iam.role_trusting_service(role, ECS_TASKS) {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::warn!(task = task_arn, role, "{}", unassumable_role_message(role));
            return None;
        }
        Err(e) => {
            tracing::warn!(task = task_arn, role, error = %e, "cannot read a task's role");
            return None;
        }
    };
    let seconds = app.agents.task_credentials.as_secs().max(1) as i64;
    let session = match app.iam.service_session(&found, task_id, seconds) {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(task = task_arn, role, error = %e, "cannot open a task role session");
            return None;
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let expiration = time::OffsetDateTime::from_unix_timestamp(session.expiration as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    let credentials = IAMRoleCredentials {
        credentials_id: Some(app.tokens.credentials_id(task_arn, role_type)),
        role_arn: Some(found.arn.clone()),
        access_key_id: Some(session.access_key_id),
        secret_access_key: Some(session.secret_access_key),
        session_token: Some(session.session_token),
        expiration,
        credential_scope: None,
    };
    let issued = Issued {
        task_cluster_arn: String::new(),
        role_arn: found.arn,
        task_id: task_id.to_string(),
        issued_at: now,
        expires_at: session.expiration,
    };
    Some((credentials, issued))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_definitions_roles_and_names_become_arns() {
        let scope = Scope::default_installation();
        let td = TaskDefinition {
            task_role_arn: Some("app".into()),
            execution_role_arn: Some("arn:aws:iam::000000000000:role/exec".into()),
            ..TaskDefinition::default()
        };
        let account = scope.account.to_string();
        assert_eq!(
            task_roles(&scope, None, &td),
            vec![
                (TASK_APPLICATION, format!("arn:aws:iam::{account}:role/app")),
                (
                    TASK_EXECUTION,
                    "arn:aws:iam::000000000000:role/exec".to_string()
                ),
            ]
        );
        let overrides = TaskOverride {
            task_role_arn: Some("other".into()),
            ..TaskOverride::default()
        };
        assert_eq!(
            task_roles(&scope, Some(&overrides), &td)[0],
            (
                TASK_APPLICATION,
                format!("arn:aws:iam::{account}:role/other")
            )
        );
        assert!(task_roles(&scope, None, &TaskDefinition::default()).is_empty());
    }

    #[test]
    fn credentials_are_renewed_past_half_their_life() {
        let issued = Issued {
            task_cluster_arn: String::new(),
            role_arn: String::new(),
            task_id: String::new(),
            issued_at: 1000.0,
            expires_at: 1040.0,
        };
        assert!(!due(&issued, 1019.0));
        assert!(due(&issued, 1020.0));
        assert_eq!(
            renewal_check_interval(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renewal_check_interval(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
    }
}
