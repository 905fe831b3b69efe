//! Services behind load balancers, the service scheduler's rounds against a fake ELBv2:
//! RUNNING tasks are registered on their host port, a failed RegisterTargets does not fail the
//! round and is tried again, a scale-in, a StopTask and a DeleteService drain first
//! (DEACTIVATING) and stop after the deregistration delay, a task that stopped by itself is
//! deregistered at once, an unhealthy target gets its task replaced past the grace period
//! (with ECS's event, once) and counts for the circuit breaker; CreateService's and
//! UpdateService's checks of `loadBalancers`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_ecs::service_load_balancers::{
    Target, TargetGroups, TargetGroupsError, TargetKind, TargetState,
};
use berth_ecs::service_scheduler::{RoundOutcome, ServiceRef};
use berth_ecs::{
    ContainerChange, CreateService, DeploymentCircuitBreaker, DeploymentConfiguration, Ecs,
    EcsError, ListTasksFilter, Task, TaskStateChange, UpdateService,
};
use berth_model::Scope;
use berth_model::ecs::{
    DesiredStatus, LoadBalancer, NetworkBinding, ServiceStatus, StopCode, TaskStatus,
};

const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";
/// A target group no load balancer forwards to.
const TG_ALONE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/alone/0123456789abcdef";

/// ELBv2 with the groups `TG` and `TG_ALONE`; a registered target is healthy unless its port
/// is in `unhealthy` (with ELBv2's description).
#[derive(Default)]
struct Fake {
    fail_register: std::sync::atomic::AtomicBool,
    delay: f64,
    calls: Mutex<Vec<String>>,
    registered: Mutex<Vec<Target>>,
    unhealthy: Mutex<HashMap<u16, String>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl TargetGroups for Fake {
    fn target_kind(
        &self,
        _: &Scope,
        group: &str,
    ) -> Result<Option<(TargetKind, bool)>, TargetGroupsError> {
        Ok(match group {
            TG => Some((TargetKind::Instance, true)),
            TG_ALONE => Some((TargetKind::Instance, false)),
            _ => None,
        })
    }
    fn register_targets(&self, _: &Scope, _: &str, t: &[Target]) -> Result<(), TargetGroupsError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("register {}:{}", t[0].id, t[0].port));
        if self
            .fail_register
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(TargetGroupsError("TargetGroupNotFound".into()));
        }
        self.registered.lock().unwrap().extend(t.iter().cloned());
        Ok(())
    }
    fn deregister_targets(
        &self,
        _: &Scope,
        _: &str,
        t: &[Target],
    ) -> Result<(), TargetGroupsError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("deregister {}:{}", t[0].id, t[0].port));
        self.registered.lock().unwrap().retain(|r| !t.contains(r));
        Ok(())
    }
    fn describe_target_health(
        &self,
        _: &Scope,
        _: &str,
        t: &[Target],
    ) -> Result<Vec<TargetState>, TargetGroupsError> {
        let registered = self.registered.lock().unwrap();
        let unhealthy = self.unhealthy.lock().unwrap();
        Ok(t.iter()
            .map(|t| match unhealthy.get(&t.port) {
                _ if !registered.contains(t) => TargetState::NotRegistered,
                Some(reason) => TargetState::Unhealthy(reason.clone()),
                None => TargetState::Healthy,
            })
            .collect())
    }
    fn deregistration_delay(&self, _: &Scope, _: &str) -> Result<f64, TargetGroupsError> {
        Ok(self.delay)
    }
}

struct W {
    ecs: Ecs,
    scope: Scope,
    service: ServiceRef,
}

fn world(fake: Arc<Fake>) -> W {
    world_with(fake, |_| {})
}

/// The service `web` (one task of `f`, behind `TG`) as `configure` makes it.
fn world_with(fake: Arc<Fake>, configure: impl FnOnce(&mut CreateService)) -> W {
    let w = berth_ecs::testing::World::new();
    let instance = w.instance(1024, 1024);
    let (ecs, scope) = (w.ecs.with_target_groups(fake), w.scope);
    ecs.agent_connected(&scope, "default", &instance.id)
        .unwrap();
    berth_ecs::testing::register(
        &ecs,
        &scope,
        r#"{"family":"f","containerDefinitions":[{"name":"app","image":"i","memory":32,
            "portMappings":[{"containerPort":8080,"hostPort":0}]}]}"#,
    );
    let mut create = CreateService {
        service_name: "web".into(),
        task_definition: Some("f".into()),
        desired_count: Some(1),
        load_balancers: vec![balancer(TG, "app", 8080)],
        ..CreateService::default()
    };
    configure(&mut create);
    ecs.create_service(&scope, create).unwrap();
    W {
        ecs,
        service: ServiceRef {
            scope: scope.clone(),
            cluster: "default".into(),
            name: "web".into(),
        },
        scope,
    }
}

fn balancer(group: &str, container: &str, port: i64) -> LoadBalancer {
    LoadBalancer {
        target_group_arn: Some(group.into()),
        container_name: Some(container.into()),
        container_port: Some(port),
        ..LoadBalancer::default()
    }
}

/// Starts the service's task and reports it RUNNING on host port 32768.
fn running(w: &W) -> String {
    w.ecs.reconcile_service(&w.service).unwrap();
    let task = w.ecs.tasks(&w.scope, Some("default")).unwrap().remove(0);
    report_running(w, &task.id, 32768);
    task.id
}

/// The agent's report: the task RUNNING, its container's port 8080 on `host_port`.
fn report_running(w: &W, id: &str, host_port: u16) {
    w.ecs
        .submit_task_state_change(
            &w.scope,
            None,
            TaskStateChange {
                task: id.to_owned(),
                status: "RUNNING".into(),
                containers: vec![ContainerChange {
                    name: "app".into(),
                    status: Some("RUNNING".into()),
                    network_bindings: vec![NetworkBinding {
                        bind_ip: "0.0.0.0".into(),
                        container_port: 8080,
                        host_port,
                        protocol: "tcp".into(),
                        ..NetworkBinding::default()
                    }],
                    ..ContainerChange::default()
                }],
                ..TaskStateChange::default()
            },
        )
        .unwrap();
}

/// The agent's report of a task it stopped.
fn report_stopped(w: &W, id: &str) {
    w.ecs
        .submit_task_state_change(
            &w.scope,
            None,
            TaskStateChange {
                task: id.to_owned(),
                status: "STOPPED".into(),
                ..TaskStateChange::default()
            },
        )
        .unwrap();
}

/// UpdateService of the world's service `web`.
fn update(w: &W, change: UpdateService) {
    w.ecs.update_service(&w.scope, None, "web", change).unwrap();
}

fn task(w: &W, id: &str) -> Task {
    w.ecs.task(&w.scope, "default", id).unwrap().unwrap()
}

fn events(w: &W) -> Vec<String> {
    w.ecs
        .service(&w.scope, Some("default"), "web")
        .unwrap()
        .events
        .iter()
        .map(|e| e.message.clone())
        .collect()
}

/// ListTasks of the cluster with `desiredStatus`.
fn listed(w: &W, desired: DesiredStatus) -> Vec<String> {
    let filter = ListTasksFilter {
        desired,
        container_instance: None,
        family: None,
        started_by: None,
        service_name: None,
        launch_type: None,
    };
    let (tasks, _) = w
        .ecs
        .list_tasks(&w.scope, "default", &filter, None, 100)
        .unwrap();
    tasks.into_iter().map(|t| t.id).collect()
}

#[test]
fn a_failed_register_targets_does_not_fail_the_round_and_is_tried_again() {
    let fake = Arc::new(Fake::default());
    fake.fail_register
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let w = world(fake.clone());
    let id = running(&w);
    for _ in 0..2 {
        let round = w.ecs.reconcile_service(&w.service);
        assert!(round.is_ok(), "the round failed: {round:?}");
    }
    // The targets are recorded on the task before ELBv2 hears of them.
    let task = w.ecs.task(&w.scope, "default", &id).unwrap().unwrap();
    assert_eq!(task.load_balancer_targets.len(), 1, "{task:#?}");
    assert_eq!(task.load_balancer_targets[0].target.port, 32768);
    assert!(fake.registered.lock().unwrap().is_empty());
    // ELBv2 answers again: the target that shows as not registered is registered.
    fake.fail_register
        .store(false, std::sync::atomic::Ordering::Relaxed);
    w.ecs.reconcile_service(&w.service).unwrap();
    let registered = fake.registered.lock().unwrap().clone();
    assert_eq!(registered.len(), 1, "{:?}", fake.calls());
    assert!(registered[0].id.starts_with("i-"));
    assert_eq!(registered[0].port, 32768);
}

#[test]
fn a_scale_in_drains_the_task_first_and_stops_it_after_the_delay() {
    let fake = Arc::new(Fake {
        delay: 0.5,
        ..Fake::default()
    });
    let w = world(fake.clone());
    let id = running(&w);
    w.ecs.reconcile_service(&w.service).unwrap();
    assert_eq!(fake.registered.lock().unwrap().len(), 1);
    update(
        &w,
        UpdateService {
            desired_count: Some(0),
            ..UpdateService::default()
        },
    );
    w.ecs.reconcile_service(&w.service).unwrap();
    // Deregistered, still RUNNING and wanted RUNNING: DEACTIVATING.
    let task = w.ecs.task(&w.scope, "default", &id).unwrap().unwrap();
    assert!(task.deactivating.is_some(), "{task:#?}");
    assert_eq!(format!("{:?}", task.desired_status), "Running");
    assert!(
        fake.registered.lock().unwrap().is_empty(),
        "{:?}",
        fake.calls()
    );
    // After the delay the scheduler stops it.
    std::thread::sleep(std::time::Duration::from_millis(600));
    w.ecs.reconcile_service(&w.service).unwrap();
    let task = w.ecs.task(&w.scope, "default", &id).unwrap().unwrap();
    assert_eq!(format!("{:?}", task.desired_status), "Stopped", "{task:#?}");
    let events: Vec<String> = w
        .ecs
        .service(&w.scope, Some("default"), "web")
        .unwrap()
        .events
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e == "(service web) has begun draining connections on 1 tasks."),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == &format!("(service web) deregistered 1 targets in (target-group {TG})")),
        "{events:#?}"
    );
}

#[test]
fn stop_task_drains_a_task_behind_a_load_balancer_before_it_stops() {
    let fake = Arc::new(Fake {
        delay: 1.0,
        ..Fake::default()
    });
    let w = world(fake.clone());
    let id = running(&w);
    w.ecs.reconcile_service(&w.service).unwrap();
    assert_eq!(fake.registered.lock().unwrap().len(), 1);

    // StopTask answers as ECS does (desired STOPPED, the user's stop), but the task only
    // leaves its target group: its agent keeps running it.
    let answer = w.ecs.stop_task(&w.scope, None, &id, None).unwrap();
    assert_eq!(answer.shown_desired_status(), DesiredStatus::Stopped);
    assert_eq!(answer.shown_last_status(), TaskStatus::Deactivating);
    assert_eq!(answer.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(
        answer.stopped_reason.as_deref(),
        Some("Task stopped by user")
    );
    assert!(answer.stopping_at.is_some());
    assert_eq!(answer.desired_status, DesiredStatus::Running, "{answer:#?}");
    assert!(
        fake.registered.lock().unwrap().is_empty(),
        "{:?}",
        fake.calls()
    );
    // ListTasks goes by the desired status ECS shows.
    assert!(!listed(&w, DesiredStatus::Running).contains(&id));
    assert!(listed(&w, DesiredStatus::Stopped).contains(&id));
    let said = events(&w);
    assert!(
        said.iter()
            .any(|e| e == "(service web) has begun draining connections on 1 tasks."),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|e| e == &format!("(service web) deregistered 1 targets in (target-group {TG})")),
        "{said:#?}"
    );
    // A second StopTask changes nothing.
    let again = w
        .ecs
        .stop_task(&w.scope, None, &id, Some("again".into()))
        .unwrap();
    assert_eq!(
        again.stopped_reason.as_deref(),
        Some("Task stopped by user")
    );

    // The service replaces it meanwhile; it still drains.
    w.ecs.reconcile_service(&w.service).unwrap();
    let tasks = w.ecs.tasks(&w.scope, Some("default")).unwrap();
    assert_eq!(tasks.len(), 2, "a replacement: {tasks:#?}");
    assert_eq!(task(&w, &id).shown_last_status(), TaskStatus::Deactivating);

    // After the deregistration delay the scheduler stops it: STOPPING, then STOPPED when
    // its agent says so, still the user's stop.
    std::thread::sleep(Duration::from_millis(1100));
    w.ecs.reconcile_service(&w.service).unwrap();
    let stopping = task(&w, &id);
    assert_eq!(stopping.desired_status, DesiredStatus::Stopped);
    assert_eq!(stopping.shown_last_status(), TaskStatus::Stopping);
    assert_eq!(stopping.stopping_at, answer.stopping_at);
    report_stopped(&w, &id);
    let stopped = task(&w, &id);
    assert_eq!(stopped.shown_last_status(), TaskStatus::Stopped);
    assert_eq!(stopped.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Task stopped by user")
    );
}

#[test]
fn stop_task_of_a_task_not_behind_a_load_balancer_stops_it_at_once() {
    let fake = Arc::new(Fake::default());
    let w = world(fake.clone());
    let id = running(&w);
    // Not registered yet (no round since it runs): nothing to drain.
    let answer = w.ecs.stop_task(&w.scope, None, &id, None).unwrap();
    assert_eq!(answer.desired_status, DesiredStatus::Stopped);
    assert!(answer.deactivating.is_none());
    assert_eq!(answer.shown_last_status(), TaskStatus::Running);
}

#[test]
fn an_unhealthy_target_replaces_its_task_with_one_event() {
    let fake = Arc::new(Fake::default());
    fake.unhealthy
        .lock()
        .unwrap()
        .insert(32768, "Health checks failed with these codes: [502]".into());
    let w = world(fake.clone());
    let id = running(&w);
    w.ecs.reconcile_service(&w.service).unwrap(); // registered
    let instance = task(&w, &id).load_balancer_targets[0].target.id.clone();
    for _ in 0..4 {
        w.ecs.reconcile_service(&w.service).unwrap();
    }
    let failed = task(&w, &id);
    assert_eq!(failed.desired_status, DesiredStatus::Stopped, "{failed:#?}");
    assert_eq!(
        failed.stopped_reason.as_deref(),
        Some(format!("Task failed ELB health checks in (target-group {TG})").as_str())
    );
    let expected = format!(
        "(service web) (task {id}) (instance {instance}) (port 32768) is unhealthy in (target-group {TG}) due to (reason Health checks failed with these codes: [502])."
    );
    let said = events(&w);
    assert_eq!(
        said.iter().filter(|e| **e == expected).count(),
        1,
        "{said:#?}"
    );
}

#[test]
fn an_unhealthy_target_inside_the_grace_period_is_not_replaced() {
    let fake = Arc::new(Fake::default());
    fake.unhealthy
        .lock()
        .unwrap()
        .insert(32768, "Request timed out".into());
    let w = world_with(fake.clone(), |c| {
        c.health_check_grace_period_seconds = Some(3600)
    });
    let id = running(&w);
    for _ in 0..4 {
        w.ecs.reconcile_service(&w.service).unwrap();
    }
    let kept = task(&w, &id);
    assert_eq!(kept.desired_status, DesiredStatus::Running);
    assert!(kept.deactivating.is_none(), "{kept:#?}");
    assert!(
        !events(&w).iter().any(|e| e.contains("is unhealthy in")),
        "{:#?}",
        events(&w)
    );
    // The grace period over, it goes.
    update(
        &w,
        UpdateService {
            health_check_grace_period_seconds: Some(0),
            ..UpdateService::default()
        },
    );
    w.ecs.reconcile_service(&w.service).unwrap();
    let replaced = task(&w, &id);
    assert!(replaced.deactivating.is_some(), "{replaced:#?}");
    assert!(
        events(&w)
            .iter()
            .any(|e| e.contains("is unhealthy in") && e.contains("(reason Request timed out).")),
        "{:#?}",
        events(&w)
    );
}

#[test]
fn delete_service_drains_its_tasks_before_they_stop() {
    let fake = Arc::new(Fake {
        delay: 1.0,
        ..Fake::default()
    });
    let w = world(fake.clone());
    let id = running(&w);
    w.ecs.reconcile_service(&w.service).unwrap();
    assert_eq!(fake.registered.lock().unwrap().len(), 1);
    let deleted = w.ecs.delete_service(&w.scope, None, "web", true).unwrap();
    assert_eq!(deleted.status, ServiceStatus::Draining);
    for _ in 0..2 {
        assert_eq!(
            w.ecs.reconcile_service(&w.service).unwrap(),
            RoundOutcome::Busy
        );
    }
    let draining = task(&w, &id);
    assert_eq!(draining.shown_last_status(), TaskStatus::Deactivating);
    assert_eq!(draining.desired_status, DesiredStatus::Running);
    assert!(fake.registered.lock().unwrap().is_empty());
    let said = events(&w);
    let drains = said
        .iter()
        .filter(|e| *e == "(service web) has begun draining connections on 1 tasks.")
        .count();
    assert_eq!(drains, 1, "said once: {said:#?}");
    assert!(
        said.iter()
            .any(|e| e == &format!("(service web) deregistered 1 targets in (target-group {TG})")),
        "{said:#?}"
    );
    // Drained: stopped, and once its agent says so the service is INACTIVE.
    std::thread::sleep(Duration::from_millis(1100));
    w.ecs.reconcile_service(&w.service).unwrap();
    let stopping = task(&w, &id);
    assert_eq!(stopping.desired_status, DesiredStatus::Stopped);
    assert_eq!(
        stopping.stop_code,
        Some(StopCode::ServiceSchedulerInitiated)
    );
    report_stopped(&w, &id);
    assert_eq!(
        w.ecs.reconcile_service(&w.service).unwrap(),
        RoundOutcome::Gone
    );
    let gone = w.ecs.service(&w.scope, Some("default"), "web").unwrap();
    assert_eq!(gone.status, ServiceStatus::Inactive);
}

#[test]
fn targets_that_never_turn_healthy_trip_the_circuit_breaker_and_roll_back() {
    let fake = Arc::new(Fake::default());
    let w = world_with(fake.clone(), |c| {
        c.deployment_configuration = Some(DeploymentConfiguration {
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: true,
                rollback: true,
            }),
            maximum_percent: None,
            minimum_healthy_percent: None,
            alarms: None,
        });
    });
    running(&w);
    for _ in 0..3 {
        w.ecs.reconcile_service(&w.service).unwrap();
    }
    let first = w
        .ecs
        .service(&w.scope, Some("default"), "web")
        .unwrap()
        .deployments
        .remove(0);
    assert_eq!(
        format!("{:?}", first.rollout_state),
        "Completed",
        "{first:#?}"
    );

    // Revision 2's tasks listen on ports ELBv2 finds unhealthy.
    berth_ecs::testing::register(
        &w.ecs,
        &w.scope,
        r#"{"family":"f","containerDefinitions":[{"name":"app","image":"i2","memory":32,
            "portMappings":[{"containerPort":8080,"hostPort":0}]}]}"#,
    );
    update(
        &w,
        UpdateService {
            task_definition: Some("f:2".into()),
            ..UpdateService::default()
        },
    );
    let mut port = 40000;
    let mut rounds = 0;
    let rolled_back = loop {
        rounds += 1;
        assert!(rounds < 60, "no rollback: {:#?}", events(&w));
        w.ecs.reconcile_service(&w.service).unwrap();
        // The agent's part: new tasks run, stopped ones stop.
        for t in w.ecs.tasks(&w.scope, Some("default")).unwrap() {
            if t.last_status == TaskStatus::Provisioning
                && t.desired_status == DesiredStatus::Running
            {
                port += 1;
                if t.task_definition_arn.ends_with(":2") {
                    fake.unhealthy
                        .lock()
                        .unwrap()
                        .insert(port, "Health checks failed".into());
                }
                report_running(&w, &t.id, port);
            } else if t.desired_status == DesiredStatus::Stopped && t.is_live() {
                report_stopped(&w, &t.id);
            }
        }
        let service = w.ecs.service(&w.scope, Some("default"), "web").unwrap();
        if service.task_definition.ends_with(":1") {
            break service;
        }
    };
    let failed = rolled_back
        .deployments
        .iter()
        .find(|d| d.task_definition.ends_with(":2"))
        .expect("the failed deployment is still listed");
    assert_eq!(format!("{:?}", failed.rollout_state), "Failed");
    assert_eq!(
        failed.rollout_state_reason,
        format!(
            "ECS deployment circuit breaker: tasks failed to start. Rolling back to deployment {}.",
            first.id
        )
    );
    assert!(failed.failed_tasks >= 3, "{failed:#?}");
    let said = events(&w);
    assert!(
        said.iter()
            .any(|e| e == &format!("(service web) rolling back to deployment {}.", first.id)),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|e| e.contains("is unhealthy in")),
        "{said:#?}"
    );
}

#[test]
fn load_balancers_are_checked_with_ecs_messages() {
    let fake = Arc::new(Fake::default());
    let w = world(fake);
    let create = |l: LoadBalancer| {
        w.ecs.create_service(
            &w.scope,
            CreateService {
                service_name: "api".into(),
                task_definition: Some("f".into()),
                desired_count: Some(1),
                load_balancers: vec![l],
                ..CreateService::default()
            },
        )
    };
    let update = |l: LoadBalancer| {
        w.ecs.update_service(
            &w.scope,
            None,
            "web",
            UpdateService {
                load_balancers: Some(vec![l]),
                ..UpdateService::default()
            },
        )
    };
    let unknown =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/nope/0123456789abcdef";
    let cases = [
        (
            balancer(TG, "nope", 8080),
            "The container nope does not exist in the task definition.".to_owned(),
        ),
        (
            balancer(TG, "app", 9090),
            "The container app did not have a container port 9090 defined.".to_owned(),
        ),
        (
            balancer(unknown, "app", 8080),
            "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.".to_owned(),
        ),
        (
            balancer(TG_ALONE, "app", 8080),
            format!("The target group with targetGroupArn {TG_ALONE} does not have an associated load balancer."),
        ),
    ];
    for (l, message) in cases {
        for answer in [create(l.clone()).map(|_| ()), update(l).map(|_| ())] {
            match answer {
                Err(EcsError::InvalidParameter(m)) => assert_eq!(m, message),
                other => panic!("expected {message:?}, got {other:?}"),
            }
        }
    }
}
