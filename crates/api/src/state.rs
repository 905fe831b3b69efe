//! What every handler shares: the domain services, credentials and tokens, and where this
//! server is reached.

use std::net::SocketAddr;
use std::sync::Arc;

use berth_model::AccountId;
use berth_registry::Registry;

use crate::acs;
use crate::auth::{RootCredentials, TokenIssuer};

/// Everything the handlers share.
pub struct AppState {
    pub registry: Registry,
    pub ecs: berth_ecs::Ecs,
    /// CloudWatch Logs.
    pub logs: Arc<berth_logs::Logs>,
    /// IAM: users and their access keys.
    pub iam: berth_iam::Iam,
    pub credentials: RootCredentials,
    pub account: AccountId,
    pub tokens: TokenIssuer,
    /// The address the server is bound to.
    pub listen: SocketAddr,
    /// Host name clients should use instead of the bound address (`--advertise`).
    pub advertise: Option<String>,
    /// The agents' ACS and telemetry sessions.
    pub agents: Arc<acs::AgentHub>,
    /// Replicas: where what must run on the leader goes (`None`: one process).
    pub leader: Option<crate::forward::LeaderRoute>,
}

impl AppState {
    /// `HOST:PORT` of the registry as `repositoryUri` names it.
    pub fn registry_host(&self) -> String {
        registry_host(self.listen, self.advertise.as_deref())
    }

    /// The base URL clients reach this server at: `--advertise` when given, else the Host
    /// the client used, else the bound address.
    pub fn endpoint(&self, request_host: Option<&str>) -> String {
        match (&self.advertise, request_host) {
            (None, Some(h)) if !h.is_empty() => format!("http://{h}"),
            _ => format!("http://{}", self.registry_host()),
        }
    }
}

/// `HOST:PORT` a server bound to `listen` is reached at: `advertise` (with the bound port
/// unless it names one), else the bound address (loopback for an unspecified one).
pub fn registry_host(listen: SocketAddr, advertise: Option<&str>) -> String {
    let host = match advertise {
        Some(h) => h.to_string(),
        None if listen.ip().is_unspecified() => "127.0.0.1".to_string(),
        None => listen.ip().to_string(),
    };
    if host.contains(':') {
        host // already has a port
    } else {
        format!("{host}:{}", listen.port())
    }
}
