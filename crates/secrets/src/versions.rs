//! Versions and their staging labels: PutSecretValue (and UpdateSecret's value) add a
//! version, UpdateSecretVersionStage moves a label. A label is on at most one version;
//! moving AWSCURRENT moves AWSPREVIOUS to the version AWSCURRENT left, as Secrets Manager
//! does. Versions without a label beyond the 100 kept are removed, oldest first.

use berth_store::{Change, Op, Update};

use crate::{
    AWSCURRENT, AWSPREVIOUS, MAX_VERSIONS, Result, Secret, SecretScope, SecretValue, Secrets,
    SecretsError, VersionMeta, check_version_id, invalid, not_found, now,
};

impl Secrets {
    /// PutSecretValue: a new version with `stages` (default AWSCURRENT). A retry with the
    /// same `ClientRequestToken` and value changes nothing; another value is refused.
    pub fn put_value(
        &self,
        scope: &SecretScope,
        id: &str,
        version_id: Option<&str>,
        value: &SecretValue,
        stages: Option<&[String]>,
    ) -> Result<(Secret, String)> {
        let version = version_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        check_version_id(&version)?;
        value.check()?;
        if let Some(stages) = stages {
            check_stages(stages)?;
        }
        let (key, _) = self.resolve(scope, id)?;
        let stored = berth_store::update(
            self.store(),
            &key,
            |current: Option<Secret>| -> Result<Update<Secret>> {
                let mut secret = current.ok_or_else(not_found)?;
                if secret.is_deleted() {
                    return Err(crate::marked_for_deletion());
                }
                if secret.versions.contains_key(&version) {
                    return match self.read_version(&secret, &version)? == *value {
                        true => Ok(Change::Keep.into()),
                        false => Err(SecretsError::ResourceExists(
                            "You can't modify an existing version, you can only create a new version."
                                .into(),
                        )),
                    };
                }
                let mut update = self.add_version(scope, &mut secret, &version, value, stages)?;
                secret.last_changed_date = now();
                update.change = Change::Put(secret);
                Ok(update)
            },
        )?;
        Ok((stored.ok_or_else(not_found)?, version))
    }

    /// Adds version `version` with `value` to `secret` (labels moved onto it), and the
    /// operations that write its sealed value and drop versions beyond the quota.
    pub(crate) fn add_version(
        &self,
        scope: &SecretScope,
        secret: &mut Secret,
        version: &str,
        value: &SecretValue,
        stages: Option<&[String]>,
    ) -> Result<Update<Secret>> {
        if secret.versions.contains_key(version) {
            return Err(SecretsError::ResourceExists(
                "You can't modify an existing version, you can only create a new version.".into(),
            ));
        }
        let (vkey, bytes) = self.seal_version(scope, secret, version, value)?;
        secret.versions.insert(
            version.to_string(),
            VersionMeta {
                stages: Vec::new(),
                created_date: now(),
                last_accessed_date: None,
                binary: value.is_binary(),
            },
        );
        let default = [AWSCURRENT.to_string()];
        for stage in stages.unwrap_or(&default) {
            move_stage(secret, stage, version);
        }
        // The first version is AWSCURRENT whatever it was asked to be.
        if secret.version_with(AWSCURRENT).is_none() {
            move_stage(secret, AWSCURRENT, version);
        }
        let mut update = Update::from(Change::Keep).also(Op::put(vkey, bytes));
        for dropped in prune(secret) {
            update = update.also(Op::delete(scope.version_key(secret.id(), &dropped)));
        }
        Ok(update)
    }

    /// UpdateSecretVersionStage: `stage` onto `move_to`, off `remove_from`. A label on a
    /// version must be removed from it by name before it can move.
    pub fn update_version_stage(
        &self,
        scope: &SecretScope,
        id: &str,
        stage: &str,
        remove_from: Option<&str>,
        move_to: Option<&str>,
    ) -> Result<Secret> {
        check_stages(&[stage.to_string()])?;
        self.modify(scope, id, |secret| {
            if secret.is_deleted() {
                return Err(crate::marked_for_deletion());
            }
            for v in [remove_from, move_to].into_iter().flatten() {
                if !secret.versions.contains_key(v) {
                    return Err(SecretsError::ResourceNotFound(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {v}"
                    )));
                }
            }
            let holder = secret.version_with(stage).map(str::to_string);
            if let (Some(holder), Some(to)) = (&holder, move_to)
                && holder != to
                && remove_from != Some(holder.as_str())
            {
                return Err(invalid(format!(
                    "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {holder}, so you must explicitly reference that version in RemoveFromVersionId."
                )));
            }
            if let Some(from) = remove_from
                && holder.as_deref() != Some(from)
            {
                return Err(invalid(format!(
                    "The staging label {stage} is not attached to version {from}."
                )));
            }
            match move_to {
                Some(to) => move_stage(secret, stage, to),
                None => {
                    if stage == AWSCURRENT {
                        return Err(invalid(
                            "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.",
                        ));
                    }
                    for meta in secret.versions.values_mut() {
                        meta.stages.retain(|s| s != stage);
                    }
                }
            }
            Ok(())
        })
    }
}

/// Puts `stage` on `version`, taking it off the version holding it; moving AWSCURRENT gives
/// the version it left AWSPREVIOUS.
fn move_stage(secret: &mut Secret, stage: &str, version: &str) {
    let holder = secret.version_with(stage).map(str::to_string);
    if holder.as_deref() == Some(version) {
        return;
    }
    for meta in secret.versions.values_mut() {
        meta.stages.retain(|s| s != stage);
    }
    if let Some(meta) = secret.versions.get_mut(version) {
        meta.stages.push(stage.to_string());
    }
    if stage == AWSCURRENT
        && let Some(old) = holder
    {
        for meta in secret.versions.values_mut() {
            meta.stages.retain(|s| s != AWSPREVIOUS);
        }
        if let Some(meta) = secret.versions.get_mut(&old) {
            meta.stages.push(AWSPREVIOUS.to_string());
        }
    }
}

/// The versions without a label dropped to keep at most [`MAX_VERSIONS`], oldest first.
fn prune(secret: &mut Secret) -> Vec<String> {
    let excess = secret.versions.len().saturating_sub(MAX_VERSIONS);
    if excess == 0 {
        return Vec::new();
    }
    let mut unlabelled: Vec<(f64, String)> = secret
        .versions
        .iter()
        .filter(|(_, v)| v.stages.is_empty())
        .map(|(id, v)| (v.created_date, id.clone()))
        .collect();
    unlabelled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let dropped: Vec<String> = unlabelled
        .into_iter()
        .take(excess)
        .map(|(_, id)| id)
        .collect();
    for id in &dropped {
        secret.versions.remove(id);
    }
    dropped
}

/// Staging labels: 1–256 characters, at most 20 per version.
fn check_stages(stages: &[String]) -> Result<()> {
    if stages.len() > 20 {
        return Err(invalid(
            "1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length less than or equal to 20",
        ));
    }
    if stages
        .iter()
        .any(|s| s.is_empty() || s.chars().count() > 256)
    {
        return Err(invalid(
            "1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length between 1 and 256",
        ));
    }
    Ok(())
}
