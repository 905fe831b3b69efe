//! Policy documents: JSON in, a compiled [`Policy`] out, refused with IAM's
//! MalformedPolicyDocument messages. Identity policies (managed, inline, permissions
//! boundaries, session policies) must not name a principal and must name resources; resource
//! policies (repository policies, role trust policies) must name a principal.

use super::PolicyError;
use super::condition::{ConditionBlock, ConditionError};
use super::pattern::{ActionPattern, ArnPattern, ArnSplit};

/// Which grammar a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// Attached to an identity: no `Principal`, `Resource` required.
    Identity,
    /// Attached to a resource (an ECR repository policy, a role's trust policy): `Principal`
    /// required, `Resource` optional (it defaults to the resource the policy is on).
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The policy language version. Policy variables exist only in 2012-10-17; in 2008-10-17 (the
/// default when `Version` is absent) `${…}` is literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    V2008_10_17,
    V2012_10_17,
}

/// How a resource policy's principal matched the caller; it decides what else must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrincipalMatch {
    /// The caller's account (`"123456789012"` or `arn:aws:iam::123456789012:root`): the account
    /// delegates to its own identity policies.
    Account,
    /// The role of a role session (its role ARN).
    Role,
    /// The caller itself (its ARN, a service name, or `*`).
    Caller,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct PrincipalSet {
    /// `"*"` or `{"AWS": "*"}`.
    any: bool,
    /// Account ids (from `123456789012` or `arn:aws:iam::123456789012:root`).
    accounts: Vec<Box<str>>,
    /// Other ARNs (users, roles, sessions), matched exactly.
    arns: Vec<Box<str>>,
    /// Service principals, lowercased.
    services: Vec<Box<str>>,
    federated: Vec<Box<str>>,
}

impl PrincipalSet {
    fn matches(&self, p: &super::RequestPrincipal) -> Option<PrincipalMatch> {
        use super::PrincipalKind;
        if self.any {
            return Some(PrincipalMatch::Caller);
        }
        match p.kind {
            PrincipalKind::Service => {
                return self
                    .services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&p.arn))
                    .then_some(PrincipalMatch::Caller);
            }
            PrincipalKind::Federated => {
                return self
                    .federated
                    .iter()
                    .any(|s| **s == *p.arn)
                    .then_some(PrincipalMatch::Caller);
            }
            PrincipalKind::Anonymous => return None,
            _ => {}
        }
        if self.arns.iter().any(|a| **a == *p.arn) {
            Some(PrincipalMatch::Caller)
        } else if p.kind == PrincipalKind::AssumedRole
            && self.arns.iter().any(|a| **a == *p.principal_arn)
        {
            Some(PrincipalMatch::Role)
        } else if self.accounts.iter().any(|a| **a == *p.account) {
            Some(PrincipalMatch::Account)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Actions {
    Action(Box<[ActionPattern]>),
    NotAction(Box<[ActionPattern]>),
}

#[derive(Debug, Clone, PartialEq)]
enum Resources {
    /// Absent (resource policies only): the resource the policy is attached to.
    Implied,
    Resource(Box<[ArnPattern]>),
    NotResource(Box<[ArnPattern]>),
}

#[derive(Debug, Clone, PartialEq)]
enum Principals {
    /// Identity policies: the principal is whoever the policy is attached to.
    Implied,
    Principal(PrincipalSet),
    NotPrincipal(PrincipalSet),
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Actions,
    resources: Resources,
    principals: Principals,
    condition: ConditionBlock,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the statement's `Action` (or `NotAction`) covers `action`, whatever its
    /// resources and conditions: the policy simulator reports the context keys of these.
    pub fn matches_action(&self, action: &str) -> bool {
        match &self.actions {
            Actions::Action(ps) => ps.iter().any(|p| p.matches(action)),
            Actions::NotAction(ps) => !ps.iter().any(|p| p.matches(action)),
        }
    }

    /// Whether the statement applies to `resource` of `request`: action, resource, principal
    /// (resource policies) and conditions all match. For a resource policy, how the principal
    /// matched; for an identity policy, `Caller`.
    /// `has_boundary`: the principal has a permissions boundary, which makes a `Deny` with
    /// `NotPrincipal` apply to it whatever the `NotPrincipal` names (access_policies_boundaries.html).
    pub(crate) fn applies(
        &self,
        request: &super::Request,
        resource: (&str, &ArnSplit),
        has_boundary: bool,
    ) -> Option<PrincipalMatch> {
        let (resource, split) = resource;
        let action = request.action();
        let action_ok = match &self.actions {
            Actions::Action(ps) => ps.iter().any(|p| p.matches(action)),
            Actions::NotAction(ps) => !ps.iter().any(|p| p.matches(action)),
        };
        if !action_ok {
            return None;
        }
        let resource_ok = match &self.resources {
            Resources::Implied => true,
            // A pattern whose variable has no value matches nothing.
            Resources::Resource(ps) => ps
                .iter()
                .any(|p| p.matches_split(resource, split, request) == Some(true)),
            Resources::NotResource(ps) => !ps
                .iter()
                .any(|p| p.matches_split(resource, split, request) != Some(false)),
        };
        if !resource_ok {
            return None;
        }
        let matched = match &self.principals {
            Principals::Implied => PrincipalMatch::Caller,
            Principals::Principal(set) => set.matches(request.principal())?,
            Principals::NotPrincipal(_) if has_boundary && self.effect == Effect::Deny => {
                PrincipalMatch::Caller
            }
            Principals::NotPrincipal(set) => match set.matches(request.principal()) {
                Some(_) => return None,
                None => PrincipalMatch::Caller,
            },
        };
        (self.condition.is_empty() || self.condition.holds(request)).then_some(matched)
    }
}

/// A compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: PolicyVersion,
    id: Option<String>,
    statements: Vec<Statement>,
    index: ServiceIndex,
    /// Which tag keys the document names anywhere (in a condition key or a policy
    /// variable): a request path looks tags up only for policies that can use them.
    tag_keys: TagKeysNamed,
}

/// The tag condition keys a policy names (`…PrincipalTag/…`, `…ResourceTag/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagKeysNamed {
    pub principal_tag: bool,
    pub resource_tag: bool,
}

/// The statements that can apply to an action of a given service, in document order, so
/// that a decision skips the statements about other services without looking at them.
#[derive(Debug, Clone, PartialEq, Default)]
struct ServiceIndex {
    /// Service (lowercased) → its statements and those of every service.
    by_service: Vec<(Box<str>, Box<[u32]>)>,
    /// Statements whose actions name no single service (`*`, `ec?:*`, `NotAction`).
    any_service: Box<[u32]>,
}

impl ServiceIndex {
    fn build(statements: &[Statement]) -> ServiceIndex {
        let mut any = Vec::new();
        let mut by_service: Vec<(String, Vec<u32>)> = Vec::new();
        for (i, s) in statements.iter().enumerate() {
            let services = match &s.actions {
                Actions::Action(ps) => ps.iter().map(|p| p.service()).collect::<Option<Vec<_>>>(),
                Actions::NotAction(_) => None,
            };
            match services {
                None => any.push(i as u32),
                Some(services) => {
                    for svc in services {
                        match by_service.iter_mut().find(|(name, _)| name == svc) {
                            Some((_, list)) if list.last() == Some(&(i as u32)) => {}
                            Some((_, list)) => list.push(i as u32),
                            None => by_service.push((svc.to_string(), vec![i as u32])),
                        }
                    }
                }
            }
        }
        ServiceIndex {
            by_service: by_service
                .into_iter()
                .map(|(name, mut list)| {
                    list.extend_from_slice(&any);
                    list.sort_unstable();
                    (name.into_boxed_str(), list.into_boxed_slice())
                })
                .collect(),
            any_service: any.into_boxed_slice(),
        }
    }

    fn candidates(&self, service: &str) -> &[u32] {
        for (name, list) in &self.by_service {
            if name.len() == service.len()
                && name.as_bytes().eq_ignore_ascii_case(service.as_bytes())
            {
                return list;
            }
        }
        &self.any_service
    }
}

fn malformed(msg: impl Into<String>) -> PolicyError {
    PolicyError::MalformedPolicyDocument(msg.into())
}

impl Policy {
    /// Parses and compiles a document given as text (as IAM's APIs receive it).
    pub fn parse(text: &str, kind: PolicyType) -> Result<Policy, PolicyError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| malformed("Syntax errors in policy."))?;
        Policy::from_json(&value, kind)
    }

    pub fn from_json(doc: &serde_json::Value, kind: PolicyType) -> Result<Policy, PolicyError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| malformed("Syntax errors in policy."))?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed("Syntax errors in policy."));
            }
        }
        let version = match obj.get("Version") {
            None => PolicyVersion::V2008_10_17,
            Some(serde_json::Value::String(v)) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
            Some(serde_json::Value::String(v)) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
            Some(_) => return Err(malformed("The policy failed legacy parsing")),
        };
        let id = match obj.get("Id") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(malformed("Syntax errors in policy.")),
        };
        let raw = match obj.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(serde_json::Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(one @ serde_json::Value::Object(_)) => vec![one],
            Some(_) => return Err(malformed("Syntax errors in policy.")),
        };
        let variables = version == PolicyVersion::V2012_10_17;
        let mut statements = Vec::with_capacity(raw.len());
        for s in raw {
            statements.push(parse_statement(s, kind, variables)?);
        }
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return Err(malformed(
                "Statement IDs (SID) in a single policy must be unique.",
            ));
        }
        let index = ServiceIndex::build(&statements);
        let text = doc.to_string().to_ascii_lowercase();
        let tag_keys = TagKeysNamed {
            principal_tag: text.contains("principaltag/"),
            resource_tag: text.contains("resourcetag/"),
        };
        Ok(Policy {
            version,
            id,
            statements,
            index,
            tag_keys,
        })
    }

    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The tag keys the document names (so a caller knows which tags to look up).
    pub fn tag_keys(&self) -> TagKeysNamed {
        self.tag_keys
    }

    /// The statements that may apply to `action` (by its service), as indexes in document
    /// order; the others cannot.
    pub(crate) fn candidates(&self, service: &str) -> impl Iterator<Item = (usize, &Statement)> {
        self.index
            .candidates(service)
            .iter()
            .map(|&i| (i as usize, &self.statements[i as usize]))
    }
}

fn parse_statement(
    v: &serde_json::Value,
    kind: PolicyType,
    variables: bool,
) -> Result<Statement, PolicyError> {
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("Syntax errors in policy."))?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(malformed("Syntax errors in policy."));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(serde_json::Value::String(s)) => {
            if kind == PolicyType::Identity && !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(malformed(
                    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                ));
            }
            Some(s.clone())
        }
        Some(_) => return Err(malformed("Syntax errors in policy.")),
    };
    let effect = match obj.get("Effect") {
        None => return Err(malformed("Missing required field Effect")),
        Some(serde_json::Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(serde_json::Value::String(e)) if e == "Deny" => Effect::Deny,
        // IAM answers an Effect other than the two (even "allow") with its generic message
        // (hashicorp/terraform#10057); "Invalid effect: …" is S3's wording, not IAM's.
        Some(serde_json::Value::String(_)) => {
            return Err(malformed("The policy failed legacy parsing"));
        }
        Some(_) => return Err(malformed("Syntax errors in policy.")),
    };
    let actions = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(malformed("Statement can't have both Action and NotAction"));
        }
        (None, None) => return Err(malformed("Missing required field Action")),
        (Some(a), None) => Actions::Action(parse_actions(a)?),
        (None, Some(a)) => Actions::NotAction(parse_actions(a)?),
    };
    let resources = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "Statement can't have both Resource and NotResource",
            ));
        }
        (None, None) if kind == PolicyType::Identity => {
            return Err(malformed("Policy statement must contain resources."));
        }
        (None, None) => Resources::Implied,
        (Some(r), None) => Resources::Resource(parse_resources(r, variables)?),
        (None, Some(r)) => Resources::NotResource(parse_resources(r, variables)?),
    };
    let principals = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (None, None) if kind == PolicyType::Resource => {
            return Err(malformed("Missing required field Principal"));
        }
        (None, None) => Principals::Implied,
        (Some(_), _) | (_, Some(_)) if kind == PolicyType::Identity => {
            return Err(malformed("Policy document should not specify a principal."));
        }
        (Some(_), Some(_)) => {
            return Err(malformed(
                "Statement can't have both Principal and NotPrincipal",
            ));
        }
        (Some(p), None) => Principals::Principal(parse_principals(p)?),
        (None, Some(p)) => Principals::NotPrincipal(parse_principals(p)?),
    };
    let condition = match obj.get("Condition") {
        None => ConditionBlock::default(),
        Some(c) => ConditionBlock::parse(c, variables).map_err(|e| match e {
            ConditionError::UnknownOperator(op) => {
                malformed(format!("Invalid Condition type : {op}"))
            }
            ConditionError::NotAnObject | ConditionError::BadValue(_) => {
                malformed("Syntax errors in policy.")
            }
        })?,
    };
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        principals,
        condition,
    })
}

/// A string or an array of strings.
fn strings(v: &serde_json::Value) -> Result<Vec<&str>, PolicyError> {
    match v {
        serde_json::Value::String(s) => Ok(vec![s.as_str()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| malformed("Syntax errors in policy."))
            })
            .collect(),
        _ => Err(malformed("Syntax errors in policy.")),
    }
}

fn parse_actions(v: &serde_json::Value) -> Result<Box<[ActionPattern]>, PolicyError> {
    let items = strings(v)?;
    if items.is_empty() {
        return Err(malformed("Policy statement must contain actions."));
    }
    items
        .into_iter()
        .map(|a| {
            if a != "*"
                && !a
                    .split_once(':')
                    .is_some_and(|(vendor, name)| !vendor.is_empty() && !name.is_empty())
            {
                return Err(malformed(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                ));
            }
            Ok(ActionPattern::parse(a))
        })
        .collect()
}

fn parse_resources(
    v: &serde_json::Value,
    variables: bool,
) -> Result<Box<[ArnPattern]>, PolicyError> {
    let items = strings(v)?;
    if items.is_empty() {
        return Err(malformed("Policy statement must contain resources."));
    }
    items
        .into_iter()
        .map(|r| {
            if r != "*" && !(r.starts_with("arn:") && r.split(':').count() >= 6) {
                return Err(malformed(format!(
                    "Resource {r} must be in ARN format or \"*\"."
                )));
            }
            Ok(ArnPattern::parse(r, variables))
        })
        .collect()
}

/// `"*"` or `{"AWS": …, "Service": …, "Federated": …, "CanonicalUser": …}`.
fn parse_principals(v: &serde_json::Value) -> Result<PrincipalSet, PolicyError> {
    let mut set = PrincipalSet::default();
    match v {
        serde_json::Value::String(s) if s == "*" => set.any = true,
        serde_json::Value::Object(map) => {
            for (kind, ids) in map {
                let ids = strings(ids)?;
                match kind.as_str() {
                    "AWS" => {
                        for id in ids {
                            if id == "*" {
                                set.any = true;
                            } else if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
                                set.accounts.push(id.into());
                            } else if let Some(account) = id
                                .strip_prefix("arn:aws:iam::")
                                .and_then(|r| r.strip_suffix(":root"))
                            {
                                set.accounts.push(account.into());
                            } else if id.starts_with("arn:") {
                                set.arns.push(id.into());
                            } else {
                                return Err(malformed("Invalid principal in policy"));
                            }
                        }
                    }
                    "Service" => set.services.extend(ids.into_iter().map(Into::into)),
                    "Federated" => set.federated.extend(ids.into_iter().map(Into::into)),
                    // Canonical users are S3's; no Berth caller is one.
                    "CanonicalUser" => {}
                    _ => return Err(malformed("Invalid principal in policy")),
                }
            }
        }
        _ => return Err(malformed("Invalid principal in policy")),
    }
    Ok(set)
}

/// The size quotas IAM enforces on policy documents, counted in characters without
/// whitespace. Inline quotas are for all the inline policies of one entity together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySizeQuota {
    /// A managed policy: 6,144.
    Managed,
    /// A user's inline policies: 2,048.
    InlineUser,
    /// A role's inline policies: 10,240.
    InlineRole,
    /// A group's inline policies: 5,120.
    InlineGroup,
}

impl PolicySizeQuota {
    pub fn limit(self) -> usize {
        match self {
            PolicySizeQuota::Managed => 6_144,
            PolicySizeQuota::InlineUser => 2_048,
            PolicySizeQuota::InlineRole => 10_240,
            PolicySizeQuota::InlineGroup => 5_120,
        }
    }
}

/// A document's size as IAM counts it: characters other than whitespace.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// IAM's LimitExceeded when `size` (the document's, or the entity's inline documents' total)
/// is over `quota`; `entity` names the user, role or group for the inline quotas.
pub fn check_policy_size(
    size: usize,
    quota: PolicySizeQuota,
    entity: &str,
) -> Result<(), PolicyError> {
    if size <= quota.limit() {
        return Ok(());
    }
    let limit = quota.limit();
    Err(PolicyError::LimitExceeded(match quota {
        PolicySizeQuota::Managed => format!("Cannot exceed quota for PolicySize: {limit}"),
        PolicySizeQuota::InlineUser => {
            format!("Maximum policy size of {limit} bytes exceeded for user {entity}")
        }
        PolicySizeQuota::InlineRole => {
            format!("Maximum policy size of {limit} bytes exceeded for role {entity}")
        }
        PolicySizeQuota::InlineGroup => {
            format!("Maximum policy size of {limit} bytes exceeded for group {entity}")
        }
    }))
}
