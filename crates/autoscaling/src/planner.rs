//! The scaling planner, pure: a group and its instances in, the launches and terminations
//! that bring its capacity to the desired one out. Launches go to the zones with the
//! fewest live instances. Scale-in follows EC2 Auto Scaling's default termination policy
//! among instances not protected from scale-in: the zone with the most live instances,
//! then the oldest launch template (another template than the group's, then the lowest
//! version), then — where AWS takes the instance closest to its next billing hour, which
//! Berth's instances have none of — the oldest instance. A group being deleted terminates
//! every instance, protected or not.

use std::collections::BTreeMap;

use crate::types::{AutoScalingGroup, Instance};

/// Where a new instance goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub zone: String,
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub launches: Vec<Placement>,
    /// Instance ids, in the order chosen.
    pub terminations: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.launches.is_empty() && self.terminations.is_empty()
    }
}

/// The plan for `group` as it is.
pub fn plan(group: &AutoScalingGroup) -> Plan {
    let live: Vec<&Instance> = group.live().collect();
    let desired = if group.deleting {
        0
    } else {
        usize::try_from(group.desired_capacity).unwrap_or(0)
    };
    let mut out = Plan::default();
    if live.len() < desired {
        let mut per_zone = zone_counts(group, &live);
        for _ in live.len()..desired {
            let Some(zone) = per_zone
                .iter()
                .min_by_key(|(zone, n)| (**n, zone_rank(group, zone)))
                .map(|(zone, _)| zone.clone())
            else {
                break;
            };
            *per_zone.entry(zone.clone()).or_default() += 1;
            let subnet_id = group
                .subnets
                .iter()
                .find(|s| s.zone == zone)
                .map(|s| s.subnet_id.clone());
            out.launches.push(Placement { zone, subnet_id });
        }
    } else if live.len() > desired {
        let mut per_zone = zone_counts(group, &live);
        let mut candidates: Vec<&Instance> = live
            .iter()
            .copied()
            .filter(|i| group.deleting || !i.protected_from_scale_in)
            .collect();
        for _ in desired..live.len() {
            // The zone with the most live instances that has a candidate.
            let Some(zone) = per_zone
                .iter()
                .filter(|(zone, _)| candidates.iter().any(|c| &c.availability_zone == *zone))
                .max_by_key(|(zone, n)| (**n, std::cmp::Reverse(zone_rank(group, zone))))
                .map(|(zone, _)| zone.clone())
            else {
                break;
            };
            let chosen = candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| c.availability_zone == zone)
                .min_by(|(_, a), (_, b)| {
                    age_rank(group, a)
                        .partial_cmp(&age_rank(group, b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|(at, _)| at)
                .expect("the zone has a candidate");
            let instance = candidates.remove(chosen);
            *per_zone.entry(zone).or_default() -= 1;
            out.terminations.push(instance.instance_id.clone());
        }
    }
    out
}

/// Live instances per zone, every zone of the group present.
fn zone_counts(group: &AutoScalingGroup, live: &[&Instance]) -> BTreeMap<String, usize> {
    let mut per_zone: BTreeMap<String, usize> = group
        .availability_zones
        .iter()
        .map(|z| (z.clone(), 0))
        .collect();
    for i in live {
        *per_zone.entry(i.availability_zone.clone()).or_default() += 1;
    }
    per_zone
}

/// A zone's place in the group's list (zones no longer listed last).
fn zone_rank(group: &AutoScalingGroup, zone: &str) -> usize {
    group
        .availability_zones
        .iter()
        .position(|z| z == zone)
        .unwrap_or(usize::MAX)
}

/// Lower is terminated first: another template than the group's, then older versions,
/// then older instances.
fn age_rank(group: &AutoScalingGroup, i: &Instance) -> (bool, u64, f64) {
    let spec = &group.launch_template;
    let same_template = spec.id.as_deref() == Some(i.launch_template.id.as_str());
    let version = i.launch_template.version.parse::<u64>().unwrap_or(0);
    (same_template, version, i.launched_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{LaunchTemplateSpec, LifecycleState, ResolvedTemplate, SubnetZone};

    fn group(desired: i64, zones: &[&str]) -> AutoScalingGroup {
        AutoScalingGroup {
            name: "g".into(),
            uuid: "u".into(),
            launch_template: LaunchTemplateSpec {
                id: Some("lt-new".into()),
                name: None,
                version: None,
            },
            min_size: 0,
            max_size: 10,
            desired_capacity: desired,
            default_cooldown: 300,
            availability_zones: zones.iter().map(|z| z.to_string()).collect(),
            subnets: Vec::new(),
            health_check_type: "EC2".into(),
            health_check_grace_period: 0,
            created_time: 0.0,
            tags: Vec::new(),
            termination_policies: vec!["Default".into()],
            new_instances_protected_from_scale_in: false,
            instances: Vec::new(),
            cause: None,
            deleting: false,
        }
    }

    fn instance(id: &str, zone: &str, template: &str, version: &str, at: f64) -> Instance {
        Instance {
            instance_id: id.into(),
            instance_type: None,
            availability_zone: zone.into(),
            subnet_id: None,
            lifecycle_state: LifecycleState::InService,
            launch_template: ResolvedTemplate {
                id: template.into(),
                name: template.into(),
                version: version.into(),
                instance_type: None,
                user_data: None,
            },
            protected_from_scale_in: false,
            launched_at: at,
            cluster: "default".into(),
            activity_key: String::new(),
            terminating_since: None,
        }
    }

    #[test]
    fn launches_fill_the_zones_evenly_in_their_order() {
        let mut g = group(4, &["us-east-1a", "us-east-1b"]);
        g.subnets = vec![
            SubnetZone {
                subnet_id: "subnet-a".into(),
                zone: "us-east-1a".into(),
            },
            SubnetZone {
                subnet_id: "subnet-b".into(),
                zone: "us-east-1b".into(),
            },
        ];
        g.instances = vec![instance("i-1", "us-east-1a", "lt-new", "1", 1.0)];
        let p = plan(&g);
        let zones: Vec<&str> = p.launches.iter().map(|l| l.zone.as_str()).collect();
        assert_eq!(zones, ["us-east-1b", "us-east-1a", "us-east-1b"]);
        assert_eq!(p.launches[0].subnet_id.as_deref(), Some("subnet-b"));
        assert!(p.terminations.is_empty());
    }

    #[test]
    fn at_the_desired_capacity_nothing_is_planned() {
        let mut g = group(1, &["us-east-1a"]);
        g.instances = vec![instance("i-1", "us-east-1a", "lt-new", "1", 1.0)];
        assert!(plan(&g).is_empty());
        // Terminating instances do not count.
        g.instances[0].lifecycle_state = LifecycleState::Terminating;
        assert_eq!(plan(&g).launches.len(), 1);
    }

    #[test]
    fn scale_in_takes_the_fullest_zone_first() {
        let mut g = group(2, &["a", "b"]);
        g.instances = vec![
            instance("i-a1", "a", "lt-new", "1", 1.0),
            instance("i-b1", "b", "lt-new", "1", 2.0),
            instance("i-b2", "b", "lt-new", "1", 3.0),
        ];
        assert_eq!(plan(&g).terminations, ["i-b1"]);
    }

    #[test]
    fn scale_in_takes_the_oldest_template_then_the_oldest_instance() {
        let mut g = group(1, &["a"]);
        g.instances = vec![
            instance("i-new-v2", "a", "lt-new", "2", 1.0),
            instance("i-new-v1", "a", "lt-new", "1", 5.0),
            instance("i-other", "a", "lt-old", "9", 9.0),
            instance("i-new-v2-later", "a", "lt-new", "2", 7.0),
        ];
        assert_eq!(plan(&g).terminations, ["i-other", "i-new-v1", "i-new-v2"]);
    }

    #[test]
    fn protected_instances_stay_unless_the_group_is_deleted() {
        let mut g = group(0, &["a"]);
        g.instances = vec![
            instance("i-1", "a", "lt-new", "1", 1.0),
            instance("i-2", "a", "lt-new", "1", 2.0),
        ];
        g.instances[0].protected_from_scale_in = true;
        assert_eq!(plan(&g).terminations, ["i-2"]);
        g.deleting = true;
        g.desired_capacity = 5;
        assert_eq!(plan(&g).terminations, ["i-1", "i-2"]);
        assert!(plan(&g).launches.is_empty());
    }
}
