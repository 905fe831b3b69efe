//! RunTask's overrides of task and container cpu and memory are what placement reserves on
//! the instance and what the task shows, as the agent applies them.

use berth_ecs::testing::World;
use berth_ecs::{Ecs, RunTask};
use berth_model::Scope;
use serde_json::json;

/// The default cluster with one instance of 4096 CPU units and 4096 MiB.
fn world() -> (Ecs, Scope) {
    let w = World::new();
    w.instance(4096, 4096);
    (w.ecs, w.scope)
}

fn register(ecs: &Ecs, scope: &Scope, definition: serde_json::Value) {
    berth_ecs::testing::register(ecs, scope, &definition.to_string());
}

fn overrides(json: serde_json::Value) -> berth_model::ecs::TaskOverride {
    serde_json::from_value(json).unwrap()
}

fn remaining(ecs: &Ecs, scope: &Scope) -> (i64, i64) {
    let instance = ecs.container_instances(scope, None).unwrap().remove(0);
    (instance.remaining.cpu, instance.remaining.memory)
}

#[test]
fn task_level_overrides_are_reserved_and_shown() {
    let (ecs, scope) = world();
    register(
        &ecs,
        &scope,
        json!({"family": "t", "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "app", "image": "i"}]}),
    );
    let run = ecs
        .run_task(
            &scope,
            RunTask {
                task_definition: "t".into(),
                count: 1,
                overrides: Some(overrides(json!({"cpu": "1024", "memory": "2048"}))),
                ..RunTask::default()
            },
        )
        .unwrap();
    let task = &run.tasks[0];
    assert_eq!((task.cpu.as_str(), task.memory.as_str()), ("1024", "2048"));
    assert_eq!(remaining(&ecs, &scope), (4096 - 1024, 4096 - 2048));
}

#[test]
fn container_overrides_are_reserved_when_the_task_sets_no_size() {
    let (ecs, scope) = world();
    register(
        &ecs,
        &scope,
        json!({"family": "c", "containerDefinitions": [
            {"name": "app", "image": "i", "cpu": 128, "memory": 256},
            {"name": "side", "image": "i", "cpu": 64, "memoryReservation": 64}
        ]}),
    );
    ecs.run_task(
        &scope,
        RunTask {
            task_definition: "c".into(),
            count: 1,
            overrides: Some(overrides(json!({"containerOverrides": [
                {"name": "app", "cpu": 512, "memory": 1024},
                {"name": "side", "memoryReservation": 128}
            ]}))),
            ..RunTask::default()
        },
    )
    .unwrap();
    assert_eq!(
        remaining(&ecs, &scope),
        (4096 - 512 - 64, 4096 - 1024 - 128)
    );
}
