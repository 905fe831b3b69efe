//! Fixtures for tests of the ECS domain (this crate's unit tests, and its integration tests
//! through the `testing` feature): an `Ecs` over an in-memory store with the default
//! cluster, instances of a given size, task definitions from JSON, tasks run.

use std::sync::Arc;

use berth_model::Scope;
use berth_model::task_definition::RegisterTaskDefinitionRequest;
use berth_store::MemStore;

use crate::{
    ContainerInstance, CreateCluster, Ecs, RegisterContainerInstance, Resources, RunTask,
    RunTaskOutcome, StoredTaskDefinition,
};

/// An `Ecs` over its own in-memory store, in the default account and region, with the
/// `default` cluster created.
pub struct World {
    pub ecs: Ecs,
    pub store: Arc<MemStore>,
    pub scope: Scope,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        let store = Arc::new(MemStore::new());
        let ecs = Ecs::new(store.clone());
        let scope = Scope::default_installation();
        ecs.create_cluster(&scope, CreateCluster::default())
            .expect("the default cluster");
        World { ecs, store, scope }
    }

    /// Registers a container instance in `default` with `cpu` units and `memory` MiB.
    pub fn instance(&self, cpu: i64, memory: i64) -> ContainerInstance {
        self.ecs
            .register_container_instance(
                &self.scope,
                RegisterContainerInstance {
                    total: Resources {
                        cpu,
                        memory,
                        ..Resources::default()
                    },
                    ..RegisterContainerInstance::default()
                },
            )
            .expect("an instance")
    }

    /// Registers the task definition `json` (RegisterTaskDefinition's body).
    pub fn register(&self, json: &str) -> StoredTaskDefinition {
        register(&self.ecs, &self.scope, json)
    }

    /// RunTask of `count` tasks of `family` in `default`.
    pub fn run(&self, family: &str, count: u32) -> RunTaskOutcome {
        self.ecs
            .run_task(
                &self.scope,
                RunTask {
                    task_definition: family.into(),
                    count,
                    ..RunTask::default()
                },
            )
            .expect("RunTask")
    }
}

/// Registers the task definition `json` (RegisterTaskDefinition's body) in `scope`.
pub fn register(ecs: &Ecs, scope: &Scope, json: &str) -> StoredTaskDefinition {
    let td: RegisterTaskDefinitionRequest = serde_json::from_str(json).expect("a task definition");
    ecs.register_task_definition(scope, &td)
        .expect("registered")
}
