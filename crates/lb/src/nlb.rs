//! NLB listeners: a TCP proxy (TLS listeners terminate TLS first). A connection goes to one
//! target by a hash of its flow, as NLB does, over the group's routable targets, and lives
//! until either side closes, the target's deregistration delay runs out, or the listener
//! closes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, copy_bidirectional_with_sizes};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::plan::ListenerProtocol;
use crate::routes::{Route, Routes};
use crate::swap::Swap;
use crate::targets::{InFlight, Target};
use crate::traffic::BalancerCounters;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per direction: tokio's default 8 KiB takes four times the reads and writes of this for
/// a bulk transfer.
const BUFFER: usize = 64 * 1024;

pub(crate) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    routes: Arc<Swap<Routes>>,
    traffic: Arc<BalancerCounters>,
    close: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let routes = routes.load();
    let Some(in_flight) = pick(&routes, remote, local) else {
        return; // no target: the connection is closed, as NLB resets it
    };
    let tls = match (routes.protocol, &routes.tls) {
        (ListenerProtocol::Tls, Some(acceptor)) => Some(acceptor.clone()),
        (ListenerProtocol::Tls, None) => return,
        _ => None,
    };
    drop(routes);
    match tls {
        Some(acceptor) => {
            let Ok(Ok(tls)) =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            relay(tls, &in_flight.0, &traffic, &close).await;
        }
        None => relay(stream, &in_flight.0, &traffic, &close).await,
    }
}

async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    target: &Target,
    traffic: &BalancerCounters,
    close: &CancellationToken,
) {
    let Ok(Ok(mut upstream)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await
    else {
        target.traffic.failed();
        return;
    };
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        r = copy_bidirectional_with_sizes(&mut client, &mut upstream, BUFFER, BUFFER) => {
            if let Ok((up, down)) = r {
                traffic.processed(up + down);
            }
        }
        () = target.kill.cancelled() => {}
        () = close.cancelled() => {}
    }
}

fn pick(routes: &Routes, remote: SocketAddr, local: Option<SocketAddr>) -> Option<InFlight> {
    let Some(Route::Forward(forward)) = &routes.default else {
        return None;
    };
    let group = forward.choose(None)?.group.as_ref()?;
    let routable = group.routable();
    if routable.is_empty() {
        return None;
    }
    let mut h = DefaultHasher::new();
    (remote, local).hash(&mut h);
    let i = (h.finish() % routable.len() as u64) as usize;
    // A target closing under an older snapshot: the next one in the ring takes the flow.
    (0..routable.len()).find_map(|k| routable[(i + k) % routable.len()].enter())
}
