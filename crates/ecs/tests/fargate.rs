//! Fargate tasks on the pool: placed on hosts registered in the hidden pool cluster, kept
//! in the user's cluster, reported on by the pool's agent, refused with Fargate's reason
//! when the pool is full.

use std::sync::Arc;

use berth_ecs::fargate::{NO_CAPACITY, PLATFORM_VERSION, POOL_CLUSTER};
use berth_ecs::{
    AwsVpcConfiguration, CapacityProviderStrategyItem, CreateCluster, Ecs, NetworkConfiguration,
    RegisterContainerInstance, Resources, RunTask, TaskStateChange,
};
use berth_model::Scope;
use berth_model::ecs::{LaunchType, TaskStatus};
use berth_model::task_definition::RegisterTaskDefinitionRequest;

fn fargate(count: u32) -> RunTask {
    RunTask {
        cluster: Some("apps".into()),
        task_definition: "web".into(),
        count,
        launch_type: Some("FARGATE".into()),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-default".into()],
                security_groups: vec!["sg-default".into()],
                assign_public_ip: Some("ENABLED".into()),
            }),
        }),
        ..RunTask::default()
    }
}

#[test]
fn fargate_tasks_run_on_the_pool_and_stay_in_their_cluster() {
    let ecs = Ecs::new(Arc::new(berth_store::MemStore::new()));
    let scope = Scope::default_installation();
    ecs.create_cluster(
        &scope,
        CreateCluster {
            name: Some("apps".into()),
            capacity_providers: vec!["FARGATE".into()],
            ..CreateCluster::default()
        },
    )
    .unwrap();
    let td: RegisterTaskDefinitionRequest = serde_json::from_str(
        r#"{"family":"web","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc",
            "cpu":"256","memory":"512",
            "containerDefinitions":[{"name":"app","image":"i",
              "portMappings":[{"containerPort":8000}]}]}"#,
    )
    .unwrap();
    ecs.register_task_definition(&scope, &td).unwrap();

    // No pool yet: Fargate's reason, no instance named, nothing placed.
    let none = ecs.run_task(&scope, fargate(2)).unwrap();
    assert!(none.tasks.is_empty());
    assert_eq!(
        none.failures,
        vec![(String::new(), NO_CAPACITY.to_string()); 2]
    );

    // A pool host (1 vCPU): registering into the pool's cluster creates it, hidden.
    let host = ecs
        .register_container_instance(
            &scope,
            RegisterContainerInstance {
                cluster: Some(POOL_CLUSTER.into()),
                total: Resources {
                    cpu: 1024,
                    memory: 4096,
                    ..Resources::default()
                },
                ..RegisterContainerInstance::default()
            },
        )
        .unwrap();
    let (clusters, _) = ecs.list_clusters(&scope, None, 100).unwrap();
    assert!(clusters.iter().all(|c| c.name != POOL_CLUSTER));

    let first = ecs.run_task(&scope, fargate(3)).unwrap();
    assert_eq!(first.tasks.len(), 3, "{first:?}");
    for t in &first.tasks {
        assert_eq!(t.cluster, "apps");
        assert_eq!(t.launch_type, LaunchType::Fargate);
        assert_eq!(t.instance_cluster(), POOL_CLUSTER);
        assert_eq!(t.container_instance_id.as_deref(), Some(host.id.as_str()));
        assert_eq!(t.platform_version.as_deref(), Some(PLATFORM_VERSION));
    }
    // 256 CPU each: one more fits, the others get Fargate's reason, not an over-commit.
    let second = ecs.run_task(&scope, fargate(3)).unwrap();
    assert_eq!(second.tasks.len(), 1);
    assert_eq!(second.failures.len(), 2);
    assert!(
        second
            .failures
            .iter()
            .all(|(arn, r)| arn.is_empty() && r == NO_CAPACITY)
    );

    // The pool agent sees them in its manifest, and reports with its own cluster.
    let live = ecs.live_tasks_on(&scope, POOL_CLUSTER, &host.id).unwrap();
    assert_eq!(live.len(), 4);
    assert!(live.iter().all(|t| t.cluster == "apps"));
    let task = &first.tasks[0];
    let report = |status: &str| TaskStateChange {
        task: task.arn(&scope),
        status: status.into(),
        ..TaskStateChange::default()
    };
    let running = ecs
        .submit_task_state_change(&scope, Some(POOL_CLUSTER), report("RUNNING"))
        .unwrap();
    assert_eq!(running.last_status, TaskStatus::Running);
    let pool_host = ecs
        .container_instance(&scope, Some(POOL_CLUSTER), &host.id)
        .unwrap()
        .unwrap();
    assert_eq!(
        (pool_host.running_tasks_count, pool_host.pending_tasks_count),
        (1, 3)
    );
    assert_eq!(pool_host.remaining.cpu, 0);
    // DescribeClusters' statistics count them in their own cluster, as Fargate's.
    let stats = ecs.cluster_statistics(&scope, "apps").unwrap();
    assert_eq!(
        (stats.running_tasks.fargate, stats.pending_tasks.fargate),
        (1, 3)
    );
    assert_eq!((stats.running_tasks.ec2, stats.pending_tasks.ec2), (0, 0));
    let counts = ecs.cluster_counts(&scope, "apps").unwrap();
    assert_eq!((counts.running_tasks, counts.pending_tasks), (1, 3));
    // Stopping gives the host's capacity back.
    ecs.submit_task_state_change(&scope, Some(POOL_CLUSTER), report("STOPPED"))
        .unwrap();
    let pool_host = ecs
        .container_instance(&scope, Some(POOL_CLUSTER), &host.id)
        .unwrap()
        .unwrap();
    assert_eq!(pool_host.remaining.cpu, 256);
    assert_eq!(ecs.run_task(&scope, fargate(1)).unwrap().tasks.len(), 1);

    // A capacity provider strategy: the provider's name is on the task.
    let by_strategy = ecs
        .run_task(
            &scope,
            RunTask {
                launch_type: None,
                capacity_provider_strategy: Some(vec![CapacityProviderStrategyItem {
                    capacity_provider: "FARGATE".into(),
                    weight: 1,
                    base: 0,
                }]),
                ..fargate(1)
            },
        )
        .unwrap();
    assert_eq!(by_strategy.failures.len(), 1, "the pool is full again");
    let other = TaskStateChange {
        task: first.tasks[1].arn(&scope),
        status: "STOPPED".into(),
        ..TaskStateChange::default()
    };
    ecs.submit_task_state_change(&scope, Some(POOL_CLUSTER), other)
        .unwrap();
    let by_strategy = ecs
        .run_task(
            &scope,
            RunTask {
                launch_type: None,
                capacity_provider_strategy: Some(vec![CapacityProviderStrategyItem {
                    capacity_provider: "FARGATE".into(),
                    weight: 1,
                    base: 0,
                }]),
                ..fargate(1)
            },
        )
        .unwrap();
    assert_eq!(
        by_strategy.tasks[0].capacity_provider_name.as_deref(),
        Some("FARGATE")
    );
    assert_eq!(by_strategy.tasks[0].launch_type, LaunchType::Fargate);
    // FARGATE_SPOT is not associated with the cluster.
    let spot = ecs.run_task(
        &scope,
        RunTask {
            launch_type: None,
            capacity_provider_strategy: Some(vec![CapacityProviderStrategyItem {
                capacity_provider: "FARGATE_SPOT".into(),
                weight: 1,
                base: 0,
            }]),
            ..fargate(1)
        },
    );
    assert!(spot.is_err());
    // Placement constraints are not Fargate's.
    let constrained = ecs.run_task(
        &scope,
        RunTask {
            placement_constraints: vec![("distinctInstance".into(), None)],
            ..fargate(1)
        },
    );
    assert!(constrained.is_err());
}
