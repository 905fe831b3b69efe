//! Berth's HTTP edge. One listening port serves the AWS JSON APIs (dispatched on
//! `X-Amz-Target`: ECR, ECS, CloudWatch Logs), the OCI registry on `/v2/`, and `/health`. Nothing here holds domain
//! logic: requests are parsed into typed actions and handed to the domain crates.

pub mod acs;
pub mod acs_payload;
pub mod auth;
pub mod aws;
pub mod ecr;
pub mod ecs;
pub mod logs;
pub mod logs_tail;
pub mod oci;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use berth_model::AccountId;
use berth_registry::Registry;

pub use auth::{RootCredentials, TokenIssuer};

/// Everything the handlers share.
pub struct AppState {
    pub registry: Registry,
    pub ecs: berth_core::Ecs,
    /// CloudWatch Logs.
    pub logs: Arc<berth_logs::Logs>,
    pub credentials: RootCredentials,
    pub account: AccountId,
    pub tokens: TokenIssuer,
    /// The address the server is bound to.
    pub listen: SocketAddr,
    /// Host name clients should use instead of the bound address (`--advertise`).
    pub advertise: Option<String>,
    /// The agents' ACS and telemetry sessions.
    pub agents: Arc<acs::AgentHub>,
}

impl AppState {
    /// `HOST:PORT` of the registry as `repositoryUri` names it.
    pub fn registry_host(&self) -> String {
        let host = match &self.advertise {
            Some(h) => h.clone(),
            None if self.listen.ip().is_unspecified() => "127.0.0.1".to_string(),
            None => self.listen.ip().to_string(),
        };
        if host.contains(':') {
            host // already has a port
        } else {
            format!("{host}:{}", self.listen.port())
        }
    }

    /// The base URL clients reach this server at: `--advertise` when given, else the Host
    /// the client used, else the bound address.
    pub fn endpoint(&self, request_host: Option<&str>) -> String {
        match (&self.advertise, request_host) {
            (None, Some(h)) if !h.is_empty() => format!("http://{h}"),
            _ => format!("http://{}", self.registry_host()),
        }
    }
}

/// Requests handled at once; more wait for a slot (bounding the memory that request
/// bodies and streams can hold).
pub const MAX_IN_FLIGHT: usize = 1024;

/// The router, apart from any socket so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ws", get(acs::acs_handler))
        .route("/tcs/ws", get(acs::tcs_handler))
        .route("/v2", any(oci::handle))
        .route("/v2/", any(oci::handle))
        .route("/v2/{*rest}", any(oci::handle))
        .fallback(aws::handle)
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
        .with_state(state)
}

/// Serve until `shutdown` resolves. The listener is bound by the caller (port 0 in tests).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
