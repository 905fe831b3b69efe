//! Attributes of load balancers and target groups: AWS's defaults per type, and the values
//! each key accepts. Records keep only the keys set; Describe*Attributes shows the
//! defaults with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{LoadBalancerType, Protocol, Result, config};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// A load balancer's attributes with AWS's defaults.
pub fn load_balancer_defaults(kind: LoadBalancerType) -> BTreeMap<&'static str, &'static str> {
    let mut d = BTreeMap::from([
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("deletion_protection.enabled", "false"),
    ]);
    match kind {
        LoadBalancerType::Application => d.extend([
            ("idle_timeout.timeout_seconds", "60"),
            ("client_keep_alive.seconds", "3600"),
            ("connection_logs.s3.enabled", "false"),
            ("connection_logs.s3.bucket", ""),
            ("connection_logs.s3.prefix", ""),
            ("routing.http2.enabled", "true"),
            ("routing.http.desync_mitigation_mode", "defensive"),
            ("routing.http.drop_invalid_header_fields.enabled", "false"),
            ("routing.http.preserve_host_header.enabled", "false"),
            (
                "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
                "false",
            ),
            ("routing.http.xff_client_port.enabled", "false"),
            ("routing.http.xff_header_processing.mode", "append"),
            ("waf.fail_open.enabled", "false"),
        ]),
        LoadBalancerType::Network => d.extend([
            ("load_balancing.cross_zone.enabled", "false"),
            ("dns_record.client_routing_policy", "any_availability_zone"),
        ]),
    }
    d
}

/// A target group's attributes with AWS's defaults (by its protocol: HTTP and HTTPS
/// groups serve application load balancers, the others network ones).
pub fn target_group_defaults(protocol: Protocol) -> BTreeMap<&'static str, &'static str> {
    let mut d = BTreeMap::from([
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
    ]);
    if protocol.is_http() {
        d.extend([
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("stickiness.app_cookie.cookie_name", ""),
            ("stickiness.app_cookie.duration_seconds", "86400"),
            ("slow_start.duration_seconds", "0"),
            ("load_balancing.algorithm.type", "round_robin"),
            ("load_balancing.algorithm.anomaly_mitigation", "off"),
            (
                "target_group_health.dns_failover.minimum_healthy_targets.count",
                "1",
            ),
            (
                "target_group_health.dns_failover.minimum_healthy_targets.percentage",
                "off",
            ),
        ]);
    } else {
        d.extend([
            ("stickiness.type", "source_ip"),
            (
                "deregistration_delay.connection_termination.enabled",
                "false",
            ),
            ("preserve_client_ip.enabled", "true"),
            ("proxy_protocol_v2.enabled", "false"),
        ]);
    }
    d
}

fn check_int(key: &str, value: &str, range: std::ops::RangeInclusive<i64>) -> Result<()> {
    match value.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(()),
        _ => Err(config(format!(
            "The value of '{key}' must be between {} and {}",
            range.start(),
            range.end()
        ))),
    }
}

fn check_bool(key: &str, value: &str) -> Result<()> {
    match value {
        "true" | "false" => Ok(()),
        _ => Err(config(format!(
            "The value of '{key}' must be 'true' or 'false'"
        ))),
    }
}

fn check_one_of(key: &str, value: &str, set: &[&str]) -> Result<()> {
    if set.contains(&value) {
        Ok(())
    } else {
        Err(config(format!(
            "The value of '{key}' must be one of: {}",
            set.join(", ")
        )))
    }
}

/// Checks `changes` against the keys `defaults` knows and their values; returns them.
fn check_attributes(
    what: &str,
    defaults: &BTreeMap<&'static str, &'static str>,
    changes: &[Attribute],
    check_value: impl Fn(&str, &str) -> Result<()>,
) -> Result<()> {
    for a in changes {
        if !defaults.contains_key(a.key.as_str()) {
            return Err(config(format!(
                "{what} attribute key '{}' is not recognized",
                a.key
            )));
        }
        check_value(&a.key, &a.value)?;
    }
    Ok(())
}

/// Checks ModifyLoadBalancerAttributes' changes for a load balancer of `kind`.
pub(crate) fn check_load_balancer(kind: LoadBalancerType, changes: &[Attribute]) -> Result<()> {
    check_attributes(
        "Load balancer",
        &load_balancer_defaults(kind),
        changes,
        |key, value| match key {
            "idle_timeout.timeout_seconds" => check_int(key, value, 1..=4000),
            "client_keep_alive.seconds" => check_int(key, value, 60..=604_800),
            "routing.http.desync_mitigation_mode" => {
                check_one_of(key, value, &["monitor", "defensive", "strictest"])
            }
            "routing.http.xff_header_processing.mode" => {
                check_one_of(key, value, &["append", "preserve", "remove"])
            }
            "dns_record.client_routing_policy" => check_one_of(
                key,
                value,
                &[
                    "availability_zone_affinity",
                    "partial_availability_zone_affinity",
                    "any_availability_zone",
                ],
            ),
            k if k.ends_with(".enabled") => check_bool(key, value),
            _ => Ok(()),
        },
    )
}

/// Checks ModifyTargetGroupAttributes' changes for a target group of `protocol`.
pub(crate) fn check_target_group(protocol: Protocol, changes: &[Attribute]) -> Result<()> {
    check_attributes(
        "Target group",
        &target_group_defaults(protocol),
        changes,
        |key, value| match key {
            "deregistration_delay.timeout_seconds" => check_int(key, value, 0..=3600),
            "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
                check_int(key, value, 1..=604_800)
            }
            "slow_start.duration_seconds" => match value.parse::<i64>() {
                Ok(0) | Ok(30..=900) => Ok(()),
                _ => Err(config(
                    "The value of 'slow_start.duration_seconds' must be 0 or between 30 and 900",
                )),
            },
            "stickiness.type" if protocol.is_http() => {
                check_one_of(key, value, &["lb_cookie", "app_cookie"])
            }
            "stickiness.type" => check_one_of(key, value, &["source_ip"]),
            "load_balancing.algorithm.type" => check_one_of(
                key,
                value,
                &[
                    "round_robin",
                    "least_outstanding_requests",
                    "weighted_random",
                ],
            ),
            "load_balancing.cross_zone.enabled" => check_one_of(
                key,
                value,
                &["true", "false", "use_load_balancer_configuration"],
            ),
            k if k.ends_with(".enabled") => check_bool(key, value),
            _ => Ok(()),
        },
    )
}

/// The attributes shown: the defaults overlaid with what was set.
pub(crate) fn merged(
    defaults: BTreeMap<&'static str, &'static str>,
    set: &BTreeMap<String, String>,
) -> Vec<Attribute> {
    let mut all: BTreeMap<String, String> = defaults
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    all.into_iter()
        .map(|(key, value)| Attribute { key, value })
        .collect()
}
