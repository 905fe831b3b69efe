use super::*;
use std::sync::Arc;

use serde_json::json;

fn task(id: &str, group: &str, instance: Option<&str>, cpu: i64, memory: i64) -> Task {
    serde_json::from_value(json!({
        "id": id, "cluster": "c", "taskDefinitionArn": "td", "containerInstanceId": instance,
        "launchType": "EC2", "desiredStatus": "RUNNING", "lastStatus": "RUNNING",
        "createdAt": 0.0, "group": group, "cpu": cpu.to_string(), "memory": memory.to_string(),
        "containers": [], "version": 1,
        "reservation": {"cpu": cpu, "memory": memory, "tcp_ports": [], "udp_ports": []}
    }))
    .unwrap()
}

fn fargate(mut t: Task) -> Task {
    t.capacity_cluster = Some(crate::fargate::POOL_CLUSTER.to_owned());
    t.launch_type = berth_model::ecs::LaunchType::Fargate;
    t
}

fn instance(
    id: &str,
    cpu: i64,
    memory: i64,
    remaining_cpu: i64,
    remaining_memory: i64,
) -> ContainerInstance {
    serde_json::from_value(json!({
        "id": id, "cluster": "c", "ec2InstanceId": "i-1", "status": "ACTIVE",
        "agentConnected": true, "version": 1, "registeredAt": 0.0,
        "registered": {"cpu": cpu, "memory": memory, "ports": [], "portsUdp": []},
        "remaining": {"cpu": remaining_cpu, "memory": remaining_memory, "ports": [], "portsUdp": []}
    }))
    .unwrap()
}

fn used(cpu_units: f64, memory_mib: f64) -> TaskUsage {
    TaskUsage {
        task_arn: String::new(),
        cpu_units,
        memory_mib,
    }
}

fn find<'a>(
    out: &'a [UtilizationDatum],
    metric: &str,
    service: Option<&str>,
) -> &'a UtilizationDatum {
    out.iter()
        .find(|d| d.metric == metric && d.service.as_deref() == service)
        .unwrap_or_else(|| panic!("{metric} {service:?} in {out:?}"))
}

#[test]
fn service_utilization_is_the_ratio_of_totals_with_the_extreme_tasks() {
    // Two tasks of 256 units and 512 MiB: one uses 256 units (100 %), the other 64 (25 %).
    let usage = ClusterUsage {
        instances: vec![],
        tasks: vec![
            (
                fargate(task("a", "service:web", None, 256, 512)),
                used(256.0, 128.0),
            ),
            (
                fargate(task("b", "service:web", None, 256, 512)),
                used(64.0, 384.0),
            ),
        ],
    };
    let out = datums(&usage);
    let cpu = find(&out, "CPUUtilization", Some("web"));
    assert_eq!(cpu.average(), 62.5);
    assert_eq!(
        (cpu.minimum, cpu.maximum, cpu.sample_count),
        (25.0, 100.0, 2.0)
    );
    let memory = find(&out, "MemoryUtilization", Some("web"));
    assert_eq!(memory.average(), 50.0);
    assert_eq!((memory.minimum, memory.maximum), (25.0, 75.0));
    // Fargate tasks only: no cluster-level metrics (ECS: EC2 only).
    assert!(out.iter().all(|d| d.service.is_some()), "{out:?}");
}

#[test]
fn tasks_of_different_sizes_weigh_by_what_they_reserve() {
    let usage = ClusterUsage {
        instances: vec![],
        tasks: vec![
            (
                fargate(task("a", "service:s", None, 1024, 0)),
                used(512.0, 0.0),
            ),
            (
                fargate(task("b", "service:s", None, 256, 0)),
                used(256.0, 0.0),
            ),
        ],
    };
    let out = datums(&usage);
    let cpu = find(&out, "CPUUtilization", Some("s"));
    // (512 + 256) / (1024 + 256)
    assert!((cpu.average() - 60.0).abs() < 1e-9, "{cpu:?}");
    assert_eq!((cpu.minimum, cpu.maximum), (50.0, 100.0));
    // No memory specified: no memory utilization (nothing to divide by).
    assert!(!out.iter().any(|d| d.metric == "MemoryUtilization"));
}

#[test]
fn cluster_utilization_and_reservation_are_over_the_registered_instances() {
    // Two instances of 2,048 units and 4,096 MiB; a service task of 512 units / 1,024 MiB
    // on each, one standalone task of 1,024 / 1,024 on the first.
    let usage = ClusterUsage {
        instances: vec![
            instance("i1", 2048, 4096, 2048 - 1536, 4096 - 2048),
            instance("i2", 2048, 4096, 2048 - 512, 4096 - 1024),
        ],
        tasks: vec![
            (
                task("a", "service:api", Some("i1"), 512, 1024),
                used(512.0, 512.0),
            ),
            (
                task("b", "service:api", Some("i2"), 512, 1024),
                used(0.0, 256.0),
            ),
            (
                task("c", "family:batch", Some("i1"), 1024, 1024),
                used(1024.0, 1024.0),
            ),
            // A Fargate task of the same cluster counts for its service only.
            (
                fargate(task("d", "service:api", None, 512, 1024)),
                used(512.0, 1024.0),
            ),
        ],
    };
    let out = datums(&usage);
    let cpu = find(&out, "CPUUtilization", None);
    // (512 + 0 + 1024) / 4096
    assert_eq!(cpu.average(), 37.5);
    assert_eq!((cpu.minimum, cpu.maximum), (0.0, 75.0));
    let reservation = find(&out, "CPUReservation", None);
    assert_eq!(reservation.average(), 50.0);
    assert_eq!((reservation.minimum, reservation.maximum), (25.0, 75.0));
    let memory = find(&out, "MemoryReservation", None);
    assert_eq!(memory.average(), 37.5);
    let memory_used = find(&out, "MemoryUtilization", None);
    assert_eq!(
        memory_used.average(),
        (512.0 + 256.0 + 1024.0) / 8192.0 * 100.0
    );
    let service = find(&out, "CPUUtilization", Some("api"));
    assert_eq!(service.average(), 1024.0 / 1536.0 * 100.0);
    assert_eq!(service.sample_count, 3.0);
    // A standalone task is no service.
    assert!(!out.iter().any(|d| d.service.as_deref() == Some("batch")));
}

#[test]
fn nothing_without_running_tasks() {
    let usage = ClusterUsage {
        instances: vec![instance("i1", 1024, 1024, 1024, 1024)],
        tasks: vec![],
    };
    assert_eq!(datums(&usage), vec![]);
}

#[test]
fn task_arns_name_their_scope_and_cluster() {
    let (scope, cluster, id) =
        parse_task_arn("arn:aws:ecs:eu-west-1:123456789012:task/prod/abc").unwrap();
    assert_eq!(scope.account.to_string(), "123456789012");
    assert_eq!(scope.region.to_string(), "eu-west-1");
    assert_eq!((cluster.as_str(), id.as_str()), ("prod", "abc"));
    assert_eq!(
        parse_task_arn("arn:aws:ecs:eu-west-1:123456789012:task/abc"),
        None
    );
    assert_eq!(parse_task_arn("nonsense"), None);
}

#[test]
fn telemetry_is_kept_in_units_and_read_back_fresh_only() {
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::MemStore::new());
    let ecs = Ecs::new(store.clone());
    let scope = Scope::default_installation();
    let mut i = instance("i1", 2048, 4096, 1536, 3072);
    i.cluster = "c".into();
    store
        .put(&instance_key(&scope, "c", "i1"), &encode(&i))
        .unwrap();
    let mut t = task("t1", "service:web", Some("i1"), 512, 1024);
    t.cluster = "c".into();
    store
        .put(&crate::keys::task_key(&scope, "c", "t1"), &encode(&t))
        .unwrap();
    let arn = t.arn(&scope);
    ecs.record_telemetry(
        &scope,
        "c",
        "i1",
        &[TaskSample {
            task_arn: arn.clone(),
            cpu_percent: 12.5,
            memory_mib: 100.0,
        }],
    )
    .unwrap();
    let now = now_epoch();
    let usage = ecs.cluster_usage(now).unwrap();
    let cluster = &usage[&(scope.clone(), "c".to_owned())];
    assert_eq!(cluster.instances.len(), 1);
    assert_eq!(cluster.tasks.len(), 1);
    // 12.5 % of 2,048 units.
    assert_eq!(cluster.tasks[0].1.cpu_units, 256.0);
    assert_eq!(cluster.tasks[0].1.memory_mib, 100.0);
    // Stale telemetry is not used, and long-stale is deleted.
    assert!(ecs.cluster_usage(now + 61.0).unwrap().is_empty());
    assert!(ecs.cluster_usage(now + 3601.0).unwrap().is_empty());
    assert!(store.range(TELEMETRY_PREFIX, None, 0).unwrap().is_empty());
}
