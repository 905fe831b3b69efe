//! Telemetry messages and a session against a scripted TCS server on a local socket.

use std::time::Instant;

use berth_agent_protocol::tcs::AckPublishHealth;
use serde_json::{Value, json};

use super::*;
use crate::config::Credentials;
use crate::engine::EngineConfig;
use crate::testing::{Harness, WAIT, config, task, task_arn};

fn health_check_task(id: &str) -> berth_agent_protocol::acs::Task {
    let check = "{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000}}";
    task(
        id,
        "RUNNING",
        json!([
            {"name": "app", "image": "busybox", "essential": true, "command": ["httpd"],
             "dockerConfig": {"config": check}},
            {"name": "plain", "image": "busybox", "essential": false, "command": ["httpd"]}
        ]),
    )
}

fn task_health_of(id: &str, status: &str) -> TaskHealth {
    TaskHealth {
        task_arn: Some(task_arn(id)),
        containers: Some(vec![ContainerHealth {
            container_name: Some("app".into()),
            health_status: Some(status.into()),
            ..ContainerHealth::default()
        }]),
        ..TaskHealth::default()
    }
}

#[test]
fn messages_carry_at_most_ten_tasks_and_mark_the_last() {
    let tasks: Vec<TaskHealth> = (0..23)
        .map(|i| task_health_of(&i.to_string(), "HEALTHY"))
        .collect();
    let messages = health_messages("c", "arn:i", tasks);
    let sizes: Vec<usize> = messages
        .iter()
        .map(|m| m.tasks.as_ref().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 10, 3]);
    let fins: Vec<bool> = messages
        .iter()
        .map(|m| m.metadata.as_ref().unwrap().fin.unwrap())
        .collect();
    assert_eq!(fins, [false, false, true]);
    let ids: std::collections::BTreeSet<_> = messages
        .iter()
        .map(|m| m.metadata.as_ref().unwrap().message_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "a message id each");
    assert!(health_messages("c", "arn:i", Vec::new()).is_empty());

    // No metrics: one idle message.
    let idle = metrics_messages("c", "arn:i", Vec::new());
    assert_eq!(idle.len(), 1);
    let text = AgentMessage::PublishMetrics(idle[0].clone()).encode();
    // What the server reads it with.
    assert!(matches!(
        AgentMessage::decode(&text),
        Ok(AgentMessage::PublishMetrics(_))
    ));
    let frame: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(frame["type"], "PublishMetricsRequest");
    assert_eq!(frame["message"]["metadata"]["idle"], true);
    assert_eq!(frame["message"]["metadata"]["fin"], true);
    assert_eq!(frame["message"]["metadata"]["cluster"], "c");
    assert_eq!(frame["message"]["metadata"]["containerInstance"], "arn:i");
    assert!(frame["message"]["timestamp"].is_number());
    let busy = metrics_messages("c", "arn:i", vec![TaskMetric::default(); 11]);
    assert_eq!(busy.len(), 2);
    assert!(!busy[0].metadata.as_ref().unwrap().idle.unwrap());
}

#[tokio::test]
async fn task_health_lists_health_checked_containers_only() {
    let h = Harness::start(config()).await;
    h.engine.apply_payload(vec![
        health_check_task("hc"),
        task(
            "nohc",
            "RUNNING",
            json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
        ),
    ]);
    h.control.wait_task(&task_arn("hc"), "RUNNING").await;
    h.control.wait_task(&task_arn("nohc"), "RUNNING").await;
    let health = task_health(&h.engine);
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(health[0].task_arn.as_deref(), Some(task_arn("hc").as_str()));
    assert_eq!(health[0].task_definition_family.as_deref(), Some("fam"));
    assert_eq!(health[0].task_definition_version.as_deref(), Some("3"));
    let containers = health[0].containers.as_ref().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].container_name.as_deref(), Some("app"));
    assert!(matches!(
        containers[0].health_status.as_deref(),
        Some("UNKNOWN" | "HEALTHY")
    ));
    assert!(containers[0].status_since.is_some());
}

/// The agent's end of a websocket to a local listener, and the server's end.
async fn socket_pair() -> (
    Socket,
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio_tungstenite::accept_async(stream).await.unwrap()
    });
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (client, _) = tokio_tungstenite::client_async(format!("ws://{address}/tcs/ws"), stream)
        .await
        .unwrap();
    (client, server.await.unwrap())
}

#[tokio::test]
async fn a_session_publishes_health_when_it_changes_and_metrics_every_interval() {
    let h = Harness::start(config()).await;
    let stats = StatsCollector::new(h.engine.clone(), 4);
    let client = AwsClient::new(
        "http://127.0.0.1:9",
        Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        },
        "us-east-1",
    )
    .unwrap();
    let params = TelemetryParams {
        publish_interval: Duration::from_millis(400),
        ..TelemetryParams::new(
            Arc::new(client),
            "unit",
            crate::testing::INSTANCE,
            VersionInfo {
                agent_version: "1".into(),
                agent_hash: "h".into(),
                docker_version: "DockerVersion: 20.10".into(),
            },
            h.engine.clone(),
            stats.clone(),
        )
    };
    let (agent_end, mut server) = socket_pair().await;
    let (stop, mut stopped) = watch::channel(false);
    let session = tokio::spawn(async move { serve(&params, agent_end, &mut stopped).await });
    let sampler = tokio::spawn(
        stats
            .clone()
            .run(Duration::from_millis(100), h.stop.subscribe()),
    );

    h.engine.apply_payload(vec![health_check_task("watched")]);
    let started = Instant::now();
    let mut healthy_after = None;
    let mut metrics = None;
    while healthy_after.is_none() || metrics.is_none() {
        assert!(
            started.elapsed() < WAIT,
            "healthy {healthy_after:?}, metrics {metrics:?}"
        );
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(2), server.next()).await
        else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        let message = &frame["message"];
        match frame["type"].as_str().unwrap() {
            "PublishHealthRequest" => {
                assert_eq!(
                    message["metadata"]["containerInstance"],
                    crate::testing::INSTANCE
                );
                let app = &message["tasks"][0]["containers"][0];
                assert_eq!(app["containerName"], "app");
                if app["healthStatus"] == "HEALTHY" {
                    healthy_after.get_or_insert(started.elapsed());
                }
                let ack = tcs_ack_health();
                server.send(Message::Text(ack.into())).await.unwrap();
            }
            "PublishMetricsRequest" => {
                let tasks = message["taskMetrics"].as_array().unwrap();
                if let Some(task) = tasks.first() {
                    assert_eq!(task["taskArn"], task_arn("watched"));
                    let containers = task["containerMetrics"].as_array().unwrap();
                    let app = containers
                        .iter()
                        .find(|c| c["containerName"] == "app")
                        .unwrap();
                    let cpu = &app["cpuStatsSet"];
                    let memory = &app["memoryStatsSet"];
                    assert!(cpu["sampleCount"].as_u64().unwrap() >= 1, "{app}");
                    // The simulation uses 1 % of one CPU of four: 0.25 % of the instance.
                    let average =
                        cpu["sum"].as_f64().unwrap() / cpu["sampleCount"].as_f64().unwrap();
                    assert!((0.1..0.5).contains(&average), "{cpu}");
                    assert_eq!(memory["max"], 6.0, "8 MiB less a quarter of cache");
                    metrics = Some(frame.clone());
                }
                server
                    .send(Message::Text(
                        r#"{"type":"AckPublishMetric","message":{}}"#.into(),
                    ))
                    .await
                    .unwrap();
            }
            "PublishInstanceStatusRequest" => {
                let ack = r#"{"type":"AckPublishInstanceStatus","message":{}}"#;
                server.send(Message::Text(ack.into())).await.unwrap();
            }
            other => panic!("unexpected frame {other}"),
        }
    }
    // The health check passes after one interval (2 s at the simulation's tenfold speed),
    // and goes out at once, not at the next publish.
    let healthy_after = healthy_after.unwrap();
    assert!(
        healthy_after < Duration::from_millis(1500),
        "{healthy_after:?}"
    );

    stop.send_replace(true);
    assert_eq!(session.await.unwrap(), Ended::Shutdown);
    h.stop.send_replace(true);
    let _ = sampler.await;
}

fn tcs_ack_health() -> String {
    ServerMessage::AckPublishHealth(AckPublishHealth::default()).encode()
}

#[tokio::test]
async fn a_stop_message_ends_the_session_for_a_reconnect() {
    let h = Harness::start(config()).await;
    let stats = StatsCollector::new(h.engine.clone(), 4);
    let client = AwsClient::new(
        "http://127.0.0.1:9",
        Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        },
        "us-east-1",
    )
    .unwrap();
    let params = TelemetryParams::new(
        Arc::new(client),
        "unit",
        crate::testing::INSTANCE,
        VersionInfo {
            agent_version: "1".into(),
            agent_hash: "h".into(),
            docker_version: "20.10".into(),
        },
        h.engine.clone(),
        stats,
    );
    let (agent_end, mut server) = socket_pair().await;
    let (_stop, mut stopped) = watch::channel(false);
    let session = tokio::spawn(async move { serve(&params, agent_end, &mut stopped).await });
    server
        .send(Message::Text(
            r#"{"type":"StopTelemetrySessionMessage","message":{"message":"bye"}}"#.into(),
        ))
        .await
        .unwrap();
    let ended = tokio::time::timeout(WAIT, session).await.unwrap().unwrap();
    assert!(matches!(ended, Ended::Reconnect(_)), "{ended:?}");
}

/// The next `PublishInstanceStatusRequest` the server end reads (others are skipped), as
/// its one status.
async fn next_instance_status(
    server: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no PublishInstanceStatusRequest");
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(1), server.next()).await
        else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == "PublishInstanceStatusRequest" {
            let message = &frame["message"];
            assert_eq!(
                message["metadata"]["containerInstance"],
                crate::testing::INSTANCE
            );
            let statuses = message["statuses"].as_array().unwrap();
            assert_eq!(statuses.len(), 1, "{frame}");
            return statuses[0].clone();
        }
    }
}

#[tokio::test]
async fn instance_status_goes_out_at_open_and_when_the_runtime_comes_and_goes() {
    let h = Harness::start(EngineConfig {
        runtime_check_interval: Duration::from_millis(50),
        ..config()
    })
    .await;
    let stats = StatsCollector::new(h.engine.clone(), 4);
    let client = AwsClient::new(
        "http://127.0.0.1:9",
        Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        },
        "us-east-1",
    )
    .unwrap();
    let params = TelemetryParams {
        // Long enough that only the session start and changes publish here.
        publish_interval: Duration::from_secs(3600),
        ..TelemetryParams::new(
            Arc::new(client),
            "unit",
            crate::testing::INSTANCE,
            VersionInfo {
                agent_version: "1".into(),
                agent_hash: "h".into(),
                docker_version: "20.10".into(),
            },
            h.engine.clone(),
            stats,
        )
    };
    // Wait for the first check, so the session opens on a known status.
    let mut health = h.engine.runtime_health();
    tokio::time::timeout(
        WAIT,
        health.wait_for(|h| h.status == crate::instance_health::CheckStatus::Ok),
    )
    .await
    .unwrap()
    .unwrap();
    let (agent_end, mut server) = socket_pair().await;
    let (stop, mut stopped) = watch::channel(false);
    let session = tokio::spawn(async move { serve(&params, agent_end, &mut stopped).await });

    let opened = next_instance_status(&mut server).await;
    assert_eq!(opened["type"], "ContainerRuntime");
    assert_eq!(opened["status"], "OK");
    assert!(opened["lastUpdated"].is_number() && opened["lastStatusChange"].is_number());

    h.runtime.set_unavailable(true);
    let impaired = next_instance_status(&mut server).await;
    assert_eq!(impaired["status"], "IMPAIRED", "{impaired}");
    assert!(
        impaired["statusReason"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{impaired}"
    );
    assert!(impaired["lastStatusChange"].as_f64() >= opened["lastStatusChange"].as_f64());

    h.runtime.set_unavailable(false);
    let back = next_instance_status(&mut server).await;
    assert_eq!(back["status"], "OK", "{back}");
    assert!(back.get("statusReason").is_none(), "{back}");

    stop.send_replace(true);
    assert_eq!(session.await.unwrap(), Ended::Shutdown);
    h.stop.send_replace(true);
}
