use std::sync::Arc;

use berth_model::task_definition::RegisterTaskDefinitionRequest;

use super::*;
use berth_model::ecs::{AttachmentStatus, TaskStatus};
use berth_store::TxnOutcome;

use crate::instances::ContainerInstance;
use crate::keys::{client_token_key, instance_tasks_prefix};
use crate::testing::World;
use crate::{CreateCluster, RegisterContainerInstance, Resources};

#[test]
fn stopped_tasks_are_reaped_after_their_time() {
    let (ecs, scope) = default_cluster_with_family_f(1024);
    let run = ecs
        .run_task(
            &scope,
            RunTask {
                task_definition: "f".into(),
                count: 2,
                client_token: Some("kept".into()),
                ..RunTask::default()
            },
        )
        .unwrap();
    assert_eq!(run.tasks.len(), 2);
    let once = ecs
        .run_task(
            &scope,
            RunTask {
                task_definition: "f".into(),
                count: 1,
                client_token: Some("forgotten".into()),
                ..RunTask::default()
            },
        )
        .unwrap();
    ecs.stop_task(&scope, None, &run.tasks[0].id, None).unwrap();
    ecs.stop_task(&scope, None, &once.tasks[0].id, None)
        .unwrap();
    // Just stopped: kept.
    assert_eq!(ecs.reap_stopped_tasks(3600.0).unwrap(), 0);
    // Old enough: the stopped ones go, the live one stays.
    assert_eq!(ecs.reap_stopped_tasks(-1.0).unwrap(), 2);
    let left = ecs.tasks(&scope, None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, run.tasks[1].id);
    // A client token goes with the last of its tasks.
    let token = |t: &str| {
        ecs.store
            .get(&client_token_key(&scope, "default", t))
            .unwrap()
    };
    assert!(token("kept").is_some());
    assert!(token("forgotten").is_none());
}

/// awsvpc tasks: each gets its own address in its subnet, shown as an ENI attachment;
/// an address comes free when its task stops, and a restarted control plane (a new
/// `Ecs` over the same store) never hands out one that is held.
#[test]
fn awsvpc_tasks_get_distinct_addresses_released_on_stop() {
    let w = World::new();
    let instance = w.instance(4096, 4096);
    w.register(
        r#"{"family":"vpc","networkMode":"awsvpc","containerDefinitions":[
            {"name":"web","image":"i","memory":64,"portMappings":[{"containerPort":8080}]}]}"#,
    );
    let (ecs, scope, store) = (&w.ecs, &w.scope, w.store.clone());
    let network = NetworkConfiguration {
        awsvpc_configuration: Some(crate::AwsVpcConfiguration {
            subnets: vec!["subnet-0abc".into()],
            security_groups: vec!["sg-default".into()],
            assign_public_ip: Some("DISABLED".into()),
        }),
    };
    let run = |ecs: &Ecs, count| {
        ecs.run_task(
            scope,
            RunTask {
                task_definition: "vpc".into(),
                count,
                network_configuration: Some(network.clone()),
                ..RunTask::default()
            },
        )
        .unwrap()
        .tasks
    };
    let address = |t: &Task| {
        t.eni()
            .unwrap()
            .detail("privateIPv4Address")
            .unwrap()
            .to_string()
    };
    let subnet = ecs.ensure_subnet(scope, "subnet-0abc").unwrap();

    let first = run(ecs, 3);
    let mut ips: Vec<String> = first.iter().map(address).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "{ips:?}");
    for t in &first {
        let eni = t.eni().unwrap();
        assert_eq!(eni.status, AttachmentStatus::Precreated);
        assert!(subnet.contains(address(t).parse().unwrap()));
        assert_eq!(t.containers[0].network_interfaces[0].attachment_id, eni.id);
        // awsvpc host ports are the task's own: nothing is reserved on the instance.
        assert!(t.reservation.tcp_ports.is_empty());
    }
    // StartTask takes addresses the same way.
    let started = ecs
        .run_task(
            scope,
            RunTask {
                task_definition: "vpc".into(),
                count: 1,
                container_instances: Some(vec![instance.id.clone()]),
                network_configuration: Some(network.clone()),
                ..RunTask::default()
            },
        )
        .unwrap()
        .tasks;
    assert!(!ips.contains(&address(&started[0])));

    // RUNNING: attached; STOPPED: deleted, and the address is free again.
    let arn = first[0].eni().unwrap().arn(scope);
    ecs.submit_task_state_change(
        scope,
        None,
        TaskStateChange {
            task: first[0].id.clone(),
            status: "RUNNING".into(),
            attachments: vec![(arn, AttachmentStatus::Attached)],
            ..TaskStateChange::default()
        },
    )
    .unwrap();
    let running = ecs.task(scope, "default", &first[0].id).unwrap().unwrap();
    assert_eq!(running.eni().unwrap().status, AttachmentStatus::Attached);
    let stopped = ecs.stop_task(scope, None, &first[0].id, None).unwrap();
    assert_eq!(stopped.eni().unwrap().status, AttachmentStatus::Attached); // until the agent says STOPPED
    let stopped = ecs
        .submit_task_state_change(
            scope,
            None,
            TaskStateChange {
                task: first[0].id.clone(),
                status: "STOPPED".into(),
                ..TaskStateChange::default()
            },
        )
        .unwrap();
    assert_eq!(stopped.eni().unwrap().status, AttachmentStatus::Deleted);

    // A restarted control plane: the held addresses stay held, the freed one is reused.
    let restarted = Ecs::new(store);
    let again = run(&restarted, 1);
    assert_eq!(address(&again[0]), address(&first[0]));
    let held: Vec<String> = first[1..].iter().chain(&started).map(address).collect();
    let more = run(&restarted, 2);
    for t in &more {
        assert!(!held.contains(&address(t)) && address(t) != address(&again[0]));
    }
}

/// A network configuration is checked against the definition's network mode.
#[test]
fn network_configuration_follows_the_network_mode() {
    let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
    let scope = Scope::default_installation();
    ecs.create_cluster(&scope, CreateCluster::default())
        .unwrap();
    for (family, mode) in [("vpc", "awsvpc"), ("br", "bridge")] {
        let td: RegisterTaskDefinitionRequest = serde_json::from_value(serde_json::json!({
            "family": family, "networkMode": mode,
            "containerDefinitions": [{"name": "c", "image": "i", "memory": 64}]
        }))
        .unwrap();
        ecs.register_task_definition(&scope, &td).unwrap();
    }
    let run = |family: &str, network_configuration| match ecs.run_task(
        &scope,
        RunTask {
            task_definition: family.into(),
            count: 1,
            network_configuration,
            ..RunTask::default()
        },
    ) {
        Err(EcsError::InvalidParameter(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        run("vpc", None),
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    assert_eq!(
        run(
            "br",
            Some(NetworkConfiguration {
                awsvpc_configuration: Some(crate::AwsVpcConfiguration {
                    subnets: vec!["subnet-1".into()],
                    ..Default::default()
                }),
            })
        ),
        "Network Configuration is not valid for the given networkMode of this task definition."
    );
}

/// The placement view follows instances registered, drained and filled after it was
/// built (through the store watch).
#[test]
fn placement_view_follows_the_store() {
    let w = World::new();
    let (ecs, scope) = (&w.ecs, &w.scope);
    let register = |memory| w.instance(1024, memory);
    let small = register(128);
    w.register(r#"{"family":"f","containerDefinitions":[{"name":"c","image":"i","memory":100}]}"#);
    let run = |count| {
        ecs.run_task(
            scope,
            RunTask {
                task_definition: "f".into(),
                count,
                ..RunTask::default()
            },
        )
        .unwrap()
    };
    // Builds the view; the small instance takes one task and is then full.
    assert_eq!(
        run(1).tasks[0].container_instance_id.as_deref(),
        Some(small.id.as_str())
    );
    assert_eq!(run(1).tasks.len(), 0);
    // A new instance appears in the view without a restart.
    let big = register(1024);
    let placed = run(2);
    assert_eq!(placed.tasks.len(), 2);
    assert!(
        placed
            .tasks
            .iter()
            .all(|t| t.container_instance_id.as_deref() == Some(big.id.as_str()))
    );
    // Drained instances leave the candidates.
    ecs.update_container_instance_state(scope, None, &big.id, crate::InstanceStatus::Draining)
        .unwrap();
    ecs.refresh_placement_views().unwrap();
    assert_eq!(run(1).tasks.len(), 0);
}

/// The `default` cluster with one instance of `size` CPU units and MiB, and task
/// definition family `f` (one 64 MiB container).
fn default_cluster_with_family_f(size: i64) -> (Ecs, Scope) {
    let w = World::new();
    w.instance(size, size);
    w.register(r#"{"family":"f","containerDefinitions":[{"name":"c","image":"i","memory":64}]}"#);
    (w.ecs, w.scope)
}

/// A cluster of `n` instances (1024 CPU, 1024 MiB each) and a task definition `f`
/// needing 100 MiB.
fn cluster_of(ecs: &Ecs, n: usize) -> Vec<ContainerInstance> {
    let scope = Scope::default_installation();
    ecs.create_cluster(&scope, CreateCluster::default())
        .unwrap();
    let td: RegisterTaskDefinitionRequest = serde_json::from_str(
        r#"{"family":"f","containerDefinitions":[{"name":"c","image":"i","memory":100}]}"#,
    )
    .unwrap();
    ecs.register_task_definition(&scope, &td).unwrap();
    (0..n)
        .map(|_| {
            ecs.register_container_instance(
                &scope,
                RegisterContainerInstance {
                    total: Resources {
                        cpu: 1024,
                        memory: 1024,
                        ..Resources::default()
                    },
                    ..RegisterContainerInstance::default()
                },
            )
            .unwrap()
        })
        .collect()
}

fn run_one(ecs: &Ecs) -> RunTaskOutcome {
    ecs.run_task(
        &Scope::default_installation(),
        RunTask {
            task_definition: "f".into(),
            count: 1,
            ..RunTask::default()
        },
    )
    .unwrap()
}

/// Every instance's record against the live tasks that name it.
fn assert_records_match_tasks(ecs: &Ecs) {
    let scope = Scope::default_installation();
    let tasks = ecs.tasks(&scope, None).unwrap();
    for kv in ecs
        .store
        .range(&crate::keys::instances_prefix(&scope, "default"), None, 0)
        .unwrap()
    {
        let instance = ecs.with_task_counts(&scope, decode(&kv).unwrap()).unwrap();
        let on_it = tasks
            .iter()
            .filter(|t| t.container_instance_id.as_deref() == Some(instance.id.as_str()))
            .count() as i64;
        assert!(
            instance.remaining.memory >= 0,
            "over-committed: {instance:?}"
        );
        assert_eq!(instance.remaining.memory, 1024 - 100 * on_it);
        assert_eq!(instance.pending_tasks_count, on_it);
        assert_eq!(
            instance.task_groups.get("family:f").copied().unwrap_or(0) as i64,
            on_it
        );
    }
}

/// Concurrent RunTasks share their cluster's lane (batched into common commits) and
/// together place exactly what fits: 8 instances × 10 tasks, no more.
#[test]
fn concurrent_run_tasks_place_exactly_what_fits() {
    let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
    cluster_of(&ecs, 8);
    let outcomes: Vec<RunTaskOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| (0..10).map(|_| run_one(&ecs)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let placed: usize = outcomes.iter().map(|o| o.tasks.len()).sum();
    assert_eq!(placed, 80);
    for o in outcomes.iter().filter(|o| o.tasks.is_empty()) {
        assert_eq!(o.failures.len(), 8);
        assert!(
            o.failures.iter().all(|(_, r)| r == "RESOURCE:MEMORY"),
            "{o:?}"
        );
    }
    assert_eq!(
        ecs.tasks(&Scope::default_installation(), None)
            .unwrap()
            .len(),
        80
    );
    assert_records_match_tasks(&ecs);
}

/// A store that, once armed, changes an instance just before the next RunTask commit
/// (as a concurrent StartTask or agent report would), so that commit loses its compare.
struct Interfering {
    inner: berth_store::MemStore,
    armed: std::sync::atomic::AtomicBool,
}

impl berth_store::Store for Interfering {
    fn get(
        &self,
        key: &str,
    ) -> std::result::Result<Option<berth_store::KeyValue>, berth_store::StoreError> {
        self.inner.get(key)
    }
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<berth_store::KeyValue>, berth_store::StoreError> {
        self.inner.range(prefix, start_after, limit)
    }
    fn txn(
        &self,
        compares: &[Compare],
        ops: &[Op],
    ) -> std::result::Result<TxnOutcome, berth_store::StoreError> {
        let placing = ops.iter().any(|op| op.key().contains("/task/"));
        if placing && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // Fill every instance this commit is about to place on.
            for c in compares {
                let kv = self.inner.get(c.key())?.unwrap();
                let mut instance: ContainerInstance = serde_json::from_slice(&kv.value).unwrap();
                instance.remaining.memory = 0;
                self.inner
                    .put(c.key(), &serde_json::to_vec(&instance).unwrap())?;
            }
        }
        self.inner.txn(compares, ops)
    }
    fn current_revision(&self) -> std::result::Result<u64, berth_store::StoreError> {
        self.inner.current_revision()
    }
    fn watch(
        &self,
        prefix: &str,
        after: u64,
    ) -> std::result::Result<berth_store::Watcher, berth_store::StoreError> {
        self.inner.watch(prefix, after)
    }
}

/// A batch whose instance changed under it is planned again on the store's state: the
/// task goes to the other instance, and the filled one is not over-committed.
#[test]
fn a_batch_that_loses_its_compare_is_planned_again() {
    let store = Arc::new(Interfering {
        inner: berth_store::MemStore::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let ecs = Ecs::new(store.clone());
    let instances = cluster_of(&ecs, 2);
    // Build the lane first, then arm the interference.
    assert_eq!(run_one(&ecs).tasks.len(), 1);
    let first = ecs.tasks(&Scope::default_installation(), None).unwrap()[0]
        .container_instance_id
        .clone()
        .unwrap();
    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let second = run_one(&ecs);
    assert!(!store.armed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(second.tasks.len(), 1, "{second:?}");
    let other = instances.iter().find(|i| i.id != first).unwrap();
    assert_eq!(
        second.tasks[0].container_instance_id.as_deref(),
        Some(other.id.as_str())
    );
    let filled = ecs
        .container_instance(&Scope::default_installation(), None, &first)
        .unwrap()
        .unwrap();
    assert_eq!(filled.remaining.memory, 0);
}

/// State reports short of STOPPED leave the instance record alone (placement lanes
/// compare on it); the instance's counts and live tasks come from its live-task
/// index, which the same transactions keep, and which the migration rebuilds.
#[test]
fn state_reports_keep_off_the_instance_record() {
    let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
    let instances = cluster_of(&ecs, 1);
    let iid = instances[0].id.clone();
    let ikey = crate::keys::instances_prefix(&Scope::default_installation(), "default") + &iid;
    let task = run_one(&ecs).tasks.remove(0);
    let before = ecs.store.get(&ikey).unwrap().unwrap().mod_revision;
    let counts = |ecs: &Ecs| {
        let i = ecs
            .container_instance(&Scope::default_installation(), None, &iid)
            .unwrap()
            .unwrap();
        (i.running_tasks_count, i.pending_tasks_count)
    };
    assert_eq!(counts(&ecs), (0, 1));
    let report = |status: &str| TaskStateChange {
        task: task.id.clone(),
        status: status.into(),
        ..TaskStateChange::default()
    };
    for status in ["PENDING", "RUNNING"] {
        ecs.submit_task_state_change(&Scope::default_installation(), None, report(status))
            .unwrap();
    }
    assert_eq!(ecs.store.get(&ikey).unwrap().unwrap().mod_revision, before);
    assert_eq!(counts(&ecs), (1, 0));
    let live = ecs
        .live_tasks_on(&Scope::default_installation(), "default", &iid)
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].last_status, TaskStatus::Running);

    // A store from before the index: the migration fills it in, once.
    let prefix = instance_tasks_prefix(&Scope::default_installation(), "default", &iid);
    for kv in ecs.store.range(&prefix, None, 0).unwrap() {
        ecs.store.delete(&kv.key).unwrap();
    }
    assert_eq!(counts(&ecs), (0, 0));
    assert_eq!(ecs.migrate_instance_task_index().unwrap(), 1);
    assert_eq!(ecs.migrate_instance_task_index().unwrap(), 0);
    assert_eq!(counts(&ecs), (1, 0));

    // STOPPED gives the resources back and leaves the index.
    ecs.submit_task_state_change(&Scope::default_installation(), None, report("STOPPED"))
        .unwrap();
    let after = ecs
        .container_instance(&Scope::default_installation(), None, &iid)
        .unwrap()
        .unwrap();
    assert_eq!(after.remaining.memory, after.registered.memory);
    assert_eq!(
        (after.running_tasks_count, after.pending_tasks_count),
        (0, 0)
    );
    assert!(
        ecs.live_tasks_on(&Scope::default_installation(), "default", &iid)
            .unwrap()
            .is_empty()
    );
}
/// DescribeServices' counts and the service scheduler's read decode only each record's
/// group and status before the rest: they agree with whole records.
#[test]
fn live_tasks_by_group_and_group_tasks_agree_with_whole_records() {
    let (ecs, scope) = default_cluster_with_family_f(4096);
    let run = |group: Option<&str>, count| {
        ecs.run_task(
            &scope,
            RunTask {
                task_definition: "f".into(),
                count,
                group: group.map(str::to_owned),
                ..RunTask::default()
            },
        )
        .unwrap()
        .tasks
    };
    let a = run(Some("service:a"), 3);
    let b = run(Some("service:b"), 2);
    run(None, 1);
    let report = |id: &str, status: &str| {
        ecs.submit_task_state_change(
            &scope,
            None,
            TaskStateChange {
                task: id.to_owned(),
                status: status.into(),
                ..TaskStateChange::default()
            },
        )
        .unwrap();
    };
    report(&a[0].id, "RUNNING");
    report(&a[1].id, "STOPPED");
    report(&b[0].id, "RUNNING");
    report(&b[0].id, "STOPPED");
    report(&b[1].id, "STOPPED");

    let whole = ecs.tasks(&scope, None).unwrap();
    let mut expected: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for t in whole.iter() {
        let running = t.last_status == TaskStatus::Running;
        if running || t.last_status.is_pending() {
            let counts = expected.entry(t.group.clone()).or_default();
            counts.0 += u32::from(running);
            counts.1 += u32::from(!running);
        }
    }
    let live = ecs.live_tasks_by_group(&scope, "default").unwrap();
    assert_eq!(live, expected);
    assert_eq!(live.get("service:a"), Some(&(1, 1)));
    assert_eq!(live.get("service:b"), None, "only stopped tasks: no entry");
    assert_eq!(live.len(), 2, "and the task without a service");

    for group in ["service:a", "service:b", "service:none"] {
        let ours: Vec<Task> = whole.iter().filter(|t| t.group == group).cloned().collect();
        assert_eq!(ecs.group_tasks(&scope, "default", group).unwrap(), ours);
    }
    assert_eq!(
        ecs.group_tasks(&scope, "default", "service:a")
            .unwrap()
            .len(),
        3
    );
}

/// Records written before ECS's statuses were typed held them as plain strings: the same
/// strings read back into the types, and are written back unchanged.
#[test]
fn records_with_string_statuses_read_back_unchanged() {
    let stored = serde_json::json!({
        "id": "0123456789abcdef0123456789abcdef",
        "cluster": "default",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "containerInstanceId": null,
        "launchType": "FARGATE",
        "desiredStatus": "STOPPED",
        "lastStatus": "STOPPED",
        "createdAt": 1700000000.0,
        "group": "service:web",
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "CannotPullContainerError: pull access denied",
        "cpu": "256",
        "memory": "512",
        "containers": [{
            "containerArn": "arn:aws:ecs:us-east-1:000000000000:container/x",
            "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/default/0123",
            "name": "app", "image": "i", "lastStatus": "STOPPED", "networkBindings": []
        }],
        "version": 3,
        "reservation": {"cpu": 256, "memory": 512, "tcp_ports": [], "udp_ports": []}
    });
    let task: Task = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(task.last_status, TaskStatus::Stopped);
    assert_eq!(task.launch_type, berth_model::ecs::LaunchType::Fargate);
    assert_eq!(
        task.stop_code,
        Some(berth_model::ecs::StopCode::TaskFailedToStart)
    );
    let again = serde_json::to_value(&task).unwrap();
    for field in ["launchType", "desiredStatus", "lastStatus", "stopCode"] {
        assert_eq!(again[field], stored[field], "{field}");
    }
    assert_eq!(again["containers"][0]["lastStatus"], "STOPPED");
    // A status no version ever wrote is refused, not guessed.
    let mut bad = stored;
    bad["lastStatus"] = "SLEEPING".into();
    assert!(serde_json::from_value::<Task>(bad).is_err());
}
