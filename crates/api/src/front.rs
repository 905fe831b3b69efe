//! The front door of the AWS APIs on Berth's port: a request's body is read under a size
//! limit, it is authenticated (SigV4), and handed by its `X-Amz-Target` to its service's
//! dispatcher with the caller's scope (account, region).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_registry::Scope;

use crate::protocol::json::{MAX_AWS_BODY, json_response};
use crate::protocol::query;
use crate::protocol::signature::{Authenticated, authenticate, scope_service};
use crate::protocol::{AwsContext, AwsError};
use crate::{AppState, authz, ecr, ecs, forward, iam, logs, logs_tail, sts};

/// The handler for every AWS API request: JSON (by `X-Amz-Target`) or Query (a form).
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let wire = wire_of(&request);
    match handle_inner(app, request, wire, &request_id).await {
        Ok(Reply::Json(body)) => json_response(StatusCode::OK, &request_id, body),
        Ok(Reply::Stream(response)) => response,
        Err(e) => match wire {
            Wire::Json => e.into_response_with(&request_id),
            Wire::Query(namespace) => query::error_response(namespace, &e, &request_id),
        },
    }
}

/// JSON when the request names its operation in `X-Amz-Target`, else Query when it is a
/// form (or a GET naming its `Action`).
fn wire_of(request: &Request) -> Wire {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if header("x-amz-target").is_none()
        && query::is_query(
            request.method().as_str(),
            header("content-type"),
            request.uri().query(),
        )
    {
        let service = scope_service(request.headers(), request.uri());
        Wire::Query(query_namespace(service.as_deref()))
    } else {
        Wire::Json
    }
}

/// The protocol a request speaks, and so its answers and errors.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Json,
    Query(query::Namespace),
}

/// The XML namespace of a Query service's answers.
fn query_namespace(service: Option<&str>) -> query::Namespace {
    match service {
        Some("iam") => query::Namespace("https://iam.amazonaws.com/doc/2010-05-08/"),
        _ => sts::NAMESPACE,
    }
}

/// A successful answer: a JSON body, or a response made whole (a stream, an XML answer).
enum Reply {
    Json(Vec<u8>),
    Stream(Response),
}

async fn handle_inner(
    app: Arc<AppState>,
    request: Request,
    wire: Wire,
    request_id: &str,
) -> Result<Reply, AwsError> {
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
            match wire {
                Wire::Json => e.aws_code(),
                Wire::Query(_) => e.query_code(),
            },
            e.message(),
        ));
    }
    let body = axum::body::to_bytes(body, MAX_AWS_BODY)
        .await
        .map_err(|_| too_large())?;
    let Authenticated {
        verified,
        principal,
        temporary,
    } = authenticate(
        &app,
        parts.method.as_str(),
        &parts.uri,
        &parts.headers,
        &body,
        matches!(wire, Wire::Query(_)),
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
    if let Wire::Query(namespace) = wire {
        // A presigned URL signs its query, not a body (UNSIGNED-PAYLOAD): a body sent with
        // one must not add or override parameters.
        let form: &[u8] = if verified.presigned { b"" } else { &body };
        let request = query::QueryRequest::parse(parts.uri.query(), form)?;
        if !matches!(principal, berth_iam::Principal::Root { .. }) {
            // The resources (IAM entities' ARNs are read from the store) and the decision
            // in one trip to the blocking pool; the root account needs neither.
            let action = format!("{}:{}", verified.service, request.action);
            let context = request_context(&parts, &verified.region);
            let (app, request, who) = (app.clone(), request.clone(), principal.clone());
            crate::protocol::json::blocking(move || {
                let account = app.account.to_string();
                let lookup = |kind: &str, name: &str| match kind {
                    "user" => app.iam.get_user(&account, name).ok().map(|u| u.arn),
                    _ => app.iam.get_role(&account, name).ok().map(|r| r.arn),
                };
                let resources = authz::query_resources(&request, &account, &who, lookup);
                authz::authorize(
                    &app.iam,
                    &who,
                    &action,
                    &resources,
                    &context,
                    authz::Refusal::Query,
                )
            })
            .await?;
        }
        let ctx = AwsContext {
            endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
            scope: Scope::new(app.account.clone(), region),
            app: app.clone(),
            principal,
            temporary,
        };
        let result = match verified.service.as_str() {
            "sts" => sts::dispatch(&ctx, &request).await?,
            "iam" => iam::dispatch(&ctx, &request).await?,
            service => {
                return Err(AwsError::client(
                    "InvalidAction",
                    format!(
                        "The action {} is not valid for this web service ({service}).",
                        request.action
                    ),
                ));
            }
        };
        return Ok(Reply::Stream(query::response(
            namespace,
            &request.action,
            request_id,
            result,
        )));
    }
    if let Some((prefix, operation)) = target.split_once('.') {
        let service = match prefix {
            ecr::TARGET_PREFIX => "ecr",
            ecs::TARGET_PREFIX => "ecs",
            logs::TARGET_PREFIX => "logs",
            _ => "",
        };
        // The signature must be for the service the target names: a request (or presigned
        // URL) signed for one service is not good for another's operations.
        if !service.is_empty() && verified.service != service {
            return Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{service}'. "),
            ));
        }
        if !service.is_empty() && !matches!(principal, berth_iam::Principal::Root { .. }) {
            let action = format!("{service}:{operation}");
            let scope = Scope::new(app.account.clone(), region.clone());
            let resources = authz::resources(service, operation, &body, &scope);
            let mut context = request_context(&parts, &verified.region);
            context.service_keys = authz::service_keys(service, operation, &body, &scope);
            check(
                &app,
                &principal,
                action,
                resources,
                context,
                authz::Refusal::Json,
            )
            .await?;
        }
    }
    if let Some(answer) = forward_to_leader(&app, target, &parts, &body).await? {
        return Ok(Reply::Stream(answer));
    }
    let ctx = AwsContext {
        endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
        scope: Scope::new(app.account.clone(), region),
        app: app.clone(),
        principal,
        temporary,
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

/// Authorizes from memory on this async worker when IAM can (the caller's policies cached
/// and known current without a store read), else on the blocking pool (the caller's
/// policies are read from the store); the root account is allowed at once.
async fn check(
    app: &Arc<AppState>,
    principal: &berth_iam::Principal,
    action: String,
    resources: Vec<String>,
    context: authz::RequestContext,
    refusal: authz::Refusal,
) -> Result<(), AwsError> {
    if matches!(principal, berth_iam::Principal::Root { .. }) {
        return Ok(());
    }
    if let Some(decided) =
        authz::authorize_from_memory(&app.iam, principal, &action, &resources, &context, refusal)
    {
        return decided;
    }
    let (app, principal) = (app.clone(), principal.clone());
    crate::protocol::json::blocking(move || {
        authz::authorize(&app.iam, &principal, &action, &resources, &context, refusal)
    })
    .await
}

/// The global condition keys a request gives: its region, the client's address.
fn request_context(parts: &axum::http::request::Parts, region: &str) -> authz::RequestContext {
    authz::RequestContext {
        region: region.to_string(),
        source_ip: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        secure_transport: false,
        service_keys: Vec::new(),
    }
}
