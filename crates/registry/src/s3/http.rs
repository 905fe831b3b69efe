//! The S3 blob store's HTTP: presigned requests (signed by rusty-s3, sans-IO) sent through
//! hyper-util's pooled HTTP/1.1 client, over TLS (rustls, ring) for https endpoints,
//! bodies streamed both ways, S3's error answers turned into `io::Error`s that carry S3's
//! code and message.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A request body: whole bytes, or a file's range streamed from a reader thread.
pub(crate) type S3Body = UnsyncBoxBody<Bytes, io::Error>;

/// How long a presigned URL stays valid; each request is signed just before it is sent.
pub(crate) const PRESIGN_TTL: Duration = Duration::from_secs(3600);
/// How long a request may take until S3 answers with its status line (a part upload's
/// body is sent within this time).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// Error answers are read up to this size (S3's are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 << 10;
/// Idle connections kept to the endpoint: enough for the concurrent part uploads and
/// pulls of a busy registry.
const MAX_IDLE: usize = 32;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Clone)]
pub(crate) struct Http {
    client: Client<Connector, S3Body>,
}

impl Http {
    /// A client for `http://` and `https://` URLs; `tls` says whom https trusts.
    pub(crate) fn new(tls: rustls::ClientConfig) -> Http {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Http { client }
    }

    /// Sends one request and waits for the answer's head. `what` names the operation in
    /// errors ("PutObject blobs/sha256/…"). A non-2xx answer is read and returned as an
    /// error with S3's code and message.
    pub(crate) async fn send(
        &self,
        what: &str,
        method: hyper::Method,
        url: url::Url,
        headers: &[(&str, String)],
        body: S3Body,
    ) -> io::Result<hyper::Response<Incoming>> {
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        // S3 wants a length on every PUT and POST, even an empty one (hyper sends none
        // for an empty body).
        if !headers.iter().any(|(name, _)| *name == "content-length")
            && let Some(len) = body.size_hint().exact()
            && (len > 0 || method != hyper::Method::GET)
        {
            request = request.header("content-length", len.to_string());
        }
        let request = request
            .body(body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}")))?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what}: S3 did not answer within {ANSWER_TIMEOUT:?}"),
                )
            })?
            .map_err(|e| transport_error(what, &e))?;
        if answer.status().is_success() {
            Ok(answer)
        } else {
            Err(error_answer(what, answer).await)
        }
    }

    /// `send`, retried on transport errors and on S3's 5xx answers (SlowDown,
    /// InternalError), for requests that are safe to repeat; `body` makes each attempt's
    /// body afresh.
    pub(crate) async fn send_retrying(
        &self,
        what: &str,
        method: hyper::Method,
        url: impl Fn() -> url::Url,
        headers: &[(&str, String)],
        body: impl Fn() -> io::Result<S3Body>,
    ) -> io::Result<hyper::Response<Incoming>> {
        const ATTEMPTS: u32 = 4;
        let mut attempt = 1;
        loop {
            match self
                .send(what, method.clone(), url(), headers, body()?)
                .await
            {
                Err(e) if attempt < ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "S3 request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// TLS with ring, trusting the CA certificates of the PEM file `ca_bundle` (the
/// `AWS_CA_BUNDLE` of the AWS tools), else the system's (rustls-native-certs: the
/// platform's store, `SSL_CERT_FILE`, `SSL_CERT_DIR`). `trust_nothing` (plain-HTTP
/// endpoints) loads no roots at all.
pub(crate) fn tls_config(
    ca_bundle: Option<&Path>,
    trust_nothing: bool,
) -> io::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let mut roots = rustls::RootCertStore::empty();
    if !trust_nothing {
        match ca_bundle {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| invalid(format!("CA bundle {}: {e}", path.display())))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| invalid(format!("CA bundle {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| invalid(format!("CA bundle {}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(invalid(format!(
                        "no trusted root certificates on this system ({:?}); set AWS_CA_BUNDLE",
                        found.errors
                    )));
                }
            }
        }
        if roots.is_empty() {
            return Err(invalid("the CA bundle holds no certificate".into()));
        }
    }
    // ring rather than aws-lc (no C toolchain-heavy build; DEPENDENCIES.md); rustls
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An empty body.
pub(crate) fn empty() -> S3Body {
    bytes_body(Bytes::new())
}

pub(crate) fn bytes_body(bytes: Bytes) -> S3Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The whole answer body (small answers: XML documents, manifests).
pub(crate) async fn read_body(what: &str, answer: hyper::Response<Incoming>) -> io::Result<Bytes> {
    answer
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| io::Error::other(format!("{what}: reading the answer: {e}")))
}

/// Exactly `expected` bytes of an answer body, as they arrive: an answer that ends early
/// or runs long is an error, never a silently different blob.
pub(crate) fn exact_stream(
    what: String,
    body: Incoming,
    expected: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    struct Reading {
        body: BodyDataStream<Incoming>,
        remaining: u64,
        what: String,
        failed: bool,
    }
    let state = Reading {
        body: BodyDataStream::new(body),
        remaining: expected,
        what,
        failed: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if s.failed {
            return None;
        }
        let item = match s.body.next().await {
            Some(Ok(chunk)) if chunk.len() as u64 > s.remaining => Err(io::Error::other(format!(
                "{}: S3 sent more bytes than asked for",
                s.what
            ))),
            Some(Ok(chunk)) => {
                s.remaining -= chunk.len() as u64;
                Ok(chunk)
            }
            Some(Err(e)) => Err(io::Error::other(format!("{}: {e}", s.what))),
            None if s.remaining == 0 => return None,
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: the answer ended {} bytes early", s.what, s.remaining),
            )),
        };
        s.failed = item.is_err();
        Some((item, s))
    })
}

/// `len` bytes of `file` from `offset`, read by a blocking thread in 1 MiB chunks a
/// couple ahead of the network: a part of any size costs a few MiB of memory.
pub(crate) fn file_range_body(
    file: std::sync::Arc<std::fs::File>,
    offset: u64,
    len: u64,
) -> S3Body {
    const CHUNK: u64 = 1 << 20;
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let n = CHUNK.min(end - pos) as usize;
            let mut buf = vec![0u8; n];
            let item = file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return; // the request went away, or the read failed and was reported
            }
            pos += n as u64;
        }
    });
    ChannelBody { rx, len }.boxed_unsync()
}

/// A body fed by a channel, with its exact length known (sent as Content-Length).
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    len: u64,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

fn transport_error(what: &str, e: &hyper_util::client::legacy::Error) -> io::Error {
    // The source chain names the cause (connection refused, reset, …).
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_connect() {
        io::ErrorKind::ConnectionRefused
    } else {
        io::ErrorKind::ConnectionAborted
    };
    io::Error::new(kind, format!("{what}: cannot reach S3: {text}"))
}

/// S3's error answer as an `io::Error`: `{what}: {Code}: {Message} (HTTP {status})`;
/// NoSuchKey (and a bodiless 404) is `NotFound`, AccessDenied `PermissionDenied`.
async fn error_answer(what: &str, answer: hyper::Response<Incoming>) -> io::Error {
    let status = answer.status();
    let body = http_body_util::Limited::new(answer.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let code = xml_text(&text, "Code").unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .replace(' ', "")
    });
    let message = xml_text(&text, "Message").unwrap_or_default();
    let kind = match (status.as_u16(), code.as_str()) {
        (_, "NoSuchKey") | (404, _) if code != "NoSuchBucket" => io::ErrorKind::NotFound,
        (_, "AccessDenied") | (403, _) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    io::Error::new(
        kind,
        format!("{what}: {code}{message} (HTTP {})", status.as_u16()),
    )
}

/// Worth repeating: the endpoint was unreachable or dropped the connection, or S3 answered
/// with a server error (5xx: InternalError, SlowDown, ServiceUnavailable).
pub(crate) fn is_retryable(e: &io::Error) -> bool {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::TimedOut => true,
        _ => {
            let text = e.to_string();
            text.contains("(HTTP 5")
        }
    }
}

/// The text of the first `<tag>…</tag>` in an XML document, unescaped.
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_error_documents() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist &amp; never did</Message></Error>";
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_text(xml, "Message").as_deref(),
            Some("The specified bucket does not exist & never did")
        );
        assert_eq!(xml_text(xml, "RequestId"), None);
    }

    #[test]
    fn server_errors_are_retried_client_errors_are_not() {
        let e = |kind, text: &str| io::Error::new(kind, text.to_owned());
        assert!(is_retryable(&e(
            io::ErrorKind::Other,
            "x: SlowDown (HTTP 503)"
        )));
        assert!(is_retryable(&e(io::ErrorKind::ConnectionRefused, "x")));
        assert!(!is_retryable(&e(
            io::ErrorKind::NotFound,
            "x: NoSuchKey (HTTP 404)"
        )));
        assert!(!is_retryable(&e(
            io::ErrorKind::PermissionDenied,
            "x: AccessDenied (HTTP 403)"
        )));
    }
}
