//! What a task's execution role fetches before its containers are made: the `secrets` of
//! its containers — from Secrets Manager (`asm`: a secret ARN, optionally followed by
//! `:json-key:version-stage:version-id`) or SSM Parameter Store (`ssm`: a parameter name or
//! ARN, decrypted) — set as environment variables, and a private registry's login kept in
//! Secrets Manager (`repositoryCredentials`). The values live in the supervisor's memory
//! only: never in the state file, a label or a log line. A secret that cannot be read
//! stops the task with ECS's `ResourceInitializationError`.

use std::collections::BTreeMap;

use berth_agent_protocol::acs::Secret;
use berth_runtime::RegistryAuth;
use serde_json::{Value, json};

use super::Inner;
use super::errors::{ExecutionError, TaskError};
use super::supervisor::Supervisor;
use crate::config::Credentials;

const SECRETS_MANAGER_TARGET: &str = "secretsmanager.GetSecretValue";
const SSM_TARGET: &str = "AmazonSSM.GetParameters";
/// GetParameters takes at most this many names.
const SSM_BATCH: usize = 10;

/// A Secrets Manager reference: the secret (ARN) and what to take of it.
#[derive(Debug, PartialEq, Eq)]
struct AsmReference<'a> {
    secret: String,
    json_key: Option<&'a str>,
    version_stage: Option<&'a str>,
    version_id: Option<&'a str>,
}

/// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key[:version-stage[:version-id]]]`.
fn asm_reference(value_from: &str) -> AsmReference<'_> {
    let parts: Vec<&str> = value_from.split(':').collect();
    if parts.len() <= 7 {
        return AsmReference {
            secret: value_from.to_owned(),
            json_key: None,
            version_stage: None,
            version_id: None,
        };
    }
    let some = |i: usize| parts.get(i).copied().filter(|p| !p.is_empty());
    AsmReference {
        secret: parts[..7].join(":"),
        json_key: some(7),
        version_stage: some(8),
        version_id: some(9),
    }
}

/// An SSM `valueFrom` as GetParameters names it: a name, or the name in a parameter ARN
/// (`…:parameter/a/b` is `/a/b`, `…:parameter/name` is `name`).
fn ssm_name(value_from: &str) -> String {
    match value_from.split_once(":parameter/") {
        Some((arn, name)) if arn.starts_with("arn:") => {
            if name.contains('/') {
                format!("/{name}")
            } else {
                name.to_owned()
            }
        }
        _ => value_from.to_owned(),
    }
}

impl Inner {
    /// The execution role's credentials of `task_arn`, as the client signs with them.
    pub(super) fn execution_credentials(&self, task_arn: &str) -> Option<Credentials> {
        self.credentials
            .of_task(task_arn, crate::credentials::TASK_EXECUTION)
            .map(|c| Credentials {
                access_key_id: c.access_key_id.unwrap_or_default(),
                secret_access_key: c.secret_access_key.unwrap_or_default(),
                session_token: c.session_token,
            })
    }

    /// One Secrets Manager value (the `SecretString`, or a key of it as JSON).
    async fn asm_value(
        &self,
        credentials: &Credentials,
        region: &str,
        value_from: &str,
    ) -> Result<String, ExecutionError> {
        let reference = asm_reference(value_from);
        let mut body = json!({"SecretId": reference.secret});
        if let Some(stage) = reference.version_stage {
            body["VersionStage"] = json!(stage);
        }
        if let Some(id) = reference.version_id {
            body["VersionId"] = json!(id);
        }
        let answer = self
            .control
            .json_call_as(
                credentials,
                "secretsmanager",
                region,
                SECRETS_MANAGER_TARGET,
                body,
            )
            .await
            .map_err(|e| ExecutionError::Asm {
                secret: reference.secret.clone(),
                cause: e.to_string(),
            })?;
        let text = answer["SecretString"].as_str().unwrap_or_default();
        let Some(key) = reference.json_key else {
            return Ok(text.to_owned());
        };
        let missing = || ExecutionError::AsmJsonKey {
            secret: reference.secret.clone(),
            key: key.to_owned(),
        };
        let document: Value = serde_json::from_str(text).map_err(|_| missing())?;
        match &document[key] {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Err(missing()),
            other => Ok(other.to_string()),
        }
    }

    /// SSM parameters' values by the `valueFrom` naming them.
    async fn ssm_values(
        &self,
        credentials: &Credentials,
        region: &str,
        wanted: &[String],
    ) -> Result<BTreeMap<String, String>, ExecutionError> {
        let mut values = BTreeMap::new();
        let names: Vec<(String, &String)> = wanted.iter().map(|v| (ssm_name(v), v)).collect();
        for batch in names.chunks(SSM_BATCH) {
            let body = json!({
                "Names": batch.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "WithDecryption": true,
            });
            let answer = self
                .control
                .json_call_as(credentials, "ssm", region, SSM_TARGET, body)
                .await
                .map_err(|e| ExecutionError::Ssm(e.to_string()))?;
            let invalid: Vec<&str> = answer["InvalidParameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !invalid.is_empty() {
                return Err(ExecutionError::SsmInvalid(invalid.join(", ")));
            }
            for parameter in answer["Parameters"].as_array().into_iter().flatten() {
                let (Some(name), Some(value)) =
                    (parameter["Name"].as_str(), parameter["Value"].as_str())
                else {
                    continue;
                };
                for (asked, value_from) in batch {
                    if asked == name || parameter["ARN"].as_str() == Some(value_from.as_str()) {
                        values.insert((*value_from).clone(), value.to_owned());
                    }
                }
            }
        }
        Ok(values)
    }

    /// A private registry's login from Secrets Manager (`{"username", "password"}`).
    pub(super) async fn asm_registry_auth(
        &self,
        credentials: &Credentials,
        region: &str,
        secret: &str,
        server_address: &str,
    ) -> Result<RegistryAuth, ExecutionError> {
        let text = self.asm_value(credentials, region, secret).await?;
        let document: Value = serde_json::from_str(&text)
            .map_err(|_| ExecutionError::RegistryLogin(secret.to_owned()))?;
        match (document["username"].as_str(), document["password"].as_str()) {
            (Some(username), Some(password)) => Ok(RegistryAuth {
                username: username.to_owned(),
                password: password.to_owned(),
                server_address: server_address.to_owned(),
            }),
            _ => Err(ExecutionError::RegistryLogin(secret.to_owned())),
        }
    }
}

/// The region a secret is read in: its own, else the instance's.
fn region_of<'a>(secret: &'a Secret, instance_region: &'a str) -> &'a str {
    secret
        .region
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(instance_region)
}

impl Supervisor {
    /// Reads the secrets of the containers still to be made, with the task's execution
    /// role, into `secret_env`.
    pub(super) async fn resolve_secrets(&mut self) -> Result<(), TaskError> {
        let wanted: Vec<(String, Secret)> = self
            .members
            .iter()
            .filter(|(_, m)| m.id.is_none())
            .flat_map(|(name, m)| {
                m.def
                    .secrets
                    .iter()
                    .flatten()
                    .filter(|s| {
                        s.target.as_deref().is_none_or(|t| t == "CONTAINER")
                            && s.kind
                                .as_deref()
                                .is_none_or(|k| k == "ENVIRONMENT_VARIABLE")
                    })
                    .map(move |s| (name.clone(), s.clone()))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let credentials = self
            .engine
            .execution_credentials(&self.arn)
            .ok_or(ExecutionError::NoCredentials)?;
        let instance_region = self
            .engine
            .config
            .instance_arn
            .split(':')
            .nth(3)
            .unwrap_or_default()
            .to_owned();
        // SSM parameters in one call per region (and ten names), as the ECS agent reads them.
        let mut ssm: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, secret) in &wanted {
            if secret.provider.as_deref() != Some("asm") {
                let list = ssm
                    .entry(region_of(secret, &instance_region).to_owned())
                    .or_default();
                let value_from = secret.value_from.clone().unwrap_or_default();
                if !list.contains(&value_from) {
                    list.push(value_from);
                }
            }
        }
        let mut parameters = BTreeMap::new();
        for (region, names) in &ssm {
            parameters.extend(self.engine.ssm_values(&credentials, region, names).await?);
        }
        let mut env: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (container, secret) in wanted {
            let value_from = secret.value_from.clone().unwrap_or_default();
            let value = if secret.provider.as_deref() == Some("asm") {
                let region = region_of(&secret, &instance_region).to_owned();
                self.engine
                    .asm_value(&credentials, &region, &value_from)
                    .await?
            } else {
                parameters
                    .get(&value_from)
                    .cloned()
                    .ok_or_else(|| ExecutionError::SsmInvalid(value_from.clone()))?
            };
            env.entry(container)
                .or_default()
                .push((secret.name.clone().unwrap_or_default(), value));
        }
        self.secret_env = env;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_references_name_a_key_stage_and_version() {
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
        assert_eq!(asm_reference(arn).secret, arn);
        assert_eq!(asm_reference(arn).json_key, None);
        let full = format!("{arn}:password:AWSPREVIOUS:");
        let r = asm_reference(&full);
        assert_eq!(
            (r.secret.as_str(), r.json_key, r.version_stage, r.version_id),
            (arn, Some("password"), Some("AWSPREVIOUS"), None)
        );
        let by_version = format!("{arn}:::0123");
        let r = asm_reference(&by_version);
        assert_eq!(
            (r.json_key, r.version_stage, r.version_id),
            (None, None, Some("0123"))
        );
    }

    #[test]
    fn ssm_parameters_are_named_as_get_parameters_names_them() {
        assert_eq!(ssm_name("db-password"), "db-password");
        assert_eq!(ssm_name("/prod/db/password"), "/prod/db/password");
        assert_eq!(
            ssm_name("arn:aws:ssm:us-east-1:000000000000:parameter/prod/db/password"),
            "/prod/db/password"
        );
        assert_eq!(
            ssm_name("arn:aws:ssm:us-east-1:000000000000:parameter/plain"),
            "plain"
        );
    }
}
