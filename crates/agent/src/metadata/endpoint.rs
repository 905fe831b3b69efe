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
}

impl MetadataEndpoint {
    /// The URI a container in `mode` is given; `None` where it could not reach the agent
    /// (`none` network mode, or no bridge).
    pub fn uri(&self, mode: &NetworkMode, token: &str) -> Option<String> {
        let host = match mode {
            NetworkMode::Bridge => self.bridge_host.as_deref()?,
            NetworkMode::Host => "127.0.0.1",
            _ => return None,
        };
        Some(format!("http://{host}:{}/v4/{token}", self.port))
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
