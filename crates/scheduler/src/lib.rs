//! ECS task placement, pure and synchronous: a [`ClusterSnapshot`] and a [`TaskRequest`]
//! in, a [`Plan`] out. Feasibility is a chain of small `check_*` functions
//! ([`feasible`]); `memberOf` expressions use the cluster query language ([`query`]);
//! strategies rank the feasible instances exactly as ECS describes (no sampling).
//!
//! Two implementations share one definition of the result: [`plan_reference`] scans every
//! instance for every task, and [`Placer`] (used by [`plan`]) keeps ordered indexes so a
//! placement costs O(log n); property tests hold them to the same plans.

pub mod feasible;
pub mod instance;
pub mod placement;
pub mod query;
pub mod regex;
pub mod service;
pub mod types;

pub use feasible::check_fit;
pub use placement::{Placer, plan, plan_reference};
pub use query::{Expr, QueryError, parse_expression};
pub use types::{
    BinpackField, ClusterSnapshot, Failure, InstanceStatus, InstanceView, Placement,
    PlacementConstraint, PlacementError, PlacementStrategy, Plan, Reason, SpreadField, TaskRequest,
};

/// ECS allows at most this many placement constraints per request.
pub const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
/// ECS allows at most this many placement strategies per request.
pub const MAX_PLACEMENT_STRATEGIES: usize = 5;

/// Parses one `placementConstraints` entry (`type`, `expression`) as the API receives it.
pub fn parse_placement_constraint(
    kind: &str,
    expression: Option<&str>,
) -> Result<PlacementConstraint, PlacementError> {
    let invalid = |m: String| Err(PlacementError::InvalidParameter(m));
    match (kind, expression) {
        ("distinctInstance", None) => Ok(PlacementConstraint::DistinctInstance),
        ("distinctInstance", Some(e)) if e.trim().is_empty() => {
            Ok(PlacementConstraint::DistinctInstance)
        }
        ("distinctInstance", Some(_)) => {
            invalid("An expression cannot be specified for a distinctInstance constraint.".into())
        }
        ("memberOf", Some(e)) if !e.trim().is_empty() => parse_expression(e)
            .map(PlacementConstraint::MemberOf)
            .map_err(|err| PlacementError::InvalidParameter(err.to_string())),
        ("memberOf", _) => invalid("An expression is required for a memberOf constraint.".into()),
        (other, _) => invalid(format!(
            "Invalid placement constraint type '{other}': expected distinctInstance or memberOf."
        )),
    }
}

/// Parses one `placementStrategy` entry (`type`, `field`) as the API receives it.
/// `binpack` takes `cpu` or `memory` (any case); `spread` takes `instanceId`, `host` or
/// `attribute:NAME`; `random` takes no field.
pub fn parse_placement_strategy(
    kind: &str,
    field: Option<&str>,
) -> Result<PlacementStrategy, PlacementError> {
    let invalid = |m: String| Err(PlacementError::InvalidParameter(m));
    match (kind, field) {
        ("random", None) => Ok(PlacementStrategy::Random),
        ("random", Some(_)) => {
            invalid("A field cannot be specified for the random placement strategy.".into())
        }
        ("binpack", Some(f)) if f.eq_ignore_ascii_case("cpu") => {
            Ok(PlacementStrategy::Binpack(BinpackField::Cpu))
        }
        ("binpack", Some(f)) if f.eq_ignore_ascii_case("memory") => {
            Ok(PlacementStrategy::Binpack(BinpackField::Memory))
        }
        ("binpack", f) => invalid(format!(
            "Invalid field '{}' for the binpack placement strategy: expected cpu or memory.",
            f.unwrap_or("")
        )),
        ("spread", Some(f))
            if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
        {
            Ok(PlacementStrategy::Spread(SpreadField::InstanceId))
        }
        ("spread", Some(f)) if f.starts_with("attribute:") && f.len() > "attribute:".len() => Ok(
            PlacementStrategy::Spread(SpreadField::Attribute(f["attribute:".len()..].to_string())),
        ),
        ("spread", f) => invalid(format!(
            "Invalid field '{}' for the spread placement strategy: expected instanceId, host or attribute:NAME.",
            f.unwrap_or("")
        )),
        (other, _) => invalid(format!(
            "Invalid placement strategy type '{other}': expected random, spread or binpack."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_constraints_and_strategies() {
        assert_eq!(
            parse_placement_constraint("distinctInstance", None),
            Ok(PlacementConstraint::DistinctInstance)
        );
        assert!(parse_placement_constraint("distinctInstance", Some("attribute:a == b")).is_err());
        assert!(parse_placement_constraint("memberOf", None).is_err());
        assert!(parse_placement_constraint("memberOf", Some("attribute:a ==")).is_err());
        assert!(matches!(
            parse_placement_constraint("memberOf", Some("attribute:a == b")),
            Ok(PlacementConstraint::MemberOf(_))
        ));
        assert!(parse_placement_constraint("spread", None).is_err());
        assert_eq!(
            parse_placement_strategy("binpack", Some("MEMORY")),
            Ok(PlacementStrategy::Binpack(BinpackField::Memory))
        );
        assert_eq!(
            parse_placement_strategy("spread", Some("host")),
            Ok(PlacementStrategy::Spread(SpreadField::InstanceId))
        );
        assert_eq!(
            parse_placement_strategy("spread", Some("attribute:ecs.availability-zone")),
            Ok(PlacementStrategy::Spread(SpreadField::Attribute(
                "ecs.availability-zone".into()
            )))
        );
        assert!(parse_placement_strategy("binpack", Some("disk")).is_err());
        assert!(parse_placement_strategy("random", Some("x")).is_err());
        assert!(parse_placement_strategy("pack", None).is_err());
    }
}
