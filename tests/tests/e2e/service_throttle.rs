//! ECS's service throttle with real Docker, a real `berth agent` and the real `aws` CLI: two
//! services whose tasks keep failing to start — one (awsvpc) whose container exits at once,
//! one whose image tag was never pushed — side by side for three minutes. Each creates no
//! more tasks than the back-off schedule allows, keeps retrying, says it is throttled in its
//! events, and an UpdateService takes it out of the back-off at once. Afterwards `berth
//! down` leaves no container, warm or infra container or network of the installation.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{Agent, cluster_with_image, register, wait_for, wait_instances};
use berth_e2e::service::Svc;
use berth_e2e::{BerthServer, epoch_seconds, ok_json, unique};
use berth_scheduler::service::{max_attempts_within, throttle_delay};
use serde_json::{Value, json};

/// How long the services are watched.
const WINDOW_SECONDS: f64 = 180.0;

/// The tasks the service created within `seconds` of `created`.
fn created_within(svc: &Svc, created: f64, seconds: f64) -> Vec<Value> {
    svc.all_tasks()
        .into_iter()
        .filter(|t| epoch_seconds(&t["createdAt"]) - created <= seconds)
        .collect()
}

#[test]
fn services_whose_tasks_keep_failing_to_start_are_throttled_until_updated() {
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "thr-");
    let mut agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    // (a) its container exits at once, in its own network namespace (so infra and warm
    // containers and a subnet network come into play); (b) its image is in a repository of
    // Berth's registry, but under a tag never pushed.
    let exits = ok_json(
        &s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            &unique("thr-exits-"),
            "--network-mode",
            "awsvpc",
            "--container-definitions",
            &json!([{"name": "app", "image": image, "essential": true, "memory": 32,
                 "entryPoint": ["sh", "-c"], "command": ["exit 1"]}])
            .to_string(),
        ]),
    )["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing_repo = unique("thr-missing-");
    s.create_repo(&missing_repo, &[]);
    let missing = register(
        &s,
        &unique("thr-pull-"),
        json!([{"name": "app", "image": format!("{}/{missing_repo}:nope", s.host()),
                "essential": true, "memory": 32,
                "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]}]),
    );
    let services: Vec<Svc> = [&exits, &missing]
        .iter()
        .map(|td| {
            let name = unique("thr-web-");
            let mut args = vec![
                "ecs",
                "create-service",
                "--cluster",
                &cluster,
                "--service-name",
                &name,
                "--task-definition",
                td,
                "--desired-count",
                "1",
            ];
            if *td == &exits {
                args.extend([
                    "--network-configuration",
                    "awsvpcConfiguration={subnets=[subnet-default],securityGroups=[sg-default]}",
                ]);
            }
            ok_json(&s.aws(&args));
            Svc {
                s: &s,
                cluster: cluster.clone(),
                name,
            }
        })
        .collect();
    let started = Instant::now();
    let created: Vec<f64> = services
        .iter()
        .map(|svc| epoch_seconds(&svc.describe()["createdAt"]))
        .collect();

    // Every attempt fails within seconds, so the schedule (attempts at 0, 0, 10, 30, 70,
    // 150 s, … when failures are instant) bounds the tasks created in the window. One more
    // is allowed for the window's edge: the window is measured from the service's
    // createdAt, the schedule from the stoppedAt of each failure, both on the server's
    // clock, so a retry due right at 180 s may fall either side of it.
    let bound = max_attempts_within(WINDOW_SECONDS) as usize + 1;
    while started.elapsed().as_secs_f64() < WINDOW_SECONDS + 2.0 {
        for (svc, created) in services.iter().zip(&created) {
            let count = created_within(svc, *created, WINDOW_SECONDS).len();
            assert!(count <= bound, "{}: {count} tasks > {bound}", svc.name);
        }
        thread::sleep(Duration::from_secs(10));
    }
    for (svc, created) in services.iter().zip(&created) {
        let tasks = created_within(svc, *created, WINDOW_SECONDS);
        eprintln!(
            "{}: {} tasks created in {WINDOW_SECONDS} s (bound {bound})",
            svc.name,
            tasks.len()
        );
        assert!(
            (3..=bound).contains(&tasks.len()),
            "{}: {} tasks in {WINDOW_SECONDS} s, expected 3..={bound}: {tasks:#?}",
            svc.name,
            tasks.len()
        );
        let events = svc.events();
        let throttled = format!(
            "(service {}) is unable to consistently start tasks successfully.",
            svc.name
        );
        assert!(events.contains(&throttled), "{events:#?}");
        // Said once, not with every failure.
        assert_eq!(events.iter().filter(|e| **e == throttled).count(), 1);
        // The scheduler's bookkeeping stays out of the API's answer.
        let described = svc.describe();
        assert!(described.get("throttle").is_none(), "{described:#}");
    }

    // (a) ran, then exited: EssentialContainerExited. (b) never ran: TaskFailedToStart,
    // with the pull error.
    let stopped = |svc: &Svc| -> Vec<Value> {
        svc.all_tasks()
            .into_iter()
            .filter(|t| t["lastStatus"] == "STOPPED")
            .collect()
    };
    for t in stopped(&services[0]) {
        assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    }
    let pull_failures = stopped(&services[1]);
    assert!(pull_failures.len() >= 3);
    for t in &pull_failures {
        assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
        let reason = t["stoppedReason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("CannotPullContainerError"), "{t:#}");
    }

    // (a) now waits minutes for its next attempt; an UpdateService ends that at once. When
    // the schedule's next retry is due soon anyway, it is let come and go first, so that the
    // update lands well before a retry (how far into the schedule the test is depends on
    // how long the steps above took).
    let svc = &services[0];
    let (tasks, scheduled) = loop {
        let tasks = wait_for("its last attempt to stop", Duration::from_secs(20), || {
            let tasks = svc.all_tasks();
            tasks
                .iter()
                .all(|t| t["lastStatus"] == "STOPPED")
                .then_some(tasks)
        });
        // One task an attempt, every one failed: the schedule's next retry.
        let last_failure = tasks
            .iter()
            .map(|t| epoch_seconds(&t["stoppedAt"]))
            .fold(f64::MIN, f64::max);
        let scheduled = last_failure + throttle_delay(tasks.len() as u32);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        if scheduled - now > 45.0 {
            break (tasks, scheduled);
        }
        let attempts = tasks.len();
        wait_for("the retry due soon", Duration::from_secs(90), || {
            (svc.all_tasks().len() > attempts).then_some(())
        });
    };
    let before: BTreeSet<String> = tasks
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect();
    let updated = epoch_seconds(
        &ok_json(&s.aws(&[
            "ecs",
            "update-service",
            "--cluster",
            &cluster,
            "--service",
            &svc.name,
            "--force-new-deployment",
        ]))["service"]["deployments"][0]["createdAt"],
    );
    assert!(
        scheduled - updated > 30.0,
        "the next retry was due anyway {:.0} s after the update",
        scheduled - updated
    );
    let fresh = wait_for(
        "a task started after the update",
        Duration::from_secs(30),
        || {
            svc.all_tasks()
                .into_iter()
                .find(|t| !before.contains(t["taskArn"].as_str().unwrap()))
        },
    );
    // Server timestamps, not the test's clock: the new task was created before the
    // throttled retry was due (at least 30 s after the update, checked above), so the
    // update, not the schedule, started it.
    let created = epoch_seconds(&fresh["createdAt"]);
    eprintln!("started {:.1} s after the update", created - updated);
    assert!(
        created < scheduled,
        "started {:.1} s after the update, when the throttled retry was due anyway ({:.1} s)",
        created - updated,
        scheduled - updated
    );

    // With the agent and the server gone, `berth down` removes everything of the
    // installation on this host: task, infra and warm containers, the subnet's network.
    let installation = s.installation();
    let label = format!("label=berth.installation={installation}");
    let count = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .args(["-q", "--filter", &label])
            .output()
            .unwrap();
        berth_e2e::stdout_of(&out).split_whitespace().count()
    };
    agent.kill9();
    assert!(
        count(&["ps", "-a"]) > 0,
        "the failed tasks' containers were kept"
    );
    assert_eq!(count(&["network", "ls"]), 1, "subnet-default's network");
    let warm = s.docker(&[
        "ps",
        "-aq",
        "--filter",
        &label,
        "--filter",
        "label=berth.warm-infra=true",
    ]);
    assert!(
        !berth_e2e::stdout_of(&warm).trim().is_empty(),
        "a warm infra container"
    );
    drop(services);
    s.kill9();
    let down = s.down(&[]);
    assert!(down.status.success(), "{}", berth_e2e::stderr_of(&down));
    assert_eq!(count(&["ps", "-a"]), 0);
    assert_eq!(count(&["network", "ls"]), 0);
}
