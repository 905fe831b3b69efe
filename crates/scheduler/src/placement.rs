//! Choosing instances. Strategies rank feasible instances lexicographically: the first
//! strategy ranks, later ones break its ties, and the instance's position in the snapshot
//! breaks what is left, so the same input always gives the same plan (`random` draws from
//! a seeded generator). Keys, smaller is better:
//! - `binpack(cpu|memory)`: the instance's remaining cpu or memory (tightest fit wins);
//! - `spread(instanceId)`: tasks of the request's group on the instance;
//! - `spread(attribute:NAME)`: tasks of the request's group on all *candidate* instances
//!   (ACTIVE, agent connected, selected by every memberOf) sharing the instance's value of
//!   NAME; an absent attribute is a value of its own. ECS balances a service's tasks (its
//!   group), and counting only instances the request could use keeps unusable instances
//!   from skewing the balance;
//! - `random`: a fresh draw per instance and placement.
//!
//! `count` tasks are placed one at a time, each seeing the earlier ones. memberOf is
//! evaluated once per request, against the snapshot as the request found it.
//!
//! [`plan_reference`] does exactly that by scanning all instances per task. [`Placer`]
//! gets the same answer from indexes: candidates are grouped into buckets by the value of
//! a leading `spread(attribute)`, each bucket an ordered set keyed by the remaining
//! strategies' keys; buckets are visited in order of their count and the first instance
//! in a bucket (from the binpack range start) that fits is that bucket's best. An instance
//! found not to fit is set aside for the rest of the request: tasks of one request are
//! identical and an instance's resources only shrink within it, so it cannot fit later.
//! Cost per placement is O(B_min · log n) plus O(log n) per instance set aside, where
//! B_min is the number of buckets tied at the lowest count; the worst case, every
//! candidate set aside in one request, is O(n log n) once per request (not per task).
//! Strategy lists the index cannot express (an attribute spread after the first position,
//! `random`) fall back to the reference scan.

use std::collections::{BTreeSet, HashMap};

use crate::feasible::{apply_task, check_chain, check_member_of, check_resources};
use crate::types::{
    BinpackField, ClusterSnapshot, Failure, InstanceStatus, InstanceView, Placement,
    PlacementConstraint, PlacementStrategy, Plan, SpreadField, TaskRequest,
};

/// Places `task` on a copy of `snapshot` with the indexed engine.
pub fn plan(snapshot: &ClusterSnapshot, task: &TaskRequest, seed: u64) -> Plan {
    Placer::new(snapshot.clone(), seed).place(task)
}

/// Places `task` on a copy of `snapshot` by scanning every instance for every task: the
/// definition the indexed engine is tested against.
pub fn plan_reference(snapshot: &ClusterSnapshot, task: &TaskRequest, seed: u64) -> Plan {
    let mut s = snapshot.clone();
    place_reference(&mut s, task, &mut Rng(seed))
}

/// SplitMix64: small, fast, and good enough to order instances for `random`.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn member_flags(snapshot: &ClusterSnapshot, task: &TaskRequest) -> Vec<bool> {
    snapshot
        .instances
        .iter()
        .map(|i| check_member_of(i, task).is_ok())
        .collect()
}

fn is_candidate(inst: &InstanceView, member: bool) -> bool {
    member && inst.status == InstanceStatus::Active && inst.agent_connected
}

fn spread_value<'a>(inst: &'a InstanceView, attribute: &str) -> Option<&'a str> {
    inst.attribute(attribute).map(|v| v.unwrap_or(""))
}

fn failures(snapshot: &ClusterSnapshot, task: &TaskRequest, member: &[bool]) -> Vec<Failure> {
    snapshot
        .instances
        .iter()
        .zip(member)
        .filter_map(|(inst, &m)| {
            check_chain(inst, task, m).err().map(|reason| Failure {
                arn: inst.arn.clone(),
                reason,
            })
        })
        .collect()
}

fn place_reference(snapshot: &mut ClusterSnapshot, task: &TaskRequest, rng: &mut Rng) -> Plan {
    let member = member_flags(snapshot, task);
    let mut plan = Plan::default();
    for placed in 0..task.count {
        // Per-attribute task counts over candidates, recomputed for every task.
        let mut counts: HashMap<(&str, Option<&str>), u64> = HashMap::new();
        for s in &task.placement_strategy {
            if let PlacementStrategy::Spread(SpreadField::Attribute(a)) = s {
                for (inst, &m) in snapshot.instances.iter().zip(&member) {
                    if is_candidate(inst, m) {
                        *counts
                            .entry((a.as_str(), spread_value(inst, a)))
                            .or_default() += u64::from(inst.group_count(&task.group));
                    }
                }
            }
        }
        let mut best: Option<(Vec<u64>, usize)> = None;
        for (i, inst) in snapshot.instances.iter().enumerate() {
            if check_chain(inst, task, member[i]).is_err() {
                continue;
            }
            let key: Vec<u64> = task
                .placement_strategy
                .iter()
                .map(|s| match s {
                    PlacementStrategy::Binpack(BinpackField::Cpu) => inst.remaining_cpu,
                    PlacementStrategy::Binpack(BinpackField::Memory) => inst.remaining_memory,
                    PlacementStrategy::Spread(SpreadField::InstanceId) => {
                        u64::from(inst.group_count(&task.group))
                    }
                    PlacementStrategy::Spread(SpreadField::Attribute(a)) => counts
                        .get(&(a.as_str(), spread_value(inst, a)))
                        .copied()
                        .unwrap_or(0),
                    PlacementStrategy::Random => rng.next(),
                })
                .collect();
            if best.as_ref().is_none_or(|b| (&key, i) < (&b.0, b.1)) {
                best = Some((key, i));
            }
        }
        match best {
            Some((_, i)) => {
                apply_task(&mut snapshot.instances[i], task);
                plan.placements.push(Placement {
                    instance: i,
                    arn: snapshot.instances[i].arn.clone(),
                });
            }
            None => {
                plan.unplaced = task.count - placed;
                plan.failures = failures(snapshot, task, &member);
                break;
            }
        }
    }
    plan
}

/// A per-instance ordering key (a leading attribute spread is handled by buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Cpu,
    Memory,
    GroupOnInstance,
}

/// What an index depends on; a request with the same spec reuses the index.
#[derive(Debug, Clone, PartialEq)]
struct IndexSpec {
    member_of: Vec<crate::query::Expr>,
    spread: Option<String>,
    keys: Vec<KeyKind>,
    /// Only when a spread needs it, so binpack-only requests of any group share an index.
    group: String,
    /// memberOf reads task placement (`task:group`, `runningTasksCount`): rebuild per request.
    per_request: bool,
}

impl IndexSpec {
    fn for_task(task: &TaskRequest) -> Option<IndexSpec> {
        let mut spread = None;
        let mut keys = Vec::new();
        for (pos, s) in task.placement_strategy.iter().enumerate() {
            let kind = match s {
                PlacementStrategy::Spread(SpreadField::Attribute(a)) if pos == 0 => {
                    spread = Some(a.clone());
                    continue;
                }
                PlacementStrategy::Spread(SpreadField::Attribute(_))
                | PlacementStrategy::Random => {
                    return None;
                }
                PlacementStrategy::Binpack(BinpackField::Cpu) => KeyKind::Cpu,
                PlacementStrategy::Binpack(BinpackField::Memory) => KeyKind::Memory,
                PlacementStrategy::Spread(SpreadField::InstanceId) => KeyKind::GroupOnInstance,
            };
            // A repeated key can only compare equal where its first use did.
            if !keys.contains(&kind) {
                keys.push(kind);
            }
        }
        let member_of: Vec<_> = task
            .placement_constraints
            .iter()
            .filter_map(|c| match c {
                PlacementConstraint::MemberOf(e) => Some(e.clone()),
                PlacementConstraint::DistinctInstance => None,
            })
            .collect();
        let per_request = member_of.iter().any(|e| e.depends_on_tasks());
        let needs_group = spread.is_some() || keys.contains(&KeyKind::GroupOnInstance);
        Some(IndexSpec {
            member_of,
            spread,
            keys,
            group: if needs_group {
                task.group.clone()
            } else {
                String::new()
            },
            per_request,
        })
    }
}

type Key = [u64; 3];

#[derive(Debug)]
struct Bucket {
    count: u64,
    set: BTreeSet<(Key, u32)>,
}

#[derive(Debug)]
struct Index {
    spec: IndexSpec,
    /// memberOf verdict per instance, as of when it was computed.
    member: Vec<bool>,
    /// Bucket and current key of each candidate.
    slot: Vec<Option<(u32, Key)>>,
    buckets: Vec<Bucket>,
    bucket_of_value: HashMap<Option<String>, u32>,
    /// (count, bucket), so buckets are visited least-loaded first.
    order: BTreeSet<(u64, u32)>,
}

impl Index {
    fn build(snapshot: &ClusterSnapshot, spec: IndexSpec) -> Index {
        let n = snapshot.instances.len();
        let mut index = Index {
            spec,
            member: vec![false; n],
            slot: vec![None; n],
            buckets: Vec::new(),
            bucket_of_value: HashMap::new(),
            order: BTreeSet::new(),
        };
        if index.spec.spread.is_none() {
            index.buckets.push(Bucket {
                count: 0,
                set: BTreeSet::new(),
            });
        }
        for (i, inst) in snapshot.instances.iter().enumerate() {
            index.insert(i, inst);
        }
        index.order = index
            .buckets
            .iter()
            .enumerate()
            .map(|(b, bk)| (bk.count, b as u32))
            .collect();
        index
    }

    fn key(&self, inst: &InstanceView) -> Key {
        let mut k = [0; 3];
        for (slot, kind) in k.iter_mut().zip(&self.spec.keys) {
            *slot = match kind {
                KeyKind::Cpu => inst.remaining_cpu,
                KeyKind::Memory => inst.remaining_memory,
                KeyKind::GroupOnInstance => u64::from(inst.group_count(&self.spec.group)),
            };
        }
        k
    }

    /// Adds instance `i` if it is a candidate (bucket counts included). `order` is kept
    /// by the callers that change counts after the build.
    fn insert(&mut self, i: usize, inst: &InstanceView) {
        self.member[i] = self.spec.member_of.iter().all(|e| e.matches(inst));
        self.reinsert(i, inst);
    }

    /// Adds instance `i` with the memberOf verdict already recorded: within a request
    /// memberOf is not re-evaluated (see the module comment).
    fn reinsert(&mut self, i: usize, inst: &InstanceView) {
        let member = self.member[i];
        if !is_candidate(inst, member) {
            self.slot[i] = None;
            return;
        }
        let b = match &self.spec.spread {
            None => 0,
            Some(a) => {
                let value = spread_value(inst, a).map(str::to_string);
                let next = self.buckets.len() as u32;
                let b = *self.bucket_of_value.entry(value).or_insert(next);
                if b == next {
                    self.buckets.push(Bucket {
                        count: 0,
                        set: BTreeSet::new(),
                    });
                    self.order.insert((0, b));
                }
                let add = u64::from(inst.group_count(&self.spec.group));
                self.set_count(b, self.buckets[b as usize].count + add);
                b
            }
        };
        let key = self.key(inst);
        self.buckets[b as usize].set.insert((key, i as u32));
        self.slot[i] = Some((b, key));
    }

    fn remove(&mut self, i: usize, inst: &InstanceView) {
        if let Some((b, key)) = self.slot[i].take() {
            self.buckets[b as usize].set.remove(&(key, i as u32));
            if self.spec.spread.is_some() {
                let sub = u64::from(inst.group_count(&self.spec.group));
                self.set_count(b, self.buckets[b as usize].count - sub);
            }
        }
    }

    fn set_count(&mut self, b: u32, count: u64) {
        let old = self.buckets[b as usize].count;
        if old != count {
            self.order.remove(&(old, b));
            self.order.insert((count, b));
            self.buckets[b as usize].count = count;
        }
    }
}

/// The indexed engine over a snapshot it owns and keeps up to date: every plan it returns
/// is already applied to its snapshot, and its index carries over to the next request with
/// the same constraints, strategies and (when spread needs it) group. The control plane
/// keeps one per cluster and reports outside changes with [`Placer::replace_instance`].
#[derive(Debug)]
pub struct Placer {
    snapshot: ClusterSnapshot,
    rng: Rng,
    index: Option<Index>,
}

impl Placer {
    pub fn new(snapshot: ClusterSnapshot, seed: u64) -> Placer {
        Placer {
            snapshot,
            rng: Rng(seed),
            index: None,
        }
    }

    /// The snapshot with every plan so far applied.
    pub fn snapshot(&self) -> &ClusterSnapshot {
        &self.snapshot
    }

    pub fn into_snapshot(self) -> ClusterSnapshot {
        self.snapshot
    }

    /// Replaces instance `i` (a task stopped, attributes changed, the instance drained …).
    pub fn replace_instance(&mut self, i: usize, inst: InstanceView) {
        if let Some(index) = &mut self.index {
            index.remove(i, &self.snapshot.instances[i]);
            index.insert(i, &inst);
        }
        self.snapshot.instances[i] = inst;
    }

    /// Adds an instance at the end of the snapshot; returns its index.
    pub fn push_instance(&mut self, inst: InstanceView) -> usize {
        let i = self.snapshot.instances.len();
        self.snapshot.instances.push(inst);
        if let Some(index) = &mut self.index {
            index.member.push(false);
            index.slot.push(None);
            index.insert(i, &self.snapshot.instances[i]);
        }
        i
    }

    /// Places `task.count` tasks, applies them to the snapshot, and returns the plan.
    pub fn place(&mut self, task: &TaskRequest) -> Plan {
        let Some(spec) = IndexSpec::for_task(task) else {
            self.index = None;
            return place_reference(&mut self.snapshot, task, &mut self.rng);
        };
        let reuse = self
            .index
            .as_ref()
            .is_some_and(|ix| ix.spec == spec && !spec.per_request);
        if !reuse {
            self.index = Some(Index::build(&self.snapshot, spec));
        }
        let index = self.index.as_mut().unwrap();
        let instances = &mut self.snapshot.instances;
        let start: Key = match index.spec.keys.first() {
            Some(KeyKind::Cpu) => [task.cpu, 0, 0],
            Some(KeyKind::Memory) => [task.memory, 0, 0],
            _ => [0; 3],
        };
        let mut set_aside: Vec<(u32, Key, u32)> = Vec::new();
        let mut plan = Plan::default();
        for placed in 0..task.count {
            // (count, key, instance, bucket) of the best so far.
            let mut best: Option<(u64, Key, u32, u32)> = None;
            let Index { order, buckets, .. } = &mut *index;
            for &(count, b) in order.iter() {
                if best.is_some_and(|x| count > x.0) {
                    break;
                }
                let set = &mut buckets[b as usize].set;
                let found = loop {
                    let Some(&(key, i)) = set.range((start, 0)..).next() else {
                        break None;
                    };
                    if check_resources(&instances[i as usize], task).is_ok() {
                        break Some((key, i));
                    }
                    set.remove(&(key, i));
                    set_aside.push((b, key, i));
                };
                if let Some((key, i)) = found
                    && best.is_none_or(|x| (count, key, i) < (x.0, x.1, x.2))
                {
                    best = Some((count, key, i, b));
                }
            }
            let Some((_, _, i, _)) = best else {
                plan.unplaced = task.count - placed;
                break;
            };
            let i = i as usize;
            index.remove(i, &instances[i]);
            apply_task(&mut instances[i], task);
            index.reinsert(i, &instances[i]);
            plan.placements.push(Placement {
                instance: i,
                arn: instances[i].arn.clone(),
            });
        }
        for (b, key, i) in set_aside {
            index.buckets[b as usize].set.insert((key, i));
        }
        if plan.unplaced > 0 {
            plan.failures = failures(&self.snapshot, task, &index.member);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_placement_constraint as pc, parse_placement_strategy as ps};

    fn cluster() -> ClusterSnapshot {
        let zones = ["a", "b", "c"];
        ClusterSnapshot {
            instances: (0..9)
                .map(|i| {
                    InstanceView::new(format!("arn:{i}"), 1024, 1024 + 256 * i as u64)
                        .with_attribute("ecs.availability-zone", zones[i % 3])
                })
                .collect(),
        }
    }

    fn req(count: u32, strategies: &[(&str, Option<&str>)]) -> TaskRequest {
        TaskRequest {
            cpu: 128,
            memory: 256,
            group: "service:web".into(),
            count,
            placement_strategy: strategies.iter().map(|(t, f)| ps(t, *f).unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn binpack_memory_takes_the_tightest() {
        let mut s = cluster();
        s.instances[0].remaining_memory = 200; // too small
        s.instances[4].remaining_memory = 300; // tightest that fits
        let p = plan(&s, &req(1, &[("binpack", Some("memory"))]), 0);
        assert_eq!(p.placements[0].instance, 4);
        assert_eq!(
            p,
            plan_reference(&s, &req(1, &[("binpack", Some("memory"))]), 0)
        );
    }

    #[test]
    fn spread_zone_then_binpack() {
        let s = cluster();
        let r = req(
            6,
            &[
                ("spread", Some("attribute:ecs.availability-zone")),
                ("binpack", Some("memory")),
            ],
        );
        let p = plan(&s, &r, 0);
        let zones: Vec<usize> = p.placements.iter().map(|x| x.instance % 3).collect();
        assert_eq!(zones, vec![0, 1, 2, 0, 1, 2]);
        // binpack inside a zone keeps filling the smallest instance of that zone.
        assert_eq!(p.placements[0].instance, 0);
        assert_eq!(p.placements[3].instance, 0);
        assert_eq!(p, plan_reference(&s, &r, 0));
    }

    #[test]
    fn failures_report_first_reason_per_instance() {
        let mut s = cluster();
        s.instances[1].status = InstanceStatus::Draining;
        s.instances[2].agent_connected = false;
        let mut r = req(20, &[("binpack", Some("cpu"))]);
        r.cpu = 600;
        r.placement_constraints =
            vec![pc("memberOf", Some("attribute:ecs.availability-zone != c")).unwrap()];
        let p = plan(&s, &r, 0);
        assert_eq!(p, plan_reference(&s, &r, 0));
        // zones a and b less the draining instance: 5 instances, one 600-cpu task each.
        assert_eq!(p.placements.len(), 5);
        assert_eq!(p.unplaced, 15);
        let reasons: Vec<&str> = p.failures.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "RESOURCE:CPU",
                "INACTIVE",
                "AGENT",
                "RESOURCE:CPU",
                "RESOURCE:CPU",
                "ATTRIBUTE",
                "RESOURCE:CPU",
                "RESOURCE:CPU",
                "ATTRIBUTE"
            ]
        );
    }

    #[test]
    fn distinct_instance_and_ports() {
        let s = cluster();
        let mut r = req(12, &[("spread", Some("instanceId"))]);
        r.placement_constraints = vec![pc("distinctInstance", None).unwrap()];
        let p = plan(&s, &r, 0);
        assert_eq!(p.placements.len(), 9);
        assert_eq!(p.unplaced, 3);
        assert!(
            p.failures
                .iter()
                .all(|f| f.reason.as_str().starts_with("DistinctInstance"))
        );
        assert_eq!(p, plan_reference(&s, &r, 0));
        let mut r = req(12, &[]);
        r.tcp_ports = vec![8080];
        let p = plan(&s, &r, 0);
        assert_eq!(p.placements.len(), 9);
        assert!(
            p.failures
                .iter()
                .all(|f| f.reason.as_str() == "RESOURCE:PORTS")
        );
    }

    #[test]
    fn random_is_seeded() {
        let s = cluster();
        let r = req(5, &[("random", None)]);
        assert_eq!(plan(&s, &r, 7), plan(&s, &r, 7));
    }

    #[test]
    fn placer_reuses_its_index_and_tracks_changes() {
        let s = cluster();
        let r = req(
            3,
            &[
                ("spread", Some("attribute:ecs.availability-zone")),
                ("binpack", Some("memory")),
            ],
        );
        let mut placer = Placer::new(s.clone(), 0);
        let mut reference = s;
        for round in 0..10 {
            if round == 4 {
                let mut inst = placer.snapshot().instances[3].clone();
                inst.status = InstanceStatus::Draining;
                placer.replace_instance(3, inst.clone());
                reference.instances[3] = inst;
            }
            let a = placer.place(&r);
            let b = place_reference(&mut reference, &r, &mut Rng(0));
            assert_eq!(a, b, "round {round}");
        }
        assert_eq!(placer.snapshot(), &reference);
    }
}
