//! Task scale-in protection in-process through the HTTP stack: UpdateTaskProtection's and
//! GetTaskProtection's answers, failures and validation. (That the service scheduler
//! honours it is tests/tests/e2e/conformance_ecs.rs, with the real CLI and agents.)

use std::time::{Duration, Instant};

use berth_testkit::ecs::{self, register_task_definition_arn, single_container};
use berth_testkit::{TestServer, unique};
use serde_json::{Value, json};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The service's tasks' ARNs, once the scheduler has placed `count`.
fn service_tasks(s: &TestServer, cluster: &str, service: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = s
            .ecs(
                "ListTasks",
                json!({"cluster": cluster, "serviceName": service}),
            )
            .ok();
        let arns: Vec<String> = listed["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        if arns.len() == count {
            return arns;
        }
        assert!(Instant::now() < deadline, "{listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn protection_is_set_read_extended_and_refused_as_ecs_does() {
    let s = TestServer::start();
    let (cluster, _) =
        ecs::cluster_with_instances(&s, "protect-", &ecs::instance(4096, 8192), &["us-east-1a"]);
    let family = unique("protect-");
    let td = register_task_definition_arn(&s, single_container(&family, "app", "app:1", 64));
    s.ecs(
        "CreateService",
        json!({"cluster": cluster, "serviceName": "web", "taskDefinition": td,
               "desiredCount": 2}),
    )
    .ok();
    let tasks = service_tasks(&s, &cluster, "web", 2);

    let before = now();
    let set = s
        .ecs(
            "UpdateTaskProtection",
            json!({"cluster": cluster, "tasks": [tasks[0]], "protectionEnabled": true,
                   "expiresInMinutes": 5}),
        )
        .ok();
    assert_eq!(set["failures"], json!([]));
    let entry = &set["protectedTasks"][0];
    assert_eq!(entry["taskArn"], tasks[0].as_str());
    assert_eq!(entry["protectionEnabled"], true);
    let expires = entry["expirationDate"].as_f64().unwrap();
    assert!((before + 299.0..now() + 301.0).contains(&expires), "{set}");

    // By id as well as ARN; the other task is unprotected (no expirationDate).
    let id = tasks[0].rsplit('/').next().unwrap();
    let got = s
        .ecs(
            "GetTaskProtection",
            json!({"cluster": cluster, "tasks": [id, tasks[1], "nope"]}),
        )
        .ok();
    assert_eq!(got["protectedTasks"][0]["expirationDate"], expires);
    assert_eq!(
        got["protectedTasks"][1],
        json!({"taskArn": tasks[1], "protectionEnabled": false})
    );
    let prefix = tasks[0].rsplit_once('/').unwrap().0;
    assert_eq!(
        got["failures"],
        json!([{"arn": format!("{prefix}/nope"), "reason": "MISSING"}])
    );

    // Off: protectionEnabled false, no expiration date.
    let off = s
        .ecs(
            "UpdateTaskProtection",
            json!({"cluster": cluster, "tasks": [tasks[0]], "protectionEnabled": false}),
        )
        .ok();
    assert_eq!(
        off["protectedTasks"],
        json!([{"taskArn": tasks[0], "protectionEnabled": false}])
    );

    // A standalone task, even in a group named like a service's: TASK_NOT_VALID.
    let standalone = ecs::run_task(&s, &cluster, &td, json!({"group": "service:ghost"}));
    let arn = standalone["tasks"][0]["taskArn"].as_str().unwrap();
    let refused = s
        .ecs(
            "UpdateTaskProtection",
            json!({"cluster": cluster, "tasks": [arn], "protectionEnabled": true}),
        )
        .ok();
    assert_eq!(
        refused,
        json!({"protectedTasks": [], "failures": [{"arn": arn, "reason": "TASK_NOT_VALID"}]})
    );

    // Validation: 1..=2880 minutes, 1..=10 tasks, an existing cluster.
    for minutes in [0, 2881] {
        let answer = s.ecs(
            "UpdateTaskProtection",
            json!({"cluster": cluster, "tasks": [tasks[0]], "protectionEnabled": true,
                   "expiresInMinutes": minutes}),
        );
        answer.expect_error("InvalidParameterException");
        assert!(
            answer.message().contains("expiresInMinutes"),
            "{}",
            answer.message()
        );
    }
    let eleven: Vec<Value> = (0..11).map(|n| json!(format!("t{n}"))).collect();
    s.ecs(
        "UpdateTaskProtection",
        json!({"cluster": cluster, "tasks": eleven, "protectionEnabled": true}),
    )
    .expect_error("InvalidParameterException");
    s.ecs(
        "GetTaskProtection",
        json!({"cluster": unique("nope-"), "tasks": [tasks[0]]}),
    )
    .expect_error("ClusterNotFoundException");
}
