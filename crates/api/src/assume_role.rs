//! STS AssumeRole: temporary credentials for a session of a role of any account of the
//! installation, when the role's trust policy and the caller's identity policies allow
//! `sts:AssumeRole` on it (IAM's evaluation: the trust policy is the role's resource-based
//! policy; across accounts both must allow), with the request's global condition keys. The
//! session acts in the role's account, with the role's policies, narrowed by the session
//! policies given (`Policy`, `PolicyArns`). Session tags (`Tags`, which the trust policy must
//! also allow with `sts:TagSession`) become the session's `aws:PrincipalTag/…` over the
//! role's tags; `TransitiveTagKeys` pass on to a role the session assumes in turn (role
//! chaining, at most one hour).

use berth_iam::Principal;
use berth_iam::policy::{Policy, PolicyType, evaluate};

use crate::authz;
use crate::iam::iam_error;
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};
use crate::sts_session::{credentials_xml, min_session_seconds};

fn access_denied(message: impl Into<String>) -> AwsError {
    AwsError::new(axum::http::StatusCode::FORBIDDEN, "AccessDenied", message)
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::client("ValidationError", message)
}

pub(crate) fn assume_role(ctx: &AwsContext, r: &QueryRequest) -> Result<Xml, AwsError> {
    let iam = &ctx.app.iam;
    let role_arn = r.required("RoleArn")?;
    let session_name = r.required("RoleSessionName")?;
    if !(2..=64).contains(&session_name.len())
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    if matches!(ctx.principal, Principal::Root { .. }) {
        return Err(access_denied("Roles may not be assumed by root accounts."));
    }
    let refused = || {
        access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            ctx.principal.arn()
        ))
    };
    // A role of this account or of another account of the installation, whose trust
    // policy then has to name this account (or the caller) and the caller's own policies
    // allow it as well.
    let Some((account, name)) = role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .and_then(|(account, rest)| Some((account.to_string(), rest.rsplit('/').next()?)))
        .filter(|(account, _)| ctx.app.is_account(account))
    else {
        return Err(refused());
    };
    let role = match iam.get_role(&account, name) {
        Ok(role) if role.arn == role_arn => role,
        Ok(_) | Err(berth_iam::IamError::NoSuchEntity(_)) => return Err(refused()),
        Err(e) => return Err(iam_error(e)),
    };
    let seconds = r.int("DurationSeconds")?.unwrap_or(3600);
    if seconds < min_session_seconds() {
        return Err(validation(format!(
            "1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {}",
            min_session_seconds()
        )));
    }
    // Role chaining (temporary credentials assuming a role): one hour at most.
    if ctx.temporary && seconds > 3600 {
        return Err(validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if seconds > role.max_session_duration {
        return Err(validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let tags = session_tags(ctx, r)?;

    // The trust policy and the caller's own policies decide (the request path's policy set
    // for the caller: identity, groups', session policies), with the request's global keys.
    let trust = Policy::parse(&role.assume_role_policy_document, PolicyType::Resource)
        .map_err(|_| refused())?;
    let set = authz::policy_set(iam, &ctx.principal)?.with_resource(trust);
    let mut keys = ctx.keys.clone();
    if set.tag_keys().principal_tag {
        keys.principal_tags = iam.principal_tags(&ctx.principal).map_err(iam_error)?;
    }
    keys.service_keys
        .push(("sts:RoleSessionName".to_string(), session_name.to_string()));
    if let Some(external) = r.get("ExternalId") {
        keys.service_keys
            .push(("sts:ExternalId".to_string(), external.to_string()));
    }
    let decide = |action: &str, keys: &authz::RequestContext| {
        let request = authz::request_for(&ctx.principal, action, &[role_arn.to_string()], keys)
            .with_resource_account(&account);
        let decision = evaluate(&request, &set);
        match decision.is_allowed() {
            true => Ok(()),
            false => Err(decision
                .message(&request)
                .map(access_denied)
                .unwrap_or_else(refused)),
        }
    };
    decide("sts:AssumeRole", &keys)?;
    // Session tags need sts:TagSession too, with the tags as the request's tags.
    if !tags.given.is_empty() {
        let mut keys = keys.clone();
        keys.service_keys
            .extend(authz::request_tag_keys(&tags.given));
        decide("sts:TagSession", &keys)?;
    }

    // Session policies: the session may do only what they allow as well.
    let mut session_policies = Vec::new();
    if let Some(inline) = r.get("Policy") {
        Policy::parse(inline, PolicyType::Identity)
            .map_err(|e| AwsError::client("MalformedPolicyDocument", e.to_string()))?;
        session_policies.push(inline.to_string());
    }
    for arn in r.structs("PolicyArns").iter().filter_map(|m| m.get("arn")) {
        session_policies.push(iam.managed_document(&account, arn).map_err(iam_error)?);
    }
    let session = iam
        .issue_session(
            Principal::AssumedRole {
                account: account.clone(),
                role_name: role.role_name.clone(),
                role_arn: role.arn.clone(),
                role_id: role.role_id.clone(),
                session_name: session_name.to_string(),
                session_policies,
                session_tags: tags.all,
                transitive_tag_keys: tags.transitive,
            },
            seconds,
        )
        .map_err(iam_error)?;
    // The session exists now: a failure to note the role's use must not hide it.
    if let Err(e) = iam.role_used(&account, &role.role_name, ctx.scope.region.as_str()) {
        tracing::warn!(error = %e, "cannot record a role's last use");
    }
    let mut xml = Xml::default();
    xml.element("Credentials", |x| credentials_xml(x, &session));
    xml.element("AssumedRoleUser", |x| {
        x.leaf("AssumedRoleId", session.principal.user_id())
            .leaf("Arn", session.principal.arn());
    });
    Ok(xml)
}

/// The most session tags AssumeRole takes, and their keys' and values' lengths.
const MAX_SESSION_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// A new session's tags.
struct SessionTags {
    /// The tags the request passes (`Tags`).
    given: Vec<(String, String)>,
    /// Those and the calling session's transitive tags: the new session's tags.
    all: Vec<(String, String)>,
    /// The keys that pass on again: the calling session's transitive ones and
    /// `TransitiveTagKeys`.
    transitive: Vec<String>,
}

/// AssumeRole's `Tags` and `TransitiveTagKeys`, with the transitive tags a calling role
/// session passes on (role chaining), which a request cannot change.
fn session_tags(ctx: &AwsContext, r: &QueryRequest) -> Result<SessionTags, AwsError> {
    let given = authz::query_request_tags(r);
    if given.len() > MAX_SESSION_TAGS {
        return Err(validation(format!(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_SESSION_TAGS}"
        )));
    }
    for (key, value) in &given {
        if key.is_empty() || key.len() > MAX_TAG_KEY || value.len() > MAX_TAG_VALUE {
            return Err(validation(format!(
                "1 validation error detected: Value '{key}' at 'tags' failed to satisfy constraint: tag keys have 1 to {MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}"
            )));
        }
        if given
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .count()
            > 1
        {
            return Err(validation(format!(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive: {key}"
            )));
        }
    }
    let mut transitive: Vec<String> = Vec::new();
    for key in r.list("TransitiveTagKeys") {
        if !given.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(validation(format!(
                "The transitive tag key {key} is not one of the session tags passed."
            )));
        }
        transitive.push(key.to_string());
    }
    let mut all = given.clone();
    if let Principal::AssumedRole {
        session_tags,
        transitive_tag_keys,
        ..
    } = &ctx.principal
    {
        for key in transitive_tag_keys {
            let Some((_, value)) = session_tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            else {
                continue;
            };
            match all.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                Some((_, v)) if v != value => {
                    return Err(validation(format!(
                        "The session tag {key} is transitive from the calling session and cannot be set to another value."
                    )));
                }
                Some(_) => {}
                None => all.push((key.clone(), value.clone())),
            }
            if !transitive.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                transitive.push(key.clone());
            }
        }
    }
    Ok(SessionTags {
        given,
        all,
        transitive,
    })
}
