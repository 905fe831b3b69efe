//! Saved queries: PutQueryDefinition, DescribeQueryDefinitions, DeleteQueryDefinition.

use berth_logs::{PutQueryDefinition, QueryDefinition};
use serde::{Deserialize, Serialize};

use super::{limit, log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutQueryDefinitionRequest {
    pub name: String,
    pub query_string: String,
    pub query_definition_id: Option<String>,
    #[serde(default)]
    pub log_group_names: Vec<String>,
    pub query_language: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutQueryDefinitionResponse {
    pub query_definition_id: String,
}

pub(super) async fn put_query_definition(
    ctx: &AwsContext,
    req: PutQueryDefinitionRequest,
) -> Result<PutQueryDefinitionResponse, AwsError> {
    let query_definition_id = ctx
        .app
        .logs
        .put_query_definition(
            &log_scope(ctx),
            PutQueryDefinition {
                query_definition_id: req.query_definition_id,
                name: req.name,
                query_string: req.query_string,
                log_group_names: req.log_group_names,
                query_language: req.query_language,
            },
        )
        .map_err(logs_error)?;
    Ok(PutQueryDefinitionResponse {
        query_definition_id,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeQueryDefinitionsRequest {
    pub query_definition_name_prefix: Option<String>,
    pub query_language: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryDefinitionWire {
    pub query_language: String,
    pub query_definition_id: String,
    pub name: String,
    pub query_string: String,
    pub last_modified: i64,
    pub log_group_names: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeQueryDefinitionsResponse {
    pub query_definitions: Vec<QueryDefinitionWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn describe_query_definitions(
    ctx: &AwsContext,
    req: DescribeQueryDefinitionsRequest,
) -> Result<DescribeQueryDefinitionsResponse, AwsError> {
    let (definitions, next_token) = ctx
        .app
        .logs
        .describe_query_definitions(
            &log_scope(ctx),
            req.query_definition_name_prefix.as_deref(),
            req.query_language.as_deref(),
            req.next_token.as_deref(),
            limit("maxResults", req.max_results, 1000)?.unwrap_or(1000),
        )
        .map_err(logs_error)?;
    Ok(DescribeQueryDefinitionsResponse {
        query_definitions: definitions
            .into_iter()
            .map(|d: QueryDefinition| QueryDefinitionWire {
                query_language: d.query_language,
                query_definition_id: d.query_definition_id,
                name: d.name,
                query_string: d.query_string,
                last_modified: d.last_modified,
                log_group_names: d.log_group_names,
            })
            .collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQueryDefinitionRequest {
    pub query_definition_id: String,
}

#[derive(Debug, Serialize)]
pub struct DeleteQueryDefinitionResponse {
    pub success: bool,
}

pub(super) async fn delete_query_definition(
    ctx: &AwsContext,
    req: DeleteQueryDefinitionRequest,
) -> Result<DeleteQueryDefinitionResponse, AwsError> {
    ctx.app
        .logs
        .delete_query_definition(&log_scope(ctx), &req.query_definition_id)
        .map_err(logs_error)?;
    Ok(DeleteQueryDefinitionResponse { success: true })
}
