//! 169.254.170.2, where ECS containers find their role credentials
//! (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and their task metadata
//! (`ECS_CONTAINER_METADATA_URI_V4`). As ECS's agent host does, two NAT rules send that
//! address's port 80 to the agent: one in `PREROUTING` for containers (bridge mode on
//! Docker's bridge, awsvpc tasks on their subnet's bridge: `DNAT` to the host's bridge
//! address) and one in `OUTPUT` for host-mode containers (`REDIRECT` to loopback).
//!
//! Several agents may share a host (installations side by side, a test suite's many
//! servers), while the address is one. So the NAT rules point at a **router** port every
//! Berth agent on the host listens on together (`SO_REUSEPORT`; the kernel hands each
//! connection to one of them), and the paths containers are given name the agent that
//! serves them: `/v2/credentials/b{PORT}-{ID}`, `/v4/b{PORT}-{TOKEN}/…`, `PORT` being that
//! agent's own metadata port. Whichever agent accepts a connection reads the request
//! head, strips the prefix and passes the request to `127.0.0.1:PORT` with the container's
//! address in `x-berth-peer`, vouched for by `x-berth-router` (a key every agent on the host
//! reads from one root-only file) — the owner checks that a task's credentials go to that
//! task's containers only. An id without the prefix is the official ECS agent's
//! (`127.0.0.1:51679`, where its credentials handler listens on a host without ecs-init).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// The link-local address ECS serves credentials and task metadata on.
pub const ADDRESS: &str = "169.254.170.2";
/// The port every Berth agent of a host listens on together for requests to [`ADDRESS`].
pub const ROUTER_PORT: u16 = 51690;
/// Where the official ECS agent serves task credentials.
const OFFICIAL_AGENT_CREDENTIALS_PORT: u16 = 51679;
/// The key forwarded requests carry, shared by the host's agents.
const KEY_FILE: &str = "/run/berth-link-local.key";
/// The header naming the container a routed request came from.
pub const PEER_HEADER: &str = "x-berth-peer";
/// The header carrying the host's router key.
pub const ROUTER_HEADER: &str = "x-berth-router";
/// The longest request head routed.
const MAX_HEAD: usize = 16 * 1024;

/// `id` as a path names it for the agent whose metadata port is `port`.
pub fn routed(port: u16, id: &str) -> String {
    format!("b{port}-{id}")
}

/// The agent's port and the id in a routed path segment.
pub fn unrouted(segment: &str) -> Option<(u16, &str)> {
    let (port, id) = segment.strip_prefix('b')?.split_once('-')?;
    Some((port.parse().ok()?, id))
}

/// The agent's side of the address: the key routed requests must carry, and where this
/// agent's own endpoint app goes once it exists (requests naming this agent are then served
/// in process, without the hop over loopback).
#[derive(Clone)]
pub struct LinkLocal {
    pub key: Arc<str>,
    pub own: Arc<OwnAgent>,
}

/// This agent's metadata port and, once set, its endpoint app.
pub struct OwnAgent {
    pub port: u16,
    pub app: std::sync::OnceLock<axum::Router>,
}

/// Sets the address up for this agent: the NAT rules (idempotent; kept when the agent
/// stops, so other agents keep working), the host's router key, and this agent's router
/// listeners, served until `shutdown`. `None` (logged) when the host does not allow it
/// (no `iptables`, not root): containers are then given the agent's own addresses.
pub async fn setup(
    bridge_host: Option<Ipv4Addr>,
    own_port: u16,
    shutdown: watch::Receiver<bool>,
) -> Option<LinkLocal> {
    let key = match host_key() {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(error = %e, file = KEY_FILE, "no link-local router key; containers get the agent's own addresses");
            return None;
        }
    };
    let mut rules = vec![(
        "OUTPUT",
        format!("-d {ADDRESS}/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {ROUTER_PORT}"),
    )];
    if let Some(bridge) = bridge_host {
        rules.push((
            "PREROUTING",
            format!(
                "-d {ADDRESS}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {bridge}:{ROUTER_PORT}"
            ),
        ));
    }
    for (chain, rule) in &rules {
        if let Err(e) = ensure_rule(chain, rule).await {
            tracing::warn!(error = %e, chain, "cannot route {ADDRESS}; containers get the agent's own addresses");
            return None;
        }
    }
    let mut addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    addresses.extend(bridge_host.map(IpAddr::V4));
    let key: Arc<str> = key.into();
    let own = Arc::new(OwnAgent {
        port: own_port,
        app: std::sync::OnceLock::new(),
    });
    for address in addresses {
        let listener = match shared_listener(SocketAddr::new(address, ROUTER_PORT)) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(%address, port = ROUTER_PORT, error = %e, "cannot listen as the link-local router; containers get the agent's own addresses");
                return None;
            }
        };
        tokio::spawn(accept(listener, key.clone(), own.clone(), shutdown.clone()));
    }
    tracing::info!(
        address = ADDRESS,
        router_port = ROUTER_PORT,
        "routing the link-local endpoint"
    );
    Some(LinkLocal { key, own })
}

/// The host's router key: made once by the first agent (written aside, then linked into
/// place so that no agent ever reads a half-written key), read by the others.
fn host_key() -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(key) = std::fs::read_to_string(KEY_FILE) {
        let key = key.trim().to_owned();
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    let key = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..32)
            .map(|_| format!("{:02x}", rng.r#gen::<u8>()))
            .collect::<String>()
    };
    let aside = format!("{KEY_FILE}.{}", std::process::id());
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&aside)?;
        std::io::Write::write_all(&mut file, key.as_bytes())?;
        file.sync_all()?;
    }
    let linked = std::fs::hard_link(&aside, KEY_FILE);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(key),
        // Another agent was first: its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(KEY_FILE)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

/// Adds `rule` at the top of the nat table's `chain` unless it is there.
async fn ensure_rule(chain: &str, rule: &str) -> Result<(), String> {
    let args: Vec<&str> = rule.split_whitespace().collect();
    let run = |op: &'static str| {
        let mut command = tokio::process::Command::new("iptables");
        command.args(["-w", "5", "-t", "nat", op, chain]);
        if op == "-I" {
            command.arg("1");
        }
        command.args(&args);
        command.stdin(std::process::Stdio::null());
        command
    };
    let check = run("-C")
        .output()
        .await
        .map_err(|e| format!("iptables: {e}"))?;
    if check.status.success() {
        return Ok(());
    }
    let insert = run("-I")
        .output()
        .await
        .map_err(|e| format!("iptables: {e}"))?;
    if insert.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables -t nat -I {chain} {rule}: {}",
            String::from_utf8_lossy(&insert.stderr).trim()
        ))
    }
}

/// A listener sharing its address with the host's other agents.
fn shared_listener(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn accept(
    listener: TcpListener,
    key: Arc<str>,
    own: Arc<OwnAgent>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (key, own) = (key.clone(), own.clone());
                    tokio::spawn(async move {
                        if let Err(e) = route(stream, peer, &key, &own).await {
                            tracing::debug!(%peer, error = %e, "link-local request not routed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "link-local router accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
        }
    }
}

/// Passes one request to the agent its path names.
async fn route(
    mut inbound: TcpStream,
    peer: SocketAddr,
    key: &str,
    own: &OwnAgent,
) -> std::io::Result<()> {
    inbound.set_nodelay(true)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = inbound.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_HEAD {
            return answer(&mut inbound, "431 Request Header Fields Too Large").await;
        }
    };
    let Some((port, forwarded)) = std::str::from_utf8(&head[..end])
        .ok()
        .and_then(|text| rewrite_head(text, peer.ip(), key))
    else {
        return answer(&mut inbound, "404 Not Found").await;
    };
    if port == own.port
        && let Some(app) = own.app.get()
    {
        // This agent's own: served here, as if passed over loopback (the same head, so the
        // handler's peer check is the one routed requests get).
        let mut replay = forwarded.into_bytes();
        replay.extend_from_slice(&head[end..]);
        return serve_here(inbound, replay, app.clone()).await;
    }
    let mut upstream = match TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
        Ok(upstream) => upstream,
        Err(_) => return answer(&mut inbound, "502 Bad Gateway").await,
    };
    upstream.set_nodelay(true)?;
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&head[end..]).await?;
    tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await?;
    Ok(())
}

/// Serves one routed connection with this agent's app: `replay` (the rewritten head and
/// what followed it) is read first, then the connection.
async fn serve_here(inbound: TcpStream, replay: Vec<u8>, app: axum::Router) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let app = app.layer(axum::Extension(ConnectInfo(loopback)));
    let io = hyper_util::rt::TokioIo::new(Replayed {
        replay,
        at: 0,
        inner: inbound,
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(io, hyper_util::service::TowerToHyperService::new(app))
        .await
        .map_err(std::io::Error::other)
}

/// A connection whose first bytes were already read: they are given back first.
struct Replayed {
    replay: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl tokio::io::AsyncRead for Replayed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at < self.replay.len() {
            let n = (self.replay.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.replay[at..at + n]);
            self.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Replayed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A short error answer of the router itself.
async fn answer(stream: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let body = format!("\"{status}\"");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The port to pass a request head to, and the head as passed: the path without its
/// routing prefix, `x-berth-*` headers the client sent dropped, the peer and key added,
/// and `connection: close` (the next request on a connection may be for another agent).
fn rewrite_head(head: &str, peer: IpAddr, key: &str) -> Option<(u16, String)> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.splitn(3, ' ');
    let (method, target, version) = (
        request_line.next()?,
        request_line.next()?,
        request_line.next()?,
    );
    let (port, path) = rewrite_path(target)?;
    let mut out = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name == "connection" || name.starts_with("x-berth-") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "connection: close\r\n{PEER_HEADER}: {peer}\r\n{ROUTER_HEADER}: {key}\r\n\r\n"
    ));
    Some((port, out))
}

/// The agent port a path names and the path that agent serves.
fn rewrite_path(target: &str) -> Option<(u16, String)> {
    if let Some(rest) = target.strip_prefix("/v2/credentials/") {
        return Some(match unrouted(rest) {
            Some((port, id)) => (port, format!("/v2/credentials/{id}")),
            None => (OFFICIAL_AGENT_CREDENTIALS_PORT, target.to_owned()),
        });
    }
    let rest = target.strip_prefix("/v4/")?;
    let (segment, tail) = match rest.split_once('/') {
        Some((segment, tail)) => (segment, Some(tail)),
        None => (rest, None),
    };
    let (port, token) = unrouted(segment)?;
    Some(match tail {
        Some(tail) => (port, format!("/v4/{token}/{tail}")),
        None => (port, format!("/v4/{token}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_agent_and_lose_the_prefix_on_the_way() {
        assert_eq!(routed(40123, "abc"), "b40123-abc");
        assert_eq!(unrouted("b40123-abc-def"), Some((40123, "abc-def")));
        assert_eq!(unrouted("abc"), None);
        assert_eq!(
            rewrite_path("/v2/credentials/b40123-1111-2222"),
            Some((40123, "/v2/credentials/1111-2222".to_owned()))
        );
        assert_eq!(
            rewrite_path("/v2/credentials/1111-2222"),
            Some((51679, "/v2/credentials/1111-2222".to_owned()))
        );
        assert_eq!(
            rewrite_path("/v4/b40123-tok/task/stats"),
            Some((40123, "/v4/tok/task/stats".to_owned()))
        );
        assert_eq!(
            rewrite_path("/v4/b40123-tok"),
            Some((40123, "/v4/tok".to_owned()))
        );
        assert_eq!(rewrite_path("/v4/tok"), None);
        assert_eq!(rewrite_path("/other"), None);
    }

    #[test]
    fn a_routed_head_carries_the_peer_and_key_and_no_forged_ones() {
        let head = "GET /v2/credentials/b40123-id HTTP/1.1\r\nHost: 169.254.170.2\r\nX-Berth-Peer: 10.0.0.9\r\nConnection: keep-alive\r\n\r\n";
        let (port, out) = rewrite_head(head, "172.17.0.5".parse().unwrap(), "k").unwrap();
        assert_eq!(port, 40123);
        assert_eq!(
            out,
            "GET /v2/credentials/id HTTP/1.1\r\nHost: 169.254.170.2\r\nconnection: close\r\nx-berth-peer: 172.17.0.5\r\nx-berth-router: k\r\n\r\n"
        );
    }
}
