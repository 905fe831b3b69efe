//! ECS's agent protocol as Berth serves it, held against a scripted agent that plays the
//! official Amazon ECS agent's side: DiscoverPollEndpoint, the signed ACS upgrade and its
//! refusals, PayloadMessage within a second of RunTask and StopTask (acknowledged with
//! AckRequest), heartbeats, agentConnected following the session (and the timeout), the
//! full set of live tasks again on reconnect, task manifests and stop verification, and the
//! telemetry websocket's acks.

use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_e2e::agent::ScriptedAgent;
use berth_e2e::{BerthServer, ServerOptions, ok_json, unique};
use serde_json::{Value, json};

fn register(s: &BerthServer, cluster: &str) -> String {
    let resources = r#"[{"name":"CPU","type":"INTEGER","integerValue":1024},
        {"name":"MEMORY","type":"INTEGER","integerValue":2048},
        {"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}]"#;
    ok_json(&s.aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        cluster,
        "--total-resources",
        resources,
    ]))["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

fn agent_connected(s: &BerthServer, cluster: &str, instance: &str) -> bool {
    ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        cluster,
        "--container-instances",
        instance,
    ]))["containerInstances"][0]["agentConnected"]
        .as_bool()
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn run_task(s: &BerthServer, cluster: &str, family: &str) -> Value {
    ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        family,
    ]))
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
    let s = BerthServer::start_with(ServerOptions {
        args: vec![
            // Long enough for a few aws CLI calls while the scripted agent is not reading
            // (it answers heartbeats only inside recv_kind), short enough to wait out.
            "--agent-timeout-seconds".into(),
            "8".into(),
            "--agent-heartbeat-seconds".into(),
            "1".into(),
        ],
        ..ServerOptions::default()
    });
    let cluster = unique("acs-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let instance = register(&s, &cluster);
    let family = unique("web-");
    let td = format!(
        r#"{{"family":"{family}","networkMode":"bridge","containerDefinitions":[
            {{"name":"web","image":"{}/web:1","cpu":128,"memory":256,"essential":true,
              "environment":[{{"name":"GREETING","value":"hello"}}],
              "portMappings":[{{"containerPort":80,"hostPort":8080}}]}}]}}"#,
        s.host()
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));

    // DiscoverPollEndpoint names this server for ACS and telemetry.
    let poll = ok_json(&s.aws(&[
        "ecs",
        "discover-poll-endpoint",
        "--cluster",
        &cluster,
        "--container-instance",
        &instance,
    ]));
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
    ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &task_arn,
    ]));
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
    // one is not in it: the agent was told, and it never started here).
    let mut agent = ScriptedAgent::acs(&s, &cluster, &instance).unwrap();
    assert!(agent_connected(&s, &cluster, &instance));
    let payload = agent
        .recv_kind("PayloadMessage", Duration::from_secs(5))
        .expect("the live tasks on reconnect");
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
    let ack = ok_json(&s.aws(&[
        "ecs",
        "submit-task-state-change",
        "--cluster",
        &cluster,
        "--task",
        &second,
        "--status",
        "RUNNING",
        "--containers",
        r#"[{"containerName":"web","status":"RUNNING","networkBindings":[{"bindIP":"0.0.0.0","containerPort":80,"hostPort":8080,"protocol":"tcp"}]}]"#,
    ]));
    assert_eq!(ack["acknowledgment"], "ACK");
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &cluster,
        "--tasks",
        &second,
    ]));
    let t = &described["tasks"][0];
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
    ok_json(&s.aws(&[
        "ecs",
        "deregister-container-instance",
        "--cluster",
        &cluster,
        "--container-instance",
        &instance,
        "--force",
    ]));
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
    let s = BerthServer::start();
    let cluster = unique("tcs-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
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
    let td = format!(
        r#"{{"family":"{family}","containerDefinitions":[
            {{"name":"app","image":"app:1","memory":64,"essential":true,
              "healthCheck":{{"command":["CMD-SHELL","true"]}}}},
            {{"name":"side","image":"side:1","memory":64,"essential":false}}]}}"#
    );
    ok_json(&s.aws(&["ecs", "register-task-definition", "--cli-input-json", &td]));
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
    ]));
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
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &cluster,
        "--tasks",
        &task,
    ]));
    let t = &described["tasks"][0];
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
