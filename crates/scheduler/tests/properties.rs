//! Property tests: the indexed engine returns exactly the reference scan's plan, and the
//! plans keep ECS's promises (no over-commit, distinctInstance, spread balance, binpack
//! tightness, determinism).

use std::collections::BTreeMap;

use berth_scheduler::feasible::{apply_task, check_resources};
use berth_scheduler::{
    ClusterSnapshot, InstanceStatus, InstanceView, PlacementConstraint, PlacementStrategy, Placer,
    Plan, TaskRequest, parse_placement_constraint, parse_placement_strategy, plan, plan_reference,
};
use proptest::prelude::*;

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const TYPES: [&str; 3] = ["t2.micro", "m5.large", "c5.xlarge"];
const EXPRESSIONS: [&str; 6] = [
    "attribute:ecs.instance-type =~ t2.*",
    "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
    "not(attribute:ecs.instance-type == c5.xlarge) or attribute:stack exists",
    "attribute:stack != prod",
    "task:group != service:other",
    "runningTasksCount < 4",
];
const STRATEGIES: [(&str, Option<&str>); 5] = [
    ("binpack", Some("cpu")),
    ("binpack", Some("memory")),
    ("spread", Some("instanceId")),
    ("spread", Some("attribute:ecs.availability-zone")),
    ("spread", Some("attribute:ecs.instance-type")),
];

fn instance() -> impl Strategy<Value = InstanceView> {
    (
        (0u8..10, any::<bool>(), 0u64..9, 0u64..9),
        (0usize..4, 0usize..4, 0u8..3),
        (0u32..3, 0u32..2, any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((status, agent, cpu, mem), (zone, ty, stack), (g, other, p80, u53))| {
                let mut i = InstanceView::new("", cpu * 128, mem * 256);
                i.status = match status {
                    0 => InstanceStatus::Draining,
                    1 => InstanceStatus::Inactive,
                    _ => InstanceStatus::Active,
                };
                i.agent_connected = agent || status > 5;
                if zone < 3 {
                    i.attributes
                        .insert("ecs.availability-zone".into(), Some(ZONES[zone].into()));
                }
                if ty < 3 {
                    i.attributes
                        .insert("ecs.instance-type".into(), Some(TYPES[ty].into()));
                }
                match stack {
                    0 => {}
                    1 => drop(i.attributes.insert("stack".into(), Some("prod".into()))),
                    _ => drop(i.attributes.insert("stack".into(), None)),
                }
                if g > 0 {
                    i.task_groups.insert("service:web".into(), g);
                }
                if other > 0 {
                    i.task_groups.insert("service:other".into(), other);
                }
                if p80 {
                    i.used_tcp_ports.insert(80);
                }
                if u53 {
                    i.used_udp_ports.insert(53);
                }
                i
            },
        )
}

fn snapshot() -> impl Strategy<Value = ClusterSnapshot> {
    prop::collection::vec(instance(), 0..14).prop_map(|mut instances| {
        for (n, i) in instances.iter_mut().enumerate() {
            i.arn = format!("arn:aws:ecs:us-east-1:123456789012:container-instance/c/{n}");
        }
        ClusterSnapshot { instances }
    })
}

fn request() -> impl Strategy<Value = TaskRequest> {
    (
        (0u64..4, 0u64..4, any::<bool>(), any::<bool>(), 1u32..16),
        any::<bool>(),
        prop::collection::vec(0usize..EXPRESSIONS.len(), 0..3),
        prop::collection::vec(0usize..STRATEGIES.len(), 0..4),
    )
        .prop_map(
            |((cpu, mem, tcp, udp, count), distinct, exprs, strategies)| {
                let mut placement_constraints: Vec<PlacementConstraint> = exprs
                    .iter()
                    .map(|&e| parse_placement_constraint("memberOf", Some(EXPRESSIONS[e])).unwrap())
                    .collect();
                if distinct {
                    placement_constraints.push(PlacementConstraint::DistinctInstance);
                }
                TaskRequest {
                    cpu: cpu * 128,
                    memory: mem * 256,
                    tcp_ports: if tcp { vec![80] } else { vec![] },
                    udp_ports: if udp { vec![53] } else { vec![] },
                    group: "service:web".into(),
                    count,
                    placement_constraints,
                    placement_strategy: strategies
                        .iter()
                        .map(|&s| {
                            parse_placement_strategy(STRATEGIES[s].0, STRATEGIES[s].1).unwrap()
                        })
                        .collect(),
                }
            },
        )
}

/// Replays a plan, asserting every placement fits at the moment it is applied.
fn replay(snapshot: &ClusterSnapshot, task: &TaskRequest, plan: &Plan) -> ClusterSnapshot {
    let mut s = snapshot.clone();
    for p in &plan.placements {
        let inst = &mut s.instances[p.instance];
        assert_eq!(inst.status, InstanceStatus::Active);
        assert!(inst.agent_connected);
        assert_eq!(
            check_resources(inst, task),
            Ok(()),
            "over-commit on {}",
            p.instance
        );
        apply_task(inst, task);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn indexed_engine_equals_reference(s in snapshot(), r in request()) {
        let fast = plan(&s, &r, 1);
        let slow = plan_reference(&s, &r, 1);
        prop_assert_eq!(&fast, &slow);
        prop_assert_eq!(fast.placements.len() as u32 + fast.unplaced, r.count);
        prop_assert_eq!(fast.failures.is_empty(), fast.unplaced == 0 || s.instances.is_empty());
    }

    #[test]
    fn placer_over_many_requests_equals_reference(s in snapshot(), rs in prop::collection::vec(request(), 1..6), repeat in 1usize..4) {
        let mut placer = Placer::new(s.clone(), 1);
        let mut reference = s;
        for r in rs.iter().flat_map(|r| std::iter::repeat_n(r, repeat)) {
            let a = placer.place(r);
            let b = plan_reference(&reference, r, 1);
            reference = replay(&reference, r, &b);
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(placer.snapshot(), &reference);
    }

    #[test]
    fn never_over_commits_and_distinct_instance_holds(s in snapshot(), r in request()) {
        let p = plan(&s, &r, 1);
        replay(&s, &r, &p);
        if r.placement_constraints.contains(&PlacementConstraint::DistinctInstance) {
            let mut seen = BTreeMap::new();
            for x in &p.placements {
                prop_assert_eq!(s.instances[x.instance].group_count(&r.group), 0);
                prop_assert!(seen.insert(x.instance, ()).is_none());
            }
        }
    }

    #[test]
    fn same_input_same_plan(s in snapshot(), r in request(), seed in any::<u64>()) {
        let mut r = r;
        r.placement_strategy.push(PlacementStrategy::Random);
        prop_assert_eq!(plan(&s, &r, seed), plan(&s, &r, seed));
        r.placement_strategy.pop();
        prop_assert_eq!(plan(&s, &r, seed), plan(&s, &r, seed ^ 1));
    }

    #[test]
    fn binpack_picks_the_tightest_feasible(s in snapshot(), r in request(), cpu in any::<bool>()) {
        let mut r = r;
        r.placement_strategy = vec![parse_placement_strategy("binpack", Some(if cpu { "cpu" } else { "memory" })).unwrap()];
        let p = plan(&s, &r, 1);
        let member: Vec<bool> = s.instances.iter().map(|i| berth_scheduler::feasible::check_member_of(i, &r).is_ok()).collect();
        let mut view = s.clone();
        let left = |i: &InstanceView| if cpu { i.remaining_cpu } else { i.remaining_memory };
        for x in &p.placements {
            let tightest = view.instances.iter().enumerate()
                .filter(|(n, i)| berth_scheduler::feasible::check_chain(i, &r, member[*n]).is_ok())
                .map(|(_, i)| left(i)).min().unwrap();
            prop_assert_eq!(left(&view.instances[x.instance]), tightest);
            apply_task(&mut view.instances[x.instance], &r);
        }
    }

    #[test]
    fn spread_keeps_values_within_one(zones in prop::collection::vec(0usize..3, 1..12), count in 1u32..40, by_zone in any::<bool>()) {
        // Capacity for everything, no existing tasks: every value's count ends within one.
        let s = ClusterSnapshot { instances: zones.iter().enumerate().map(|(n, &z)| {
            InstanceView::new(format!("arn:{n}"), 1 << 20, 1 << 20).with_attribute("ecs.availability-zone", ZONES[z])
        }).collect() };
        let field = if by_zone { "attribute:ecs.availability-zone" } else { "instanceId" };
        let r = TaskRequest {
            cpu: 1, memory: 1, group: "service:web".into(), count,
            placement_strategy: vec![parse_placement_strategy("spread", Some(field)).unwrap(),
                                     parse_placement_strategy("binpack", Some("memory")).unwrap()],
            ..TaskRequest::default()
        };
        let p = plan(&s, &r, 1);
        prop_assert_eq!(p.placements.len() as u32, count);
        let mut per_value: BTreeMap<String, u32> = BTreeMap::new();
        for (n, &z) in zones.iter().enumerate() {
            per_value.entry(if by_zone { ZONES[z].to_string() } else { n.to_string() }).or_insert(0);
        }
        for x in &p.placements {
            let v = if by_zone { ZONES[zones[x.instance]].to_string() } else { x.instance.to_string() };
            *per_value.get_mut(&v).unwrap() += 1;
        }
        let max = per_value.values().max().unwrap();
        let min = per_value.values().min().unwrap();
        prop_assert!(max - min <= 1, "{:?}", per_value);
    }
}
