//! ELBv2 as the service scheduler sees it (`berth_ecs::service_load_balancers::TargetGroups`):
//! target groups in the service's own account and region.

use std::sync::Arc;

use berth_ecs::service_load_balancers::{
    Target, TargetGroups, TargetGroupsError, TargetKind, TargetState,
};
use berth_elbv2::{
    ElbScope, Elbv2, TargetDescription, TargetGroupArn, TargetHealthReason, TargetHealthState,
    TargetType,
};
use berth_model::Scope;

pub struct ElbTargetGroups(pub Arc<Elbv2>);

fn scope_of(scope: &Scope) -> ElbScope {
    ElbScope::new(scope.account.to_string(), scope.region.to_string())
}

fn arn_of(target_group: &str) -> Result<TargetGroupArn, TargetGroupsError> {
    TargetGroupArn::parse(target_group).map_err(failed)
}

fn failed(e: impl std::fmt::Display) -> TargetGroupsError {
    TargetGroupsError(e.to_string())
}

fn descriptions(targets: &[Target]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| TargetDescription {
            id: t.id.clone(),
            port: Some(i64::from(t.port)),
            availability_zone: None,
        })
        .collect()
}

impl TargetGroups for ElbTargetGroups {
    fn target_kind(
        &self,
        scope: &Scope,
        target_group: &str,
    ) -> Result<Option<(TargetKind, bool)>, TargetGroupsError> {
        let Ok(arn) = arn_of(target_group) else {
            return Ok(None);
        };
        let elb_scope = scope_of(scope);
        let group = match self.0.target_group(&elb_scope, &arn) {
            Ok(g) => g,
            Err(berth_elbv2::Elbv2Error::TargetGroupNotFound(_)) => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        let associated = self
            .0
            .target_group_usage(&elb_scope)
            .map_err(failed)?
            .contains_key(&arn);
        let kind = match group.target_type {
            TargetType::Instance => TargetKind::Instance,
            TargetType::Ip => TargetKind::Ip,
        };
        Ok(Some((kind, associated)))
    }

    fn register_targets(
        &self,
        scope: &Scope,
        target_group: &str,
        targets: &[Target],
    ) -> Result<(), TargetGroupsError> {
        self.0
            .register_targets(
                &scope_of(scope),
                &arn_of(target_group)?,
                &descriptions(targets),
            )
            .map_err(failed)
    }

    fn deregister_targets(
        &self,
        scope: &Scope,
        target_group: &str,
        targets: &[Target],
    ) -> Result<(), TargetGroupsError> {
        self.0
            .deregister_targets(
                &scope_of(scope),
                &arn_of(target_group)?,
                &descriptions(targets),
            )
            .map_err(failed)
    }

    fn describe_target_health(
        &self,
        scope: &Scope,
        target_group: &str,
        targets: &[Target],
    ) -> Result<Vec<TargetState>, TargetGroupsError> {
        let answers = self
            .0
            .describe_target_health(
                &scope_of(scope),
                &arn_of(target_group)?,
                &descriptions(targets),
            )
            .map_err(failed)?;
        Ok(targets
            .iter()
            .map(|t| {
                answers
                    .iter()
                    .find(|a| a.target.id == t.id && a.target.port == t.port)
                    .map_or(TargetState::Other, |a| match a.state {
                        TargetHealthState::Initial => TargetState::Initial,
                        TargetHealthState::Healthy => TargetState::Healthy,
                        // ECS says why in its event with ELBv2's description.
                        TargetHealthState::Unhealthy => TargetState::Unhealthy(
                            a.description
                                .clone()
                                .unwrap_or_else(|| "Health checks failed".to_owned()),
                        ),
                        _ if a.reason == Some(TargetHealthReason::NotRegistered) => {
                            TargetState::NotRegistered
                        }
                        _ => TargetState::Other,
                    })
            })
            .collect())
    }

    fn deregistration_delay(
        &self,
        scope: &Scope,
        target_group: &str,
    ) -> Result<f64, TargetGroupsError> {
        self.0
            .target_group(&scope_of(scope), &arn_of(target_group)?)
            .map(|g| g.deregistration_delay())
            .map_err(failed)
    }
}
