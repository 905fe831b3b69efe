//! Replicas: what must run on the leader is sent there. RunTask's placement lanes (one per
//! cluster: a long-lived placer that batches concurrent RunTasks into one commit) work only
//! if one replica places into a cluster; lanes on several replicas pick the same best
//! instances and keep losing their compare-and-swap to each other. So a replica that does
//! not lead passes a RunTask on to the leader as it came, signature and all (the replicas
//! share the credentials; the leader authenticates it again), and answers with the
//! leader's answer.
//!
//! Forwarding is a hop, never a loop: a forwarded request carries [`FORWARDED_BY`] and is
//! served where it lands. When the leader cannot be reached (it is dying, or a new one is
//! being elected) the replica places the tasks itself: the lanes' compare-and-swap keeps
//! that correct, only slower under contention. A request that reached the leader and
//! failed afterwards is not sent again (its tasks may exist): the client gets a
//! ServerException and retries as AWS's SDKs do (with the same clientToken, idempotently).

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

/// Names the replica a forwarded request came from.
pub const FORWARDED_BY: &str = "x-berth-forwarded-by";
/// The client's address, sealed by the replica that passed the request on
/// (`TokenIssuer::seal_forwarded_for`): the leader authorizes with it as `aws:SourceIp`.
pub const FORWARDED_FOR: &str = "x-berth-forwarded-for";

/// What ties a sealed client address to one request: its `Authorization` header, or for a
/// presigned URL its path and query (which carry the signature).
pub fn forwarding_binding(parts: &Parts) -> String {
    parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| {
            parts
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.as_str().to_string())
        })
}
/// How long the leader may take to answer a forwarded request (a RunTask waits for its
/// lane's turn and one commit).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read back (RunTask's answer for 10 tasks is tens of KiB).
const MAX_ANSWER: usize = 8 << 20;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Nothing was sent: the request may run here instead.
    #[error("the leader at {0} cannot be reached: {1}")]
    Unreachable(String, String),
    /// The request may have reached the leader.
    #[error("the leader at {0} did not answer: {1}")]
    NoAnswer(String, String),
}

/// Where this replica sends what runs on the leader.
pub struct LeaderRoute {
    /// This replica's name (sent along, for the leader's log).
    me: String,
    /// The leading replica's name (`{endpoint}/{id}`) while another replica leads.
    other_leader: watch::Receiver<Option<String>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl LeaderRoute {
    pub fn new(me: String, other_leader: watch::Receiver<Option<String>>) -> LeaderRoute {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        LeaderRoute {
            me,
            other_leader,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    /// The leader's base URL, when another replica leads.
    pub fn leader_elsewhere(&self) -> Option<String> {
        let name = self.other_leader.borrow().clone()?;
        base_url(&name).map(str::to_string)
    }

    /// Sends the request (already read: `parts` and `body`) to the leader at `base` and
    /// returns its answer as it came.
    pub async fn forward(
        &self,
        base: &str,
        parts: &Parts,
        body: Bytes,
        forwarded_for: Option<String>,
    ) -> Result<Response<Body>, ForwardError> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{base}{path}"));
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) && name.as_str() != FORWARDED_FOR {
                request = request.header(name, value);
            }
        }
        if let Some(sealed) = forwarded_for.and_then(|v| HeaderValue::from_str(&v).ok()) {
            request = request.header(FORWARDED_FOR, sealed);
        }
        let me = HeaderValue::from_str(&self.me).unwrap_or(HeaderValue::from_static("replica"));
        let request = request
            .header(FORWARDED_BY, me)
            .header("content-length", body.len())
            .body(Full::new(body))
            .map_err(|e| ForwardError::Unreachable(base.into(), e.to_string()))?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| ForwardError::NoAnswer(base.into(), "timed out".into()))?
            .map_err(|e| {
                if e.is_connect() {
                    ForwardError::Unreachable(base.into(), e.to_string())
                } else {
                    ForwardError::NoAnswer(base.into(), e.to_string())
                }
            })?;
        let (parts, body) = answer.into_parts();
        let body = http_body_util::Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ForwardError::NoAnswer(base.into(), e.to_string()))?
            .to_bytes();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) && name != "content-length" {
                response.headers_mut().append(name, value.clone());
            }
        }
        Ok(response)
    }
}

/// `http://host:port` of a replica named `{endpoint}/{id}`.
fn base_url(name: &str) -> Option<&str> {
    name.rsplit_once('/')
        .map(|(base, _)| base)
        // The forwarding client speaks plain HTTP (replicas' own addresses).
        .filter(|b| b.starts_with("http://"))
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1); the
/// content length is set again for the body as read.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_name_gives_its_base_url() {
        assert_eq!(
            base_url("http://10.0.0.5:4566/00ab12cd34ef5678"),
            Some("http://10.0.0.5:4566")
        );
        assert_eq!(base_url("garbage"), None);
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        assert!(is_hop_by_hop(&HeaderName::from_static("transfer-encoding")));
        assert!(!is_hop_by_hop(&HeaderName::from_static("authorization")));
        assert!(!is_hop_by_hop(&HeaderName::from_static("x-amz-date")));
    }
}
