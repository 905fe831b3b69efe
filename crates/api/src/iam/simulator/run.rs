//! One simulation: the policies (with where each came from), the simulated caller, and the
//! decision for each action on each resource. The decision is the request path's own:
//! the principal's policies come from `authz::policy_set`, the request from
//! `authz::request_for`, the verdict from `berth_iam::policy::evaluate`.

use berth_iam::Principal;
use berth_iam::policy::{
    Decision, Effect, Policy, PolicySet, PolicySource, Position, Request, StatementRef, evaluate,
    matching_statements, statement_context_keys, statement_positions,
};

use crate::authz::{self, RequestContext};

/// Where a policy of the simulation came from, as MatchedStatements names it.
#[derive(Debug, Clone)]
pub struct Source {
    /// `SourcePolicyId`: the policy's name (inline or managed), `PolicyInputList.N`,
    /// `PermissionsBoundaryPolicyInputList.N`, `ResourcePolicy`.
    pub id: String,
    /// `SourcePolicyType`: `user`, `role`, `group`, `aws-managed`, `user-managed`,
    /// `resource` or `none`.
    pub kind: &'static str,
    /// The document as written (positions and context keys are read from it).
    pub text: String,
}

impl Source {
    pub fn new(id: impl Into<String>, kind: &'static str, text: impl Into<String>) -> Source {
        Source {
            id: id.into(),
            kind,
            text: text.into(),
        }
    }
}

/// The policies of a simulation and, for each, where it came from (`None`: a principal's
/// policy the simulator could not name — it still counts in the decision).
#[derive(Debug, Default)]
pub struct Policies {
    pub set: PolicySet,
    pub identity: Vec<Option<Source>>,
    pub resource: Option<Source>,
    pub boundary: Option<Source>,
}

impl Policies {
    /// The principal's own policies, from the request path's `authz::policy_set`, named by
    /// matching each to one of `sources` (the principal's inline and attached documents)
    /// that compiles to the same policy.
    pub fn of_principal(set: PolicySet, mut sources: Vec<Source>) -> Policies {
        let identity = set
            .identity
            .iter()
            .map(|policy| {
                let found = sources.iter().position(|s| {
                    Policy::parse(&s.text, berth_iam::policy::PolicyType::Identity)
                        .is_ok_and(|p| p == **policy)
                })?;
                Some(sources.remove(found))
            })
            .collect();
        Policies {
            set,
            identity,
            ..Policies::default()
        }
    }

    fn source(&self, kind: PolicySource, policy: usize) -> Option<&Source> {
        match kind {
            PolicySource::Identity => self.identity.get(policy)?.as_ref(),
            PolicySource::Resource => self.resource.as_ref(),
            PolicySource::PermissionsBoundary => self.boundary.as_ref(),
            PolicySource::Session => None,
        }
    }

    /// Every policy with its source, for context keys.
    fn named(&self) -> Vec<(&Policy, &Source)> {
        let mut out = Vec::new();
        for (p, s) in self.set.identity.iter().zip(&self.identity) {
            if let Some(s) = s {
                out.push((&**p, s));
            }
        }
        for (p, s) in [
            (&self.set.resource, &self.resource),
            (&self.set.permissions_boundary, &self.boundary),
        ] {
            if let (Some(p), Some(s)) = (p, s) {
                out.push((&**p, s));
            }
        }
        out
    }
}

/// A context entry of the simulation: a key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextEntry {
    pub key: String,
    pub values: Vec<String>,
}

/// Who the simulated requests come from and what they carry.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// Whether the principal is only a stand-in (SimulateCustomPolicy without CallerArn):
    /// its keys (`aws:username`, `aws:PrincipalArn`, …) are then left out of the request.
    pub anonymous: bool,
    pub context: Vec<ContextEntry>,
    /// `ResourceOwner`'s account: owns the resources whose ARNs do not say.
    pub resource_owner: Option<String>,
}

/// The keys `authz::request_for` takes from the transport of a real request (its region,
/// TLS, time, address): a simulation has no transport, so they come only from its
/// ContextEntries, as in IAM's simulator.
const TRANSPORT_KEYS: &[&str] = &[
    "aws:RequestedRegion",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SourceIp",
];

/// The principal's own keys, left out when the caller is a stand-in.
const PRINCIPAL_KEYS: &[&str] = &[
    "aws:username",
    "aws:userid",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalType",
];

/// The request the simulator decides: the request path's (`authz::request_for`) for the
/// caller, with the simulation's context entries in place of the transport's keys.
pub fn request(caller: &Caller, action: &str, resource: &str) -> Request {
    let mut request = authz::request_for(
        &caller.principal,
        action,
        &[resource.to_string()],
        &RequestContext::default(),
    );
    for key in TRANSPORT_KEYS {
        request.remove(key);
    }
    if caller.anonymous {
        for key in PRINCIPAL_KEYS {
            request.remove(key);
        }
    }
    for entry in &caller.context {
        request.set(&entry.key, entry.values.iter().map(String::as_str));
    }
    if let Some(owner) = &caller.resource_owner {
        request = request.with_resource_account(owner);
    }
    request
}

/// A matched statement as the answer names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub id: String,
    pub kind: &'static str,
    pub span: Option<(Position, Position)>,
}

/// The simulation of one action on one resource.
#[derive(Debug, Clone)]
pub struct ResourceResult {
    pub resource: String,
    pub decision: Decision,
    pub matched: Vec<Matched>,
    pub missing: Vec<String>,
    /// EvalDecisionDetails: by kind of policy (`IAM Policy`, `Resource Policy`) for a
    /// cross-account simulation; empty for a named resource of the caller's account; absent
    /// (`None`) for `*`, as IAM documents it.
    pub details: Option<Vec<(&'static str, &'static str)>>,
    /// Whether the permissions boundary allowed, when there is one.
    pub allowed_by_boundary: Option<bool>,
}

/// The simulation of one action on every resource: EvaluationResult.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub action: String,
    /// The first resource ARN, or `*`.
    pub resource: String,
    /// The most restrictive of the resources' decisions.
    pub decision: Decision,
    pub matched: Vec<Matched>,
    pub missing: Vec<String>,
    pub details: Option<Vec<(&'static str, &'static str)>>,
    pub allowed_by_boundary: Option<bool>,
    /// One per resource the simulation named (empty when it named none).
    pub per_resource: Vec<ResourceResult>,
}

/// `allowed`, `explicitDeny`, `implicitDeny`.
pub fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny { .. } => "explicitDeny",
        Decision::ImplicitDeny { .. } => "implicitDeny",
    }
}

fn severity(d: &Decision) -> u8 {
    match d {
        Decision::Allowed => 0,
        Decision::ImplicitDeny { .. } => 1,
        Decision::ExplicitDeny { .. } => 2,
    }
}

/// Simulates `actions` on `resources` (`*` when empty) for `caller` under `policies`.
pub fn simulate(
    policies: &Policies,
    caller: &Caller,
    actions: &[String],
    resources: &[String],
) -> Vec<ActionResult> {
    let named_resources = !resources.is_empty();
    let resources: Vec<String> = if named_resources {
        resources.to_vec()
    } else {
        vec!["*".to_string()]
    };
    actions
        .iter()
        .map(|action| {
            let per: Vec<ResourceResult> = resources
                .iter()
                .map(|r| simulate_one(policies, caller, action, r))
                .collect();
            let worst = per
                .iter()
                .max_by_key(|r| severity(&r.decision))
                .expect("at least one resource")
                .clone();
            let mut missing: Vec<String> = Vec::new();
            for r in &per {
                for k in &r.missing {
                    if !missing.iter().any(|m| m.eq_ignore_ascii_case(k)) {
                        missing.push(k.clone());
                    }
                }
            }
            ActionResult {
                action: action.clone(),
                resource: resources[0].clone(),
                decision: worst.decision,
                matched: worst.matched,
                missing,
                details: worst.details,
                allowed_by_boundary: worst.allowed_by_boundary,
                per_resource: if named_resources { per } else { Vec::new() },
            }
        })
        .collect()
}

fn simulate_one(
    policies: &Policies,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> ResourceResult {
    let request = request(caller, action, resource);
    let decision = evaluate(&request, &policies.set);
    let statements = matching_statements(&request, &policies.set);
    let denied = matches!(decision, Decision::ExplicitDeny { .. });
    // An explicit deny is the only thing that decides when there is one; otherwise the
    // allowing statements are what granted (or would have granted) access.
    let wanted = if denied { Effect::Deny } else { Effect::Allow };
    let matched = statements
        .iter()
        .filter(|(_, e)| *e == wanted)
        .filter_map(|(at, _)| matched(policies, at))
        .collect();
    let by_kind = |kind: PolicySource| {
        let mut verdict = "implicitDeny";
        for (at, effect) in &statements {
            if at.source == kind {
                match effect {
                    Effect::Deny => return "explicitDeny",
                    Effect::Allow => verdict = "allowed",
                }
            }
        }
        verdict
    };
    let cross_account = request.resource_account() != request.principal().account;
    let details = if cross_account {
        Some(vec![
            ("IAM Policy", by_kind(PolicySource::Identity)),
            ("Resource Policy", by_kind(PolicySource::Resource)),
        ])
    } else if resource != "*" {
        Some(Vec::new())
    } else {
        None
    };
    let allowed_by_boundary = policies
        .set
        .permissions_boundary
        .as_ref()
        .map(|_| by_kind(PolicySource::PermissionsBoundary) == "allowed");
    ResourceResult {
        resource: resource.to_string(),
        decision,
        matched,
        missing: missing_keys(policies, &request),
        details,
        allowed_by_boundary,
    }
}

fn matched(policies: &Policies, at: &StatementRef) -> Option<Matched> {
    let source = policies.source(at.source, at.policy)?;
    Some(Matched {
        id: source.id.clone(),
        kind: source.kind,
        span: statement_positions(&source.text).get(at.statement).copied(),
    })
}

/// The context keys named by the statements about the request's action that the request
/// does not give: IAM's MissingContextValues.
fn missing_keys(policies: &Policies, request: &Request) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for (policy, source) in policies.named() {
        let keys = statement_context_keys(&source.text);
        for (statement, keys) in policy.statements().iter().zip(keys) {
            if !statement.matches_action(request.action()) {
                continue;
            }
            for key in keys {
                if request.values(&key).is_none()
                    && !missing.iter().any(|m| m.eq_ignore_ascii_case(&key))
                {
                    missing.push(key);
                }
            }
        }
    }
    missing
}

/// Every context key the policies name (GetContextKeysFor*Policy), each once.
pub fn context_keys<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        for key in statement_context_keys(text).into_iter().flatten() {
            if !out.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
                out.push(key);
            }
        }
    }
    out
}
