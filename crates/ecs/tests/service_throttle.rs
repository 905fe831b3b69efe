//! The service throttle through the reconciler, round by round over an in-memory store: a
//! service whose tasks fail to start is retried at once after one failed attempt, held back
//! after the second (the round waits instead of working, writes nothing more, and says so
//! once in the service's events), and an UpdateService takes it out of the back-off.

use std::sync::Arc;

use berth_ecs::service_scheduler::{RoundOutcome, ServiceRef};
use berth_ecs::{ContainerChange, CreateService, Ecs, Task, TaskStateChange, UpdateService};
use berth_model::Scope;
use berth_model::ecs::StopCode;
use berth_store::{MemStore, Store};

const THROTTLED: &str = "(service web) is unable to consistently start tasks successfully.";

struct World {
    ecs: Ecs,
    store: Arc<MemStore>,
    scope: Scope,
    service: ServiceRef,
}

impl World {
    fn new() -> World {
        let w = berth_ecs::testing::World::new();
        let instance = w.instance(1024, 1024);
        let (ecs, store, scope) = (w.ecs, w.store, w.scope);
        // Its agent is connected: the service's tasks there are not lost.
        ecs.agent_connected(&scope, "default", &instance.id)
            .unwrap();
        berth_ecs::testing::register(
            &ecs,
            &scope,
            r#"{"family":"f","containerDefinitions":[{"name":"app","image":"i","memory":32}]}"#,
        );
        ecs.create_service(
            &scope,
            CreateService {
                service_name: "web".into(),
                task_definition: Some("f".into()),
                desired_count: Some(1),
                ..CreateService::default()
            },
        )
        .unwrap();
        World {
            ecs,
            store,
            service: ServiceRef {
                scope: scope.clone(),
                cluster: "default".into(),
                name: "web".into(),
            },
            scope,
        }
    }

    /// One reconciler round. Rounds here follow each other within microseconds, and the
    /// store's timestamps have milliseconds: a failure stamped in the same millisecond as the
    /// last counted one counts with it (one attempt), so each round starts on a new one.
    fn round(&self) -> RoundOutcome {
        std::thread::sleep(std::time::Duration::from_millis(2));
        self.ecs.reconcile_service(&self.service).unwrap()
    }

    fn live(&self) -> Vec<Task> {
        self.ecs
            .tasks(&self.scope, Some("default"))
            .unwrap()
            .into_iter()
            .filter(|t| t.last_status.is_live())
            .collect()
    }

    /// The agent reports the live task STOPPED before it ever ran (a failed image pull).
    fn fail_to_start(&self) -> Task {
        let live = self.live();
        assert_eq!(live.len(), 1, "{live:#?}");
        self.ecs
            .submit_task_state_change(
                &self.scope,
                None,
                TaskStateChange {
                    task: live[0].id.clone(),
                    status: "STOPPED".into(),
                    reason: Some("CannotPullContainerError: not found".into()),
                    ..TaskStateChange::default()
                },
            )
            .unwrap()
    }

    fn events(&self) -> Vec<String> {
        let service = self.ecs.service(&self.scope, None, "web").unwrap();
        service.events.iter().map(|e| e.message.clone()).collect()
    }
}

#[test]
fn a_service_whose_tasks_fail_to_start_is_held_back_until_an_update() {
    let w = World::new();
    assert_eq!(w.round(), RoundOutcome::Busy);
    let stopped = w.fail_to_start();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));

    // One failed attempt: replaced at once.
    assert_eq!(w.round(), RoundOutcome::Busy);
    assert_eq!(w.live().len(), 1);
    let service = w.ecs.service(&w.scope, None, "web").unwrap();
    assert_eq!(service.throttle.failures, 1);
    assert!(!w.events().iter().any(|e| e == THROTTLED));

    // Two: held back 10 s after the failure, said once.
    let stopped = w.fail_to_start();
    let outcome = w.round();
    let service = w.ecs.service(&w.scope, None, "web").unwrap();
    assert_eq!(service.throttle.failures, 2);
    let retry_at = stopped.stopped_at.unwrap() + 10.0;
    assert_eq!(service.throttle.retry_at, retry_at);
    assert_eq!(outcome, RoundOutcome::Wait(retry_at));
    assert!(w.live().is_empty(), "nothing started");
    assert_eq!(w.events().iter().filter(|e| *e == THROTTLED).count(), 1);
    assert!(!service.steady);

    // Waiting: another round does the same and writes nothing.
    let revision = w.store.current_revision().unwrap();
    assert_eq!(w.round(), RoundOutcome::Wait(retry_at));
    assert_eq!(w.store.current_revision().unwrap(), revision);

    // Any UpdateService ends the back-off at once.
    w.ecs
        .update_service(&w.scope, None, "web", UpdateService::default())
        .unwrap();
    let service = w.ecs.service(&w.scope, None, "web").unwrap();
    assert_eq!(
        (service.throttle.failures, service.throttle.retry_at),
        (0, 0.0)
    );
    assert_eq!(w.round(), RoundOutcome::Busy);
    assert_eq!(w.live().len(), 1, "started again");

    // Throttled again within 15 minutes: not said twice.
    w.fail_to_start();
    w.round();
    w.fail_to_start();
    assert!(matches!(w.round(), RoundOutcome::Wait(_)));
    assert_eq!(w.events().iter().filter(|e| *e == THROTTLED).count(), 1);
}

#[test]
fn a_task_whose_container_ran_stops_with_essential_container_exited() {
    let w = World::new();
    let change = |id: &str, status: &str, containers: Vec<ContainerChange>| TaskStateChange {
        task: id.to_owned(),
        status: status.into(),
        containers,
        ..TaskStateChange::default()
    };
    // Reported RUNNING, then STOPPED.
    w.round();
    let id = w.live()[0].id.clone();
    w.ecs
        .submit_task_state_change(&w.scope, None, change(&id, "RUNNING", vec![]))
        .unwrap();
    let stopped = w
        .ecs
        .submit_task_state_change(&w.scope, None, change(&id, "STOPPED", vec![]))
        .unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    // Its container exited before the agent reported the task RUNNING: STOPPED only, with
    // the exit code. It ran, so not TaskFailedToStart (the throttle counts it all the same).
    w.round();
    let id = w.live()[0].id.clone();
    let exited = ContainerChange {
        name: "app".into(),
        status: Some("STOPPED".into()),
        exit_code: Some(1),
        ..ContainerChange::default()
    };
    let stopped = w
        .ecs
        .submit_task_state_change(&w.scope, None, change(&id, "STOPPED", vec![exited]))
        .unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(stopped.started_at, None);
    w.round();
    let service = w.ecs.service(&w.scope, None, "web").unwrap();
    assert_eq!(service.throttle.failures, 2);
}
