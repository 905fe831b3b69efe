//! The agent's reports of container and task state changes, as DescribeTasks will show them.

use berth_ecs::testing::World;
use berth_ecs::{ContainerChange, RunTask, TaskStateChange};
use berth_model::ecs::{ContainerStatus, TaskStatus};

/// A container that ran to completion before the task's last container started (a
/// non-essential `init` that `app` waits for with `dependsOn` COMPLETE) stays STOPPED with
/// its exit code when the task becomes RUNNING; containers the agent did not report
/// become RUNNING with the task.
#[test]
fn a_completed_container_stays_stopped_when_its_task_runs() {
    let w = World::new();
    w.instance(1024, 1024);
    w.register(
        r#"{"family":"f","containerDefinitions":[
            {"name":"init","image":"i","memory":32,"essential":false},
            {"name":"app","image":"i","memory":32,
             "dependsOn":[{"containerName":"init","condition":"COMPLETE"}]},
            {"name":"quiet","image":"i","memory":32}
        ]}"#,
    );
    let (ecs, scope) = (w.ecs, w.scope);
    let run = ecs
        .run_task(
            &scope,
            RunTask {
                task_definition: "f".into(),
                count: 1,
                ..RunTask::default()
            },
        )
        .unwrap();
    let id = run.tasks[0].id.clone();
    let status = |name: &str, status: &str, exit_code: Option<i64>| ContainerChange {
        name: name.into(),
        status: Some(status.into()),
        exit_code,
        ..ContainerChange::default()
    };
    let change = |status: &str, containers: Vec<ContainerChange>| TaskStateChange {
        task: id.clone(),
        status: status.into(),
        containers,
        ..TaskStateChange::default()
    };
    // init runs, exits 0 (reported on its own), then app starts and the task runs.
    ecs.submit_container_state_change(
        &scope,
        None,
        &id,
        ContainerChange {
            runtime_id: Some("abc123".into()),
            image_digest: None,
            ..status("init", "RUNNING", None)
        },
    )
    .unwrap();
    ecs.submit_container_state_change(&scope, None, &id, status("init", "STOPPED", Some(0)))
        .unwrap();
    let task = ecs
        .submit_task_state_change(
            &scope,
            None,
            change(
                "RUNNING",
                vec![
                    status("init", "STOPPED", Some(0)),
                    status("app", "RUNNING", None),
                ],
            ),
        )
        .unwrap();
    assert_eq!(task.last_status, TaskStatus::Running);
    let of = |name: &str| {
        task.containers
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(of("init").last_status, ContainerStatus::Stopped);
    assert_eq!(of("init").exit_code, Some(0));
    // The runtime id reported once stays with the container.
    assert_eq!(of("init").runtime_id.as_deref(), Some("abc123"));
    assert_eq!(of("app").last_status, ContainerStatus::Running);
    assert_eq!(of("quiet").last_status, ContainerStatus::Running);

    // STOPPED still stops them all.
    let task = ecs
        .submit_task_state_change(&scope, None, change("STOPPED", vec![]))
        .unwrap();
    assert!(
        task.containers
            .iter()
            .all(|c| c.last_status == ContainerStatus::Stopped)
    );
    assert_eq!(
        ecs.task(&scope, "default", &id)
            .unwrap()
            .unwrap()
            .containers,
        task.containers
    );
}
