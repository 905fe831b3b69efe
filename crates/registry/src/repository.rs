//! Repositories: create, describe, delete, settings, resource tags and policies.

use berth_model::RepositoryName;
use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::{Registry, RegistryError, Result, Scope, decode, encode, keys, now_epoch, page};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    Mutable,
    Immutable,
    /// Mutable except the tags the exclusion filters match, which are immutable.
    MutableWithExclusion,
    /// Immutable except the tags the exclusion filters match, which are mutable.
    ImmutableWithExclusion,
}

impl TagMutability {
    pub fn parse(s: &str) -> Result<TagMutability> {
        match s {
            "MUTABLE" => Ok(TagMutability::Mutable),
            "IMMUTABLE" => Ok(TagMutability::Immutable),
            "MUTABLE_WITH_EXCLUSION" => Ok(TagMutability::MutableWithExclusion),
            "IMMUTABLE_WITH_EXCLUSION" => Ok(TagMutability::ImmutableWithExclusion),
            other => Err(RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]' (got '{other}')"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
            TagMutability::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
        }
    }

    fn has_exclusions(self) -> bool {
        matches!(
            self,
            TagMutability::MutableWithExclusion | TagMutability::ImmutableWithExclusion
        )
    }
}

/// ECR's ImageTagMutabilityExclusionFilter: tags matching `filter` (`*` a wildcard) take
/// the opposite of the repository's mutability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMutabilityExclusionFilter {
    pub filter_type: String,
    pub filter: String,
}

/// The exclusion filters suit the mutability: one to five WILDCARD filters of
/// `[0-9a-zA-Z._*-]{1,128}` with a `*_WITH_EXCLUSION` mutability, none otherwise (the
/// constraints of the API reference's shapes; AWS's texts for these refusals were not
/// found, these follow ECR's "Invalid parameter at ..." form).
pub fn check_tag_mutability(
    mutability: TagMutability,
    filters: &[TagMutabilityExclusionFilter],
) -> Result<()> {
    let invalid = |why: &str| RegistryError::InvalidParameter(why.to_string());
    if !mutability.has_exclusions() {
        if !filters.is_empty() {
            return Err(invalid(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters': exclusion filters can only be specified with imageTagMutability MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION",
            ));
        }
        return Ok(());
    }
    if filters.is_empty() || filters.len() > 5 {
        return Err(invalid(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Member must have length between 1 and 5 when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION'",
        ));
    }
    for f in filters {
        if f.filter_type != "WILDCARD" {
            return Err(invalid(&format!(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters.filterType' failed to satisfy constraint: 'Member must satisfy enum value set: [WILDCARD]' (got '{}')",
                f.filter_type
            )));
        }
        let ok = (1..=128).contains(&f.filter.len())
            && f.filter
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '*' | '-'));
        if !ok {
            return Err(invalid(&format!(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters.filter' failed to satisfy constraint: 'Member must satisfy regular expression pattern: ^[0-9a-zA-Z._*-]{{1,128}}$' (got '{}')",
                f.filter
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub encryption_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl Default for EncryptionConfiguration {
    fn default() -> Self {
        EncryptionConfiguration {
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }
}

/// An ECR resource tag, with ECR's capitalised member names (ECS's `EcsTag` has lower-case ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcrTag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

/// A stored repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: RepositoryName,
    pub created_at: f64,
    pub image_tag_mutability: TagMutability,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
    pub scan_on_push: bool,
    pub encryption: EncryptionConfiguration,
    #[serde(default)]
    pub tags: Vec<EcrTag>,
    #[serde(default)]
    pub policy: Option<String>,
    /// The lifecycle policy text (PutLifecyclePolicy), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    /// When the lifecycle policy last ran (GetLifecyclePolicy's `lastEvaluatedAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_evaluated_at: Option<f64>,
}

impl Repository {
    /// Whether pushing `tag` onto another image is refused.
    pub fn tag_is_immutable(&self, tag: &str) -> bool {
        let excluded = || {
            self.image_tag_mutability_exclusion_filters
                .iter()
                .any(|f| crate::lifecycle::wildcard_match(&f.filter, tag))
        };
        match self.image_tag_mutability {
            TagMutability::Mutable => false,
            TagMutability::Immutable => true,
            TagMutability::MutableWithExclusion => excluded(),
            TagMutability::ImmutableWithExclusion => !excluded(),
        }
    }

    pub fn arn(&self, scope: &Scope) -> String {
        format!(
            "arn:aws:ecr:{}:{}:repository/{}",
            scope.region, scope.account, self.name
        )
    }
}

/// What CreateRepository asks for.
#[derive(Debug, Clone)]
pub struct CreateRepository {
    pub name: RepositoryName,
    pub image_tag_mutability: TagMutability,
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
    pub scan_on_push: bool,
    pub encryption: EncryptionConfiguration,
    pub tags: Vec<EcrTag>,
}

fn check_tags(tags: &[EcrTag]) -> Result<()> {
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.key.starts_with("aws:") {
            return Err(RegistryError::InvalidTagParameter(format!(
                "Invalid tag key '{}': keys are 1 to 128 characters and may not start with 'aws:'",
                t.key
            )));
        }
        if t.value.chars().count() > 256 {
            return Err(RegistryError::InvalidTagParameter(format!(
                "Invalid tag value for key '{}': values are at most 256 characters",
                t.key
            )));
        }
    }
    Ok(())
}

fn merge_tags(existing: &mut Vec<EcrTag>, new: &[EcrTag]) -> Result<()> {
    check_tags(new)?;
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value.clone(),
            None => existing.push(t.clone()),
        }
    }
    if existing.len() > 50 {
        return Err(RegistryError::TooManyTags(
            "A resource can have at most 50 tags".into(),
        ));
    }
    Ok(())
}

/// A repository policy must be a JSON policy document: an object with a non-empty
/// `Statement` (object or array) whose statements name an `Effect` of Allow or Deny, an
/// action and a principal.
pub(crate) fn check_policy(text: &str) -> Result<()> {
    let invalid = |why: &str| RegistryError::InvalidPolicy(why.to_string());
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| invalid("not a JSON object"))?;
    if let Some(v) = obj.get("Version")
        && !matches!(v.as_str(), Some("2012-10-17") | Some("2008-10-17"))
    {
        return Err(invalid("Version must be 2012-10-17 or 2008-10-17"));
    }
    let statements: Vec<&serde_json::Value> = match obj.get("Statement") {
        Some(serde_json::Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(s @ serde_json::Value::Object(_)) => vec![s],
        _ => return Err(invalid("missing Statement")),
    };
    for s in statements {
        let s = s
            .as_object()
            .ok_or_else(|| invalid("Statement must be an object"))?;
        if !matches!(
            s.get("Effect").and_then(|e| e.as_str()),
            Some("Allow" | "Deny")
        ) {
            return Err(invalid("Effect must be Allow or Deny"));
        }
        if !s.contains_key("Action") && !s.contains_key("NotAction") {
            return Err(invalid("Statement has no Action"));
        }
        if !s.contains_key("Principal") && !s.contains_key("NotPrincipal") {
            return Err(invalid("Statement has no Principal"));
        }
    }
    Ok(())
}

impl Registry {
    pub fn create_repository(&self, scope: &Scope, req: CreateRepository) -> Result<Repository> {
        check_tags(&req.tags)?;
        check_tag_mutability(
            req.image_tag_mutability,
            &req.image_tag_mutability_exclusion_filters,
        )?;
        if req.tags.len() > 50 {
            return Err(RegistryError::TooManyTags(
                "A resource can have at most 50 tags".into(),
            ));
        }
        let repo = Repository {
            name: req.name,
            created_at: now_epoch(),
            image_tag_mutability: req.image_tag_mutability,
            image_tag_mutability_exclusion_filters: req.image_tag_mutability_exclusion_filters,
            scan_on_push: req.scan_on_push,
            encryption: req.encryption,
            tags: req.tags,
            policy: None,
            lifecycle_policy: None,
            lifecycle_evaluated_at: None,
        };
        let key = keys::repo(scope, &repo.name);
        match self.store.put_if_revision(&key, &encode(&repo), 0)? {
            TxnOutcome::Committed(_) => Ok(repo),
            TxnOutcome::Conflict => Err(RegistryError::RepositoryAlreadyExists {
                name: repo.name,
                registry: scope.account.to_string(),
            }),
        }
    }

    pub fn repository(&self, scope: &Scope, name: &RepositoryName) -> Result<Repository> {
        Ok(self.repository_with_revision(scope, name)?.0)
    }

    pub(crate) fn repository_with_revision(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<(Repository, u64)> {
        match self.store.get(&keys::repo(scope, name))? {
            Some(kv) => Ok((decode(&kv)?, kv.mod_revision)),
            None => Err(RegistryError::RepositoryNotFound {
                name: name.clone(),
                registry: scope.account.to_string(),
            }),
        }
    }

    /// All repositories of the scope, a page at a time.
    pub fn list_repositories(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<Repository>, Option<String>)> {
        let (kvs, next) = page(&*self.store, &keys::repos(scope), next_token, max_results)?;
        let repos = kvs.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok((repos, next))
    }

    /// Delete a repository. Without `force` it must hold no images; with it, its images,
    /// tags and blob links go too (blob bytes are reclaimed by garbage collection).
    pub fn delete_repository(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        force: bool,
    ) -> Result<Repository> {
        loop {
            let (repo, rev) = self.repository_with_revision(scope, name)?;
            let images = self.store.range(&keys::images(scope, name), None, 0)?;
            if !images.is_empty() && !force {
                return Err(RegistryError::RepositoryNotEmpty {
                    name: name.clone(),
                    registry: scope.account.to_string(),
                });
            }
            let mut ops = vec![
                Op::delete(keys::repo(scope, name)),
                Op::delete(keys::lifecycle_preview(scope, name)),
            ];
            let mut compares = vec![Compare::ModRevision(keys::repo(scope, name), rev)];
            for kv in &images {
                compares.push(Compare::ModRevision(kv.key.clone(), kv.mod_revision));
                ops.push(Op::delete(kv.key.clone()));
            }
            for prefix in [
                keys::tags(scope, name),
                keys::links(scope, name),
                keys::referrers_of_repo(scope, name),
                keys::parents_of_repo(scope, name),
            ] {
                for kv in self.store.range(&prefix, None, 0)? {
                    ops.push(Op::delete(kv.key));
                }
            }
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(repo);
            }
            // A concurrent push changed the repository; look again.
        }
    }

    /// Read-modify-write of a repository record with compare-and-swap.
    pub(crate) fn update_repository(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        mut change: impl FnMut(&mut Repository) -> Result<()>,
    ) -> Result<Repository> {
        let updated = berth_store::update(&*self.store, &keys::repo(scope, name), |repo| {
            let Some(mut repo) = repo else {
                return Err(RegistryError::RepositoryNotFound {
                    name: name.clone(),
                    registry: scope.account.to_string(),
                });
            };
            change(&mut repo)?;
            Ok(berth_store::Change::Put(repo))
        })?;
        Ok(updated.expect("a Put leaves its value stored"))
    }

    pub fn put_image_tag_mutability(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        mutability: TagMutability,
        exclusions: &[TagMutabilityExclusionFilter],
    ) -> Result<Repository> {
        check_tag_mutability(mutability, exclusions)?;
        self.update_repository(scope, name, |r| {
            r.image_tag_mutability = mutability;
            r.image_tag_mutability_exclusion_filters = exclusions.to_vec();
            Ok(())
        })
    }

    pub fn put_image_scanning_configuration(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        scan_on_push: bool,
    ) -> Result<Repository> {
        self.update_repository(scope, name, |r| {
            r.scan_on_push = scan_on_push;
            Ok(())
        })
    }

    pub fn tag_repository(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        tags: &[EcrTag],
    ) -> Result<Repository> {
        self.update_repository(scope, name, |r| merge_tags(&mut r.tags, tags))
    }

    pub fn untag_repository(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        tag_keys: &[String],
    ) -> Result<Repository> {
        self.update_repository(scope, name, |r| {
            r.tags.retain(|t| !tag_keys.contains(&t.key));
            Ok(())
        })
    }

    pub fn set_repository_policy(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        policy: &str,
    ) -> Result<Repository> {
        check_policy(policy)?;
        self.update_repository(scope, name, |r| {
            r.policy = Some(policy.to_string());
            Ok(())
        })
    }

    pub fn get_repository_policy(&self, scope: &Scope, name: &RepositoryName) -> Result<String> {
        self.repository(scope, name)?.policy.ok_or_else(|| {
            RegistryError::RepositoryPolicyNotFound {
                name: name.clone(),
                registry: scope.account.to_string(),
            }
        })
    }

    pub fn delete_repository_policy(&self, scope: &Scope, name: &RepositoryName) -> Result<String> {
        let policy = self.get_repository_policy(scope, name)?;
        self.update_repository(scope, name, |r| {
            r.policy = None;
            Ok(())
        })?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_validated() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
        assert!(check_policy(ok).is_ok());
        for bad in [
            "not json",
            "[]",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"x"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"x"}]}"#,
            r#"{"Version":"1999","Statement":{"Effect":"Allow","Principal":"*","Action":"x"}}"#,
        ] {
            assert!(check_policy(bad).is_err(), "{bad}");
        }
    }
}
