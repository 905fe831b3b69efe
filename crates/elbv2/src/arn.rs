//! ELBv2's ARNs, built and parsed here only:
//! `arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{app|net}/{name}/{id}`,
//! `…:targetgroup/{name}/{id}`, `…:listener/{app|net}/{lb-name}/{lb-id}/{id}` and
//! `…:listener-rule/{app|net}/{lb-name}/{lb-id}/{listener-id}/{id}`. A malformed ARN is
//! ELBv2's `ValidationError` ("'x' is not a valid load balancer ARN").

use serde::{Deserialize, Serialize};

use crate::keys::ElbScope;
use crate::{LoadBalancerType, Result, invalid};

const PREFIX: &str = "arn:aws:elasticloadbalancing:";

/// The region, account and the resource's `/`-separated parts of an ELBv2 ARN whose
/// resource starts with `kind/`.
fn parts<'a>(arn: &'a str, kind: &str, count: usize) -> Option<(&'a str, &'a str, Vec<&'a str>)> {
    let rest = arn.strip_prefix(PREFIX)?;
    let mut fields = rest.splitn(3, ':');
    let region = fields.next()?;
    let account = fields.next()?;
    let resource = fields.next()?.strip_prefix(kind)?.strip_prefix('/')?;
    let parts: Vec<&str> = resource.split('/').collect();
    (parts.len() == count && parts.iter().all(|p| !p.is_empty()))
        .then_some((region, account, parts))
}

fn is_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn lb_segment(segment: &str) -> bool {
    matches!(segment, "app" | "net")
}

macro_rules! arn_newtype {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

arn_newtype!(LoadBalancerArn);
arn_newtype!(TargetGroupArn);
arn_newtype!(ListenerArn);
arn_newtype!(RuleArn);

impl LoadBalancerArn {
    pub(crate) fn new(scope: &ElbScope, kind: LoadBalancerType, name: &str, id: &str) -> Self {
        LoadBalancerArn(format!(
            "{PREFIX}{}:{}:loadbalancer/{}/{name}/{id}",
            scope.region,
            scope.account,
            kind.arn_segment()
        ))
    }

    pub fn parse(arn: &str) -> Result<Self> {
        match parts(arn, "loadbalancer", 3) {
            Some((_, _, p)) if lb_segment(p[0]) && is_id(p[2]) => Ok(LoadBalancerArn(arn.into())),
            _ => Err(invalid(format!("'{arn}' is not a valid load balancer ARN"))),
        }
    }

    fn resource(&self) -> Vec<&str> {
        parts(&self.0, "loadbalancer", 3)
            .map(|(_, _, p)| p)
            .unwrap_or_default()
    }

    /// `(region, account)` of the ARN.
    pub fn scope(&self) -> (&str, &str) {
        parts(&self.0, "loadbalancer", 3).map_or(("", ""), |(r, a, _)| (r, a))
    }

    pub fn name(&self) -> &str {
        self.resource().get(1).copied().unwrap_or_default()
    }

    pub fn id(&self) -> &str {
        self.resource().get(2).copied().unwrap_or_default()
    }

    /// `app/{name}/{id}`: what listener and rule ARNs carry of it.
    fn tail(&self) -> &str {
        self.0.split_once(":loadbalancer/").map_or("", |(_, t)| t)
    }
}

impl TargetGroupArn {
    pub(crate) fn new(scope: &ElbScope, name: &str, id: &str) -> Self {
        TargetGroupArn(format!(
            "{PREFIX}{}:{}:targetgroup/{name}/{id}",
            scope.region, scope.account
        ))
    }

    pub fn parse(arn: &str) -> Result<Self> {
        match parts(arn, "targetgroup", 2) {
            Some((_, _, p)) if is_id(p[1]) => Ok(TargetGroupArn(arn.into())),
            _ => Err(invalid(format!("'{arn}' is not a valid target group ARN"))),
        }
    }

    pub fn scope(&self) -> (&str, &str) {
        parts(&self.0, "targetgroup", 2).map_or(("", ""), |(r, a, _)| (r, a))
    }

    pub fn name(&self) -> &str {
        parts(&self.0, "targetgroup", 2).map_or("", |(_, _, p)| p[0])
    }

    pub fn id(&self) -> &str {
        parts(&self.0, "targetgroup", 2).map_or("", |(_, _, p)| p[1])
    }
}

impl ListenerArn {
    pub(crate) fn new(lb: &LoadBalancerArn, id: &str) -> Self {
        let (region, account) = lb.scope();
        ListenerArn(format!(
            "{PREFIX}{region}:{account}:listener/{}/{id}",
            lb.tail()
        ))
    }

    pub fn parse(arn: &str) -> Result<Self> {
        match parts(arn, "listener", 4) {
            Some((_, _, p)) if lb_segment(p[0]) && is_id(p[2]) && is_id(p[3]) => {
                Ok(ListenerArn(arn.into()))
            }
            _ => Err(invalid(format!("'{arn}' is not a valid listener ARN"))),
        }
    }

    pub fn scope(&self) -> (&str, &str) {
        parts(&self.0, "listener", 4).map_or(("", ""), |(r, a, _)| (r, a))
    }

    /// The load balancer's id and the listener's.
    pub fn ids(&self) -> (&str, &str) {
        parts(&self.0, "listener", 4).map_or(("", ""), |(_, _, p)| (p[2], p[3]))
    }
}

impl RuleArn {
    pub(crate) fn new(listener: &ListenerArn, id: &str) -> Self {
        RuleArn(format!(
            "{}/{id}",
            listener.0.replacen(":listener/", ":listener-rule/", 1)
        ))
    }

    pub fn parse(arn: &str) -> Result<Self> {
        match parts(arn, "listener-rule", 5) {
            Some((_, _, p)) if lb_segment(p[0]) && is_id(p[2]) && is_id(p[3]) && is_id(p[4]) => {
                Ok(RuleArn(arn.into()))
            }
            _ => Err(invalid(format!("'{arn}' is not a valid rule ARN"))),
        }
    }

    /// The ARN of the listener the rule belongs to.
    pub fn listener(&self) -> ListenerArn {
        let without_id = self.0.rsplit_once('/').map_or("", |(l, _)| l);
        ListenerArn(without_id.replacen(":listener-rule/", ":listener/", 1))
    }

    pub fn id(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_built_and_read_back() {
        let scope = ElbScope::new("000000000000", "us-east-1");
        let lb = LoadBalancerArn::new(
            &scope,
            LoadBalancerType::Application,
            "web",
            "0123456789abcdef",
        );
        assert_eq!(
            lb.as_str(),
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
        );
        assert_eq!((lb.name(), lb.id()), ("web", "0123456789abcdef"));
        let listener = ListenerArn::new(&lb, "fedcba9876543210");
        assert_eq!(
            listener.as_str(),
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/web/0123456789abcdef/fedcba9876543210"
        );
        assert_eq!(ListenerArn::parse(listener.as_str()).unwrap(), listener);
        let rule = RuleArn::new(&listener, "00000000000000aa");
        assert!(rule.as_str().contains(":listener-rule/app/web/"));
        assert_eq!(rule.listener(), listener);
        assert_eq!(
            RuleArn::parse(rule.as_str()).unwrap().id(),
            "00000000000000aa"
        );
        let tg = TargetGroupArn::new(&scope, "tg", "0123456789abcdef");
        assert_eq!(TargetGroupArn::parse(tg.as_str()).unwrap().name(), "tg");
    }

    #[test]
    fn a_malformed_arn_is_a_validation_error_naming_it() {
        let e = LoadBalancerArn::parse("arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/web")
            .unwrap_err();
        assert!(
            e.to_string().contains("is not a valid load balancer ARN"),
            "{e}"
        );
        assert!(TargetGroupArn::parse("tg").is_err());
        assert!(ListenerArn::parse("arn:aws:elasticloadbalancing:r:a:listener/app/x/1/2").is_err());
    }
}
