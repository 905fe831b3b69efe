//! Services behind load balancers, the service scheduler's rounds against a fake ELBv2:
//! RUNNING tasks are registered on their host port, a failed RegisterTargets does not fail the
//! round and is tried again, a scale-in drains first (DEACTIVATING) and stops after the
//! deregistration delay, a task that stopped by itself is deregistered at once.

use std::sync::{Arc, Mutex};

use berth_ecs::service_load_balancers::{
    Target, TargetGroups, TargetGroupsError, TargetKind, TargetState,
};
use berth_ecs::service_scheduler::ServiceRef;
use berth_ecs::{ContainerChange, CreateService, Ecs, TaskStateChange, UpdateService};
use berth_model::Scope;
use berth_model::ecs::{LoadBalancer, NetworkBinding};

const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";

#[derive(Default)]
struct Fake {
    fail_register: std::sync::atomic::AtomicBool,
    delay: f64,
    calls: Mutex<Vec<String>>,
    registered: Mutex<Vec<Target>>,
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
        _: &str,
    ) -> Result<Option<(TargetKind, bool)>, TargetGroupsError> {
        Ok(Some((TargetKind::Instance, true)))
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
        Ok(t.iter()
            .map(|t| {
                if registered.contains(t) {
                    TargetState::Healthy
                } else {
                    TargetState::NotRegistered
                }
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
    ecs.create_service(
        &scope,
        CreateService {
            service_name: "web".into(),
            task_definition: Some("f".into()),
            desired_count: Some(1),
            load_balancers: vec![LoadBalancer {
                target_group_arn: Some(TG.into()),
                container_name: Some("app".into()),
                container_port: Some(8080),
                ..LoadBalancer::default()
            }],
            ..CreateService::default()
        },
    )
    .unwrap();
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

/// Starts the service's task and reports it RUNNING on host port 32768.
fn running(w: &W) -> String {
    w.ecs.reconcile_service(&w.service).unwrap();
    let task = w.ecs.tasks(&w.scope, Some("default")).unwrap().remove(0);
    w.ecs
        .submit_task_state_change(
            &w.scope,
            None,
            TaskStateChange {
                task: task.id.clone(),
                status: "RUNNING".into(),
                containers: vec![ContainerChange {
                    name: "app".into(),
                    status: Some("RUNNING".into()),
                    network_bindings: vec![NetworkBinding {
                        bind_ip: "0.0.0.0".into(),
                        container_port: 8080,
                        host_port: 32768,
                        protocol: "tcp".into(),
                        ..NetworkBinding::default()
                    }],
                    ..ContainerChange::default()
                }],
                ..TaskStateChange::default()
            },
        )
        .unwrap();
    task.id
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
    w.ecs
        .update_service(
            &w.scope,
            None,
            "web",
            UpdateService {
                desired_count: Some(0),
                ..UpdateService::default()
            },
        )
        .unwrap();
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
