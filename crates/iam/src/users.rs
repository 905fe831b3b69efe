//! IAM users: CreateUser, GetUser, ListUsers, DeleteUser, and their tags (TagUser,
//! UntagUser, ListUserTags in `tags.rs`).

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch, user_key, users_prefix};

/// An IAM user as IAM shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub path: String,
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    /// Seconds since the epoch.
    pub create_date: f64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The user's access key ids (at most two).
    #[serde(default)]
    pub access_keys: Vec<String>,
    /// ARNs of the managed policies attached to the user.
    #[serde(default)]
    pub attached_policies: Vec<String>,
    /// The user's inline policies: name → document.
    #[serde(default)]
    pub inline_policies: std::collections::BTreeMap<String, String>,
    /// The names of the groups the user is in (their records list the user too).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// CreateUser's parameters.
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub user_name: String,
    pub path: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// IAM's pattern for user, group and role names: `[\w+=,.@-]+`, 1 to 64 characters.
pub(crate) fn check_name(member: &str, name: &str, max: usize) -> Result<()> {
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if name.is_empty() || name.len() > max {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    if !ok {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// IAM's path: `/`, or `/` + printable ASCII + `/`, up to 512 characters.
pub(crate) fn check_path(path: &str) -> Result<()> {
    let ok = path == "/"
        || (path.len() <= 512
            && path.len() >= 2
            && path.starts_with('/')
            && path.ends_with('/')
            && path.chars().all(|c| ('!'..='~').contains(&c)));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".to_string(),
        ))
    }
}

pub(crate) fn no_such_user(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

impl Iam {
    pub fn create_user(&self, account: &str, req: CreateUser) -> Result<User> {
        check_name("userName", &req.user_name, 64)?;
        let path = req.path.unwrap_or_else(|| "/".into());
        check_path(&path)?;
        let user = User {
            arn: format!("arn:aws:iam::{account}:user{path}{}", req.user_name),
            path,
            user_id: ids::user_id(),
            user_name: req.user_name,
            create_date: now_epoch(),
            tags: req.tags,
            access_keys: Vec::new(),
            attached_policies: Vec::new(),
            inline_policies: Default::default(),
            groups: Vec::new(),
        };
        let key = user_key(account, &user.user_name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&user))],
        )? {
            TxnOutcome::Committed(_) => Ok(user),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "User with name {} already exists.",
                user.user_name
            ))),
        }
    }

    pub fn get_user(&self, account: &str, name: &str) -> Result<User> {
        let key = user_key(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such_user(name))?;
        decode(&key, &kv.value)
    }

    /// ListUsers: by name, those whose path starts with `path_prefix`.
    pub fn list_users(&self, account: &str, path_prefix: Option<&str>) -> Result<Vec<User>> {
        let mut users = Vec::new();
        for kv in self.store.range(&users_prefix(account), None, 0)? {
            let user: User = decode(&kv.key, &kv.value)?;
            if path_prefix.is_none_or(|p| user.path.starts_with(p)) {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// DeleteUser: refused while the user has access keys (IAM's DeleteConflict).
    pub fn delete_user(&self, account: &str, name: &str) -> Result<()> {
        let key = user_key(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such_user(name))?;
        let user: User = decode(&key, &kv.value)?;
        if !user.access_keys.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        if !user.groups.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        if !user.attached_policies.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        if !user.inline_policies.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), kv.mod_revision)],
            &[Op::delete(&key)],
        )? {
            TxnOutcome::Committed(_) => Ok(()),
            // Changed meanwhile (a key was added): look again.
            TxnOutcome::Conflict => self.delete_user(account, name),
        }
    }
}
