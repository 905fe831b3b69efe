//! Targets: RegisterTargets, DeregisterTargets (draining for the group's deregistration
//! delay while a load balancer uses the group), DescribeTargetHealth, and the health
//! records the data plane writes ([`Elbv2::set_target_health`]): until it has written one
//! a target of a group in use is `initial` (`Elb.RegistrationInProgress`), and every target
//! of a group no listener or rule forwards to is `unused` (`Target.NotInUse`), as AWS
//! answers.

use std::net::IpAddr;

use berth_store::Op;
use serde::{Deserialize, Serialize};

use crate::keys::ElbScope;
use crate::{
    Elbv2, Elbv2Error, Result, TargetGroupArn, TargetHealthReason, TargetHealthState, TargetType,
    invalid, now,
};

/// Targets per target group (ELBv2's quota for application load balancers).
pub const MAX_TARGETS: usize = 1000;

/// A registered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

/// A deregistered target still draining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draining {
    pub target: Target,
    /// When its deregistration delay ends.
    pub until: f64,
}

/// A target as a request names it (`Targets.member.N`): the port defaults to the group's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetDescription {
    pub id: String,
    pub port: Option<i64>,
    pub availability_zone: Option<String>,
}

/// A health record, as the data plane reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub state: TargetHealthState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<TargetHealthReason>,
    /// AWS's description of the reason when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub updated: f64,
}

/// DescribeTargetHealth's answer for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetHealth {
    pub target: Target,
    pub health_check_port: String,
    pub state: TargetHealthState,
    pub reason: Option<TargetHealthReason>,
    pub description: Option<String>,
}

fn check_target(kind: TargetType, default_port: u16, t: &TargetDescription) -> Result<Target> {
    match kind {
        TargetType::Instance => {
            let hex = t.id.strip_prefix("i-").unwrap_or("");
            if !(hex.len() == 8 || hex.len() == 17) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!("Instance ID '{}' is not valid", t.id)));
            }
        }
        TargetType::Ip => {
            if t.id.parse::<IpAddr>().is_err() {
                return Err(Elbv2Error::InvalidTarget(format!(
                    "The IP address '{}' is not a valid IPv4 address",
                    t.id
                )));
            }
        }
    }
    let port = match t.port {
        None => default_port,
        Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: Value '{p}' at 'targets.member.port' failed to satisfy constraint: Member must have value between 1 and 65535"
            ))
        })?,
    };
    Ok(Target {
        id: t.id.clone(),
        port,
        availability_zone: t.availability_zone.clone(),
    })
}

fn same(a: &Target, b: &Target) -> bool {
    a.id == b.id && a.port == b.port
}

impl Elbv2 {
    /// RegisterTargets: targets already registered stay as they are; a draining target
    /// registered again stops draining and starts over (`initial`).
    pub fn register_targets(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        targets: &[TargetDescription],
    ) -> Result<()> {
        if targets.is_empty() {
            return Err(invalid(
                "1 validation error detected: Value '[]' at 'targets' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let group = self.target_group(scope, arn)?;
        let new: Vec<Target> = targets
            .iter()
            .map(|t| check_target(group.target_type, group.port, t))
            .collect::<Result<_>>()?;
        let key = scope.target_group_key(arn.name());
        berth_store::update(self.store(), &key, |current: Option<crate::TargetGroup>| {
            let mut group = current
                .filter(|g| g.arn == *arn)
                .ok_or_else(crate::tg_not_found)?;
            let mut update_ops = Vec::new();
            for t in &new {
                if group.targets.iter().any(|r| same(r, t)) {
                    continue;
                }
                group.draining.retain(|d| !same(&d.target, t));
                group.targets.push(t.clone());
                update_ops.push(Op::delete(scope.health_key(arn.id(), &t.id, t.port)));
            }
            if group.targets.len() > MAX_TARGETS {
                return Err(Elbv2Error::TooManyTargets(format!(
                    "You have reached the maximum number of targets per target group, which is {MAX_TARGETS}"
                )));
            }
            let mut update = berth_store::Update::from(berth_store::Change::Put(group));
            for op in update_ops {
                update = update.also(op);
            }
            Ok::<_, Elbv2Error>(update)
        })?;
        Ok(())
    }

    /// DeregisterTargets: each target must be registered (else `InvalidTarget`); while a
    /// load balancer uses the group it drains for the deregistration delay.
    pub fn deregister_targets(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        targets: &[TargetDescription],
    ) -> Result<()> {
        let in_use = self.target_group_usage(scope)?.contains_key(arn);
        self.change_target_group(scope, arn, |group| {
            let at = now();
            let delay = group.deregistration_delay();
            group.draining.retain(|d| d.until > at);
            for t in targets {
                let port = t
                    .port
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(group.port);
                let Some(i) = group
                    .targets
                    .iter()
                    .position(|r| r.id == t.id && r.port == port)
                else {
                    return Err(Elbv2Error::InvalidTarget(format!(
                        "The following targets are not registered in target group '{arn}': '{}'",
                        t.id
                    )));
                };
                let target = group.targets.remove(i);
                if in_use && delay > 0.0 {
                    group.draining.push(Draining {
                        target,
                        until: at + delay,
                    });
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// DescribeTargetHealth: every registered (and draining) target, or those `asked`.
    pub fn describe_target_health(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        asked: &[TargetDescription],
    ) -> Result<Vec<TargetHealth>> {
        let group = self.target_group(scope, arn)?;
        let in_use = self.target_group_usage(scope)?.contains_key(arn);
        let at = now();
        let reports: std::collections::BTreeMap<String, HealthReport> = self
            .store()
            .range(&scope.health_prefix(arn.id()), None, 0)?
            .iter()
            .map(|kv| -> Result<(String, HealthReport)> {
                Ok((kv.key.clone(), berth_store::decode(kv)?))
            })
            .collect::<Result<_>>()?;
        let health_port = |t: &Target| match group.health_check.port.as_str() {
            "traffic-port" => t.port.to_string(),
            port => port.to_string(),
        };
        let answer = |t: &Target,
                      state: TargetHealthState,
                      reason: Option<TargetHealthReason>,
                      description: Option<String>| TargetHealth {
            target: t.clone(),
            health_check_port: health_port(t),
            state,
            reason,
            description: description.or_else(|| reason.map(|r| r.description().to_string())),
        };
        let registered = |t: &Target| {
            if !in_use {
                return answer(
                    t,
                    TargetHealthState::Unused,
                    Some(TargetHealthReason::NotInUse),
                    None,
                );
            }
            match reports.get(&scope.health_key(arn.id(), &t.id, t.port)) {
                Some(r) => answer(t, r.state, r.reason, r.description.clone()),
                None => answer(
                    t,
                    TargetHealthState::Initial,
                    Some(TargetHealthReason::RegistrationInProgress),
                    None,
                ),
            }
        };
        let draining = |t: &Target| {
            answer(
                t,
                TargetHealthState::Draining,
                Some(TargetHealthReason::DeregistrationInProgress),
                None,
            )
        };
        let live_draining: Vec<&Target> = group
            .draining
            .iter()
            .filter(|d| d.until > at)
            .map(|d| &d.target)
            .collect();
        if asked.is_empty() {
            let mut out: Vec<TargetHealth> = group.targets.iter().map(registered).collect();
            out.extend(live_draining.iter().map(|t| draining(t)));
            return Ok(out);
        }
        let mut out = Vec::new();
        for a in asked {
            let port = a.port.and_then(|p| u16::try_from(p).ok());
            let matches = |t: &&Target| t.id == a.id && port.is_none_or(|p| p == t.port);
            let found: Vec<&Target> = group.targets.iter().filter(matches).collect();
            let drained: Vec<&Target> = live_draining.iter().copied().filter(matches).collect();
            if found.is_empty() && drained.is_empty() {
                let t = Target {
                    id: a.id.clone(),
                    port: port.unwrap_or(group.port),
                    availability_zone: a.availability_zone.clone(),
                };
                out.push(answer(
                    &t,
                    TargetHealthState::Unused,
                    Some(TargetHealthReason::NotRegistered),
                    None,
                ));
            }
            out.extend(found.into_iter().map(registered));
            out.extend(drained.into_iter().map(draining));
        }
        Ok(out)
    }

    /// The data plane's report of a target's health (`healthy` carries no reason).
    pub fn set_target_health(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        target_id: &str,
        port: u16,
        mut report: HealthReport,
    ) -> Result<()> {
        if !scope.owns(arn.scope()) {
            return Err(crate::tg_not_found());
        }
        report.updated = now();
        self.store().put(
            &scope.health_key(arn.id(), target_id, port),
            &berth_store::encode(&report),
        )?;
        Ok(())
    }

    /// The data plane's report, written only while the target is registered (compared
    /// with the group's record in the same transaction): a report that arrives after a
    /// deregistration, or after a registration started it over, is dropped.
    pub fn set_target_health_if_registered(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        target_id: &str,
        port: u16,
        mut report: HealthReport,
    ) -> Result<()> {
        if !scope.owns(arn.scope()) {
            return Err(crate::tg_not_found());
        }
        let key = scope.target_group_key(arn.name());
        let Some(kv) = self.store().get(&key)? else {
            return Ok(());
        };
        let group: crate::TargetGroup = berth_store::decode(&kv)?;
        if group.arn != *arn
            || !group
                .targets
                .iter()
                .any(|t| t.id == target_id && t.port == port)
        {
            return Ok(());
        }
        report.updated = now();
        self.store().txn(
            &[berth_store::Compare::ModRevision(key, kv.mod_revision)],
            &[Op::put(
                scope.health_key(arn.id(), target_id, port),
                berth_store::encode(&report),
            )],
        )?;
        Ok(())
    }

    /// A target the data plane has let go of (drained): its health record goes, unless
    /// it is registered again.
    pub fn forget_target_health(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        target_id: &str,
        port: u16,
    ) -> Result<()> {
        if !scope.owns(arn.scope()) {
            return Err(crate::tg_not_found());
        }
        let key = scope.target_group_key(arn.name());
        let kv = self.store().get(&key)?;
        let registered = match &kv {
            Some(kv) => {
                let group: crate::TargetGroup = berth_store::decode(kv)?;
                group.arn == *arn
                    && group
                        .targets
                        .iter()
                        .any(|t| t.id == target_id && t.port == port)
            }
            None => false,
        };
        if registered {
            return Ok(());
        }
        let compare = berth_store::Compare::ModRevision(key, kv.map_or(0, |kv| kv.mod_revision));
        self.store().txn(
            &[compare],
            &[Op::delete(scope.health_key(arn.id(), target_id, port))],
        )?;
        Ok(())
    }
}
