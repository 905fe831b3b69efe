//! Several `berth server` replicas on one etcd (a three-member cluster from Debian's
//! etcd-server on loopback ports): they serve one state; the controllers run on the one
//! holding the lead, which moves when it dies; every controller write is fenced. The agent
//! here is `berth agent --runtime simulated` (a SIMULATION, labelled: container life cycles
//! acted out in memory; the server, the agent's sessions, placement and the scheduler are
//! the real thing) so that what is tested is the control plane. Each test says SKIPPED
//! plainly when etcd is not installed (scripts/test.sh installs it).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{self, Agent, wait_for, wait_instances};
use berth_e2e::partition::CutProxy;
use berth_e2e::service::Svc;
use berth_e2e::{BerthServer, ServerOptions, ok_json, random_secret, unique};
use berth_registry::s3_testing::MotoServer;
use berth_store::testing::EtcdCluster;
use berth_store::{EtcdStore, Store};
use serde_json::{Value, json};

fn etcd() -> Option<EtcdCluster> {
    let cluster = EtcdCluster::start(3);
    if cluster.is_none() {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
    }
    cluster
}

/// `n` replicas on `etcd`, sharing the root credentials.
fn replicas(etcd: &EtcdCluster, n: usize) -> Vec<BerthServer> {
    let secret = random_secret();
    (0..n)
        .map(|_| {
            BerthServer::start_with(ServerOptions {
                args: vec!["--store".into(), etcd.url()],
                secret_key: Some(secret.clone()),
                env: vec![("BERTH_AGENT_TIMEOUT_SECONDS".into(), "30".into())],
                ..Default::default()
            })
        })
        .collect()
}

/// The replica holding the lead: its index, read from the leader key in etcd.
fn leader(store: &EtcdStore, replicas: &[BerthServer], alive: &[bool]) -> Option<usize> {
    let kv = store.get("berth/leader").ok()??;
    let name = String::from_utf8(kv.value).ok()?;
    replicas
        .iter()
        .enumerate()
        .position(|(i, r)| alive[i] && name.starts_with(&format!("{}/", r.endpoint())))
}

fn describe_service(s: &BerthServer, cluster: &str, name: &str) -> Value {
    svc(s, cluster, name).describe()
}

fn svc<'a>(s: &'a BerthServer, cluster: &str, name: &str) -> Svc<'a> {
    Svc {
        s,
        cluster: cluster.to_owned(),
        name: name.to_owned(),
    }
}

fn register(s: &BerthServer, family: &str, seconds: &str) -> String {
    docker_agent::register(
        s,
        family,
        json!([{"name": "app", "image": "busybox", "essential": true,
                "cpu": 10, "memory": 16, "command": ["sleep", seconds]}]),
    )
}

/// Tasks of the service that are meant to run (desired RUNNING), by ARN.
fn live_tasks(s: &BerthServer, cluster: &str, service: &str) -> Vec<String> {
    svc(s, cluster, service).task_arns("RUNNING")
}

fn wait_new_leader(store: &EtcdStore, replicas: &[BerthServer], alive: &[bool]) -> usize {
    wait_for("a new leader", Duration::from_secs(30), || {
        leader(store, replicas, alive)
    })
}

/// Three replicas serve one state; the service scheduler keeps a service on the leader; the
/// leader is killed twice (once while RunTask calls are acknowledged by it, once during a
/// rolling deployment): the lead moves, no acknowledged task is lost, none is duplicated,
/// the deployment keeps within maximumPercent and completes, and the agent reconnects to a
/// surviving replica.
#[test]
fn the_lead_moves_when_the_leader_dies_and_nothing_acknowledged_is_lost() {
    let Some(etcd) = etcd() else { return };
    let store = EtcdStore::open(etcd.config()).unwrap();
    let mut servers = replicas(&etcd, 3);
    let mut alive = vec![true; 3];
    let cluster = unique("replicas-");
    ok_json(&servers[0].aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    // One state: made through one replica, seen through another.
    let listed = ok_json(&servers[1].aws(&["ecs", "list-clusters"]));
    assert!(listed.to_string().contains(&cluster), "{listed}");

    let endpoints: Vec<String> = servers.iter().map(|s| s.endpoint()).collect();
    let _agent = Agent::start_on(
        &servers[0],
        &endpoints.join(","),
        &cluster,
        &["--runtime", "simulated"],
        &[],
    );
    wait_instances(&servers[2], &cluster, 1);
    let v1 = register(&servers[0], &unique("rep-"), "3600");
    let service = unique("svc-");
    ok_json(&servers[1].aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--task-definition",
        &v1,
        "--desired-count",
        "4",
    ]));
    wait_for("4 running", Duration::from_secs(60), || {
        (describe_service(&servers[2], &cluster, &service)["runningCount"] == 4).then_some(())
    });

    // 1. kill -9 the leader while it acknowledges RunTask calls.
    let first = wait_new_leader(&store, &servers, &alive);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let client = servers[first].json_client();
        let (acknowledged, stop, cluster, v1) = (
            acknowledged.clone(),
            stop.clone(),
            cluster.clone(),
            v1.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let body = json!({"cluster": cluster, "taskDefinition": v1, "count": 1});
                match client.call("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", &body) {
                    Ok(r) if r.status == 200 => {
                        let answer: Value = serde_json::from_slice(&r.body).unwrap();
                        if let Some(arn) = answer["tasks"][0]["taskArn"].as_str() {
                            acknowledged.lock().unwrap().push(arn.to_owned());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
    };
    wait_for(
        "RunTask acknowledged a few times",
        Duration::from_secs(60),
        || (acknowledged.lock().unwrap().len() >= 5).then_some(()),
    );
    let killed_at = Instant::now();
    servers[first].kill9();
    alive[first] = false;
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
    let second = wait_new_leader(&store, &servers, &alive);
    eprintln!(
        "the lead moved from replica {first} to {second} {:?} after kill -9",
        killed_at.elapsed()
    );
    let survivor = second;
    let acked = acknowledged.lock().unwrap().clone();
    for chunk in acked.chunks(50) {
        let mut args = vec!["ecs", "describe-tasks", "--cluster", &cluster, "--tasks"];
        args.extend(chunk.iter().map(String::as_str));
        let found = ok_json(&servers[survivor].aws(&args));
        assert_eq!(
            found["tasks"].as_array().unwrap().len(),
            chunk.len(),
            "every acknowledged RunTask's task is there: {:#}",
            found["failures"]
        );
    }

    // 2. The new leader's scheduler acts: scale the service up through a survivor.
    ok_json(&servers[survivor].aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--desired-count",
        "6",
    ]));
    wait_for("6 running", Duration::from_secs(60), || {
        let svc = describe_service(&servers[survivor], &cluster, &service);
        (svc["runningCount"] == 6 && live_tasks(&servers[survivor], &cluster, &service).len() == 6)
            .then_some(())
    });

    // 3. A rolling deployment; the leader dies in the middle of it.
    let v2 = register(&servers[survivor], &unique("rep-"), "3601");
    ok_json(&servers[survivor].aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-definition",
        &v2,
    ]));
    // The deployment has just begun (the simulated runtime finishes it in seconds): the
    // leader dies now.
    let current = leader(&store, &servers, &alive).expect("a leader");
    let last_alive = (0..3).find(|&i| alive[i] && i != current).unwrap();
    servers[current].kill9();
    alive[current] = false;
    let mut max_live = 0;
    let mut seen = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut check = || {
        assert!(
            Instant::now() < deadline,
            "the deployment did not complete in 120 s; last seen: {seen:#}"
        );
        let r = &servers[last_alive];
        let live = live_tasks(r, &cluster, &service).len();
        max_live = max_live.max(live);
        let svc = describe_service(r, &cluster, &service);
        seen = svc.clone();
        let deployments = svc["deployments"].as_array().unwrap().len();
        let done = deployments == 1
            && svc["deployments"][0]["taskDefinition"] == v2.as_str()
            && svc["deployments"][0]["rolloutState"] == "COMPLETED"
            && svc["runningCount"] == 6;
        done.then_some(svc)
    };
    let completed = loop {
        if let Some(svc) = check() {
            break svc;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        max_live <= 12,
        "at most maximumPercent (200%) of 6 tasks at once, saw {max_live}"
    );
    let last = &servers[last_alive];
    let tasks = live_tasks(last, &cluster, &service);
    assert_eq!(tasks.len(), 6, "{completed:#}");
    assert_eq!(tasks.iter().collect::<HashSet<_>>().len(), 6);
    let mut args = vec!["ecs", "describe-tasks", "--cluster", &cluster, "--tasks"];
    args.extend(tasks.iter().map(String::as_str));
    let described = ok_json(&last.aws(&args));
    for t in described["tasks"].as_array().unwrap() {
        assert_eq!(t["taskDefinitionArn"], v2.as_str());
    }
    // The agent found a surviving replica and stays connected.
    let instances = ok_json(&last.aws(&["ecs", "list-container-instances", "--cluster", &cluster]));
    let arn = instances["containerInstanceArns"][0].as_str().unwrap();
    let described = ok_json(&last.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        arn,
    ]));
    assert_eq!(
        described["containerInstances"][0]["agentConnected"], true,
        "{described:#}"
    );
}

/// RunTask through every replica at once into one cluster: each replica passes its calls on
/// to the leader, whose placement lane is the cluster's only one, so no call fails for
/// lanes colliding (before, 0.1–2.7 % answered ServerException under such load) and no
/// instance is over-committed. Then the leader is killed with calls in flight: every call
/// acknowledged has its task, and calls through a surviving follower go on being served.
#[test]
fn run_task_through_every_replica_is_placed_by_the_leader() {
    let Some(etcd) = etcd() else { return };
    let store = EtcdStore::open(etcd.config()).unwrap();
    let mut servers = replicas(&etcd, 3);
    let mut alive = vec![true; 3];
    let cluster = unique("lanes-");
    ok_json(&servers[0].aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let endpoints: Vec<String> = servers.iter().map(|s| s.endpoint()).collect();
    let _agents: Vec<Agent> = (0..2)
        .map(|i| {
            Agent::start_on(
                &servers[i],
                &endpoints.join(","),
                &cluster,
                &["--runtime", "simulated"],
                &[],
            )
        })
        .collect();
    wait_instances(&servers[2], &cluster, 2);
    let family = unique("lanes-");
    let td = docker_agent::register(
        &servers[0],
        &family,
        json!([{"name": "app", "image": "busybox", "essential": true,
                "cpu": 4, "memory": 8, "command": ["sleep", "3600"]}]),
    );
    let leader_at_start = wait_new_leader(&store, &servers, &alive);

    // Four clients per replica, each RunTask of two tasks, until told to stop.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let runners: Vec<_> = (0..12)
        .map(|i| {
            let client = servers[i % 3].json_client();
            let (acknowledged, failures, stop, cluster, td) = (
                acknowledged.clone(),
                failures.clone(),
                stop.clone(),
                cluster.clone(),
                td.clone(),
            );
            std::thread::spawn(move || {
                let mut calls = 0;
                while !stop.load(Ordering::SeqCst) && calls < 40 {
                    calls += 1;
                    let body = json!({"cluster": cluster, "taskDefinition": td, "count": 2});
                    match client.call("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", &body) {
                        Ok(r) if r.status == 200 => {
                            let answer: Value = serde_json::from_slice(&r.body).unwrap();
                            let mut acknowledged = acknowledged.lock().unwrap();
                            for task in answer["tasks"].as_array().unwrap() {
                                acknowledged.push(task["taskArn"].as_str().unwrap().to_owned());
                            }
                            if let Some(f) = answer["failures"].as_array().filter(|f| !f.is_empty())
                            {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("placement failures: {f:?}"));
                            }
                        }
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "HTTP {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )),
                        Err(e) => failures.lock().unwrap().push(format!("no answer: {e}")),
                    }
                }
            })
        })
        .collect();
    for runner in runners {
        runner.join().unwrap();
    }
    let failed = failures.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "every RunTask placed its tasks: {failed:#?}"
    );
    let placed = acknowledged.lock().unwrap().clone();
    assert_eq!(placed.len(), 12 * 40 * 2);
    assert_eq!(placed.iter().collect::<HashSet<_>>().len(), placed.len());
    // No instance over-committed: what each registered minus what its tasks reserve is
    // what it shows as remaining.
    let instances = wait_instances(&servers[1], &cluster, 2);
    let mut running = 0;
    for instance in &instances {
        let cpu = |resources: &Value| {
            resources
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == "CPU")
                .unwrap()["integerValue"]
                .as_i64()
                .unwrap()
        };
        let tasks = instance["runningTasksCount"].as_i64().unwrap()
            + instance["pendingTasksCount"].as_i64().unwrap();
        assert_eq!(
            cpu(&instance["registeredResources"]) - cpu(&instance["remainingResources"]),
            4 * tasks,
            "{instance:#}"
        );
        running += tasks;
    }
    assert_eq!(running as usize, placed.len());

    // The leader dies with calls in flight through the other two replicas.
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader_at_start).collect();
    stop.store(false, Ordering::SeqCst);
    acknowledged.lock().unwrap().clear();
    let in_flight: Vec<_> = followers
        .iter()
        .map(|&i| {
            let client = servers[i].json_client();
            let (acknowledged, stop, cluster, td) = (
                acknowledged.clone(),
                stop.clone(),
                cluster.clone(),
                td.clone(),
            );
            std::thread::spawn(move || {
                let mut after_stop = 0;
                while after_stop < 5 {
                    if stop.load(Ordering::SeqCst) {
                        after_stop += 1;
                    }
                    let body = json!({"cluster": cluster, "taskDefinition": td, "count": 1});
                    match client.call("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", &body) {
                        Ok(r) if r.status == 200 => {
                            let answer: Value = serde_json::from_slice(&r.body).unwrap();
                            if let Some(arn) = answer["tasks"][0]["taskArn"].as_str() {
                                acknowledged.lock().unwrap().push(arn.to_owned());
                            }
                        }
                        _ => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect();
    wait_for(
        "RunTask acknowledged through the followers",
        Duration::from_secs(60),
        || (acknowledged.lock().unwrap().len() >= 10).then_some(()),
    );
    servers[leader_at_start].kill9();
    alive[leader_at_start] = false;
    let next = wait_new_leader(&store, &servers, &alive);
    // Calls go on after the new leader is in place, then stop.
    let before = acknowledged.lock().unwrap().len();
    wait_for(
        "RunTask served after the failover",
        Duration::from_secs(60),
        || (acknowledged.lock().unwrap().len() >= before + 5).then_some(()),
    );
    stop.store(true, Ordering::SeqCst);
    for runner in in_flight {
        runner.join().unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    for chunk in acked.chunks(100) {
        let mut args = vec!["ecs", "describe-tasks", "--cluster", &cluster, "--tasks"];
        args.extend(chunk.iter().map(String::as_str));
        let found = ok_json(&servers[next].aws(&args));
        assert_eq!(
            found["tasks"].as_array().unwrap().len(),
            chunk.len(),
            "every acknowledged RunTask's task is there: {:#}",
            found["failures"]
        );
    }
}

/// The UTC timestamp of the first line of `log` that contains `what` (tracing's RFC 3339
/// prefix, which orders as text).
fn logged_at(log: &str, what: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

/// A leader cut off from etcd (a proxy between it and every member stops passing bytes, as a
/// partition drops packets) stops acting before another replica is elected: its log says
/// it stepped down earlier than the other's says it was elected; the new leader's scheduler
/// then acts. Then the new leader is paused (SIGSTOP) past its lease and woken again: the
/// lead has moved back meanwhile, the woken replica's controllers are fenced (etcd refuses
/// their writes) and the service ends with exactly its desired count.
#[test]
fn a_leader_cut_off_from_etcd_steps_down_before_another_takes_over() {
    let Some(etcd) = etcd() else { return };
    let store = EtcdStore::open(etcd.config()).unwrap();
    let proxies: Vec<CutProxy> = etcd
        .endpoints()
        .iter()
        .map(|e| CutProxy::start(e))
        .collect();
    let through_proxies = format!(
        "etcd://{}",
        proxies
            .iter()
            .map(|p| p.addr().to_owned())
            .collect::<Vec<_>>()
            .join(",")
    );
    let secret = random_secret();
    let options = |url: String| ServerOptions {
        args: vec!["--store".into(), url],
        secret_key: Some(secret.clone()),
        env: vec![("BERTH_AGENT_TIMEOUT_SECONDS".into(), "30".into())],
        ..Default::default()
    };
    let first = BerthServer::start_with(options(through_proxies));
    wait_for("the first replica leads", Duration::from_secs(30), || {
        leader(&store, std::slice::from_ref(&first), &[true])
    });
    let second = BerthServer::start_with(options(etcd.url()));
    let servers = [first, second];
    let alive = [true, true];

    let cluster = unique("cut-");
    ok_json(&servers[1].aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let _agent = Agent::start_on(
        &servers[1],
        &servers[1].endpoint(),
        &cluster,
        &["--runtime", "simulated"],
        &[],
    );
    wait_instances(&servers[1], &cluster, 1);
    let td = register(&servers[1], &unique("cut-"), "3600");
    let service = unique("svc-");
    ok_json(&servers[1].aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--task-definition",
        &td,
        "--desired-count",
        "3",
    ]));
    let running = |n: usize, via: usize| {
        wait_for(&format!("{n} running"), Duration::from_secs(60), || {
            let svc = describe_service(&servers[via], &cluster, &service);
            (svc["runningCount"] == n && live_tasks(&servers[via], &cluster, &service).len() == n)
                .then_some(())
        })
    };
    running(3, 1);

    // The partition.
    for p in &proxies {
        p.cut();
    }
    wait_for("the other replica leads", Duration::from_secs(30), || {
        (leader(&store, &servers, &alive) == Some(1)).then_some(())
    });
    let stepped_down = logged_at(&servers[0].stderr_log(), "stepped down as leader")
        .expect("the cut-off leader says it stepped down");
    let elected = logged_at(&servers[1].stderr_log(), "elected leader")
        .expect("the other replica says it was elected");
    assert!(
        stepped_down < elected,
        "the cut-off leader stepped down at {stepped_down}, after the other was elected at {elected}"
    );
    set_desired(&servers[1], &cluster, &service, 4);
    running(4, 1);
    for p in &proxies {
        p.heal();
    }

    // The new leader pauses past its lease; the lead moves back; it wakes up fenced.
    servers[1].signal("STOP");
    wait_for("the lead moves back", Duration::from_secs(30), || {
        (leader(&store, &servers, &alive) == Some(0)).then_some(())
    });
    set_desired(&servers[0], &cluster, &service, 5);
    // The agent's session is with the paused replica: the new task is placed (a record
    // meant to run) but not yet started, which is what the count below is about.
    wait_for("5 tasks meant to run", Duration::from_secs(60), || {
        (live_tasks(&servers[0], &cluster, &service).len() == 5).then_some(())
    });
    servers[1].signal("CONT");
    wait_for(
        "the woken replica steps down",
        Duration::from_secs(30),
        || {
            servers[1]
                .stderr_log()
                .contains("stepped down as leader")
                .then_some(())
        },
    );
    // Settled: still led by the first, exactly the desired count (no task started or
    // stopped by the woken replica's scheduler).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leader(&store, &servers, &alive), Some(0));
    assert_eq!(live_tasks(&servers[0], &cluster, &service).len(), 5);
    assert_eq!(
        describe_service(&servers[0], &cluster, &service)["desiredCount"],
        5
    );
}

fn set_desired(s: &BerthServer, cluster: &str, service: &str, n: usize) {
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        cluster,
        "--service",
        service,
        "--desired-count",
        &n.to_string(),
    ]));
}

/// Two replicas on one etcd and one bucket (moto_server): `docker push` through one, the
/// image pulled whole through the other (skopeo copies every blob out), with a registry
/// token the first one issued.
#[test]
fn docker_push_through_one_replica_pulls_through_another() {
    let Some(etcd) = etcd() else { return };
    let Some(moto) = MotoServer::start_or_skip("replicas::docker_push_through_one_replica") else {
        return;
    };
    let (a, b, _) = crate::registry_replicas::s3_replicas(&etcd, &moto);
    let repo = unique("across-");
    a.create_repo(&repo, &[]);
    a.docker_push_test_image(&repo, "v1");
    let creds = a.registry_creds();
    let out_dir = b.scratch("pulled");
    let copied = b.skopeo(&[
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{}/{repo}:v1", b.host()),
        &format!("oci:{}:v1", out_dir.display()),
    ]);
    berth_e2e::assert_ok(&copied, "skopeo copy through the other replica");
    let described = ok_json(&b.aws(&["ecr", "describe-images", "--repository-name", &repo]));
    assert_eq!(described["imageDetails"][0]["imageTags"][0], "v1");
}
