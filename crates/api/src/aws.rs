//! The AWS JSON 1.1 front door: every AWS API request is a POST whose `X-Amz-Target` names
//! the operation. Here it is authenticated with SigV4, its body is read under a size limit,
//! and it is handed to the service's dispatcher with the caller's scope (account, region).
//! `AwsError` is the one error-to-response mapper for this protocol.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_registry::Scope;

use crate::{AppState, ecr, ecs, logs, logs_tail};

/// Largest accepted AWS API request body. ECR's UploadLayerPart carries base64 layer parts
/// in JSON; ECR accepts parts of up to 10 MiB, which is 13.4 MiB in base64.
pub const MAX_AWS_BODY: usize = 16 << 20;

/// An error in AWS's JSON shape: `{"__type": code, "message": ...}` with its HTTP status.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A client error (HTTP 400), the status of every modelled ECR/ECS exception.
    pub fn client(code: &str, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> AwsError {
        AwsError::client("InvalidParameterException", message)
    }

    pub fn server(message: impl Into<String>) -> AwsError {
        AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            message,
        )
    }
}

fn json_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

impl AwsError {
    fn into_response_with(self, request_id: &str) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, request_id, "AWS API error");
        }
        let body = serde_json::json!({"__type": self.code, "message": self.message});
        let mut response = json_response(self.status, request_id, body.to_string().into_bytes());
        if let Ok(v) = HeaderValue::from_str(&self.code) {
            response.headers_mut().insert("x-amzn-errortype", v);
        }
        response
    }
}

/// Parse a JSON request body into the operation's typed request. An empty body is `{}`.
/// Unknown fields are ignored; syntax errors are `SerializationException`, missing or
/// mistyped fields `InvalidParameterException` / `SerializationException` as AWS answers.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AwsError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() && e.to_string().starts_with("missing field") {
            let field = e.to_string();
            let field = field.split('`').nth(1).unwrap_or("?").to_string();
            AwsError::invalid_parameter(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ))
        } else if e.is_data() {
            AwsError::client("SerializationException", format!("Invalid request: {e}"))
        } else {
            AwsError::client("SerializationException", "Start of structure or map found where not expected.".to_string())
                .with_detail(&e)
        }
    })
}

impl AwsError {
    fn with_detail(mut self, e: &serde_json::Error) -> AwsError {
        self.message = format!("{} ({e})", self.message);
        self
    }
}

/// What a dispatcher gets: who is calling and where.
pub struct AwsContext {
    pub app: Arc<AppState>,
    pub scope: Scope,
    /// `http://host:port` of this server as clients should reach it.
    pub endpoint: String,
}

pub(crate) fn authenticate(
    app: &AppState,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<berth_sigv4::Verified, AwsError> {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let payload = berth_sigv4::sha256_hex(body);
    let parts = berth_sigv4::RequestParts {
        method,
        path: uri.path(),
        query: uri.query(),
        headers: &pairs,
        payload_sha256: Some(&payload),
    };
    berth_sigv4::verify(&parts, &app.credentials, time::OffsetDateTime::now_utc()).map_err(|e| {
        AwsError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
            e.aws_code(),
            e.message(),
        )
    })
}

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

/// Runs a synchronous dispatcher (store commits wait for their fsync) off the async
/// workers, so that it never stalls other connections.
async fn blocking<F>(dispatch: F) -> Result<Vec<u8>, AwsError>
where
    F: std::future::Future<Output = Result<Vec<u8>, AwsError>> + Send + 'static,
{
    tokio::task::spawn_blocking(move || tokio::runtime::Handle::current().block_on(dispatch))
        .await
        .map_err(|e| AwsError::server(format!("the request's worker failed: {e}")))?
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
    let ctx = AwsContext {
        endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
        scope: Scope::new(app.account.clone(), region),
        app: app.clone(),
    };
    let json = match target.split_once('.') {
        Some((ecr::TARGET_PREFIX, operation)) => ecr::dispatch(&ctx, operation, &body).await,
        // RunTask waits for its placement lane on a oneshot (the lane's thread commits), and
        // DescribeTasks only reads by key: both run on the async workers.
        Some((ecs::TARGET_PREFIX, operation @ ("RunTask" | "DescribeTasks"))) => {
            ecs::dispatch(&ctx, operation, &body).await
        }
        Some((ecs::TARGET_PREFIX, operation)) => {
            let operation = operation.to_string();
            blocking(async move { ecs::dispatch(&ctx, &operation, &body).await }).await
        }
        Some((logs::TARGET_PREFIX, "StartLiveTail")) => {
            return logs_tail::start_live_tail(&ctx, &body)
                .await
                .map(Reply::Stream);
        }
        Some((logs::TARGET_PREFIX, operation)) => {
            let operation = operation.to_string();
            blocking(async move { logs::dispatch(&ctx, &operation, &body).await }).await
        }
        _ => Err(AwsError::client(
            "UnknownOperationException",
            format!("The operation '{target}' is not known to this service"),
        )),
    };
    json.map(Reply::Json)
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        self.into_response_with(&uuid::Uuid::new_v4().to_string())
    }
}

/// Declares a service's typed action enum (`EcrAction::CreateRepository(request)`, ...), its
/// parser from `X-Amz-Target`'s operation and the JSON body, and `dispatch`, which runs the
/// operation's handler `async fn(&AwsContext, Request) -> Result<Response, AwsError>`.
#[macro_export]
macro_rules! aws_actions {
    ($action:ident, $service:literal; $($op:ident($req:ty) => $handler:ident),* $(,)?) => {
        #[doc = concat!("Every ", $service, " operation Berth serves, parsed from `X-Amz-Target` and the body.")]
        // One value per request, moved once: the size of the largest request is no cost.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug)]
        pub enum $action {
            $($op($req),)*
        }

        impl $action {
            pub fn parse(operation: &str, body: &[u8]) -> Result<$action, AwsError> {
                match operation {
                    $(stringify!($op) => Ok($action::$op($crate::aws::parse_body(body)?)),)*
                    other => Err(AwsError::client(
                        "UnknownOperationException",
                        format!("The operation '{other}' is not known to {}", $service),
                    )),
                }
            }
        }

        pub async fn dispatch(ctx: &AwsContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, AwsError> {
            match $action::parse(operation, body)? {
                $($action::$op(req) => Ok(serde_json::to_vec(&$handler(ctx, req).await?)
                    .expect("responses serialise")),)*
            }
        }
    };
}
