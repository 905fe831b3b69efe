//! AWS Secrets Manager for Berth: secrets as store records, their versions with staging
//! labels, deletion with a recovery window, tags, resource policies and rotation settings.
//!
//! A secret is one record (`keys.rs`) holding its metadata and the staging labels of every
//! version; each version's value is a record of its own, sealed with the installation's
//! data key (`berth_kms`) and bound to that record's key, so the store never holds a secret
//! value in the clear and a sealed value copied to another record does not open. Both are
//! written in one transaction.

mod keys;
mod list;
pub mod password;
mod values;
mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_kms::DataKey;
use berth_store::{Change, Op, Store, StoreError, Update};
use serde::{Deserialize, Serialize};

pub use keys::SecretScope;
pub use list::{Filter, FilterKey};
pub use values::{SecretValue, VersionValue};

/// The labels Secrets Manager itself moves.
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";
/// DeleteSecret's default recovery window, and its bounds (days).
pub const DEFAULT_RECOVERY_DAYS: i64 = 30;
pub const RECOVERY_DAYS: std::ops::RangeInclusive<i64> = 7..=30;
/// Versions kept: Secrets Manager keeps 100 versions (those without a label are removed
/// oldest first beyond that).
pub const MAX_VERSIONS: usize = 100;
/// Tags per secret (Secrets Manager's quota).
pub const MAX_TAGS: usize = 50;
const DAY_SECONDS: f64 = 86_400.0;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Decryption(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

pub type Result<T, E = SecretsError> = std::result::Result<T, E>;

pub(crate) fn not_found() -> SecretsError {
    SecretsError::ResourceNotFound("Secrets Manager can't find the specified secret.".into())
}

pub(crate) fn marked_for_deletion() -> SecretsError {
    SecretsError::InvalidRequest(
        "You can't perform this operation on the secret because it was marked for deletion.".into(),
    )
}

pub(crate) fn invalid(message: impl Into<String>) -> SecretsError {
    SecretsError::InvalidParameter(message.into())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// RotateSecret's `RotationRules`, kept as given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RotationRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

/// What the secret record knows of one version (its value is a record of its own).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionMeta {
    pub stages: Vec<String>,
    pub created_date: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    /// Whether the value is a string (else binary): BatchGet's and Get's answers differ.
    #[serde(default)]
    pub binary: bool,
}

/// A secret as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Secret {
    pub arn: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `KmsKeyId` a request gave (none: the AWS managed key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_date: f64,
    pub last_changed_date: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    /// When DeleteSecret was called (DescribeSecret's `DeletedDate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<f64>,
    /// When the secret is purged (DeleteSecret's `DeletionDate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    #[serde(default)]
    pub rotation_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_lambda_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_rules: Option<RotationRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Version id → what is known of it.
    #[serde(default)]
    pub versions: BTreeMap<String, VersionMeta>,
}

impl Secret {
    /// The id in version keys: the ARN's last part, `NAME-XXXXXX`, unique even when a name
    /// is reused after a purge.
    pub(crate) fn id(&self) -> &str {
        self.arn.rsplit_once(":secret:").map_or("", |(_, id)| id)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_date.is_some()
    }

    /// The version holding `stage`.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
    }

    /// `VersionIdsToStages`: versions that have a label.
    pub fn versions_to_stages(&self) -> BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| (id.clone(), v.stages.clone()))
            .collect()
    }

    fn refuse_if_deleted(&self) -> Result<()> {
        if self.is_deleted() {
            return Err(marked_for_deletion());
        }
        Ok(())
    }
}

/// CreateSecret's request, parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateSecret {
    pub name: String,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub value: Option<SecretValue>,
    pub tags: Vec<Tag>,
    /// `ClientRequestToken`: the first version's id.
    pub version_id: Option<String>,
}

/// UpdateSecret's request, parsed.
#[derive(Debug, Clone, Default)]
pub struct UpdateSecret {
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub value: Option<SecretValue>,
    pub version_id: Option<String>,
}

/// Secrets Manager over the store.
pub struct Secrets {
    store: Arc<dyn Store>,
    key: Arc<DataKey>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

pub(crate) fn now() -> f64 {
    berth_store::now_epoch()
}

impl Secrets {
    pub fn new(store: Arc<dyn Store>, key: Arc<DataKey>) -> Secrets {
        Secrets { store, key }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The secret `id` (a name, a full ARN or a partial ARN without the random suffix)
    /// names, and its record key. A secret whose recovery window has ended is purged here
    /// and is not found.
    pub fn resolve(&self, scope: &SecretScope, id: &str) -> Result<(String, Secret)> {
        for name in scope.candidate_names(id)? {
            let key = scope.secret_key(&name);
            let Some(kv) = self.store.get(&key)? else {
                continue;
            };
            let secret: Secret = berth_store::decode(&kv)?;
            if id.starts_with("arn:") && !scope.arn_names(id, &secret) {
                continue;
            }
            if secret.deletion_date.is_some_and(|d| d <= now()) {
                self.purge(scope, &secret)?;
                return Err(not_found());
            }
            return Ok((key, secret));
        }
        Err(not_found())
    }

    /// DescribeSecret.
    pub fn describe(&self, scope: &SecretScope, id: &str) -> Result<Secret> {
        Ok(self.resolve(scope, id)?.1)
    }

    /// CreateSecret: the secret and, with a value, its first version labelled AWSCURRENT.
    /// A retry with the same `ClientRequestToken` and value returns what the first call
    /// made.
    pub fn create(
        &self,
        scope: &SecretScope,
        req: CreateSecret,
    ) -> Result<(Secret, Option<String>)> {
        check_name(&req.name)?;
        keys::check_tags(&req.tags)?;
        let key = scope.secret_key(&req.name);
        let version_id = req.value.as_ref().map(|_| {
            req.version_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        });
        if let Some(v) = &version_id {
            check_version_id(v)?;
        }
        let arn = scope.new_arn(&req.name);
        let stored = berth_store::update(
            self.store(),
            &key,
            |current: Option<Secret>| -> Result<Update<Secret>> {
                if let Some(current) = current {
                    let expired = current.deletion_date.is_some_and(|d| d <= now());
                    if current.is_deleted() && !expired {
                        return Err(SecretsError::InvalidRequest(
                            "You can't create this secret because a secret with this name is already scheduled for deletion.".into(),
                        ));
                    }
                    if !expired {
                        // The same request again (same token and value): what it made.
                        if let (Some(v), Some(value)) = (&version_id, &req.value)
                            && current.versions.contains_key(v)
                            && req.version_id.is_some()
                        {
                            return match self.read_version(&current, v)? == *value {
                                true => Ok(Change::Keep.into()),
                                false => Err(SecretsError::ResourceExists(format!(
                                    "The operation failed because the secret {} already exists.",
                                    req.name
                                ))),
                            };
                        }
                        return Err(SecretsError::ResourceExists(format!(
                            "The operation failed because the secret {} already exists.",
                            req.name
                        )));
                    }
                }
                let at = now();
                let mut secret = Secret {
                    arn: arn.clone(),
                    name: req.name.clone(),
                    description: req.description.clone(),
                    kms_key_id: req.kms_key_id.clone(),
                    tags: req.tags.clone(),
                    created_date: at,
                    last_changed_date: at,
                    last_accessed_date: None,
                    deleted_date: None,
                    deletion_date: None,
                    rotation_enabled: false,
                    rotation_lambda_arn: None,
                    rotation_rules: None,
                    policy: None,
                    versions: BTreeMap::new(),
                };
                let mut update = Update::from(Change::Keep);
                if let (Some(v), Some(value)) = (&version_id, &req.value) {
                    secret.versions.insert(
                        v.clone(),
                        VersionMeta {
                            stages: vec![AWSCURRENT.to_string()],
                            created_date: at,
                            last_accessed_date: None,
                            binary: value.is_binary(),
                        },
                    );
                    let (vkey, bytes) = self.seal_version(scope, &secret, v, value)?;
                    update = update.also(Op::put(vkey, bytes));
                }
                update.change = Change::Put(secret);
                Ok(update)
            },
        )?;
        let secret = stored.expect("a created secret is stored");
        Ok((secret, version_id))
    }

    /// UpdateSecret: description and key id; a value makes a new AWSCURRENT version.
    pub fn update(
        &self,
        scope: &SecretScope,
        id: &str,
        req: UpdateSecret,
    ) -> Result<(Secret, Option<String>)> {
        let (key, _) = self.resolve(scope, id)?;
        let version_id = req.value.as_ref().map(|_| {
            req.version_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        });
        let stored = berth_store::update(
            self.store(),
            &key,
            |current: Option<Secret>| -> Result<Update<Secret>> {
                let mut secret = current.ok_or_else(not_found)?;
                secret.refuse_if_deleted()?;
                if let Some(d) = &req.description {
                    secret.description = Some(d.clone());
                }
                if let Some(k) = &req.kms_key_id {
                    secret.kms_key_id = Some(k.clone());
                }
                secret.last_changed_date = now();
                let mut update = Update::from(Change::Keep);
                if let (Some(v), Some(value)) = (&version_id, &req.value) {
                    update = self.add_version(scope, &mut secret, v, value, None)?;
                }
                update.change = Change::Put(secret);
                Ok(update)
            },
        )?;
        Ok((stored.ok_or_else(not_found)?, version_id))
    }

    /// TagResource: adds or overwrites.
    pub fn tag(&self, scope: &SecretScope, id: &str, tags: &[Tag]) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            secret.refuse_if_deleted()?;
            for tag in tags {
                match secret.tags.iter_mut().find(|t| t.key == tag.key) {
                    Some(t) => t.value = tag.value.clone(),
                    None => secret.tags.push(tag.clone()),
                }
            }
            keys::check_tags(&secret.tags)
        })
    }

    /// UntagResource.
    pub fn untag(&self, scope: &SecretScope, id: &str, keys: &[String]) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            secret.refuse_if_deleted()?;
            secret.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
    }

    /// PutResourcePolicy (`Some`) and DeleteResourcePolicy (`None`).
    pub fn set_policy(
        &self,
        scope: &SecretScope,
        id: &str,
        policy: Option<&str>,
    ) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            if policy.is_some() {
                secret.refuse_if_deleted()?;
            }
            secret.policy = policy.map(str::to_string);
            Ok(())
        })
    }

    /// RotateSecret, as configuration only: Berth runs no Lambda function, so the rules
    /// and function ARN are kept and shown and nothing rotates.
    pub fn rotate(
        &self,
        scope: &SecretScope,
        id: &str,
        lambda_arn: Option<&str>,
        rules: Option<RotationRules>,
    ) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            secret.refuse_if_deleted()?;
            if let Some(arn) = lambda_arn {
                secret.rotation_lambda_arn = Some(arn.to_string());
            }
            if secret.rotation_lambda_arn.is_none() {
                return Err(SecretsError::InvalidRequest(
                    "No Lambda rotation function ARN is associated with this secret.".into(),
                ));
            }
            if let Some(rules) = &rules {
                if let Some(days) = rules.automatically_after_days
                    && !(1..=1000).contains(&days)
                {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{days}' at 'rotationRules.automaticallyAfterDays' failed to satisfy constraint: Member must have value between 1 and 1000"
                    )));
                }
                secret.rotation_rules = Some(rules.clone());
            }
            secret.rotation_enabled = true;
            Ok(())
        })
    }

    /// CancelRotateSecret.
    pub fn cancel_rotate(&self, scope: &SecretScope, id: &str) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            secret.refuse_if_deleted()?;
            secret.rotation_enabled = false;
            Ok(())
        })
    }

    /// DeleteSecret: scheduled after a recovery window (7–30 days, default 30), or at once.
    pub fn delete(
        &self,
        scope: &SecretScope,
        id: &str,
        window_days: Option<i64>,
        force: bool,
    ) -> Result<Secret> {
        if force && window_days.is_some() {
            return Err(invalid(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        let days = window_days.unwrap_or(DEFAULT_RECOVERY_DAYS);
        if !RECOVERY_DAYS.contains(&days) {
            return Err(invalid(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        let (_, secret) = self.resolve(scope, id)?;
        if force {
            let at = now();
            self.purge(scope, &secret)?;
            return Ok(Secret {
                deleted_date: Some(at),
                deletion_date: Some(at),
                ..secret
            });
        }
        self.modify(scope, id, |secret| {
            if secret.is_deleted() {
                return Err(marked_for_deletion());
            }
            let at = now();
            secret.deleted_date = Some(at);
            secret.deletion_date = Some(at + days as f64 * DAY_SECONDS);
            Ok(())
        })
    }

    /// RestoreSecret: cancels a scheduled deletion.
    pub fn restore(&self, scope: &SecretScope, id: &str) -> Result<Secret> {
        self.modify(scope, id, |secret| {
            secret.deleted_date = None;
            secret.deletion_date = None;
            Ok(())
        })
    }

    /// Purges every secret of every scope whose recovery window has ended (the lazy purge
    /// on access does the same for one secret). Returns how many went.
    pub fn purge_expired(&self) -> Result<usize> {
        let at = now();
        let mut due = Vec::new();
        berth_store::scan(self.store(), keys::ROOT, None, |kv| {
            if keys::is_secret_key(&kv.key) {
                let secret: Secret = berth_store::decode(kv)?;
                if secret.deletion_date.is_some_and(|d| d <= at) {
                    due.push((kv.key.clone(), secret));
                }
            }
            Ok::<_, SecretsError>(true)
        })?;
        for (key, secret) in &due {
            let scope = SecretScope::of_key(key).ok_or_else(|| {
                SecretsError::Store(StoreError::Corrupt(format!("{key}: not a secret key")))
            })?;
            self.purge(&scope, secret)?;
        }
        Ok(due.len())
    }

    /// Removes a secret and its versions' values in one transaction.
    fn purge(&self, scope: &SecretScope, secret: &Secret) -> Result<()> {
        let mut ops = vec![Op::delete(scope.secret_key(&secret.name))];
        for kv in self
            .store
            .range(&scope.versions_prefix(secret.id()), None, 0)?
        {
            ops.push(Op::delete(kv.key));
        }
        self.store.txn(&[], &ops)?;
        Ok(())
    }

    /// A read-modify-write of the secret `id` names.
    pub(crate) fn modify(
        &self,
        scope: &SecretScope,
        id: &str,
        mut change: impl FnMut(&mut Secret) -> Result<()>,
    ) -> Result<Secret> {
        let (key, _) = self.resolve(scope, id)?;
        let stored = berth_store::update(
            self.store(),
            &key,
            |current: Option<Secret>| -> Result<Change<Secret>> {
                let mut secret = current.ok_or_else(not_found)?;
                change(&mut secret)?;
                secret.last_changed_date = now();
                Ok(Change::Put(secret))
            },
        )?;
        stored.ok_or_else(not_found)
    }
}

/// Secret names: 1–512 characters, ASCII letters, digits and `/_+=.@-`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 512 {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length between 1 and 512"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(invalid(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    Ok(())
}

/// `ClientRequestToken`: 32–64 characters.
pub(crate) fn check_version_id(id: &str) -> Result<()> {
    if !(32..=64).contains(&id.chars().count()) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{id}' at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
