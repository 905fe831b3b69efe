//! Listeners: CreateListener (HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP; HTTPS and TLS with a
//! certificate that exists), DescribeListeners, ModifyListener, DeleteListener, and which
//! load balancers use which target groups (their listeners' and rules' forwards).

use std::collections::{BTreeMap, BTreeSet};

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::actions::{ActionContext, Rule, check_actions};
use crate::keys::ElbScope;
use crate::load_balancers::page_of;
use crate::tags::{self, Tag};
use crate::{
    Action, Elbv2, Elbv2Error, ListenerArn, LoadBalancer, LoadBalancerArn, Page, Paging, Protocol,
    Result, TargetGroup, TargetGroupArn, invalid, random_id,
};

/// The security policy of HTTPS and TLS listeners that name none (ELBv2's default).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub arn: String,
    #[serde(default)]
    pub is_default: bool,
}

/// A listener as stored, with its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: ListenerArn,
    pub load_balancer_arn: LoadBalancerArn,
    pub port: u16,
    pub protocol: Protocol,
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    #[serde(default)]
    pub alpn_policy: Vec<String>,
    pub default_actions: Vec<Action>,
    /// The default rule's id (its ARN: `listener-rule/…/{listener-id}/{id}`).
    pub default_rule_id: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Listener {
    /// Every target group its default actions and rules forward to.
    pub fn target_groups(&self) -> impl Iterator<Item = &TargetGroupArn> {
        self.default_actions
            .iter()
            .chain(self.rules.iter().flat_map(|r| r.actions.iter()))
            .flat_map(Action::target_groups)
    }
}

/// CreateListener's request, parsed. `certificate_exists` is asked of each certificate ARN
/// (they are IAM server certificates: IAM knows them, not this crate).
#[derive(Debug, Clone)]
pub struct CreateListener {
    pub load_balancer: LoadBalancerArn,
    pub protocol: Option<Protocol>,
    pub port: Option<i64>,
    pub ssl_policy: Option<String>,
    pub certificates: Vec<String>,
    pub alpn_policy: Vec<String>,
    pub default_actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

/// ModifyListener's request, parsed: what is given replaces what the listener had.
#[derive(Debug, Clone, Default)]
pub struct ModifyListener {
    pub protocol: Option<Protocol>,
    pub port: Option<i64>,
    pub ssl_policy: Option<String>,
    pub certificates: Option<Vec<String>>,
    pub alpn_policy: Option<Vec<String>>,
    pub default_actions: Option<Vec<Action>>,
}

pub(crate) fn listener_not_found() -> Elbv2Error {
    Elbv2Error::ListenerNotFound("One or more listeners not found".into())
}

fn check_port(port: Option<i64>) -> Result<Option<u16>> {
    port.map(|p| {
        u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: Value '{p}' at 'port' failed to satisfy constraint: Member must have value between 1 and 65535"
            ))
        })
    })
    .transpose()
}

/// A listener's protocol, certificates and security policy, checked together.
fn check_security(
    listener: &mut Listener,
    lb: &LoadBalancer,
    certificate_exists: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if !listener.protocol.fits(lb.kind) {
        return Err(Elbv2Error::UnsupportedProtocol(format!(
            "Protocol '{}' is not supported with load balancers of type '{}'",
            listener.protocol, lb.kind
        )));
    }
    if listener.protocol.is_secure() {
        if listener.certificates.is_empty() {
            return Err(invalid(format!(
                "A certificate must be specified for {} listeners",
                listener.protocol
            )));
        }
        if let Some(c) = listener
            .certificates
            .iter()
            .find(|c| !certificate_exists(&c.arn))
        {
            return Err(Elbv2Error::CertificateNotFound(format!(
                "Certificate '{}' not found",
                c.arn
            )));
        }
        if listener.ssl_policy.is_none() {
            listener.ssl_policy = Some(DEFAULT_SSL_POLICY.to_string());
        }
    } else {
        if !listener.certificates.is_empty() {
            return Err(invalid(format!(
                "Certificates are not supported for {} listeners",
                listener.protocol
            )));
        }
        if listener.ssl_policy.is_some() {
            return Err(invalid(format!(
                "SSL policies are not supported for {} listeners",
                listener.protocol
            )));
        }
    }
    if let Some(p) = &listener.ssl_policy
        && !p.starts_with("ELBSecurityPolicy-")
    {
        return Err(Elbv2Error::Validation(format!(
            "SSL policy '{p}' not found"
        )));
    }
    Ok(())
}

fn certificates(arns: &[String]) -> Vec<Certificate> {
    arns.iter()
        .map(|arn| Certificate {
            arn: arn.clone(),
            is_default: true,
        })
        .take(1)
        .chain(arns.iter().skip(1).map(|arn| Certificate {
            arn: arn.clone(),
            is_default: false,
        }))
        .collect()
}

impl Elbv2 {
    /// Which load balancers each target group serves (through their listeners' default
    /// actions and rules).
    pub fn target_group_usage(
        &self,
        scope: &ElbScope,
    ) -> Result<BTreeMap<TargetGroupArn, BTreeSet<LoadBalancerArn>>> {
        let mut usage: BTreeMap<TargetGroupArn, BTreeSet<LoadBalancerArn>> = BTreeMap::new();
        for listener in self.all_listeners(scope)? {
            for tg in listener.target_groups() {
                usage
                    .entry(tg.clone())
                    .or_default()
                    .insert(listener.load_balancer_arn.clone());
            }
        }
        Ok(usage)
    }

    /// The listeners of `account` (in any region) that present the certificate `arn`: an
    /// IAM server certificate in use cannot be deleted.
    pub fn listeners_using_certificate(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<Vec<ListenerArn>> {
        let mut out = Vec::new();
        for kv in self
            .store()
            .range(&format!("{}{account}/", crate::keys::ROOT), None, 0)?
        {
            if kv.key.split('/').nth(3) != Some("listener") {
                continue;
            }
            let listener: Listener = berth_store::decode(&kv)?;
            if listener.certificates.iter().any(|c| c.arn == arn) {
                out.push(listener.arn);
            }
        }
        Ok(out)
    }

    /// Every listener of the scope (the data plane reads them all).
    pub fn all_listeners(&self, scope: &ElbScope) -> Result<Vec<Listener>> {
        crate::load_balancers::all_of(self.store(), &scope.listeners_prefix())
    }

    /// The target groups actions name, by ARN (those that exist).
    fn groups_named<'a>(
        &self,
        scope: &ElbScope,
        actions: impl Iterator<Item = &'a Action>,
    ) -> Result<BTreeMap<TargetGroupArn, TargetGroup>> {
        let mut groups = BTreeMap::new();
        for arn in actions.flat_map(Action::target_groups) {
            match self.target_group(scope, arn) {
                Ok(g) => {
                    groups.insert(arn.clone(), g);
                }
                Err(Elbv2Error::TargetGroupNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(groups)
    }

    /// CreateListener: one listener per port of a load balancer (`DuplicateListener`).
    pub fn create_listener(
        &self,
        scope: &ElbScope,
        mut req: CreateListener,
        certificate_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Listener> {
        tags::check(&req.tags)?;
        let port =
            check_port(req.port)?.ok_or_else(|| invalid("A listener port must be specified"))?;
        let protocol = req
            .protocol
            .ok_or_else(|| invalid("A listener protocol must be specified"))?;
        let groups = self.groups_named(scope, req.default_actions.iter())?;
        loop {
            let (lb_key, lb, lb_revision) = self.load_balancer_at(scope, &req.load_balancer)?;
            let existing = self
                .store()
                .range(&scope.listeners_of(lb.arn.id()), None, 0)?;
            for kv in &existing {
                let l: Listener = berth_store::decode(kv)?;
                if l.port == port {
                    return Err(Elbv2Error::DuplicateListener(format!(
                        "A listener already exists on this port for this load balancer '{}'",
                        lb.arn
                    )));
                }
            }
            let usage = self.target_group_usage(scope)?;
            check_actions(
                &mut req.default_actions,
                &ActionContext {
                    lb: &lb.arn,
                    lb_kind: lb.kind,
                    groups: &groups,
                    usage: &usage,
                },
            )?;
            let id = random_id();
            let mut listener = Listener {
                arn: ListenerArn::new(&lb.arn, &id),
                load_balancer_arn: lb.arn.clone(),
                port,
                protocol,
                certificates: certificates(&req.certificates),
                ssl_policy: req.ssl_policy.clone(),
                alpn_policy: req.alpn_policy.clone(),
                default_actions: req.default_actions.clone(),
                default_rule_id: random_id(),
                rules: Vec::new(),
                tags: req.tags.clone(),
            };
            check_security(&mut listener, &lb, certificate_exists)?;
            let key = scope.listener_key(lb.arn.id(), &id);
            // The load balancer's record is written back unchanged: its revision orders
            // listener creations, so two creations on one port cannot both pass the check
            // above, and none lands after the load balancer's deletion.
            let outcome = self.store().txn(
                &[
                    Compare::ModRevision(lb_key.clone(), lb_revision),
                    Compare::ModRevision(key.clone(), 0),
                ],
                &[
                    Op::put(&lb_key, berth_store::encode(&lb)),
                    Op::put(&key, berth_store::encode(&listener)),
                ],
            )?;
            if let TxnOutcome::Committed(_) = outcome {
                return Ok(listener);
            }
        }
    }

    /// The listener `arn` names, its key and revision.
    fn listener_at(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
    ) -> Result<(String, Listener, berth_store::Revision)> {
        if !scope.owns(arn.scope()) {
            return Err(listener_not_found());
        }
        let (lb_id, id) = arn.ids();
        let key = scope.listener_key(lb_id, id);
        let kv = self.store().get(&key)?.ok_or_else(listener_not_found)?;
        let listener: Listener = berth_store::decode(&kv)?;
        if listener.arn != *arn {
            return Err(listener_not_found());
        }
        Ok((key, listener, kv.mod_revision))
    }

    pub fn listener(&self, scope: &ElbScope, arn: &ListenerArn) -> Result<Listener> {
        Ok(self.listener_at(scope, arn)?.1)
    }

    /// A read-modify-write of the listener `arn`.
    pub(crate) fn change_listener(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
        mut change: impl FnMut(&mut Listener) -> Result<()>,
    ) -> Result<Listener> {
        self.change_listener_checked(scope, arn, |l, _| change(l))
    }

    /// A read-modify-write of the listener `arn` whose change checks actions: it gets what
    /// that needs (its load balancer, the target groups, their usage), read afresh on each
    /// try.
    pub(crate) fn change_listener_checked(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
        mut change: impl FnMut(&mut Listener, &ActionContext<'_>) -> Result<()>,
    ) -> Result<Listener> {
        loop {
            let (key, mut listener, revision) = self.listener_at(scope, arn)?;
            let lb = self
                .load_balancer(scope, &listener.load_balancer_arn)
                .map_err(|e| match e {
                    Elbv2Error::LoadBalancerNotFound(_) => listener_not_found(),
                    e => e,
                })?;
            let all: Vec<TargetGroup> = self.target_groups(scope)?;
            let groups: BTreeMap<TargetGroupArn, TargetGroup> =
                all.into_iter().map(|g| (g.arn.clone(), g)).collect();
            let usage = self.target_group_usage(scope)?;
            let ctx = ActionContext {
                lb: &lb.arn,
                lb_kind: lb.kind,
                groups: &groups,
                usage: &usage,
            };
            change(&mut listener, &ctx)?;
            if self
                .store()
                .put_if_revision(&key, &berth_store::encode(&listener), revision)?
                .is_committed()
            {
                return Ok(listener);
            }
        }
    }

    /// DescribeListeners: a load balancer's listeners (by id), or those `arns` name.
    pub fn describe_listeners(
        &self,
        scope: &ElbScope,
        load_balancer: Option<&LoadBalancerArn>,
        arns: &[ListenerArn],
        paging: &Paging,
    ) -> Result<Page<Listener>> {
        let size = paging.size()?;
        if let Some(lb) = load_balancer {
            self.load_balancer(scope, lb)?;
            return page_of(self.store(), &scope.listeners_of(lb.id()), paging, size);
        }
        if arns.is_empty() {
            return Err(invalid(
                "You must specify either listener ARNs or a load balancer ARN",
            ));
        }
        let items = arns
            .iter()
            .map(|arn| self.listener(scope, arn))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::whole(items))
    }

    /// ModifyListener.
    pub fn modify_listener(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
        mut req: ModifyListener,
        certificate_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Listener> {
        let port = check_port(req.port)?;
        if let Some(port) = port {
            self.listener(scope, arn)?;
            let (lb_id, own) = arn.ids();
            for kv in self.store().range(&scope.listeners_of(lb_id), None, 0)? {
                let other: Listener = berth_store::decode(&kv)?;
                // ModifyListener words a taken port as a validation error, not
                // CreateListener's DuplicateListener.
                if other.port == port && other.arn.ids().1 != own {
                    return Err(invalid(format!("Listener port '{port}' is already in use")));
                }
            }
        }
        self.change_listener_checked(scope, arn, |listener, ctx| {
            if let Some(actions) = &mut req.default_actions {
                check_actions(actions, ctx)?;
                listener.default_actions = actions.clone();
            }
            if let Some(p) = port {
                listener.port = p;
            }
            if let Some(p) = req.protocol {
                if p.is_secure() != listener.protocol.is_secure() {
                    listener.certificates.clear();
                    listener.ssl_policy = None;
                }
                listener.protocol = p;
            }
            if let Some(c) = &req.certificates {
                listener.certificates = certificates(c);
            }
            if let Some(p) = &req.ssl_policy {
                listener.ssl_policy = Some(p.clone());
            }
            if let Some(a) = &req.alpn_policy {
                listener.alpn_policy = a.clone();
            }
            let lb = self.load_balancer(scope, &listener.load_balancer_arn)?;
            check_security(listener, &lb, certificate_exists)
        })
    }

    /// AddListenerCertificates: more certificates for an HTTPS or TLS listener (not
    /// default ones: the default is the one CreateListener or ModifyListener names).
    pub fn add_listener_certificates(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
        arns: &[String],
        certificate_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Listener> {
        if let Some(missing) = arns.iter().find(|a| !certificate_exists(a)) {
            return Err(Elbv2Error::CertificateNotFound(format!(
                "Certificate '{missing}' not found"
            )));
        }
        self.change_listener(scope, arn, |listener| {
            if !listener.protocol.is_secure() {
                return Err(invalid(format!(
                    "Certificates are not supported for {} listeners",
                    listener.protocol
                )));
            }
            for a in arns {
                if !listener.certificates.iter().any(|c| &c.arn == a) {
                    listener.certificates.push(Certificate {
                        arn: a.clone(),
                        is_default: false,
                    });
                }
            }
            Ok(())
        })
    }

    /// RemoveListenerCertificates: the default certificate cannot be removed.
    pub fn remove_listener_certificates(
        &self,
        scope: &ElbScope,
        arn: &ListenerArn,
        arns: &[String],
    ) -> Result<Listener> {
        self.change_listener(scope, arn, |listener| {
            if listener
                .certificates
                .iter()
                .any(|c| c.is_default && arns.contains(&c.arn))
            {
                return Err(Elbv2Error::OperationNotPermitted(
                    "The default certificate of a listener cannot be removed".into(),
                ));
            }
            listener.certificates.retain(|c| !arns.contains(&c.arn));
            Ok(())
        })
    }

    /// DeleteListener (with its rules).
    pub fn delete_listener(&self, scope: &ElbScope, arn: &ListenerArn) -> Result<()> {
        let (key, _, revision) = self.listener_at(scope, arn)?;
        match self.store().txn(
            &[Compare::ModRevision(key.clone(), revision)],
            &[Op::delete(&key)],
        )? {
            TxnOutcome::Committed(_) => Ok(()),
            // Changed meanwhile: deleted by someone else, or changed (delete that).
            TxnOutcome::Conflict => self.delete_listener(scope, arn),
        }
    }
}
