//! What grants a user, a group or a role its permissions: managed policies attached to it
//! (Attach/Detach{User,Group,Role}Policy, ListAttached{User,Group,Role}Policies) and its
//! inline policies (Put/Get/Delete/List{User,Group,Role}Policies); and the documents that
//! apply to a principal, for evaluation (a user's include its groups').

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_store::{Compare, Op};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::groups::{Group, group_key, no_such_group};
use crate::policies::{ManagedPolicy, check_document};
use crate::policy::{Policy, PolicyError, PolicyType};
use crate::policy_cache::{self, Holder as CacheHolder, generation_key};
use crate::roles::{Role, no_such_role, role_key, unmodifiable};
use crate::users::{User, check_name, no_such_user};
use crate::{Iam, IamError, Principal, Result, decode, encode, user_key};

/// Managed policies attached to one user, group or role, at most (IAM's default quota).
pub const MAX_ATTACHED: usize = 10;

/// A user, a group or a role: what policies are attached to and put into.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    User(&'a str),
    Role(&'a str),
    Group(&'a str),
}

impl Holder<'_> {
    fn key(&self, account: &str) -> String {
        match self {
            Holder::User(name) => user_key(account, name),
            Holder::Role(name) => role_key(account, name),
            Holder::Group(name) => group_key(account, name),
        }
    }

    fn missing(&self) -> IamError {
        match self {
            Holder::User(name) => no_such_user(name),
            Holder::Role(name) => no_such_role(name),
            Holder::Group(name) => no_such_group(name),
        }
    }

    /// IAM's limit on all of the holder's inline policies together.
    fn inline_limit(&self) -> usize {
        match self {
            Holder::User(_) => 2048,
            Holder::Role(_) => 10_240,
            Holder::Group(_) => 5120,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Holder::User(_) => "user",
            Holder::Role(_) => "role",
            Holder::Group(_) => "group",
        }
    }

    fn name(&self) -> &str {
        match self {
            Holder::User(name) | Holder::Role(name) | Holder::Group(name) => name,
        }
    }
}

/// The policy fields of a stored user or role.
pub(crate) trait HasPolicies: Serialize + DeserializeOwned {
    fn attached(&mut self) -> &mut Vec<String>;
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
}

impl HasPolicies for User {
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
}

impl HasPolicies for Group {
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
}

impl HasPolicies for Role {
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
}

/// Whose cached policies a principal's are: `None` for root, which has none.
fn cache_holder(principal: &Principal) -> Option<CacheHolder> {
    match principal {
        Principal::Root { .. } => None,
        Principal::User {
            account, name, id, ..
        } => Some(CacheHolder {
            account: account.clone(),
            role: false,
            name: name.to_ascii_lowercase(),
            id: id.clone(),
        }),
        Principal::AssumedRole {
            account,
            role_name,
            role_id,
            ..
        } => Some(CacheHolder {
            account: account.clone(),
            role: true,
            name: role_name.to_ascii_lowercase(),
            id: role_id.clone(),
        }),
    }
}

/// A holder's record read generically: attached ARNs and inline documents.
struct Policies {
    /// The holder's unique id (`AIDA…`, `AROA…`).
    id: String,
    attached: Vec<String>,
    inline: BTreeMap<String, String>,
    /// A user's groups (none for groups and roles).
    groups: Vec<String>,
}

fn policy_key_of(policy: &ManagedPolicy, account: &str) -> String {
    format!(
        "iam/{account}/policies/{}",
        policy.policy_name.to_ascii_lowercase()
    )
}

impl Iam {
    /// Rewrites a holder with `change` under compare-and-swap, with the compares and ops
    /// the change returns (an attached policy's count) in the same transaction.
    fn change_holder<T>(
        &self,
        account: &str,
        holder: Holder<'_>,
        mut change: impl FnMut(
            &mut Vec<String>,
            &mut BTreeMap<String, String>,
        ) -> Result<(T, Vec<Compare>, Vec<Op>)>,
    ) -> Result<T> {
        if let Holder::Role(name) = holder {
            // Only its service changes a service-linked role's policies.
            let role = self.get_role(account, name)?;
            if role.is_service_linked() {
                return Err(unmodifiable(&role.role_name));
            }
        }
        match holder {
            Holder::User(_) => self.change_record::<User, T>(account, holder, &mut change),
            Holder::Role(_) => self.change_record::<Role, T>(account, holder, &mut change),
            Holder::Group(_) => self.change_record::<Group, T>(account, holder, &mut change),
        }
    }

    fn change_record<R: HasPolicies, T>(
        &self,
        account: &str,
        holder: Holder<'_>,
        change: &mut impl FnMut(
            &mut Vec<String>,
            &mut BTreeMap<String, String>,
        ) -> Result<(T, Vec<Compare>, Vec<Op>)>,
    ) -> Result<T> {
        loop {
            let key = holder.key(account);
            let kv = self.store.get(&key)?.ok_or_else(|| holder.missing())?;
            let mut record: R = decode(&key, &kv.value)?;
            let mut attached = std::mem::take(record.attached());
            let mut inline = std::mem::take(record.inline());
            let (out, mut compares, mut ops) = change(&mut attached, &mut inline)?;
            *record.attached() = attached;
            *record.inline() = inline;
            compares.push(Compare::ModRevision(key.clone(), kv.mod_revision));
            ops.push(Op::put(&key, encode(&record)));
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(out);
            }
        }
    }

    fn policies_of(&self, account: &str, holder: Holder<'_>) -> Result<Policies> {
        let key = holder.key(account);
        let kv = self.store.get(&key)?.ok_or_else(|| holder.missing())?;
        let (id, attached, inline, groups) = match holder {
            Holder::User(_) => {
                let mut u: User = decode(&key, &kv.value)?;
                let (a, i) = (std::mem::take(u.attached()), std::mem::take(u.inline()));
                (u.user_id, a, i, u.groups)
            }
            Holder::Role(_) => {
                let mut r: Role = decode(&key, &kv.value)?;
                let (a, i) = (std::mem::take(r.attached()), std::mem::take(r.inline()));
                (r.role_id, a, i, Vec::new())
            }
            Holder::Group(_) => {
                let mut g: Group = decode(&key, &kv.value)?;
                let (a, i) = (std::mem::take(g.attached()), std::mem::take(g.inline()));
                (g.group_id, a, i, Vec::new())
            }
        };
        Ok(Policies {
            id,
            attached,
            inline,
            groups,
        })
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

    pub fn attach_policy(&self, account: &str, holder: Holder<'_>, arn: &str) -> Result<()> {
        if arn.starts_with("arn:aws:iam::aws:policy/aws-service-role/") {
            // Those are for the service-linked roles AWS makes.
            return Err(IamError::PolicyNotAttachable(
                "Cannot attach a Service Role Policy to a Customer Role.".into(),
            ));
        }
        self.change_holder(account, holder, |attached, _| {
            if attached.iter().any(|a| a == arn) {
                // Attaching again changes nothing, as in IAM.
                return Ok(((), Vec::new(), Vec::new()));
            }
            if attached.len() >= MAX_ATTACHED {
                let quota = match holder {
                    Holder::User(_) => "PoliciesPerUser",
                    Holder::Role(_) => "PoliciesPerRole",
                    Holder::Group(_) => "PoliciesPerGroup",
                };
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for {quota}: {MAX_ATTACHED}"
                )));
            }
            let (compares, ops) = self.count_change(account, arn, 1)?;
            attached.push(arn.to_string());
            Ok(((), compares, ops))
        })
    }

    pub fn detach_policy(&self, account: &str, holder: Holder<'_>, arn: &str) -> Result<()> {
        self.change_holder(account, holder, |attached, _| {
            if !attached.iter().any(|a| a == arn) {
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
            attached.retain(|a| a != arn);
            Ok(((), compares, ops))
        })
    }

    /// The managed policies attached to a holder: (name, ARN).
    pub fn list_attached_policies(
        &self,
        account: &str,
        holder: Holder<'_>,
    ) -> Result<Vec<(String, String)>> {
        Ok(self
            .policies_of(account, holder)?
            .attached
            .into_iter()
            .map(|arn| (arn.rsplit('/').next().unwrap_or(&arn).to_string(), arn))
            .collect())
    }

    pub fn put_inline_policy(
        &self,
        account: &str,
        holder: Holder<'_>,
        name: &str,
        document: &str,
    ) -> Result<()> {
        check_name("policyName", name, 128)?;
        let limit = holder.inline_limit();
        check_document(document, limit)?;
        self.change_holder(account, holder, |_, inline| {
            inline.insert(name.to_string(), document.to_string());
            let total: usize = inline
                .values()
                .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
                .sum();
            if total > limit {
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {limit} bytes exceeded for {} {}",
                    holder.kind(),
                    holder.name()
                )));
            }
            Ok(((), Vec::new(), Vec::new()))
        })
    }

    fn no_such_inline(holder: Holder<'_>, name: &str) -> IamError {
        IamError::NoSuchEntity(format!(
            "The {} policy with name {name} cannot be found.",
            holder.kind()
        ))
    }

    pub fn get_inline_policy(
        &self,
        account: &str,
        holder: Holder<'_>,
        name: &str,
    ) -> Result<String> {
        self.policies_of(account, holder)?
            .inline
            .remove(name)
            .ok_or_else(|| Self::no_such_inline(holder, name))
    }

    pub fn list_inline_policies(&self, account: &str, holder: Holder<'_>) -> Result<Vec<String>> {
        Ok(self
            .policies_of(account, holder)?
            .inline
            .into_keys()
            .collect())
    }

    pub fn delete_inline_policy(
        &self,
        account: &str,
        holder: Holder<'_>,
        name: &str,
    ) -> Result<()> {
        self.change_holder(account, holder, |_, inline| {
            if inline.remove(name).is_none() {
                return Err(Self::no_such_inline(holder, name));
            }
            Ok(((), Vec::new(), Vec::new()))
        })
    }

    /// The identity-based policy documents that apply to `principal`: a user's or a
    /// session's role's inline policies and the default versions of its attached managed
    /// policies, and for a user those of every group it is in (none for root, which nothing
    /// restricts).
    pub fn identity_policies(&self, principal: &Principal) -> Result<Vec<String>> {
        let (account, holder, id) = match principal {
            Principal::Root { .. } => return Ok(Vec::new()),
            Principal::User {
                account, name, id, ..
            } => (account, Holder::User(name), id),
            Principal::AssumedRole {
                account,
                role_name,
                role_id,
                ..
            } => (account, Holder::Role(role_name), role_id),
        };
        let policies = match self.policies_of(account, holder) {
            // A user or role deleted and made again under the same name is another one:
            // sessions of the old one get nothing from it.
            Ok(p) if p.id == *id => p,
            Ok(_) | Err(IamError::NoSuchEntity(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut documents = Vec::new();
        self.documents_of(account, policies.inline, &policies.attached, &mut documents)?;
        for group in &policies.groups {
            match self.policies_of(account, Holder::Group(group)) {
                Ok(p) => self.documents_of(account, p.inline, &p.attached, &mut documents)?,
                // Deleted meanwhile: it grants nothing.
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(documents)
    }

    /// Inline documents, then the default versions of the attached policies that exist.
    fn documents_of(
        &self,
        account: &str,
        inline: BTreeMap<String, String>,
        attached: &[String],
        documents: &mut Vec<String>,
    ) -> Result<()> {
        documents.extend(inline.into_values());
        for arn in attached {
            match self.policy_at(account, arn) {
                Ok((policy, _)) => documents.push(policy.default_document().to_string()),
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`Iam::identity_policies`] parsed, from the cache while the account's IAM generation
    /// is the one they were read at (`policy_cache`): one store read when nothing changed.
    /// A stored document that no longer parses grants nothing (it was checked when
    /// written).
    pub fn parsed_identity_policies(&self, principal: &Principal) -> Result<Arc<[Arc<Policy>]>> {
        let Some(holder) = cache_holder(principal) else {
            return Ok(Arc::new([]));
        };
        // Read before the records: a set is never stamped newer than what it holds.
        let generation = self.generation(&holder.account)?;
        if let Some(policies) = self.cache.set(&holder, generation) {
            return Ok(policies);
        }
        let mut policies = Vec::new();
        for document in self.identity_policies(principal)? {
            match self.cache.parsed(&document, PolicyType::Identity) {
                Ok(policy) => policies.push(policy),
                Err(e) => tracing::warn!(error = %e, "a stored policy does not parse"),
            }
        }
        let policies: Arc<[Arc<Policy>]> = policies.into();
        self.cache.keep_set(holder, generation, policies.clone());
        Ok(policies)
    }

    /// [`Iam::parsed_identity_policies`] when memory alone can give them: this process is
    /// its store's only writer ([`Iam::sole_writer`]) and holds them as of its latest IAM
    /// write. `None`: ask `parsed_identity_policies` (it reads the store).
    pub fn cached_identity_policies(&self, principal: &Principal) -> Option<Arc<[Arc<Policy>]>> {
        let Some(holder) = cache_holder(principal) else {
            return Some(Arc::new([]));
        };
        if !self.sole_writer {
            return None;
        }
        self.cache.set(&holder, policy_cache::local_generation())
    }

    /// The account's IAM generation: this process's write count when it is the store's
    /// only writer, else the generation key's revision (one read).
    fn generation(&self, account: &str) -> Result<u64> {
        if self.sole_writer {
            return Ok(policy_cache::local_generation());
        }
        Ok(self
            .store
            .get(&generation_key(account))?
            .map_or(0, |kv| kv.mod_revision))
    }

    /// `document` compiled as a policy of `kind`, parsed once per distinct text (session
    /// policies arrive with every request of a session).
    pub fn parsed_policy(
        &self,
        document: &str,
        kind: PolicyType,
    ) -> std::result::Result<Arc<Policy>, PolicyError> {
        self.cache.parsed(document, kind)
    }

    /// The default version's document of a managed policy (session `PolicyArns`).
    pub fn managed_document(&self, account: &str, arn: &str) -> Result<String> {
        self.policy_at(account, arn)
            .map(|(p, _)| p.default_document().to_string())
    }
}
