//! STS AssumeRole: temporary credentials for a session of a role of any account of the
//! installation, when the role's trust policy and the caller's identity policies allow
//! `sts:AssumeRole` on it (IAM's evaluation: the trust policy is the role's resource-based
//! policy; across accounts both must allow). The session acts in the role's account. The session
//! acts with the role's policies, narrowed by the session policies given (`Policy`,
//! `PolicyArns`).

use berth_iam::Principal;
use berth_iam::policy::{Policy, PolicySet, PolicyType, Request, RequestPrincipal, evaluate};

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
    if seconds > role.max_session_duration {
        return Err(validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }

    // The trust policy and the caller's own policies decide.
    let trust = Policy::parse(&role.assume_role_policy_document, PolicyType::Resource)
        .map_err(|_| refused())?;
    let mut set = PolicySet::new().with_resource(trust);
    for document in iam.identity_policies(&ctx.principal).map_err(iam_error)? {
        if let Ok(policy) = Policy::parse(&document, PolicyType::Identity) {
            set = set.with_identity(policy);
        }
    }
    // A role session that assumes another role is still held to its session policies.
    if let Principal::AssumedRole {
        session_policies, ..
    } = &ctx.principal
    {
        for document in session_policies {
            let policy = Policy::parse(document, PolicyType::Identity).map_err(|_| refused())?;
            set = set.with_session(policy);
        }
    }
    let mut request = Request::new(
        RequestPrincipal::from(&ctx.principal),
        "sts:AssumeRole",
        role_arn,
    )
    .with_resource_account(&account)
    .with_time(time::OffsetDateTime::now_utc())
    .with_key("sts:RoleSessionName", session_name);
    if let Some(external) = r.get("ExternalId") {
        request = request.with_key("sts:ExternalId", external);
    }
    let decision = evaluate(&request, &set);
    if !decision.is_allowed() {
        return Err(decision
            .message(&request)
            .map(access_denied)
            .unwrap_or_else(refused));
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
