//! Views across every entity of an account: ListEntitiesForPolicy (who a managed policy is
//! attached to), GetAccountAuthorizationDetails (users, groups, roles and managed policies
//! with everything that grants them permissions), and the attachment counts of AWS managed
//! policies (AWS's catalogue is shared, so their counts are the account's attachments,
//! counted when asked rather than stored).

use std::collections::HashMap;

use crate::groups::Group;
use crate::instance_profiles::InstanceProfile;
use crate::policies::{ManagedPolicy, aws_policies};
use crate::roles::Role;
use crate::users::User;
use crate::{Iam, Result, decode};

/// ListEntitiesForPolicy's answer: (name, unique id) of each kind, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyEntities {
    pub groups: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
}

/// Which kinds GetAccountAuthorizationDetails (and ListEntitiesForPolicy's
/// `EntityFilter`) include: all of them when none is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailFilter {
    pub users: bool,
    pub groups: bool,
    pub roles: bool,
    pub local_policies: bool,
    pub aws_policies: bool,
}

impl DetailFilter {
    pub const ALL: DetailFilter = DetailFilter {
        users: true,
        groups: true,
        roles: true,
        local_policies: true,
        aws_policies: true,
    };

    /// From IAM's `EntityType` values; `None` for an unknown one.
    pub fn from_names(names: &[&str]) -> Option<DetailFilter> {
        if names.is_empty() {
            return Some(DetailFilter::ALL);
        }
        let mut f = DetailFilter {
            users: false,
            groups: false,
            roles: false,
            local_policies: false,
            aws_policies: false,
        };
        for name in names {
            match *name {
                "User" => f.users = true,
                "Group" => f.groups = true,
                "Role" => f.roles = true,
                "LocalManagedPolicy" => f.local_policies = true,
                "AWSManagedPolicy" => f.aws_policies = true,
                _ => return None,
            }
        }
        Some(f)
    }
}

/// A role with the instance profiles holding it, each with its roles.
pub type RoleDetail = (Role, Vec<(InstanceProfile, Vec<Role>)>);

/// GetAccountAuthorizationDetails' answer.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationDetails {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Each role with the instance profiles holding it (and their roles).
    pub roles: Vec<RoleDetail>,
    /// Managed policies: the account's, and AWS's that are attached to something here.
    pub policies: Vec<ManagedPolicy>,
}

impl Iam {
    fn all_users(&self, account: &str) -> Result<Vec<User>> {
        self.list_users(account, None)
    }

    /// How many users, groups and roles each managed policy ARN is attached to.
    pub(crate) fn attachment_counts(&self, account: &str) -> Result<HashMap<String, u32>> {
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut add = |arns: &[String]| {
            for arn in arns {
                *counts.entry(arn.clone()).or_default() += 1;
            }
        };
        for user in self.all_users(account)? {
            add(&user.attached_policies);
        }
        for group in self.list_groups(account, None)? {
            add(&group.attached_policies);
        }
        for role in self.list_roles(account, None)? {
            add(&role.attached_policies);
        }
        Ok(counts)
    }

    /// ListEntitiesForPolicy: the users, groups and roles `arn` is attached to (the policy
    /// must exist), whose path starts with `path_prefix`, of the kinds `filter` names.
    /// Permissions boundaries are not kept, so `boundaries_only` finds none.
    pub fn list_entities_for_policy(
        &self,
        account: &str,
        arn: &str,
        filter: DetailFilter,
        path_prefix: Option<&str>,
        boundaries_only: bool,
    ) -> Result<PolicyEntities> {
        self.policy_at(account, arn)?;
        let mut out = PolicyEntities::default();
        if boundaries_only {
            return Ok(out);
        }
        let wanted = |path: &str, attached: &[String]| {
            path_prefix.is_none_or(|p| path.starts_with(p)) && attached.iter().any(|a| a == arn)
        };
        if filter.users {
            for u in self.all_users(account)? {
                if wanted(&u.path, &u.attached_policies) {
                    out.users.push((u.user_name, u.user_id));
                }
            }
        }
        if filter.groups {
            for g in self.list_groups(account, None)? {
                if wanted(&g.path, &g.attached_policies) {
                    out.groups.push((g.group_name, g.group_id));
                }
            }
        }
        if filter.roles {
            for r in self.list_roles(account, None)? {
                if wanted(&r.path, &r.attached_policies) {
                    out.roles.push((r.role_name, r.role_id));
                }
            }
        }
        Ok(out)
    }

    /// GetAccountAuthorizationDetails for the kinds `filter` names.
    pub fn account_authorization_details(
        &self,
        account: &str,
        filter: DetailFilter,
    ) -> Result<AuthorizationDetails> {
        let mut out = AuthorizationDetails::default();
        if filter.users {
            out.users = self.all_users(account)?;
        }
        if filter.groups {
            out.groups = self.list_groups(account, None)?;
        }
        if filter.roles {
            let profiles = self.list_instance_profiles(account, None)?;
            for role in self.list_roles(account, None)? {
                let holding = profiles
                    .iter()
                    .filter(|(p, _)| {
                        p.roles
                            .iter()
                            .any(|r| r.eq_ignore_ascii_case(&role.role_name))
                    })
                    .cloned()
                    .collect();
                out.roles.push((role, holding));
            }
        }
        if filter.local_policies || filter.aws_policies {
            let counts = self.attachment_counts(account)?;
            if filter.aws_policies {
                for mut p in aws_policies() {
                    p.attachment_count = counts.get(&p.arn).copied().unwrap_or(0);
                    // AWS lists its own policies only where the account uses them.
                    if p.attachment_count > 0 {
                        out.policies.push(p);
                    }
                }
            }
            if filter.local_policies {
                for kv in self
                    .store
                    .range(&format!("iam/{account}/policies/"), None, 0)?
                {
                    out.policies.push(decode(&kv.key, &kv.value)?);
                }
            }
            out.policies
                .sort_by(|a, b| a.policy_name.cmp(&b.policy_name));
        }
        Ok(out)
    }
}
