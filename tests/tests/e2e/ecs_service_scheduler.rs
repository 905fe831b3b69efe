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
use berth_e2e::service::Svc;
use berth_e2e::{BerthServer, ServerOptions, ok_json, stdout_of, unique};
use serde_json::{Value, json};

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
    //    turns healthy only 12+ s after it starts: old tasks stop only once new ones are,
    //    and the rollout is seen in progress more than once even when each look (several
    //    CLI calls) is slow on a loaded host.
    let v2 = register_container(
        &s,
        &family,
        json!({"name": "app", "image": image, "essential": true, "memory": 32,
               "entryPoint": ["sh", "-c"],
               "command": ["(sleep 12 && touch /ready) & exec sleep 100000"],
               "healthCheck": {"command": ["CMD-SHELL", "test -f /ready"],
                               "interval": 5, "timeout": 2, "retries": 2,
                               "startPeriod": 20}}),
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

/// Two agents. A REPLICA service of 4 and a DAEMON service; a standalone task on A.
/// Draining A moves the REPLICA tasks to B and stops A's daemon task, leaving the standalone
/// task alone; A back ACTIVE gets a daemon task again. Killing B's agent (past the agent
/// timeout) has its REPLICA tasks started again on A; when B's agent comes back, the extras
/// are stopped.
#[test]
fn draining_and_lost_agents_move_service_tasks_and_daemons_follow_instances() {
    let s = BerthServer::start_with(ServerOptions {
        args: [
            "--agent-timeout-seconds",
            "5",
            "--agent-heartbeat-seconds",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        ..ServerOptions::default()
    });
    let (cluster, image) = cluster_with_image(&s, "svc2-");
    let _a = Agent::start(&s, &cluster, &[]);
    let a = wait_instances(&s, &cluster, 1)[0]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b_agent = Agent::start(&s, &cluster, &[]);
    let b = wait_instances(&s, &cluster, 2)
        .iter()
        .map(|i| i["containerInstanceArn"].as_str().unwrap().to_owned())
        .find(|arn| *arn != a)
        .unwrap();
    let family = unique("svc2-app-");
    let td = register(&s, &family, &image, "exec sleep 100000");
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "ecs",
            "create-service",
            "--cluster",
            &cluster,
            "--service-name",
            name,
            "--task-definition",
            &td,
        ];
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args));
    };
    let web = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: unique("web-"),
    };
    let daemon = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: unique("agentd-"),
    };
    create(&web.name, &["--desired-count", "4"]);
    create(&daemon.name, &["--scheduling-strategy", "DAEMON"]);
    let standalone = ok_json(&s.aws(&[
        "ecs",
        "start-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &td,
        "--container-instances",
        &a,
    ]))["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .to_owned();

    // Where each service's RUNNING tasks are: instance ARN → count.
    let placement = |svc: &Svc| -> std::collections::BTreeMap<String, usize> {
        let mut on = std::collections::BTreeMap::new();
        for t in svc.tasks("RUNNING") {
            if t["lastStatus"] == "RUNNING" {
                *on.entry(t["containerInstanceArn"].as_str().unwrap().to_owned())
                    .or_insert(0) += 1;
            }
        }
        on
    };
    let spread = wait_for(
        "4 web tasks over both instances",
        Duration::from_secs(60),
        || {
            let on = placement(&web);
            (on.values().sum::<usize>() == 4 && on.len() == 2).then_some(on)
        },
    );
    assert_eq!(spread.values().copied().collect::<Vec<_>>(), [2, 2]);
    wait_for(
        "a daemon task on each instance",
        Duration::from_secs(60),
        || {
            let on = placement(&daemon);
            (on.len() == 2 && on.values().all(|n| *n == 1)).then_some(())
        },
    );
    assert_eq!(daemon.describe()["desiredCount"], 2);

    // Drain A.
    ok_json(&s.aws(&[
        "ecs",
        "update-container-instances-state",
        "--cluster",
        &cluster,
        "--container-instances",
        &a,
        "--status",
        "DRAINING",
    ]));
    wait_for("web tasks to move off A", Duration::from_secs(90), || {
        let on = placement(&web);
        (on.get(&b) == Some(&4) && on.len() == 1).then_some(())
    });
    wait_for("the daemon to leave A", Duration::from_secs(60), || {
        let on = placement(&daemon);
        (on.len() == 1 && on.contains_key(&b)).then_some(())
    });
    assert_eq!(daemon.describe()["desiredCount"], 1);
    let alone = describe_tasks(&s, &cluster, std::slice::from_ref(&standalone));
    assert_eq!(alone[0]["lastStatus"], "RUNNING", "standalone tasks stay");

    // A back ACTIVE: the daemon returns there.
    ok_json(&s.aws(&[
        "ecs",
        "update-container-instances-state",
        "--cluster",
        &cluster,
        "--container-instances",
        &a,
        "--status",
        "ACTIVE",
    ]));
    wait_for("the daemon back on A", Duration::from_secs(60), || {
        (placement(&daemon).len() == 2).then_some(())
    });

    // B's agent is lost: its web tasks start again on A.
    b_agent.kill9();
    wait_for("web tasks replaced on A", Duration::from_secs(90), || {
        (placement(&web).get(&a) == Some(&4)).then_some(())
    });
    // B's agent returns: its old tasks count again, and the extras are stopped.
    b_agent.kill9_and_restart(&s, &[]);
    wait_for("the extras stopped", Duration::from_secs(90), || {
        let on = placement(&web);
        let connected = ok_json(&s.aws(&[
            "ecs",
            "describe-container-instances",
            "--cluster",
            &cluster,
            "--container-instances",
            &b,
        ]))["containerInstances"][0]["agentConnected"]
            == true;
        (connected && on.values().sum::<usize>() == 4).then_some(())
    });
    // Once the extras have stopped, the service counts 4 again.
    wait_for("runningCount 4", Duration::from_secs(60), || {
        (web.describe()["runningCount"] == 4).then_some(())
    });
}

/// `kill -9` of the control plane in the middle of a rolling deployment (6 tasks, 100% /
/// 150%, new tasks healthy only after a few seconds, so it takes several steps): after the
/// restart the deployment carries on to COMPLETED, never over maximumPercent or under
/// minimumHealthyPercent at any observation, and no task is lost: Docker runs exactly the
/// service's 6 RUNNING tasks at the end.
#[test]
fn a_deployment_survives_kill_9_of_the_control_plane() {
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "svc3-");
    let _agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    let family = unique("svc3-app-");
    let v1 = register(&s, &family, &image, "exec sleep 100000");
    let name = unique("web-");
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
        "6",
        "--deployment-configuration",
        "maximumPercent=150,minimumHealthyPercent=100",
    ]));
    let completed = |s: &BerthServer, td: &str| {
        let v = ok_json(&s.aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            &cluster,
            "--services",
            &name,
        ]));
        let d = &v["services"][0]["deployments"];
        d.as_array().unwrap().len() == 1
            && d[0]["rolloutState"] == "COMPLETED"
            && d[0]["taskDefinition"] == td
            && d[0]["runningCount"] == 6
    };
    wait_for("v1 to complete", Duration::from_secs(90), || {
        completed(&s, &v1).then_some(())
    });
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
    let svc = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: name.clone(),
    };
    // In the middle: some v2 tasks placed, v1 tasks still running.
    wait_for(
        "the rollout to be under way",
        Duration::from_secs(60),
        || {
            let all = svc.all_tasks();
            let v2_placed = all
                .iter()
                .filter(|t| t["taskDefinitionArn"] == v2.as_str())
                .count();
            (v2_placed > 0).then_some(())
        },
    );
    s.restart(); // kill -9, then the same data dir again
    let svc = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: name.clone(),
    };
    wait_for(
        "the rollout to finish after the restart",
        Duration::from_secs(180),
        || {
            let all = svc.all_tasks();
            let not_stopped = all.iter().filter(|t| t["lastStatus"] != "STOPPED").count();
            let running = all.iter().filter(|t| t["lastStatus"] == "RUNNING").count();
            assert!(not_stopped <= 9, "over maximumPercent: {not_stopped} tasks");
            assert!(
                running >= 6,
                "under minimumHealthyPercent: {running} running"
            );
            completed(&s, &v2).then_some(())
        },
    );
    // Nothing lost, nothing extra: Docker runs exactly the 6 RUNNING v2 tasks.
    let running: BTreeSet<String> = svc
        .tasks("RUNNING")
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["taskDefinitionArn"] == v2.as_str())
        .map(|t| t["containers"][0]["runtimeId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(running.len(), 6);
    let out = s.docker(&[
        "ps",
        "--no-trunc",
        "--quiet",
        "--filter",
        &format!("label=com.amazonaws.ecs.cluster={cluster}"),
    ]);
    let in_docker: BTreeSet<String> = stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        in_docker, running,
        "Docker runs exactly the service's tasks"
    );
}

/// The ServiceDeployment APIs: a service's deployments as `list-service-deployments` and
/// `describe-service-deployments` show them (SUCCESSFUL once complete); a deployment that
/// cannot make progress (its tasks fit nowhere) is rolled back by `stop-service-deployment`
/// to the last completed revision; stopping it again is a ConflictException; unknown ARNs
/// are MISSING / ServiceDeploymentNotFoundException.
#[test]
fn service_deployments_are_listed_described_and_stopped_with_a_rollback() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "svc4-");
    let _agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    let family = unique("svc4-app-");
    let v1 = register(&s, &family, &image, "exec sleep 100000");
    let name = unique("web-");
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
        "2",
    ]));
    let list = || {
        ok_json(&s.aws(&[
            "ecs",
            "list-service-deployments",
            "--cluster",
            &cluster,
            "--service",
            &name,
        ]))["serviceDeployments"]
            .as_array()
            .unwrap()
            .clone()
    };
    let first = wait_for(
        "the first deployment to succeed",
        Duration::from_secs(60),
        || {
            let all = list();
            (all.len() == 1 && all[0]["status"] == "SUCCESSFUL").then(|| all[0].clone())
        },
    );
    let first_arn = first["serviceDeploymentArn"].as_str().unwrap().to_owned();
    assert!(first_arn.contains(&format!(":service-deployment/{cluster}/{name}/")));
    let v1_revision = first["targetServiceRevisionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(v1_revision.contains(&format!(":service-revision/{cluster}/{name}/")));

    // A revision no instance has room for: its deployment stays IN_PROGRESS.
    let huge = register_container(
        &s,
        &family,
        json!({"name": "app", "image": image, "essential": true, "memory": 4_000_000,
               "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]}),
    );
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--task-definition",
        &huge,
    ]));
    let stuck = wait_for("the new deployment", Duration::from_secs(30), || {
        let all = list();
        (all.len() == 2 && all[0]["status"] == "IN_PROGRESS").then(|| all[0].clone())
    });
    let stuck_arn = stuck["serviceDeploymentArn"].as_str().unwrap().to_owned();
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-service-deployments",
        "--service-deployment-arns",
        &stuck_arn,
        "arn:aws:ecs:us-east-1:000000000000:service-deployment/nope/nope/nope",
    ]));
    let d = &described["serviceDeployments"][0];
    assert_eq!(d["status"], "IN_PROGRESS", "{described:#}");
    assert_eq!(d["sourceServiceRevisions"][0]["arn"], v1_revision.as_str());
    assert_eq!(d["sourceServiceRevisions"][0]["runningTaskCount"], 2);
    assert_eq!(d["targetServiceRevision"]["runningTaskCount"], 0);
    assert_eq!(d["deploymentCircuitBreaker"]["status"], "DISABLED");
    assert_eq!(described["failures"][0]["reason"], "MISSING");

    // Stopped with a rollback: back to v1.
    let stopped = ok_json(&s.aws(&[
        "ecs",
        "stop-service-deployment",
        "--service-deployment-arn",
        &stuck_arn,
        "--stop-type",
        "ROLLBACK",
    ]));
    assert_eq!(stopped["serviceDeploymentArn"], stuck_arn.as_str());
    let rolled = wait_for("the rollback to succeed", Duration::from_secs(60), || {
        let v = ok_json(&s.aws(&[
            "ecs",
            "describe-service-deployments",
            "--service-deployment-arns",
            &stuck_arn,
        ]));
        let d = v["serviceDeployments"][0].clone();
        (d["status"] == "ROLLBACK_SUCCESSFUL").then_some(d)
    });
    assert_eq!(
        rolled["rollback"]["serviceRevisionArn"],
        v1_revision.as_str()
    );
    let service = ok_json(&s.aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &cluster,
        "--services",
        &name,
    ]))["services"][0]
        .clone();
    assert_eq!(service["taskDefinition"], v1.as_str());
    assert_eq!(service["runningCount"], 2);
    let again = s.aws(&[
        "ecs",
        "stop-service-deployment",
        "--service-deployment-arn",
        &stuck_arn,
    ]);
    berth_e2e::assert_aws_error(&again, "ConflictException");
    let unknown = s.aws(&[
        "ecs",
        "stop-service-deployment",
        "--service-deployment-arn",
        &format!("{first_arn}x"),
    ]);
    berth_e2e::assert_aws_error(&unknown, "ServiceDeploymentNotFoundException");

    // Deleting it: refused above zero unless forced; forced, it drains its tasks and is
    // INACTIVE once they have stopped.
    let refused = s.aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
    ]);
    berth_e2e::assert_aws_error(&refused, "InvalidParameterException");
    let deleted = ok_json(&s.aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--force",
    ]));
    assert_eq!(deleted["service"]["status"], "DRAINING");
    wait_for(
        "the deleted service to be INACTIVE",
        Duration::from_secs(60),
        || {
            let v = ok_json(&s.aws(&[
                "ecs",
                "describe-services",
                "--cluster",
                &cluster,
                "--services",
                &name,
            ]));
            (v["services"][0]["status"] == "INACTIVE").then_some(())
        },
    );
    let left = ok_json(&s.aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
    ]));
    assert_eq!(left["taskArns"], json!([]), "no task of it left running");
}
