//! Task definitions: Register/Describe/List/Deregister/Delete, ListTaskDefinitionFamilies.

use berth_ecs::EcsError;
use berth_model::Scope;
use berth_model::ecs::EcsTag;
use berth_model::ecs::{EcsArn, EcsResource};
use berth_model::ecs::{TaskDefinitionFamilyStatus, TaskDefinitionStatus};
use berth_model::task_definition::{RegisterTaskDefinitionRequest, TaskDefinition};
use serde::{Deserialize, Serialize};

use super::{Failure, Order, ecs_error, page_of, page_of_names};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    pub task_definition: TaskDefinition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    pub task_definition: String,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    pub family_prefix: Option<String>,
    pub status: Option<String>,
    pub sort: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    pub task_definition_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesRequest {
    pub family_prefix: Option<String>,
    pub status: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    pub families: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionRequest {
    pub task_definition: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsRequest {
    pub task_definitions: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    pub task_definitions: Vec<TaskDefinition>,
    pub failures: Vec<Failure>,
}

pub(super) async fn register_task_definition(
    ctx: &AwsContext,
    req: RegisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .register_task_definition(&ctx.scope, &req)
        .map_err(ecs_error)?;
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: Some(stored.tags),
    })
}

pub(super) async fn describe_task_definition(
    ctx: &AwsContext,
    req: DescribeTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .task_definition(&ctx.scope, &req.task_definition)
        .map_err(ecs_error)?;
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: with_tags.then_some(stored.tags),
    })
}

/// A `status` request member, ACTIVE when absent; otherwise one of `T::ALL` or ECS's
/// InvalidParameterException listing them.
pub(super) fn status_member<T>(status: Option<&str>, all: &[T], active: T) -> Result<T, AwsError>
where
    T: Copy + std::str::FromStr + std::fmt::Display,
{
    let Some(status) = status else {
        return Ok(active);
    };
    status.parse().map_err(|_| {
        let valid: Vec<String> = all.iter().map(|s| format!("\"{s}\"")).collect();
        AwsError::invalid_parameter(format!(
            "Invalid status '{status}'. Valid values: [{}]",
            valid.join(", ")
        ))
    })
}

pub(super) async fn list_task_definitions(
    ctx: &AwsContext,
    req: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, AwsError> {
    let status = status_member(
        req.status.as_deref(),
        TaskDefinitionStatus::ALL,
        TaskDefinitionStatus::Active,
    )?;
    let descending = match req.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid sort '{other}'. Valid values: [ASC, DESC]"
            )));
        }
    };
    let arns = ctx
        .app
        .ecs
        .list_task_definitions(&ctx.scope, req.family_prefix.as_deref(), status, descending)
        .map_err(ecs_error)?;
    let (task_definition_arns, next_token) = page_of(
        arns,
        |arn| task_definition_sort_key(&ctx.scope, arn),
        if descending {
            Order::Descending
        } else {
            Order::Ascending
        },
        req.next_token.as_deref(),
        req.max_results,
        100,
    )?;
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns,
        next_token,
    })
}

/// A revision's place in ListTaskDefinitions' order: by family, then by revision number.
fn task_definition_sort_key(scope: &Scope, arn: &str) -> String {
    match EcsArn::parse(scope, arn) {
        Some(EcsResource::TaskDefinition {
            family,
            revision: Some(revision),
        }) => format!("{family}/{:010}", revision.parse::<u32>().unwrap_or(0)),
        _ => arn.to_string(),
    }
}

pub(super) async fn list_task_definition_families(
    ctx: &AwsContext,
    req: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, AwsError> {
    let status = status_member(
        req.status.as_deref(),
        TaskDefinitionFamilyStatus::ALL,
        TaskDefinitionFamilyStatus::Active,
    )?;
    let all = ctx
        .app
        .ecs
        .list_task_definition_families(&ctx.scope, req.family_prefix.as_deref(), status)
        .map_err(ecs_error)?;
    let (families, next_token) =
        page_of_names(all, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListTaskDefinitionFamiliesResponse {
        families,
        next_token,
    })
}

pub(super) async fn deregister_task_definition(
    ctx: &AwsContext,
    req: DeregisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .deregister_task_definition(&ctx.scope, &req.task_definition)
        .map_err(ecs_error)?;
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: None,
    })
}

pub(super) async fn delete_task_definitions(
    ctx: &AwsContext,
    req: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, AwsError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "taskDefinitions must list 1 to 10 task definitions.",
        ));
    }
    let mut task_definitions = Vec::new();
    let mut failures = Vec::new();
    for reference in req.task_definitions {
        match ctx.app.ecs.delete_task_definition(&ctx.scope, &reference) {
            Ok(stored) => task_definitions.push(stored.task_definition),
            Err(EcsError::Client(reason)) => failures.push(Failure::named(
                ctx,
                reference,
                EcsArn::task_definition_named,
                reason,
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions,
        failures,
    })
}
