//! The data plane: reconciles listening sockets and target groups towards a [`Plan`].
//! Listeners that stay keep their socket and get a new routing table swapped in (requests in
//! flight finish on the table they started with); new ones are bound, removed ones closed;
//! target groups register and drain their targets. Everything ends with `shutdown`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::LbError;
use crate::alb::{self, HttpListener};
use crate::h1;
use crate::health::HealthSink;
use crate::nlb;
use crate::plan::{
    ListenerPlan, ListenerProtocol, LoadBalancerId, LoadBalancerKind, Plan, TargetGroupId,
};
use crate::routes::Routes;
use crate::swap::Swap;
use crate::targets::Group;
use crate::tls;
use crate::traffic::{BalancerCounters, BalancerTraffic, TargetGroupTraffic};
use crate::workers::Workers;

pub struct DataPlane {
    state: Mutex<State>,
    sink: Arc<dyn HealthSink>,
    shutdown: CancellationToken,
    /// Threads serving plain-HTTP ALB connections (`workers.rs`); none: the caller's runtime.
    workers: Option<Arc<Workers>>,
}

#[derive(Default)]
struct State {
    groups: HashMap<TargetGroupId, Arc<Group>>,
    listeners: HashMap<(LoadBalancerId, u16), Listener>,
    /// Each load balancer's counters, kept while it has listeners.
    balancers: HashMap<LoadBalancerId, Arc<BalancerCounters>>,
}

/// Every load balancer's and target group's traffic so far (see `traffic.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub load_balancers: HashMap<LoadBalancerId, BalancerTraffic>,
    pub target_groups: HashMap<TargetGroupId, TargetGroupTraffic>,
}

struct Listener {
    kind: LoadBalancerKind,
    protocol: ListenerProtocol,
    address: Ipv4Addr,
    bound: SocketAddr,
    routes: Arc<Swap<Routes>>,
    close: CancellationToken,
    accept: JoinHandle<()>,
}

impl Listener {
    /// Stops accepting and waits for the socket to close, so the port can be bound again;
    /// open connections end too (HTTP ones gracefully).
    async fn close(self) {
        self.close.cancel();
        let _ = self.accept.await;
    }
}

impl DataPlane {
    /// A data plane whose plain-HTTP ALB connections are served by the caller's runtime.
    pub fn new(sink: Arc<dyn HealthSink>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            sink,
            shutdown: CancellationToken::new(),
            workers: None,
        }
    }

    /// A data plane whose plain-HTTP ALB connections are served by `n` threads of its own,
    /// one single-threaded runtime each (`workers.rs`).
    pub fn with_workers(sink: Arc<dyn HealthSink>, n: usize) -> Self {
        let shutdown = CancellationToken::new();
        let workers = Workers::start(n, &shutdown).map(Arc::new);
        Self {
            state: Mutex::new(State::default()),
            sink,
            shutdown,
            workers,
        }
    }

    /// Reconciles towards `plan`. A plan that cannot be served as a whole (a TLS listener
    /// without a usable certificate) changes nothing; a port that cannot be bound is
    /// reported after every other listener has been reconciled.
    pub async fn apply(&self, plan: &Plan) -> Result<(), LbError> {
        let mut acceptors = HashMap::new();
        for lb in &plan.load_balancers {
            for l in &lb.listeners {
                if let Some(acceptor) = tls_for(lb.kind, l)? {
                    acceptors.insert((lb.id.clone(), l.port), acceptor);
                }
            }
        }

        let mut state = self.state.lock().await;
        let mut groups = HashMap::new();
        for tg in &plan.target_groups {
            let group = match state.groups.remove(&tg.id) {
                Some(group) => {
                    group.apply(tg);
                    group
                }
                None => Group::new(tg, self.sink.clone(), self.shutdown.child_token()),
            };
            groups.insert(tg.id.clone(), group);
        }
        for (_, gone) in state.groups.drain() {
            gone.retire();
        }
        state.groups = groups;

        let mut first_error = None;
        let mut kept = HashMap::new();
        for lb in &plan.load_balancers {
            for l in &lb.listeners {
                let key = (lb.id.clone(), l.port);
                let routes = Routes::compile(lb, l, &state.groups, acceptors.remove(&key));
                let existing = state.listeners.remove(&key);
                let listener = match existing {
                    Some(old)
                        if old.kind == lb.kind
                            && old.protocol == l.protocol
                            && old.address == lb.address =>
                    {
                        old.routes.store(routes);
                        old
                    }
                    other => {
                        if let Some(old) = other {
                            old.close().await;
                        }
                        let counters = state.balancers.entry(lb.id.clone()).or_default().clone();
                        match self.bind(lb.kind, l.protocol, lb.address, l.port, routes, counters) {
                            Ok(listener) => listener,
                            Err(e) => {
                                first_error.get_or_insert(e);
                                continue;
                            }
                        }
                    }
                };
                kept.insert(key, listener);
            }
        }
        for (_, gone) in state.listeners.drain() {
            gone.close().await;
        }
        state.listeners = kept;
        let listening: std::collections::HashSet<&LoadBalancerId> =
            state.listeners.keys().map(|(lb, _)| lb).collect();
        let counted: Vec<LoadBalancerId> = state
            .balancers
            .keys()
            .filter(|lb| !listening.contains(lb))
            .cloned()
            .collect();
        for lb in counted {
            state.balancers.remove(&lb);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Where a listener is bound (its planned port, or the ephemeral one for port 0).
    pub async fn listener_addr(&self, lb: &LoadBalancerId, port: u16) -> Option<SocketAddr> {
        let state = self.state.lock().await;
        state.listeners.get(&(lb.clone(), port)).map(|l| l.bound)
    }

    /// Every load balancer's and target group's traffic since the data plane started.
    pub async fn traffic(&self) -> Traffic {
        let state = self.state.lock().await;
        Traffic {
            load_balancers: state
                .balancers
                .iter()
                .map(|(id, c)| (id.clone(), c.snapshot()))
                .collect(),
            target_groups: state
                .groups
                .iter()
                .map(|(id, g)| (id.clone(), g.traffic()))
                .collect(),
        }
    }

    /// Ends every loop: listeners, connections, health checks, drains.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    fn bind(
        &self,
        kind: LoadBalancerKind,
        protocol: ListenerProtocol,
        address: Ipv4Addr,
        port: u16,
        routes: Routes,
        traffic: Arc<BalancerCounters>,
    ) -> Result<Listener, LbError> {
        let addr = SocketAddr::from((address, port));
        let bind_err = |source| LbError::Bind { addr, source };
        let socket = TcpSocket::new_v4().map_err(bind_err)?;
        // A listener closed and bound again (a protocol change) must not wait out TIME_WAIT.
        socket.set_reuseaddr(true).map_err(bind_err)?;
        socket.bind(addr).map_err(bind_err)?;
        let listener = socket.listen(1024).map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        let routes = Arc::new(Swap::new(routes));
        let close = self.shutdown.child_token();
        let accept =
            match kind {
                LoadBalancerKind::Application => {
                    let shared = Arc::new(HttpListener {
                        routes: routes.clone(),
                        port: bound.port(),
                        traffic: traffic.clone(),
                    });
                    // A listener keeps its protocol for life (a change binds a new one), so plain
                    // HTTP goes to the fast path from the start.
                    let plain = protocol == ListenerProtocol::Http;
                    let workers = self.workers.clone();
                    tokio::spawn(accept_loop(
                        listener,
                        close.clone(),
                        move |stream, remote, close| {
                            let counted = shared.traffic.clone();
                            let shared = shared.clone();
                            if plain && let Some(workers) = &workers {
                                workers.hand(stream, move |stream| {
                                    counted.connection(h1::serve_connection(
                                        stream, remote, shared, close,
                                    ))
                                });
                            } else if plain {
                                tokio::spawn(counted.connection(h1::serve_connection(
                                    stream, remote, shared, close,
                                )));
                            } else {
                                tokio::spawn(counted.connection(alb::serve_connection(
                                    stream, remote, shared, close,
                                )));
                            }
                        },
                    ))
                }
                LoadBalancerKind::Network => {
                    let routes = routes.clone();
                    tokio::spawn(accept_loop(
                        listener,
                        close.clone(),
                        move |stream, remote, close| {
                            let serve = nlb::serve_connection(
                                stream,
                                remote,
                                routes.clone(),
                                traffic.clone(),
                                close,
                            );
                            tokio::spawn(traffic.clone().connection(serve));
                        },
                    ))
                }
            };
        Ok(Listener {
            kind,
            protocol,
            address,
            bound,
            routes,
            close,
            accept,
        })
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// HTTPS listeners offer HTTP/2 first; TLS (NLB) listeners offer nothing.
const HTTPS_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

fn tls_for(
    kind: LoadBalancerKind,
    l: &ListenerPlan,
) -> Result<Option<tokio_rustls::TlsAcceptor>, LbError> {
    let wanted = match (kind, l.protocol) {
        (LoadBalancerKind::Application, ListenerProtocol::Https) => HTTPS_ALPN,
        (LoadBalancerKind::Network, ListenerProtocol::Tls) => &[],
        (LoadBalancerKind::Application, ListenerProtocol::Http)
        | (LoadBalancerKind::Network, ListenerProtocol::Tcp) => return Ok(None),
        (kind, protocol) => {
            return Err(LbError::InvalidPlan(format!(
                "a {kind:?} load balancer has no {protocol:?} listeners"
            )));
        }
    };
    let cert = l.certificate.as_ref().ok_or_else(|| LbError::Certificate {
        port: l.port,
        message: "a TLS listener needs a certificate".to_owned(),
    })?;
    tls::acceptor(cert, l.port, wanted).map(Some)
}

async fn accept_loop<F>(listener: TcpListener, close: CancellationToken, on_connection: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr, CancellationToken),
{
    loop {
        tokio::select! {
            () = close.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => on_connection(stream, remote, close.clone()),
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}
