//! Instance profiles: CreateInstanceProfile, GetInstanceProfile, ListInstanceProfiles,
//! DeleteInstanceProfile, AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
//! ListInstanceProfilesForRole. A profile holds at most one role (IAM's quota); the role
//! cannot be deleted while a profile holds it.

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::roles::{Role, no_such_role, role_key};
use crate::users::{check_name, check_path};
use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch};

/// Roles one instance profile may hold (IAM's quota, which cannot be raised).
pub const MAX_ROLES_PER_PROFILE: usize = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceProfile {
    pub path: String,
    pub instance_profile_name: String,
    pub instance_profile_id: String,
    pub arn: String,
    pub create_date: f64,
    /// The names of the roles in it (at most one).
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

pub(crate) fn profile_key(account: &str, name: &str) -> String {
    format!(
        "iam/{account}/instance-profiles/{}",
        name.to_ascii_lowercase()
    )
}

pub(crate) fn no_such_instance_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

impl Iam {
    pub fn create_instance_profile(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<InstanceProfile> {
        check_name("instanceProfileName", name, 128)?;
        let path = path.unwrap_or("/").to_string();
        check_path(&path)?;
        let profile = InstanceProfile {
            arn: format!("arn:aws:iam::{account}:instance-profile{path}{name}"),
            path,
            instance_profile_name: name.to_string(),
            instance_profile_id: ids::instance_profile_id(),
            create_date: now_epoch(),
            roles: Vec::new(),
            tags,
        };
        let key = profile_key(account, name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&profile))],
        )? {
            TxnOutcome::Committed(_) => Ok(profile),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "Instance Profile {name} already exists."
            ))),
        }
    }

    /// A profile and the records of its roles (GetInstanceProfile shows them whole).
    pub fn get_instance_profile(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(InstanceProfile, Vec<Role>)> {
        let key = profile_key(account, name);
        let kv = self
            .store
            .get(&key)?
            .ok_or_else(|| no_such_instance_profile(name))?;
        let profile: InstanceProfile = decode(&key, &kv.value)?;
        let roles = self.roles_of(account, &profile)?;
        Ok((profile, roles))
    }

    fn roles_of(&self, account: &str, profile: &InstanceProfile) -> Result<Vec<Role>> {
        let mut roles = Vec::new();
        for name in &profile.roles {
            match self.get_role(account, name) {
                Ok(role) => roles.push(role),
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(roles)
    }

    /// ListInstanceProfiles: by name, those whose path starts with `path_prefix`, each with
    /// its roles.
    pub fn list_instance_profiles(
        &self,
        account: &str,
        path_prefix: Option<&str>,
    ) -> Result<Vec<(InstanceProfile, Vec<Role>)>> {
        let mut out = Vec::new();
        for kv in self
            .store
            .range(&format!("iam/{account}/instance-profiles/"), None, 0)?
        {
            let profile: InstanceProfile = decode(&kv.key, &kv.value)?;
            if path_prefix.is_none_or(|p| profile.path.starts_with(p)) {
                let roles = self.roles_of(account, &profile)?;
                out.push((profile, roles));
            }
        }
        Ok(out)
    }

    /// ListInstanceProfilesForRole (the role must exist).
    pub fn list_instance_profiles_for_role(
        &self,
        account: &str,
        role_name: &str,
    ) -> Result<Vec<(InstanceProfile, Vec<Role>)>> {
        self.get_role(account, role_name)?;
        Ok(self
            .list_instance_profiles(account, None)?
            .into_iter()
            .filter(|(p, _)| p.roles.iter().any(|r| r.eq_ignore_ascii_case(role_name)))
            .collect())
    }

    /// The names of the profiles holding `role_name` (DeleteRole's check).
    pub(crate) fn profiles_holding(&self, account: &str, role_name: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for kv in self
            .store
            .range(&format!("iam/{account}/instance-profiles/"), None, 0)?
        {
            let profile: InstanceProfile = decode(&kv.key, &kv.value)?;
            if profile
                .roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case(role_name))
            {
                names.push(profile.instance_profile_name);
            }
        }
        Ok(names)
    }

    fn change_profile(
        &self,
        account: &str,
        name: &str,
        extra: &[Compare],
        mut change: impl FnMut(&mut InstanceProfile) -> Result<()>,
    ) -> Result<()> {
        loop {
            let key = profile_key(account, name);
            let kv = self
                .store
                .get(&key)?
                .ok_or_else(|| no_such_instance_profile(name))?;
            let mut profile: InstanceProfile = decode(&key, &kv.value)?;
            change(&mut profile)?;
            let mut compares = extra.to_vec();
            compares.push(Compare::ModRevision(key.clone(), kv.mod_revision));
            if self
                .store
                .txn(&compares, &[Op::put(&key, encode(&profile))])?
                .is_committed()
            {
                return Ok(());
            }
        }
    }

    /// AddRoleToInstanceProfile: one role per profile (LimitExceeded beyond it).
    pub fn add_role_to_instance_profile(
        &self,
        account: &str,
        profile_name: &str,
        role_name: &str,
    ) -> Result<()> {
        let rkey = role_key(account, role_name);
        let role_kv = self
            .store
            .get(&rkey)?
            .ok_or_else(|| no_such_role(role_name))?;
        let role: Role = decode(&rkey, &role_kv.value)?;
        // The role must still be the same one when the profile is written (not deleted
        // meanwhile): its record's creation is compared.
        let same_role = [Compare::CreateRevision(rkey, role_kv.create_revision)];
        self.change_profile(account, profile_name, &same_role, |profile| {
            if profile
                .roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&role.role_name))
            {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {MAX_ROLES_PER_PROFILE}"
                )));
            }
            if profile.roles.len() >= MAX_ROLES_PER_PROFILE {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {MAX_ROLES_PER_PROFILE}"
                )));
            }
            profile.roles.push(role.role_name.clone());
            Ok(())
        })
    }

    pub fn remove_role_from_instance_profile(
        &self,
        account: &str,
        profile_name: &str,
        role_name: &str,
    ) -> Result<()> {
        self.change_profile(account, profile_name, &[], |profile| {
            let before = profile.roles.len();
            profile.roles.retain(|r| !r.eq_ignore_ascii_case(role_name));
            if profile.roles.len() == before {
                return Err(no_such_role(role_name));
            }
            Ok(())
        })
    }

    /// DeleteInstanceProfile: refused while it holds a role.
    pub fn delete_instance_profile(&self, account: &str, name: &str) -> Result<()> {
        loop {
            let key = profile_key(account, name);
            let kv = self
                .store
                .get(&key)?
                .ok_or_else(|| no_such_instance_profile(name))?;
            let profile: InstanceProfile = decode(&key, &kv.value)?;
            if !profile.roles.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove roles from instance profile first.".into(),
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
