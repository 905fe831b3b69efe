//! Saved Logs Insights queries: PutQueryDefinition, DescribeQueryDefinitions,
//! DeleteQueryDefinition. Berth does not run Insights queries yet; definitions are kept
//! for the clients that save and list them. Records live under
//! `logs/{account}/{region}/query-definition/{id}`.

use berth_store::{Change, Update};
use serde::{Deserialize, Serialize};

use crate::{LogScope, Logs, LogsError, Result, decode, now_ms, scan, tokens};

/// A saved query as stored (and as QueryDefinition shows it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueryDefinition {
    pub query_definition_id: String,
    pub name: String,
    pub query_string: String,
    pub last_modified: i64,
    #[serde(default)]
    pub log_group_names: Vec<String>,
    #[serde(default = "cwli")]
    pub query_language: String,
}

fn cwli() -> String {
    "CWLI".into()
}

/// QueryLanguage, as botocore's model lists it.
pub const QUERY_LANGUAGES: &[&str] = &["CWLI", "SQL", "PPL"];

/// PutQueryDefinition's question.
#[derive(Debug, Clone, Default)]
pub struct PutQueryDefinition {
    pub query_definition_id: Option<String>,
    pub name: String,
    pub query_string: String,
    pub log_group_names: Vec<String>,
    pub query_language: Option<String>,
}

fn invalid(message: impl Into<String>) -> LogsError {
    LogsError::InvalidParameter(message.into())
}

fn length(value: &str, field: &str, max: usize) -> Result<()> {
    let rule = if value.is_empty() {
        "greater than or equal to 1".to_string()
    } else if value.chars().count() > max {
        format!("less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(invalid(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have length {rule}"
    )))
}

fn definition_missing() -> LogsError {
    // No published AWS text for an unknown queryDefinitionId; Berth's wording.
    LogsError::ResourceNotFound("The specified query definition does not exist.".into())
}

impl LogScope {
    fn query_definitions_prefix(&self) -> String {
        format!("{}query-definition/", self.prefix())
    }
}

impl Logs {
    /// PutQueryDefinition: a new definition (a new id), or the one `query_definition_id`
    /// names replaced. Returns its id.
    pub fn put_query_definition(&self, scope: &LogScope, q: PutQueryDefinition) -> Result<String> {
        length(&q.name, "name", 255)?;
        length(&q.query_string, "queryString", 10_000)?;
        let language = q.query_language.unwrap_or_else(cwli);
        if !QUERY_LANGUAGES.contains(&language.as_str()) {
            return Err(invalid(format!(
                "1 validation error detected: Value '{language}' at 'queryLanguage' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                QUERY_LANGUAGES.join(", ")
            )));
        }
        for group in &q.log_group_names {
            crate::check_group_name(group)?;
        }
        let (id, must_exist) = match q.query_definition_id {
            Some(id) => {
                length(&id, "queryDefinitionId", 256)?;
                (id, true)
            }
            None => (uuid::Uuid::new_v4().to_string(), false),
        };
        let key = format!("{}{id}", scope.query_definitions_prefix());
        berth_store::update(
            self.store.as_ref(),
            &key,
            |current: Option<QueryDefinition>| -> Result<Update<QueryDefinition>> {
                if must_exist && current.is_none() {
                    return Err(definition_missing());
                }
                Ok(Change::Put(QueryDefinition {
                    query_definition_id: id.clone(),
                    name: q.name.clone(),
                    query_string: q.query_string.clone(),
                    last_modified: now_ms(),
                    log_group_names: q.log_group_names.clone(),
                    query_language: language.clone(),
                })
                .into())
            },
        )?;
        Ok(id)
    }

    /// DescribeQueryDefinitions: in name order (then id), after the token's key.
    pub fn describe_query_definitions(
        &self,
        scope: &LogScope,
        name_prefix: Option<&str>,
        language: Option<&str>,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<QueryDefinition>, Option<String>)> {
        if let Some(prefix) = name_prefix {
            length(prefix, "queryDefinitionNamePrefix", 255)?;
        }
        let after = next_token
            .map(|t| berth_store::page_token::decode(t).ok_or_else(tokens::bad_token))
            .transpose()?;
        let mut all: Vec<QueryDefinition> = Vec::new();
        scan(
            self.store.as_ref(),
            &scope.query_definitions_prefix(),
            None,
            |kv| {
                let d: QueryDefinition = decode(kv)?;
                if name_prefix.is_none_or(|p| d.name.starts_with(p))
                    && language.is_none_or(|l| d.query_language == l)
                {
                    all.push(d);
                }
                Ok(true)
            },
        )?;
        let order_key = |d: &QueryDefinition| format!("{}\u{0}{}", d.name, d.query_definition_id);
        all.sort_by_key(order_key);
        let start = after
            .as_ref()
            .map_or(0, |a| all.partition_point(|d| order_key(d) <= *a));
        let more = all.len() > start + max_results;
        let page: Vec<QueryDefinition> = all.into_iter().skip(start).take(max_results).collect();
        let token = more
            .then(|| page.last())
            .flatten()
            .map(|d| berth_store::page_token::encode(&order_key(d)));
        Ok((page, token))
    }

    /// DeleteQueryDefinition.
    pub fn delete_query_definition(&self, scope: &LogScope, id: &str) -> Result<()> {
        length(id, "queryDefinitionId", 256)?;
        let key = format!("{}{id}", scope.query_definitions_prefix());
        berth_store::update(
            self.store.as_ref(),
            &key,
            |current: Option<QueryDefinition>| -> Result<Change<QueryDefinition>> {
                current.ok_or_else(definition_missing)?;
                Ok(Change::Delete)
            },
        )?;
        Ok(())
    }
}
