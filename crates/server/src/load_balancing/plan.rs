//! ELBv2's records → the data plane's [`Plan`], pure: what the load balancers serve follows
//! from the records, the container instances' host addresses (instance targets) and the
//! listeners' certificates, handed in. What cannot be served is left out and said in
//! [`Built::problems`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use berth_elbv2::{
    Action, ActionType, Condition, ConditionField, Listener, LoadBalancerType, Protocol, Snapshot,
    TargetGroup, TargetType,
};
use berth_lb as lb;

/// A listener's certificate, by the IAM server certificate ARN its record names.
pub type Certificates = HashMap<String, lb::CertificatePem>;

/// The plan and what was left out of it.
#[derive(Debug, Default)]
pub struct Built {
    pub plan: lb::Plan,
    pub problems: Vec<String>,
}

/// The plan for `snapshot`. `instances`: each container instance's host address by its
/// EC2 instance id (`i-…`), where an instance target's port is published.
pub fn build(
    snapshot: &Snapshot,
    instances: &HashMap<String, IpAddr>,
    certificates: &Certificates,
) -> Built {
    let mut built = Built::default();
    let mut used: HashSet<String> = HashSet::new();
    for (scope, balancer) in &snapshot.load_balancers {
        let listeners = snapshot
            .listeners
            .iter()
            .filter(|(s, l)| s == scope && l.load_balancer_arn == balancer.arn)
            .filter_map(|(_, l)| listener(l, certificates, &mut built.problems))
            .collect::<Vec<_>>();
        for l in &listeners {
            for action in l
                .rules
                .iter()
                .flat_map(|r| &r.actions)
                .chain(&l.default_actions)
            {
                if let lb::Action::Forward(f) = action {
                    used.extend(f.target_groups.iter().map(|g| g.id.0.clone()));
                }
            }
        }
        built.plan.load_balancers.push(lb::LoadBalancerPlan {
            id: lb::LoadBalancerId(balancer.arn.to_string()),
            kind: match balancer.kind {
                LoadBalancerType::Application => lb::LoadBalancerKind::Application,
                LoadBalancerType::Network => lb::LoadBalancerKind::Network,
            },
            address: balancer.address,
            idle_timeout: Duration::from_secs(
                balancer
                    .attribute("idle_timeout.timeout_seconds")
                    .and_then(|v| v.parse().ok())
                    // A network load balancer's TCP idle timeout.
                    .unwrap_or(350),
            ),
            listeners,
        });
    }
    // Only groups a listener forwards to are served (and health-checked): the others'
    // targets are `unused`, as on AWS.
    for (_, group) in &snapshot.target_groups {
        if used.contains(&group.arn.to_string()) {
            let plan = target_group(group, instances, &mut built.problems);
            built.plan.target_groups.push(plan);
        }
    }
    built
}

fn listener(
    l: &Listener,
    certificates: &Certificates,
    problems: &mut Vec<String>,
) -> Option<lb::ListenerPlan> {
    let protocol = match l.protocol {
        Protocol::Http => lb::ListenerProtocol::Http,
        Protocol::Https => lb::ListenerProtocol::Https,
        Protocol::Tcp => lb::ListenerProtocol::Tcp,
        Protocol::Tls => lb::ListenerProtocol::Tls,
        Protocol::Udp | Protocol::TcpUdp => {
            problems.push(format!(
                "{}: {} listeners are not served",
                l.arn, l.protocol
            ));
            return None;
        }
    };
    let certificate = if l.protocol.is_secure() {
        let named = l
            .certificates
            .iter()
            .find(|c| c.is_default)
            .or_else(|| l.certificates.first());
        match named.and_then(|c| certificates.get(&c.arn)) {
            Some(pem) => Some(pem.clone()),
            None => {
                problems.push(format!("{}: its certificate cannot be opened", l.arn));
                return None;
            }
        }
    } else {
        None
    };
    let mut rules = Vec::new();
    for r in &l.rules {
        match conditions(&r.conditions) {
            Ok(conditions) => rules.push(lb::RulePlan {
                priority: r.priority,
                conditions,
                actions: actions(&r.actions),
            }),
            Err(e) => problems.push(format!("{} rule {}: {e}", l.arn, r.id)),
        }
    }
    Some(lb::ListenerPlan {
        port: l.port,
        protocol,
        certificate,
        rules,
        default_actions: actions(&l.default_actions),
    })
}

fn conditions(conditions: &[Condition]) -> Result<Vec<lb::Condition>, String> {
    conditions
        .iter()
        .map(|c| {
            Ok(match c.field {
                ConditionField::PathPattern => lb::Condition::PathPattern(c.values.clone()),
                ConditionField::HostHeader => lb::Condition::HostHeader(c.values.clone()),
                ConditionField::HttpHeader => lb::Condition::HttpHeader {
                    name: c.header_name.clone().unwrap_or_default(),
                    values: c.values.clone(),
                },
                ConditionField::HttpRequestMethod => {
                    lb::Condition::HttpRequestMethod(c.values.clone())
                }
                ConditionField::QueryString => lb::Condition::QueryString(
                    c.query
                        .iter()
                        .map(|(key, value)| lb::QueryStringPair {
                            key: key.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                ),
                ConditionField::SourceIp => lb::Condition::SourceIp(
                    c.values
                        .iter()
                        .map(|v| lb::Cidr::parse(v).map_err(|e| e.to_string()))
                        .collect::<Result<_, _>>()?,
                ),
            })
        })
        .collect()
}

/// A rule's actions in their `Order` (the data plane acts on the last, the terminal one).
fn actions(actions: &[Action]) -> Vec<lb::Action> {
    let mut ordered: Vec<&Action> = actions.iter().collect();
    ordered.sort_by_key(|a| a.order.unwrap_or(u32::MAX));
    ordered.into_iter().filter_map(action).collect()
}

fn action(a: &Action) -> Option<lb::Action> {
    Some(match a.kind {
        ActionType::Forward => {
            let f = a.forward.as_ref()?;
            lb::Action::Forward(lb::ForwardAction {
                target_groups: f
                    .target_groups
                    .iter()
                    .map(|t| lb::WeightedTargetGroup {
                        id: lb::TargetGroupId(t.arn.to_string()),
                        weight: t.weight,
                    })
                    .collect(),
                stickiness: f.stickiness.enabled.then(|| {
                    Duration::from_secs(u64::from(f.stickiness.duration_seconds.unwrap_or(3600)))
                }),
            })
        }
        ActionType::Redirect => {
            let r = a.redirect.as_ref()?;
            lb::Action::Redirect(lb::RedirectAction {
                protocol: Some(r.protocol.clone()),
                host: Some(r.host.clone()),
                port: Some(r.port.clone()),
                path: Some(r.path.clone()),
                query: Some(r.query.clone()),
                status_code: if r.status_code == "HTTP_302" {
                    lb::RedirectStatus::Http302
                } else {
                    lb::RedirectStatus::Http301
                },
            })
        }
        ActionType::FixedResponse => {
            let f = a.fixed_response.as_ref()?;
            lb::Action::FixedResponse(lb::FixedResponseAction {
                status_code: f.status_code.parse().ok()?,
                content_type: f.content_type.clone(),
                message_body: f.message_body.clone(),
            })
        }
    })
}

fn target_group(
    group: &TargetGroup,
    instances: &HashMap<String, IpAddr>,
    problems: &mut Vec<String>,
) -> lb::TargetGroupPlan {
    let targets = group
        .targets
        .iter()
        .filter_map(|t| {
            let ip = match group.target_type {
                TargetType::Ip => t.id.parse().ok(),
                TargetType::Instance => instances.get(&t.id).copied(),
            };
            match ip {
                Some(ip) => Some(lb::TargetPlan {
                    id: lb::TargetId(format!("{}:{}", t.id, t.port)),
                    address: SocketAddr::new(ip, t.port),
                }),
                None => {
                    problems.push(format!(
                        "{}: target {} has no known address",
                        group.arn, t.id
                    ));
                    None
                }
            }
        })
        .collect();
    let check = &group.health_check;
    let health_check = lb::HealthCheckPlan {
        protocol: if check.protocol.is_http() {
            lb::HealthCheckProtocol::Http
        } else {
            lb::HealthCheckProtocol::Tcp
        },
        path: check.path.clone().unwrap_or_else(|| "/".to_owned()),
        port: match check.port.parse() {
            Ok(port) => lb::HealthCheckPort::Port(port),
            Err(_) => lb::HealthCheckPort::TrafficPort,
        },
        interval: Duration::from_secs(u64::from(check.interval_seconds)),
        timeout: Duration::from_secs(u64::from(check.timeout_seconds)),
        healthy_threshold: check.healthy_threshold,
        unhealthy_threshold: check.unhealthy_threshold,
        matcher: check
            .matcher
            .as_deref()
            .and_then(|m| lb::Matcher::parse(m).ok())
            .unwrap_or(lb::Matcher(vec![(200, 399)])),
    };
    let sticky = group.attribute("stickiness.enabled").as_deref() == Some("true")
        && group.attribute("stickiness.type").as_deref() == Some("lb_cookie");
    lb::TargetGroupPlan {
        id: lb::TargetGroupId(group.arn.to_string()),
        protocol: match group.protocol {
            Protocol::Http => lb::TargetProtocol::Http,
            Protocol::Https => lb::TargetProtocol::Https,
            Protocol::Tls => lb::TargetProtocol::Tls,
            Protocol::Tcp | Protocol::Udp | Protocol::TcpUdp => lb::TargetProtocol::Tcp,
        },
        targets,
        health_check,
        deregistration_delay: Duration::from_secs_f64(group.deregistration_delay().max(0.0)),
        stickiness: sticky.then(|| {
            Duration::from_secs(
                group
                    .attribute("stickiness.lb_cookie.duration_seconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(86_400),
            )
        }),
    }
}
