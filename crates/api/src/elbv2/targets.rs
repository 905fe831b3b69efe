//! Targets: RegisterTargets, DeregisterTargets, DescribeTargetHealth.

use berth_elbv2::TargetDescription;

use super::target_groups::tg_arn;
use super::{elb_error, number, scope};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "RegisterTargets",
    "DeregisterTargets",
    "DescribeTargetHealth",
];

/// `Targets.member.N.Id`/`Port`/`AvailabilityZone`.
fn targets(r: &QueryRequest) -> Result<Vec<TargetDescription>, AwsError> {
    r.structs("Targets")
        .into_iter()
        .map(|t| {
            Ok(TargetDescription {
                id: t
                    .get("Id")
                    .copied()
                    .ok_or_else(|| {
                        AwsError::client(
                            "ValidationError",
                            "1 validation error detected: Value null at 'targets.member.id' failed to satisfy constraint: Member must not be null",
                        )
                    })?
                    .to_string(),
                port: t
                    .get("Port")
                    .map(|p| number("targets.member.port", p))
                    .transpose()?,
                availability_zone: t.get("AvailabilityZone").map(|z| z.to_string()),
            })
        })
        .collect()
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let mut xml = Xml::default();
    let arn = tg_arn(r)?;
    match r.action.as_str() {
        "RegisterTargets" => {
            elb.register_targets(&scope, &arn, &targets(r)?)
                .map_err(elb_error)?;
        }
        "DeregisterTargets" => {
            elb.deregister_targets(&scope, &arn, &targets(r)?)
                .map_err(elb_error)?;
        }
        "DescribeTargetHealth" => {
            let health = elb
                .describe_target_health(&scope, &arn, &targets(r)?)
                .map_err(elb_error)?;
            xml.members("TargetHealthDescriptions", &health, |x, h| {
                x.element("Target", |x| {
                    x.leaf("Id", &h.target.id)
                        .leaf("Port", h.target.port)
                        .opt_leaf("AvailabilityZone", h.target.availability_zone.as_deref());
                })
                .leaf("HealthCheckPort", &h.health_check_port)
                .element("TargetHealth", |x| {
                    x.leaf("State", h.state)
                        .opt_leaf("Reason", h.reason)
                        .opt_leaf("Description", h.description.as_deref());
                });
            });
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}
