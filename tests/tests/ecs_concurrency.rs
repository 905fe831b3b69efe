//! "Never over-commit" under concurrency, end to end: several `aws ecs run-task` processes
//! at once race for three container instances that can each hold exactly one task (a fixed
//! host port), and the server must start exactly three tasks, report every other placement
//! as a failure, and leave every instance's remaining resources equal to its registered
//! resources minus the tasks it holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use berth_e2e::{BerthServer, assert_ok, ok_json, stdout_of, unique};
use serde_json::Value;

const INSTANCE_CPU: i64 = 1024;
const INSTANCE_MEMORY: i64 = 1024;
const TASK_CPU: i64 = 128;
const TASK_MEMORY: i64 = 256;
const HOST_PORT: &str = "9000";
/// Concurrent `aws ecs run-task --count 2` processes per wave.
const CALLERS: usize = 8;

fn register(s: &BerthServer, cluster: &str, zone: &str) -> String {
    let resources = format!(
        r#"[{{"name":"CPU","type":"INTEGER","integerValue":{INSTANCE_CPU}}},
            {{"name":"MEMORY","type":"INTEGER","integerValue":{INSTANCE_MEMORY}}},
            {{"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}}]"#
    );
    let attributes = format!(r#"[{{"name":"ecs.availability-zone","value":"{zone}"}}]"#);
    ok_json(&s.aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        cluster,
        "--total-resources",
        &resources,
        "--attributes",
        &attributes,
    ]))["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One wave: CALLERS concurrent `run-task --count 2`, with DescribeContainerInstances
/// polled meanwhile: no observation may show an instance over-committed (memory below
/// what one task leaves). Returns every parsed answer and the number of observations.
fn run_wave(
    s: &BerthServer,
    cluster: &str,
    family: &str,
    instances: &[String],
) -> (Vec<Value>, usize) {
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        let done = &done;
        let watcher = scope.spawn(move || {
            let mut args = vec![
                "ecs",
                "describe-container-instances",
                "--cluster",
                cluster,
                "--container-instances",
            ];
            args.extend(instances.iter().map(String::as_str));
            let mut observations = 0;
            while !done.load(Ordering::SeqCst) {
                let d = ok_json(&s.aws(&args));
                for ci in d["containerInstances"].as_array().unwrap() {
                    let memory = integer(&ci["remainingResources"], "MEMORY");
                    assert!(
                        memory == INSTANCE_MEMORY || memory == INSTANCE_MEMORY - TASK_MEMORY,
                        "over-committed while the wave ran: {ci}"
                    );
                }
                observations += 1;
            }
            observations
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                scope.spawn(move || {
                    let out = s.aws(&[
                        "ecs",
                        "run-task",
                        "--cluster",
                        cluster,
                        "--task-definition",
                        family,
                        "--count",
                        "2",
                    ]);
                    assert_ok(&out, "aws ecs run-task --count 2");
                    serde_json::from_str::<Value>(&stdout_of(&out)).unwrap()
                })
            })
            .collect();
        let answers = callers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        (answers, watcher.join().unwrap())
    })
}

fn integer(resources: &Value, name: &str) -> i64 {
    resources
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {resources}"))["integerValue"]
        .as_i64()
        .unwrap()
}

fn ports(resources: &Value) -> Vec<String> {
    resources
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "PORTS")
        .unwrap_or_else(|| panic!("no PORTS in {resources}"))["stringSetValue"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Checks the answers of a wave and returns task ARN -> container instance ARN.
fn check_answers(answers: &[Value], instances: &[String]) -> HashMap<String, String> {
    let mut started = HashMap::new();
    for a in answers {
        let tasks = a["tasks"].as_array().unwrap();
        let failures = a["failures"].as_array().unwrap();
        assert!(tasks.len() <= 2, "more tasks than asked for: {a}");
        // Whatever was not started is reported, with ECS's reason: the port (the only
        // resource that runs out first here) on the instances that could not take it.
        if tasks.len() < 2 {
            assert!(
                !failures.is_empty(),
                "a placement went missing silently: {a}"
            );
        }
        for f in failures {
            let reason = f["reason"].as_str().unwrap();
            assert!(
                reason == "RESOURCE:PORTS" || reason == "RESOURCE:MEMORY",
                "unexpected failure reason {reason}: {a}"
            );
            let arn = f["arn"].as_str().unwrap();
            assert!(
                instances.iter().any(|i| i == arn),
                "a failure names no instance: {a}"
            );
        }
        for t in tasks {
            let arn = t["taskArn"].as_str().unwrap().to_string();
            let instance = t["containerInstanceArn"].as_str().unwrap().to_string();
            assert!(instances.contains(&instance), "unknown instance: {t}");
            assert!(
                started.insert(arn.clone(), instance).is_none(),
                "task {arn} answered twice"
            );
        }
    }
    started
}

/// DescribeContainerInstances agrees with `per_instance` (tasks held per instance).
fn check_instances(
    s: &BerthServer,
    cluster: &str,
    instances: &[String],
    per_instance: &HashMap<String, i64>,
) {
    let mut args = vec![
        "ecs",
        "describe-container-instances",
        "--cluster",
        cluster,
        "--container-instances",
    ];
    args.extend(instances.iter().map(String::as_str));
    let d = ok_json(&s.aws(&args));
    let described = d["containerInstances"].as_array().unwrap();
    assert_eq!(described.len(), instances.len(), "{d}");
    for ci in described {
        let arn = ci["containerInstanceArn"].as_str().unwrap();
        let n = per_instance.get(arn).copied().unwrap_or(0);
        assert!(
            n <= 1,
            "instance {arn} holds {n} tasks on host port {HOST_PORT}"
        );
        let remaining = &ci["remainingResources"];
        let memory = integer(remaining, "MEMORY");
        assert!(memory >= 0, "memory below zero on {arn}: {ci}");
        assert_eq!(memory, INSTANCE_MEMORY - TASK_MEMORY * n, "{ci}");
        assert_eq!(
            integer(remaining, "CPU"),
            INSTANCE_CPU - TASK_CPU * n,
            "{ci}"
        );
        let p = ports(remaining);
        assert!(p.iter().any(|x| x == "22"), "{ci}");
        assert_eq!(p.iter().any(|x| x == HOST_PORT), n == 1, "{ci}");
        let held =
            ci["runningTasksCount"].as_i64().unwrap() + ci["pendingTasksCount"].as_i64().unwrap();
        assert_eq!(held, n, "{ci}");
        // Registered resources never move.
        assert_eq!(
            integer(&ci["registeredResources"], "MEMORY"),
            INSTANCE_MEMORY
        );
    }
}

#[test]
fn concurrent_run_task_never_over_commits() {
    let s = BerthServer::start();
    let cluster = unique("race-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let instances: Vec<String> = ["us-east-1a", "us-east-1b", "us-east-1c"]
        .iter()
        .map(|z| register(&s, &cluster, z))
        .collect();
    let family = unique("port9000-");
    let td = format!(
        r#"{{"family":"{family}","networkMode":"bridge","containerDefinitions":[
            {{"name":"web","image":"web:1","cpu":{TASK_CPU},"memory":{TASK_MEMORY},
              "portMappings":[{{"containerPort":80,"hostPort":{HOST_PORT}}}]}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));

    // Wave 1: 8 callers × 2 placements race for 3 slots.
    let (answers, observations) = run_wave(&s, &cluster, &family, &instances);
    assert!(observations >= 1);
    let started = check_answers(&answers, &instances);
    assert_eq!(
        started.len(),
        instances.len(),
        "exactly one task per instance must start: {answers:#?}"
    );
    let mut per_instance: HashMap<String, i64> = HashMap::new();
    for instance in started.values() {
        *per_instance.entry(instance.clone()).or_default() += 1;
    }
    check_instances(&s, &cluster, &instances, &per_instance);

    // The server's own lists agree with the answers.
    let listed = ok_json(&s.aws(&["ecs", "list-tasks", "--cluster", &cluster]));
    let mut listed: Vec<String> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = started.keys().cloned().collect();
    expected.sort();
    assert_eq!(listed, expected);
    let mut args = vec!["ecs", "describe-tasks", "--cluster", &cluster, "--tasks"];
    args.extend(expected.iter().map(String::as_str));
    let described = ok_json(&s.aws(&args));
    for t in described["tasks"].as_array().unwrap() {
        assert_eq!(
            started[t["taskArn"].as_str().unwrap()],
            t["containerInstanceArn"].as_str().unwrap(),
            "{t}"
        );
    }
    let cluster_desc = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &cluster]));
    let c = &cluster_desc["clusters"][0];
    assert_eq!(
        c["pendingTasksCount"].as_i64().unwrap() + c["runningTasksCount"].as_i64().unwrap(),
        3,
        "{c}"
    );

    // Wave 2: everything is taken, so nothing more starts and nothing moves.
    let (answers, _) = run_wave(&s, &cluster, &family, &instances);
    let more = check_answers(&answers, &instances);
    assert!(more.is_empty(), "tasks started on full instances: {more:?}");
    for a in &answers {
        let reasons: Vec<&str> = a["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, vec!["RESOURCE:PORTS"; 3], "{a}");
    }
    check_instances(&s, &cluster, &instances, &per_instance);
}
