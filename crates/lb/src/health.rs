//! Active health checks: one probe (an HTTP GET of the check's path judged by its matcher,
//! or a TCP connect) and its verdict with ELBv2's reason code; target health as ELBv2 names
//! it, and the [`HealthSink`] every change goes to. The per-target loop that counts
//! consecutive results against the thresholds is `targets::check_target`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::plan::{HealthCheckPlan, HealthCheckPort, HealthCheckProtocol, TargetGroupId, TargetId};

/// Where target health goes: the integrator writes it to the ELBv2 record
/// (DescribeTargetHealth). Called from the data plane's tasks; must not block for long.
pub trait HealthSink: Send + Sync + 'static {
    fn target_health_changed(
        &self,
        group: &TargetGroupId,
        target: &TargetId,
        health: &TargetHealth,
    );
    /// A deregistered target finished draining and is gone.
    fn target_removed(&self, group: &TargetGroupId, target: &TargetId);
}

/// ELBv2's `TargetHealth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: TargetHealthState,
    pub reason: Option<TargetHealthReason>,
    pub description: Option<String>,
}

impl TargetHealth {
    pub(crate) fn initial() -> Self {
        Self::with(
            TargetHealthState::Initial,
            TargetHealthReason::InitialHealthChecking,
        )
    }

    pub(crate) fn healthy() -> Self {
        Self {
            state: TargetHealthState::Healthy,
            reason: None,
            description: None,
        }
    }

    pub(crate) fn draining() -> Self {
        Self::with(
            TargetHealthState::Draining,
            TargetHealthReason::DeregistrationInProgress,
        )
    }

    fn with(state: TargetHealthState, reason: TargetHealthReason) -> Self {
        Self {
            state,
            reason: Some(reason),
            description: Some(reason.description().to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TargetHealthState {
    Initial = 0,
    Healthy = 1,
    Unhealthy = 2,
    Draining = 3,
}

impl TargetHealthState {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Initial,
            1 => Self::Healthy,
            2 => Self::Unhealthy,
            _ => Self::Draining,
        }
    }

    /// The wire value of `TargetHealth.State`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Draining => "draining",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealthReason {
    InitialHealthChecking,
    ResponseCodeMismatch,
    Timeout,
    FailedHealthChecks,
    DeregistrationInProgress,
}

impl TargetHealthReason {
    /// The wire value of `TargetHealth.Reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitialHealthChecking => "Elb.InitialHealthChecking",
            Self::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            Self::Timeout => "Target.Timeout",
            Self::FailedHealthChecks => "Target.FailedHealthChecks",
            Self::DeregistrationInProgress => "Target.DeregistrationInProgress",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::InitialHealthChecking => "Initial health checks in progress",
            Self::ResponseCodeMismatch => "Health checks failed with these codes",
            Self::Timeout => "Request timed out",
            Self::FailedHealthChecks => "Health checks failed",
            Self::DeregistrationInProgress => "Target deregistration is in progress",
        }
    }
}

/// Why one check failed.
#[derive(Debug)]
enum Failure {
    Code(u16),
    Timeout,
    Failed,
}

/// One check of a target: Ok, or the unhealthy report it would earn.
pub(crate) async fn probe(
    check: &HealthCheckPlan,
    traffic: SocketAddr,
) -> Result<(), TargetHealth> {
    check_once(check, traffic).await.map_err(|f| unhealthy(&f))
}

fn unhealthy(failure: &Failure) -> TargetHealth {
    let (reason, description) = match failure {
        Failure::Code(code) => (
            TargetHealthReason::ResponseCodeMismatch,
            format!("Health checks failed with these codes: [{code}]"),
        ),
        Failure::Timeout => (TargetHealthReason::Timeout, "Request timed out".to_owned()),
        Failure::Failed => (
            TargetHealthReason::FailedHealthChecks,
            "Health checks failed".to_owned(),
        ),
    };
    TargetHealth {
        state: TargetHealthState::Unhealthy,
        reason: Some(reason),
        description: Some(description),
    }
}

async fn check_once(check: &HealthCheckPlan, traffic: SocketAddr) -> Result<(), Failure> {
    let addr = match check.port {
        HealthCheckPort::TrafficPort => traffic,
        HealthCheckPort::Port(p) => SocketAddr::new(traffic.ip(), p),
    };
    let attempt = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| Failure::Failed)?;
        match check.protocol {
            HealthCheckProtocol::Tcp => Ok(()),
            HealthCheckProtocol::Http => http_check(stream, addr, check).await,
        }
    };
    match tokio::time::timeout(check.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}

async fn http_check(
    stream: TcpStream,
    addr: SocketAddr,
    check: &HealthCheckPlan,
) -> Result<(), Failure> {
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failure::Failed)?;
    let conn = tokio::spawn(conn);
    let request = Request::get(check.path.as_str())
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| Failure::Failed)?;
    let response = sender.send_request(request).await;
    conn.abort();
    let code = response.map_err(|_| Failure::Failed)?.status().as_u16();
    if check.matcher.matches(code) {
        Ok(())
    } else {
        Err(Failure::Code(code))
    }
}
