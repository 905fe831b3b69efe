//! ALB listeners: HTTP/1.1 (and HTTP/2 over TLS when the client offers `h2`) reverse
//! proxying. A request is routed by the listener's rules, then forwarded over a keep-alive
//! connection to the target (`upstream.rs`) with the `X-Forwarded-*` headers; what the
//! target fails at becomes ALB's own answer (502 refused, reset or malformed; 503 no
//! registered target; 504 no answer within the idle timeout).
//!
//! This is the hyper path: HTTPS listeners (HTTP/1.1 or h2), and the plain-HTTP connections
//! that `h1.rs`, which serves plain HTTP/1.1 first, hands over. The routing, target choice
//! and answers both paths share live here.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::plan::{ListenerProtocol, RedirectAction};
use crate::respond::{self, OriginalUri, ProxyBody};
use crate::routes::{Forward, Route, Routes};
use crate::rules::{self, RequestView};
use crate::swap::Swap;
use crate::targets::InFlight;
use crate::traffic::BalancerCounters;
use crate::upstream::{UpstreamFailed, Upstreams};

/// What every connection of one listener shares.
pub(crate) struct HttpListener {
    pub routes: Arc<Swap<Routes>>,
    /// The load balancer's counters (its listeners share them).
    pub traffic: Arc<BalancerCounters>,
    /// The bound port (X-Forwarded-Port, redirects' `#{port}`).
    pub port: u16,
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS listener's connection (a plain one served with hyper from the start, too).
pub(crate) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    listener: Arc<HttpListener>,
    close: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let routes = listener.routes.load();
    if routes.protocol == ListenerProtocol::Https {
        let Some(acceptor) = routes.tls.clone() else {
            return;
        };
        drop(routes);
        let Ok(Ok(tls)) =
            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
        else {
            return;
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        serve(TokioIo::new(tls), h2, remote, listener, close).await;
    } else {
        drop(routes);
        serve(TokioIo::new(stream), false, remote, listener, close).await;
    }
}

/// Serves a connection with hyper: HTTPS (HTTP/1.1 or h2), and what the plain-HTTP/1.1
/// fast path (`h1.rs`) hands over.
pub(crate) async fn serve<I>(
    io: I,
    h2: bool,
    remote: SocketAddr,
    listener: Arc<HttpListener>,
    close: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let upstreams = Arc::new(Upstreams::default());
    let service = service_fn(move |req| {
        let (listener, upstreams) = (listener.clone(), upstreams.clone());
        async move { Ok::<_, Infallible>(handle(&listener, &upstreams, remote, req).await) }
    });
    if h2 {
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = close.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = close.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

async fn handle(
    listener: &HttpListener,
    upstreams: &Upstreams,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    listener.traffic.request();
    let response = route_and_answer(listener, upstreams, remote, req).await;
    if matches!(response.body(), ProxyBody::Full(_)) {
        listener.traffic.answered(response.status());
    }
    response
}

/// The answer to one request: the load balancer's own, or its target's.
async fn route_and_answer(
    listener: &HttpListener,
    upstreams: &Upstreams,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let routes = listener.routes.load();
    let (parts, body) = req.into_parts();
    let source = unmap(remote.ip());
    let view = RequestView {
        parts: &parts,
        source,
    };
    let scheme = if routes.protocol == ListenerProtocol::Https {
        "https"
    } else {
        "http"
    };
    match select_route(&routes, &view) {
        None => respond::alb_error(StatusCode::SERVICE_UNAVAILABLE),
        Some(Route::Fixed(f)) => respond::fixed_response(f),
        Some(Route::Redirect(r)) => redirect(r, &parts, scheme, listener.port),
        Some(Route::Forward(f)) => {
            let req = Request::from_parts(parts, body);
            forward(listener, upstreams, &routes, f, req, source, scheme).await
        }
    }
}

/// The first rule whose conditions all match, else the default actions.
pub(crate) fn select_route<'r>(routes: &'r Routes, view: &RequestView<'_>) -> Option<&'r Route> {
    routes
        .rules
        .iter()
        .find(|r| rules::matches_all(&r.conditions, view))
        .map(|r| &r.route)
        .or(routes.default.as_ref())
}

pub(crate) fn redirect(
    action: &RedirectAction,
    parts: &Parts,
    scheme: &'static str,
    port: u16,
) -> Response<ProxyBody> {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or("");
    let original = OriginalUri {
        protocol: scheme,
        host: rules::strip_port(host),
        port,
        path: parts.uri.path(),
        query: parts.uri.query(),
    };
    respond::redirect(action, &original)
}

/// The target a forward sends this request to, entered, with the stickiness cookies its
/// answer must carry. `cookie` reads a request cookie by name.
pub(crate) struct Picked<'f> {
    pub in_flight: InFlight,
    /// Load-balancer stickiness (`AWSALB`) and its duration.
    pub stickiness: Option<Duration>,
    /// Group stickiness of a weighted forward (`AWSALBTG`): the chosen group's value.
    pub group_cookie: Option<(&'f str, Duration)>,
}

pub(crate) fn pick<'f, 'c>(
    forward: &'f Forward,
    cookie: impl Fn(&str) -> Option<&'c str>,
) -> Result<Picked<'f>, StatusCode> {
    let group_sticky = forward.stickiness.and_then(|_| cookie("AWSALBTG"));
    let choice = forward
        .choose(group_sticky)
        .ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    let group = choice
        .group
        .as_ref()
        .ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    let routable = group.routable();
    let stickiness = group.settings.load().stickiness;
    let sticky = stickiness
        .and_then(|_| cookie("AWSALB"))
        .and_then(|v| routable.iter().find(|t| t.cookie == v))
        .and_then(|t| t.enter());
    let in_flight = sticky
        .or_else(|| group.pick_round_robin(&routable))
        .ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Picked {
        in_flight,
        stickiness,
        group_cookie: forward
            .stickiness
            .map(|life| (choice.cookie.as_str(), life)),
    })
}

/// A v4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; headers want `a.b.c.d`.
pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn forward(
    listener: &HttpListener,
    upstreams: &Upstreams,
    routes: &Routes,
    forward: &Forward,
    mut req: Request<Incoming>,
    source: IpAddr,
    scheme: &'static str,
) -> Response<ProxyBody> {
    let picked = match pick(forward, |name| respond::request_cookie(req.headers(), name)) {
        Ok(picked) => picked,
        Err(status) => return respond::alb_error(status),
    };
    let Picked {
        in_flight,
        stickiness,
        group_cookie,
    } = picked;
    let target = in_flight.0.clone();

    if prepare_request(&mut req, source, scheme, listener.port).is_err() {
        return respond::alb_error(StatusCode::BAD_REQUEST);
    }
    let sent = std::time::Instant::now();
    let answer = tokio::select! {
        r = tokio::time::timeout(routes.idle_timeout, upstreams.send(target.addr, req)) => r,
        // The deregistration delay ran out while this request was in flight.
        () = target.kill.cancelled() => {
            target.traffic.failed();
            return respond::alb_error(StatusCode::BAD_GATEWAY);
        }
    };
    let response = match answer {
        Err(_) => {
            target.traffic.failed();
            return respond::alb_error(StatusCode::GATEWAY_TIMEOUT);
        }
        Ok(Err(UpstreamFailed)) => {
            target.traffic.failed();
            return respond::alb_error(StatusCode::BAD_GATEWAY);
        }
        Ok(Ok(response)) => response,
    };
    target.traffic.answered(response.status(), sent.elapsed());
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(life) = stickiness {
        respond::set_cookie(&mut parts.headers, "AWSALB", &target.cookie, life);
    }
    if let Some((value, life)) = group_cookie {
        respond::set_cookie(&mut parts.headers, "AWSALBTG", value, life);
    }
    Response::from_parts(
        parts,
        ProxyBody::Target {
            inner: body,
            _in_flight: in_flight,
        },
    )
}

fn prepare_request(
    req: &mut Request<Incoming>,
    source: IpAddr,
    scheme: &str,
    port: u16,
) -> Result<(), hyper::http::Error> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // HTTP/2 carries the host as :authority; the target speaks HTTP/1.1 and wants Host.
    if !req.headers().contains_key(HOST)
        && let Some(authority) = req.uri().authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, v);
    }
    // Origin form: the target gets `/path?query`, its host in the Host header.
    *req.uri_mut() = Uri::builder().path_and_query(path).build()?;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {source}"),
        _ => source.to_string(),
    };
    headers.insert("x-forwarded-for", HeaderValue::from_str(&xff)?);
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(scheme_value(scheme)),
    );
    headers.insert("x-forwarded-port", HeaderValue::from(port));
    Ok(())
}

fn scheme_value(scheme: &str) -> &'static str {
    if scheme == "https" { "https" } else { "http" }
}

/// Headers that describe one hop's connection, not the message (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Strips the hop-by-hop headers, plus those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}
