use super::*;

/// A toy world the plans are applied to, round after round: started tasks are PENDING for a
/// round, then RUNNING (and healthy, unless their deployment's tasks are made to fail);
/// tasks asked to stop are stopping for a round, then STOPPED.
struct World {
    service: ServiceView,
    tasks: Vec<TaskView>,
    next: u32,
    /// Deployments whose tasks exit `crash_after` seconds after they are RUNNING.
    crashing: Vec<String>,
    crash_after: f64,
    /// Deployments whose tasks never start: PENDING for a round, then STOPPED.
    unstartable: Vec<String>,
    /// Tasks stopped for failing their health checks (failures, not failed starts).
    unhealthy_stops: Vec<String>,
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
                deployments: vec![deployment("d1", true, RolloutState::InProgress)],
                last_completed: None,
                throttle: Throttle::default(),
                now: 1000.0,
            },
            tasks: Vec::new(),
            next: 0,
            crashing: Vec::new(),
            crash_after: 1.0,
            unstartable: Vec::new(),
            unhealthy_stops: Vec::new(),
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
                    // As the reconciler's view has it: a failure, but it ran.
                    t.unhealthy_stop = self.unhealthy_stops.contains(&t.id);
                    t.failed = t.unhealthy_stop;
                }
                TaskPhase::Pending if self.unstartable.contains(&t.deployment) => {
                    t.phase = TaskPhase::Stopped;
                    t.stopped_at = Some(now);
                    t.failed = true;
                }
                TaskPhase::Pending => {
                    t.phase = TaskPhase::Running;
                    t.started_at = Some(now);
                }
                TaskPhase::Running
                    if self.crashing.contains(&t.deployment)
                        && t.started_at.is_some_and(|at| now - at >= self.crash_after) =>
                {
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
        for (id, reason) in &plan.stop {
            let t = self.tasks.iter_mut().find(|t| t.id == *id).expect("a task");
            assert!(matches!(t.phase, TaskPhase::Pending | TaskPhase::Running));
            t.phase = TaskPhase::Stopping;
            if reason == REASON_UNHEALTHY {
                self.unhealthy_stops.push(id.clone());
            }
        }
        // The throttle's state, as the reconciler stores it.
        self.service.throttle = plan.throttle;
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
                created_at: now,
                failed: false,
                unhealthy_stop: false,
                draining: false,
                lost: false,
                instance,
                protected: false,
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
                if d.primary && status.rollout == RolloutState::Completed {
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
            let mut back = deployment(&format!("{id}-rollback"), true, RolloutState::InProgress);
            back.task_definition = td.clone();
            self.service.deployments.insert(0, back);
            // A new deployment starts unthrottled, as the reconciler's does.
            self.service.throttle.failures = 0;
            self.service.throttle.retry_at = 0.0;
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
            .insert(0, deployment(id, true, RolloutState::InProgress));
    }
}

fn deployment(id: &str, primary: bool, rollout: RolloutState) -> DeploymentView {
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
    assert_eq!(w.service.deployments[0].rollout, RolloutState::Completed);
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
            assert_eq!(d2.rollout, RolloutState::Failed);
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
        if plan.deployments[0].rollout == RolloutState::Failed {
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

#[test]
fn the_throttle_delay_doubles_from_10_seconds_up_to_27_minutes() {
    let delays: Vec<f64> = (0..=12).map(throttle_delay).collect();
    assert_eq!(
        delays,
        [
            0.0, 0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 1620.0, 1620.0, 1620.0
        ]
    );
    assert_eq!(throttle_delay(u32::MAX), THROTTLE_MAX_SECONDS);
}

#[test]
fn the_most_attempts_in_a_window_follow_the_schedule() {
    // Attempts at 0, 0, 10, 30, 70, 150, 310, 630, … seconds.
    assert_eq!(max_attempts_within(0.0), 2);
    assert_eq!(max_attempts_within(9.9), 2);
    assert_eq!(max_attempts_within(10.0), 3);
    assert_eq!(max_attempts_within(180.0), 6);
    assert_eq!(max_attempts_within(310.0), 7);
    // Past the cap, one more every 27 minutes.
    let capped = 2550.0 + 1620.0; // the 10th attempt, then the 11th
    assert_eq!(max_attempts_within(capped), 11);
    assert_eq!(max_attempts_within(capped + 1619.0), 11);
}

/// The times (rounds) at which the world started tasks, and the plans of those rounds.
fn attempt_times(w: &mut World, rounds: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let plan = w.round();
        if plan.start > 0 || !plan.start_on.is_empty() {
            times.push(w.service.now);
        }
    }
    times
}

#[test]
fn a_service_whose_tasks_never_start_is_retried_on_the_throttle_schedule() {
    let mut w = World::new(1, 100, 200);
    w.unstartable.push("d1".into());
    // A task fails the round after it is started: attempt n + 1 comes that round plus the
    // delay after n failures.
    let times = attempt_times(&mut w, 6000);
    assert!(times.len() > 11, "{times:?}");
    for (n, pair) in times.windows(2).enumerate() {
        let failures = n as u32 + 1;
        assert_eq!(
            pair[1] - pair[0],
            1.0 + throttle_delay(failures),
            "attempt {} after {failures} failures: {times:?}",
            n + 2
        );
    }
    assert_eq!(w.service.throttle.failures as usize, times.len());
    // Never given up: one task a try, each one stopped.
    assert_eq!(w.tasks.len(), times.len());
}

#[test]
fn starts_held_back_name_their_wake_time_and_change_nothing_else() {
    let mut w = World::new(1, 100, 200);
    w.unstartable.push("d1".into());
    let mut held = None;
    for _ in 0..10 {
        let plan = w.round();
        if plan.wake_at.is_some() {
            held = Some(plan);
            break;
        }
    }
    let plan = held.expect("the throttle held starts back");
    assert_eq!(plan.start, 0);
    assert!(!plan.steady);
    assert_eq!(plan.throttle.failures, 2);
    assert_eq!(plan.wake_at, Some(plan.throttle.retry_at));
    assert_eq!(
        plan.throttle.retry_at,
        plan.throttle.last_stopped_at + THROTTLE_BASE_SECONDS
    );
    // The same plan, without the throttle, only starts a task.
    let mut free = w.service.clone();
    free.throttle = Throttle::default();
    free.throttle.last_stopped_at = plan.throttle.last_stopped_at;
    let unthrottled = plan_replica(&free, &w.tasks);
    assert_eq!(unthrottled.start, 1);
    assert_eq!(unthrottled.deployments, plan.deployments);
    assert_eq!(unthrottled.stop, plan.stop);
    // Rounds before the wake time start nothing; the one at it does.
    let wake = plan.wake_at.unwrap();
    while w.service.now + 1.0 < wake {
        assert_eq!(w.round().start, 0);
    }
    assert_eq!(w.round().start, 1);
}

#[test]
fn tasks_launched_together_that_fail_are_one_failed_attempt() {
    let mut w = World::new(3, 100, 200);
    w.unstartable.push("d1".into());
    let first = w.round();
    assert_eq!(first.start, 3);
    let second = w.round();
    assert_eq!(second.throttle.failures, 1, "three tasks, one attempt");
    assert_eq!(second.start, 3, "one failed attempt costs nothing");

    // Tasks of one attempt failing one after the other still make one.
    let service = ServiceView {
        throttle: Throttle::default(),
        ..w.service.clone()
    };
    let task = |id: &str, created: f64, stopped: Option<f64>| TaskView {
        id: id.into(),
        deployment: "d1".into(),
        phase: if stopped.is_some() {
            TaskPhase::Stopped
        } else {
            TaskPhase::Pending
        },
        health: TaskHealth::None,
        started_at: None,
        stopped_at: stopped,
        created_at: created,
        failed: stopped.is_some(),
        unhealthy_stop: false,
        draining: false,
        lost: false,
        instance: "i-a".into(),
        protected: false,
    };
    let mut service = ServiceView {
        now: 200.0,
        ..service
    };
    let mut tasks = vec![
        task("a", 100.0, Some(101.0)),
        task("b", 100.0, None),
        task("c", 100.0, None),
    ];
    service.throttle = throttle(&service, &tasks);
    tasks[1] = task("b", 100.0, Some(102.0));
    service.throttle = throttle(&service, &tasks);
    tasks[2] = task("c", 100.0, Some(103.0));
    service.throttle = throttle(&service, &tasks);
    assert_eq!(service.throttle.failures, 1);
    assert_eq!(service.throttle.last_stopped_at, 103.0);
    // A task launched after the last failure seen, failing, is the next attempt.
    tasks.push(task("d", 103.5, Some(104.0)));
    service.throttle = throttle(&service, &tasks);
    assert_eq!(service.throttle.failures, 2);
    assert_eq!(service.throttle.retry_at, 104.0 + 10.0);
    // Seen once: planning again counts nothing more.
    assert_eq!(throttle(&service, &tasks), service.throttle);
}

#[test]
fn a_task_that_stays_up_resets_the_throttle() {
    let mut w = World::new(1, 100, 200);
    w.unstartable.push("d1".into());
    attempt_times(&mut w, 40);
    assert!(w.service.throttle.failures >= 3);
    // The cause is fixed: the next attempt's task runs, and once it has run past the
    // fast-failure window the count is back to zero.
    w.unstartable.clear();
    let wait = w.service.throttle.retry_at - w.service.now;
    for _ in 0..(wait as usize + 2) {
        w.round();
    }
    let started = w
        .live()
        .first()
        .and_then(|t| t.started_at)
        .expect("a running task");
    assert!(
        w.service.throttle.failures >= 3,
        "not before it has stayed up"
    );
    while w.service.now < started + FAST_FAILURE_SECONDS {
        w.round();
    }
    assert_eq!(w.service.throttle.failures, 0);
    assert_eq!(w.service.throttle.retry_at, 0.0);
    assert!(w.round().steady);
    // A later failure is a first one again: replaced at once.
    let t = w
        .tasks
        .iter_mut()
        .find(|t| t.phase == TaskPhase::Running)
        .unwrap();
    t.phase = TaskPhase::Stopped;
    t.failed = true;
    t.stopped_at = Some(w.service.now);
    t.started_at = Some(w.service.now - 1.0);
    let plan = w.round();
    assert_eq!((plan.throttle.failures, plan.start), (1, 1));
}

#[test]
fn a_task_up_since_before_the_failures_does_not_reset_the_throttle() {
    // Two tasks; one runs on, the other's replacements keep failing.
    let mut w = World::new(2, 100, 200);
    w.until_steady(10);
    w.service.now += 60.0;
    w.unstartable.push("d1".into());
    let t = w
        .tasks
        .iter_mut()
        .find(|t| t.phase == TaskPhase::Running)
        .unwrap();
    t.phase = TaskPhase::Stopped;
    t.failed = true;
    t.stopped_at = Some(w.service.now);
    let times = attempt_times(&mut w, 100);
    assert_eq!(times.len(), 5, "at once, +0, +10, +20, +40: {times:?}");
    assert!(w.service.throttle.failures >= 4);
}

#[test]
fn a_task_that_exits_soon_after_it_runs_is_a_failed_start_even_past_stable() {
    // Up 5 s: stable (3 s) but not past the fast-failure window, so throttled all the same.
    let mut w = World::new(1, 100, 200);
    w.crashing.push("d1".into());
    w.crash_after = 5.0;
    let times = attempt_times(&mut w, 120);
    for (n, pair) in times.windows(2).enumerate() {
        let failures = n as u32 + 1;
        assert_eq!(
            pair[1] - pair[0],
            6.0 + throttle_delay(failures),
            "{times:?}"
        );
    }
    assert!(times.len() >= 4);
}

#[test]
fn a_task_that_ran_a_minute_then_exited_is_not_a_failed_start() {
    let mut w = World::new(1, 100, 200);
    w.crashing.push("d1".into());
    w.crash_after = 60.0;
    let times = attempt_times(&mut w, 400);
    // Each task runs 60 s, then one round later its replacement starts: no throttle.
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 61.0, "{times:?}");
    }
    assert!(times.len() >= 6);
    assert_eq!(w.service.throttle.failures, 0);
}

#[test]
fn a_health_check_replacement_is_not_a_failed_start() {
    let mut w = World::new(1, 100, 200);
    w.until_steady(10);
    for _ in 0..5 {
        // The task fails its health checks right away, and is replaced at once every time.
        for t in &mut w.tasks {
            if t.phase == TaskPhase::Running {
                t.health = TaskHealth::Unhealthy;
            }
        }
        let plan = w.round();
        assert_eq!(plan.stop.len(), 1);
        assert_eq!(plan.stop[0].1, REASON_UNHEALTHY);
        assert_eq!(plan.start, 1);
        w.round(); // stopped; the replacement RUNNING
        w.round();
    }
    let replaced = w.tasks.iter().filter(|t| t.unhealthy_stop).count();
    assert_eq!(replaced, 5);
    assert!(
        w.tasks
            .iter()
            .filter(|t| t.unhealthy_stop)
            .all(|t| t.failed)
    );
    assert_eq!(w.service.throttle.failures, 0);
}

#[test]
fn a_throttled_service_with_the_circuit_breaker_still_fails_its_deployment() {
    let mut w = World::new(1, 100, 200);
    w.service.circuit_breaker = true;
    w.unstartable.push("d1".into());
    let mut throttled = false;
    let mut failed_at = None;
    for round in 0..60 {
        let plan = w.round();
        throttled |= plan.wake_at.is_some();
        if plan.deployments[0].rollout == RolloutState::Failed {
            assert_eq!(plan.deployments[0].failed, failure_threshold(1));
            failed_at = Some(round);
            break;
        }
    }
    assert!(throttled, "the throttle held a start back on the way");
    // Attempts at once, +1, then +10 s: the third failure trips the breaker.
    let failed_at = failed_at.expect("the breaker tripped");
    assert!((12..20).contains(&failed_at), "round {failed_at}");
    for _ in 0..30 {
        assert_eq!(w.round().start, 0, "a failed deployment starts nothing");
    }
}

#[test]
fn a_throttled_daemon_service_holds_its_starts_too() {
    let mut w = daemon_world(&["i-a", "i-b"], 0);
    w.unstartable.push("d1".into());
    let first = w.round();
    assert_eq!(first.start_on.len(), 2);
    let second = w.round();
    assert_eq!(
        second.throttle.failures, 1,
        "both instances' tasks: one attempt"
    );
    assert_eq!(second.start_on.len(), 2);
    let third = w.round();
    assert_eq!(third.throttle.failures, 2);
    assert!(third.start_on.is_empty());
    assert_eq!(third.wake_at, Some(third.throttle.retry_at));
    assert_eq!(third.desired, Some(2), "the desired count is kept");
}

#[test]
fn protected_tasks_survive_a_scale_in_and_a_deployment_until_unprotected() {
    let mut w = World::new(4, 100, 200);
    w.until_steady(10);
    let protected: Vec<String> = w.tasks.iter().take(2).map(|t| t.id.clone()).collect();
    for t in &mut w.tasks {
        t.protected = protected.contains(&t.id);
    }
    // Scale in to 1: only the two unprotected tasks may go.
    w.service.desired_count = 1;
    let plan = w.round();
    let stopped: Vec<&String> = plan.stop.iter().map(|(id, _)| id).collect();
    assert_eq!(stopped.len(), 2, "{plan:?}");
    assert!(stopped.iter().all(|id| !protected.contains(id)));
    for _ in 0..5 {
        let plan = w.round();
        assert!(plan.stop.is_empty() && !plan.steady, "{plan:?}");
    }
    let live: Vec<String> = w.live().iter().map(|t| t.id.clone()).collect();
    assert_eq!(live, protected);

    // A deployment leaves the protected old ones running (and, at maximumPercent 200 of
    // 1, has no room to start its own task beside them).
    w.deploy("d2");
    for _ in 0..6 {
        let plan = w.round();
        assert!(
            plan.stop.iter().all(|(id, _)| !protected.contains(id)),
            "{plan:?}"
        );
    }
    let live: Vec<String> = w.live().iter().map(|t| t.id.clone()).collect();
    assert_eq!(live, protected);
    // Protection ends: the old tasks go and the deployment completes.
    for t in &mut w.tasks {
        t.protected = false;
    }
    // (Above maximumPercent while the protected tasks stayed: `until_steady`'s bounds do
    // not hold here.)
    assert!((0..10).any(|_| w.round().steady));
    assert_eq!(w.live().len(), 1);
    assert_eq!(w.live()[0].deployment, "d2");
}
