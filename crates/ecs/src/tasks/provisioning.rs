//! Tasks waiting for capacity: a task launched through an Auto Scaling group capacity
//! provider that found no room stays PROVISIONING without an instance (as in ECS), counted
//! by the provider's managed scaling. The leader places them once instances of the
//! provider have room (each in one compare-and-swap of the instance and the task), and
//! stops those that waited too long.

use berth_model::Scope;
use berth_model::ecs::{DesiredStatus, StopCode, TaskStatus};
use berth_store::{Compare, Op};

use super::run::{instance_zone, reserve};
use super::{Task, WaitingPlacement, index_entry};
use crate::instances::ContainerInstance;
use crate::keys::{instance_key, instances_prefix, marker_key, task_key};
use crate::{Ecs, Result, decode, encode};

/// Berth's `stoppedReason` for a task that waited longer than the provisioning timeout
/// (no published ECS text was found; see docs/capacity-providers.md).
pub const PROVISIONING_TIMED_OUT: &str = "Capacity provider timed out: no container instance of the capacity provider had room for the task";

/// What the leader's managed scaling reads of one capacity provider in one cluster.
#[derive(Debug, Clone, Default)]
pub struct ProviderUsage {
    /// The provider's registered instances (any status).
    pub instances: Vec<ContainerInstance>,
    /// The live tasks launched by the provider, placed or waiting.
    pub tasks: Vec<Task>,
    /// The provider's instances (by id) running at least one live task other than a
    /// DAEMON service's, whoever launched it: ECS's "instances running non-daemon tasks"
    /// (counted in M, protected from scale-in).
    pub busy: std::collections::BTreeSet<String>,
}

impl Task {
    /// PROVISIONING with no instance yet: waiting for capacity.
    pub fn is_waiting_for_capacity(&self) -> bool {
        self.last_status == TaskStatus::Provisioning
            && self.container_instance_id.is_none()
            && self.desired_status == DesiredStatus::Running
    }
}

impl Ecs {
    /// The cluster's live tasks (from its pending and running markers).
    fn live_tasks(&self, scope: &Scope, cluster: &str) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        for status in [TaskStatus::Pending, TaskStatus::Running] {
            let prefix = marker_key(scope, status, cluster, "");
            for kv in self.store.range(&prefix, None, 0)? {
                let id = &kv.key[prefix.len()..];
                if let Some(t) = self.task(scope, cluster, id)?
                    && t.is_live()
                {
                    tasks.push(t);
                }
            }
        }
        Ok(tasks)
    }

    /// The provider's instances and live tasks in `cluster`.
    pub fn provider_usage(
        &self,
        scope: &Scope,
        cluster: &str,
        provider: &str,
    ) -> Result<ProviderUsage> {
        let instances = self
            .store
            .range(&instances_prefix(scope, cluster), None, 0)?
            .iter()
            .map(decode::<ContainerInstance>)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|i| i.capacity_provider_name.as_deref() == Some(provider))
            .collect();
        let tasks = self
            .live_tasks(scope, cluster)?
            .into_iter()
            .filter(|t| t.capacity_provider_name.as_deref() == Some(provider) && !t.is_fargate())
            .collect();
        let daemons: std::collections::BTreeSet<String> = self
            .services(scope, Some(cluster))?
            .into_iter()
            .filter(|s| s.scheduling_strategy == "DAEMON")
            .map(|s| format!("service:{}", s.service_name))
            .collect();
        let mut busy = std::collections::BTreeSet::new();
        for i in &instances {
            let i: &ContainerInstance = i;
            if self
                .live_tasks_on(scope, cluster, &i.id)?
                .iter()
                .any(|t| !daemons.contains(&t.group))
            {
                busy.insert(i.id.clone());
            }
        }
        Ok(ProviderUsage {
            instances,
            tasks,
            busy,
        })
    }

    /// Places the cluster's tasks waiting for `provider`'s capacity, oldest first, each on
    /// one of the provider's ACTIVE instances that fits it, by the placement constraints
    /// and strategy it was launched with (binpack on memory when it named no strategy);
    /// the task keeps PROVISIONING and its agent takes it from there. Returns how many
    /// were placed.
    pub fn place_waiting_tasks(
        &self,
        scope: &Scope,
        cluster: &str,
        provider: &str,
    ) -> Result<usize> {
        let mut waiting: Vec<Task> = self
            .provider_usage(scope, cluster, provider)?
            .tasks
            .into_iter()
            .filter(Task::is_waiting_for_capacity)
            .collect();
        waiting.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
        let mut placed = 0;
        for task in waiting {
            if self.place_waiting_task(scope, cluster, provider, &task.id)? {
                placed += 1;
            }
        }
        Ok(placed)
    }

    /// One waiting task, in one transaction compared on the task and the instance (a
    /// StopTask or another placement in between: read again). `false`: no room.
    fn place_waiting_task(
        &self,
        scope: &Scope,
        cluster: &str,
        provider: &str,
        id: &str,
    ) -> Result<bool> {
        let tkey = task_key(scope, cluster, id);
        for _ in 0..super::run::PLACEMENT_ROUNDS {
            let Some(tkv) = self.store.get(&tkey)? else {
                return Ok(false);
            };
            let mut task: Task = decode(&tkv)?;
            if !task.is_waiting_for_capacity() {
                return Ok(false);
            }
            let placement = task.waiting_placement.clone().unwrap_or_default();
            let candidates: Vec<(u64, ContainerInstance)> = self
                .store
                .range(&instances_prefix(scope, cluster), None, 0)?
                .into_iter()
                .filter_map(|kv| {
                    let i: ContainerInstance = decode(&kv).ok()?;
                    (i.capacity_provider_name.as_deref() == Some(provider))
                        .then_some((kv.mod_revision, i))
                })
                .collect();
            let Some(chosen) = choose_instance(&task, &placement, &candidates, scope) else {
                return Ok(false);
            };
            let (revision, mut instance) = candidates[chosen].clone();
            reserve(&mut instance, &task.reservation, &task.group);
            task.container_instance_id = Some(instance.id.clone());
            if task.availability_zone.is_none() {
                task.availability_zone = instance_zone(&instance);
            }
            task.version += 1;
            let ikey = instance_key(scope, cluster, &instance.id);
            let (entry, value) = index_entry(scope, &task, task.last_status);
            let compares = [
                Compare::ModRevision(tkey.clone(), tkv.mod_revision),
                Compare::ModRevision(ikey.clone(), revision),
            ];
            let ops = [
                Op::put(tkey.clone(), encode(&task)),
                Op::put(ikey, encode(&instance)),
                Op::put(entry, value),
            ];
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stops the cluster's tasks that have waited for capacity since before `created_before`
    /// (epoch seconds), with [`PROVISIONING_TIMED_OUT`]. Returns how many.
    pub fn expire_waiting_tasks(
        &self,
        scope: &Scope,
        cluster: &str,
        created_before: f64,
    ) -> Result<usize> {
        let mut stopped = 0;
        for task in self.live_tasks(scope, cluster)? {
            if !task.is_waiting_for_capacity() || task.created_at >= created_before {
                continue;
            }
            self.change_task(scope, cluster, &task.id, |t| {
                if !t.is_waiting_for_capacity() {
                    return None;
                }
                t.desired_status = DesiredStatus::Stopped;
                t.stopping_at.get_or_insert_with(crate::now_epoch);
                t.stop_code = Some(StopCode::TaskFailedToStart);
                t.stopped_reason = Some(PROVISIONING_TIMED_OUT.into());
                Some(TaskStatus::Stopped)
            })?;
            stopped += 1;
        }
        Ok(stopped)
    }
}

/// The instance (index into `candidates`) the scheduler picks for one waiting task: its
/// resources and ports, the constraints and strategy it was launched with (binpack on
/// memory when none was named). `None`: no instance has room, or a constraint no longer
/// parses (it did at launch).
fn choose_instance(
    task: &Task,
    placement: &WaitingPlacement,
    candidates: &[(u64, ContainerInstance)],
    scope: &Scope,
) -> Option<usize> {
    let constraints = placement
        .constraints
        .iter()
        .map(|(t, e)| berth_scheduler::parse_placement_constraint(t, e.as_deref()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .ok()?;
    let strategy = if placement.strategy.is_empty() {
        vec![berth_scheduler::PlacementStrategy::Binpack(
            berth_scheduler::BinpackField::Memory,
        )]
    } else {
        placement
            .strategy
            .iter()
            .map(|(t, f)| berth_scheduler::parse_placement_strategy(t, f.as_deref()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ok()?
    };
    let one = berth_scheduler::TaskRequest {
        cpu: task.reservation.cpu.max(0) as u64,
        memory: task.reservation.memory.max(0) as u64,
        tcp_ports: task.reservation.tcp_ports.clone(),
        udp_ports: task.reservation.udp_ports.clone(),
        group: task.group.clone(),
        count: 1,
        placement_constraints: constraints,
        placement_strategy: strategy,
    };
    let snapshot = berth_scheduler::ClusterSnapshot {
        instances: candidates
            .iter()
            .map(|(_, i)| i.placement_view(scope))
            .collect(),
    };
    let seed = task.created_at.to_bits();
    berth_scheduler::plan(&snapshot, &one, seed)
        .placements
        .first()
        .map(|p| p.instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity_providers::AutoScalingGroupProviderSpec;
    use crate::testing::World;
    use crate::{CapacityProviderStrategyItem, RunTask};

    /// The default cluster with the provider `cp` (group `g`), and a family `f` of 512 MiB.
    fn world() -> World {
        let w = World::new();
        w.ecs
            .create_capacity_provider(
                &w.scope,
                "cp",
                &AutoScalingGroupProviderSpec {
                    auto_scaling_group_arn: Some("g".into()),
                    ..AutoScalingGroupProviderSpec::default()
                },
                Vec::new(),
            )
            .unwrap();
        w.ecs
            .put_cluster_capacity_providers(&w.scope, "default", vec!["cp".into()], Vec::new())
            .unwrap();
        w.register(
            r#"{"family": "f", "containerDefinitions": [{"name": "c", "image": "i", "memory": 512}]}"#,
        );
        w
    }

    fn run(w: &World, count: u32) -> Vec<Task> {
        run_by(w, count, vec![item("cp", 1, 0)])
    }

    fn item(name: &str, weight: u32, base: u32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: name.into(),
            weight,
            base,
        }
    }

    /// RunTask of `count` tasks of `f` by `strategy`.
    fn request(count: u32, strategy: Vec<CapacityProviderStrategyItem>) -> RunTask {
        RunTask {
            task_definition: "f".into(),
            count,
            capacity_provider_strategy: Some(strategy),
            ..RunTask::default()
        }
    }

    fn run_by(w: &World, count: u32, strategy: Vec<CapacityProviderStrategyItem>) -> Vec<Task> {
        let out = w.ecs.run_task(&w.scope, request(count, strategy)).unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        out.tasks
    }

    /// An instance of `cpu` and `memory` in the default cluster, of `provider`.
    fn provider_instance(w: &World, cpu: i64, memory: i64, provider: &str) -> ContainerInstance {
        let i = w.instance(cpu, memory);
        w.ecs
            .set_container_instance_capacity_provider(&w.scope, "default", &i.id, Some(provider))
            .unwrap();
        i
    }

    /// The leader's pass placing `cp`'s waiting tasks: how many it placed.
    fn place(w: &World) -> usize {
        w.ecs
            .place_waiting_tasks(&w.scope, "default", "cp")
            .unwrap()
    }

    /// A second provider `cp2` (group `g2`) beside `cp` in the default cluster.
    fn second_provider(w: &World) {
        w.ecs
            .create_capacity_provider(
                &w.scope,
                "cp2",
                &AutoScalingGroupProviderSpec {
                    auto_scaling_group_arn: Some("g2".into()),
                    ..AutoScalingGroupProviderSpec::default()
                },
                Vec::new(),
            )
            .unwrap();
        w.ecs
            .put_cluster_capacity_providers(
                &w.scope,
                "default",
                vec!["cp".into(), "cp2".into()],
                Vec::new(),
            )
            .unwrap();
    }

    #[test]
    fn base_and_weight_split_a_run_task_over_two_providers() {
        let w = world();
        second_provider(&w);
        let a = provider_instance(&w, 1024, 4096, "cp");
        // cp takes its base of 2, then 1:1; cp2 has no instance, so its share waits.
        let tasks = run_by(&w, 6, vec![item("cp", 1, 2), item("cp2", 1, 0)]);
        assert_eq!(tasks.len(), 6);
        let of = |p: &str| {
            tasks
                .iter()
                .filter(|t| t.capacity_provider_name.as_deref() == Some(p))
                .collect::<Vec<_>>()
        };
        assert_eq!(of("cp").len(), 4);
        assert_eq!(of("cp2").len(), 2);
        assert!(
            of("cp")
                .iter()
                .all(|t| t.container_instance_id.as_deref() == Some(a.id.as_str()))
        );
        assert!(of("cp2").iter().all(|t| t.is_waiting_for_capacity()));
    }

    #[test]
    fn tasks_wait_for_the_providers_instances_and_are_placed_when_one_has_room() {
        let w = world();
        // An instance of no provider takes none of the provider's tasks.
        let other = w.instance(1024, 4096);
        let tasks = run(&w, 2);
        assert!(tasks.iter().all(Task::is_waiting_for_capacity));
        assert!(
            tasks
                .iter()
                .all(|t| t.capacity_provider_name.as_deref() == Some("cp"))
        );
        assert_eq!(place(&w), 0);

        // An instance of the provider with room for one: one placed, one still waiting.
        let mine = provider_instance(&w, 1024, 768, "cp");
        assert_eq!(place(&w), 1);
        let usage = w.ecs.provider_usage(&w.scope, "default", "cp").unwrap();
        assert_eq!(usage.instances.len(), 1);
        assert!(usage.busy.contains(&mine.id));
        let placed: Vec<&Task> = usage
            .tasks
            .iter()
            .filter(|t| t.container_instance_id.is_some())
            .collect();
        assert_eq!(placed.len(), 1);
        assert_eq!(
            placed[0].container_instance_id.as_deref(),
            Some(mine.id.as_str())
        );
        assert_eq!(usage.instances[0].remaining.memory, 768 - 512);

        // RunTask now places on the provider's instance at once when it fits, never on the
        // other one.
        w.ecs
            .set_container_instance_capacity_provider(&w.scope, "default", &mine.id, None)
            .unwrap();
        let big = provider_instance(&w, 1024, 4096, "cp");
        let now = run(&w, 1);
        assert_eq!(
            now[0].container_instance_id.as_deref(),
            Some(big.id.as_str())
        );
        assert_ne!(
            now[0].container_instance_id.as_deref(),
            Some(other.id.as_str())
        );

        // The one left waiting times out.
        assert_eq!(
            w.ecs
                .expire_waiting_tasks(&w.scope, "default", crate::now_epoch() + 1.0)
                .unwrap(),
            1
        );
        let stopped: Vec<Task> = w
            .ecs
            .tasks(&w.scope, None)
            .unwrap()
            .into_iter()
            .filter(|t| t.last_status == TaskStatus::Stopped)
            .collect();
        assert_eq!(stopped.len(), 1);
        assert_eq!(
            stopped[0].stopped_reason.as_deref(),
            Some(PROVISIONING_TIMED_OUT)
        );
        assert_eq!(stopped[0].stop_code, Some(StopCode::TaskFailedToStart));
    }

    #[test]
    fn waiting_tasks_keep_their_placement_constraints() {
        let w = world();
        let out = w
            .ecs
            .run_task(
                &w.scope,
                RunTask {
                    placement_constraints: vec![("distinctInstance".into(), None)],
                    ..request(2, vec![item("cp", 1, 0)])
                },
            )
            .unwrap();
        assert!(out.tasks.iter().all(Task::is_waiting_for_capacity));
        // One instance with room for both: distinctInstance lets only one go there.
        let first = provider_instance(&w, 1024, 4096, "cp");
        assert_eq!(place(&w), 1);
        let second = provider_instance(&w, 1024, 4096, "cp");
        assert_eq!(place(&w), 1);
        let mut on: Vec<String> = w
            .ecs
            .provider_usage(&w.scope, "default", "cp")
            .unwrap()
            .tasks
            .iter()
            .filter_map(|t| t.container_instance_id.clone())
            .collect();
        on.sort();
        let mut both = vec![first.id.clone(), second.id.clone()];
        both.sort();
        assert_eq!(on, both);
    }

    #[test]
    fn a_run_task_split_over_providers_is_idempotent_with_all_its_tasks() {
        let w = world();
        second_provider(&w);
        let run = || {
            w.ecs
                .run_task(
                    &w.scope,
                    RunTask {
                        client_token: Some("once".into()),
                        ..request(4, vec![item("cp", 1, 0), item("cp2", 1, 0)])
                    },
                )
                .unwrap()
                .tasks
                .into_iter()
                .map(|t| t.id)
                .collect::<std::collections::BTreeSet<_>>()
        };
        let first = run();
        assert_eq!(first.len(), 4);
        // The same request again: the same four tasks (both providers'), none new.
        assert_eq!(run(), first);
        assert_eq!(w.ecs.tasks(&w.scope, None).unwrap().len(), 4);
    }
}
