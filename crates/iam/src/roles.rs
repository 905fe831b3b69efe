//! IAM roles: CreateRole, GetRole, ListRoles, UpdateRole, UpdateAssumeRolePolicy,
//! DeleteRole (service-linked roles in `service_linked.rs`, instance profiles in
//! `instance_profiles.rs`). A role's trust policy (its assume-role policy document) says who may
//! assume it; its permissions come from the policies attached to it (`attachments.rs`).

use std::collections::BTreeMap;

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::policies::check_policy;
use crate::policy::PolicyType;
use crate::users::{check_name, check_path};
use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch};

/// A trust policy's size limit (IAM's default quota).
pub const MAX_TRUST_POLICY_SIZE: usize = 2048;
/// A role's session duration bounds, seconds (IAM: one to twelve hours; one by default).
pub const MIN_SESSION: i64 = 3600;
pub const MAX_SESSION: i64 = 43_200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub path: String,
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: f64,
    pub assume_role_policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// When the role was last assumed, and in which region.
    #[serde(default)]
    pub last_used: Option<(f64, String)>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// The AWS service that owns a service-linked role (`ecs.amazonaws.com`, …).
    #[serde(default)]
    pub service_linked: Option<String>,
}

impl Role {
    /// Whether an AWS service owns this role (`service_linked.rs` makes those).
    pub fn is_service_linked(&self) -> bool {
        self.service_linked.is_some()
    }
}

/// The refusal of a change to a service-linked role, as IAM words it.
pub(crate) fn unmodifiable(role_name: &str) -> IamError {
    IamError::UnmodifiableEntity(format!(
        "Cannot perform the operation on the protected role '{role_name}' - this role is only modifiable by AWS"
    ))
}

/// CreateRole's parameters.
#[derive(Debug, Clone, Default)]
pub struct CreateRole {
    pub role_name: String,
    pub assume_role_policy_document: String,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: Vec<(String, String)>,
}

pub(crate) fn role_key(account: &str, name: &str) -> String {
    format!("iam/{account}/roles/{}", name.to_ascii_lowercase())
}

pub(crate) fn no_such_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn check_session(seconds: i64) -> Result<()> {
    if (MIN_SESSION..=MAX_SESSION).contains(&seconds) {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value less than or equal to {MAX_SESSION}"
        )))
    }
}

impl Iam {
    pub fn create_role(&self, account: &str, req: CreateRole) -> Result<Role> {
        check_name("roleName", &req.role_name, 64)?;
        let path = req.path.unwrap_or_else(|| "/".into());
        check_path(&path)?;
        check_policy(
            &req.assume_role_policy_document,
            MAX_TRUST_POLICY_SIZE,
            PolicyType::Resource,
        )?;
        let max_session_duration = req.max_session_duration.unwrap_or(MIN_SESSION);
        check_session(max_session_duration)?;
        let role = Role {
            arn: format!("arn:aws:iam::{account}:role{path}{}", req.role_name),
            path,
            role_id: ids::role_id(),
            role_name: req.role_name,
            create_date: now_epoch(),
            assume_role_policy_document: req.assume_role_policy_document,
            description: req.description,
            max_session_duration,
            tags: req.tags,
            last_used: None,
            attached_policies: Vec::new(),
            inline_policies: BTreeMap::new(),
            service_linked: None,
        };
        let key = role_key(account, &role.role_name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&role))],
        )? {
            TxnOutcome::Committed(_) => Ok(role),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "Role with name {} already exists.",
                role.role_name
            ))),
        }
    }

    pub fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        let key = role_key(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such_role(name))?;
        decode(&key, &kv.value)
    }

    pub fn list_roles(&self, account: &str, path_prefix: Option<&str>) -> Result<Vec<Role>> {
        let mut roles = Vec::new();
        for kv in self
            .store
            .range(&format!("iam/{account}/roles/"), None, 0)?
        {
            let role: Role = decode(&kv.key, &kv.value)?;
            if path_prefix.is_none_or(|p| role.path.starts_with(p)) {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    /// Rewrites a role with `change` under compare-and-swap.
    pub(crate) fn change_role(
        &self,
        account: &str,
        name: &str,
        mut change: impl FnMut(&mut Role) -> Result<()>,
    ) -> Result<Role> {
        loop {
            let key = role_key(account, name);
            let kv = self.store.get(&key)?.ok_or_else(|| no_such_role(name))?;
            let mut role: Role = decode(&key, &kv.value)?;
            change(&mut role)?;
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                    &[Op::put(&key, encode(&role))],
                )?
                .is_committed()
            {
                return Ok(role);
            }
        }
    }

    /// UpdateRole: description and maximum session duration.
    pub fn update_role(
        &self,
        account: &str,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<i64>,
    ) -> Result<()> {
        if let Some(seconds) = max_session_duration {
            check_session(seconds)?;
        }
        self.change_role(account, name, |role| {
            if role.is_service_linked() {
                return Err(unmodifiable(&role.role_name));
            }
            if let Some(d) = description {
                role.description = Some(d.to_string());
            }
            if let Some(s) = max_session_duration {
                role.max_session_duration = s;
            }
            Ok(())
        })
        .map(|_| ())
    }

    pub fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<()> {
        check_policy(document, MAX_TRUST_POLICY_SIZE, PolicyType::Resource)?;
        self.change_role(account, name, |role| {
            if role.is_service_linked() {
                return Err(unmodifiable(&role.role_name));
            }
            role.assume_role_policy_document = document.to_string();
            Ok(())
        })
        .map(|_| ())
    }

    /// Records that the role was just assumed, in `region` (GetRole's `RoleLastUsed`).
    pub fn role_used(&self, account: &str, name: &str, region: &str) -> Result<()> {
        self.change_role(account, name, |role| {
            role.last_used = Some((now_epoch(), region.to_string()));
            Ok(())
        })
        .map(|_| ())
    }

    /// DeleteRole: refused for a service-linked role (DeleteServiceLinkedRole deletes
    /// those), while an instance profile holds it, and while policies are attached to it or
    /// put into it.
    pub fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        loop {
            let key = role_key(account, name);
            let kv = self.store.get(&key)?.ok_or_else(|| no_such_role(name))?;
            let role: Role = decode(&key, &kv.value)?;
            if role.is_service_linked() {
                return Err(unmodifiable(&role.role_name));
            }
            if !self.profiles_holding(account, name)?.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove roles from instance profile first.".into(),
                ));
            }
            if !role.attached_policies.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must detach all policies first.".into(),
                ));
            }
            if !role.inline_policies.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                    &[Op::delete(&key)],
                )?
                .is_committed()
            {
                return Ok(());
            }
        }
    }
}
