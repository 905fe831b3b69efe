//! ECS tasks, in-process through the HTTP stack, against registered container instances:
//! RunTask placement (spread, resources, ports, constraints, failures with ECS's reasons),
//! the life cycle driven by the agent's SubmitTaskStateChange, StopTask, DescribeTasks,
//! ListTasks filters, idempotency, and the counts that must stay true.

use berth_testkit::ecs::{
    self, bridge_web, cluster_count, list_all, list_paged, register_task_definition, remaining,
    run_task, submit_task_state,
};
use berth_testkit::{Endpoint, TestServer, unique};
use serde_json::{Value, json};

/// The instances these tests place on: 1024 CPU, 2048 MiB, port 22 reserved.
fn small_instance() -> ecs::Instance {
    ecs::instance(1024, 2048).ports(&["22"])
}

#[test]
fn run_place_start_stop_with_true_counts() {
    let s = TestServer::start();
    let (cluster, instances) = ecs::cluster_with_instances(
        &s,
        "tasks-",
        &small_instance(),
        &["us-east-1a", "us-east-1b"],
    );
    let (a, b) = (&instances[0], &instances[1]);
    let family = unique("web-");
    register_task_definition(&s, bridge_web(&family, 256, 512, 8080));

    // Two tasks spread across the zones land on different instances.
    let run = run_task(
        &s,
        &cluster,
        &family,
        json!({"count": 2, "startedBy": "e2e", "placementStrategy": [
            {"type": "spread", "field": "attribute:ecs.availability-zone"}]}),
    );
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{run}");
    let instances: Vec<&str> = tasks
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().unwrap())
        .collect();
    assert_ne!(instances[0], instances[1]);
    for t in tasks {
        assert_eq!(t["lastStatus"], "PROVISIONING");
        assert_eq!(t["desiredStatus"], "RUNNING");
        assert_eq!(t["group"], format!("family:{family}"));
        assert_eq!(t["launchType"], "EC2");
        assert_eq!(t["memory"], "512");
        assert_eq!(t["containers"][0]["name"], "web");
    }
    assert_eq!(cluster_count(&s, &cluster, "pendingTasksCount"), 2);
    assert_eq!(remaining(&s, &cluster, a, "MEMORY"), 2048 - 512);
    assert!(
        remaining(&s, &cluster, a, "PORTS")
            .as_array()
            .unwrap()
            .contains(&"8080".into())
    );

    // Host port 8080 is taken on both instances now: nothing fits, and ECS says why.
    let full = run_task(&s, &cluster, &family, Value::Null);
    assert_eq!(full["tasks"].as_array().unwrap().len(), 0);
    let reasons: Vec<&str> = full["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["RESOURCE:PORTS", "RESOURCE:PORTS"], "{full}");

    // Too much memory anywhere.
    let big = unique("big-");
    register_task_definition(&s, bridge_web(&big, 256, 4096, 0));
    let r = run_task(&s, &cluster, &big, Value::Null);
    assert_eq!(r["failures"][0]["reason"], "RESOURCE:MEMORY", "{r}");
    // A constraint no instance meets.
    let free = unique("free-");
    register_task_definition(&s, bridge_web(&free, 256, 128, 0));
    let r = run_task(
        &s,
        &cluster,
        &free,
        json!({"placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.instance-type == m5.large"}]}),
    );
    assert_eq!(r["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(r["failures"][0]["reason"], "ATTRIBUTE", "{r}");
    s.ecs(
        "RunTask",
        json!({"cluster": cluster, "taskDefinition": family, "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =="}]}),
    )
    .expect_error("InvalidParameterException");

    // The agent reports the first task RUNNING: counts and timestamps follow.
    let first = tasks[0]["taskArn"].as_str().unwrap().to_string();
    let second = tasks[1]["taskArn"].as_str().unwrap().to_string();
    let ack = submit_task_state(&s, &cluster, &first, "RUNNING");
    assert_eq!(ack["acknowledgment"], "ACK");
    let d = s
        .ecs(
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": [first, "nope"]}),
        )
        .ok();
    assert_eq!(d["tasks"][0]["lastStatus"], "RUNNING");
    assert!(d["tasks"][0]["startedAt"].is_number());
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(cluster_count(&s, &cluster, "runningTasksCount"), 1);
    assert_eq!(cluster_count(&s, &cluster, "pendingTasksCount"), 1);

    // ListTasks filters (every page, as the CLI follows nextToken).
    let list = |filter: Value| -> usize {
        list_all(
            &s,
            "ListTasks",
            ecs::with(json!({"cluster": cluster}), filter),
            "taskArns",
        )
        .len()
    };
    assert_eq!(list(Value::Null), 2);
    assert_eq!(list(json!({"family": family})), 2);
    assert_eq!(list(json!({"startedBy": "e2e"})), 2);
    assert_eq!(list(json!({"containerInstance": instances[0]})), 1);
    assert_eq!(list(json!({"desiredStatus": "PENDING"})), 1);
    assert_eq!(list(json!({"desiredStatus": "STOPPED"})), 0);
    // Pages of one task each (maxResults 1, followed by nextToken to the end), with and
    // without a filter.
    let paged = |filter: Value| -> Vec<String> {
        let mut arns = ecs::strings(&list_paged(
            &s,
            "ListTasks",
            ecs::with(json!({"cluster": cluster}), filter),
            "taskArns",
            1,
        ));
        arns.sort();
        arns
    };
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(paged(Value::Null), both);
    assert_eq!(paged(json!({"containerInstance": instances[0]})).len(), 1);

    // Tasks keep the cluster and its instances from going away.
    s.ecs("DeleteCluster", json!({"cluster": cluster}))
        .expect_error("ClusterContainsContainerInstancesException");
    s.ecs(
        "DeregisterContainerInstance",
        json!({"cluster": cluster, "containerInstance": instances[0]}),
    )
    .expect_error("InvalidParameterException");

    // StopTask: the never-started task stops at once; the running one when its agent says.
    let stopped = s
        .ecs(
            "StopTask",
            json!({"cluster": cluster, "task": second, "reason": "done"}),
        )
        .ok();
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stoppedReason"], "done");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");
    let stopping = s
        .ecs("StopTask", json!({"cluster": cluster, "task": first}))
        .ok();
    assert_eq!(stopping["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopping["task"]["lastStatus"], "RUNNING");
    submit_task_state(&s, &cluster, &first, "STOPPED");
    let d = ecs::describe_task(&s, &cluster, &first);
    assert_eq!(d["lastStatus"], "STOPPED");
    assert!(d["stoppedAt"].is_number());
    // Everything given back; stopped tasks stay describable and listable as STOPPED.
    assert_eq!(cluster_count(&s, &cluster, "runningTasksCount"), 0);
    assert_eq!(cluster_count(&s, &cluster, "pendingTasksCount"), 0);
    for i in [a, b] {
        assert_eq!(remaining(&s, &cluster, i, "MEMORY"), 2048);
        assert!(
            !remaining(&s, &cluster, i, "PORTS")
                .as_array()
                .unwrap()
                .contains(&"8080".into())
        );
    }
    assert_eq!(list(json!({"desiredStatus": "STOPPED"})), 2);

    // StartTask on a named instance.
    let started = s
        .ecs(
            "StartTask",
            json!({"cluster": cluster, "taskDefinition": family, "containerInstances": [b]}),
        )
        .ok();
    assert_eq!(started["tasks"][0]["containerInstanceArn"], b.as_str());
}

#[test]
fn distinct_instance_and_binpack() {
    let s = TestServer::start();
    let (cluster, _) = ecs::cluster_with_instances(
        &s,
        "place-",
        &small_instance(),
        &["us-east-1a", "us-east-1a"],
    );
    let family = unique("small-");
    register_task_definition(&s, bridge_web(&family, 256, 256, 0));
    let placed_on = |r: &Value| -> Vec<String> {
        r["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["containerInstanceArn"].as_str().unwrap().to_owned())
            .collect()
    };
    // distinctInstance: 3 tasks on 2 instances places 2.
    let r = run_task(
        &s,
        &cluster,
        &family,
        json!({"count": 3, "placementConstraints": [{"type": "distinctInstance"}]}),
    );
    assert_eq!(r["tasks"].as_array().unwrap().len(), 2, "{r}");
    let on = placed_on(&r);
    assert_ne!(on[0], on[1]);
    // binpack(memory): all on the tightest instance.
    let r = run_task(
        &s,
        &cluster,
        &family,
        json!({"count": 3, "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    );
    let on = placed_on(&r);
    assert_eq!(on.len(), 3);
    assert!(on.iter().all(|i| *i == on[0]), "{on:?}");
    s.ecs(
        "RunTask",
        json!({"cluster": cluster, "taskDefinition": family, "count": 11}),
    )
    .expect_error("InvalidParameterException");
    // A cluster without instances.
    let empty = unique("empty-");
    ecs::create_cluster(&s, &empty);
    s.ecs(
        "RunTask",
        json!({"cluster": empty, "taskDefinition": family}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn overrides_are_shown_as_given_and_refused_in_the_wrong_shape() {
    let s = TestServer::start();
    // Two instances: each task holds the definition's host port 8080 on one.
    let (cluster, _) =
        ecs::cluster_with_instances(&s, "ovr-", &small_instance(), &["us-east-1a", "us-east-1b"]);
    let family = unique("ovr-");
    register_task_definition(&s, bridge_web(&family, 256, 512, 8080));
    // A task role override names a role ECS tasks may assume; another is refused.
    let trust = |service: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    for (role, service) in [
        ("app", "ecs-tasks.amazonaws.com"),
        ("ec2app", "ec2.amazonaws.com"),
    ] {
        let form = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument={}",
            trust(service)
                .bytes()
                .map(|b| match b.is_ascii_alphanumeric() {
                    true => (b as char).to_string(),
                    false => format!("%{b:02X}"),
                })
                .collect::<String>()
        );
        let created = s
            .json_client()
            .query("iam", berth_testkit::REGION, &form)
            .unwrap();
        assert_eq!(
            created.status,
            200,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
    }
    let refused = s
        .ecs(
            "RunTask",
            json!({"cluster": cluster, "taskDefinition": family,
                   "overrides": {"taskRoleArn": "arn:aws:iam::000000000000:role/ec2app"}}),
        )
        .expect_error("ClientException")
        .message()
        .to_owned();
    assert!(
        refused.contains("ECS was unable to assume the role 'arn:aws:iam::000000000000:role/ec2app' that was provided for this task."),
        "{refused}"
    );

    // A task run without overrides shows ECS's empty ones.
    let plain = run_task(&s, &cluster, &family, json!({}));
    assert_eq!(
        plain["tasks"][0]["overrides"],
        json!({"containerOverrides": [], "inferenceAcceleratorOverrides": []})
    );

    let overrides = json!({
        "containerOverrides": [{"name": "web", "command": ["sh", "-c", "echo hi"],
            "environment": [{"name": "A", "value": "1"}], "memoryReservation": 64}],
        "inferenceAcceleratorOverrides": [],
        "taskRoleArn": "arn:aws:iam::000000000000:role/app",
    });
    let run = run_task(&s, &cluster, &family, json!({"overrides": overrides}));
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap();
    assert_eq!(
        ecs::describe_task(&s, &cluster, arn)["overrides"],
        overrides
    );

    // ECS's types: a container override's memory is a number, the list a list.
    for wrong in [
        json!({"containerOverrides": [{"name": "web", "memory": "lots"}]}),
        json!({"containerOverrides": "web"}),
    ] {
        s.ecs(
            "RunTask",
            json!({"cluster": cluster, "taskDefinition": family, "overrides": wrong}),
        )
        .expect_error("SerializationException");
    }
}

/// `launchType: EXTERNAL` (ECS Anywhere) places only on external instances — those
/// registered by an agent run with `ECS_EXTERNAL=true`, which carry the
/// `ecs.capability.external` attribute — and the tasks show that launch type; in a cluster
/// without one, placement fails with the attribute reason. A platform version is refused.
#[test]
fn external_tasks_run_only_on_external_instances() {
    let s = TestServer::start();
    let cluster = unique("external-");
    ecs::create_cluster(&s, &cluster);
    let plain = small_instance().register_arn(&s, &cluster);
    let family = unique("ext-");
    register_task_definition(&s, bridge_web(&family, 128, 128, 0));

    let none = run_task(&s, &cluster, &family, json!({"launchType": "EXTERNAL"}));
    assert_eq!(none["tasks"], json!([]), "{none}");
    assert_eq!(none["failures"][0]["reason"], "ATTRIBUTE", "{none}");

    let external = small_instance()
        .attribute("ecs.capability.external", None)
        .register_arn(&s, &cluster);
    let run = run_task(
        &s,
        &cluster,
        &family,
        json!({"launchType": "EXTERNAL", "count": 3}),
    );
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "{run}");
    for t in tasks {
        assert_eq!(t["launchType"], "EXTERNAL");
        assert_eq!(t["containerInstanceArn"], external.as_str());
        assert_ne!(t["containerInstanceArn"], plain.as_str());
    }
    s.ecs(
        "RunTask",
        json!({"cluster": cluster, "taskDefinition": family, "launchType": "EXTERNAL",
               "platformVersion": "LATEST"}),
    )
    .expect_error("InvalidParameterException");
}
