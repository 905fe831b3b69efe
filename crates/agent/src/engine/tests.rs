//! The engine against the simulated runtime and a recording fake control plane.

use std::sync::atomic::Ordering;

use berth_model::LABEL_INSTALLATION;
use berth_model::ecs::ContainerStatus;
use berth_runtime::{ContainerState, HealthStatus, SimulatedRuntime, SimulationConfig};
use serde_json::{Value, json};

use super::reporter::{Report, coalesce};
use super::supervisor::ESSENTIAL_EXITED;
use super::*;
use crate::infra::{self, PAUSE_CONTAINER_NAME};
use crate::state::AgentState;
use crate::testing::*;
use crate::translate;

#[tokio::test]
async fn a_task_runs_and_reports_its_host_ports() {
    let h = Harness::start(config()).await;
    let t = task(
        "web",
        "RUNNING",
        json!([{
            "name": "web", "image": "busybox", "essential": true, "memory": 64,
            "command": ["httpd", "-f"],
            "portMappings": [
                {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                {"containerPort": 81, "hostPort": 0, "protocol": "tcp"}
            ]
        }]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    let running = h.control.wait_task(&task_arn("web"), "RUNNING").await;
    assert_eq!(running["cluster"], CLUSTER);
    assert!(running["pullStartedAt"].as_f64().is_some());
    assert!(running["pullStoppedAt"].as_f64() >= running["pullStartedAt"].as_f64());
    let web = &h.control.container_changes(&task_arn("web"), "web")[0];
    assert_eq!(web["status"], "RUNNING");
    let bindings = web["networkBindings"].as_array().unwrap();
    let host_port = |container_port: u64| {
        bindings
            .iter()
            .find(|b| b["containerPort"] == container_port)
            .map(|b| b["hostPort"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(host_port(80), 8080);
    assert!(
        (32768..=60999).contains(&host_port(81)),
        "dynamic port {}",
        host_port(81)
    );
    assert_eq!(
        running["containers"][0]["networkBindings"],
        web["networkBindings"]
    );

    let containers = h.containers_of(&task_arn("web")).await;
    assert_eq!(containers.len(), 1);
    let labels = &containers[0].labels;
    assert_eq!(labels[translate::LABEL_CLUSTER], CLUSTER);
    assert_eq!(labels[translate::LABEL_CONTAINER_NAME], "web");
    assert_eq!(labels[translate::LABEL_FAMILY], "fam");
    assert_eq!(labels[translate::LABEL_VERSION], "3");
    assert!(containers[0].name.starts_with("ecs-fam-3-web-"));

    // The same payload again (a reconnect) changes nothing.
    h.engine.apply_payload(vec![t]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.containers_of(&task_arn("web")).await.len(), 1);
    assert_eq!(h.control.task_changes(&task_arn("web")).len(), 1);
    let record = h.state.task(&task_arn("web")).unwrap();
    assert_eq!(record.known_status, TaskStatus::Running);
    assert_eq!(record.sent_status, Some(TaskStatus::Running));
    assert_eq!(
        record.containers["web"].sent_status,
        Some(ContainerStatus::Running)
    );
}

#[tokio::test]
async fn an_essential_container_exiting_stops_the_task() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "ess",
        "RUNNING",
        json!([
            {"name": "main", "image": "busybox", "essential": true,
             "command": ["sh", "-c", "sleep 2; exit 3"]},
            {"name": "sidecar", "image": "busybox", "essential": false, "command": ["sleep", "1000000"]}
        ]),
    )]);
    h.control.wait_task(&task_arn("ess"), "RUNNING").await;
    let stopped = h.control.wait_task(&task_arn("ess"), "STOPPED").await;
    assert_eq!(stopped["reason"], ESSENTIAL_EXITED);
    assert!(stopped["executionStoppedAt"].as_f64().is_some());
    let exit = |name: &str| {
        stopped["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["containerName"] == name)
            .map(|c| (c["status"].clone(), c["exitCode"].clone()))
            .unwrap()
    };
    assert_eq!(exit("main"), (json!("STOPPED"), json!(3)));
    // The sidecar was stopped with SIGTERM.
    assert_eq!(exit("sidecar"), (json!("STOPPED"), json!(143)));
    let main = h.control.container_changes(&task_arn("ess"), "main");
    assert_eq!(main.last().unwrap()["exitCode"], 3);
    // Container changes come before the task's.
    let order: Vec<String> = h
        .control
        .changes()
        .iter()
        .filter(|(_, c)| c["status"] == "STOPPED")
        .map(|(kind, _)| kind.clone())
        .collect();
    assert_eq!(order.last().map(String::as_str), Some("task"));
}

#[tokio::test]
async fn depends_on_orders_start_up() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "deps",
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox", "essential": true, "command": ["httpd"],
             "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"},
                           {"containerName": "db", "condition": "HEALTHY"}]},
            {"name": "migrate", "image": "busybox", "essential": false,
             "command": ["sh", "-c", "sleep 1; exit 0"]},
            {"name": "db", "image": "busybox", "essential": true, "command": ["db"],
             "dependsOn": [{"containerName": "migrate", "condition": "START"}],
             "dockerConfig": {"config": "{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,\"Retries\":3}}"}}
        ]),
    )]);
    h.control.wait_task(&task_arn("deps"), "RUNNING").await;
    // The order as the runtime saw it (reports may travel together in one task change).
    let mut times = std::collections::HashMap::new();
    for name in ["web", "migrate", "db"] {
        let change = h.control.container_changes(&task_arn("deps"), name)[0].clone();
        let id = ContainerId::from(change["runtimeId"].as_str().unwrap().to_owned());
        let status = h.runtime.inspect_container(&id).await.unwrap();
        times.insert(name, (status.started_at.unwrap(), status.finished_at));
    }
    assert!(times["migrate"].0 <= times["db"].0);
    assert!(times["migrate"].1.unwrap() <= times["web"].0);
    assert!(times["db"].0 <= times["web"].0);
    let migrate = h.control.container_changes(&task_arn("deps"), "migrate");
    assert_eq!(migrate.last().unwrap()["exitCode"], 0);
}

#[tokio::test]
async fn an_unmet_success_dependency_stops_the_task() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "unmet",
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox", "essential": true, "command": ["httpd"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
            {"name": "init", "image": "busybox", "essential": false, "command": ["sh", "-c", "exit 1"]}
        ]),
    )]);
    let stopped = h.control.wait_task(&task_arn("unmet"), "STOPPED").await;
    assert!(
        stopped["reason"].as_str().unwrap().contains("SUCCESS"),
        "{stopped}"
    );
    // web never ran: it is reported only as stopped, with the task.
    assert!(
        h.control
            .container_changes(&task_arn("unmet"), "web")
            .iter()
            .all(|c| c["status"] != "RUNNING")
    );
    assert!(
        h.control
            .task_changes(&task_arn("unmet"))
            .iter()
            .all(|c| c["status"] != "RUNNING")
    );
}

#[tokio::test]
async fn desired_stopped_stops_with_the_stop_timeout() {
    let h = Harness::start(config()).await;
    let t = task(
        "stop",
        "RUNNING",
        json!([
            {"name": "polite", "image": "busybox", "essential": true, "command": ["httpd"]},
            {"name": "stubborn", "image": "busybox", "essential": true, "stopTimeout": 5,
             "command": ["sh", "-c", "trap '' TERM; httpd"]}
        ]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("stop"), "RUNNING").await;
    let asked = Instant::now();
    h.engine.apply_payload(vec![stopped(t)]);
    let change = h.control.wait_task(&task_arn("stop"), "STOPPED").await;
    // stopTimeout 5 s at the simulation's tenfold speed.
    assert!(
        asked.elapsed() >= Duration::from_millis(450),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(change["reason"], Value::Null);
    let code = |name: &str| {
        h.control
            .container_changes(&task_arn("stop"), name)
            .last()
            .unwrap()["exitCode"]
            .clone()
    };
    assert_eq!(code("polite"), 143);
    assert_eq!(code("stubborn"), 137);
    // Stopped containers stay until the cleanup delay (3 h by default).
    assert_eq!(h.containers_of(&task_arn("stop")).await.len(), 2);
}

#[tokio::test]
async fn stopped_tasks_are_cleaned_up_after_the_delay() {
    let h = Harness::start(EngineConfig {
        cleanup_delay: Duration::from_millis(300),
        ..config()
    })
    .await;
    let t = task(
        "clean",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["sh", "-c", "exit 0"]}]),
    );
    h.engine.apply_payload(vec![t]);
    h.control.wait_task(&task_arn("clean"), "STOPPED").await;
    assert_eq!(h.containers_of(&task_arn("clean")).await.len(), 1);
    let deadline = Instant::now() + WAIT;
    while !h.containers_of(&task_arn("clean")).await.is_empty()
        || h.state.task(&task_arn("clean")).is_some()
    {
        assert!(Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.engine.task_arns().is_empty());
}

#[tokio::test]
async fn a_failed_pull_stops_the_task_with_ecs_reason() {
    let h = Harness::start(config()).await;
    h.runtime.fail_pulls_of("missing:v1", "manifest unknown");
    h.engine.apply_payload(vec![task(
        "nopull",
        "RUNNING",
        json!([{"name": "app", "image": "missing:v1", "essential": true}]),
    )]);
    let stopped = h.control.wait_task(&task_arn("nopull"), "STOPPED").await;
    let reason = stopped["reason"].as_str().unwrap();
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");
    assert!(reason.contains("manifest unknown"));
    assert_eq!(
        h.control.container_changes(&task_arn("nopull"), "app")[0]["reason"],
        stopped["reason"]
    );
}

#[tokio::test]
async fn pull_behaviours() {
    let image = "cached:v1";
    // default: a failed pull falls back to the cached copy.
    let h = Harness::start(config()).await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    let run = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{"name": "app", "image": image, "essential": true, "command": ["httpd"]}]),
        )
    };
    h.engine.apply_payload(vec![run("fallback")]);
    h.control.wait_task(&task_arn("fallback"), "RUNNING").await;

    // always: it does not.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::Always,
        ..config()
    })
    .await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("always")]);
    let stopped = h.control.wait_task(&task_arn("always"), "STOPPED").await;
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("registry down")
    );

    // prefer-cached: no pull at all when present.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::PreferCached,
        ..config()
    })
    .await;
    h.runtime.add_image(image);
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("cached")]);
    h.control.wait_task(&task_arn("cached"), "RUNNING").await;

    // once: the first task pulls, the second does not.
    let h = Harness::start(EngineConfig {
        image_pull_behavior: ImagePullBehavior::Once,
        ..config()
    })
    .await;
    h.engine.apply_payload(vec![run("once-1")]);
    h.control.wait_task(&task_arn("once-1"), "RUNNING").await;
    assert!(h.state.lock().pulled_images.contains("cached:v1"));
    h.runtime.fail_pulls_of(image, "registry down");
    h.engine.apply_payload(vec![run("once-2")]);
    h.control.wait_task(&task_arn("once-2"), "RUNNING").await;
}

#[tokio::test]
async fn ecr_images_are_pulled_with_a_cached_token() {
    let h = Harness::start(config()).await;
    let with_auth = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{
                "name": "app", "image": "127.0.0.1:4566/app:v1", "essential": true, "command": ["httpd"],
                "registryAuthentication": {"type": "ecr", "ecrAuthData": {
                    "endpointOverride": "http://127.0.0.1:4566", "region": "us-east-1",
                    "registryId": "000000000000"}}
            }]),
        )
    };
    h.engine.apply_payload(vec![with_auth("ecr-1")]);
    h.control.wait_task(&task_arn("ecr-1"), "RUNNING").await;
    h.engine.apply_payload(vec![with_auth("ecr-2")]);
    h.control.wait_task(&task_arn("ecr-2"), "RUNNING").await;
    assert_eq!(h.control.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_containers_and_reports_what_died_meanwhile() {
    let h = Harness::start(config()).await;
    let tasks: Vec<Task> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| {
            task(
                id,
                "RUNNING",
                json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
            )
        })
        .collect();
    h.engine.apply_payload(tasks.clone());
    for id in ["r1", "r2", "r3"] {
        h.control.wait_task(&task_arn(id), "RUNNING").await;
    }
    let before: Vec<_> = {
        let mut ids = Vec::new();
        for id in ["r1", "r2", "r3"] {
            ids.push(h.containers_of(&task_arn(id)).await[0].id.clone());
        }
        ids
    };
    let (runtime, control, state) = h.shut_down().await;
    // While the agent is away, r2's container is killed.
    runtime.kill_container(&before[1], 137, false);

    let h = Harness::start_on(config(), runtime, control, state).await;
    // The control plane sends every live task again on connect.
    h.engine.apply_payload(tasks);
    let stopped = h.control.wait_task(&task_arn("r2"), "STOPPED").await;
    assert_eq!(stopped["reason"], ESSENTIAL_EXITED);
    assert_eq!(stopped["containers"][0]["exitCode"], 137);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
        let containers = h.containers_of(&task_arn(id)).await;
        assert_eq!(containers.len(), 1, "{id}: {containers:?}");
        assert_eq!(containers[0].id, before[i], "{id} kept its container");
    }
    // Nothing reported twice: each surviving task is RUNNING once.
    assert_eq!(h.control.task_changes(&task_arn("r1")).len(), 1);
    assert_eq!(h.control.task_changes(&task_arn("r3")).len(), 1);
}

/// The runtime going away is ridden out: the check reports it, the supervisors wait, and
/// once it is back a container that died meanwhile is reported, even though the event of
/// its death found nothing to inspect.
#[tokio::test]
async fn a_runtime_outage_is_reported_and_what_died_meanwhile_is_found_after_it() {
    let h = Harness::start(EngineConfig {
        runtime_check_interval: Duration::from_millis(20),
        ..config()
    })
    .await;
    let mut health = h.engine.runtime_health();
    let status = |wanted: CheckStatus| move |h: &RuntimeHealth| h.status == wanted;
    tokio::time::timeout(WAIT, health.wait_for(status(CheckStatus::Ok)))
        .await
        .unwrap()
        .unwrap();
    let app = json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]);
    h.engine.apply_payload(vec![
        task("victim", "RUNNING", app.clone()),
        task("survivor", "RUNNING", app),
    ]);
    h.control.wait_task(&task_arn("victim"), "RUNNING").await;
    h.control.wait_task(&task_arn("survivor"), "RUNNING").await;
    let victim = h.containers_of(&task_arn("victim")).await[0].id.clone();

    h.runtime.set_unavailable(true);
    let impaired = tokio::time::timeout(WAIT, health.wait_for(status(CheckStatus::Impaired)))
        .await
        .unwrap()
        .unwrap()
        .clone();
    assert!(impaired.reason.unwrap().contains("unavailable"));
    h.runtime.kill_container(&victim, 137, false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.control.task_changes(&task_arn("victim")).len(),
        1,
        "RUNNING only"
    );

    h.runtime.set_unavailable(false);
    let change = h.control.wait_task(&task_arn("victim"), "STOPPED").await;
    assert_eq!(change["reason"], ESSENTIAL_EXITED);
    assert_eq!(change["containers"][0]["exitCode"], 137);
    assert_eq!(health.borrow().status, CheckStatus::Ok);
    // The other task was left alone and still takes orders.
    assert_eq!(h.control.task_changes(&task_arn("survivor")).len(), 1);
    h.engine.apply_payload(vec![stopped(task(
        "survivor",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    ))]);
    h.control.wait_task(&task_arn("survivor"), "STOPPED").await;
}

#[tokio::test]
async fn containers_are_adopted_by_their_labels_when_the_state_file_is_behind() {
    let h = Harness::start(config()).await;
    let t = task(
        "lost",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("lost"), "RUNNING").await;
    let id = h.containers_of(&task_arn("lost")).await[0].id.clone();
    let (runtime, control, mut state) = h.shut_down().await;
    state.tasks.clear(); // as if the last save never happened

    let h = Harness::start_on(config(), runtime, control, state).await;
    h.engine.apply_payload(vec![t.clone()]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let containers = h.containers_of(&task_arn("lost")).await;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].id, id);
    assert_eq!(
        h.state.task(&task_arn("lost")).unwrap().containers["app"]
            .runtime_id
            .as_deref(),
        Some(id.as_str())
    );
    // And it can still be stopped.
    h.engine.apply_payload(vec![stopped(t)]);
    let change = h.control.wait_task(&task_arn("lost"), "STOPPED").await;
    assert_eq!(change["containers"][0]["exitCode"], 143);
}

#[tokio::test]
async fn reports_survive_a_control_plane_outage() {
    let h = Harness::start(config()).await;
    h.control.down.store(true, Ordering::SeqCst);
    h.engine.apply_payload(vec![task(
        "outage",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    )]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.control.changes().is_empty());
    h.control.down.store(false, Ordering::SeqCst);
    h.control.wait_task(&task_arn("outage"), "RUNNING").await;
    let kinds: Vec<String> = h.control.changes().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["container", "task"], "in order, once each");
}

#[tokio::test]
async fn an_awsvpc_task_without_an_interface_fails_visibly() {
    let h = Harness::start(config()).await;
    let mut t = task(
        "vpc",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true}]),
    );
    t.network_mode = Some("awsvpc".into());
    h.engine.apply_payload(vec![t]);
    let stopped = h.control.wait_task(&task_arn("vpc"), "STOPPED").await;
    assert!(stopped["reason"].as_str().unwrap().contains("awsvpc"));
}

/// An awsvpc task as the control plane sends it: its interface at 10.192.3.7.
fn awsvpc_task(id: &str) -> Task {
    awsvpc_task_at(id, 7)
}

/// An awsvpc task with its interface at 10.192.3.`host`.
fn awsvpc_task_at(id: &str, host: u8) -> Task {
    let mut t = task(
        id,
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox", "essential": true, "command": ["httpd", "-f"],
             "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]},
            {"name": "client", "image": "busybox", "essential": false, "command": ["sleep", "1000000"]}
        ]),
    );
    t.network_mode = Some("awsvpc".into());
    t.elastic_network_interfaces = Some(vec![berth_agent_protocol::acs::ElasticNetworkInterface {
        attachment_arn: Some(format!("arn:aws:ecs:us-east-1:0:attachment/{id}")),
        ec2_id: Some("eni-0123456789abcdef0".into()),
        mac_address: Some(format!("02:42:0a:c0:03:{host:02x}")),
        ipv4_addresses: Some(vec![berth_agent_protocol::acs::IPv4AddressAssignment {
            primary: Some(true),
            private_address: Some(format!("10.192.3.{host}")),
        }]),
        subnet_gateway_ipv4_address: Some("10.192.3.1/24".into()),
        subnet_id: Some("subnet-0abc".into()),
        ..Default::default()
    }]);
    t
}

/// The infra container is built, networked and started before the task's containers, which
/// join its namespace; RUNNING carries the attachment; a stop stops it last; a restarted
/// agent adopts it.
#[tokio::test]
async fn an_awsvpc_task_runs_in_its_infra_containers_namespace() {
    let h = Harness::start(config()).await;
    let t = awsvpc_task("vpc");
    h.engine.apply_payload(vec![t.clone()]);
    let running = h.control.wait_task(&task_arn("vpc"), "RUNNING").await;
    assert_eq!(
        running["attachments"],
        json!([{"attachmentArn": "arn:aws:ecs:us-east-1:0:attachment/vpc", "status": "ATTACHED"}])
    );
    // awsvpc ports are the task's own address's: no host bindings.
    assert!(running["containers"][0].get("networkBindings").is_none());
    assert!(h.runtime.image_present(infra::PAUSE_IMAGE).await.unwrap());

    let containers = h.containers_of(&task_arn("vpc")).await;
    assert_eq!(containers.len(), 3);
    let pause = containers
        .iter()
        .find(|c| c.labels[translate::LABEL_CONTAINER_NAME] == PAUSE_CONTAINER_NAME)
        .expect("an infra container");
    let status = h.runtime.inspect_container(&pause.id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.3.7"));
    for c in containers.iter().filter(|c| c.id != pause.id) {
        let status = h.runtime.inspect_container(&c.id).await.unwrap();
        assert_eq!(status.state, ContainerState::Running);
        // Sharing the namespace, so the address.
        assert_eq!(
            status.ip_address.as_deref(),
            Some("10.192.3.7"),
            "{}",
            c.name
        );
    }
    // A restarted agent keeps the same infra container.
    let (runtime, control, state) = h.shut_down().await;
    let h = Harness::start_on(config(), runtime, control, state).await;
    h.engine.apply_payload(vec![t.clone()]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = h.containers_of(&task_arn("vpc")).await;
    assert_eq!(after.len(), 3);
    assert!(after.iter().any(|c| c.id == pause.id));
    assert_eq!(h.control.task_changes(&task_arn("vpc")).len(), 1);

    let mut stop = t;
    stop.desired_status = Some("STOPPED".into());
    h.engine.apply_payload(vec![stop]);
    h.control.wait_task(&task_arn("vpc"), "STOPPED").await;
    let status = h.runtime.inspect_container(&pause.id).await.unwrap();
    assert!(
        status.state.is_stopped(),
        "the infra container stops with the task"
    );
}

/// The warm containers of the harness's instance, once there are `count` of them running
/// with no address.
async fn wait_warm(h: &Harness, count: usize) -> Vec<berth_runtime::ContainerSummary> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let warm = h
            .runtime
            .list_containers(&[(warm::LABEL_WARM, "true")])
            .await
            .unwrap();
        let mut idle = Vec::new();
        for c in &warm {
            let status = h.runtime.inspect_container(&c.id).await.unwrap();
            if status.state == ContainerState::Running && status.ip_address.is_none() {
                idle.push(c.clone());
            }
        }
        if idle.len() == count {
            return idle;
        }
        assert!(
            Instant::now() < deadline,
            "never {count} idle warm infra containers: {warm:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After the first awsvpc task the agent keeps a warm infra container; the next awsvpc task's
/// namespace is that container, connected with the task's address and renamed as its infra
/// container, and another is made. A restarted agent keeps the taken one (its task's record
/// names it) and replaces the idle one; with the pool off there are none.
#[tokio::test]
async fn the_next_awsvpc_task_takes_a_warm_infra_container() {
    let one = || EngineConfig {
        warm_infra: 1,
        ..config()
    };
    let h = Harness::start(one()).await;
    assert!(
        h.runtime
            .list_containers(&[(warm::LABEL_WARM, "true")])
            .await
            .unwrap()
            .is_empty(),
        "no warm container before an awsvpc task"
    );
    h.engine.apply_payload(vec![awsvpc_task_at("first", 7)]);
    h.control.wait_task(&task_arn("first"), "RUNNING").await;
    let warm = wait_warm(&h, 1).await.remove(0);

    h.engine.apply_payload(vec![awsvpc_task_at("second", 8)]);
    h.control.wait_task(&task_arn("second"), "RUNNING").await;
    let status = h.runtime.inspect_container(&warm.id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.3.8"));
    assert!(
        status.name.contains("internalecspause"),
        "renamed as the task's infra container: {}",
        status.name
    );
    for c in h.containers_of(&task_arn("second")).await {
        let member = h.runtime.inspect_container(&c.id).await.unwrap();
        assert_eq!(
            member.ip_address.as_deref(),
            Some("10.192.3.8"),
            "{}",
            c.name
        );
    }
    let record = h.state.task(&task_arn("second")).unwrap();
    assert_eq!(
        record.infra.unwrap().runtime_id.as_deref(),
        Some(warm.id.as_str())
    );
    let spare = wait_warm(&h, 1).await.remove(0);
    assert_ne!(spare.id, warm.id);

    let (runtime, control, state) = h.shut_down().await;
    let h = Harness::start_on(one(), runtime, control, state).await;
    assert!(
        h.runtime.inspect_container(&spare.id).await.is_err(),
        "an idle warm container is removed at start"
    );
    let status = h.runtime.inspect_container(&warm.id).await.unwrap();
    assert_eq!(status.ip_address.as_deref(), Some("10.192.3.8"), "kept");
    // The pool fills again once an awsvpc task is seen (the restarted agent resumes two).
    h.engine.apply_payload(vec![
        awsvpc_task_at("first", 7),
        awsvpc_task_at("second", 8),
    ]);
    wait_warm(&h, 1).await;

    let off = Harness::start(EngineConfig {
        warm_infra: 0,
        instance_arn: "arn:aws:ecs:us-east-1:0:container-instance/c/off".into(),
        ..config()
    })
    .await;
    off.engine.apply_payload(vec![awsvpc_task_at("third", 9)]);
    off.control.wait_task(&task_arn("third"), "RUNNING").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        off.runtime
            .list_containers(&[(warm::LABEL_WARM, "true")])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_stop_during_a_long_pull_stops_the_task_at_once() {
    let runtime = SimulatedRuntime::new(SimulationConfig {
        pull_delay: Duration::from_secs(60),
        time_scale: 0.1,
        ..SimulationConfig::default()
    });
    let h = Harness::start_on(
        config(),
        runtime,
        Arc::new(FakeControl::default()),
        AgentState::default(),
    )
    .await;
    let t = task(
        "slowpull",
        "RUNNING",
        json!([{"name": "app", "image": "huge:v1", "essential": true, "command": ["httpd"]}]),
    );
    h.engine.apply_payload(vec![t.clone()]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    h.engine.apply_payload(vec![stopped(t)]);
    let change = h.control.wait_task(&task_arn("slowpull"), "STOPPED").await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "stopped {:?} after the request",
        asked.elapsed()
    );
    assert_eq!(change["reason"], Value::Null);
    assert!(change["pullStartedAt"].is_number(), "{change}");
    assert!(change.get("pullStoppedAt").is_none(), "{change}");
    assert!(h.containers_of(&task_arn("slowpull")).await.is_empty());
    assert!(
        h.control
            .task_changes(&task_arn("slowpull"))
            .iter()
            .all(|c| c["status"] != "RUNNING")
    );
}

#[tokio::test]
async fn container_health_is_tracked_timed_and_announced() {
    let h = Harness::start(config()).await;
    let mut changes = h.engine.health_changes();
    let check = "{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,\"Retries\":3}}";
    h.engine.apply_payload(vec![task(
        "healthy",
        "RUNNING",
        json!([
            {"name": "app", "image": "busybox", "essential": true, "command": ["httpd"],
             "dockerConfig": {"config": check}},
            {"name": "plain", "image": "busybox", "essential": false, "command": ["httpd"]}
        ]),
    )]);
    h.control.wait_task(&task_arn("healthy"), "RUNNING").await;
    let deadline = Instant::now() + WAIT;
    let record = loop {
        let record = h.state.task(&task_arn("healthy")).unwrap();
        if record.containers["app"].health.as_deref() == Some("HEALTHY") {
            break record;
        }
        assert!(Instant::now() < deadline, "never healthy: {record:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(changes.has_changed().unwrap(), "the change was announced");
    changes.borrow_and_update();
    let since = record.containers["app"].health_since.unwrap();
    assert!((since - now_seconds()).abs() < 5.0);
    // No health check, no health.
    assert_eq!(record.containers["plain"].health, None);
    assert_eq!(record.containers["plain"].health_since, None);

    // Unhealthy is a change too.
    let id = ContainerId::from(record.containers["app"].runtime_id.clone().unwrap());
    h.runtime.set_health(&id, HealthStatus::Unhealthy);
    tokio::time::timeout(WAIT, changes.changed())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let record = h.state.task(&task_arn("healthy")).unwrap();
    assert_eq!(
        record.containers["app"].health.as_deref(),
        Some("UNHEALTHY")
    );
    assert!(record.containers["app"].health_since.unwrap() >= since);
}

#[tokio::test]
async fn stop_candidates_are_the_running_tasks_a_manifest_does_not_want() {
    let h = Harness::start(config()).await;
    let run = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
        )
    };
    h.engine.apply_payload(vec![run("m1"), run("m2")]);
    h.control.wait_task(&task_arn("m1"), "RUNNING").await;
    h.control.wait_task(&task_arn("m2"), "RUNNING").await;
    let listed = |id: &str, desired: &str| TaskIdentifier {
        task_arn: Some(task_arn(id)),
        task_cluster_arn: None,
        desired_status: Some(desired.to_owned()),
    };
    let arns = |candidates: Vec<TaskIdentifier>| -> Vec<String> {
        candidates.into_iter().filter_map(|c| c.task_arn).collect()
    };
    assert!(
        h.engine
            .stop_candidates(&[listed("m1", "RUNNING"), listed("m2", "RUNNING")])
            .is_empty()
    );
    let candidates = h.engine.stop_candidates(&[listed("m1", "RUNNING")]);
    assert_eq!(candidates[0].desired_status.as_deref(), Some("STOPPED"));
    assert_eq!(arns(candidates), [task_arn("m2")]);
    assert_eq!(
        arns(
            h.engine
                .stop_candidates(&[listed("m1", "STOPPED"), listed("m2", "RUNNING")])
        ),
        [task_arn("m1")]
    );

    h.engine.stop_tasks(&[task_arn("m2"), task_arn("unknown")]);
    h.control.wait_task(&task_arn("m2"), "STOPPED").await;
    // A stopped task is no candidate any more.
    assert_eq!(arns(h.engine.stop_candidates(&[])), [task_arn("m1")]);
    assert!(
        h.control
            .task_changes(&task_arn("m1"))
            .iter()
            .all(|c| c["status"] != "STOPPED")
    );
}

#[tokio::test]
async fn containers_are_told_their_metadata_endpoint_and_keep_it_when_adopted() {
    let config = || EngineConfig {
        metadata: Some(MetadataEndpoint {
            bridge_host: Some("172.17.0.1".into()),
            port: 51679,
            link_local: false,
        }),
        ..config()
    };
    let h = Harness::start(config()).await;
    let mut host_task = task(
        "meta-host",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    );
    host_task.network_mode = Some("host".into());
    let bridge_task = task(
        "meta-bridge",
        "RUNNING",
        json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
    );
    h.engine
        .apply_payload(vec![host_task.clone(), bridge_task.clone()]);
    h.control.wait_task(&task_arn("meta-host"), "RUNNING").await;
    h.control
        .wait_task(&task_arn("meta-bridge"), "RUNNING")
        .await;
    let uri_of = |id: &str| {
        let h = &h;
        let id = id.to_owned();
        async move {
            let record = h.state.task(&task_arn(&id)).unwrap();
            let container = &record.containers["app"];
            let status = h
                .runtime
                .inspect_container(&ContainerId::from(container.runtime_id.clone().unwrap()))
                .await
                .unwrap();
            let uri = status
                .env
                .iter()
                .find_map(|v| v.strip_prefix("ECS_CONTAINER_METADATA_URI_V4="))
                .unwrap()
                .to_owned();
            (uri, container.metadata_token.clone().unwrap())
        }
    };
    let (uri, token) = uri_of("meta-bridge").await;
    assert_eq!(uri, format!("http://172.17.0.1:51679/v4/{token}"));
    assert_eq!(token.len(), 32);
    let (host_uri, host_token) = uri_of("meta-host").await;
    assert_eq!(host_uri, format!("http://127.0.0.1:51679/v4/{host_token}"));
    assert_ne!(token, host_token);

    // A restart that lost the state file reads the token back from the container.
    let (runtime, control, mut state) = h.shut_down().await;
    state.tasks.clear();
    let h = Harness::start_on(config(), runtime, control, state).await;
    h.engine.apply_payload(vec![bridge_task]);
    let deadline = Instant::now() + WAIT;
    loop {
        let adopted = h.state.task(&task_arn("meta-bridge")).and_then(|r| {
            r.containers
                .get("app")
                .and_then(|c| c.metadata_token.clone())
        });
        if adopted.as_deref() == Some(token.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "token not recovered: {adopted:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Container changes queued before a task change travel inside it; those after the last
/// task change, and task changes themselves, are all sent, in order.
#[test]
fn container_changes_ride_inside_the_next_task_change() {
    let container = |name: &str, status: &str| {
        Report::Container(ContainerStateChange {
            cluster: Some("c".into()),
            task: "t".into(),
            container_name: name.into(),
            status: status.into(),
            runtime_id: None,
            image_digest: None,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
        })
    };
    let task = |status: &str| {
        Report::Task(TaskStateChange {
            cluster: Some("c".into()),
            task: "t".into(),
            status: status.into(),
            reason: None,
            pull_started_at: None,
            pull_stopped_at: None,
            execution_stopped_at: None,
            containers: Vec::new(),
            attachments: Vec::new(),
        })
    };
    let shape = |reports: Vec<Report>| -> Vec<String> {
        coalesce(reports)
            .iter()
            .map(|r| match r {
                Report::Container(c) => format!("{}:{}", c.container_name, c.status),
                Report::Task(t) => format!("task:{}", t.status),
            })
            .collect()
    };
    assert_eq!(
        shape(vec![
            container("a", "RUNNING"),
            container("b", "RUNNING"),
            task("RUNNING"),
            container("a", "STOPPED"),
        ]),
        ["task:RUNNING", "a:STOPPED"]
    );
    assert_eq!(
        shape(vec![
            task("RUNNING"),
            container("a", "STOPPED"),
            task("STOPPED")
        ]),
        ["task:RUNNING", "task:STOPPED"]
    );
    assert_eq!(shape(vec![container("a", "RUNNING")]), ["a:RUNNING"]);
}

/// A container logging with awslogs, as its task definition's `logConfiguration` reaches the
/// agent.
fn awslogs_container(options: Value) -> Value {
    let host_config = json!({"LogConfig": {"Type": "awslogs", "Config": options}});
    json!([{
        "name": "web", "image": "busybox", "essential": true, "memory": 64,
        "dockerConfig": {"hostConfig": host_config.to_string()}
    }])
}

async fn wait_messages(h: &Harness, group: &str, stream: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let messages = h.control.logs.messages(group, stream);
        if messages.len() >= count {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "{stream} has {messages:?}, streams {:?}",
            h.control.logs.streams(group)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn awslogs_output_is_shipped_to_the_stream_ecs_names_before_cleanup() {
    let h = Harness::start(EngineConfig {
        cleanup_delay: Duration::from_millis(100),
        ..config()
    })
    .await;
    h.control.logs.add_group("/ecs/web");
    let t = task(
        "logs1",
        "RUNNING",
        awslogs_container(json!({
            "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "svc"
        })),
    );
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("logs1"), "RUNNING").await;
    let id = h.containers_of(&task_arn("logs1")).await[0].id.clone();
    h.runtime
        .write_log(&id, berth_runtime::LogSource::Stdout, "hello\n");
    let stream = "svc/web/logs1";
    assert_eq!(wait_messages(&h, "/ecs/web", stream, 1).await, ["hello"]);

    // Written just before the stop: still shipped before the container is removed.
    h.runtime
        .write_log(&id, berth_runtime::LogSource::Stderr, "bye\n");
    h.engine.apply_payload(vec![stopped(t)]);
    h.control.wait_task(&task_arn("logs1"), "STOPPED").await;
    let deadline = Instant::now() + WAIT;
    while h.state.task(&task_arn("logs1")).is_some() {
        assert!(Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.control.logs.messages("/ecs/web", stream),
        ["hello", "bye"]
    );
}

#[tokio::test]
async fn awslogs_without_its_log_group_stops_the_task_as_ecs_does() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![task(
        "nogroup",
        "RUNNING",
        awslogs_container(json!({"awslogs-group": "/ecs/none", "awslogs-region": "us-east-1"})),
    )]);
    let stopped = h.control.wait_task(&task_arn("nogroup"), "STOPPED").await;
    assert_eq!(
        stopped["reason"],
        "CannotStartContainerError: Error response from daemon: failed to initialize logging \
         driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The \
         specified log group does not exist."
    );

    // With awslogs-create-group the group is made; without a prefix the stream is the
    // container's id, as Docker names it.
    h.engine.apply_payload(vec![task(
        "mkgroup",
        "RUNNING",
        awslogs_container(json!({
            "awslogs-group": "/ecs/made", "awslogs-create-group": "true",
            "mode": "non-blocking", "max-buffer-size": "4m"
        })),
    )]);
    h.control.wait_task(&task_arn("mkgroup"), "RUNNING").await;
    let id = h.containers_of(&task_arn("mkgroup")).await[0].id.clone();
    assert_eq!(h.control.logs.streams("/ecs/made"), [id.to_string()]);

    // Options Docker would refuse stop the task at create.
    h.engine.apply_payload(vec![task(
        "badopts",
        "RUNNING",
        awslogs_container(json!({"awslogs-group": "g", "mode": "sometimes"})),
    )]);
    let stopped = h.control.wait_task(&task_arn("badopts"), "STOPPED").await;
    assert_eq!(
        stopped["reason"],
        "CannotCreateContainerError: Error response from daemon: logger: logging mode not supported: sometimes"
    );
}

#[tokio::test]
async fn a_restarted_agent_ships_on_from_where_the_last_one_stopped() {
    let h = Harness::start(config()).await;
    h.control.logs.add_group("/ecs/web");
    let options = json!({"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "p"});
    let t = task("resume", "RUNNING", awslogs_container(options));
    h.engine.apply_payload(vec![t]);
    h.control.wait_task(&task_arn("resume"), "RUNNING").await;
    let id = h.containers_of(&task_arn("resume")).await[0].id.clone();
    let line = |i: usize| format!("line {i}\n");
    for i in 0..100 {
        h.runtime
            .write_log(&id, berth_runtime::LogSource::Stdout, line(i));
    }
    wait_messages(&h, "/ecs/web", "p/web/resume", 100).await;
    let (runtime, control, state) = h.shut_down().await;
    // Written while no agent runs.
    for i in 100..150 {
        runtime.write_log(&id, berth_runtime::LogSource::Stderr, line(i));
    }
    let h = Harness::start_on(config(), runtime, control, state).await;
    let messages = wait_messages(&h, "/ecs/web", "p/web/resume", 150).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages_later = h.control.logs.messages("/ecs/web", "p/web/resume");
    assert_eq!(messages, messages_later, "nothing more came");
    let expected: Vec<String> = (0..150).map(|i| format!("line {i}")).collect();
    assert_eq!(messages, expected);
}

/// Waits until `check` holds, failing the test after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A task that cannot start because of a host conflict (here a static host port another
/// task holds) stops with ECS's wording, and the container it made is removed at once, not
/// after the cleanup delay.
#[tokio::test]
async fn a_task_that_cannot_start_leaves_no_container_behind() {
    let h = Harness::start(config()).await;
    let web = |id: &str| {
        task(
            id,
            "RUNNING",
            json!([{"name": "web", "image": "busybox", "essential": true, "command": ["httpd", "-f"],
                    "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]}]),
        )
    };
    h.engine.apply_payload(vec![web("holder")]);
    h.control.wait_task(&task_arn("holder"), "RUNNING").await;
    h.engine.apply_payload(vec![web("clash")]);
    let stopped = h.control.wait_task(&task_arn("clash"), "STOPPED").await;
    let reason = stopped["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError: Error response from daemon: ")
            && reason.contains("port is already allocated"),
        "{reason}"
    );
    eventually("the clashing task's container is removed", || async {
        h.containers_of(&task_arn("clash")).await.is_empty()
    })
    .await;
    // The record stays (a stopped task is kept for its cleanup delay); the holder runs on.
    assert!(h.state.task(&task_arn("clash")).is_some());
    assert_eq!(h.containers_of(&task_arn("holder")).await.len(), 1);
}

/// An awsvpc task whose address is taken on the subnet's network: its infra container (a
/// warm one it took) and its containers are removed at once.
#[tokio::test]
async fn an_awsvpc_task_whose_address_is_taken_leaves_nothing_behind() {
    let h = Harness::start(EngineConfig {
        warm_infra: 1,
        ..config()
    })
    .await;
    h.engine.apply_payload(vec![awsvpc_task_at("first", 7)]);
    h.control.wait_task(&task_arn("first"), "RUNNING").await;
    wait_warm(&h, 1).await;
    // The same address again (as two installations sharing one network once did).
    h.engine.apply_payload(vec![awsvpc_task_at("again", 7)]);
    let stopped = h.control.wait_task(&task_arn("again"), "STOPPED").await;
    let reason = stopped["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError:")
            && reason.contains("Address already in use"),
        "{reason}"
    );
    eventually("the task's infra container is removed", || async {
        h.containers_of(&task_arn("again")).await.is_empty()
    })
    .await;
    assert_eq!(h.containers_of(&task_arn("first")).await.len(), 3);
}

/// Past `max_stopped_tasks` stopped tasks waiting for their cleanup, the oldest are cleaned
/// up at once (containers and records), long before the cleanup delay.
#[tokio::test]
async fn past_the_stopped_task_bound_the_oldest_are_cleaned_up() {
    let h = Harness::start(EngineConfig {
        max_stopped_tasks: 2,
        cleanup_delay: Duration::from_secs(3600),
        ..config()
    })
    .await;
    let ids = ["s1", "s2", "s3", "s4"];
    for id in ids {
        h.engine.apply_payload(vec![task(
            id,
            "RUNNING",
            json!([{"name": "app", "image": "busybox", "essential": true, "command": ["sh", "-c", "sleep 0.5; exit 0"]}]),
        )]);
        h.control.wait_task(&task_arn(id), "STOPPED").await;
    }
    for id in &ids[..2] {
        eventually("the oldest stopped tasks are cleaned up", || async {
            h.containers_of(&task_arn(id)).await.is_empty() && h.state.task(&task_arn(id)).is_none()
        })
        .await;
    }
    for id in &ids[2..] {
        assert_eq!(h.containers_of(&task_arn(id)).await.len(), 1, "{id} kept");
        assert!(h.state.task(&task_arn(id)).is_some());
    }
}

/// As the agent stops, its installation's subnet networks that no running container uses
/// are removed; one a running task uses stays.
#[tokio::test]
async fn idle_subnet_networks_are_removed_and_busy_ones_kept() {
    let h = Harness::start(config()).await;
    let t = awsvpc_task("net");
    h.engine.apply_payload(vec![t.clone()]);
    h.control.wait_task(&task_arn("net"), "RUNNING").await;
    let filter = [(LABEL_INSTALLATION, INSTALLATION)];
    let networks = h.runtime.list_networks(&filter).await.unwrap();
    assert_eq!(networks.len(), 1, "{networks:?}");
    assert_eq!(
        networks[0].name,
        format!("berth-{INSTALLATION}-subnet-0abc")
    );
    h.engine.remove_idle_networks().await;
    assert_eq!(h.runtime.list_networks(&filter).await.unwrap().len(), 1);

    let mut stop = t;
    stop.desired_status = Some("STOPPED".into());
    h.engine.apply_payload(vec![stop]);
    h.control.wait_task(&task_arn("net"), "STOPPED").await;
    h.engine.remove_idle_networks().await;
    assert!(h.runtime.list_networks(&filter).await.unwrap().is_empty());
}
