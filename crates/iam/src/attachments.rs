//! What grants a user its permissions: managed policies attached to it
//! (Attach/DetachUserPolicy, ListAttachedUserPolicies) and its inline policies
//! (Put/Get/Delete/ListUserPolicies); and the documents that apply to a principal, for
//! evaluation.

use berth_store::{Compare, Op};

use crate::policies::{ManagedPolicy, check_document};
use crate::users::{User, check_name, no_such_user};
use crate::{Iam, IamError, Principal, Result, decode, encode, user_key};

/// An inline user policy's size limit (all of a user's inline policies together, in IAM).
pub const MAX_USER_INLINE_SIZE: usize = 2048;
/// Managed policies attached to one user, at most (IAM's default quota).
pub const MAX_ATTACHED_PER_USER: usize = 10;

fn policy_key_of(policy: &ManagedPolicy, account: &str) -> String {
    format!(
        "iam/{account}/policies/{}",
        policy.policy_name.to_ascii_lowercase()
    )
}

impl Iam {
    /// Rewrites a user with `change` under compare-and-swap, with `more` compares and ops
    /// from the change (the attached policy's count) in the same transaction.
    fn change_user<T>(
        &self,
        account: &str,
        name: &str,
        mut change: impl FnMut(&mut User) -> Result<(T, Vec<Compare>, Vec<Op>)>,
    ) -> Result<T> {
        loop {
            let key = user_key(account, name);
            let kv = self.store.get(&key)?.ok_or_else(|| no_such_user(name))?;
            let mut user: User = decode(&key, &kv.value)?;
            let (out, mut compares, mut ops) = change(&mut user)?;
            compares.push(Compare::ModRevision(key.clone(), kv.mod_revision));
            ops.push(Op::put(&key, encode(&user)));
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(out);
            }
        }
    }

    /// The attachment count of an own managed policy changed by `delta`, as compare and op
    /// (AWS's policies keep no count here).
    fn count_change(
        &self,
        account: &str,
        arn: &str,
        delta: i64,
    ) -> Result<(Vec<Compare>, Vec<Op>)> {
        let (mut policy, revision) = self.policy_at(account, arn)?;
        if policy.is_aws_managed() {
            return Ok((Vec::new(), Vec::new()));
        }
        policy.attachment_count = (i64::from(policy.attachment_count) + delta).max(0) as u32;
        let key = policy_key_of(&policy, account);
        Ok((
            vec![Compare::ModRevision(key.clone(), revision)],
            vec![Op::put(&key, encode(&policy))],
        ))
    }

    pub fn attach_user_policy(&self, account: &str, user: &str, arn: &str) -> Result<()> {
        self.change_user(account, user, |u| {
            if u.attached_policies.iter().any(|a| a == arn) {
                // Attaching again changes nothing, as in IAM.
                return Ok(((), Vec::new(), Vec::new()));
            }
            if u.attached_policies.len() >= MAX_ATTACHED_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPerUser: {MAX_ATTACHED_PER_USER}"
                )));
            }
            let (compares, ops) = self.count_change(account, arn, 1)?;
            u.attached_policies.push(arn.to_string());
            Ok(((), compares, ops))
        })
    }

    pub fn detach_user_policy(&self, account: &str, user: &str, arn: &str) -> Result<()> {
        self.change_user(account, user, |u| {
            if !u.attached_policies.iter().any(|a| a == arn) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} was not found."
                )));
            }
            let (compares, ops) = match self.count_change(account, arn, -1) {
                Ok(change) => change,
                // The policy is gone: detach it all the same.
                Err(IamError::NoSuchEntity(_)) => (Vec::new(), Vec::new()),
                Err(e) => return Err(e),
            };
            u.attached_policies.retain(|a| a != arn);
            Ok(((), compares, ops))
        })
    }

    /// The managed policies attached to a user: (name, ARN).
    pub fn list_attached_user_policies(
        &self,
        account: &str,
        user: &str,
    ) -> Result<Vec<(String, String)>> {
        let user = self.get_user(account, user)?;
        Ok(user
            .attached_policies
            .iter()
            .map(|arn| {
                let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
                (name, arn.clone())
            })
            .collect())
    }

    pub fn put_user_policy(
        &self,
        account: &str,
        user: &str,
        name: &str,
        document: &str,
    ) -> Result<()> {
        check_name("policyName", name, 128)?;
        check_document(document, MAX_USER_INLINE_SIZE)?;
        self.change_user(account, user, |u| {
            u.inline_policies
                .insert(name.to_string(), document.to_string());
            let total: usize = u
                .inline_policies
                .values()
                .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
                .sum();
            if total > MAX_USER_INLINE_SIZE {
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {MAX_USER_INLINE_SIZE} bytes exceeded for user {}",
                    u.user_name
                )));
            }
            Ok(((), Vec::new(), Vec::new()))
        })
    }

    pub fn get_user_policy(&self, account: &str, user: &str, name: &str) -> Result<String> {
        let u = self.get_user(account, user)?;
        u.inline_policies.get(name).cloned().ok_or_else(|| {
            IamError::NoSuchEntity(format!("The user policy with name {name} cannot be found."))
        })
    }

    pub fn list_user_policies(&self, account: &str, user: &str) -> Result<Vec<String>> {
        Ok(self
            .get_user(account, user)?
            .inline_policies
            .into_keys()
            .collect())
    }

    pub fn delete_user_policy(&self, account: &str, user: &str, name: &str) -> Result<()> {
        self.change_user(account, user, |u| {
            if u.inline_policies.remove(name).is_none() {
                return Err(IamError::NoSuchEntity(format!(
                    "The user policy with name {name} cannot be found."
                )));
            }
            Ok(((), Vec::new(), Vec::new()))
        })
    }

    /// The identity-based policy documents that apply to `principal`: its inline policies
    /// and the default versions of its attached managed policies (none for root, which
    /// nothing restricts).
    pub fn identity_policies(&self, principal: &Principal) -> Result<Vec<String>> {
        let Principal::User { account, name, .. } = principal else {
            return Ok(Vec::new());
        };
        let user = match self.get_user(account, name) {
            Ok(user) => user,
            Err(IamError::NoSuchEntity(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut documents: Vec<String> = user.inline_policies.into_values().collect();
        for arn in &user.attached_policies {
            match self.policy_at(account, arn) {
                Ok((policy, _)) => documents.push(policy.default_document().to_string()),
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(documents)
    }
}
