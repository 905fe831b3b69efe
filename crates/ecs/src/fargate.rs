//! Fargate: tasks on platform-managed capacity. The capacity is a pool of hosts that users
//! never see as their container instances: agents started with `berth agent --fargate`
//! (and the one `berth up` runs) register into the hidden cluster [`POOL_CLUSTER`], and a
//! Fargate task of any cluster is placed there by that cluster's placement lane. The task
//! itself stays in the user's cluster (its record, ARN, counts); it names the pool
//! instance it runs on only internally (`capacity_cluster` + `container_instance_id`), and
//! DescribeTasks shows no `containerInstanceArn`, as for Fargate.
//!
//! How a RunTask is launched follows ECS: `launchType`, else `capacityProviderStrategy`,
//! else the cluster's default strategy, else EC2. FARGATE and FARGATE_SPOT both draw on
//! the pool (Spot interruptions are not simulated); Auto Scaling group providers on their
//! groups' container instances (docs/capacity-providers.md); a strategy's `base` is placed
//! first, the rest by `weight`.

use crate::clusters::{CapacityProviderStrategyItem, Cluster};
use crate::{EcsError, Result};
use berth_model::ecs::LaunchType;

/// The hidden cluster the Fargate pool's hosts register in.
pub use crate::clusters::POOL_CLUSTER;

/// The platform version Fargate tasks report (`LATEST` resolves to it).
pub const PLATFORM_VERSION: &str = "1.4.0";

/// The reason ECS gives when Fargate has no capacity for a task.
/// The ephemeral storage of a Fargate task whose definition names none (platform 1.4.0).
pub const DEFAULT_EPHEMERAL_STORAGE_GIB: i32 = 20;
pub const NO_CAPACITY: &str = "Capacity is unavailable at this time. Please try again later or in a different availability zone";

/// How a RunTask's tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Launch {
    Ec2,
    /// On the cluster's external instances (ECS Anywhere: agents registered with
    /// `ECS_EXTERNAL=true`, which carry the `ecs.capability.external` attribute).
    External,
    /// On the pool; per task, the capacity provider it was launched by (`None`: plain
    /// `launchType: FARGATE`).
    Fargate {
        providers: Vec<Option<String>>,
    },
    /// On the cluster's container instances of Auto Scaling group capacity providers (the
    /// EC2 launch type): per task, the provider it is launched by.
    AutoScaling {
        providers: Vec<String>,
    },
}

impl Launch {
    /// The launch type its tasks have.
    pub(crate) fn launch_type(&self) -> LaunchType {
        match self {
            Launch::Fargate { .. } => LaunchType::Fargate,
            Launch::External => LaunchType::External,
            Launch::Ec2 | Launch::AutoScaling { .. } => LaunchType::Ec2,
        }
    }
}

/// Decides the launch of `count` tasks from the request and the cluster, with ECS's
/// errors for what does not fit together.
pub(crate) fn resolve_launch(
    cluster: &Cluster,
    launch_type: Option<&str>,
    strategy: Option<&[CapacityProviderStrategyItem]>,
    platform_version: Option<&str>,
    count: u32,
) -> Result<Launch> {
    let strategy = strategy.filter(|s| !s.is_empty());
    if launch_type.is_some() && strategy.is_some() {
        return Err(EcsError::InvalidParameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.".into(),
        ));
    }
    let launch = match (launch_type, strategy) {
        (Some("EC2"), _) => Launch::Ec2,
        (Some("FARGATE"), _) => Launch::Fargate {
            providers: vec![None; count as usize],
        },
        (Some("EXTERNAL"), _) => Launch::External,
        (Some(other), _) => {
            return Err(EcsError::InvalidParameter(
                LaunchType::parse_member("launchType", other)
                    .err()
                    .unwrap_or_default(),
            ));
        }
        (None, Some(items)) => from_strategy(cluster, items, count)?,
        (None, None) if !cluster.default_capacity_provider_strategy.is_empty() => {
            from_strategy(cluster, &cluster.default_capacity_provider_strategy, count)?
        }
        (None, None) => Launch::Ec2,
    };
    if let Some(version) = platform_version {
        match launch {
            Launch::Ec2 | Launch::AutoScaling { .. } => {
                return Err(EcsError::InvalidParameter(
                    "The platform version must be null when specifying an EC2 launch type.".into(),
                ));
            }
            Launch::External => {
                return Err(EcsError::InvalidParameter(
                    "The platform version must be null when specifying an EXTERNAL launch type."
                        .into(),
                ));
            }
            Launch::Fargate { .. } if !matches!(version, "LATEST" | PLATFORM_VERSION) => {
                return Err(EcsError::InvalidParameter(format!(
                    "The specified platform version ({version}) does not exist."
                )));
            }
            Launch::Fargate { .. } => {}
        }
    }
    Ok(launch)
}

/// Assigns each of `count` tasks a provider of the strategy: the one with a `base` takes
/// up to `base` first, then the rest go by `weight` (smooth weighted round robin, so the
/// split follows the weights as closely as a whole number of tasks allows).
fn from_strategy(
    cluster: &Cluster,
    items: &[CapacityProviderStrategyItem],
    count: u32,
) -> Result<Launch> {
    if items.len() > 20 {
        return Err(EcsError::InvalidParameter(
            "A capacity provider strategy can contain at most 20 capacity providers.".into(),
        ));
    }
    for item in items {
        let fargate =
            crate::clusters::FARGATE_CAPACITY_PROVIDERS.contains(&item.capacity_provider.as_str());
        // An Auto Scaling group provider exists for the cluster when it is associated with it
        // (an associated provider cannot be deleted).
        if !fargate && !cluster.capacity_providers.contains(&item.capacity_provider) {
            return Err(EcsError::InvalidParameter(format!(
                "The specified capacity provider '{}' does not exist. Specify a valid capacity provider and try again.",
                item.capacity_provider
            )));
        }
        if !cluster.capacity_providers.contains(&item.capacity_provider) {
            return Err(EcsError::InvalidParameter(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.".into(),
            ));
        }
        if item.weight > 1000 || item.base > 100_000 {
            return Err(EcsError::InvalidParameter(
                "Capacity provider strategy weight must be between 0 and 1000 and base between 0 and 100000.".into(),
            ));
        }
    }
    let fargate_items = items
        .iter()
        .filter(|i| {
            crate::clusters::FARGATE_CAPACITY_PROVIDERS.contains(&i.capacity_provider.as_str())
        })
        .count();
    if fargate_items != 0 && fargate_items != items.len() {
        return Err(EcsError::InvalidParameter(
            "The capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.".into(),
        ));
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(EcsError::InvalidParameter(
            "Only one capacity provider in a capacity provider strategy can have a base defined."
                .into(),
        ));
    }
    let mut providers = Vec::with_capacity(count as usize);
    if let Some(based) = items.iter().find(|i| i.base > 0) {
        let n = based.base.min(count) as usize;
        providers.extend(std::iter::repeat_n(
            Some(based.capacity_provider.clone()),
            n,
        ));
    }
    let total: i64 = items.iter().map(|i| i64::from(i.weight)).sum();
    if providers.len() < count as usize && total == 0 {
        return Err(EcsError::InvalidParameter(
            "At least one capacity provider in a capacity provider strategy must have a weight greater than zero.".into(),
        ));
    }
    let mut current = vec![0i64; items.len()];
    while providers.len() < count as usize {
        for (c, item) in current.iter_mut().zip(items) {
            *c += i64::from(item.weight);
        }
        let (pick, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("a strategy has items");
        current[pick] -= total;
        providers.push(Some(items[pick].capacity_provider.clone()));
    }
    if fargate_items == 0 {
        return Ok(Launch::AutoScaling {
            providers: providers.into_iter().flatten().collect(),
        });
    }
    Ok(Launch::Fargate { providers })
}

#[cfg(test)]
mod tests {
    #[test]
    fn auto_scaling_providers_launch_on_ec2_by_base_and_weight() {
        let c = cluster(&["cp-a", "cp-b"]);
        let strategy = [item("cp-a", 1, 1), item("cp-b", 1, 0)];
        let launch = resolve_launch(&c, None, Some(&strategy), None, 5).unwrap();
        assert_eq!(launch.launch_type(), LaunchType::Ec2);
        let got = names(launch);
        assert_eq!(got[0], "cp-a");
        assert_eq!(got.iter().filter(|p| *p == "cp-a").count(), 3, "{got:?}");
        // EC2's platform version rule.
        assert!(resolve_launch(&c, None, Some(&strategy), Some("LATEST"), 1).is_err());
    }

    use super::*;

    fn cluster(providers: &[&str]) -> Cluster {
        let mut c: Cluster = serde_json::from_value(serde_json::json!({
            "name": "c", "status": "ACTIVE", "createdAt": 0.0
        }))
        .unwrap();
        c.capacity_providers = providers.iter().map(|p| p.to_string()).collect();
        c
    }

    fn item(name: &str, weight: u32, base: u32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: name.into(),
            weight,
            base,
        }
    }

    fn names(launch: Launch) -> Vec<String> {
        match launch {
            Launch::Fargate { providers } => providers.into_iter().map(|p| p.unwrap()).collect(),
            Launch::AutoScaling { providers } => providers,
            Launch::Ec2 | Launch::External => panic!("not Fargate"),
        }
    }

    #[test]
    fn launch_type_strategy_and_defaults() {
        let c = cluster(&["FARGATE", "FARGATE_SPOT"]);
        assert_eq!(
            resolve_launch(&c, None, None, None, 2).unwrap(),
            Launch::Ec2
        );
        assert_eq!(
            resolve_launch(&c, Some("FARGATE"), None, Some("LATEST"), 2).unwrap(),
            Launch::Fargate {
                providers: vec![None, None]
            }
        );
        assert!(resolve_launch(&c, Some("EC2"), None, Some("1.4.0"), 1).is_err());
        assert!(resolve_launch(&c, Some("FARGATE"), None, Some("0.9"), 1).is_err());
        assert!(
            resolve_launch(&c, Some("FARGATE"), Some(&[item("FARGATE", 1, 0)]), None, 1).is_err()
        );
        // The cluster's default strategy applies when the request names neither.
        let mut d = c.clone();
        d.default_capacity_provider_strategy = vec![item("FARGATE_SPOT", 1, 0)];
        assert_eq!(
            names(resolve_launch(&d, None, None, None, 2).unwrap()),
            ["FARGATE_SPOT", "FARGATE_SPOT"]
        );
    }

    #[test]
    fn base_first_then_weights() {
        let c = cluster(&["FARGATE", "FARGATE_SPOT"]);
        let strategy = [item("FARGATE", 1, 2), item("FARGATE_SPOT", 3, 0)];
        let got = names(resolve_launch(&c, None, Some(&strategy), None, 10).unwrap());
        assert_eq!(&got[..2], ["FARGATE", "FARGATE"]);
        let spot = got[2..].iter().filter(|p| *p == "FARGATE_SPOT").count();
        assert_eq!(spot, 6, "{got:?}"); // 8 after the base, split 1:3
        // A base larger than the count takes them all.
        let got = names(resolve_launch(&c, None, Some(&strategy), None, 1).unwrap());
        assert_eq!(got, ["FARGATE"]);
    }

    #[test]
    fn strategies_are_checked_as_ecs_does() {
        let only_fargate = cluster(&["FARGATE"]);
        let spot = [item("FARGATE_SPOT", 1, 0)];
        assert!(resolve_launch(&only_fargate, None, Some(&spot), None, 1).is_err());
        let unknown = [item("my-asg", 1, 0)];
        assert!(resolve_launch(&only_fargate, None, Some(&unknown), None, 1).is_err());
        let mixed = [item("FARGATE", 1, 0), item("my-asg", 1, 0)];
        let with_asg = cluster(&["FARGATE", "my-asg"]);
        assert!(resolve_launch(&with_asg, None, Some(&mixed), None, 1).is_err());
        let zero = [item("FARGATE", 0, 0)];
        assert!(resolve_launch(&only_fargate, None, Some(&zero), None, 1).is_err());
        let two_bases = [item("FARGATE", 1, 1), item("FARGATE", 1, 1)];
        assert!(resolve_launch(&only_fargate, None, Some(&two_bases), None, 1).is_err());
    }
}
