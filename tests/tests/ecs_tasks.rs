//! ECS tasks through the real `aws` CLI against registered container instances: RunTask
//! placement (spread, resources, ports, constraints, failures with ECS's reasons), the life
//! cycle driven by the agent's SubmitTaskStateChange, StopTask, DescribeTasks, ListTasks
//! filters, idempotency, and the counts that must stay true.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, unique};
use serde_json::Value;

fn register(s: &BerthServer, cluster: &str, zone: &str) -> String {
    let resources = r#"[{"name":"CPU","type":"INTEGER","integerValue":1024},
        {"name":"MEMORY","type":"INTEGER","integerValue":2048},
        {"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}]"#;
    let attributes = format!(r#"[{{"name":"ecs.availability-zone","value":"{zone}"}}]"#);
    ok_json(&s.aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        cluster,
        "--total-resources",
        resources,
        "--attributes",
        &attributes,
    ]))["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

fn task_definition(s: &BerthServer, family: &str, memory: u32, host_port: u32) -> String {
    let td = format!(
        r#"{{"family":"{family}","networkMode":"bridge","containerDefinitions":[
            {{"name":"web","image":"web:1","cpu":256,"memory":{memory},
              "portMappings":[{{"containerPort":80,"hostPort":{host_port}}}]}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]))["taskDefinition"]
        ["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string()
}

fn remaining(s: &BerthServer, cluster: &str, instance: &str, name: &str) -> Value {
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        cluster,
        "--container-instances",
        instance,
    ]));
    let r = d["containerInstances"][0]["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
        .clone();
    if name == "PORTS" {
        r["stringSetValue"].clone()
    } else {
        r["integerValue"].clone()
    }
}

fn cluster_count(s: &BerthServer, cluster: &str, field: &str) -> i64 {
    ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", cluster]))["clusters"][0][field]
        .as_i64()
        .unwrap()
}

#[test]
fn run_place_start_stop_with_true_counts() {
    let s = BerthServer::start();
    let cluster = unique("tasks-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let a = register(&s, &cluster, "us-east-1a");
    let b = register(&s, &cluster, "us-east-1b");
    let family = unique("web-");
    task_definition(&s, &family, 512, 8080);

    // Two tasks spread across the zones land on different instances.
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--count",
        "2",
        "--placement-strategy",
        "type=spread,field=attribute:ecs.availability-zone",
        "--started-by",
        "e2e",
    ]));
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
    assert_eq!(remaining(&s, &cluster, &a, "MEMORY"), 2048 - 512);
    assert!(
        remaining(&s, &cluster, &a, "PORTS")
            .as_array()
            .unwrap()
            .contains(&"8080".into())
    );

    // Host port 8080 is taken on both instances now: nothing fits, and ECS says why.
    let full = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
    ]));
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
    task_definition(&s, &big, 4096, 0);
    let r = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &big,
    ]));
    assert_eq!(r["failures"][0]["reason"], "RESOURCE:MEMORY", "{r}");
    // A constraint no instance meets.
    let free = unique("free-");
    task_definition(&s, &free, 128, 0);
    let r = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &free,
        "--placement-constraints",
        "type=memberOf,expression=attribute:ecs.instance-type == m5.large",
    ]));
    assert_eq!(r["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(r["failures"][0]["reason"], "ATTRIBUTE", "{r}");
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "run-task",
            "--cluster",
            &cluster,
            "--task-definition",
            &family,
            "--placement-constraints",
            "type=memberOf,expression=attribute:ecs.instance-type ==",
        ]),
        "InvalidParameterException",
    );

    // The agent reports the first task RUNNING: counts and timestamps follow.
    let first = tasks[0]["taskArn"].as_str().unwrap().to_string();
    let second = tasks[1]["taskArn"].as_str().unwrap().to_string();
    let ack = ok_json(&s.aws(&[
        "ecs",
        "submit-task-state-change",
        "--cluster",
        &cluster,
        "--task",
        &first,
        "--status",
        "RUNNING",
    ]));
    assert_eq!(ack["acknowledgment"], "ACK");
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &cluster,
        "--tasks",
        &first,
        "nope",
    ]));
    assert_eq!(d["tasks"][0]["lastStatus"], "RUNNING");
    assert!(d["tasks"][0]["startedAt"].is_number());
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(cluster_count(&s, &cluster, "runningTasksCount"), 1);
    assert_eq!(cluster_count(&s, &cluster, "pendingTasksCount"), 1);

    // ListTasks filters.
    let list = |extra: &[&str]| -> usize {
        let mut args = vec!["ecs", "list-tasks", "--cluster", &cluster];
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args))["taskArns"].as_array().unwrap().len()
    };
    assert_eq!(list(&[]), 2);
    assert_eq!(list(&["--family", &family]), 2);
    assert_eq!(list(&["--started-by", "e2e"]), 2);
    assert_eq!(list(&["--container-instance", instances[0]]), 1);
    assert_eq!(list(&["--desired-status", "PENDING"]), 1);
    assert_eq!(list(&["--desired-status", "STOPPED"]), 0);
    // Pages of one task each (the CLI follows nextToken), with and without a filter.
    assert_eq!(list(&["--page-size", "1"]), 2);
    assert_eq!(
        list(&["--container-instance", instances[0], "--page-size", "1"]),
        1
    );

    // Tasks keep the cluster and its instances from going away.
    assert_aws_error(
        &s.aws(&["ecs", "delete-cluster", "--cluster", &cluster]),
        "ClusterContainsContainerInstancesException",
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "deregister-container-instance",
            "--cluster",
            &cluster,
            "--container-instance",
            instances[0],
        ]),
        "InvalidParameterException",
    );

    // StopTask: the never-started task stops at once; the running one when its agent says.
    let stopped = ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &second,
        "--reason",
        "done",
    ]));
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stoppedReason"], "done");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");
    let stopping = ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &first]));
    assert_eq!(stopping["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopping["task"]["lastStatus"], "RUNNING");
    ok_json(&s.aws(&[
        "ecs",
        "submit-task-state-change",
        "--cluster",
        &cluster,
        "--task",
        &first,
        "--status",
        "STOPPED",
    ]));
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &cluster,
        "--tasks",
        &first,
    ]));
    assert_eq!(d["tasks"][0]["lastStatus"], "STOPPED");
    assert!(d["tasks"][0]["stoppedAt"].is_number());
    // Everything given back; stopped tasks stay describable and listable as STOPPED.
    assert_eq!(cluster_count(&s, &cluster, "runningTasksCount"), 0);
    assert_eq!(cluster_count(&s, &cluster, "pendingTasksCount"), 0);
    for i in [&a, &b] {
        assert_eq!(remaining(&s, &cluster, i, "MEMORY"), 2048);
        assert!(
            !remaining(&s, &cluster, i, "PORTS")
                .as_array()
                .unwrap()
                .contains(&"8080".into())
        );
    }
    assert_eq!(list(&["--desired-status", "STOPPED"]), 2);

    // StartTask on a named instance.
    let started = ok_json(&s.aws(&[
        "ecs",
        "start-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--container-instances",
        &b,
    ]));
    assert_eq!(started["tasks"][0]["containerInstanceArn"], b.as_str());
}

#[test]
fn distinct_instance_and_binpack() {
    let s = BerthServer::start();
    let cluster = unique("place-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    register(&s, &cluster, "us-east-1a");
    register(&s, &cluster, "us-east-1a");
    let family = unique("small-");
    task_definition(&s, &family, 256, 0);
    // distinctInstance: 3 tasks on 2 instances places 2.
    let r = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--count",
        "3",
        "--placement-constraints",
        "type=distinctInstance",
    ]));
    assert_eq!(r["tasks"].as_array().unwrap().len(), 2, "{r}");
    let on: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().unwrap())
        .collect();
    assert_ne!(on[0], on[1]);
    // binpack(memory): all on the tightest instance.
    let r = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--count",
        "3",
        "--placement-strategy",
        "type=binpack,field=memory",
    ]));
    let on: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().unwrap())
        .collect();
    assert_eq!(on.len(), 3);
    assert!(on.iter().all(|i| *i == on[0]), "{on:?}");
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "run-task",
            "--cluster",
            &cluster,
            "--task-definition",
            &family,
            "--count",
            "11",
        ]),
        "InvalidParameterException",
    );
    // A cluster without instances.
    let empty = unique("empty-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &empty]));
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "run-task",
            "--cluster",
            &empty,
            "--task-definition",
            &family,
        ]),
        "InvalidParameterException",
    );
}
