//! The installation's other accounts (`berth accounts create NAME`): each has a 12-digit id
//! and its own root access key pair, and requests signed with that pair act in it, as the
//! installation's default account's root does in the default account. Kept in the store, so
//! every replica knows them:
//!
//! ```text
//! iam/accounts/{id}             Account (its root key pair included)
//! iam/account-names/{name}      the id (names are unique, compared without case)
//! iam/root-keys/{access key}    the id (SigV4's lookup: one read)
//! ```
//!
//! The default account (`--account-id`) has no record here: its root credentials come from
//! the environment or the data dir, as before.

use berth_store::{Compare, Op, TxnOutcome};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch};

/// The longest account name, as AWS Organizations' `AccountName` allows.
pub const MAX_ACCOUNT_NAME: usize = 50;

/// Name the installation's default account goes by in listings; no other account takes it.
pub const DEFAULT_ACCOUNT_NAME: &str = "default";

/// An account of the installation other than the default one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Seconds since the epoch.
    pub created_at: f64,
}

fn account_key(id: &str) -> String {
    format!("iam/accounts/{id}")
}

const ACCOUNTS_PREFIX: &str = "iam/accounts/";

fn account_name_key(name: &str) -> String {
    format!("iam/account-names/{}", name.to_ascii_lowercase())
}

fn root_key_key(access_key_id: &str) -> String {
    format!("iam/root-keys/{access_key_id}")
}

/// A random 12-digit account id.
fn account_id() -> String {
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Whether `s` has an account id's shape: 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Iam {
    /// Makes an account named `name` with a fresh id (never `default_account`'s) and its own
    /// root key pair. Names are unique (case-insensitive); `default` names the default one.
    pub fn create_account(&self, name: &str, default_account: &str) -> Result<Account> {
        if name.is_empty()
            || name.len() > MAX_ACCOUNT_NAME
            || !name.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{name}' at 'accountName' failed to satisfy constraint: Member must be 1 to {MAX_ACCOUNT_NAME} printable ASCII characters"
            )));
        }
        let taken =
            || IamError::EntityAlreadyExists(format!("An account named {name} already exists."));
        if name.eq_ignore_ascii_case(DEFAULT_ACCOUNT_NAME) {
            return Err(taken());
        }
        loop {
            let account = Account {
                account_id: account_id(),
                account_name: name.to_string(),
                access_key_id: ids::access_key_id(),
                secret_access_key: ids::secret(),
                // To the millisecond: a value with few digits reads back exactly from JSON
                // (serde_json's parsing of 17-digit numbers may be off by one ulp).
                created_at: (now_epoch() * 1000.0).round() / 1000.0,
            };
            if account.account_id == default_account {
                continue;
            }
            let (akey, nkey, rkey) = (
                account_key(&account.account_id),
                account_name_key(name),
                root_key_key(&account.access_key_id),
            );
            let outcome = self.store.txn(
                &[
                    Compare::ModRevision(akey.clone(), 0),
                    Compare::ModRevision(nkey.clone(), 0),
                    Compare::ModRevision(rkey.clone(), 0),
                ],
                &[
                    Op::put(&akey, encode(&account)),
                    Op::put(&nkey, account.account_id.as_bytes().to_vec()),
                    Op::put(&rkey, account.account_id.as_bytes().to_vec()),
                ],
            )?;
            if let TxnOutcome::Committed(_) = outcome {
                return Ok(account);
            }
            if self.store.get(&nkey)?.is_some() {
                return Err(taken());
            }
            // An id or key id drawn twice: draw again.
        }
    }

    /// Every account made by `create_account`, by id.
    pub fn list_accounts(&self) -> Result<Vec<Account>> {
        self.store
            .range(ACCOUNTS_PREFIX, None, 0)?
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }

    /// The account `id`, if `create_account` made it.
    pub fn account(&self, id: &str) -> Result<Option<Account>> {
        if !is_account_id(id) {
            return Ok(None);
        }
        let key = account_key(id);
        match self.store.get(&key)? {
            Some(kv) => decode(&key, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    /// The account whose root access key is `access_key_id`, with its secret.
    pub fn account_root_key(&self, access_key_id: &str) -> Result<Option<Account>> {
        let Some(kv) = self.store.get(&root_key_key(access_key_id))? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&kv.value).into_owned();
        self.account(&id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn accounts_are_made_with_their_own_root_keys_and_unique_names() {
        let iam = Iam::new(Arc::new(berth_store::MemStore::new()));
        let a = iam.create_account("team-a", "000000000000").unwrap();
        assert!(is_account_id(&a.account_id));
        assert_ne!(a.account_id, "000000000000");
        assert!(a.access_key_id.starts_with("AKIA"));
        assert_eq!(a.secret_access_key.len(), 40);
        assert!(matches!(
            iam.create_account("TEAM-A", "000000000000"),
            Err(IamError::EntityAlreadyExists(_))
        ));
        assert!(matches!(
            iam.create_account("default", "000000000000"),
            Err(IamError::EntityAlreadyExists(_))
        ));
        assert!(matches!(
            iam.create_account("", "000000000000"),
            Err(IamError::Validation(_))
        ));
        let b = iam.create_account("team-b", "000000000000").unwrap();
        assert_ne!(a.account_id, b.account_id);
        assert_eq!(iam.list_accounts().unwrap().len(), 2);
        assert_eq!(iam.account(&a.account_id).unwrap(), Some(a.clone()));
        assert_eq!(iam.account("000000000000").unwrap(), None);
        assert_eq!(
            iam.account_root_key(&b.access_key_id).unwrap(),
            Some(b.clone())
        );
        assert_eq!(iam.account_root_key("AKIANOTAKEY").unwrap(), None);
    }
}
