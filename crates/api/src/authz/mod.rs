//! Authorization of every AWS API request, after its signature is checked. The account's
//! root credentials are unrestricted. Any other principal is allowed what its identity
//! policies (inline and attached, default versions) allow, by IAM's evaluation
//! (`berth_iam::policy`): an explicit deny wins, else an allow, else an implicit deny —
//! except the actions that need no permission (`sts:GetCallerIdentity`,
//! `sts:GetSessionToken`).

mod pass_role;
mod resource_policy;
mod resources;
mod tags;

use std::sync::{Arc, LazyLock};

use axum::http::StatusCode;
use berth_iam::Principal;
use berth_iam::policy::{Policy, PolicySet, PolicyType, Request, RequestPrincipal, evaluate};

pub use pass_role::{PASSES_ROLES, TaskRoles, passed_roles};
pub use resource_policy::{ResourcePolicy, repository_policy, secret_policy};
pub use resources::{
    autoscaling_resources, ec2_resources, elbv2_resources, query_resources, resources, service_keys,
};
pub use tags::{
    json_request_tags, query_request_tags, request_tag_keys, resource_tag_keys, tagged_resource,
};

use crate::protocol::AwsError;

/// Actions every principal may call: AWS checks no permission for them.
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity", "sts:GetSessionToken"];

/// Actions that authorize themselves: AssumeRole evaluates the role's trust policy with the
/// caller's policies (in `assume_role.rs`).
const CHECKED_BY_THE_ACTION: &[&str] = &["sts:AssumeRole"];

/// The protocol a refusal is written in: its code differs.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// JSON services: `AccessDeniedException` (HTTP 400).
    Json,
    /// Query services: `AccessDenied` (HTTP 403).
    Query,
}

/// Whether `principal` may perform `action` (`service:Operation`) on every one of
/// `resources` (ARNs, or `*`): the root account may; anyone else by IAM's evaluation of
/// their identity policies (explicit deny, else an allow, else implicit deny).
pub fn authorize(
    iam: &berth_iam::Iam,
    principal: &Principal,
    action: &str,
    resources: &[String],
    context: &RequestContext,
    refusal: Refusal,
) -> Result<(), AwsError> {
    authorize_on(
        iam,
        principal,
        action,
        resources,
        context,
        refusal,
        OnResource::default(),
    )
}

/// What the resource of a request brings to its decision besides its ARN.
#[derive(Clone, Copy, Default)]
pub struct OnResource<'a> {
    /// Its own policy (an ECR repository's) and account, which may be another than the
    /// caller's. `None`: the caller's account, no resource policy.
    pub policy: Option<&'a ResourcePolicy>,
    /// Its tag keys (`aws:ResourceTag/…`), looked up only when one of the policies names
    /// such a key.
    pub tags: Option<&'a dyn Fn() -> Vec<(String, String)>>,
}

/// [`authorize`] on a resource that may have its own policy and tags, and may belong to
/// another account of the installation. An account's root is unrestricted in its own
/// account only.
pub fn authorize_on(
    iam: &berth_iam::Iam,
    principal: &Principal,
    action: &str,
    resources: &[String],
    context: &RequestContext,
    refusal: Refusal,
    on: OnResource<'_>,
) -> Result<(), AwsError> {
    let own_account = on.policy.is_none_or(|r| r.account == principal.account());
    if exempt(principal, action, own_account) {
        return Ok(());
    }
    let mut set = policy_set(iam, principal)?;
    if let Some(resource) = on.policy {
        // Added per request, outside any cache of the caller's own policies.
        if let Some(policy) = resource.parsed() {
            set = set.with_resource(policy);
        }
    }
    let named = set.tag_keys();
    let mut context = context.clone();
    if named.principal_tag {
        context.principal_tags = iam
            .principal_tags(principal)
            .map_err(|e| AwsError::server(format!("cannot read the caller's tags: {e}")))?;
    }
    if let (true, Some(tags)) = (named.resource_tag, on.tags) {
        context.service_keys.extend(tags());
    }
    let account = on.policy.map(|r| r.account.as_str());
    decide(
        &set, principal, action, resources, &context, refusal, account,
    )
}

/// [`authorize`] from memory alone, when IAM holds the caller's policies and can tell they
/// are current without reading the store (`berth_iam::Iam::cached_identity_policies`) and
/// they test no tags (which are read from the store): no store call, so the request path
/// may decide on its async worker. `None`: call [`authorize`] (on the blocking pool).
pub fn authorize_from_memory(
    iam: &berth_iam::Iam,
    principal: &Principal,
    action: &str,
    resources: &[String],
    context: &RequestContext,
    refusal: Refusal,
) -> Option<Result<(), AwsError>> {
    if exempt(principal, action, true) {
        return Some(Ok(()));
    }
    let identity = iam.cached_identity_policies(principal)?;
    let set = with_session_policies(iam, principal, &identity);
    let named = set.tag_keys();
    if named.principal_tag || named.resource_tag {
        return None;
    }
    Some(decide(
        &set, principal, action, resources, context, refusal, None,
    ))
}

/// The principals and actions no policy is evaluated for.
/// An account's root is exempt in its own account only (`own_account`: the resources are
/// the caller's account's).
fn exempt(principal: &Principal, action: &str, own_account: bool) -> bool {
    (own_account && matches!(principal, Principal::Root { .. }))
        || NEEDS_NO_PERMISSION.contains(&action)
        || CHECKED_BY_THE_ACTION.contains(&action)
}

/// IAM's decision for the request over `set`, refused in the protocol's words;
/// `resource_account`: the resources' account when another than their ARNs say.
fn decide(
    set: &PolicySet,
    principal: &Principal,
    action: &str,
    resources: &[String],
    context: &RequestContext,
    refusal: Refusal,
    resource_account: Option<&str>,
) -> Result<(), AwsError> {
    let mut request = request_for(principal, action, resources, context);
    if let Some(account) = resource_account {
        request = request.with_resource_account(account);
    }
    let decision = evaluate(&request, set);
    if decision.is_allowed() {
        return Ok(());
    }
    let message = decision.message(&request).unwrap_or_else(|| {
        format!(
            "User: {} is not authorized to perform: {action}",
            principal.arn()
        )
    });
    Err(match refusal {
        Refusal::Json => AwsError::client("AccessDeniedException", message),
        Refusal::Query => AwsError::new(StatusCode::FORBIDDEN, "AccessDenied", message),
    })
}

/// The policies that apply to `principal`'s requests: its identity policies (inline and
/// attached, default versions) and, for a role session, the session policies. The request
/// path and the policy simulator both build their sets here, so they decide alike. The
/// identity policies come parsed from IAM's cache while the account's IAM generation is
/// unchanged (one store read), session policies from the cache of parsed documents.
pub fn policy_set(iam: &berth_iam::Iam, principal: &Principal) -> Result<PolicySet, AwsError> {
    let identity = iam
        .parsed_identity_policies(principal)
        .map_err(|e| AwsError::server(format!("cannot read the caller's policies: {e}")))?;
    Ok(with_session_policies(iam, principal, &identity))
}

/// A set of `identity` policies and, for a role session, its session policies (parsed once
/// per distinct document).
fn with_session_policies(
    iam: &berth_iam::Iam,
    principal: &Principal,
    identity: &[Arc<Policy>],
) -> PolicySet {
    let mut set = PolicySet::new();
    for policy in identity {
        set = set.with_identity(policy.clone());
    }
    if let Principal::AssumedRole {
        session_policies, ..
    } = principal
    {
        for document in session_policies {
            match iam.parsed_policy(document, PolicyType::Identity) {
                Ok(policy) => set = set.with_session(policy),
                // A session policy that cannot be read allows nothing.
                Err(_) => set = set.with_session(deny_all()),
            }
        }
    }
    set
}

/// The request as the evaluator sees it: who, what, on which resources, with the global
/// condition keys the request gives (`aws:RequestedRegion`, `aws:SecureTransport`,
/// `aws:SourceIp`, `aws:CurrentTime`) and the service's own keys.
pub fn request_for(
    principal: &Principal,
    action: &str,
    resources: &[String],
    context: &RequestContext,
) -> Request {
    let mut caller = RequestPrincipal::from(principal);
    for (key, value) in &context.principal_tags {
        caller = caller.with_tag(key, value);
    }
    let mut request = Request::new(
        caller,
        action,
        resources.first().map_or("*", String::as_str),
    )
    .with_time(time::OffsetDateTime::now_utc())
    .with_key("aws:RequestedRegion", &context.region)
    .with_key(
        "aws:SecureTransport",
        if context.secure_transport {
            "true"
        } else {
            "false"
        },
    );
    if let Some(ip) = &context.source_ip {
        request = request.with_key("aws:SourceIp", ip);
    }
    // A key given more than once (`aws:TagKeys`) has all those values.
    let mut given: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, value) in &context.service_keys {
        match given.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, values)) => values.push(value),
            None => given.push((key, vec![value])),
        }
    }
    for (key, values) in given {
        request = request.with_values(key, values);
    }
    for resource in resources.iter().skip(1) {
        request = request.with_resource(resource);
    }
    request
}

/// A policy that allows nothing (stands in for a session policy that cannot be read).
fn deny_all() -> Arc<Policy> {
    static DENY_ALL: LazyLock<Arc<Policy>> = LazyLock::new(|| {
        Arc::new(
            Policy::parse(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
                PolicyType::Identity,
            )
            .expect("a constant policy parses"),
        )
    });
    DENY_ALL.clone()
}

/// What a request says about itself for the global condition keys.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// `aws:RequestedRegion`: the region the request is signed for.
    pub region: String,
    /// `aws:SourceIp`: the client's address.
    pub source_ip: Option<String>,
    /// `aws:SecureTransport`: whether the request came over TLS (Berth serves plain HTTP).
    pub secure_transport: bool,
    /// The service's own condition keys the request gives (`ecs:cluster`, …), and the tag
    /// keys (`aws:RequestTag/…`, `aws:TagKeys`, `aws:ResourceTag/…`); a key given more than
    /// once has every value given.
    pub service_keys: Vec<(String, String)>,
    /// `aws:PrincipalTag/…`: the calling user's or role's tags (`authorize` reads them).
    pub principal_tags: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_may_do_anything_and_a_user_without_policies_only_ask_who_it_is() {
        let root = Principal::Root {
            account: "000000000000".into(),
        };
        let iam = berth_iam::Iam::new(std::sync::Arc::new(berth_store::MemStore::new()));
        let cx = RequestContext::default();
        let any = ["*".to_string()];
        assert!(authorize(&iam, &root, "ecs:RunTask", &any, &cx, Refusal::Json).is_ok());
        let user = Principal::User {
            account: "000000000000".into(),
            name: "ci".into(),
            id: "AIDAEXAMPLE0000000000".into(),
            arn: "arn:aws:iam::000000000000:user/ci".into(),
        };
        assert!(
            authorize(
                &iam,
                &user,
                "sts:GetCallerIdentity",
                &any,
                &cx,
                Refusal::Query
            )
            .is_ok()
        );
        let e = authorize(&iam, &user, "ecs:ListClusters", &any, &cx, Refusal::Json).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message,
            "User: arn:aws:iam::000000000000:user/ci is not authorized to perform: ecs:ListClusters on resource: * because no identity-based policy allows the ecs:ListClusters action"
        );
        let e = authorize(&iam, &user, "iam:GetUser", &any, &cx, Refusal::Query).unwrap_err();
        assert_eq!((e.code.as_str(), e.status.as_u16()), ("AccessDenied", 403));
    }
}
