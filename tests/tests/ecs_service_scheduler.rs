//! The service scheduler with real Docker, a real `berth agent` and the real `aws` CLI: a
//! service reaches its desired count (`aws ecs wait services-stable`), a task whose
//! container is `docker kill`ed is replaced, a new revision rolls out within
//! minimumHealthyPercent / maximumPercent at every observation, and a revision whose
//! container exits at once trips the deployment circuit breaker, which rolls back.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, describe_tasks, wait_for, wait_instances,
};
use berth_e2e::{BerthServer, ok_json, stdout_of, unique};
use serde_json::{Value, json};

struct Svc<'a> {
    s: &'a BerthServer,
    cluster: String,
    name: String,
}

impl Svc<'_> {
    fn describe(&self) -> Value {
        let v = ok_json(&self.s.aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            &self.cluster,
            "--services",
            &self.name,
        ]));
        v["services"][0].clone()
    }

    /// The service's tasks, described (stopped ones included when `all`).
    fn tasks(&self, desired: &str) -> Vec<Value> {
        let v = ok_json(&self.s.aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            &self.cluster,
            "--service-name",
            &self.name,
            "--desired-status",
            desired,
        ]));
        let arns: Vec<String> = v["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        if arns.is_empty() {
            return Vec::new();
        }
        describe_tasks(self.s, &self.cluster, &arns)
    }

    /// Every task of the service (both desired statuses), in one DescribeTasks.
    fn all_tasks(&self) -> Vec<Value> {
        let mut arns = BTreeSet::new();
        for desired in ["RUNNING", "STOPPED"] {
            let v = ok_json(&self.s.aws(&[
                "ecs",
                "list-tasks",
                "--cluster",
                &self.cluster,
                "--service-name",
                &self.name,
                "--desired-status",
                desired,
            ]));
            for a in v["taskArns"].as_array().unwrap() {
                arns.insert(a.as_str().unwrap().to_owned());
            }
        }
        let arns: Vec<String> = arns.into_iter().collect();
        describe_tasks(self.s, &self.cluster, &arns)
    }

    fn events(&self) -> Vec<String> {
        self.describe()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn register(s: &BerthServer, family: &str, image: &str, script: &str) -> String {
    register_container(
        s,
        family,
        json!({"name": "app", "image": image, "essential": true, "memory": 32,
               "entryPoint": ["sh", "-c"], "command": [script]}),
    )
}

fn register_container(s: &BerthServer, family: &str, container: Value) -> String {
    let definitions = json!([container]).to_string();
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--container-definitions",
        &definitions,
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn running_of(tasks: &[Value], td: &str) -> usize {
    tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["taskDefinitionArn"] == td)
        .count()
}

#[test]
fn a_service_keeps_its_count_rolls_out_within_bounds_and_rolls_back_a_failing_revision() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "svc-");
    let _agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    let family = unique("svc-app-");
    let v1 = register(&s, &family, &image, "exec sleep 100000");
    let name = unique("web-");
    let svc = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: name.clone(),
    };
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
        "--task-definition",
        &v1,
        "--desired-count",
        "3",
    ]));

    // 1. It reaches its desired count, as the CLI's own waiter judges.
    let waited = s.aws(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        &cluster,
        "--services",
        &name,
    ]);
    assert!(waited.status.success(), "{}", stdout_of(&waited));
    let service = svc.describe();
    assert_eq!(service["runningCount"], 3, "{service:#}");
    assert_eq!(service["deployments"].as_array().unwrap().len(), 1);
    // The deployment completes once its tasks have stayed up (a few seconds without
    // health checks).
    let service = wait_for(
        "the deployment to complete",
        Duration::from_secs(30),
        || {
            let service = svc.describe();
            (service["deployments"][0]["rolloutState"] == "COMPLETED").then_some(service)
        },
    );
    assert_eq!(service["deployments"][0]["runningCount"], 3, "{service:#}");
    let running = svc.tasks("RUNNING");
    assert_eq!(running_of(&running, &v1), 3);
    let deployment = service["deployments"][0]["id"].as_str().unwrap().to_owned();
    for t in &running {
        assert_eq!(t["group"], format!("service:{name}"));
        assert_eq!(t["startedBy"], deployment.as_str());
    }
    let steady = format!("(service {name}) has reached a steady state.");
    wait_for("the steady-state event", Duration::from_secs(10), || {
        svc.events().contains(&steady).then_some(())
    });
    let events = svc.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("(service {name}) has started 3 tasks: (task "))),
        "{events:#?}"
    );

    // 2. A task whose container is killed is replaced.
    let victim = running[0]["taskArn"].as_str().unwrap().to_owned();
    let container = running[0]["containers"][0]["runtimeId"].as_str().unwrap();
    assert!(s.docker(&["kill", container]).status.success());
    wait_for(
        "the killed task's replacement",
        Duration::from_secs(60),
        || {
            let now = svc.tasks("RUNNING");
            let fresh: BTreeSet<&str> = now
                .iter()
                .filter(|t| t["lastStatus"] == "RUNNING")
                .map(|t| t["taskArn"].as_str().unwrap())
                .collect();
            (fresh.len() == 3 && !fresh.contains(victim.as_str())).then_some(())
        },
    );
    let stopped = describe_tasks(&s, &cluster, std::slice::from_ref(&victim));
    assert_eq!(stopped[0]["lastStatus"], "STOPPED");
    assert_eq!(
        stopped[0]["stopCode"], "EssentialContainerExited",
        "{:#}",
        stopped[0]
    );

    // 3. A new revision rolls out within 100% / 200% at every observation. Its container
    //    turns healthy only after a few seconds: old tasks stop only once new ones are.
    let v2 = register_container(
        &s,
        &family,
        json!({"name": "app", "image": image, "essential": true, "memory": 32,
               "entryPoint": ["sh", "-c"],
               "command": ["(sleep 4 && touch /ready) & exec sleep 100000"],
               "healthCheck": {"command": ["CMD-SHELL", "test -f /ready"],
                               "interval": 5, "timeout": 2, "retries": 2}}),
    );
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--task-definition",
        &v2,
    ]));
    let mut observations = 0;
    wait_for("the rollout to v2", Duration::from_secs(120), || {
        // One DescribeTasks of every task of the service: a consistent view.
        let all = svc.all_tasks();
        let not_stopped = all.iter().filter(|t| t["lastStatus"] != "STOPPED").count();
        let running = all.iter().filter(|t| t["lastStatus"] == "RUNNING").count();
        observations += 1;
        assert!(not_stopped <= 6, "over maximumPercent: {not_stopped} tasks");
        assert!(
            running >= 3,
            "under minimumHealthyPercent: {running} running"
        );
        let current: Vec<Value> = all
            .into_iter()
            .filter(|t| t["desiredStatus"] == "RUNNING")
            .collect();
        let service = svc.describe();
        let deployments = service["deployments"].as_array().unwrap();
        (deployments.len() == 1
            && deployments[0]["rolloutState"] == "COMPLETED"
            && running_of(&current, &v2) == 3
            && current.len() == 3)
            .then_some(())
    });
    assert!(observations > 1);
    let service = svc.describe();
    assert_eq!(service["taskDefinition"], v2.as_str());
    assert_eq!(service["runningCount"], 3);

    // 4. A revision whose container exits at once: the circuit breaker fails it and rolls
    //    back to v2.
    let v3 = register(&s, &family, &image, "exit 1");
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--task-definition",
        &v3,
        "--deployment-configuration",
        "deploymentCircuitBreaker={enable=true,rollback=true},maximumPercent=200,minimumHealthyPercent=100",
    ]));
    wait_for(
        "the rollback to v2 to complete",
        Duration::from_secs(120),
        || {
            let service = svc.describe();
            let deployments = service["deployments"].as_array().unwrap();
            (deployments.len() == 1
                && deployments[0]["taskDefinition"] == v2.as_str()
                && deployments[0]["rolloutState"] == "COMPLETED"
                && service["runningCount"] == 3)
                .then_some(())
        },
    );
    // v3's tasks failed (at least the breaker's threshold, 3 for 3 tasks), and the events
    // say what happened. (The failed deployment leaves the list once its tasks are gone.)
    let v3_failed = svc
        .all_tasks()
        .iter()
        .filter(|t| {
            t["taskDefinitionArn"] == v3.as_str()
                && t["lastStatus"] == "STOPPED"
                && t["stopCode"] == "EssentialContainerExited"
        })
        .count();
    assert!(v3_failed >= 3, "{v3_failed} failed v3 tasks");
    let events = svc.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains("rolling back to deployment")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("deployment failed: tasks failed to start.")),
        "{events:#?}"
    );
    assert_eq!(running_of(&svc.tasks("RUNNING"), &v2), 3);
}
