//! Tags of users, roles and instance profiles: TagUser, UntagUser, ListUserTags, TagRole,
//! UntagRole, ListRoleTags, TagInstanceProfile, UntagInstanceProfile,
//! ListInstanceProfileTags. A tag with a key the resource already has replaces it.

use berth_store::{Compare, Op};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::instance_profiles::{InstanceProfile, no_such_instance_profile, profile_key};
use crate::roles::{Role, no_such_role, role_key};
use crate::users::{User, no_such_user};
use crate::{Iam, IamError, Result, decode, encode, user_key};

/// Tags one IAM resource may have, at most (IAM's quota).
pub const MAX_TAGS: usize = 50;

/// The resource a tag action is about.
#[derive(Debug, Clone, Copy)]
pub enum Tagged<'a> {
    User(&'a str),
    Role(&'a str),
    InstanceProfile(&'a str),
}

/// A resource's tags: (key, value) in the order they were given.
type Tags = Vec<(String, String)>;

/// A change to a resource's tags.
type TagChange<'a> = &'a mut dyn FnMut(&mut Tags) -> Result<()>;

trait HasTags: Serialize + DeserializeOwned {
    fn tags(&mut self) -> &mut Vec<(String, String)>;
}

impl HasTags for User {
    fn tags(&mut self) -> &mut Vec<(String, String)> {
        &mut self.tags
    }
}

impl HasTags for Role {
    fn tags(&mut self) -> &mut Vec<(String, String)> {
        &mut self.tags
    }
}

impl HasTags for InstanceProfile {
    fn tags(&mut self) -> &mut Vec<(String, String)> {
        &mut self.tags
    }
}

/// IAM's checks of tag keys and values (1–128 and 0–256 characters).
fn check_tags(tags: &[(String, String)]) -> Result<()> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{key}' at 'tags.member.key' failed to satisfy constraint: Member must have length less than or equal to 128"
            )));
        }
        if value.chars().count() > 256 {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{value}' at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256"
            )));
        }
    }
    Ok(())
}

impl Iam {
    fn change_tags(&self, account: &str, what: Tagged<'_>, change: TagChange<'_>) -> Result<()> {
        match what {
            Tagged::User(name) => {
                self.change_tagged::<User>(user_key(account, name), || no_such_user(name), change)
            }
            Tagged::Role(name) => {
                self.change_tagged::<Role>(role_key(account, name), || no_such_role(name), change)
            }
            Tagged::InstanceProfile(name) => self.change_tagged::<InstanceProfile>(
                profile_key(account, name),
                || no_such_instance_profile(name),
                change,
            ),
        }
    }

    fn change_tagged<R: HasTags>(
        &self,
        key: String,
        missing: impl Fn() -> IamError,
        change: TagChange<'_>,
    ) -> Result<()> {
        loop {
            let kv = self.store.get(&key)?.ok_or_else(&missing)?;
            let mut record: R = decode(&key, &kv.value)?;
            change(record.tags())?;
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                    &[Op::put(&key, encode(&record))],
                )?
                .is_committed()
            {
                return Ok(());
            }
        }
    }

    /// Tag{User,Role,InstanceProfile}.
    pub fn tag(&self, account: &str, what: Tagged<'_>, tags: &[(String, String)]) -> Result<()> {
        check_tags(tags)?;
        self.change_tags(account, what, &mut |current| {
            for (key, value) in tags {
                match current.iter_mut().find(|(k, _)| k == key) {
                    Some(existing) => existing.1 = value.clone(),
                    None => current.push((key.clone(), value.clone())),
                }
            }
            if current.len() > MAX_TAGS {
                return Err(IamError::LimitExceeded(
                    "The number of tags has reached the maximum limit.".into(),
                ));
            }
            Ok(())
        })
    }

    /// Untag{User,Role,InstanceProfile}: keys the resource does not have are ignored.
    pub fn untag(&self, account: &str, what: Tagged<'_>, keys: &[&str]) -> Result<()> {
        self.change_tags(account, what, &mut |current| {
            current.retain(|(k, _)| !keys.contains(&k.as_str()));
            Ok(())
        })
    }

    /// List{User,Role,InstanceProfile}Tags.
    pub fn list_tags(&self, account: &str, what: Tagged<'_>) -> Result<Vec<(String, String)>> {
        Ok(match what {
            Tagged::User(name) => self.get_user(account, name)?.tags,
            Tagged::Role(name) => self.get_role(account, name)?.tags,
            Tagged::InstanceProfile(name) => self.get_instance_profile(account, name)?.0.tags,
        })
    }
}
