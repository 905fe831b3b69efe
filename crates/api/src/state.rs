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
    pub credentials: RootCredentials,
    pub account: AccountId,
    pub tokens: TokenIssuer,
    /// The address the server is bound to.
    pub listen: SocketAddr,
    /// Host name clients should use instead of the bound address (`--advertise`).
    pub advertise: Option<String>,
    /// The agents' ACS and telemetry sessions.
    pub agents: Arc<acs::AgentHub>,
}

impl AppState {
    /// `HOST:PORT` of the registry as `repositoryUri` names it.
    pub fn registry_host(&self) -> String {
        let host = match &self.advertise {
            Some(h) => h.clone(),
            None if self.listen.ip().is_unspecified() => "127.0.0.1".to_string(),
            None => self.listen.ip().to_string(),
        };
        if host.contains(':') {
            host // already has a port
        } else {
            format!("{host}:{}", self.listen.port())
        }
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
