//! `iam:PassRole`: a caller that names a role for a service to use must be allowed to pass
//! it (IAM's confused-deputy guard), on the role's ARN, with `iam:PassedToService` naming
//! the service that will assume it. ECS asks for it where AWS's ECS does:
//!
//! - RegisterTaskDefinition: the `taskRoleArn` and `executionRoleArn` it names;
//! - RunTask / StartTask: the roles of the task definition and of `overrides`, an
//!   override replacing the definition's role of the same kind;
//! - CreateService / UpdateService: the service's `role` (the load balancer role).
//!
//! Task roles and execution roles are passed to `ecs-tasks.amazonaws.com`, a service's
//! role to `ecs.amazonaws.com`.

use serde_json::Value;

/// The service a task's roles are passed to.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";
/// The service a service's load-balancer role is passed to.
pub const ECS: &str = "ecs.amazonaws.com";

/// The ECS operations that can name roles for ECS to use.
pub const PASSES_ROLES: &[&str] = &[
    "RegisterTaskDefinition",
    "RunTask",
    "StartTask",
    "CreateService",
    "UpdateService",
];

/// The roles a task definition names (task role, execution role), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRoles {
    pub task_role: Option<String>,
    pub execution_role: Option<String>,
}

/// The roles an ECS `operation` with JSON `body` passes, as (role ARN, service) pairs.
/// `task_definition_roles` finds the roles of the task definition RunTask and StartTask
/// name (`None`: no such task definition — the handler answers that).
pub fn passed_roles(
    operation: &str,
    body: &[u8],
    account: &str,
    task_definition_roles: impl FnOnce(&str) -> Option<TaskRoles>,
) -> Vec<(String, &'static str)> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let roles = match operation {
        "RegisterTaskDefinition" => TaskRoles {
            task_role: text(&body, "taskRoleArn"),
            execution_role: text(&body, "executionRoleArn"),
        },
        "RunTask" | "StartTask" => {
            let overrides = body.get("overrides").cloned().unwrap_or(Value::Null);
            let given = TaskRoles {
                task_role: text(&overrides, "taskRoleArn"),
                execution_role: text(&overrides, "executionRoleArn"),
            };
            let defined = text(&body, "taskDefinition")
                .and_then(|td| task_definition_roles(&td))
                .unwrap_or_default();
            TaskRoles {
                task_role: given.task_role.or(defined.task_role),
                execution_role: given.execution_role.or(defined.execution_role),
            }
        }
        "CreateService" | "UpdateService" => {
            return text(&body, "role")
                .map(|r| vec![(role_arn(&r, account), ECS)])
                .unwrap_or_default();
        }
        _ => return Vec::new(),
    };
    let mut passed: Vec<(String, &'static str)> = Vec::new();
    for role in [roles.task_role, roles.execution_role]
        .into_iter()
        .flatten()
    {
        let arn = role_arn(&role, account);
        if !passed.iter().any(|(a, _)| *a == arn) {
            passed.push((arn, ECS_TASKS));
        }
    }
    passed
}

/// A role given by name or ARN, as an ARN (a name is a role of the caller's account).
fn role_arn(role: &str, account: &str) -> String {
    if role.starts_with("arn:") {
        role.to_string()
    } else {
        format!("arn:aws:iam::{account}:role/{role}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111122223333";

    #[test]
    fn register_task_definition_passes_both_roles_to_ecs_tasks() {
        let body = br#"{"family":"f","taskRoleArn":"app","executionRoleArn":"arn:aws:iam::111122223333:role/exec"}"#;
        let passed = passed_roles("RegisterTaskDefinition", body, A, |_| unreachable!());
        assert_eq!(
            passed,
            vec![
                ("arn:aws:iam::111122223333:role/app".to_string(), ECS_TASKS),
                ("arn:aws:iam::111122223333:role/exec".to_string(), ECS_TASKS),
            ]
        );
        assert!(
            passed_roles("RegisterTaskDefinition", br#"{"family":"f"}"#, A, |_| None).is_empty()
        );
    }

    #[test]
    fn run_task_passes_the_definitions_roles_unless_overridden() {
        let defined = |td: &str| {
            assert_eq!(td, "web:3");
            Some(TaskRoles {
                task_role: Some("arn:aws:iam::111122223333:role/app".into()),
                execution_role: Some("arn:aws:iam::111122223333:role/exec".into()),
            })
        };
        let body = br#"{"taskDefinition":"web:3","overrides":{"taskRoleArn":"other"}}"#;
        assert_eq!(
            passed_roles("RunTask", body, A, defined),
            vec![
                (
                    "arn:aws:iam::111122223333:role/other".to_string(),
                    ECS_TASKS
                ),
                ("arn:aws:iam::111122223333:role/exec".to_string(), ECS_TASKS),
            ]
        );
        assert!(passed_roles("RunTask", br#"{"taskDefinition":"x"}"#, A, |_| None).is_empty());
    }

    #[test]
    fn a_services_role_is_passed_to_ecs() {
        let body = br#"{"serviceName":"s","role":"ecsServiceRole"}"#;
        assert_eq!(
            passed_roles("CreateService", body, A, |_| None),
            vec![(
                "arn:aws:iam::111122223333:role/ecsServiceRole".to_string(),
                ECS
            )]
        );
        assert!(passed_roles("DescribeServices", body, A, |_| None).is_empty());
    }
}
