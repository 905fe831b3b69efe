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
    /// When, with which service and in which region the key last signed a request
    /// (GetAccessKeyLastUsed); `None`: never. Recorded at most once a minute per key and
    /// process (`access_key_used`), so it may lag the last use by up to a minute.
    #[serde(default)]
    pub last_used: Option<AccessKeyLastUsed>,
}

/// GetAccessKeyLastUsed's `AccessKeyLastUsed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessKeyLastUsed {
    /// Seconds since the epoch.
    pub date: f64,
    /// The service the request went to, as its endpoint names it (`iam`, `ecr`, `sts`).
    pub service: String,
    pub region: String,
}

/// How long a key's recorded last use may lag behind: a key signing many requests costs
/// one store write per this many seconds, not one per request.
pub const KEY_USE_RECORD_INTERVAL_SECONDS: f64 = 60.0;

/// Per process, when each key's use was last written to the store.
#[derive(Debug, Default)]
pub(crate) struct KeyUses {
    recorded: std::sync::Mutex<std::collections::HashMap<String, f64>>,
}

impl KeyUses {
    /// Whether a use of `id` at `now` is to be written: the first use this process sees,
    /// or the first one `KEY_USE_RECORD_INTERVAL_SECONDS` after the last written. Marks it
    /// written. The lock is held for a map lookup only, never across I/O.
    fn due(&self, id: &str, now: f64) -> bool {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        match recorded.get(id) {
            Some(at) if now - at < KEY_USE_RECORD_INTERVAL_SECONDS => false,
            _ => {
                recorded.insert(id.to_string(), now);
                true
            }
        }
    }
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
                last_used: None,
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

    /// Whether a request signed with access key `id` now is to be recorded as its last use
    /// (`record_access_key_use`): at most once per `KEY_USE_RECORD_INTERVAL_SECONDS` per
    /// key in this process. No I/O.
    pub fn access_key_use_due(&self, id: &str) -> bool {
        self.key_uses.due(id, now_epoch())
    }

    /// Records a request signed with access key `id` to `service` in `region` as the key's
    /// last use. A key that is gone is not an error (it signed before it was deleted).
    pub fn record_access_key_use(&self, id: &str, service: &str, region: &str) -> Result<()> {
        let kkey = access_key_key(id);
        loop {
            let Some(kv) = self.store.get(&kkey)? else {
                return Ok(());
            };
            let mut key: AccessKey = decode(&kkey, &kv.value)?;
            key.last_used = Some(AccessKeyLastUsed {
                date: now_epoch(),
                service: service.to_string(),
                region: region.to_string(),
            });
            let outcome = self.store.txn(
                &[Compare::ModRevision(kkey.clone(), kv.mod_revision)],
                &[Op::put(&kkey, encode(&key))],
            )?;
            if outcome.is_committed() {
                return Ok(());
            }
        }
    }

    /// An access key by its id, whoever owns it and whatever its status
    /// (GetAccessKeyLastUsed, STS GetAccessKeyInfo).
    pub fn access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        let kkey = access_key_key(id);
        match self.store.get(&kkey)? {
            Some(kv) => decode(&kkey, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    /// GetAccessKeyLastUsed: the key, or IAM's NoSuchEntity when there is none.
    pub fn get_access_key_last_used(&self, id: &str) -> Result<AccessKey> {
        self.access_key(id)?.ok_or_else(|| no_such_key(id))
    }

    /// For SigV4: the secret of an active access key and who it belongs to: an IAM user, or
    /// the root of an account made by `create_account`. A process that is its store's only
    /// writer answers from memory while it has written no IAM record since
    /// (`policy_cache`): a request signed by a user then reads nothing.
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
            // Not a user's: perhaps the root key of another account of the installation.
            return Ok(self.account_root_key(id)?.map(|account| {
                (
                    account.secret_access_key,
                    Principal::Root {
                        account: account.account_id,
                    },
                )
            }));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_use_is_written_at_most_once_an_interval() {
        let uses = KeyUses::default();
        assert!(uses.due("AKIA1", 1000.0));
        assert!(!uses.due("AKIA1", 1000.0 + KEY_USE_RECORD_INTERVAL_SECONDS - 1.0));
        assert!(uses.due("AKIA2", 1001.0), "each key on its own");
        assert!(uses.due("AKIA1", 1000.0 + KEY_USE_RECORD_INTERVAL_SECONDS));
    }

    #[test]
    fn last_use_is_recorded_on_the_key() {
        let iam = Iam::new(std::sync::Arc::new(berth_store::MemStore::new()));
        iam.create_user(
            "000000000000",
            crate::CreateUser {
                user_name: "kim".into(),
                ..crate::CreateUser::default()
            },
        )
        .unwrap();
        let key = iam.create_access_key("000000000000", "kim").unwrap();
        let id = &key.access_key_id;
        assert_eq!(iam.get_access_key_last_used(id).unwrap().last_used, None);
        assert!(iam.access_key_use_due(id));
        assert!(
            !iam.clone().access_key_use_due(id),
            "clones share the record"
        );
        iam.record_access_key_use(id, "ecr", "eu-west-1").unwrap();
        let used = iam.get_access_key_last_used(id).unwrap().last_used.unwrap();
        assert_eq!(
            (used.service.as_str(), used.region.as_str()),
            ("ecr", "eu-west-1")
        );
        // Signing still works and a deleted key's late record is no error.
        assert!(iam.signing_key(id).unwrap().is_some());
        iam.delete_access_key("000000000000", "kim", id).unwrap();
        iam.record_access_key_use(id, "ecr", "eu-west-1").unwrap();
        assert!(matches!(
            iam.get_access_key_last_used(id),
            Err(IamError::NoSuchEntity(_))
        ));
    }
}
