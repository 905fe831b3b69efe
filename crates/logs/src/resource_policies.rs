//! Resource policies: PutResourcePolicy, DescribeResourcePolicies, DeleteResourcePolicy.
//! Account-scoped policies are named (at most 10 per account and region, as CloudWatch
//! Logs' quota says); resource-scoped ones (`resourceArn`, a log group's ARN) are one per
//! group. Berth keeps and shows them; it does not evaluate them (it has no IAM yet).
//! Records: `logs/{account}/{region}/resource-policy/account/{name}` and
//! `.../resource-policy/resource/{group}`.

use berth_store::{Change, Update};
use serde::{Deserialize, Serialize};

use crate::{LogScope, Logs, LogsError, Result, decode, now_ms, scan, tokens};

/// "Up to 10 CloudWatch Logs resource policies per Region per account" (PutResourcePolicy's
/// API reference).
pub const MAX_ACCOUNT_POLICIES: usize = 10;
/// PolicyDocument: 1 to 51200 characters (botocore's model of the installed aws CLI).
pub const MAX_POLICY_DOCUMENT: usize = 51_200;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum PolicyScope {
    Account,
    Resource,
}

impl PolicyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyScope::Account => "ACCOUNT",
            PolicyScope::Resource => "RESOURCE",
        }
    }
}

/// A policy as stored (and as ResourcePolicy shows it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    pub policy_document: String,
    pub last_updated_time: i64,
    pub policy_scope: PolicyScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    pub revision_id: String,
}

fn invalid(message: impl Into<String>) -> LogsError {
    LogsError::InvalidParameter(message.into())
}

impl LogScope {
    fn account_policies_prefix(&self) -> String {
        format!("{}resource-policy/account/", self.prefix())
    }
    pub(crate) fn resource_policy_key(&self, group: &str) -> String {
        format!("{}resource-policy/resource/{group}", self.prefix())
    }
}

/// What a Put or Delete names: an account policy by name, or a group's by its ARN.
enum Target {
    Account(String),
    Resource { group: String, arn: String },
}

impl Logs {
    fn policy_target(
        &self,
        scope: &LogScope,
        name: Option<&str>,
        resource_arn: Option<&str>,
    ) -> Result<Target> {
        match (name, resource_arn) {
            (Some(name), None) if !name.is_empty() => Ok(Target::Account(name.to_string())),
            (None, Some(arn)) => {
                let group = scope.group_from_identifier(arn)?;
                if !arn.starts_with("arn:") {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{arn}' at 'resourceArn' failed to satisfy constraint: Member must be the ARN of a log group"
                    )));
                }
                self.log_group(scope, &group)?;
                Ok(Target::Resource {
                    group,
                    arn: arn.to_string(),
                })
            }
            // The API reference says one of the two is required; its error text is not
            // published.
            _ => Err(invalid(
                "Exactly one of policyName and resourceArn must be specified.",
            )),
        }
    }

    fn policy_key(&self, scope: &LogScope, target: &Target) -> String {
        match target {
            Target::Account(name) => format!("{}{name}", scope.account_policies_prefix()),
            Target::Resource { group, .. } => scope.resource_policy_key(group),
        }
    }

    /// PutResourcePolicy: creates or replaces; every write gets a new `revisionId`, and
    /// `expectedRevisionId` (resource policies) must be the current one.
    pub fn put_resource_policy(
        &self,
        scope: &LogScope,
        name: Option<&str>,
        document: &str,
        resource_arn: Option<&str>,
        expected_revision: Option<&str>,
    ) -> Result<ResourcePolicy> {
        if document.is_empty() || document.chars().count() > MAX_POLICY_DOCUMENT {
            return Err(invalid(format!(
                "1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must have length {}",
                if document.is_empty() {
                    "greater than or equal to 1".to_string()
                } else {
                    format!("less than or equal to {MAX_POLICY_DOCUMENT}")
                }
            )));
        }
        if serde_json::from_str::<serde_json::Value>(document).is_err() {
            // CloudWatch Logs refuses a document that is not JSON; the exact text is not
            // published.
            return Err(invalid("Policy document is not valid JSON."));
        }
        let target = self.policy_target(scope, name, resource_arn)?;
        let key = self.policy_key(scope, &target);
        let store = self.store.as_ref();
        let stored = berth_store::update(
            store,
            &key,
            |current: Option<ResourcePolicy>| -> Result<Update<ResourcePolicy>> {
                if let Some(expected) = expected_revision
                    && current.as_ref().map(|c| c.revision_id.as_str()) != Some(expected)
                {
                    return Err(LogsError::InvalidOperation(
                        "The expectedRevisionId does not match the policy's current revisionId."
                            .into(),
                    ));
                }
                if current.is_none() && matches!(target, Target::Account(_)) {
                    let mut count = 0;
                    scan(store, &scope.account_policies_prefix(), None, |_| {
                        count += 1;
                        Ok(true)
                    })?;
                    if count >= MAX_ACCOUNT_POLICIES {
                        // The quota is documented, the message is not: the text
                        // LimitExceededException is reported with for CloudWatch Logs'
                        // quotas by emulators (moto).
                        return Err(LogsError::LimitExceeded("Resource limit exceeded.".into()));
                    }
                }
                let (policy_name, policy_scope, resource_arn) = match &target {
                    Target::Account(name) => (Some(name.clone()), PolicyScope::Account, None),
                    Target::Resource { arn, .. } => {
                        (None, PolicyScope::Resource, Some(arn.clone()))
                    }
                };
                Ok(Change::Put(ResourcePolicy {
                    policy_name,
                    policy_document: document.to_string(),
                    last_updated_time: now_ms(),
                    policy_scope,
                    resource_arn,
                    revision_id: uuid::Uuid::new_v4().to_string(),
                })
                .into())
            },
        )?;
        Ok(stored.expect("a Put leaves its value stored"))
    }

    /// DescribeResourcePolicies: account policies (in name order), then resource ones;
    /// `resource_arn` narrows to one group's, `policy_scope` to one scope.
    pub fn describe_resource_policies(
        &self,
        scope: &LogScope,
        resource_arn: Option<&str>,
        policy_scope: Option<PolicyScope>,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ResourcePolicy>, Option<String>)> {
        let base = format!("{}resource-policy/", scope.prefix());
        let prefix = match resource_arn {
            Some(arn) => scope.resource_policy_key(&scope.group_from_identifier(arn)?),
            None => base.clone(),
        };
        let after = next_token
            .map(|t| berth_store::page_token::decode(t).ok_or_else(tokens::bad_token))
            .transpose()?;
        let mut out: Vec<(String, ResourcePolicy)> = Vec::new();
        let mut more = false;
        scan(
            self.store.as_ref(),
            &prefix,
            after.map(|a| format!("{base}{a}")),
            |kv| {
                let policy: ResourcePolicy = decode(kv)?;
                if policy_scope.is_some_and(|s| s != policy.policy_scope)
                    || (resource_arn.is_some() && kv.key != prefix)
                {
                    return Ok(true);
                }
                if out.len() == limit {
                    more = true;
                    return Ok(false);
                }
                out.push((kv.key[base.len()..].to_string(), policy));
                Ok(true)
            },
        )?;
        let token = more
            .then(|| out.last())
            .flatten()
            .map(|(k, _)| berth_store::page_token::encode(k));
        Ok((out.into_iter().map(|(_, p)| p).collect(), token))
    }

    /// DeleteResourcePolicy.
    pub fn delete_resource_policy(
        &self,
        scope: &LogScope,
        name: Option<&str>,
        resource_arn: Option<&str>,
        expected_revision: Option<&str>,
    ) -> Result<()> {
        let target = self.policy_target(scope, name, resource_arn)?;
        let key = self.policy_key(scope, &target);
        berth_store::update(
            self.store.as_ref(),
            &key,
            |current: Option<ResourcePolicy>| -> Result<Change<ResourcePolicy>> {
                let Some(current) = current else {
                    // As CloudWatch Logs words it (relayed in aws/aws-cdk#12016).
                    let named = match &target {
                        Target::Account(name) => name.clone(),
                        Target::Resource { arn, .. } => arn.clone(),
                    };
                    return Err(LogsError::ResourceNotFound(format!(
                        "Policy with name [{named}] does not exist."
                    )));
                };
                if expected_revision.is_some_and(|e| e != current.revision_id) {
                    return Err(LogsError::InvalidOperation(
                        "The expectedRevisionId does not match the policy's current revisionId."
                            .into(),
                    ));
                }
                Ok(Change::Delete)
            },
        )?;
        Ok(())
    }
}
