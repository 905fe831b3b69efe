//! The front door of the AWS APIs on Berth's port: a request's body is read under a size
//! limit, it is authenticated (SigV4), and handed by its `X-Amz-Target` to its service's
//! dispatcher with the caller's scope (account, region).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_registry::Scope;

use crate::protocol::json::{MAX_AWS_BODY, json_response};
use crate::protocol::signature::authenticate;
use crate::protocol::{AwsContext, AwsError};
use crate::{AppState, ecr, ecs, forward, logs, logs_tail};

/// The handler for every AWS JSON API request.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    match handle_inner(app, request).await {
        Ok(Reply::Json(body)) => json_response(StatusCode::OK, &request_id, body),
        Ok(Reply::Stream(response)) => response,
        Err(e) => e.into_response_with(&request_id),
    }
}

/// A successful answer: a JSON body, or a streamed response (StartLiveTail).
enum Reply {
    Json(Vec<u8>),
    Stream(Response),
}

async fn handle_inner(app: Arc<AppState>, request: Request) -> Result<Reply, AwsError> {
    let (parts, body) = request.into_parts();
    let too_large = || {
        AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("Request body must be at most {MAX_AWS_BODY} bytes"),
        )
    };
    if parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_AWS_BODY)
    {
        return Err(too_large());
    }
    // Nothing unauthenticated gets its body buffered: a request without any signature is
    // refused before its body is read (the signature itself needs the body's hash).
    let signed = parts.headers.contains_key("authorization")
        || parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("X-Amz-Algorithm=")));
    if !signed {
        let e = berth_sigv4::SigV4Error::MissingAuthenticationToken;
        return Err(AwsError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
            e.aws_code(),
            e.message(),
        ));
    }
    let body = axum::body::to_bytes(body, MAX_AWS_BODY)
        .await
        .map_err(|_| too_large())?;
    let verified = authenticate(
        &app,
        parts.method.as_str(),
        &parts.uri,
        &parts.headers,
        &body,
    )?;
    let region = verified.region.parse().map_err(|_| {
        AwsError::client(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region, not '{}'.",
                verified.region
            ),
        )
    })?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(answer) = forward_to_leader(&app, target, &parts, &body).await? {
        return Ok(Reply::Stream(answer));
    }
    let ctx = AwsContext {
        endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
        scope: Scope::new(app.account.clone(), region),
        app: app.clone(),
    };
    let json = match target.split_once('.') {
        Some((ecr::TARGET_PREFIX, operation)) => ecr::dispatch(ctx, operation, &body).await,
        Some((ecs::TARGET_PREFIX, operation)) => ecs::dispatch(ctx, operation, &body).await,
        Some((logs::TARGET_PREFIX, "StartLiveTail")) => {
            return logs_tail::start_live_tail(&ctx, &body)
                .await
                .map(Reply::Stream);
        }
        Some((logs::TARGET_PREFIX, operation)) => logs::dispatch(ctx, operation, &body).await,
        _ => Err(AwsError::client(
            "UnknownOperationException",
            format!("The operation '{target}' is not known to this service"),
        )),
    };
    json.map(Reply::Json)
}

/// RunTask on a replica that does not lead goes to the leader, whose placement lane for the
/// cluster is the only one (see `forward.rs`). `None`: serve it here.
async fn forward_to_leader(
    app: &AppState,
    target: &str,
    parts: &axum::http::request::Parts,
    body: &bytes::Bytes,
) -> Result<Option<Response>, AwsError> {
    let Some(route) = &app.leader else {
        return Ok(None);
    };
    if target.strip_prefix(ecs::TARGET_PREFIX) != Some(".RunTask")
        || parts.headers.contains_key(forward::FORWARDED_BY)
    {
        return Ok(None);
    }
    let Some(leader) = route.leader_elsewhere() else {
        return Ok(None);
    };
    match route.forward(&leader, parts, body.clone()).await {
        Ok(answer) => Ok(Some(answer)),
        Err(e @ forward::ForwardError::Unreachable(..)) => {
            tracing::warn!(error = %e, "placing here instead of on the leader");
            Ok(None)
        }
        Err(e) => Err(AwsError::server(format!(
            "The request was passed to the leading replica, which did not answer; it may have been carried out ({e})."
        ))),
    }
}
