//! ELBv2's vocabulary, typed: each enum as its wire text (`as_str`) and parsed from it with
//! ELBv2's validation message naming the member.

use serde::{Deserialize, Serialize};

use crate::{Result, invalid};

/// An enum value outside the model's set, as the validation layer words it.
fn not_in_set(member: &str, value: &str, set: &[&str]) -> crate::Elbv2Error {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        set.join(", ")
    ))
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $member:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value `text` names; ELBv2's validation error otherwise.
            pub fn parse(text: &str) -> Result<$name> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(not_in_set($member, other, Self::ALL)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// `Type` of a load balancer (gateway load balancers are not served).
    LoadBalancerType, "type" { Application = "application", Network = "network" }
);

impl LoadBalancerType {
    /// The ARN's type segment: `app` or `net`.
    pub fn arn_segment(self) -> &'static str {
        match self {
            LoadBalancerType::Application => "app",
            LoadBalancerType::Network => "net",
        }
    }
}

wire_enum!(
    /// `Scheme`.
    Scheme, "scheme" { InternetFacing = "internet-facing", Internal = "internal" }
);

wire_enum!(
    /// `IpAddressType`.
    IpAddressType, "ipAddressType" { Ipv4 = "ipv4", Dualstack = "dualstack" }
);

wire_enum!(
    /// `State.Code` of a load balancer.
    LoadBalancerState, "code" {
        Provisioning = "provisioning",
        Active = "active",
        ActiveImpaired = "active_impaired",
        Failed = "failed",
    }
);

wire_enum!(
    /// Listener and target group protocols (GENEVE, of gateway load balancers, is not served).
    Protocol, "protocol" {
        Http = "HTTP",
        Https = "HTTPS",
        Tcp = "TCP",
        Tls = "TLS",
        Udp = "UDP",
        TcpUdp = "TCP_UDP",
    }
);

impl Protocol {
    /// HTTP and HTTPS: an application load balancer's protocols.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }

    /// HTTPS and TLS: a listener that terminates TLS and needs a certificate.
    pub fn is_secure(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    /// Whether a load balancer of type `lb` has listeners with this protocol.
    pub fn fits(self, lb: LoadBalancerType) -> bool {
        match lb {
            LoadBalancerType::Application => self.is_http(),
            LoadBalancerType::Network => !self.is_http(),
        }
    }
}

wire_enum!(
    /// `TargetType` (lambda and alb targets are not served).
    TargetType, "targetType" { Instance = "instance", Ip = "ip" }
);

wire_enum!(
    /// `TargetHealth.State`.
    TargetHealthState, "state" {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        UnhealthyDraining = "unhealthy.draining",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
);

wire_enum!(
    /// `TargetHealth.Reason`.
    TargetHealthReason, "reason" {
        RegistrationInProgress = "Elb.RegistrationInProgress",
        InitialHealthChecking = "Elb.InitialHealthChecking",
        ResponseCodeMismatch = "Target.ResponseCodeMismatch",
        Timeout = "Target.Timeout",
        FailedHealthChecks = "Target.FailedHealthChecks",
        NotRegistered = "Target.NotRegistered",
        NotInUse = "Target.NotInUse",
        DeregistrationInProgress = "Target.DeregistrationInProgress",
        InvalidState = "Target.InvalidState",
        IpUnusable = "Target.IpUnusable",
        HealthCheckDisabled = "Target.HealthCheckDisabled",
        InternalError = "Elb.InternalError",
    }
);

impl TargetHealthReason {
    /// AWS's `Description` for the reason (the data plane may give a more precise one, as
    /// AWS does for a response code mismatch: "Health checks failed with these codes: [503]").
    pub fn description(self) -> &'static str {
        match self {
            TargetHealthReason::RegistrationInProgress => "Target registration is in progress",
            TargetHealthReason::InitialHealthChecking => "Initial health checks in progress",
            TargetHealthReason::ResponseCodeMismatch => "Health checks failed",
            TargetHealthReason::Timeout => "Request timed out",
            TargetHealthReason::FailedHealthChecks => "Health checks failed",
            TargetHealthReason::NotRegistered => "Target is not registered to the target group",
            TargetHealthReason::NotInUse => {
                "Target group is not configured to receive traffic from the load balancer"
            }
            TargetHealthReason::DeregistrationInProgress => "Target deregistration is in progress",
            TargetHealthReason::InvalidState => "Target is in the stopped or terminated state",
            TargetHealthReason::IpUnusable => {
                "The IP address cannot be used as a target, as it is in use by a load balancer"
            }
            TargetHealthReason::HealthCheckDisabled => "Health checks are disabled",
            TargetHealthReason::InternalError => "Health checks failed due to an internal error",
        }
    }
}
