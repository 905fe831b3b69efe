//! ECS's agent protocol as Berth serves it, in-process, held against a scripted agent that
//! plays the official Amazon ECS agent's side: DiscoverPollEndpoint, the signed ACS upgrade
//! and its refusals, PayloadMessage after RunTask and StopTask (acknowledged with
//! AckRequest), heartbeats, agentConnected following the session (and the timeout), the
//! full set of live tasks again on reconnect, task manifests and stop verification, and the
//! telemetry websocket's acks.

use std::time::{Duration, Instant};

use berth_testkit::agent::ScriptedAgent;
use berth_testkit::ecs::{self, agent_connected, register_task_definition, wait_for};
use berth_testkit::{Endpoint, TestServer, unique};
use serde_json::{Value, json};

/// The instances here: 1024 CPU, 2048 MiB, port 22 reserved, no attributes.
fn register(s: &TestServer, cluster: &str) -> String {
    ecs::instance(1024, 2048)
        .ports(&["22"])
        .register_arn(s, cluster)
}

fn run_task(s: &TestServer, cluster: &str, family: &str) -> Value {
    ecs::run_task(s, cluster, family, Value::Null)
}

/// The payload's task with this ARN.
fn task_in<'a>(payload: &'a Value, arn: &str) -> &'a Value {
    payload["message"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == arn)
        .unwrap_or_else(|| panic!("task {arn} not in {payload}"))
}

#[test]
fn acs_session_delivers_tasks_and_tracks_the_agent() {
    // Heartbeats every second; an agent silent for 4 s is disconnected. (The CLI version
    // took 8 s, to outlast a few `aws` calls while its agent did not read; the scripted agent
    // now acknowledges every heartbeat from its own reader thread, so the margin needs only
    // cover a slow heartbeat, and the wait for the disconnect below is shorter.)
    let s = TestServer::start_with(|config| {
        config.agent_timeout = Duration::from_secs(4);
        config.agent_heartbeat = Duration::from_secs(1);
    });
    let cluster = unique("acs-");
    ecs::create_cluster(&s, &cluster);
    let instance = register(&s, &cluster);
    let family = unique("web-");
    register_task_definition(
        &s,
        json!({"family": family, "networkMode": "bridge", "containerDefinitions": [
            {"name": "web", "image": format!("{}/web:1", s.host()), "cpu": 128, "memory": 256,
             "essential": true, "environment": [{"name": "GREETING", "value": "hello"}],
             "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]}),
    );

    // DiscoverPollEndpoint names this server for ACS and telemetry.
    let poll = s
        .ecs(
            "DiscoverPollEndpoint",
            json!({"cluster": cluster, "containerInstance": instance}),
        )
        .ok();
    assert_eq!(poll["endpoint"], s.endpoint());
    assert_eq!(poll["telemetryEndpoint"], format!("{}/tcs", s.endpoint()));

    // Refusals: unsigned, unknown instance, unknown cluster.
    let unsigned = ScriptedAgent::open(
        &s,
        "/ws",
        &[
            ("clusterArn", &cluster),
            ("containerInstanceArn", &instance),
        ],
        false,
    )
    .err()
    .expect("an unsigned upgrade is refused");
    assert_eq!(unsigned.status, 403, "{}", unsigned.body);
    let stranger = instance.replace(
        instance.rsplit('/').next().unwrap(),
        "0123456789abcdef0123456789abcdef",
    );
    let refused = ScriptedAgent::acs(&s, &cluster, &stranger)
        .err()
        .expect("an unknown instance is refused");
    assert_eq!(refused.status, 400);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert!(body["InactiveInstanceException"].is_string(), "{body}");
    let refused = ScriptedAgent::acs(&s, "no-such-cluster", &instance)
        .err()
        .expect("an unknown cluster is refused");
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert!(body["InvalidClusterException"].is_string(), "{body}");

    // Connected: RunTask reaches the agent (pushed when the commit lands; how fast is
    // measured in bench/agent, not asserted here).
    let mut agent = ScriptedAgent::acs(&s, &cluster, &instance).unwrap();
    assert!(agent_connected(&s, &cluster, &instance));
    let run = run_task(&s, &cluster, &family);
    let task_arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let payload = agent
        .recv_kind("PayloadMessage", Duration::from_secs(5))
        .expect("a PayloadMessage after RunTask");
    let m = &payload["message"];
    assert!(m["messageId"].is_string());
    assert_eq!(
        m["clusterArn"],
        format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}")
    );
    assert_eq!(m["containerInstanceArn"], instance);
    assert!(m["seqNum"].is_i64());
    let task = task_in(&payload, &task_arn);
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(task["family"], family);
    assert_eq!(task["version"], "1");
    assert_eq!(task["networkMode"], "bridge");
    let container = &task["containers"][0];
    assert_eq!(container["name"], "web");
    assert_eq!(container["image"], format!("{}/web:1", s.host()));
    assert_eq!(container["cpu"], 128);
    assert_eq!(container["memory"], 256);
    assert_eq!(container["essential"], true);
    assert_eq!(container["environment"]["GREETING"], "hello");
    assert_eq!(container["portMappings"][0]["containerPort"], 80);
    assert_eq!(container["portMappings"][0]["hostPort"], 8080);
    assert_eq!(
        container["containerArn"],
        run["tasks"][0]["containers"][0]["containerArn"]
    );
    // Images in Berth's registry come with ECR auth pointing back at Berth.
    assert_eq!(container["registryAuthentication"]["type"], "ecr");
    assert_eq!(
        container["registryAuthentication"]["ecrAuthData"]["endpointOverride"],
        s.endpoint()
    );
    agent.ack(&payload);

    // Heartbeats keep coming (every second here); the scripted agent answers each.
    let heartbeat = agent
        .recv_kind("HeartbeatMessage", Duration::from_secs(5))
        .expect("a HeartbeatMessage");
    assert!(heartbeat["message"]["messageId"].is_string());
    assert_eq!(heartbeat["message"]["healthy"], true);

    // StopTask: the agent is told to stop it.
    s.ecs("StopTask", json!({"cluster": cluster, "task": task_arn}))
        .ok();
    let payload = agent
        .recv_kind("PayloadMessage", Duration::from_secs(5))
        .expect("a PayloadMessage after StopTask");
    assert_eq!(task_in(&payload, &task_arn)["desiredStatus"], "STOPPED");
    agent.ack(&payload);

    // A second task, then the agent goes away: after the timeout the instance shows as
    // disconnected and gets no new tasks.
    let second = run_task(&s, &cluster, &family)["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = agent
        .recv_kind("PayloadMessage", Duration::from_secs(5))
        .unwrap();
    task_in(&payload, &second);
    agent.ack(&payload);
    agent.close();
    wait_for("agentConnected false", Duration::from_secs(40), || {
        !agent_connected(&s, &cluster, &instance)
    });
    let refused = run_task(&s, &cluster, &family);
    assert_eq!(refused["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(refused["failures"][0]["reason"], "AGENT");

    // Reconnect: connected again, and the full set of live tasks comes first (the stopped
    // one is not in it: the agent was told, and it never started here). The server marks
    // the instance connected once the upgraded session starts, just before it sends that
    // payload, a moment after the client has the upgrade's answer: so the payload is
    // awaited before agentConnected is read (the `aws` call that read it in the CLI
    // version came a few hundred milliseconds later anyway).
    let mut agent = ScriptedAgent::acs(&s, &cluster, &instance).unwrap();
    let payload = agent
        .recv_kind("PayloadMessage", Duration::from_secs(5))
        .expect("the live tasks on reconnect");
    assert!(agent_connected(&s, &cluster, &instance));
    let arns: Vec<&str> = payload["message"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["arn"].as_str().unwrap())
        .collect();
    assert_eq!(arns, vec![second.as_str()]);
    agent.ack(&payload);

    // The agent's state reports come back through SubmitTaskStateChange (HTTP), with the
    // containers' own changes in the same call, as the official agent sends them.
    let ack = s
        .ecs(
            "SubmitTaskStateChange",
            json!({"cluster": cluster, "task": second, "status": "RUNNING", "containers": [
                {"containerName": "web", "status": "RUNNING", "networkBindings": [
                    {"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080,
                     "protocol": "tcp"}]}]}),
        )
        .ok();
    assert_eq!(ack["acknowledgment"], "ACK");
    let t = ecs::describe_task(&s, &cluster, &second);
    assert_eq!(t["lastStatus"], "RUNNING");
    assert_eq!(t["containers"][0]["networkBindings"][0]["hostPort"], 8080);

    // Reconciliation: a manifest names the live tasks; of the agent's stop candidates, Berth
    // confirms only the one it does not know.
    let manifest = agent
        .recv_kind("TaskManifestMessage", Duration::from_secs(10))
        .expect("a TaskManifestMessage");
    let m = &manifest["message"];
    assert!(m["timeline"].is_i64());
    let listed: Vec<(&str, &str)> = m["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["taskArn"].as_str().unwrap(),
                t["desiredStatus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(second.as_str(), "RUNNING")]);
    agent.ack(&manifest);
    let stranger_task = format!(
        "arn:aws:ecs:us-east-1:000000000000:task/{cluster}/{}",
        "f".repeat(32)
    );
    agent.send(&json!({
        "type": "TaskStopVerificationMessage",
        "message": {
            "messageId": m["messageId"],
            "stopCandidates": [
                {"taskArn": second, "desiredStatus": "STOPPED"},
                {"taskArn": stranger_task, "desiredStatus": "STOPPED"}
            ]
        }
    }));
    let verdict = agent
        .recv_kind("TaskStopVerificationAck", Duration::from_secs(5))
        .expect("a TaskStopVerificationAck");
    assert_eq!(verdict["message"]["messageId"], m["messageId"]);
    let stop: Vec<&str> = verdict["message"]["stopTasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap())
        .collect();
    assert_eq!(stop, vec![stranger_task.as_str()]);

    // Deregistration ends the session, and the agent's reconnect is refused as the official
    // agent expects (it then stops retrying).
    s.ecs(
        "DeregisterContainerInstance",
        json!({"cluster": cluster, "containerInstance": instance, "force": true}),
    )
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        agent.is_closed(),
        "the session of a deregistered instance is closed"
    );
    let refused = ScriptedAgent::acs(&s, &cluster, &instance)
        .err()
        .expect("a deregistered instance is refused");
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert!(body["InactiveInstanceException"].is_string(), "{body}");
}

#[test]
fn telemetry_session_acknowledges_metrics_and_health() {
    let s = TestServer::start();
    let cluster = unique("tcs-");
    ecs::create_cluster(&s, &cluster);
    let instance = register(&s, &cluster);
    let mut tcs = ScriptedAgent::tcs(&s, &cluster, &instance).unwrap();
    tcs.send(&json!({
        "type": "PublishMetricsRequest",
        "message": {
            "instanceMetrics": {"storage": {"readSizeBytes": {"min": 0, "max": 1, "sampleCount": 1, "sum": 1}}},
            "metadata": {"cluster": cluster, "containerInstance": instance, "fin": true, "idle": true, "messageId": "m-1"},
            "taskMetrics": [],
            "timestamp": 1700000000.5
        }
    }));
    let ack = tcs
        .recv(Duration::from_secs(5))
        .expect("an ack for the metrics");
    assert_eq!(ack["type"], "AckPublishMetric");
    tcs.send(&json!({
        "type": "PublishHealthRequest",
        "message": {
            "metadata": {"cluster": cluster, "containerInstance": instance, "fin": true, "messageId": "h-1"},
            "tasks": [],
            "timestamp": 1700000001
        }
    }));
    let ack = tcs
        .recv(Duration::from_secs(5))
        .expect("an ack for the health report");
    assert_eq!(ack["type"], "AckPublishHealth");

    // Health reports land on the task: the container's status, and the task's derived one.
    let family = unique("hc-");
    register_task_definition(
        &s,
        json!({"family": family, "containerDefinitions": [
            {"name": "app", "image": "app:1", "memory": 64, "essential": true,
             "healthCheck": {"command": ["CMD-SHELL", "true"]}},
            {"name": "side", "image": "side:1", "memory": 64, "essential": false}]}),
    );
    let run = run_task(&s, &cluster, &family);
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(run["tasks"][0]["healthStatus"], "UNKNOWN");
    tcs.send(&json!({
        "type": "PublishHealthRequest",
        "message": {
            "metadata": {"cluster": cluster, "containerInstance": instance, "fin": true, "messageId": "h-2"},
            "tasks": [{"taskArn": task, "containers": [{"containerName": "app", "healthStatus": "HEALTHY", "statusSince": 1700000002}]}],
            "timestamp": 1700000002
        }
    }));
    let ack = tcs.recv(Duration::from_secs(5)).expect("an ack");
    assert_eq!(ack["type"], "AckPublishHealth");
    let t = ecs::describe_task(&s, &cluster, &task);
    assert_eq!(t["healthStatus"], "HEALTHY");
    let app = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    assert_eq!(app["healthStatus"], "HEALTHY");
    tcs.close();
}
