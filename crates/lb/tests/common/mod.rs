//! Test fixtures: hyper backends on 127.0.0.1 port 0, a recording health sink, plan
//! builders and a keep-alive client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_lb::{
    Action, DataPlane, ForwardAction, HealthCheckPlan, HealthCheckProtocol, HealthSink,
    ListenerPlan, ListenerProtocol, LoadBalancerId, LoadBalancerKind, LoadBalancerPlan, Matcher,
    Plan, TargetGroupId, TargetGroupPlan, TargetHealth, TargetHealthState, TargetId, TargetPlan,
    TargetProtocol,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A backend that answers its name; `/health` answers the status it is told; `/slow?ms=N`
/// waits first; the `X-Forwarded-*` and Host headers it saw come back as `seen-*`.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub health: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
    stop: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.abort();
    }
}

impl Backend {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicUsize::new(0));
        let (n, h, c) = (name.to_owned(), health.clone(), hits.clone());
        let stop = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (n, h, c) = (n.clone(), h.clone(), c.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(n.clone(), h.clone(), c.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            health,
            hits,
            stop,
        }
    }

    pub fn target(&self) -> TargetPlan {
        TargetPlan {
            id: TargetId(self.name.clone()),
            address: self.addr,
        }
    }

    /// Stops answering: the port refuses connections from now on.
    pub fn kill(&self) {
        self.stop.abort();
    }
}

async fn answer(
    name: String,
    health: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/health" {
        let status = StatusCode::from_u16(health.load(Ordering::Relaxed)).unwrap();
        let mut r = Response::new(Full::new(Bytes::from_static(b"health")));
        *r.status_mut() = status;
        return Ok(r);
    }
    hits.fetch_add(1, Ordering::Relaxed);
    if req.uri().path() == "/slow" {
        let ms: u64 = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut r = Response::new(Full::new(Bytes::from(name)));
    for h in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "host",
    ] {
        if let Some(v) = req.headers().get(h) {
            r.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(format!("seen-{h}").as_bytes()).unwrap(),
                v.clone(),
            );
        }
    }
    Ok(r)
}

#[derive(Default)]
pub struct RecordingSink {
    pub events: Mutex<Vec<(String, String, Option<TargetHealth>)>>,
}

impl HealthSink for RecordingSink {
    fn target_health_changed(
        &self,
        group: &TargetGroupId,
        target: &TargetId,
        health: &TargetHealth,
    ) {
        self.events
            .lock()
            .unwrap()
            .push((group.0.clone(), target.0.clone(), Some(health.clone())));
    }

    fn target_removed(&self, group: &TargetGroupId, target: &TargetId) {
        self.events
            .lock()
            .unwrap()
            .push((group.0.clone(), target.0.clone(), None));
    }
}

impl RecordingSink {
    /// The latest report for a target: Some(health), or None once removed.
    pub fn latest(&self, target: &str) -> Option<Option<TargetHealth>> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .rev()
            .find(|e| e.1 == target)
            .map(|e| e.2.clone())
    }

    pub fn state(&self, target: &str) -> Option<TargetHealthState> {
        self.latest(target).flatten().map(|h| h.state)
    }

    pub fn was_removed(&self, target: &str) -> bool {
        matches!(self.latest(target), Some(None))
    }
}

/// Polls `ok` until it holds, failing after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn quick_health_check() -> HealthCheckPlan {
    HealthCheckPlan {
        protocol: HealthCheckProtocol::Http,
        path: "/health".into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: Matcher::parse("200-299").unwrap(),
        ..HealthCheckPlan::default()
    }
}

pub fn group(id: &str, backends: &[&Backend]) -> TargetGroupPlan {
    TargetGroupPlan {
        id: TargetGroupId(id.into()),
        protocol: TargetProtocol::Http,
        targets: backends.iter().map(|b| b.target()).collect(),
        health_check: quick_health_check(),
        deregistration_delay: Duration::from_secs(5),
        stickiness: None,
    }
}

pub fn forward(group: &str) -> Vec<Action> {
    vec![Action::Forward(ForwardAction::to(TargetGroupId(
        group.into(),
    )))]
}

pub fn listener(protocol: ListenerProtocol, default_actions: Vec<Action>) -> ListenerPlan {
    ListenerPlan {
        port: 0,
        protocol,
        certificate: None,
        rules: Vec::new(),
        default_actions,
    }
}

pub fn lb(id: &str, kind: LoadBalancerKind, listeners: Vec<ListenerPlan>) -> LoadBalancerPlan {
    LoadBalancerPlan {
        id: LoadBalancerId(id.into()),
        kind,
        address: Ipv4Addr::LOCALHOST,
        idle_timeout: Duration::from_secs(60),
        listeners,
    }
}

pub fn plan(load_balancers: Vec<LoadBalancerPlan>, target_groups: Vec<TargetGroupPlan>) -> Plan {
    Plan {
        load_balancers,
        target_groups,
    }
}

/// A data plane serving `plan` (plain-HTTP connections on two worker threads of its own, as
/// the server runs it), and where its (single, port 0) listener of `lb` is.
pub async fn serve(plan: &Plan) -> (DataPlane, Arc<RecordingSink>, SocketAddr) {
    let sink = Arc::new(RecordingSink::default());
    let dp = DataPlane::with_workers(sink.clone(), 2);
    dp.apply(plan).await.unwrap();
    let addr = dp
        .listener_addr(&plan.load_balancers[0].id, 0)
        .await
        .unwrap();
    (dp, sink, addr)
}

pub type TestClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

pub async fn get(
    client: &TestClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    send(client, "GET", addr, path, headers).await
}

pub async fn send(
    client: &TestClient,
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// How many of `n` requests each backend answered.
pub async fn spread(client: &TestClient, addr: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let a = get(client, addr, "/", &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        *counts.entry(a.body).or_insert(0) += 1;
    }
    counts
}

/// Waits until every named target has been reported healthy.
pub async fn all_healthy(sink: &RecordingSink, names: &[&str]) {
    eventually(Duration::from_secs(10), "targets healthy", || {
        names
            .iter()
            .all(|n| sink.state(n) == Some(TargetHealthState::Healthy))
    })
    .await;
}
