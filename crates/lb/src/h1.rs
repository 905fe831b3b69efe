//! The plain-HTTP/1.1 fast path of ALB listeners. One task per client connection parses
//! each request head in place, routes it, and relays it over a keep-alive connection to the
//! target that this same task reads and writes: no header map, no channel between tasks, no
//! extra task per target connection. (hyper's server and client pair spent about half the
//! data plane's CPU per request in bench/lb; BENCHMARKS.md has the profile.)
//!
//! It takes the common case: HTTP/1.1 requests in origin form without a body. Anything else
//! (a body, `Expect`, `Upgrade`, HTTP/1.0, a head it cannot parse) hands the connection,
//! with the bytes already read, to the hyper path in `alb.rs` for the rest of its life, so
//! every other case keeps one implementation. Answers are the same either way: routing,
//! `X-Forwarded-*`, stickiness, draining, and 502/503/504 come from the shared code.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use crate::alb::{self, HOP_BY_HOP, HttpListener, Picked};
use crate::respond::{self, ProxyBody};
use crate::routes::{Route, Routes};
use crate::rules::RequestView;
use crate::targets::{InFlight, Target, Upstream};

const MAX_HEADERS: usize = 100;
/// A head larger than this goes to hyper (which answers 431) or, from a target, is a 502.
const MAX_HEAD: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Relayed body bytes are written to the client once this many are gathered.
const WRITE_CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per target, shared by every client connection (as HAProxy's
/// `http-reuse always`): as many as requests were in flight to it at once, up to this.
const MAX_IDLE: usize = 256;

pub(crate) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    listener: Arc<HttpListener>,
    close: CancellationToken,
) {
    // Answers go out whole in one write: Nagle would only hold back the next pipelined one.
    let _ = stream.set_nodelay(true);
    let source = alb::unmap(remote.ip());
    let mut c = Client {
        stream,
        buf: BytesMut::with_capacity(READ_CHUNK),
        out: Vec::with_capacity(1024),
        resp: Vec::with_capacity(1024),
        source,
        source_text: source.to_string(),
        port_text: listener.port.to_string(),
        deadline: Deadline::new(),
        head_sent: false,
        routes: listener.routes.load(),
        listener,
    };
    // One waiter on the listener's token for the connection's life, not one per request.
    let closing = close.clone().cancelled_owned();
    tokio::pin!(closing);
    loop {
        if close.is_cancelled() {
            return;
        }
        // The whole next head is due within the idle timeout: trickled bytes do not extend it.
        let due = Instant::now() + c.routes.idle_timeout;
        let step = loop {
            if !c.buf.is_empty() {
                c.routes = c.listener.routes.load();
                match c.plan() {
                    Step::Partial if c.buf.len() < MAX_HEAD => {}
                    Step::Partial | Step::Fallback => return c.fall_back(remote, close).await,
                    step => break step,
                }
            }
            c.buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                r = c.stream.read_buf(&mut c.buf) => r,
                () = &mut closing => return,
                () = c.deadline.wait(due) => return,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        c.listener.traffic.request();
        let keep_alive = match step {
            Step::Answer {
                response,
                head_len,
                head_only,
                close,
            } => {
                c.buf.advance(head_len);
                c.write_answer(response, head_only, close).await
            }
            Step::Forward(f) => {
                c.buf.advance(f.head_len);
                c.forward(f).await
            }
            Step::Partial | Step::Fallback => unreachable!("handled while reading the head"),
        };
        if !keep_alive {
            let _ = c.stream.shutdown().await;
            return;
        }
    }
}

struct Client {
    stream: TcpStream,
    /// What the client sent and is not handled yet (pipelined requests stay here).
    buf: BytesMut,
    /// The request head for the target.
    out: Vec<u8>,
    /// The response head (and first body bytes) for the client.
    resp: Vec<u8>,
    source: IpAddr,
    source_text: String,
    port_text: String,
    deadline: Deadline,
    /// The answer's head went to the client: a failure from here on can only close.
    head_sent: bool,
    routes: Arc<Routes>,
    listener: Arc<HttpListener>,
}

/// What to do with the request at the head of the buffer.
enum Step {
    Partial,
    Fallback,
    Answer {
        response: Response<ProxyBody>,
        head_len: usize,
        head_only: bool,
        close: bool,
    },
    Forward(ForwardStep),
}

struct ForwardStep {
    head_len: usize,
    in_flight: InFlight,
    /// `Set-Cookie` values the answer carries (stickiness).
    cookies: Vec<String>,
    head_only: bool,
    /// The client asked to close after this answer.
    close: bool,
    /// Safe to send again on a fresh connection when a reused one closed unanswered.
    idempotent: bool,
    timeout: Duration,
}

/// The request head's facts this path needs, read in one pass over its headers.
struct HeadFacts<'a> {
    close: bool,
    prior_xff: Option<&'a [u8]>,
}

impl Client {
    /// Parses the head at the front of the buffer and decides, writing the target's request
    /// head into `out` when it forwards.
    fn plan(&mut self) -> Step {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Step::Partial,
            Err(_) => return Step::Fallback,
        };
        let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
            return Step::Fallback;
        };
        if !path.starts_with('/') || method == "CONNECT" {
            return Step::Fallback;
        }
        let Some(facts) = head_facts(req.headers) else {
            return Step::Fallback;
        };
        let head_only = method == "HEAD";
        let routes = &self.routes;
        // Conditions and redirects read a parsed request; without rules it is not needed.
        let mut parts = None;
        if !routes.rules.is_empty() {
            let Some(p) = to_parts(&req) else {
                return Step::Fallback;
            };
            parts = Some(p);
        }
        let route = match &parts {
            Some(p) => alb::select_route(
                routes,
                &RequestView {
                    parts: p,
                    source: self.source,
                },
            ),
            None => routes.default.as_ref(),
        };
        let answer = |response| Step::Answer {
            response,
            head_len,
            head_only,
            close: facts.close,
        };
        let forward = match route {
            None => return answer(respond::alb_error(StatusCode::SERVICE_UNAVAILABLE)),
            Some(Route::Fixed(f)) => return answer(respond::fixed_response(f)),
            Some(Route::Redirect(r)) => {
                let Some(p) = parts.or_else(|| to_parts(&req)) else {
                    return Step::Fallback;
                };
                return answer(alb::redirect(r, &p, "http", self.listener.port));
            }
            Some(Route::Forward(f)) => f,
        };
        let cookie_values = || {
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
        };
        let picked = alb::pick(forward, |name| respond::cookie_in(cookie_values(), name));
        let Picked {
            in_flight,
            stickiness,
            group_cookie,
        } = match picked {
            Ok(picked) => picked,
            Err(status) => return answer(respond::alb_error(status)),
        };
        let mut cookies = Vec::new();
        if let Some(life) = stickiness {
            cookies.push(respond::set_cookie_value(
                "AWSALB",
                &in_flight.0.cookie,
                life,
            ));
        }
        if let Some((value, life)) = group_cookie {
            cookies.push(respond::set_cookie_value("AWSALBTG", value, life));
        }
        write_request_head(
            &mut self.out,
            (method, path, req.headers),
            facts.prior_xff,
            &self.source_text,
            &self.port_text,
        );
        Step::Forward(ForwardStep {
            head_len,
            in_flight,
            cookies,
            head_only,
            close: facts.close,
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
            ),
            timeout: routes.idle_timeout,
        })
    }

    /// The rest of the connection goes to hyper, the bytes read so far first.
    async fn fall_back(self, remote: SocketAddr, close: CancellationToken) {
        let io = Rewind {
            prefix: self.buf.freeze(),
            inner: self.stream,
        };
        alb::serve(TokioIo::new(io), false, remote, self.listener, close).await;
    }

    /// Writes an answer of the load balancer's own; false when the connection ends.
    async fn write_answer(
        &mut self,
        response: Response<ProxyBody>,
        head_only: bool,
        close: bool,
    ) -> bool {
        let (parts, body) = response.into_parts();
        self.listener.traffic.answered(parts.status);
        let body = match body {
            ProxyBody::Full(bytes) => bytes.unwrap_or_default(),
            ProxyBody::Target { .. } => Bytes::new(),
        };
        let r = &mut self.resp;
        r.clear();
        status_line(
            r,
            parts.status,
            parts.status.canonical_reason().unwrap_or(""),
        );
        for (name, value) in &parts.headers {
            header(r, name.as_str().as_bytes(), value.as_bytes());
        }
        header(
            r,
            b"date",
            httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
        );
        header(r, b"content-length", body.len().to_string().as_bytes());
        if close {
            header(r, b"connection", b"close");
        }
        r.extend_from_slice(b"\r\n");
        if !head_only {
            r.extend_from_slice(&body);
        }
        self.stream.write_all(&self.resp).await.is_ok() && !close
    }

    /// Sends the request to its target and relays the answer; false when the client
    /// connection ends.
    async fn forward(&mut self, f: ForwardStep) -> bool {
        let target = f.in_flight.0.clone();
        self.head_sent = false;
        let due = Instant::now() + f.timeout;
        let exchange = async {
            // Connecting, sending and the answer's head are due within the idle timeout.
            let sent = Instant::now();
            let head = tokio::select! {
                r = send_and_read_head(&target, &self.out, &f) => r,
                () = self.deadline.wait(due) => Err(StatusCode::GATEWAY_TIMEOUT),
            };
            let (mut up, head) = match head {
                Ok(answered) => answered,
                Err(status) => {
                    target.traffic.failed();
                    return Relayed::Answer(status);
                }
            };
            target.traffic.answered(
                StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY),
                sent.elapsed(),
            );
            let client_close = f.close || head.framing == Framing::UntilClose;
            self.head_sent = true;
            self.resp.clear();
            write_response_head(&mut self.resp, &up.buf[..head.len], &head, &f.cookies);
            if client_close {
                header(&mut self.resp, b"connection", b"close");
            }
            self.resp.extend_from_slice(b"\r\n");
            up.buf.advance(head.len);
            match relay_body(&mut up, &mut self.stream, &mut self.resp, head.framing).await {
                Ok(()) => {}
                Err(_) => return Relayed::Broken,
            }
            if head.reusable && up.buf.is_empty() {
                up.reused = true;
                target.idle.put(up, MAX_IDLE);
            }
            if client_close {
                Relayed::Close
            } else {
                Relayed::Done
            }
        };
        let relayed = tokio::select! {
            r = exchange => r,
            // The deregistration delay ran out while this request was in flight.
            () = target.kill.cancelled() => Relayed::Killed,
        };
        drop(f.in_flight);
        match relayed {
            Relayed::Done => true,
            Relayed::Close | Relayed::Broken => false,
            Relayed::Answer(status) => {
                self.write_answer(respond::alb_error(status), f.head_only, f.close)
                    .await
            }
            // Cut: a 502 if the client has had nothing of the answer yet; the connection ends
            // either way.
            Relayed::Killed => {
                if !self.head_sent {
                    self.write_answer(
                        respond::alb_error(StatusCode::BAD_GATEWAY),
                        f.head_only,
                        true,
                    )
                    .await;
                }
                false
            }
        }
    }
}

/// Sends the request and reads the answer's head; a reused connection the target closed
/// unanswered gets the request (if it may go twice) once more, on a new connection.
async fn send_and_read_head(
    target: &Target,
    head: &[u8],
    f: &ForwardStep,
) -> Result<(Upstream, ResponseHead), StatusCode> {
    let addr = target.addr;
    let mut up = send(target, head, f.idempotent).await?;
    match read_response_head(&mut up, f.head_only).await {
        Ok(answer) => return Ok((up, answer)),
        Err(HeadFailed::Closed) if up.reused && f.idempotent => {}
        Err(_) => return Err(StatusCode::BAD_GATEWAY),
    }
    let mut up = send_fresh(head, addr).await?;
    match read_response_head(&mut up, f.head_only).await {
        Ok(answer) => Ok((up, answer)),
        Err(_) => Err(StatusCode::BAD_GATEWAY),
    }
}

/// Writes the request head to an idle connection to the target, else to a new one.
async fn send(target: &Target, head: &[u8], idempotent: bool) -> Result<Upstream, StatusCode> {
    while let Some(mut up) = target.idle.take() {
        // A request that must not go twice goes only where the target has not hung up.
        if !idempotent && !up.still_open() {
            continue;
        }
        if up.stream.write_all(head).await.is_ok() {
            return Ok(up);
        }
    }
    send_fresh(head, target.addr).await
}

async fn send_fresh(head: &[u8], addr: SocketAddr) -> Result<Upstream, StatusCode> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        _ => return Err(StatusCode::BAD_GATEWAY),
    };
    let _ = stream.set_nodelay(true);
    let mut up = Upstream {
        stream,
        buf: BytesMut::with_capacity(READ_CHUNK),
        reused: false,
    };
    up.stream
        .write_all(head)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(up)
}

enum Relayed {
    Done,
    Close,
    /// Failed after the answer's head went out: only closing tells the client.
    Broken,
    Answer(StatusCode),
    Killed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

struct ResponseHead {
    status: u16,
    len: usize,
    framing: Framing,
    reusable: bool,
}

#[derive(Debug)]
enum HeadFailed {
    /// The target closed the connection before any byte of an answer.
    Closed,
    /// It answered something that is not an HTTP/1.x response, or broke off.
    Malformed,
}

/// The head the target gets: the client's, less hop-by-hop headers, with ALB's
/// `X-Forwarded-*` (the source appended to a prior `X-Forwarded-For`).
fn write_request_head(
    out: &mut Vec<u8>,
    (method, path, headers): (&str, &str, &[httparse::Header<'_>]),
    prior_xff: Option<&[u8]>,
    source: &str,
    port: &str,
) {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        if is_hop_by_hop(h.name) || is_forwarded(h.name) {
            continue;
        }
        header(out, h.name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = prior_xff {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(source.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\nx-forwarded-port: ");
    out.extend_from_slice(port.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Reads until a final response head is whole in `up.buf` (skipping 1xx interim answers).
async fn read_response_head(
    up: &mut Upstream,
    head_only: bool,
) -> Result<ResponseHead, HeadFailed> {
    let mut got_any = false;
    loop {
        if !up.buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&up.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = resp.code.unwrap_or(0);
                    if (100..200).contains(&code) && code != 101 {
                        up.buf.advance(len);
                        continue;
                    }
                    if code == 101 {
                        return Err(HeadFailed::Malformed);
                    }
                    let (framing, reusable) =
                        framing(code, resp.version == Some(1), head_only, resp.headers)
                            .ok_or(HeadFailed::Malformed)?;
                    return Ok(ResponseHead {
                        status: code,
                        len,
                        framing,
                        reusable,
                    });
                }
                Ok(httparse::Status::Partial) if up.buf.len() < MAX_HEAD => {}
                _ => return Err(HeadFailed::Malformed),
            }
        }
        up.buf.reserve(READ_CHUNK);
        match up.stream.read_buf(&mut up.buf).await {
            Ok(0) | Err(_) if !got_any => return Err(HeadFailed::Closed),
            Ok(0) | Err(_) => return Err(HeadFailed::Malformed),
            Ok(_) => got_any = true,
        }
    }
}

/// How the body is delimited (RFC 9112 §6.3), and whether the connection can carry another
/// request afterwards. None for a length that cannot be trusted.
fn framing(
    code: u16,
    http11: bool,
    head_only: bool,
    headers: &[httparse::Header<'_>],
) -> Option<(Framing, bool)> {
    let mut reusable = http11;
    let (mut chunked, mut encoded, mut length) = (false, false, None::<u64>);
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            if tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close")) {
                reusable = false;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = tokens(h.value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            for t in h.value.split(|&b| b == b',') {
                let n: u64 = std::str::from_utf8(t).ok()?.trim().parse().ok()?;
                if length.is_some_and(|l| l != n) {
                    return None;
                }
                length = Some(n);
            }
        }
    }
    let framing = if head_only || code == 204 || code == 304 {
        Framing::None
    } else if encoded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Some((framing, reusable && framing != Framing::UntilClose))
}

/// The head the client gets: the target's, less hop-by-hop headers (and what its
/// `Connection` names), plus the stickiness cookies. `Transfer-Encoding: chunked` stays: the
/// body is relayed in the target's own chunks.
fn write_response_head(r: &mut Vec<u8>, raw: &[u8], head: &ResponseHead, cookies: &[String]) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    // Parsed once already: this cannot fail.
    let _ = resp.parse(raw);
    let code = resp.code.unwrap_or(502);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    status_line(r, status, resp.reason.unwrap_or(""));
    let named: Vec<&[u8]> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| tokens(h.value))
        .collect();
    // A length beside a transfer coding is not the message's (RFC 9112 §6.3): it goes.
    let encoded = resp
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    for h in resp.headers.iter() {
        let keep_encoding =
            head.framing == Framing::Chunked && h.name.eq_ignore_ascii_case("transfer-encoding");
        if (is_hop_by_hop(h.name) && !keep_encoding)
            || (encoded && h.name.eq_ignore_ascii_case("content-length"))
            || named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(h.name.as_bytes()))
        {
            continue;
        }
        header(r, h.name.as_bytes(), h.value);
    }
    for c in cookies {
        header(r, b"set-cookie", c.as_bytes());
    }
}

/// Relays the body after the head in `resp` (sent first, with the body's first bytes).
async fn relay_body(
    up: &mut Upstream,
    client: &mut TcpStream,
    resp: &mut Vec<u8>,
    framing: Framing,
) -> io::Result<()> {
    match framing {
        Framing::None => client.write_all(resp).await,
        Framing::Length(n) => {
            let mut left = n;
            loop {
                let take = left.min(up.buf.len() as u64) as usize;
                resp.extend_from_slice(&up.buf[..take]);
                up.buf.advance(take);
                left -= take as u64;
                if left == 0 {
                    return client.write_all(resp).await;
                }
                if resp.len() >= WRITE_CHUNK {
                    client.write_all(resp).await?;
                    resp.clear();
                }
                read_more(up).await?;
            }
        }
        Framing::Chunked => {
            let mut chunks = Chunks::Size;
            loop {
                if chunks.forward(&mut up.buf, resp)? {
                    return client.write_all(resp).await;
                }
                // Whatever is complete goes out before waiting on the target.
                if !resp.is_empty() {
                    client.write_all(resp).await?;
                    resp.clear();
                }
                read_more(up).await?;
            }
        }
        Framing::UntilClose => loop {
            resp.extend_from_slice(&up.buf);
            up.buf.clear();
            client.write_all(resp).await?;
            resp.clear();
            up.buf.reserve(READ_CHUNK);
            if up.stream.read_buf(&mut up.buf).await? == 0 {
                return Ok(());
            }
        },
    }
}

async fn read_more(up: &mut Upstream) -> io::Result<()> {
    up.buf.reserve(READ_CHUNK);
    match up.stream.read_buf(&mut up.buf).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

/// Where a relayed chunked body stands (RFC 9112 §7.1): the bytes pass through as they are,
/// this only finds their end.
#[derive(Debug, PartialEq, Eq)]
enum Chunks {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

impl Chunks {
    /// Moves what is complete from `buf` to `out`; true once the body's last byte moved.
    fn forward(&mut self, buf: &mut BytesMut, out: &mut Vec<u8>) -> io::Result<bool> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
        loop {
            match self {
                Self::Size | Self::Trailers => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > MAX_HEAD {
                            return Err(bad());
                        }
                        return Ok(false);
                    };
                    let line = &buf[..end];
                    let next = if *self == Self::Trailers {
                        if line.is_empty() {
                            None
                        } else {
                            Some(Self::Trailers)
                        }
                    } else {
                        let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
                        let digits = std::str::from_utf8(digits).map_err(|_| bad())?.trim();
                        match u64::from_str_radix(digits, 16).map_err(|_| bad())? {
                            0 => Some(Self::Trailers),
                            n => Some(Self::Data(n)),
                        }
                    };
                    out.extend_from_slice(&buf[..end + 2]);
                    buf.advance(end + 2);
                    match next {
                        Some(state) => *self = state,
                        None => return Ok(true),
                    }
                }
                Self::Data(left) => {
                    let take = (*left).min(buf.len() as u64) as usize;
                    out.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                    *left -= take as u64;
                    if *left > 0 {
                        return Ok(false);
                    }
                    *self = Self::DataEnd;
                }
                Self::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(bad());
                    }
                    out.extend_from_slice(b"\r\n");
                    buf.advance(2);
                    *self = Self::Size;
                }
            }
        }
    }
}

/// One pass over the request's headers: None when the request is not this path's to serve.
fn head_facts<'a>(headers: &[httparse::Header<'a>]) -> Option<HeadFacts<'a>> {
    let (mut close, mut hosts, mut prior_xff) = (false, 0, None);
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if h.value.trim_ascii() != b"0" {
                return None;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                    // Names more headers to strip: hyper's path does that.
                    return None;
                }
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") && prior_xff.is_none() {
            // As the hyper path reads it: the first one, if it is text and not blank.
            let v = h.value;
            if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                prior_xff = Some(v.trim_ascii()).filter(|v| !v.is_empty());
            }
        }
    }
    (hosts == 1).then_some(HeadFacts { close, prior_xff })
}

/// The request as conditions and redirects read it.
fn to_parts(req: &httparse::Request<'_, '_>) -> Option<Parts> {
    let mut builder = Request::builder()
        .method(req.method?)
        .uri(req.path?)
        .version(hyper::Version::HTTP_11);
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    Some(builder.body(()).ok()?.into_parts().0)
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

fn is_forwarded(name: &str) -> bool {
    ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn status_line(r: &mut Vec<u8>, status: StatusCode, reason: &str) {
    r.extend_from_slice(b"HTTP/1.1 ");
    r.extend_from_slice(status.as_str().as_bytes());
    r.push(b' ');
    r.extend_from_slice(reason.as_bytes());
    r.extend_from_slice(b"\r\n");
}

fn header(r: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    r.extend_from_slice(name);
    r.extend_from_slice(b": ");
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
}

/// One timer per connection for its idle and answer deadlines: a deadline later than the
/// armed one leaves the timer alone until it fires, so a busy connection re-arms it about
/// once per idle timeout rather than once per request.
struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    async fn wait(&mut self, due: Instant) {
        let due = tokio::time::Instant::from_std(due);
        loop {
            if self.sleep.deadline() > due {
                self.sleep.as_mut().reset(due);
            }
            self.sleep.as_mut().await;
            if tokio::time::Instant::now() >= due {
                return;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

/// A client connection handed to hyper with the bytes the fast path already read.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(chunks: &[&[u8]]) -> (Vec<u8>, bool, Chunks) {
        let (mut state, mut out, mut buf) = (Chunks::Size, Vec::new(), BytesMut::new());
        let mut done = false;
        for c in chunks {
            buf.extend_from_slice(c);
            done = state.forward(&mut buf, &mut out).unwrap();
        }
        (out, done, state)
    }

    #[test]
    fn a_chunked_body_is_relayed_as_is_and_its_end_found_across_reads() {
        let body: &[u8] = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
        for split in 1..body.len() {
            let (out, done, _) = relay(&[&body[..split], &body[split..]]);
            assert!(done, "split at {split}");
            assert_eq!(out, body, "split at {split}");
        }
        let (out, done, state) = relay(&[b"5\r\nhel"]);
        assert!(!done);
        assert_eq!(out, b"5\r\nhel");
        assert_eq!(state, Chunks::Data(2));
    }

    #[test]
    fn a_chunk_size_that_is_not_hex_is_an_error() {
        let mut buf = BytesMut::from(&b"zz\r\n"[..]);
        assert!(Chunks::Size.forward(&mut buf, &mut Vec::new()).is_err());
    }

    fn h<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cl = [h("Content-Length", b"12")];
        assert_eq!(
            framing(200, true, false, &cl),
            Some((Framing::Length(12), true))
        );
        assert_eq!(framing(200, true, true, &cl), Some((Framing::None, true)));
        assert_eq!(framing(304, true, false, &cl), Some((Framing::None, true)));
        let te = [
            h("transfer-encoding", b"gzip, chunked"),
            h("content-length", b"3"),
        ];
        assert_eq!(
            framing(200, true, false, &te),
            Some((Framing::Chunked, true))
        );
        let closing = [h("connection", b"close"), h("content-length", b"1")];
        assert_eq!(
            framing(200, true, false, &closing),
            Some((Framing::Length(1), false))
        );
        assert_eq!(
            framing(200, true, false, &[]),
            Some((Framing::UntilClose, false))
        );
        assert_eq!(
            framing(200, false, false, &cl),
            Some((Framing::Length(12), false))
        );
        let conflicting = [h("content-length", b"1"), h("content-length", b"2")];
        assert_eq!(framing(200, true, false, &conflicting), None);
    }

    #[test]
    fn requests_with_bodies_or_upgrades_are_left_to_hyper() {
        assert!(head_facts(&[h("host", b"a")]).is_some());
        assert!(head_facts(&[h("host", b"a"), h("content-length", b"0")]).is_some());
        assert!(head_facts(&[h("host", b"a"), h("content-length", b"5")]).is_none());
        assert!(head_facts(&[h("host", b"a"), h("transfer-encoding", b"chunked")]).is_none());
        assert!(head_facts(&[h("host", b"a"), h("expect", b"100-continue")]).is_none());
        assert!(head_facts(&[h("host", b"a"), h("connection", b"upgrade")]).is_none());
        assert!(head_facts(&[]).is_none());
        let f = head_facts(&[
            h("host", b"a"),
            h("connection", b"close"),
            h("x-forwarded-for", b" "),
        ]);
        let f = f.unwrap();
        assert!(f.close);
        assert_eq!(f.prior_xff, None);
    }
}
