//! Where the task metadata endpoint listens and what containers are told: the URI of a
//! container (by network mode, with its token), the listeners on 127.0.0.1 and the bridge
//! address, and the addresses added later (awsvpc subnets' gateways). Apart from the
//! answers (the parent module), so that the task engine can name the endpoint without
//! depending on what reads the engine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use berth_runtime::NetworkMode;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where containers reach the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEndpoint {
    /// The host's address on Docker's default bridge, for bridge-mode containers; `None`
    /// when the runtime has no bridge (those containers then get no endpoint).
    pub bridge_host: Option<String>,
    pub port: u16,
    /// Whether 169.254.170.2 reaches this agent (`link_local::setup` succeeded): every
    /// container is then told that address, as on ECS.
    pub link_local: bool,
}

/// The variable that points the AWS SDKs at a container's role credentials (relative to
/// 169.254.170.2).
pub const CREDENTIALS_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
/// The variable that points the AWS SDKs at a container's role credentials (a full URI,
/// which the SDKs accept on loopback).
pub const CREDENTIALS_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";

impl MetadataEndpoint {
    /// The URI a container in `mode` is given; `None` where it could not reach the agent
    /// (`none` network mode, or no bridge).
    pub fn uri(&self, mode: &NetworkMode, token: &str) -> Option<String> {
        if self.link_local && !matches!(mode, NetworkMode::None) {
            return Some(self.link_local_uri(token));
        }
        let host = match mode {
            NetworkMode::Bridge => self.bridge_host.as_deref()?,
            NetworkMode::Host => "127.0.0.1",
            _ => return None,
        };
        Some(format!("http://{host}:{}/v4/{token}", self.port))
    }

    /// A container's metadata URI at 169.254.170.2 (any network mode that has a network).
    pub fn link_local_uri(&self, token: &str) -> String {
        format!(
            "http://{}/v4/{}",
            super::link_local::ADDRESS,
            super::link_local::routed(self.port, token)
        )
    }

    /// The variable (name, value) telling a container in `mode` where its task role's
    /// credentials `id` are: the relative URI at 169.254.170.2, or, without it, a full URI
    /// on loopback for host-mode containers; `None` where a container could not reach them.
    pub fn credentials_variable(&self, mode: &NetworkMode, id: &str) -> Option<(String, String)> {
        if matches!(mode, NetworkMode::None) {
            return None;
        }
        if self.link_local {
            let path = format!(
                "/v2/credentials/{}",
                super::link_local::routed(self.port, id)
            );
            return Some((CREDENTIALS_RELATIVE_URI.to_owned(), path));
        }
        matches!(mode, NetworkMode::Host).then(|| {
            (
                CREDENTIALS_FULL_URI.to_owned(),
                format!("http://127.0.0.1:{}/v2/credentials/{id}", self.port),
            )
        })
    }

    /// The addresses to listen on.
    pub fn listen_addresses(&self) -> Vec<IpAddr> {
        let mut addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        if let Some(bridge) = self.bridge_host.as_deref().and_then(|h| h.parse().ok())
            && !addresses.contains(&bridge)
        {
            addresses.push(bridge);
        }
        addresses
    }
}

/// The token in a metadata URI (what follows `/v4/`).
pub fn token_of(uri: &str) -> Option<&str> {
    let (_, token) = uri.rsplit_once("/v4/")?;
    let token = super::link_local::unrouted(token).map_or(token, |(_, token)| token);
    (!token.is_empty() && !token.contains('/')).then_some(token)
}

/// Binds one listener per address, all on one port: `port`, or a free one if 0.
pub async fn bind(addresses: &[IpAddr], port: u16) -> std::io::Result<(Vec<TcpListener>, u16)> {
    let mut listeners = Vec::new();
    let mut port = port;
    for address in addresses {
        let listener = TcpListener::bind(SocketAddr::new(*address, port)).await?;
        port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok((listeners, port))
}

/// Requests to listen on one more address, on the endpoint's port (awsvpc subnets'
/// gateways). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ListenRequests(
    tokio::sync::mpsc::UnboundedSender<(IpAddr, tokio::sync::oneshot::Sender<bool>)>,
);

/// Where [`serve`] takes [`ListenRequests`] from.
pub type ListenReceiver =
    tokio::sync::mpsc::UnboundedReceiver<(IpAddr, tokio::sync::oneshot::Sender<bool>)>;

impl ListenRequests {
    pub fn new() -> (ListenRequests, ListenReceiver) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (ListenRequests(tx), rx)
    }

    /// Whether the endpoint listens on `address` (now, or already did).
    pub async fn listen(&self, address: IpAddr) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.0.send((address, tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// Serves `app` on every listener, and on each address asked for through `more` (on
/// `port`), until `shutdown`.
pub async fn serve_growing(
    listeners: Vec<TcpListener>,
    port: u16,
    mut more: ListenReceiver,
    app: Router,
    shutdown: watch::Receiver<bool>,
) {
    let mut bound: Vec<IpAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok().map(|a| a.ip()))
        .collect();
    let mut servers = vec![tokio::spawn(serve(
        listeners,
        app.clone(),
        shutdown.clone(),
    ))];
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            request = more.recv() => {
                let Some((address, answer)) = request else { break };
                if bound.contains(&address) {
                    let _ = answer.send(true);
                    continue;
                }
                match TcpListener::bind(SocketAddr::new(address, port)).await {
                    Ok(listener) => {
                        tracing::info!(%address, port, "task metadata endpoint also listening");
                        bound.push(address);
                        servers.push(tokio::spawn(serve(vec![listener], app.clone(), shutdown.clone())));
                        let _ = answer.send(true);
                    }
                    Err(e) => {
                        tracing::warn!(%address, port, error = %e, "cannot listen for the task metadata endpoint there");
                        let _ = answer.send(false);
                    }
                }
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    for server in servers {
        let _ = server.await;
    }
}

/// Serves `app` on every listener until `shutdown`.
pub async fn serve(listeners: Vec<TcpListener>, app: Router, shutdown: watch::Receiver<bool>) {
    let servers = listeners.into_iter().map(|listener| {
        let mut shutdown = shutdown.clone();
        let app = app.clone();
        async move {
            let address = listener.local_addr().ok();
            let stopped = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(?address, error = %e, "task metadata endpoint failed");
            }
        }
    });
    futures_util::future::join_all(servers).await;
}
