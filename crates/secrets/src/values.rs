//! A version's value: a string or bytes, sealed with the installation's data key and bound
//! to its version record's key. Only this module seals and opens.

use serde::{Deserialize, Serialize};

use crate::{
    AWSCURRENT, Result, Secret, SecretScope, Secrets, SecretsError, invalid, not_found, now,
};

/// SecretString or SecretBinary.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    // A value never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::String(_) => f.write_str("SecretValue::String(..)"),
            SecretValue::Binary(_) => f.write_str("SecretValue::Binary(..)"),
        }
    }
}

impl SecretValue {
    pub fn is_binary(&self) -> bool {
        matches!(self, SecretValue::Binary(_))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            SecretValue::String(s) => s.as_bytes(),
            SecretValue::Binary(b) => b,
        }
    }

    /// At most 65,536 bytes (Secrets Manager's quota).
    pub fn check(&self) -> Result<()> {
        if self.bytes().len() > 65_536 {
            return Err(invalid(
                "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536",
            ));
        }
        Ok(())
    }
}

/// A version's record: the sealed value and whether it is binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SealedValue {
    binary: bool,
    sealed: String,
}

/// GetSecretValue's answer.
#[derive(Debug, Clone)]
pub struct VersionValue {
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub value: SecretValue,
    pub stages: Vec<String>,
    pub created_date: f64,
}

impl Secrets {
    /// The sealed record of `secret`'s version `version`: its key and bytes.
    pub(crate) fn seal_version(
        &self,
        scope: &SecretScope,
        secret: &Secret,
        version: &str,
        value: &SecretValue,
    ) -> Result<(String, Vec<u8>)> {
        value.check()?;
        let key = scope.version_key(secret.id(), version);
        let sealed = self
            .key
            .seal(&key, value.bytes())
            .map_err(|e| SecretsError::Decryption(e.to_string()))?;
        let record = SealedValue {
            binary: value.is_binary(),
            sealed,
        };
        Ok((key, berth_store::encode(&record)))
    }

    /// The plaintext of `secret`'s version `version`.
    pub(crate) fn read_version(&self, secret: &Secret, version: &str) -> Result<SecretValue> {
        let scope = SecretScope::of_arn(&secret.arn).ok_or_else(not_found)?;
        let key = scope.version_key(secret.id(), version);
        let kv = self.store().get(&key)?.ok_or_else(not_found)?;
        let record: SealedValue = berth_store::decode(&kv)?;
        let plain = self.key.open(&key, &record.sealed).map_err(|e| {
            SecretsError::Decryption(format!(
                "Secrets Manager can't decrypt the protected secret text using the provided KMS key. ({e})"
            ))
        })?;
        if record.binary {
            return Ok(SecretValue::Binary(plain));
        }
        String::from_utf8(plain)
            .map(SecretValue::String)
            .map_err(|_| SecretsError::Decryption("a stored secret string is not UTF-8".into()))
    }

    /// GetSecretValue: the version `version_id` and/or `stage` name (default AWSCURRENT).
    pub fn get_value(
        &self,
        scope: &SecretScope,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<VersionValue> {
        let (key, secret) = self.resolve(scope, id)?;
        secret_value(self, &key, secret, version_id, stage)
    }
}

/// GetSecretValue on a resolved secret; records when it was last read (at day resolution,
/// as Secrets Manager shows `LastAccessedDate`, so most reads write nothing).
pub(crate) fn secret_value(
    secrets: &Secrets,
    key: &str,
    secret: Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<VersionValue> {
    if secret.is_deleted() {
        return Err(crate::marked_for_deletion());
    }
    let version = match (version_id, stage) {
        (Some(v), stage) => {
            let meta = secret.versions.get(v).ok_or_else(|| {
                SecretsError::ResourceNotFound(format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {v}"
                ))
            })?;
            if let Some(stage) = stage
                && !meta.stages.iter().any(|s| s == stage)
            {
                return Err(SecretsError::InvalidRequest(
                    "You provided a VersionStage that is not associated to the provided VersionId."
                        .into(),
                ));
            }
            v.to_string()
        }
        (None, stage) => {
            let stage = stage.unwrap_or(AWSCURRENT);
            secret.version_with(stage).map(str::to_string).ok_or_else(|| {
                SecretsError::ResourceNotFound(format!(
                    "Secrets Manager can't find the specified secret value for staging label: {stage}"
                ))
            })?
        }
    };
    let value = secrets.read_version(&secret, &version)?;
    let meta = &secret.versions[&version];
    let out = VersionValue {
        arn: secret.arn.clone(),
        name: secret.name.clone(),
        version_id: version.clone(),
        value,
        stages: meta.stages.clone(),
        created_date: meta.created_date,
    };
    let today = day(now());
    if secret.last_accessed_date.map(day) != Some(today) {
        let at = today as f64 * 86_400.0;
        let _ = berth_store::update(
            secrets.store(),
            key,
            |current: Option<Secret>| -> Result<berth_store::Change<Secret>> {
                let Some(mut s) = current else {
                    return Ok(berth_store::Change::Keep);
                };
                s.last_accessed_date = Some(at);
                if let Some(v) = s.versions.get_mut(&version) {
                    v.last_accessed_date = Some(at);
                }
                Ok(berth_store::Change::Put(s))
            },
        )?;
    }
    Ok(out)
}

fn day(epoch: f64) -> i64 {
    (epoch / 86_400.0).floor() as i64
}
