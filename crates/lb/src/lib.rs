//! The load balancer data plane behind Berth's ELBv2: a [`Plan`] in, listening sockets out.
//! ALB listeners are HTTP/1.1 (and, over TLS with ALPN, HTTP/2) reverse proxies with
//! ELBv2's listener rules; NLB listeners are TCP proxies. Targets are health-checked
//! actively, and a deregistered target drains. It knows nothing of the ELBv2 API or the
//! store: the integrator feeds plans and writes back what [`HealthSink`] reports.

mod alb;
mod dataplane;
mod h1;
mod health;
mod nlb;
pub mod plan;
mod respond;
mod routes;
mod rules;
mod swap;
mod targets;
mod tls;
mod traffic;
mod upstream;
mod workers;

pub use dataplane::{DataPlane, Traffic};
pub use health::{HealthSink, TargetHealth, TargetHealthReason, TargetHealthState};
pub use plan::*;
pub use traffic::{
    BalancerTraffic, RESPONSE_TIME_BINS, TargetGroupTraffic, response_time_bin,
    response_time_bin_seconds,
};

/// What the data plane refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("certificate of the listener on port {port}: {message}")]
    Certificate { port: u16, message: String },
}
