//! The decision: IAM's policy evaluation logic (reference_policies_evaluation-logic.html),
//! a pure function of the request and the policies that apply to it.
//!
//! 1. An explicit `Deny` in any policy (identity, resource, permissions boundary, session)
//!    that applies denies.
//! 2. Same account (the resource's account is the principal's):
//!    - a resource policy allowing the caller itself (its ARN, a service, `*`) allows;
//!    - one allowing the role of a role session allows if the permissions boundary and the
//!      session policies (when there are any) allow too;
//!    - otherwise an identity policy must allow, and then the permissions boundary (if set)
//!      and the session policies (if any) must allow too: they only ever narrow.
//!      A resource policy naming the caller's account delegates to the identity policies.
//! 3. Cross-account: the resource policy must allow (naming the caller, its role or its
//!    account) AND the identity policies (narrowed by boundary and session policies) must.
//! 4. Otherwise: implicit deny, reporting which kind of policy failed to allow.
//!
//! A `Deny` with `NotPrincipal` in a resource policy applies to any principal that has a
//! permissions boundary, whatever it names (access_policies_boundaries.html).
//!
//! Anonymous callers and AWS services are allowed only by a resource policy naming them (a
//! role's trust policy naming `ecs-tasks.amazonaws.com`, a repository policy with `*`).
//!
//! The account root is not subject to identity policies (its identity "allows" everything)
//! but is to explicit denies; Berth's request path keeps root unrestricted before this.

use std::sync::Arc;

use super::context::{PrincipalKind, Request};
use super::document::{Effect, Policy, PrincipalMatch, Statement};

/// The kinds of policy a decision weighs, as AWS's refusals name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    Identity,
    Resource,
    PermissionsBoundary,
    Session,
}

impl PolicySource {
    /// The words of AWS's refusal messages.
    pub fn describe(self) -> &'static str {
        match self {
            PolicySource::Identity => "identity-based policy",
            PolicySource::Resource => "resource-based policy",
            PolicySource::PermissionsBoundary => "permissions boundary",
            PolicySource::Session => "session policy",
        }
    }
}

/// Everything that applies to one request: the principal's identity policies (attached
/// managed, inline, the groups'), the resource's policy, the principal's permissions boundary
/// and the session policies of a role session. Build it once per principal and reuse it.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub identity: Vec<Arc<Policy>>,
    pub resource: Option<Arc<Policy>>,
    pub permissions_boundary: Option<Arc<Policy>>,
    /// Empty: no session policies (no narrowing). Non-empty: at least one must allow.
    pub session: Vec<Arc<Policy>>,
}

impl PolicySet {
    pub fn new() -> PolicySet {
        PolicySet::default()
    }

    pub fn with_identity(mut self, p: impl Into<Arc<Policy>>) -> PolicySet {
        self.identity.push(p.into());
        self
    }

    pub fn with_resource(mut self, p: impl Into<Arc<Policy>>) -> PolicySet {
        self.resource = Some(p.into());
        self
    }

    pub fn with_permissions_boundary(mut self, p: impl Into<Arc<Policy>>) -> PolicySet {
        self.permissions_boundary = Some(p.into());
        self
    }

    pub fn with_session(mut self, p: impl Into<Arc<Policy>>) -> PolicySet {
        self.session.push(p.into());
        self
    }

    fn policies(&self, source: PolicySource) -> &[Arc<Policy>] {
        match source {
            PolicySource::Identity => &self.identity,
            PolicySource::Resource => self.resource.as_slice(),
            PolicySource::PermissionsBoundary => self.permissions_boundary.as_slice(),
            PolicySource::Session => &self.session,
        }
    }

    /// The tag keys any of the set's policies names: tags that no policy can test need not
    /// be looked up.
    pub fn tag_keys(&self) -> super::TagKeysNamed {
        let all = self
            .identity
            .iter()
            .chain(&self.resource)
            .chain(&self.permissions_boundary)
            .chain(&self.session);
        all.fold(super::TagKeysNamed::default(), |acc, p| {
            let named = p.tag_keys();
            super::TagKeysNamed {
                principal_tag: acc.principal_tag || named.principal_tag,
                resource_tag: acc.resource_tag || named.resource_tag,
            }
        })
    }

    /// The statement a decision names.
    pub fn statement(&self, at: StatementRef) -> Option<&Statement> {
        self.policies(at.source)
            .get(at.policy)?
            .statements()
            .get(at.statement)
    }
}

/// A statement of a [`PolicySet`]: which kind of policy, which policy of that kind (index),
/// which statement in it (index), and which of the request's resources it applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef {
    pub source: PolicySource,
    pub policy: usize,
    pub statement: usize,
    pub resource: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// A `Deny` statement applied.
    ExplicitDeny {
        statement: StatementRef,
    },
    /// Nothing denied, but no policy of kind `missing` allowed resource number `resource`.
    ImplicitDeny {
        missing: PolicySource,
        resource: usize,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Decision::Allowed
    }

    /// The end of AWS's refusal message: "because no identity-based policy allows the
    /// ecs:RunTask action" or "with an explicit deny in an identity-based policy".
    pub fn reason(&self, action: &str) -> Option<String> {
        match self {
            Decision::Allowed => None,
            Decision::ExplicitDeny { statement } => {
                let what = statement.source.describe();
                let article = if what.starts_with('i') { "an" } else { "a" };
                Some(format!("with an explicit deny in {article} {what}"))
            }
            Decision::ImplicitDeny { missing, .. } => Some(format!(
                "because no {} allows the {action} action",
                missing.describe()
            )),
        }
    }

    /// AWS's whole message: "User: ARN is not authorized to perform: ACTION on resource:
    /// RESOURCE because no identity-based policy allows the ACTION action".
    pub fn message(&self, request: &Request) -> Option<String> {
        let reason = self.reason(request.action())?;
        let resource = match self {
            Decision::ExplicitDeny { statement } => statement.resource,
            Decision::ImplicitDeny { resource, .. } => *resource,
            Decision::Allowed => 0,
        };
        let resource = request
            .resources()
            .get(resource)
            .map_or("*", String::as_str);
        Some(format!(
            "User: {} is not authorized to perform: {} on resource: {} {}",
            request.principal().arn,
            request.action(),
            resource,
            reason
        ))
    }
}

/// What the statements of one kind of policy say about one resource.
#[derive(Clone, Copy)]
enum Verdict {
    Deny(StatementRef),
    /// The strongest principal match among the allowing statements (`Caller` for identity
    /// policies); `None`: nothing allowed.
    Allow(Option<PrincipalMatch>),
}

fn weigh(
    policies: &[Arc<Policy>],
    source: PolicySource,
    request: &Request,
    resource: usize,
    has_boundary: bool,
) -> Verdict {
    let mut allow: Option<PrincipalMatch> = None;
    for (pi, policy) in policies.iter().enumerate() {
        for (si, statement) in policy.candidates(request.service()) {
            // Once an allow is certain, only denies can change the outcome.
            if statement.effect() == Effect::Allow && allow == Some(PrincipalMatch::Caller) {
                continue;
            }
            let Some(matched) =
                statement.applies(request, request.resource(resource), has_boundary)
            else {
                continue;
            };
            match statement.effect() {
                Effect::Deny => {
                    return Verdict::Deny(StatementRef {
                        source,
                        policy: pi,
                        statement: si,
                        resource,
                    });
                }
                Effect::Allow => allow = allow.max(Some(matched)),
            }
        }
    }
    Verdict::Allow(allow)
}

/// Every statement of `policies` that applies to `request` (to any of its resources), with
/// its effect, in the order sources, policies and statements come: what the policy simulator
/// reports as matched statements. Allocates; the request path uses [`evaluate`].
pub fn matching_statements(request: &Request, policies: &PolicySet) -> Vec<(StatementRef, Effect)> {
    use PolicySource::*;
    let has_boundary = policies.permissions_boundary.is_some();
    let mut out = Vec::new();
    for resource in 0..request.resources().len() {
        for source in [Identity, Resource, PermissionsBoundary, Session] {
            for (pi, policy) in policies.policies(source).iter().enumerate() {
                for (si, statement) in policy.statements().iter().enumerate() {
                    if statement
                        .applies(request, request.resource(resource), has_boundary)
                        .is_some()
                    {
                        let at = StatementRef {
                            source,
                            policy: pi,
                            statement: si,
                            resource,
                        };
                        out.push((at, statement.effect()));
                    }
                }
            }
        }
    }
    out
}

/// Decides `request` against `policies`. Pure; allocates nothing.
pub fn evaluate(request: &Request, policies: &PolicySet) -> Decision {
    for i in 0..request.resources().len() {
        let d = evaluate_resource(request, policies, i);
        if d != Decision::Allowed {
            return d;
        }
    }
    Decision::Allowed
}

fn evaluate_resource(request: &Request, policies: &PolicySet, resource: usize) -> Decision {
    use PolicySource::*;
    let has_boundary = policies.permissions_boundary.is_some();
    let mut allows = [None; 4];
    for (slot, source) in [Identity, Resource, PermissionsBoundary, Session]
        .into_iter()
        .enumerate()
    {
        match weigh(
            policies.policies(source),
            source,
            request,
            resource,
            has_boundary,
        ) {
            Verdict::Deny(statement) => return Decision::ExplicitDeny { statement },
            Verdict::Allow(m) => allows[slot] = m,
        }
    }
    let [identity, resource_policy, boundary, session] = allows;
    let principal = request.principal();
    let root = principal.kind == PrincipalKind::Root;
    let identity_ok = root || identity.is_some();
    let boundary_ok = root || policies.permissions_boundary.is_none() || boundary.is_some();
    let session_ok = root || policies.session.is_empty() || session.is_some();
    let implicit = |missing| Decision::ImplicitDeny { missing, resource };
    let narrowed = || {
        if !boundary_ok {
            implicit(PermissionsBoundary)
        } else if !session_ok {
            implicit(Session)
        } else {
            Decision::Allowed
        }
    };
    // Anonymous callers and services hold no identity policies: only a resource policy
    // naming them (or `*`) lets them in.
    if matches!(
        principal.kind,
        PrincipalKind::Anonymous | PrincipalKind::Service
    ) {
        return if resource_policy == Some(PrincipalMatch::Caller) {
            Decision::Allowed
        } else {
            implicit(Resource)
        };
    }
    let same_account = request.resource_account() == principal.account;
    if same_account {
        match resource_policy {
            Some(PrincipalMatch::Caller) => return Decision::Allowed,
            Some(PrincipalMatch::Role) => return narrowed(),
            Some(PrincipalMatch::Account) | None => {}
        }
        if !identity_ok {
            return implicit(Identity);
        }
        return narrowed();
    }
    if !identity_ok {
        return implicit(Identity);
    }
    match narrowed() {
        Decision::Allowed if resource_policy.is_none() => implicit(Resource),
        d => d,
    }
}
