//! "Never over-commit" under concurrency, in-process through the HTTP stack: several
//! RunTask callers at once (each its own connection, as the `aws` processes of the CLI
//! version were) race for three container instances that can each hold exactly one task (a
//! fixed host port), and the server must start exactly three tasks, report every other
//! placement as a failure, and leave every instance's remaining resources equal to its
//! registered resources minus the tasks it holds.

use std::collections::HashMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use berth_testkit::ecs::{self, bridge_web, integer, list_all, register_task_definition, run_task};
use berth_testkit::{TestServer, unique};
use serde_json::{Value, json};

const INSTANCE_CPU: i64 = 1024;
const INSTANCE_MEMORY: i64 = 1024;
const TASK_CPU: i64 = 128;
const TASK_MEMORY: i64 = 256;
const HOST_PORT: &str = "9000";
/// Concurrent `RunTask` callers (`count` 2 each) per wave.
const CALLERS: usize = 8;

fn describe_instances(s: &TestServer, cluster: &str, instances: &[String]) -> Value {
    s.ecs(
        "DescribeContainerInstances",
        json!({"cluster": cluster, "containerInstances": instances}),
    )
    .ok()
}

/// One wave: CALLERS concurrent RunTask `count` 2 (released together), with
/// DescribeContainerInstances polled meanwhile: no observation may show an instance
/// over-committed (memory below what one task leaves). Returns every answer and the number
/// of observations.
fn run_wave(
    s: &TestServer,
    cluster: &str,
    family: &str,
    instances: &[String],
) -> (Vec<Value>, usize) {
    let done = AtomicBool::new(false);
    let start = Barrier::new(CALLERS);
    thread::scope(|scope| {
        let (done, start) = (&done, &start);
        let watcher = scope.spawn(move || {
            let mut observations = 0;
            while !done.load(Ordering::SeqCst) {
                let d = describe_instances(s, cluster, instances);
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
                    start.wait();
                    run_task(s, cluster, family, json!({"count": 2}))
                })
            })
            .collect();
        let answers = callers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        (answers, watcher.join().unwrap())
    })
}

fn ports(resources: &Value) -> Vec<String> {
    ecs::string_set(resources, "PORTS")
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
    s: &TestServer,
    cluster: &str,
    instances: &[String],
    per_instance: &HashMap<String, i64>,
) {
    let d = describe_instances(s, cluster, instances);
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
    let s = TestServer::start();
    let (cluster, instances) = ecs::cluster_with_instances(
        &s,
        "race-",
        &ecs::instance(INSTANCE_CPU, INSTANCE_MEMORY).ports(&["22"]),
        &["us-east-1a", "us-east-1b", "us-east-1c"],
    );
    let family = unique("port9000-");
    register_task_definition(
        &s,
        bridge_web(&family, TASK_CPU, TASK_MEMORY, HOST_PORT.parse().unwrap()),
    );

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
    let mut listed = ecs::strings(&list_all(
        &s,
        "ListTasks",
        json!({"cluster": cluster}),
        "taskArns",
    ));
    listed.sort();
    let mut expected: Vec<String> = started.keys().cloned().collect();
    expected.sort();
    assert_eq!(listed, expected);
    let described = s
        .ecs(
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": expected}),
        )
        .ok();
    for t in described["tasks"].as_array().unwrap() {
        assert_eq!(
            started[t["taskArn"].as_str().unwrap()],
            t["containerInstanceArn"].as_str().unwrap(),
            "{t}"
        );
    }
    let c = ecs::describe_cluster(&s, &cluster);
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
