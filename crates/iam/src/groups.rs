//! IAM groups: CreateGroup, GetGroup, ListGroups, UpdateGroup, DeleteGroup, AddUserToGroup,
//! RemoveUserFromGroup, ListGroupsForUser. A group's policies (attached and inline, in
//! `attachments.rs` through `Holder::Group`) apply to its members: a user's identity
//! policies include those of every group it is in.
//!
//! Membership is kept on both sides, in one transaction: the group lists its members (GetGroup
//! and DeleteGroup read one record) and the user lists its groups (authorization reads the
//! user and then its groups, without scanning every group).

use std::collections::BTreeMap;

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::users::{User, check_name, check_path, no_such_user};
use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch, user_key};

/// Groups a user may be in, at most (IAM's quota).
pub const MAX_GROUPS_PER_USER: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub path: String,
    pub group_name: String,
    pub group_id: String,
    pub arn: String,
    pub create_date: f64,
    /// The members' user names, in the order they were added.
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
}

pub(crate) fn group_key(account: &str, name: &str) -> String {
    format!("iam/{account}/groups/{}", name.to_ascii_lowercase())
}

pub(crate) fn no_such_group(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The group with name {name} cannot be found."))
}

impl Iam {
    pub fn create_group(&self, account: &str, name: &str, path: Option<&str>) -> Result<Group> {
        check_name("groupName", name, 128)?;
        let path = path.unwrap_or("/").to_string();
        check_path(&path)?;
        let group = Group {
            arn: format!("arn:aws:iam::{account}:group{path}{name}"),
            path,
            group_name: name.to_string(),
            group_id: ids::group_id(),
            create_date: now_epoch(),
            members: Vec::new(),
            attached_policies: Vec::new(),
            inline_policies: BTreeMap::new(),
        };
        let key = group_key(account, name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&group))],
        )? {
            TxnOutcome::Committed(_) => Ok(group),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "Group with name {name} already exists."
            ))),
        }
    }

    pub fn get_group(&self, account: &str, name: &str) -> Result<Group> {
        self.group_at(account, name).map(|(g, _)| g)
    }

    fn group_at(&self, account: &str, name: &str) -> Result<(Group, u64)> {
        let key = group_key(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such_group(name))?;
        Ok((decode(&key, &kv.value)?, kv.mod_revision))
    }

    /// GetGroup: the group and its members' records.
    pub fn get_group_with_users(&self, account: &str, name: &str) -> Result<(Group, Vec<User>)> {
        let group = self.get_group(account, name)?;
        let mut users = Vec::new();
        for member in &group.members {
            match self.get_user(account, member) {
                Ok(user) => users.push(user),
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((group, users))
    }

    /// ListGroups: by name, those whose path starts with `path_prefix`.
    pub fn list_groups(&self, account: &str, path_prefix: Option<&str>) -> Result<Vec<Group>> {
        let mut groups = Vec::new();
        for kv in self
            .store
            .range(&format!("iam/{account}/groups/"), None, 0)?
        {
            let group: Group = decode(&kv.key, &kv.value)?;
            if path_prefix.is_none_or(|p| group.path.starts_with(p)) {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    /// ListGroupsForUser: the groups the user is in.
    pub fn list_groups_for_user(&self, account: &str, user_name: &str) -> Result<Vec<Group>> {
        let user = self.get_user(account, user_name)?;
        let mut groups = Vec::new();
        for name in &user.groups {
            match self.get_group(account, name) {
                Ok(group) => groups.push(group),
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        groups.sort_by(|a, b| a.group_name.cmp(&b.group_name));
        Ok(groups)
    }

    /// Reads the user and the group, lets `change` rewrite both, and writes them in one
    /// transaction guarded by both revisions.
    fn change_membership(
        &self,
        account: &str,
        group_name: &str,
        user_name: &str,
        mut change: impl FnMut(&mut Group, &mut User) -> Result<()>,
    ) -> Result<()> {
        loop {
            let (mut group, group_revision) = self.group_at(account, group_name)?;
            let ukey = user_key(account, user_name);
            let kv = self
                .store
                .get(&ukey)?
                .ok_or_else(|| no_such_user(user_name))?;
            let mut user: User = decode(&ukey, &kv.value)?;
            change(&mut group, &mut user)?;
            let gkey = group_key(account, group_name);
            if self
                .store
                .txn(
                    &[
                        Compare::ModRevision(gkey.clone(), group_revision),
                        Compare::ModRevision(ukey.clone(), kv.mod_revision),
                    ],
                    &[
                        Op::put(&gkey, encode(&group)),
                        Op::put(&ukey, encode(&user)),
                    ],
                )?
                .is_committed()
            {
                return Ok(());
            }
        }
    }

    /// AddUserToGroup: adding a member again changes nothing, as in IAM.
    pub fn add_user_to_group(
        &self,
        account: &str,
        group_name: &str,
        user_name: &str,
    ) -> Result<()> {
        self.change_membership(account, group_name, user_name, |group, user| {
            if user
                .groups
                .iter()
                .any(|g| g.eq_ignore_ascii_case(&group.group_name))
            {
                return Ok(());
            }
            if user.groups.len() >= MAX_GROUPS_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                )));
            }
            user.groups.push(group.group_name.clone());
            group.members.push(user.user_name.clone());
            Ok(())
        })
    }

    pub fn remove_user_from_group(
        &self,
        account: &str,
        group_name: &str,
        user_name: &str,
    ) -> Result<()> {
        self.change_membership(account, group_name, user_name, |group, user| {
            let before = user.groups.len();
            user.groups
                .retain(|g| !g.eq_ignore_ascii_case(&group.group_name));
            if user.groups.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "The user with name {} cannot be found.",
                    user.user_name
                )));
            }
            group
                .members
                .retain(|m| !m.eq_ignore_ascii_case(&user.user_name));
            Ok(())
        })
    }

    /// UpdateGroup: a new name and/or path. A new name moves the record and renames the
    /// group in its members' records, all in one transaction.
    pub fn update_group(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<()> {
        if let Some(n) = new_name {
            check_name("newGroupName", n, 128)?;
        }
        if let Some(p) = new_path {
            check_path(p)?;
        }
        loop {
            let (mut group, revision) = self.group_at(account, name)?;
            let old_key = group_key(account, name);
            let mut compares = vec![Compare::ModRevision(old_key.clone(), revision)];
            let mut ops = Vec::new();
            if let Some(p) = new_path {
                group.path = p.to_string();
            }
            let renamed = new_name.filter(|n| *n != group.group_name);
            if let Some(n) = renamed {
                let new_key = group_key(account, n);
                if new_key != old_key {
                    compares.push(Compare::ModRevision(new_key.clone(), 0));
                    ops.push(Op::delete(&old_key));
                }
                for member in &group.members {
                    let ukey = user_key(account, member);
                    let Some(kv) = self.store.get(&ukey)? else {
                        continue;
                    };
                    let mut user: User = decode(&ukey, &kv.value)?;
                    for g in &mut user.groups {
                        if g.eq_ignore_ascii_case(&group.group_name) {
                            *g = n.to_string();
                        }
                    }
                    compares.push(Compare::ModRevision(ukey.clone(), kv.mod_revision));
                    ops.push(Op::put(&ukey, encode(&user)));
                }
                group.group_name = n.to_string();
            }
            group.arn = format!(
                "arn:aws:iam::{account}:group{}{}",
                group.path, group.group_name
            );
            ops.push(Op::put(
                group_key(account, &group.group_name),
                encode(&group),
            ));
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(());
            }
            if let Some(n) = renamed
                && group_key(account, n) != old_key
                && self.store.get(&group_key(account, n))?.is_some()
            {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Group with name {n} already exists."
                )));
            }
        }
    }

    /// DeleteGroup: refused while it has members or policies (IAM's DeleteConflict).
    pub fn delete_group(&self, account: &str, name: &str) -> Result<()> {
        loop {
            let (group, revision) = self.group_at(account, name)?;
            if !group.members.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove users from group first.".into(),
                ));
            }
            if !group.attached_policies.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must detach all policies first.".into(),
                ));
            }
            if !group.inline_policies.is_empty() {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            let key = group_key(account, name);
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
}
