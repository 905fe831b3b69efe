//! AWS IAM over the Query protocol (IAM is global: one set per account, whatever region
//! the request is signed for): users and access keys, groups, roles (and service-linked
//! ones), instance profiles, managed and inline policies, tags, server certificates, and
//! the account-wide views (ListEntitiesForPolicy, GetAccountAuthorizationDetails).

mod details;
mod groups;
mod instance_profiles;
mod policies;
mod roles;
mod server_certificates;
mod simulator;
mod users;

use axum::http::StatusCode;
use berth_iam::{IamError, Principal};

use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// Runs an IAM action: its `Result` element's content (`None`: the action has none).
pub async fn dispatch(ctx: &AwsContext, request: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let (ctx, request) = (ctx.clone(), request.clone());
    crate::protocol::json::blocking(move || {
        let action = request.action.as_str();
        if policies::ACTIONS.contains(&action) {
            policies::dispatch(&ctx, &request)
        } else if simulator::ACTIONS.contains(&action) {
            simulator::dispatch(&ctx, &request)
        } else if roles::ACTIONS.contains(&action) {
            roles::dispatch(&ctx, &request)
        } else if groups::ACTIONS.contains(&action) {
            groups::dispatch(&ctx, &request)
        } else if instance_profiles::ACTIONS.contains(&action) {
            instance_profiles::dispatch(&ctx, &request)
        } else if server_certificates::ACTIONS.contains(&action) {
            server_certificates::dispatch(&ctx, &request)
        } else if details::ACTIONS.contains(&action) {
            details::dispatch(&ctx, &request)
        } else {
            users::dispatch(&ctx, &request)
        }
    })
    .await
}

/// IAM's errors in the Query protocol's shape, with IAM's HTTP statuses.
pub(crate) fn iam_error(e: IamError) -> AwsError {
    match e {
        IamError::NoSuchEntity(m) => AwsError::new(StatusCode::NOT_FOUND, "NoSuchEntity", m),
        IamError::EntityAlreadyExists(m) => {
            AwsError::new(StatusCode::CONFLICT, "EntityAlreadyExists", m)
        }
        IamError::DeleteConflict(m) => AwsError::new(StatusCode::CONFLICT, "DeleteConflict", m),
        IamError::LimitExceeded(m) => AwsError::new(StatusCode::CONFLICT, "LimitExceeded", m),
        IamError::Validation(m) => AwsError::client("ValidationError", m),
        IamError::MalformedPolicyDocument(m) => AwsError::client("MalformedPolicyDocument", m),
        IamError::MalformedCertificate(m) => AwsError::client("MalformedCertificate", m),
        IamError::UnmodifiableEntity(m) => AwsError::client("UnmodifiableEntity", m),
        IamError::InvalidInput(m) => AwsError::client("InvalidInput", m),
        IamError::PolicyNotAttachable(m) => AwsError::client("PolicyNotAttachable", m),
        e @ (IamError::Store(_) | IamError::Corrupt(_)) => AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            e.to_string(),
        ),
    }
}

/// The user an action is about: `UserName`, else the calling user (IAM's default).
pub(crate) fn user_name_or_caller(
    ctx: &AwsContext,
    request: &QueryRequest,
) -> Result<String, AwsError> {
    if let Some(name) = request.get("UserName") {
        return Ok(name.to_string());
    }
    match &ctx.principal {
        Principal::User { name, .. } => Ok(name.clone()),
        Principal::Root { .. } | Principal::AssumedRole { .. } => Err(AwsError::client(
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

/// IAM's timestamps: ISO 8601 in UTC, to the second.
pub(crate) fn iso8601(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A policy document as IAM returns it: URL-encoded (RFC 3986; the SDKs decode it).
pub(crate) fn url_encode(document: &str) -> String {
    let mut out = String::with_capacity(document.len() * 2);
    for b in document.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
