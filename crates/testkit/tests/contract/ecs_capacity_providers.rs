//! Auto Scaling group capacity providers in-process through the HTTP stack: ECS's checks on
//! managed termination protection, RunTask through a provider with no instances (its tasks
//! wait in PROVISIONING) and the leader's managed scaling raising the group's desired
//! capacity for them (through a provisioner command that starts nothing, so no instance
//! ever registers). Real agents and the aws CLI: tests/tests/e2e/capacity_providers.rs.

use berth_testkit::ecs::{self, register_task_definition_arn, single_container};
use berth_testkit::{TestServer, unique};
use serde_json::{Value, json};

use crate::autoscaling_groups::{asg, server, template, wait_for};

/// A group `name` of the `web` cluster's template, no instances.
fn group(s: &TestServer, name: &str, protected: bool) -> String {
    asg(
        s,
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", name),
            ("LaunchTemplate.LaunchTemplateName", "web-lt"),
            ("MinSize", "0"),
            ("MaxSize", "3"),
            ("DesiredCapacity", "0"),
            ("AvailabilityZones.member.1", "us-east-1a"),
            (
                "NewInstancesProtectedFromScaleIn",
                if protected { "true" } else { "false" },
            ),
        ],
    )
    .ok();
    asg(
        s,
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", name)],
    )
    .ok()
    .get("AutoScalingGroupARN")
}

/// The `web` cluster with a new provider over the group `web-asg` (of the `web-lt`
/// template; `protected`: its new instances protected from scale-in), `settings` added to
/// its `autoScalingGroupProvider`, associated with the cluster beside `others`. Its name.
fn web_provider(s: &TestServer, protected: bool, settings: Value, others: &[&str]) -> String {
    template(s, "web-lt");
    ecs::create_cluster(s, "web");
    let mut spec = settings;
    spec["autoScalingGroupArn"] = json!(group(s, "web-asg", protected));
    let provider = unique("cp-");
    s.ecs(
        "CreateCapacityProvider",
        json!({"name": provider, "autoScalingGroupProvider": spec}),
    )
    .ok();
    let mut providers = vec![provider.clone()];
    providers.extend(others.iter().map(|o| o.to_string()));
    s.ecs(
        "PutClusterCapacityProviders",
        json!({"cluster": "web", "capacityProviders": providers,
               "defaultCapacityProviderStrategy": []}),
    )
    .ok();
    provider
}

#[test]
fn managed_termination_protection_is_checked_as_ecs_does() {
    let s = server();
    template(&s, "web-lt");
    let unprotected = group(&s, "loose", false);
    let protected = group(&s, "tight", true);
    let out = s.ecs(
        "CreateCapacityProvider",
        json!({"name": unique("cp-"), "autoScalingGroupProvider": {
            "autoScalingGroupArn": unprotected,
            "managedScaling": {"status": "ENABLED"},
            "managedTerminationProtection": "ENABLED"}}),
    );
    out.expect_error("ClientException");
    assert_eq!(
        out.message(),
        "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled."
    );
    let out = s.ecs(
        "CreateCapacityProvider",
        json!({"name": unique("cp-"), "autoScalingGroupProvider": {
            "autoScalingGroupArn": protected,
            "managedScaling": {"status": "DISABLED"},
            "managedTerminationProtection": "ENABLED"}}),
    );
    out.expect_error("ClientException");
    assert!(
        out.message().contains("managed scaling must be enabled"),
        "{}",
        out.message()
    );
    let created = s
        .ecs(
            "CreateCapacityProvider",
            json!({"name": unique("cp-"), "autoScalingGroupProvider": {
                "autoScalingGroupArn": protected,
                "managedScaling": {"status": "ENABLED"},
                "managedTerminationProtection": "ENABLED"}}),
        )
        .ok();
    let name = created["capacityProvider"]["name"].as_str().unwrap();
    // Turning managed scaling off leaves termination protection without it.
    s.ecs(
        "UpdateCapacityProvider",
        json!({"name": name, "autoScalingGroupProvider": {
            "managedScaling": {"status": "DISABLED"}}}),
    )
    .expect_error("ClientException");
}

#[test]
fn tasks_wait_in_provisioning_and_managed_scaling_launches_an_instance() {
    let s = server();
    let provider = web_provider(
        &s,
        true,
        json!({"managedScaling": {"status": "ENABLED", "targetCapacity": 100},
               "managedTerminationProtection": "ENABLED"}),
        &[],
    );
    let family = unique("cp-app-");
    let td = register_task_definition_arn(&s, single_container(&family, "app", "app:1", 64));

    // No instance of the provider: the tasks wait, with no failure.
    let run = ecs::run_task(
        &s,
        "web",
        &td,
        json!({"count": 2, "capacityProviderStrategy": [
            {"capacityProvider": provider, "weight": 1}]}),
    );
    assert_eq!(run["failures"], json!([]), "{run:#}");
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for t in tasks {
        assert_eq!(t["lastStatus"], "PROVISIONING", "{t:#}");
        assert_eq!(t["capacityProviderName"], provider.as_str());
        assert_eq!(t["launchType"], "EC2");
        assert!(t.get("containerInstanceArn").is_none(), "{t:#}");
    }
    let cluster = s.ecs("DescribeClusters", json!({"clusters": ["web"]})).ok();
    assert_eq!(cluster["clusters"][0]["pendingTasksCount"], 2);

    // The leader's managed scaling: M = 1 instance for them, N = 0: the group goes to 1.
    let g = wait_for(&s, "web-asg", "desired capacity 1, one instance", |r| {
        r.all("DesiredCapacity") == ["1"] && r.all("InstanceId").len() == 1
    });
    // It stays at one: the instance counts in N while it is Pending (M = N = 1).
    assert_eq!(g.all("LifecycleState"), ["Pending"]);
    let activities = asg(
        &s,
        "DescribeScalingActivities",
        &[("AutoScalingGroupName", "web-asg")],
    )
    .ok();
    let cause = activities.get("Cause");
    assert!(
        cause.contains(&format!(
            "managed scaling of ECS capacity provider {provider}"
        )),
        "{cause}"
    );

    // A waiting task stops at once when asked.
    let first = tasks[0]["taskArn"].as_str().unwrap();
    let stopped = s
        .ecs("StopTask", json!({"cluster": "web", "task": first}))
        .ok();
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED", "{stopped:#}");

    // A strategy mixing Fargate and Auto Scaling group providers is refused.
    s.ecs(
        "PutClusterCapacityProviders",
        json!({"cluster": "web", "capacityProviders": [provider, "FARGATE"],
               "defaultCapacityProviderStrategy": []}),
    )
    .ok();
    s.ecs(
        "RunTask",
        json!({"cluster": "web", "taskDefinition": td, "capacityProviderStrategy": [
            {"capacityProvider": provider, "weight": 1},
            {"capacityProvider": "FARGATE", "weight": 1}]}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn update_service_moves_a_service_onto_a_capacity_provider_and_back() {
    let s = server();
    let provider = web_provider(&s, false, json!({}), &["FARGATE"]);
    let family = unique("cp-svc-");
    let td = register_task_definition_arn(&s, single_container(&family, "app", "app:1", 64));
    let name = unique("svc-");
    s.ecs(
        "CreateService",
        json!({"cluster": "web", "serviceName": name, "taskDefinition": td,
               "desiredCount": 0, "launchType": "EC2"}),
    )
    .ok();
    let strategy = json!([{"capacityProvider": provider, "weight": 1, "base": 0}]);

    // Refused as CreateService refuses them: a strategy mixing Fargate and Auto Scaling
    // group providers, and Fargate for a definition that is EC2's only.
    s.ecs(
        "UpdateService",
        json!({"cluster": "web", "service": name, "capacityProviderStrategy": [
            {"capacityProvider": provider, "weight": 1},
            {"capacityProvider": "FARGATE", "weight": 1}]}),
    )
    .expect_error("InvalidParameterException");
    let out = s.ecs(
        "UpdateService",
        json!({"cluster": "web", "service": name, "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE", "weight": 1}]}),
    );
    out.expect_error("InvalidParameterException");
    assert_eq!(
        out.message(),
        "Task definition does not support launch_type FARGATE."
    );

    // Onto the provider: the service shows the strategy, and its new task is launched
    // through it (waiting in PROVISIONING: the group has no instance).
    let updated = s
        .ecs(
            "UpdateService",
            json!({"cluster": "web", "service": name, "desiredCount": 1,
                   "capacityProviderStrategy": strategy}),
        )
        .ok();
    assert_eq!(
        updated["service"]["capacityProviderStrategy"], strategy,
        "{updated:#}"
    );
    assert!(
        updated["service"].get("launchType").is_none(),
        "{updated:#}"
    );
    let task = (0..100)
        .find_map(|_| {
            let listed = s
                .ecs("ListTasks", json!({"cluster": "web", "serviceName": name}))
                .ok();
            let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
            if arns.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return None;
            }
            let described = s
                .ecs("DescribeTasks", json!({"cluster": "web", "tasks": arns}))
                .ok();
            Some(described["tasks"][0].clone())
        })
        .expect("the service launches its task");
    assert_eq!(task["capacityProviderName"], provider.as_str(), "{task:#}");
    assert_eq!(task["lastStatus"], "PROVISIONING", "{task:#}");

    // An empty list: back to the launch type.
    let back = s
        .ecs(
            "UpdateService",
            json!({"cluster": "web", "service": name, "capacityProviderStrategy": []}),
        )
        .ok();
    assert_eq!(back["service"]["launchType"], "EC2", "{back:#}");
    assert!(
        back["service"].get("capacityProviderStrategy").is_none(),
        "{back:#}"
    );
}
