//! Records written by an earlier version stay readable: `fixtures/stored-0af7741.json` is
//! every ECS key of a store written by commit 0af7741 (before the domain records were typed:
//! a cluster with its configuration, an instance with its agent's version, a task with
//! every kind of override and a container's network binding, services with alarms, load
//! balancers, service registries, an awsvpc network configuration and an event). Each record
//! reads into its domain type and writes back as the same JSON, and the API works over them.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_ecs::service_scheduler::ServiceRef;
use berth_ecs::{Cluster, ContainerInstance, Ecs, Service, StoredTaskDefinition, Task};
use berth_model::Scope;
use berth_model::ecs::TaskStatus;
use berth_store::{MemStore, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture() -> BTreeMap<String, Value> {
    serde_json::from_str(include_str!("fixtures/stored-0af7741.json")).unwrap()
}

/// The record kind: the key's part after `ecs/{account}/{region}/`.
fn kind(key: &str) -> &str {
    key.split('/').nth(3).unwrap()
}

fn round_trip<T: DeserializeOwned + Serialize>(key: &str, stored: &Value) -> usize {
    let record: T = serde_json::from_value(stored.clone())
        .unwrap_or_else(|e| panic!("{key} does not read: {e}"));
    let written = serde_json::to_value(&record).unwrap();
    assert_eq!(&written, stored, "{key} is written back differently");
    1
}

#[test]
fn every_record_reads_and_writes_back_unchanged() {
    let mut checked = BTreeMap::<&str, usize>::new();
    let records = fixture();
    for (key, stored) in &records {
        let n = match kind(key) {
            "cluster" => round_trip::<Cluster>(key, stored),
            "instance" => round_trip::<ContainerInstance>(key, stored),
            "task" => round_trip::<Task>(key, stored),
            "service" => round_trip::<Service>(key, stored),
            "taskdef" => round_trip::<StoredTaskDefinition>(key, stored),
            _ => 0,
        };
        *checked.entry(kind(key)).or_default() += n;
    }
    let expected = [
        ("cluster", 1),
        ("instance", 1),
        ("service", 2),
        ("task", 2),
        ("taskdef", 2),
    ];
    for (kind, n) in expected {
        assert_eq!(
            checked.get(kind),
            Some(&n),
            "{kind} records checked: {checked:?}"
        );
    }
}

/// The fixture loaded into a store, as a server restarted on it would find it.
fn restored() -> (Ecs, Scope) {
    let store = Arc::new(MemStore::new());
    for (key, stored) in fixture() {
        // Index entries hold a bare status, not JSON.
        let bytes = match stored.get("raw") {
            Some(Value::String(raw)) => raw.clone().into_bytes(),
            _ => serde_json::to_vec(&stored).unwrap(),
        };
        store.put(&key, &bytes).unwrap();
    }
    let scope = Scope::default_installation();
    (Ecs::new(store), scope)
}

#[test]
fn the_api_works_over_a_store_written_by_the_earlier_version() {
    let (ecs, scope) = restored();
    let tasks = ecs.tasks(&scope, Some("default")).unwrap();
    assert_eq!(tasks.len(), 2);
    let running = tasks
        .iter()
        .find(|t| t.last_status == TaskStatus::Running)
        .expect("the task the agent reported RUNNING");
    assert_eq!(
        (running.cpu.as_str(), running.memory.as_str()),
        ("512", "1024")
    );
    let service = ecs.service(&scope, None, "web").unwrap();
    assert_eq!(service.events.len(), 1);
    // The service scheduler and StopTask act on the old records.
    ecs.reconcile_service(&ServiceRef {
        scope: scope.clone(),
        cluster: "default".into(),
        name: "web".into(),
    })
    .unwrap();
    let stopped = ecs
        .stop_task(&scope, None, &running.id, Some("done".into()))
        .unwrap();
    assert_eq!(stopped.stopped_reason.as_deref(), Some("done"));
}
