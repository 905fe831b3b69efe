use super::*;

/// A toy world the plans are applied to, round after round: started tasks are PENDING for a
/// round, then RUNNING (and healthy, unless their deployment's tasks are made to fail);
/// tasks asked to stop are stopping for a round, then STOPPED.
struct World {
    service: ServiceView,
    tasks: Vec<TaskView>,
    next: u32,
    /// Deployments whose tasks exit as soon as they are RUNNING.
    crashing: Vec<String>,
    instances: Vec<String>,
    /// A DAEMON service's instances (`None`: REPLICA).
    daemon: Option<Vec<DaemonInstance>>,
}

impl World {
    fn new(desired: u32, min: u32, max: u32) -> World {
        World {
            service: ServiceView {
                name: "web".into(),
                desired_count: desired,
                minimum_healthy_percent: min,
                maximum_percent: max,
                circuit_breaker: false,
                rollback: false,
                health_check_grace_period: 0.0,
                deployments: vec![deployment("d1", true, Rollout::InProgress)],
                last_completed: None,
                now: 1000.0,
            },
            tasks: Vec::new(),
            next: 0,
            crashing: Vec::new(),
            instances: vec!["i-a".into(), "i-b".into(), "i-c".into()],
            daemon: None,
        }
    }

    fn live(&self) -> Vec<&TaskView> {
        self.tasks
            .iter()
            .filter(|t| matches!(t.phase, TaskPhase::Pending | TaskPhase::Running) && !t.lost)
            .collect()
    }

    fn healthy(&self) -> usize {
        self.live()
            .iter()
            .filter(|t| t.phase == TaskPhase::Running && t.health != TaskHealth::Unhealthy)
            .count()
    }

    /// One round: tasks progress, then the plan is made and applied. The plan.
    fn round(&mut self) -> ServicePlan {
        self.service.now += 1.0;
        let now = self.service.now;
        for t in &mut self.tasks {
            match t.phase {
                TaskPhase::Stopping => {
                    t.phase = TaskPhase::Stopped;
                    t.stopped_at = Some(now);
                }
                TaskPhase::Pending => {
                    t.phase = TaskPhase::Running;
                    t.started_at = Some(now);
                }
                TaskPhase::Running if self.crashing.contains(&t.deployment) => {
                    t.phase = TaskPhase::Stopped;
                    t.stopped_at = Some(now);
                    t.failed = true;
                }
                _ => {}
            }
        }
        let plan = match &self.daemon {
            Some(instances) => plan_daemon(&self.service, &self.tasks, instances),
            None => plan_replica(&self.service, &self.tasks),
        };
        for (id, _) in &plan.stop {
            let t = self.tasks.iter_mut().find(|t| t.id == *id).expect("a task");
            assert!(matches!(t.phase, TaskPhase::Pending | TaskPhase::Running));
            t.phase = TaskPhase::Stopping;
        }
        let primary = self.service.deployments[0].id.clone();
        let placed: Vec<String> = (0..plan.start)
            .map(|n| self.instances[(self.next + n + 1) as usize % self.instances.len()].clone())
            .chain(plan.start_on.iter().cloned())
            .collect();
        for instance in placed {
            self.next += 1;
            self.tasks.push(TaskView {
                id: format!("t{:03}", self.next),
                deployment: primary.clone(),
                phase: TaskPhase::Pending,
                health: TaskHealth::None,
                started_at: None,
                stopped_at: None,
                failed: false,
                draining: false,
                lost: false,
                instance,
            });
        }
        // Deployment bookkeeping, as the reconciler keeps it.
        for status in &plan.deployments {
            if let Some(d) = self
                .service
                .deployments
                .iter_mut()
                .find(|d| d.id == status.id)
            {
                d.rollout = status.rollout;
                if d.primary && status.rollout == Rollout::Completed {
                    self.service.last_completed = Some((d.id.clone(), d.task_definition.clone()));
                }
            }
        }
        let drained: Vec<String> = plan
            .deployments
            .iter()
            .filter(|d| d.drained)
            .map(|d| d.id.clone())
            .collect();
        self.service
            .deployments
            .retain(|d| !drained.contains(&d.id));
        if let Some((id, td)) = &plan.rollback_to {
            for d in &mut self.service.deployments {
                d.primary = false;
            }
            let mut back = deployment(&format!("{id}-rollback"), true, Rollout::InProgress);
            back.task_definition = td.clone();
            self.service.deployments.insert(0, back);
        }
        plan
    }

    /// Rounds until steady (at most `limit`), checking the bounds after every one.
    fn until_steady(&mut self, limit: usize) -> usize {
        let desired = self.service.desired_count as usize;
        let max = desired * self.service.maximum_percent as usize / 100;
        let min = (desired * self.service.minimum_healthy_percent as usize).div_ceil(100);
        let mut healthy_before = self.healthy();
        for round in 1..=limit {
            let plan = self.round();
            let live = self
                .tasks
                .iter()
                .filter(|t| t.phase != TaskPhase::Stopped && !t.lost)
                .count();
            assert!(
                live <= max,
                "round {round}: {live} not stopped > maximum {max}"
            );
            // Stopping may take the healthy count below the minimum only if it was below
            // already (tasks still starting).
            let healthy = self.healthy();
            assert!(
                healthy >= min.min(healthy_before),
                "round {round}: healthy {healthy} < min {min} (was {healthy_before})"
            );
            healthy_before = healthy;
            if plan.steady {
                return round;
            }
        }
        panic!("not steady after {limit} rounds: {:#?}", self.tasks);
    }

    fn deploy(&mut self, id: &str) {
        for d in &mut self.service.deployments {
            d.primary = false;
        }
        self.service
            .deployments
            .insert(0, deployment(id, true, Rollout::InProgress));
    }
}

fn deployment(id: &str, primary: bool, rollout: Rollout) -> DeploymentView {
    DeploymentView {
        id: id.into(),
        primary,
        rollout,
        task_definition: format!("td-{id}"),
    }
}

#[test]
fn a_new_service_starts_its_desired_count_and_becomes_steady() {
    let mut w = World::new(3, 100, 200);
    let first = w.round();
    assert_eq!(first.start, 3);
    assert!(!first.steady);
    w.until_steady(5);
    assert_eq!(w.live().len(), 3);
    assert_eq!(w.service.deployments[0].rollout, Rollout::Completed);
    // Steady stays steady: nothing to do.
    let again = w.round();
    assert_eq!((again.start, again.stop.len()), (0, 0));
    assert!(again.steady);
}

#[test]
fn a_stopped_task_is_replaced() {
    let mut w = World::new(3, 100, 200);
    w.until_steady(5);
    w.tasks[0].phase = TaskPhase::Stopped;
    w.tasks[0].failed = true;
    let plan = w.round();
    assert_eq!(plan.start, 1);
    assert!(!plan.steady);
    w.until_steady(5);
    assert_eq!(w.live().len(), 3);
}

#[test]
fn rolling_updates_keep_within_the_bounds_for_every_setting() {
    for (desired, min, max) in [
        (10, 100, 200),
        (10, 50, 100),
        (10, 0, 100),
        (10, 50, 150),
        (7, 100, 120),
        (4, 75, 125),
        (1, 0, 100),
        (1, 100, 200),
        (100, 90, 110),
    ] {
        let mut w = World::new(desired, min, max);
        w.until_steady(20);
        w.deploy("d2");
        let rounds = w.until_steady(400);
        let live = w.live();
        assert_eq!(live.len(), desired as usize, "{desired} {min} {max}");
        assert!(
            live.iter().all(|t| t.deployment == "d2"),
            "{desired} {min} {max}: all replaced"
        );
        assert!(rounds > 1);
        assert_eq!(w.service.deployments.len(), 1, "the old deployment is gone");
    }
}

#[test]
fn scaling_in_and_out_moves_to_the_new_count() {
    let mut w = World::new(6, 100, 200);
    w.until_steady(5);
    w.service.desired_count = 2;
    let plan = w.round();
    assert_eq!(plan.stop.len(), 4);
    // Spread: the two left are on different instances.
    let live = w.live();
    assert_eq!(live.len(), 2);
    assert_ne!(live[0].instance, live[1].instance);
    w.service.desired_count = 5;
    w.until_steady(5);
    assert_eq!(w.live().len(), 5);
    w.service.desired_count = 0;
    w.round();
    assert!(w.live().is_empty());
}

#[test]
fn unhealthy_tasks_are_replaced_after_the_grace_period() {
    let mut w = World::new(2, 100, 200);
    w.service.health_check_grace_period = 30.0;
    w.until_steady(5);
    w.tasks[0].health = TaskHealth::Unhealthy;
    let plan = w.round();
    assert!(plan.stop.is_empty(), "within the grace period");
    w.service.now += 60.0;
    let plan = w.round();
    assert_eq!(
        plan.stop,
        vec![(w.tasks[0].id.clone(), REASON_UNHEALTHY.to_owned())]
    );
    assert_eq!(plan.start, 1);
}

#[test]
fn the_circuit_breaker_fails_a_crashing_deployment_and_rolls_back() {
    let mut w = World::new(4, 100, 200);
    w.service.circuit_breaker = true;
    w.service.rollback = true;
    w.until_steady(5);
    w.deploy("d2");
    w.crashing.push("d2".into());
    let mut rolled = None;
    for _ in 0..20 {
        let plan = w.round();
        if let Some(to) = plan.rollback_to.clone() {
            let d2 = plan.deployments.iter().find(|d| d.id == "d2").unwrap();
            assert_eq!(d2.rollout, Rollout::Failed);
            assert!(d2.failed >= failure_threshold(4));
            assert!(
                d2.reason
                    .as_deref()
                    .unwrap()
                    .contains("Rolling back to deployment d1")
            );
            rolled = Some(to);
            break;
        }
    }
    assert_eq!(rolled, Some(("d1".into(), "td-d1".into())));
    // The rollback deployment takes over; the failed one drains away.
    w.until_steady(20);
    assert!(w.live().len() == 4);
    assert_eq!(w.service.deployments.len(), 1);
    assert_eq!(w.service.deployments[0].id, "d1-rollback");
}

#[test]
fn without_rollback_a_failed_deployment_starts_nothing_more() {
    let mut w = World::new(4, 50, 200);
    w.service.circuit_breaker = true;
    w.until_steady(5);
    w.deploy("d2");
    w.crashing.push("d2".into());
    let mut failed_at = None;
    for round in 0..20 {
        let plan = w.round();
        if plan.deployments[0].rollout == Rollout::Failed {
            assert!(plan.rollback_to.is_none());
            failed_at = Some(round);
        }
        if failed_at.is_some() {
            assert_eq!(plan.start, 0);
        }
    }
    assert!(failed_at.is_some());
}

#[test]
fn tasks_on_draining_instances_move_first_then_stop() {
    let mut w = World::new(4, 100, 200);
    w.until_steady(5);
    let draining = w.live()[0].instance.clone();
    w.instances.retain(|i| *i != draining);
    for t in &mut w.tasks {
        t.draining = t.instance == draining;
    }
    let moved = w.tasks.iter().filter(|t| t.draining).count();
    assert!(moved > 0);
    let plan = w.round();
    assert_eq!(plan.start as usize, moved, "replacements first");
    assert!(plan.stop.is_empty(), "nothing healthy to spare yet");
    w.until_steady(10);
    assert!(
        w.live().iter().all(|t| t.instance != draining),
        "{:#?}",
        w.live()
    );
    let stopped: Vec<_> = w
        .tasks
        .iter()
        .filter(|t| t.draining && t.phase == TaskPhase::Stopped)
        .collect();
    assert_eq!(stopped.len(), moved);
}

#[test]
fn lost_tasks_are_replaced_and_extras_stopped_when_they_return() {
    let mut w = World::new(3, 100, 200);
    w.until_steady(5);
    let lost_instance = w.live()[0].instance.clone();
    for t in &mut w.tasks {
        t.lost = t.instance == lost_instance;
    }
    let lost = w.tasks.iter().filter(|t| t.lost).count();
    let plan = w.round();
    assert_eq!(plan.start as usize, lost);
    w.until_steady(5);
    // The agent comes back: its tasks count again, and the extras are stopped.
    for t in &mut w.tasks {
        t.lost = false;
    }
    let plan = w.round();
    assert_eq!(plan.stop.len(), lost);
    assert_eq!(w.live().len(), 3);
}

#[test]
fn the_failure_threshold_is_half_the_desired_count_between_3_and_200() {
    assert_eq!(failure_threshold(1), 3);
    assert_eq!(failure_threshold(7), 4);
    assert_eq!(failure_threshold(10), 5);
    assert_eq!(failure_threshold(1000), 200);
}

fn daemon_world(instances: &[&str], min: u32) -> World {
    let mut w = World::new(0, min, 100);
    w.daemon = Some(
        instances
            .iter()
            .map(|id| DaemonInstance {
                id: (*id).into(),
                eligible: true,
            })
            .collect(),
    );
    w
}

#[test]
fn a_daemon_service_runs_one_task_on_every_eligible_instance() {
    let mut w = daemon_world(&["i-a", "i-b", "i-c"], 0);
    let first = w.round();
    assert_eq!(first.desired, Some(3));
    assert_eq!(first.start_on, vec!["i-a", "i-b", "i-c"]);
    for _ in 0..6 {
        w.round();
    }
    assert!(w.round().steady);
    // An instance joins: it gets one; one is drained: its task goes.
    let instances = w.daemon.as_mut().unwrap();
    instances.push(DaemonInstance {
        id: "i-d".into(),
        eligible: true,
    });
    instances[0].eligible = false;
    for t in &mut w.tasks {
        t.draining = t.instance == "i-a";
    }
    let plan = w.round();
    assert_eq!(plan.desired, Some(3));
    assert_eq!(plan.start_on, vec!["i-d"]);
    assert_eq!(plan.stop.len(), 1);
    assert_eq!(plan.stop[0].1, REASON_DRAINING);
    for _ in 0..6 {
        w.round();
    }
    let mut on: Vec<&str> = w.live().iter().map(|t| t.instance.as_str()).collect();
    on.sort();
    assert_eq!(on, ["i-b", "i-c", "i-d"]);
    assert!(w.round().steady);
}

#[test]
fn a_daemon_deployment_replaces_task_by_task_within_the_minimum() {
    let instances = ["i-a", "i-b", "i-c", "i-d"];
    let mut w = daemon_world(&instances, 50);
    for _ in 0..6 {
        w.round();
    }
    w.deploy("d2");
    for round in 0..30 {
        let plan = w.round();
        let live = w.live();
        let healthy = w.healthy();
        assert!(healthy >= 2, "round {round}: {healthy} healthy < 50% of 4");
        // Never two tasks on one instance.
        for i in instances {
            let here = w
                .tasks
                .iter()
                .filter(|t| t.instance == i && t.phase != TaskPhase::Stopped)
                .count();
            assert!(here <= 1, "round {round}: {here} tasks on {i}");
        }
        if plan.steady {
            assert!(live.iter().all(|t| t.deployment == "d2"));
            assert_eq!(live.len(), 4);
            return;
        }
    }
    panic!("the daemon deployment never completed: {:#?}", w.tasks);
}

#[test]
fn a_daemon_service_stops_duplicates_on_an_instance() {
    let mut w = daemon_world(&["i-a"], 0);
    for _ in 0..5 {
        w.round();
    }
    let mut twin = w.live()[0].clone();
    twin.id = "twin".into();
    twin.started_at = Some(w.service.now);
    w.tasks.push(twin);
    let plan = w.round();
    assert_eq!(plan.stop.len(), 1);
    assert_eq!(plan.stop[0].0, "twin", "the newer one goes");
}
