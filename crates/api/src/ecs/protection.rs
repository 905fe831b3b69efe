//! Task scale-in protection: GetTaskProtection and UpdateTaskProtection.

use berth_ecs::{ProtectedTask, ProtectionResult};
use berth_model::ecs::EcsArn;
use serde::{Deserialize, Serialize};

use super::{Failure, ecs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskProtectionRequest {
    pub cluster: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskProtectionRequest {
    pub cluster: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    pub protection_enabled: bool,
    pub expires_in_minutes: Option<i64>,
}

/// ECS's ProtectedTask.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedTaskWire {
    pub task_arn: String,
    pub protection_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProtectionResponse {
    pub protected_tasks: Vec<ProtectedTaskWire>,
    pub failures: Vec<Failure>,
}

pub(super) async fn get_task_protection(
    ctx: &AwsContext,
    req: GetTaskProtectionRequest,
) -> Result<TaskProtectionResponse, AwsError> {
    let answers = ctx
        .app
        .ecs
        .get_task_protection(&ctx.scope, req.cluster.as_deref(), &req.tasks)
        .map_err(ecs_error)?;
    Ok(response(ctx, req.cluster.as_deref(), answers))
}

pub(super) async fn update_task_protection(
    ctx: &AwsContext,
    req: UpdateTaskProtectionRequest,
) -> Result<TaskProtectionResponse, AwsError> {
    let answers = ctx
        .app
        .ecs
        .update_task_protection(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.tasks,
            req.protection_enabled,
            req.expires_in_minutes,
        )
        .map_err(ecs_error)?;
    Ok(response(ctx, req.cluster.as_deref(), answers))
}

fn response(
    ctx: &AwsContext,
    cluster: Option<&str>,
    answers: Vec<(String, ProtectionResult)>,
) -> TaskProtectionResponse {
    let cluster = ctx
        .app
        .ecs
        .cluster(&ctx.scope, cluster)
        .map(|c| c.name)
        .unwrap_or_default();
    let mut protected_tasks = Vec::new();
    let mut failures = Vec::new();
    for (reference, answer) in answers {
        match answer {
            Ok(ProtectedTask {
                task_arn,
                protection_enabled,
                expiration_date,
            }) => protected_tasks.push(ProtectedTaskWire {
                task_arn,
                protection_enabled,
                expiration_date,
            }),
            Err(reason) => failures.push(Failure::named(
                ctx,
                reference,
                |scope, id| EcsArn::task(scope, &cluster, id),
                reason,
            )),
        }
    }
    TaskProtectionResponse {
        protected_tasks,
        failures,
    }
}
