//! The routes of Berth's one port: `/health`, the agents' websockets, the registry's
//! `/v2/`, and every AWS API (the front door) for the rest.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::{AppState, acs, front, oci};

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
        .fallback(front::handle)
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
        .with_state(state)
}

/// Serve until `shutdown` resolves. The listener is bound by the caller (port 0 in tests).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The client's address reaches handlers (aws:SourceIp).
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
