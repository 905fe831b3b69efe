//! AWS STS over the Query protocol: GetCallerIdentity, AssumeRole, GetSessionToken,
//! GetAccessKeyInfo. GetCallerIdentity, which every infrastructure tool calls first, says
//! who the request's credentials belong to — the account's root (ARN
//! `arn:aws:iam::ACCOUNT:root`, user id the account id, as AWS answers for root
//! credentials) or an IAM user.

use crate::protocol::query::{Namespace, QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};
use crate::sts_session::{credentials_xml, min_session_seconds};

pub const NAMESPACE: Namespace = Namespace("https://sts.amazonaws.com/doc/2011-06-15/");

/// Runs an STS action: its `Result` element's content.
pub async fn dispatch(ctx: &AwsContext, request: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    match request.action.as_str() {
        "GetCallerIdentity" => Ok(Some(get_caller_identity(ctx))),
        "AssumeRole" => {
            let (ctx, request) = (ctx.clone(), request.clone());
            crate::protocol::json::blocking(move || crate::assume_role::assume_role(&ctx, &request))
                .await
                .map(Some)
        }
        "GetSessionToken" => {
            let (ctx, request) = (ctx.clone(), request.clone());
            crate::protocol::json::blocking(move || get_session_token(&ctx, &request))
                .await
                .map(Some)
        }
        "GetAccessKeyInfo" => {
            let (ctx, request) = (ctx.clone(), request.clone());
            crate::protocol::json::blocking(move || get_access_key_info(&ctx, &request))
                .await
                .map(Some)
        }
        other => Err(AwsError::client(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

/// GetCallerIdentity: needs no permission (AWS answers it even when a policy denies it).
fn get_caller_identity(ctx: &AwsContext) -> Xml {
    let who = &ctx.principal;
    let mut xml = Xml::default();
    xml.leaf("Arn", who.arn())
        .leaf("UserId", who.user_id())
        .leaf("Account", who.account());
    xml
}

/// GetSessionToken: temporary credentials acting as the caller. Refused to callers that
/// are already on temporary credentials, as STS does.
fn get_session_token(ctx: &AwsContext, request: &QueryRequest) -> Result<Xml, AwsError> {
    if ctx.temporary {
        return Err(AwsError::new(
            axum::http::StatusCode::FORBIDDEN,
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    let root = matches!(ctx.principal, berth_iam::Principal::Root { .. });
    let seconds = berth_iam::session_token_duration(
        request.int("DurationSeconds")?,
        root,
        min_session_seconds(),
    )
    .map_err(crate::iam::iam_error)?;
    let session = ctx
        .app
        .iam
        .issue_session(ctx.principal.clone(), seconds)
        .map_err(crate::iam::iam_error)?;
    let mut xml = Xml::default();
    xml.element("Credentials", |x| credentials_xml(x, &session));
    Ok(xml)
}

/// GetAccessKeyInfo: the account an access key belongs to — the root credentials', an IAM
/// user's (active or not) or temporary credentials' (`ASIA…`), of any account of the
/// installation. AWS decodes the account from the key id itself; Berth's key ids carry no
/// account, so a key Berth does not know (or no longer knows) is refused, as the API
/// reference allows for a deleted key.
fn get_access_key_info(ctx: &AwsContext, request: &QueryRequest) -> Result<Xml, AwsError> {
    let id = request.required("AccessKeyId")?;
    if id.len() < 16
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{id}' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]* and have length between 16 and 128"
            ),
        ));
    }
    let app = &ctx.app;
    let account = if id == app.credentials.access_key_id {
        Some(app.account.to_string())
    } else if id.starts_with("ASIA") {
        app.iam
            .session(id)
            .map_err(crate::iam::iam_error)?
            .map(|s| s.principal.account().to_string())
    } else {
        match app.iam.access_key(id).map_err(crate::iam::iam_error)? {
            Some(key) => Some(key.account),
            // The root key of another account of the installation (`berth accounts`).
            None => app
                .iam
                .account_root_key(id)
                .map_err(crate::iam::iam_error)?
                .map(|a| a.account_id),
        }
    };
    let account = account.ok_or_else(|| {
        AwsError::client(
            "InvalidParameterValue",
            format!("The access key ID {id} does not exist."),
        )
    })?;
    let mut xml = Xml::default();
    xml.leaf("Account", account);
    Ok(xml)
}
