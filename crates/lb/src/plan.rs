//! The plan: what the data plane should serve, as plain values. The integrator builds it from
//! the ELBv2 records; the data plane knows nothing of the API or the store. Field names follow
//! ELBv2's (listener rules, target group attributes) so the mapping is one to one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::LbError;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_newtype!(
    /// A load balancer, by whatever the integrator names it (its ARN).
    LoadBalancerId
);
id_newtype!(
    /// A target group, by whatever the integrator names it (its ARN).
    TargetGroupId
);
id_newtype!(
    /// A registered target: ELBv2's (Id, Port) pair, e.g. `10.0.0.5:8080`.
    TargetId
);

/// Everything the data plane serves. `DataPlane::apply` reconciles towards it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub load_balancers: Vec<LoadBalancerPlan>,
    pub target_groups: Vec<TargetGroupPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerKind {
    Application,
    Network,
}

#[derive(Debug, Clone)]
pub struct LoadBalancerPlan {
    pub id: LoadBalancerId,
    pub kind: LoadBalancerKind,
    /// Where its listeners bind.
    pub address: Ipv4Addr,
    /// `idle_timeout.timeout_seconds` (ALB): also how long a target may take to answer
    /// before the client gets a 504.
    pub idle_timeout: Duration,
    pub listeners: Vec<ListenerPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    Http,
    Https,
    Tcp,
    Tls,
}

impl ListenerProtocol {
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Tls)
    }
}

/// A server certificate chain and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePem {
    pub certificate_chain: String,
    pub private_key: String,
}

#[derive(Debug, Clone)]
pub struct ListenerPlan {
    /// 0 binds an ephemeral port (tests); `DataPlane::listener_addr` tells which.
    pub port: u16,
    pub protocol: ListenerProtocol,
    /// Required for HTTPS and TLS listeners.
    pub certificate: Option<CertificatePem>,
    /// Evaluated in priority order (lowest first); ties keep their order here.
    pub rules: Vec<RulePlan>,
    pub default_actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub struct RulePlan {
    pub priority: u32,
    /// All must match (ELBv2 ANDs conditions; the values inside one condition are ORed).
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// Matched against the path without its query, case-sensitive, `*` and `?` wildcards.
    PathPattern(Vec<String>),
    /// Matched against the Host header without its port, case-insensitive, with wildcards.
    HostHeader(Vec<String>),
    HttpHeader {
        name: String,
        values: Vec<String>,
    },
    /// Exact and case-sensitive, as ELBv2 documents.
    HttpRequestMethod(Vec<String>),
    QueryString(Vec<QueryStringPair>),
    SourceIp(Vec<Cidr>),
}

/// A `QueryStringConditionConfig` value: the key is optional; both may hold wildcards.
#[derive(Debug, Clone)]
pub struct QueryStringPair {
    pub key: Option<String>,
    pub value: String,
}

/// An IPv4 or IPv6 block, as a source-ip condition names it (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, LbError> {
        let bad = || LbError::InvalidPlan(format!("not a CIDR block: {s}"));
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client reaching a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    Forward(ForwardAction),
    Redirect(RedirectAction),
    FixedResponse(FixedResponseAction),
}

#[derive(Debug, Clone)]
pub struct ForwardAction {
    pub target_groups: Vec<WeightedTargetGroup>,
    /// `TargetGroupStickinessConfig`: keep a client on one group of a weighted forward
    /// (the `AWSALBTG` cookie) for this long.
    pub stickiness: Option<Duration>,
}

impl ForwardAction {
    /// The common case: everything to one target group.
    pub fn to(group: TargetGroupId) -> Self {
        Self {
            target_groups: vec![WeightedTargetGroup {
                id: group,
                weight: 1,
            }],
            stickiness: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WeightedTargetGroup {
    pub id: TargetGroupId,
    pub weight: u32,
}

/// `RedirectActionConfig`: absent components keep their original values; components may
/// hold the `#{protocol}`, `#{host}`, `#{port}`, `#{path}` and `#{query}` keywords.
#[derive(Debug, Clone, Default)]
pub struct RedirectAction {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status_code: RedirectStatus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedirectStatus {
    #[default]
    Http301,
    Http302,
}

#[derive(Debug, Clone)]
pub struct FixedResponseAction {
    pub status_code: u16,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProtocol {
    Http,
    Https,
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub struct TargetGroupPlan {
    pub id: TargetGroupId,
    pub protocol: TargetProtocol,
    pub targets: Vec<TargetPlan>,
    pub health_check: HealthCheckPlan,
    /// `deregistration_delay.timeout_seconds`.
    pub deregistration_delay: Duration,
    /// `stickiness.enabled` with `stickiness.type` `lb_cookie`: the `AWSALB` cookie's life.
    pub stickiness: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub id: TargetId,
    pub address: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckProtocol {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckPort {
    TrafficPort,
    Port(u16),
}

#[derive(Debug, Clone)]
pub struct HealthCheckPlan {
    pub protocol: HealthCheckProtocol,
    pub path: String,
    pub port: HealthCheckPort,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub matcher: Matcher,
}

impl Default for HealthCheckPlan {
    /// ELBv2's defaults for an HTTP target group.
    fn default() -> Self {
        Self {
            protocol: HealthCheckProtocol::Http,
            path: "/".to_owned(),
            port: HealthCheckPort::TrafficPort,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Matcher(vec![(200, 200)]),
        }
    }
}

/// A health check's `Matcher.HttpCode`: `200`, `200-299`, `200,202`, inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher(pub Vec<(u16, u16)>);

impl Matcher {
    pub fn parse(s: &str) -> Result<Self, LbError> {
        let bad = || LbError::InvalidPlan(format!("not a health check matcher: {s}"));
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.trim(), hi.trim()),
                None => (part, part),
            };
            let lo: u16 = lo.parse().map_err(|_| bad())?;
            let hi: u16 = hi.parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            ranges.push((lo, hi));
        }
        Ok(Self(ranges))
    }

    pub fn matches(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matcher_takes_codes_ranges_and_lists() {
        let m = Matcher::parse("200,202-204").unwrap();
        assert!(m.matches(200) && m.matches(203) && m.matches(204));
        assert!(!m.matches(201) && !m.matches(500));
        assert!(Matcher::parse("299-200").is_err());
        assert!(Matcher::parse("ok").is_err());
    }

    #[test]
    fn a_cidr_contains_the_addresses_of_its_block() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
    }
}
