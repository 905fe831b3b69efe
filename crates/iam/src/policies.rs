//! Managed policies and their versions: CreatePolicy, GetPolicy, ListPolicies,
//! DeletePolicy, CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions,
//! DeletePolicyVersion, SetDefaultPolicyVersion — the account's own (customer managed)
//! and AWS's (`arn:aws:iam::aws:policy/…`, read-only, from `managed.rs`).

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::managed::{self, Catalogued};
use crate::policy::{Policy, PolicyError, PolicyType};
use crate::users::{check_name, check_path};
use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch};

/// A managed policy keeps at most five versions, as in IAM.
pub const MAX_VERSIONS: usize = 5;
/// A managed policy document's size limit, not counting white space.
pub const MAX_MANAGED_POLICY_SIZE: usize = 6144;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    pub create_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version_id: String,
    pub versions: Vec<PolicyVersion>,
    /// The next version's number (versions are never renumbered).
    pub next_version: u32,
    pub attachment_count: u32,
    pub create_date: f64,
    pub update_date: f64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl ManagedPolicy {
    /// The default version's document: the one that grants.
    pub fn default_document(&self) -> &str {
        self.versions
            .iter()
            .find(|v| v.version_id == self.default_version_id)
            .map_or("", |v| v.document.as_str())
    }

    /// Whether AWS manages it (its ARN's account is `aws`).
    pub fn is_aws_managed(&self) -> bool {
        self.arn.starts_with("arn:aws:iam::aws:policy/")
    }
}

/// CreatePolicy's parameters.
#[derive(Debug, Clone, Default)]
pub struct CreatePolicy {
    pub policy_name: String,
    pub document: String,
    pub path: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// Which policies ListPolicies shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope {
    All,
    Aws,
    Local,
}

fn policy_key(account: &str, name: &str) -> String {
    format!("iam/{account}/policies/{}", name.to_ascii_lowercase())
}

pub(crate) fn no_such_policy(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

/// The policy name an ARN of `account`'s policies names (the last path segment).
fn name_in(account: &str, arn: &str) -> Option<String> {
    let rest = arn.strip_prefix(&format!("arn:aws:iam::{account}:policy/"))?;
    rest.rsplit('/').next().map(str::to_string)
}

/// Checks a policy document as IAM does before storing it: within `limit` characters not
/// counting white space, and a policy of `kind` (identity policies name no principal; trust
/// and resource policies must), with IAM's MalformedPolicyDocument texts.
pub fn check_policy(document: &str, limit: usize, kind: PolicyType) -> Result<()> {
    let size = document.chars().filter(|c| !c.is_whitespace()).count();
    if size > limit {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {limit}"
        )));
    }
    Policy::parse(document, kind)
        .map(|_| ())
        .map_err(|e| match e {
            PolicyError::MalformedPolicyDocument(m) => IamError::MalformedPolicyDocument(m),
            PolicyError::LimitExceeded(m) => IamError::LimitExceeded(m),
        })
}

/// [`check_policy`] for an identity-based policy.
pub fn check_document(document: &str, limit: usize) -> Result<()> {
    check_policy(document, limit, PolicyType::Identity)
}

impl Iam {
    pub fn create_policy(&self, account: &str, req: CreatePolicy) -> Result<ManagedPolicy> {
        check_name("policyName", &req.policy_name, 128)?;
        let path = req.path.unwrap_or_else(|| "/".into());
        check_path(&path)?;
        check_document(&req.document, MAX_MANAGED_POLICY_SIZE)?;
        let now = now_epoch();
        let policy = ManagedPolicy {
            arn: format!("arn:aws:iam::{account}:policy{path}{}", req.policy_name),
            policy_id: ids::policy_id(),
            policy_name: req.policy_name,
            path,
            description: req.description,
            default_version_id: "v1".into(),
            versions: vec![PolicyVersion {
                version_id: "v1".into(),
                document: req.document,
                create_date: now,
            }],
            next_version: 2,
            attachment_count: 0,
            create_date: now,
            update_date: now,
            tags: req.tags,
        };
        let key = policy_key(account, &policy.policy_name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&policy))],
        )? {
            TxnOutcome::Committed(_) => Ok(policy),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                policy.policy_name
            ))),
        }
    }

    /// A policy by ARN: the account's own, or AWS's. With the store revision of an own one.
    pub(crate) fn policy_at(&self, account: &str, arn: &str) -> Result<(ManagedPolicy, u64)> {
        if let Some(policy) = aws_policy(arn) {
            return Ok((policy, 0));
        }
        let name = name_in(account, arn).ok_or_else(|| no_such_policy(arn))?;
        let key = policy_key(account, &name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such_policy(arn))?;
        let policy: ManagedPolicy = decode(&key, &kv.value)?;
        if policy.arn != arn {
            return Err(no_such_policy(arn));
        }
        Ok((policy, kv.mod_revision))
    }

    /// GetPolicy; an AWS managed policy's attachment count is the account's attachments.
    pub fn get_policy(&self, account: &str, arn: &str) -> Result<ManagedPolicy> {
        let (mut policy, _) = self.policy_at(account, arn)?;
        if policy.is_aws_managed() {
            policy.attachment_count = self
                .attachment_counts(account)?
                .get(arn)
                .copied()
                .unwrap_or(0);
        }
        Ok(policy)
    }

    /// ListPolicies: AWS's and/or the account's, by name; only attached ones if asked.
    pub fn list_policies(
        &self,
        account: &str,
        scope: PolicyScope,
        only_attached: bool,
        path_prefix: Option<&str>,
    ) -> Result<Vec<ManagedPolicy>> {
        let mut all = Vec::new();
        if scope != PolicyScope::Local {
            let counts = self.attachment_counts(account)?;
            all.extend(aws_policies().into_iter().map(|mut p| {
                p.attachment_count = counts.get(&p.arn).copied().unwrap_or(0);
                p
            }));
        }
        if scope != PolicyScope::Aws {
            for kv in self
                .store
                .range(&format!("iam/{account}/policies/"), None, 0)?
            {
                all.push(decode::<ManagedPolicy>(&kv.key, &kv.value)?);
            }
        }
        all.retain(|p| {
            (!only_attached || p.attachment_count > 0)
                && path_prefix.is_none_or(|pre| p.path.starts_with(pre))
        });
        all.sort_by(|a, b| a.policy_name.cmp(&b.policy_name));
        Ok(all)
    }

    /// Rewrites an own policy with `change` under compare-and-swap (AWS's are read-only).
    pub(crate) fn change_policy<T>(
        &self,
        account: &str,
        arn: &str,
        mut change: impl FnMut(&mut ManagedPolicy) -> Result<T>,
    ) -> Result<T> {
        loop {
            let (mut policy, revision) = self.policy_at(account, arn)?;
            if policy.is_aws_managed() {
                return Err(IamError::Validation(format!(
                    "Policy {arn} is an AWS managed policy and cannot be changed."
                )));
            }
            let out = change(&mut policy)?;
            let key = policy_key(account, &policy.policy_name);
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), revision)],
                    &[Op::put(&key, encode(&policy))],
                )?
                .is_committed()
            {
                return Ok(out);
            }
        }
    }

    /// DeletePolicy: refused while attached or while it has versions besides the default.
    pub fn delete_policy(&self, account: &str, arn: &str) -> Result<()> {
        loop {
            let (policy, revision) = self.policy_at(account, arn)?;
            if policy.is_aws_managed() {
                return Err(IamError::Validation(format!(
                    "Policy {arn} is an AWS managed policy and cannot be deleted."
                )));
            }
            if policy.attachment_count > 0 {
                return Err(IamError::DeleteConflict(
                    "Cannot delete a policy attached to entities.".into(),
                ));
            }
            if policy.versions.len() > 1 {
                return Err(IamError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
                ));
            }
            let key = policy_key(account, &policy.policy_name);
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), revision)],
                    &[Op::delete(&key)],
                )?
                .is_committed()
            {
                return Ok(());
            }
        }
    }

    pub fn create_policy_version(
        &self,
        account: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        check_document(document, MAX_MANAGED_POLICY_SIZE)?;
        self.change_policy(account, arn, |policy| {
            if policy.versions.len() >= MAX_VERSIONS {
                return Err(IamError::LimitExceeded(
                    "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into(),
                ));
            }
            let version = PolicyVersion {
                version_id: format!("v{}", policy.next_version),
                document: document.to_string(),
                create_date: now_epoch(),
            };
            policy.next_version += 1;
            if set_as_default {
                policy.default_version_id = version.version_id.clone();
            }
            policy.update_date = version.create_date;
            policy.versions.push(version.clone());
            Ok(version)
        })
    }

    pub fn get_policy_version(
        &self,
        account: &str,
        arn: &str,
        version_id: &str,
    ) -> Result<(PolicyVersion, bool)> {
        let policy = self.get_policy(account, arn)?;
        let version = policy
            .versions
            .iter()
            .find(|v| v.version_id == version_id)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                ))
            })?;
        let default = version.version_id == policy.default_version_id;
        Ok((version, default))
    }

    pub fn delete_policy_version(&self, account: &str, arn: &str, version_id: &str) -> Result<()> {
        self.change_policy(account, arn, |policy| {
            if policy.default_version_id == version_id {
                return Err(IamError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            let before = policy.versions.len();
            policy.versions.retain(|v| v.version_id != version_id);
            if policy.versions.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                )));
            }
            Ok(())
        })
    }

    pub fn set_default_policy_version(
        &self,
        account: &str,
        arn: &str,
        version_id: &str,
    ) -> Result<()> {
        self.change_policy(account, arn, |policy| {
            if !policy.versions.iter().any(|v| v.version_id == version_id) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                )));
            }
            policy.default_version_id = version_id.to_string();
            policy.update_date = now_epoch();
            Ok(())
        })
    }
}

fn policy(c: &Catalogued) -> ManagedPolicy {
    ManagedPolicy {
        policy_name: c.name.to_string(),
        // Stable per policy (AWS's own ids are not published with the documents).
        policy_id: format!("ANPA{:017X}", fnv(c.name)),
        arn: format!("arn:aws:iam::aws:policy{}{}", c.path, c.name),
        path: c.path.to_string(),
        description: Some(c.description.to_string()),
        default_version_id: c.version.to_string(),
        versions: vec![PolicyVersion {
            version_id: c.version.to_string(),
            document: c.document.to_string(),
            create_date: c.edited,
        }],
        next_version: 0,
        attachment_count: 0,
        create_date: c.created,
        update_date: c.edited,
        tags: Vec::new(),
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The AWS managed policy at `arn`, if it is one Berth knows.
pub(crate) fn aws_policy(arn: &str) -> Option<ManagedPolicy> {
    managed::CATALOGUE
        .iter()
        .find(|c| arn == format!("arn:aws:iam::aws:policy{}{}", c.path, c.name))
        .map(policy)
}

/// Every AWS managed policy Berth knows.
pub(crate) fn aws_policies() -> Vec<ManagedPolicy> {
    managed::CATALOGUE.iter().map(policy).collect()
}
