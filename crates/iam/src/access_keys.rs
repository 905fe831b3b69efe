//! Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey, and the
//! lookup SigV4 makes for every request signed with one (its secret and its owner).

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::users::{User, no_such_user};
use crate::{
    Iam, IamError, Principal, Result, access_key_key, decode, encode, ids, now_epoch, user_key,
};

/// A user may have two access keys at once, as in IAM.
pub const MAX_KEYS_PER_USER: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

impl AccessKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }

    pub fn parse(s: &str) -> Result<AccessKeyStatus> {
        match s {
            "Active" => Ok(AccessKeyStatus::Active),
            "Inactive" => Ok(AccessKeyStatus::Inactive),
            other => Err(IamError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            ))),
        }
    }
}

/// An access key, by its id (the secret is shown once, by CreateAccessKey).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: String,
    pub user_name: String,
    pub status: AccessKeyStatus,
    /// Seconds since the epoch.
    pub create_date: f64,
}

fn no_such_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
}

impl Iam {
    /// CreateAccessKey for `user_name` (at most two per user).
    pub fn create_access_key(&self, account: &str, user_name: &str) -> Result<AccessKey> {
        loop {
            let ukey = user_key(account, user_name);
            let kv = self
                .store
                .get(&ukey)?
                .ok_or_else(|| no_such_user(user_name))?;
            let mut user: User = decode(&ukey, &kv.value)?;
            if user.access_keys.len() >= MAX_KEYS_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
                )));
            }
            let key = AccessKey {
                access_key_id: ids::access_key_id(),
                secret_access_key: ids::secret(),
                account: account.to_string(),
                user_name: user.user_name.clone(),
                status: AccessKeyStatus::Active,
                create_date: now_epoch(),
            };
            user.access_keys.push(key.access_key_id.clone());
            let kkey = access_key_key(&key.access_key_id);
            let outcome = self.store.txn(
                &[
                    Compare::ModRevision(ukey.clone(), kv.mod_revision),
                    Compare::ModRevision(kkey.clone(), 0),
                ],
                &[Op::put(&ukey, encode(&user)), Op::put(&kkey, encode(&key))],
            )?;
            if outcome.is_committed() {
                return Ok(key);
            }
        }
    }

    /// ListAccessKeys of `user_name`, in the order they were made.
    pub fn list_access_keys(&self, account: &str, user_name: &str) -> Result<Vec<AccessKey>> {
        let user = self.get_user(account, user_name)?;
        let mut keys = Vec::with_capacity(user.access_keys.len());
        for id in &user.access_keys {
            let kkey = access_key_key(id);
            if let Some(kv) = self.store.get(&kkey)? {
                keys.push(decode(&kkey, &kv.value)?);
            }
        }
        Ok(keys)
    }

    /// A key of `user_name` (IAM answers NoSuchEntity for another user's key).
    fn key_of(&self, account: &str, user_name: &str, id: &str) -> Result<(AccessKey, u64)> {
        let kkey = access_key_key(id);
        let kv = self.store.get(&kkey)?.ok_or_else(|| no_such_key(id))?;
        let key: AccessKey = decode(&kkey, &kv.value)?;
        if key.account != account || !key.user_name.eq_ignore_ascii_case(user_name) {
            return Err(no_such_key(id));
        }
        Ok((key, kv.mod_revision))
    }

    /// UpdateAccessKey: Active or Inactive (an inactive key signs nothing).
    pub fn update_access_key(
        &self,
        account: &str,
        user_name: &str,
        id: &str,
        status: AccessKeyStatus,
    ) -> Result<()> {
        let (mut key, revision) = self.key_of(account, user_name, id)?;
        key.status = status;
        let kkey = access_key_key(id);
        match self.store.txn(
            &[Compare::ModRevision(kkey.clone(), revision)],
            &[Op::put(&kkey, encode(&key))],
        )? {
            TxnOutcome::Committed(_) => Ok(()),
            TxnOutcome::Conflict => self.update_access_key(account, user_name, id, status),
        }
    }

    /// DeleteAccessKey.
    pub fn delete_access_key(&self, account: &str, user_name: &str, id: &str) -> Result<()> {
        loop {
            let (_, revision) = self.key_of(account, user_name, id)?;
            let ukey = user_key(account, user_name);
            let kv = self
                .store
                .get(&ukey)?
                .ok_or_else(|| no_such_user(user_name))?;
            let mut user: User = decode(&ukey, &kv.value)?;
            user.access_keys.retain(|k| k != id);
            let kkey = access_key_key(id);
            let outcome = self.store.txn(
                &[
                    Compare::ModRevision(ukey.clone(), kv.mod_revision),
                    Compare::ModRevision(kkey.clone(), revision),
                ],
                &[Op::put(&ukey, encode(&user)), Op::delete(&kkey)],
            )?;
            if outcome.is_committed() {
                return Ok(());
            }
        }
    }

    /// For SigV4: the secret of an active access key and who it belongs to. A process that
    /// is its store's only writer answers from memory while it has written no IAM record
    /// since (`policy_cache`): a request signed by a user then reads nothing.
    pub fn signing_key(&self, id: &str) -> Result<Option<(String, Principal)>> {
        if !self.sole_writer {
            return self.signing_key_from_store(id);
        }
        // Read before the records: an entry is never stamped newer than what it holds.
        let generation = crate::policy_cache::local_generation();
        if let Some(found) = self.cache.signing_key(id, generation) {
            return Ok(found);
        }
        let found = self.signing_key_from_store(id)?;
        self.cache.keep_signing_key(id, generation, found.clone());
        Ok(found)
    }

    fn signing_key_from_store(&self, id: &str) -> Result<Option<(String, Principal)>> {
        let kkey = access_key_key(id);
        let Some(kv) = self.store.get(&kkey)? else {
            return Ok(None);
        };
        let key: AccessKey = decode(&kkey, &kv.value)?;
        if key.status != AccessKeyStatus::Active {
            return Ok(None);
        }
        let user = match self.get_user(&key.account, &key.user_name) {
            Ok(user) => user,
            Err(IamError::NoSuchEntity(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some((
            key.secret_access_key,
            Principal::User {
                account: key.account,
                name: user.user_name,
                id: user.user_id,
                arn: user.arn,
            },
        )))
    }
}
