//! The endpoint against the engine on the simulated runtime, through the router without a
//! socket.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use std::net::{IpAddr, Ipv4Addr};

use super::endpoint::{MetadataEndpoint, bind, token_of};
use super::*;
use crate::engine::EngineConfig;
use crate::testing::{Harness, config, task, task_arn};

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A running two-container task with task-level limits, a health check and a port.
async fn running_task() -> (Harness, Router, StatsCollector, String) {
    let h = Harness::start(EngineConfig {
        metadata: Some(MetadataEndpoint {
            bridge_host: Some("172.17.0.1".into()),
            port: 51679,
            link_local: false,
        }),
        ..config()
    })
    .await;
    let check = "{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":1000000000}}";
    let logs = "{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":\"1m\"}}}";
    let mut t = task(
        "meta",
        "RUNNING",
        json!([
            {"name": "web", "image": "busybox:1.36", "essential": true, "cpu": 128, "memory": 64,
             "command": ["httpd"], "containerArn": "arn:aws:ecs:us-east-1:000000000000:container/c1",
             "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
             "dockerConfig": {"config": check, "hostConfig": logs}},
            {"name": "sidecar", "image": "busybox", "essential": false, "command": ["httpd"]}
        ]),
    );
    t.cpu = Some(0.5);
    t.memory = Some(256);
    t.service_name = Some("web-svc".into());
    h.engine.apply_payload(vec![t]);
    h.control.wait_task(&task_arn("meta"), "RUNNING").await;
    // Healthy after one (scaled) interval.
    let deadline = std::time::Instant::now() + crate::testing::WAIT;
    while h.state.task(&task_arn("meta")).unwrap().containers["web"]
        .health
        .as_deref()
        != Some("HEALTHY")
    {
        assert!(std::time::Instant::now() < deadline, "never healthy");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = StatsCollector::new(h.engine.clone(), 4);
    let app = app(Arc::new(MetadataService {
        engine: h.engine.clone(),
        stats: stats.clone(),
        availability_zone: Some("us-east-1a".into()),
        router_key: None,
    }));
    let token = h.state.task(&task_arn("meta")).unwrap().containers["web"]
        .metadata_token
        .clone()
        .unwrap();
    (h, app, stats, token)
}

#[tokio::test]
async fn container_metadata_in_ecs_format() {
    let (h, app, _, token) = running_task().await;
    let record = h.state.task(&task_arn("meta")).unwrap();
    let docker_id = record.containers["web"].runtime_id.clone().unwrap();

    let (status, web) = get(&app, &format!("/v4/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(web["DockerId"], docker_id);
    assert_eq!(web["Name"], "web");
    assert_eq!(web["DockerName"], record.containers["web"].docker_name);
    assert_eq!(web["Image"], "busybox:1.36");
    assert!(web["ImageID"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        web["Ports"],
        json!([{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 8080, "HostIp": "0.0.0.0"}])
    );
    assert_eq!(
        web["Labels"]["com.amazonaws.ecs.task-arn"],
        task_arn("meta")
    );
    assert_eq!(web["Labels"]["com.amazonaws.ecs.container-name"], "web");
    assert_eq!(web["DesiredStatus"], "RUNNING");
    assert_eq!(web["KnownStatus"], "RUNNING");
    assert_eq!(web["Limits"], json!({"CPU": 128.0, "Memory": 64}));
    assert_eq!(web["Type"], "NORMAL");
    assert_eq!(
        web["ContainerARN"],
        "arn:aws:ecs:us-east-1:000000000000:container/c1"
    );
    assert_eq!(web["LogDriver"], "json-file");
    assert_eq!(web["LogOptions"], json!({"max-size": "1m"}));
    assert_eq!(web["Networks"][0]["NetworkMode"], "bridge");
    assert!(
        web["Networks"][0]["IPv4Addresses"][0]
            .as_str()
            .unwrap()
            .starts_with("172.17.")
    );
    // The engine keeps the address it inspected: the credentials endpoint's check reads it.
    assert_eq!(
        record.containers["web"]
            .address
            .map(|a| a.to_string())
            .as_deref(),
        web["Networks"][0]["IPv4Addresses"][0].as_str()
    );
    assert_eq!(web["Health"]["status"], "HEALTHY");
    for member in ["CreatedAt", "StartedAt"] {
        let at = web[member].as_str().unwrap();
        assert!(
            OffsetDateTime::parse(at, &Rfc3339).is_ok() && at.ends_with('Z'),
            "{member}: {at}"
        );
    }
    assert!(web.get("ExitCode").is_none() && web.get("FinishedAt").is_none());
    assert!(
        web["Health"]["statusSince"]
            .as_str()
            .is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok())
    );

    let (status, error) = get(&app, "/v4/not-a-token").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error.is_string());
}

#[tokio::test]
async fn task_metadata_in_ecs_format() {
    let (h, app, _, token) = running_task().await;
    let (status, task) = get(&app, &format!("/v4/{token}/task")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["Cluster"], crate::testing::CLUSTER);
    assert_eq!(task["TaskARN"], task_arn("meta"));
    assert_eq!(task["Family"], "fam");
    assert_eq!(task["Revision"], "3");
    assert_eq!(task["DesiredStatus"], "RUNNING");
    assert_eq!(task["KnownStatus"], "RUNNING");
    assert_eq!(task["Limits"], json!({"CPU": 0.5, "Memory": 256}));
    assert_eq!(task["AvailabilityZone"], "us-east-1a");
    assert_eq!(task["LaunchType"], "EC2");
    assert_eq!(task["ServiceName"], "web-svc");
    let pulled = |member: &str| OffsetDateTime::parse(task[member].as_str().unwrap(), &Rfc3339);
    assert!(pulled("PullStartedAt").unwrap() <= pulled("PullStoppedAt").unwrap());
    let mut names: Vec<&str> = task["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["sidecar", "web"]);
    let sidecar = task["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Name"] == "sidecar")
        .unwrap();
    // No health check, no Health; no limits of its own.
    assert!(sidecar.get("Health").is_none());
    assert_eq!(sidecar["Limits"], json!({"CPU": 0.0, "Memory": 0}));

    // Either container's token names the same task.
    let sidecar_token = h.state.task(&task_arn("meta")).unwrap().containers["sidecar"]
        .metadata_token
        .clone()
        .unwrap();
    let (_, again) = get(&app, &format!("/v4/{sidecar_token}/task")).await;
    assert_eq!(again["TaskARN"], task["TaskARN"]);
}

#[tokio::test]
async fn stats_are_docker_documents_with_the_previous_sample() {
    let (h, app, stats, token) = running_task().await;
    let record = h.state.task(&task_arn("meta")).unwrap();
    let web_id = record.containers["web"].runtime_id.clone().unwrap();
    let sidecar_id = record.containers["sidecar"].runtime_id.clone().unwrap();

    stats.sample_all().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, sample) = get(&app, &format!("/v4/{token}/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sample["id"], web_id);
    let now = sample["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    let before = sample["precpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    assert!(now > before, "{sample:#}");
    assert_ne!(sample["read"], sample["preread"]);
    // The task's 256 MiB: web keeps its own 64, the sidecar gets the rest.
    assert_eq!(sample["memory_stats"]["limit"], json!(64u64 << 20));

    let (status, all) = get(&app, &format!("/v4/{token}/task/stats")).await;
    assert_eq!(status, StatusCode::OK);
    let all = all.as_object().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[&web_id]["id"], web_id);
    assert_eq!(all[&sidecar_id]["id"], sidecar_id);
    assert_eq!(
        all[&sidecar_id]["memory_stats"]["limit"],
        json!(192u64 << 20)
    );
}

#[test]
fn uris_and_tokens() {
    let endpoint = MetadataEndpoint {
        bridge_host: Some("172.17.0.1".into()),
        port: 40000,
        link_local: false,
    };
    let uri = endpoint.uri(&NetworkMode::Bridge, "abc").unwrap();
    assert_eq!(uri, "http://172.17.0.1:40000/v4/abc");
    assert_eq!(token_of(&uri), Some("abc"));
    assert_eq!(
        endpoint.uri(&NetworkMode::Host, "abc").as_deref(),
        Some("http://127.0.0.1:40000/v4/abc")
    );
    assert_eq!(endpoint.uri(&NetworkMode::None, "abc"), None);
    assert_eq!(token_of("http://127.0.0.1:1/v4/"), None);
    assert_eq!(token_of("http://127.0.0.1:1/v3/abc"), None);
    assert_eq!(
        endpoint.listen_addresses(),
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "172.17.0.1".parse::<IpAddr>().unwrap()
        ]
    );
    let no_bridge = MetadataEndpoint {
        bridge_host: None,
        port: 1,
        link_local: false,
    };
    assert_eq!(no_bridge.uri(&NetworkMode::Bridge, "abc"), None);
}

#[test]
fn with_the_link_local_address_every_container_is_told_169_254_170_2() {
    let endpoint = MetadataEndpoint {
        bridge_host: Some("172.17.0.1".into()),
        port: 40000,
        link_local: true,
    };
    for mode in [NetworkMode::Bridge, NetworkMode::Host] {
        let uri = endpoint.uri(&mode, "abc").unwrap();
        assert_eq!(uri, "http://169.254.170.2/v4/b40000-abc");
        assert_eq!(token_of(&uri), Some("abc"));
        assert_eq!(
            endpoint.credentials_variable(&mode, "id-1"),
            Some((
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_owned(),
                "/v2/credentials/b40000-id-1".to_owned()
            ))
        );
    }
    assert_eq!(endpoint.uri(&NetworkMode::None, "abc"), None);
    assert_eq!(
        endpoint.credentials_variable(&NetworkMode::None, "id"),
        None
    );
    // Without it, only host-mode containers can reach credentials (loopback).
    let direct = MetadataEndpoint {
        link_local: false,
        ..endpoint
    };
    assert_eq!(
        direct.credentials_variable(&NetworkMode::Host, "id"),
        Some((
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
            "http://127.0.0.1:40000/v2/credentials/id".to_owned()
        ))
    );
    assert_eq!(
        direct.credentials_variable(&NetworkMode::Bridge, "id"),
        None
    );
}

#[tokio::test]
async fn listeners_share_one_port() {
    let addresses = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "127.0.0.2".parse().unwrap(),
    ];
    let (listeners, port) = bind(&addresses, 0).await.unwrap();
    assert_ne!(port, 0);
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    assert_eq!(ports, [port, port]);
}
