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
    /// CloudWatch metrics.
    pub cloudwatch: Arc<berth_cloudwatch::CloudWatch>,
    /// SSM Parameter Store.
    pub ssm: Arc<berth_ssm::Ssm>,
    /// Secrets Manager.
    pub secrets: Arc<berth_secrets::Secrets>,
    /// ELBv2: load balancers, target groups, listeners and rules.
    pub elbv2: Arc<berth_elbv2::Elbv2>,
    /// EC2 networking: VPCs, subnets, security groups, gateways, route tables.
    pub ec2: Arc<berth_ec2::Ec2>,
    /// Application Auto Scaling (ECS services).
    pub app_autoscaling: berth_app_autoscaling::AppAutoScaling,
    /// EC2 Auto Scaling: groups whose instances are berth agents.
    pub autoscaling: Arc<berth_autoscaling::AutoScaling>,
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
    /// The service-linked role `service` (`ecs.amazonaws.com`, …) makes in `account` on its
    /// first use, as AWS's services do. It is a convenience the request does not depend on:
    /// a failure is logged, not answered.
    pub fn ensure_service_linked_role(&self, account: &str, service: &str) {
        if let Err(e) = self.iam.ensure_service_linked_role(account, service) {
            tracing::warn!(error = %e, service, "service-linked role not made");
        }
    }

    /// `HOST:PORT` of the registry as `repositoryUri` names it.
    pub fn registry_host(&self) -> String {
        registry_host(self.listen, self.advertise.as_deref())
    }

    /// `repositoryUri` of repository `name` of `account`: `HOST:PORT/NAME` in the default
    /// account (as always), `HOST:PORT/ACCOUNT/NAME` in another account of the installation
    /// (one host serves every registry, so the account goes in the path; see `oci.rs`).
    pub fn repository_uri(&self, account: &AccountId, name: &str) -> String {
        if *account == self.account {
            format!("{}/{name}", self.registry_host())
        } else {
            format!("{}/{account}/{name}", self.registry_host())
        }
    }

    /// Whether `id` is an account of this installation: the default one or one made by
    /// `berth accounts create` (a store read: call it on the blocking pool).
    pub fn is_account(&self, id: &str) -> bool {
        if id == self.account.as_str() {
            return true;
        }
        match self.iam.account(id) {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read an account");
                false
            }
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
