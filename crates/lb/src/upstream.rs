//! Keep-alive connections to targets, kept per client connection: an HTTP/1.1 client
//! connection sends one request at a time, so it reuses one connection per target it has
//! talked to, with no shared pool to lock on the request path. (A shared pool, hyper-util's,
//! cost 20% of the ALB's requests/s in bench/lb.)

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP/2 client connection can hold many requests at once; past this many idle
/// connections, the extra ones close.
const MAX_IDLE: usize = 16;

#[derive(Default)]
pub(crate) struct Upstreams {
    /// A std lock: held to push or pop, never across an `.await`.
    idle: Mutex<Vec<(SocketAddr, SendRequest<Incoming>)>>,
}

/// The target refused, reset, or answered something that is not HTTP.
#[derive(Debug)]
pub(crate) struct UpstreamFailed;

impl Upstreams {
    pub async fn send(
        &self,
        target: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<Response<Incoming>, UpstreamFailed> {
        if let Some(mut sender) = self.take(target)
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(req).await {
                Ok(response) => {
                    self.put(target, sender);
                    return Ok(response);
                }
                // The target closed the idle connection under us before the request went
                // out: a fresh connection gets it.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamFailed),
                },
            }
        }
        let mut sender = connect(target).await?;
        let response = sender.send_request(req).await.map_err(|_| UpstreamFailed)?;
        self.put(target, sender);
        Ok(response)
    }

    fn take(&self, target: SocketAddr) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let i = idle
            .iter()
            .position(|(a, s)| *a == target && !s.is_closed())?;
        Some(idle.swap_remove(i).1)
    }

    fn put(&self, target: SocketAddr, sender: SendRequest<Incoming>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|(_, s)| !s.is_closed());
        if idle.len() < MAX_IDLE {
            idle.push((target, sender));
        }
    }
}

async fn connect(target: SocketAddr) -> Result<SendRequest<Incoming>, UpstreamFailed> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| UpstreamFailed)?
        .map_err(|_| UpstreamFailed)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| UpstreamFailed)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(upstream = %target, error = %e, "target connection ended");
        }
    });
    Ok(sender)
}
