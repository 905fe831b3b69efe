//! Lifecycle policies over the store: Put/Get/DeleteLifecyclePolicy, the preview
//! (StartLifecyclePolicyPreview records it IN_PROGRESS, `complete_lifecycle_policy_preview`
//! evaluates it and records it COMPLETE) and the run that expires images, which the server
//! calls from its housekeeping loop (ECR runs policies within 24 hours; it has no operation
//! to run one at once).

use berth_model::{Digest, RepositoryName};
use serde::{Deserialize, Serialize};

use crate::lifecycle::{LifecycleImage, parse_lifecycle_policy, plan_expirations};
use crate::{
    ImageRecord, Registry, RegistryError, Repository, Result, Scope, decode, keys, now_epoch,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreviewStatus {
    InProgress,
    Complete,
}

impl PreviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewStatus::InProgress => "IN_PROGRESS",
            PreviewStatus::Complete => "COMPLETE",
        }
    }
}

/// One image the previewed policy would expire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResult {
    pub image_digest: Digest,
    pub image_tags: Vec<String>,
    pub image_pushed_at: f64,
    pub applied_rule_priority: i64,
}

/// The last preview of a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePreview {
    pub policy_text: String,
    pub status: PreviewStatus,
    pub started_at: f64,
    #[serde(default)]
    pub results: Vec<PreviewResult>,
}

/// A repository's lifecycle policy (GetLifecyclePolicy).
#[derive(Debug, Clone)]
pub struct LifecyclePolicyState {
    pub text: String,
    pub last_evaluated_at: Option<f64>,
}

impl Registry {
    fn lifecycle_policy_not_found(scope: &Scope, name: &RepositoryName) -> RegistryError {
        RegistryError::LifecyclePolicyNotFound {
            name: name.clone(),
            registry: scope.account.to_string(),
        }
    }

    pub fn put_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        text: &str,
    ) -> Result<()> {
        parse_lifecycle_policy(text)?;
        self.update_repository(scope, name, |r| {
            r.lifecycle_policy = Some(text.to_string());
            Ok(())
        })?;
        Ok(())
    }

    pub fn get_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<LifecyclePolicyState> {
        let repo = self.repository(scope, name)?;
        match repo.lifecycle_policy {
            Some(text) => Ok(LifecyclePolicyState {
                text,
                last_evaluated_at: repo.lifecycle_evaluated_at,
            }),
            None => Err(Self::lifecycle_policy_not_found(scope, name)),
        }
    }

    pub fn delete_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<LifecyclePolicyState> {
        let mut removed = None;
        self.update_repository(scope, name, |r| {
            let text = r
                .lifecycle_policy
                .take()
                .ok_or_else(|| Self::lifecycle_policy_not_found(scope, name))?;
            removed = Some(LifecyclePolicyState {
                text,
                last_evaluated_at: r.lifecycle_evaluated_at.take(),
            });
            Ok(())
        })?;
        Ok(removed.expect("set when the update succeeded"))
    }

    /// Record a preview of `text` (or of the repository's policy) as IN_PROGRESS; the
    /// caller then runs `complete_lifecycle_policy_preview`.
    pub fn start_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        text: Option<&str>,
    ) -> Result<LifecyclePreview> {
        let repo = self.repository(scope, name)?;
        let policy_text = match text {
            Some(t) => t.to_string(),
            None => repo
                .lifecycle_policy
                .ok_or_else(|| Self::lifecycle_policy_not_found(scope, name))?,
        };
        parse_lifecycle_policy(&policy_text)?;
        let preview = LifecyclePreview {
            policy_text,
            status: PreviewStatus::InProgress,
            started_at: now_epoch(),
            results: Vec::new(),
        };
        let key = keys::lifecycle_preview(scope, name);
        berth_store::upsert(&*self.store, &key, |_: Option<LifecyclePreview>| {
            Ok::<_, RegistryError>(preview.clone())
        })
    }

    /// Evaluate the repository's IN_PROGRESS preview against its images and record the
    /// results COMPLETE. A preview started meanwhile is left to its own completion.
    pub fn complete_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<()> {
        let key = keys::lifecycle_preview(scope, name);
        let Some(kv) = self.store.get(&key)? else {
            return Ok(());
        };
        let preview: LifecyclePreview = decode(&kv)?;
        if preview.status != PreviewStatus::InProgress {
            return Ok(());
        }
        let policy = parse_lifecycle_policy(&preview.policy_text)?;
        let images = self.lifecycle_images(scope, name)?;
        let plan = plan_expirations(&policy, &images, now_epoch());
        let results: Vec<PreviewResult> = plan
            .into_iter()
            .filter_map(|e| {
                let image = images.iter().find(|i| i.digest == e.digest)?;
                Some(PreviewResult {
                    image_digest: e.digest,
                    image_tags: image.tags.clone(),
                    image_pushed_at: image.pushed_at,
                    applied_rule_priority: e.rule_priority,
                })
            })
            .collect();
        let started_at = preview.started_at;
        berth_store::update(&*self.store, &key, |current: Option<LifecyclePreview>| {
            Ok::<_, RegistryError>(match current {
                Some(mut p)
                    if p.started_at == started_at && p.status == PreviewStatus::InProgress =>
                {
                    p.status = PreviewStatus::Complete;
                    p.results = results.clone();
                    berth_store::Change::Put(p)
                }
                _ => berth_store::Change::Keep,
            })
        })?;
        Ok(())
    }

    pub fn lifecycle_policy_preview(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<LifecyclePreview> {
        self.repository(scope, name)?;
        match self.store.get(&keys::lifecycle_preview(scope, name))? {
            Some(kv) => decode(&kv),
            None => Err(RegistryError::LifecyclePolicyPreviewNotFound {
                name: name.clone(),
                registry: scope.account.to_string(),
            }),
        }
    }

    /// The repository's images as the lifecycle planner sees them.
    fn lifecycle_images(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> Result<Vec<LifecycleImage>> {
        let mut tags = self.tags_by_digest(scope, name)?;
        self.store
            .range(&keys::images(scope, name), None, 0)?
            .iter()
            .map(|kv| {
                let record: ImageRecord = decode(kv)?;
                let mut image_tags = tags.remove(&record.digest).unwrap_or_default();
                image_tags.sort();
                Ok(LifecycleImage {
                    digest: record.digest,
                    tags: image_tags,
                    pushed_at: record.pushed_at,
                })
            })
            .collect()
    }

    /// Run one repository's lifecycle policy: expire what it selects (as BatchDeleteImage
    /// by digest does; the blobs go with the next garbage collection) and record the time.
    /// An image that an index still lists stays. Returns how many images were expired.
    pub fn apply_lifecycle_policy(&self, scope: &Scope, name: &RepositoryName) -> Result<usize> {
        let Some(text) = self.repository(scope, name)?.lifecycle_policy else {
            return Ok(0);
        };
        let policy = parse_lifecycle_policy(&text)?;
        let now = now_epoch();
        let plan = plan_expirations(&policy, &self.lifecycle_images(scope, name)?, now);
        let mut expired = 0;
        for e in plan {
            match self.delete_manifest(scope, name, &e.digest) {
                Ok(()) => expired += 1,
                Err(RegistryError::ManifestUnknown(_))
                | Err(RegistryError::ImageReferencedByManifestList(_)) => {}
                Err(err) => return Err(err),
            }
        }
        self.update_repository(scope, name, |r| {
            if r.lifecycle_policy.is_some() {
                r.lifecycle_evaluated_at = Some(now);
            }
            Ok(())
        })?;
        Ok(expired)
    }

    /// Run every repository's lifecycle policy, in every account and region (the server's
    /// daily housekeeping). Returns how many images were expired.
    pub fn apply_lifecycle_policies(&self) -> Result<usize> {
        let mut expired = 0;
        for scope in self.scopes()? {
            for kv in self.store.range(&keys::repos(&scope), None, 0)? {
                let repo: Repository = decode(&kv)?;
                if repo.lifecycle_policy.is_none() {
                    continue;
                }
                match self.apply_lifecycle_policy(&scope, &repo.name) {
                    Ok(n) => expired += n,
                    // Deleted meanwhile.
                    Err(RegistryError::RepositoryNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(expired)
    }

    /// The accounts and regions that have ECR records: one key read per scope, skipping
    /// over each scope's keys (`ecr/{account}/{region}/...`, all ASCII below DEL).
    fn scopes(&self) -> Result<Vec<Scope>> {
        let mut scopes = Vec::new();
        let mut after: Option<String> = None;
        while let Some(kv) = self
            .store
            .range(keys::ECR, after.as_deref(), 1)?
            .into_iter()
            .next()
        {
            let mut parts = kv.key[keys::ECR.len()..].splitn(3, '/');
            let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
                break;
            };
            after = Some(format!("{}{account}/{region}/\u{7f}", keys::ECR));
            if let (Ok(account), Ok(region)) = (account.parse(), region.parse()) {
                scopes.push(Scope::new(account, region));
            }
        }
        Ok(scopes)
    }
}
