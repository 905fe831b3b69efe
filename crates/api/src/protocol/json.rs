//! AWS's JSON 1.0/1.1 protocol, shared by every service that speaks it (ECR, ECS, CloudWatch
//! Logs): the typed action table (`aws_actions!`: one row per operation, each saying
//! whether its handler may block), the body parser (unknown fields ignored, AWS's errors
//! for bad ones) and `AwsError`, the one error-to-response mapper of the protocol.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_registry::Scope;

use crate::AppState;

/// Largest accepted AWS API request body. ECR's UploadLayerPart carries base64 layer parts
/// in JSON; ECR accepts parts of up to 10 MiB, which is 13.4 MiB in base64.
pub const MAX_AWS_BODY: usize = 16 << 20;

/// An error in AWS's JSON shape: `{"__type": code, "message": ...}` with its HTTP status.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The exception's own members (e.g. InvalidLayerPartException's
    /// `lastValidByteReceived`), serialised next to `__type` and `message`.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    /// The same error with one more member of the exception's shape.
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> AwsError {
        self.fields.insert(name.to_string(), value.into());
        self
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

pub(crate) fn json_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
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
    pub(crate) fn into_response_with(self, request_id: &str) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, request_id, "AWS API error");
        }
        let mut body = self.fields;
        body.insert("__type".into(), self.code.clone().into());
        body.insert("message".into(), self.message.into());
        let body = serde_json::Value::Object(body);
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
#[derive(Clone)]
pub struct AwsContext {
    pub app: Arc<AppState>,
    pub scope: Scope,
    /// `http://host:port` of this server as clients should reach it.
    pub endpoint: String,
    /// Who signed the request.
    pub principal: berth_iam::Principal,
    /// Whether they signed it with temporary credentials (an STS session).
    pub temporary: bool,
    /// The global condition keys the request gives (`aws:SourceIp`, `aws:RequestedRegion`,
    /// …), for the actions that authorize themselves (AssumeRole).
    pub keys: crate::authz::RequestContext,
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        self.into_response_with(&uuid::Uuid::new_v4().to_string())
    }
}

/// Runs a handler that may block (store commits wait for their fsync, lanes for their
/// turn) on tokio's blocking pool, so that it never stalls other connections.
pub async fn run_blocking<F>(work: F) -> Result<Vec<u8>, AwsError>
where
    F: std::future::Future<Output = Result<Vec<u8>, AwsError>> + Send + 'static,
{
    tokio::task::spawn_blocking(move || tokio::runtime::Handle::current().block_on(work))
        .await
        .map_err(|e| AwsError::server(format!("the request's worker failed: {e}")))?
}

/// Runs blocking work (store reads and commits) on tokio's blocking pool.
pub async fn blocking<T, F>(work: F) -> Result<T, AwsError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AwsError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AwsError::server(format!("the request's worker failed: {e}")))?
}

/// Declares a service's typed action enum (`EcrAction::CreateRepository(request)`, ...), its
/// parser from `X-Amz-Target`'s operation and the JSON body, and `dispatch`, which runs the
/// operation's handler `async fn(&AwsContext, Request) -> Result<Response, AwsError>`.
/// Every row says where its handler runs: `blocking` (it calls the store or waits: on the
/// blocking pool) or `inline` (it only awaits: on the async workers).
#[macro_export]
macro_rules! aws_actions {
    ($action:ident, $service:literal; $($op:ident($req:ty) => $mode:ident $handler:path),* $(,)?) => {
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
                    $(stringify!($op) => Ok($action::$op($crate::protocol::json::parse_body(body)?)),)*
                    other => Err(AwsError::client(
                        "UnknownOperationException",
                        format!("The operation '{other}' is not known to {}", $service),
                    )),
                }
            }

            /// Whether the operation's handler may block (its row says `blocking`).
            pub fn blocks(&self) -> bool {
                match self {
                    $($action::$op(_) => $crate::aws_actions!(@blocks $mode),)*
                }
            }

            async fn handle(self, ctx: &AwsContext) -> Result<Vec<u8>, AwsError> {
                match self {
                    $($action::$op(req) => Ok(serde_json::to_vec(&$handler(ctx, req).await?)
                        .expect("responses serialise")),)*
                }
            }
        }

        /// Parses the operation and runs its handler where its row says.
        pub async fn dispatch(ctx: AwsContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, AwsError> {
            let action = $action::parse(operation, body)?;
            if action.blocks() {
                $crate::protocol::json::run_blocking(async move { action.handle(&ctx).await }).await
            } else {
                action.handle(&ctx).await
            }
        }
    };
    (@blocks blocking) => { true };
    (@blocks inline) => { false };
}
