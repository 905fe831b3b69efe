//! TCS frames: as the official agent writes them (signed header block, epoch-second
//! timestamps), round trips, and member names held to the model (lists transcribed from
//! `ecs-agent/tcs/model/api/api-2.json`, plus the members of the agent's newer generated
//! `ecstcs/api.go` noted in the module docs).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::{AcsError, ExceptionMessage, Timestamp};

const INSTANCE: &str =
    "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0123456789abcdef";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/fedcba9876543210";

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn members(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn message_of(frame: &str, type_name: &str) -> Value {
    let frame: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(keys(&frame), members(&["type", "message"]));
    assert_eq!(frame["type"], type_name);
    frame["message"].clone()
}

// ---- fully populated samples ----------------------------------------------------------

fn cw(sum: f64) -> CWStatsSet {
    CWStatsSet {
        min: Some(0.5),
        max: Some(2.5),
        sample_count: Some(4),
        sum: Some(sum),
    }
}

fn udouble() -> UDoubleCWStatsSet {
    UDoubleCWStatsSet {
        min: 1.0,
        max: 3.0,
        sample_count: 2,
        sum: 4.0,
    }
}

fn ulong() -> ULongStatsSet {
    ULongStatsSet {
        min: 1,
        max: 9,
        sample_count: 3,
        sum: 15,
        overflow_min: Some(0),
        overflow_max: Some(0),
        overflow_sum: Some(0),
    }
}

fn general_metrics() -> Option<Vec<GeneralMetricsWrapper>> {
    Some(vec![GeneralMetricsWrapper {
        dimensions: Some(vec![Dimension {
            key: s("DiscoveryName"),
            value: s("web"),
        }]),
        metric_type: s("1"),
        general_metrics: Some(vec![GeneralMetric {
            metric_name: s("RequestCount"),
            metric_values: Some(vec![1.0, 2.0]),
            metric_counts: Some(vec![3, 4]),
            metric_value_double: Some(0.5),
            metric_value_long: Some(7),
            metric_value_stats_set: Some(cw(4.0)),
            unit: s("Count"),
        }]),
    }])
}

fn full_metrics() -> PublishMetricsRequest {
    PublishMetricsRequest {
        metadata: Some(MetricsMetadata {
            cluster: s("default"),
            container_instance: s(INSTANCE),
            message_id: s("metrics-1"),
            idle: Some(false),
            fin: Some(true),
        }),
        instance_metrics: Some(InstanceMetrics {
            storage: Some(InstanceStorageMetrics {
                os_filesystem: Some(41.5),
                data_filesystem: Some(12.0),
            }),
            general_metrics_payload: general_metrics(),
        }),
        task_metrics: Some(vec![TaskMetric {
            task_arn: s(TASK_ARN),
            cluster_arn: s("arn:aws:ecs:us-east-1:000000000000:cluster/default"),
            task_definition_family: s("web"),
            task_definition_version: s("3"),
            container_metrics: Some(vec![ContainerMetric {
                container_arn: s("arn:aws:ecs:us-east-1:000000000000:container/default/1/web"),
                container_name: s("web"),
                cpu_stats_set: Some(cw(4.0)),
                memory_stats_set: Some(cw(8.0)),
                network_stats_set: Some(NetworkStatsSet {
                    rx_bytes_per_second: Some(udouble()),
                    rx_bytes: Some(ulong()),
                    rx_dropped: Some(ulong()),
                    rx_errors: Some(ulong()),
                    rx_packets: Some(ulong()),
                    tx_bytes_per_second: Some(udouble()),
                    tx_bytes: Some(ulong()),
                    tx_dropped: Some(ulong()),
                    tx_errors: Some(ulong()),
                    tx_packets: Some(ulong()),
                }),
                storage_stats_set: Some(StorageStatsSet {
                    read_size_bytes: Some(ulong()),
                    write_size_bytes: Some(ulong()),
                }),
                restart_stats_set: Some(RestartStatsSet {
                    restart_count: Some(1),
                }),
                general_metrics_payload: general_metrics(),
            }]),
            ephemeral_storage_metrics: Some(EphemeralStorageMetrics {
                bytes_utilized: Some(ulong()),
            }),
            volume_metrics: Some(vec![VolumeMetric {
                volume_id: s("vol-1"),
                volume_name: s("data"),
                utilized: Some(udouble()),
                size: Some(udouble()),
            }]),
            service_connect_metrics_wrapper: general_metrics(),
        }]),
        timestamp: Some(Timestamp::from_unix_millis(1_700_000_000_123)),
    }
}

fn full_health() -> PublishHealthRequest {
    PublishHealthRequest {
        metadata: Some(HealthMetadata {
            cluster: s("default"),
            container_instance: s(INSTANCE),
            message_id: s("health-1"),
            fin: Some(true),
        }),
        tasks: Some(vec![TaskHealth {
            task_arn: s(TASK_ARN),
            cluster_arn: s("default"),
            task_definition_family: s("web"),
            task_definition_version: s("3"),
            containers: Some(vec![ContainerHealth {
                container_name: s("web"),
                health_status: s("HEALTHY"),
                status_since: Some(Timestamp::from_unix_seconds(1_700_000_000)),
                status_message: s("ok"),
            }]),
        }]),
        timestamp: Some(Timestamp::from_unix_seconds(1_700_000_010)),
    }
}

fn full_instance_status() -> PublishInstanceStatusRequest {
    PublishInstanceStatusRequest {
        metadata: Some(InstanceStatusMetadata {
            cluster: s("default"),
            container_instance: s(INSTANCE),
            request_id: s("req-1"),
        }),
        statuses: Some(vec![InstanceStatus {
            kind: s("ContainerRuntime"),
            status: s("OK"),
            last_updated: Some(Timestamp::from_unix_seconds(1_700_000_000)),
            last_status_change: Some(Timestamp::from_unix_seconds(1_699_999_000)),
            status_reason: s("docker responds"),
        }]),
        timestamp: Some(Timestamp::from_unix_seconds(1_700_000_000)),
    }
}

fn exception() -> ExceptionMessage {
    ExceptionMessage {
        message: s("details"),
    }
}

fn every_server_message() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Heartbeat(HeartbeatMessage {
            healthy: Some(true),
        }),
        ServerMessage::AckPublishMetric(AckPublishMetric { message: s("ok") }),
        ServerMessage::AckPublishHealth(AckPublishHealth { message: s("ok") }),
        ServerMessage::AckPublishInstanceStatus(AckPublishInstanceStatus { message: s("ok") }),
        ServerMessage::StopTelemetrySession(StopTelemetrySessionMessage { message: s("bye") }),
        ServerMessage::ServerException(exception()),
        ServerMessage::BadRequestException(exception()),
        ServerMessage::ResourceValidationException(exception()),
        ServerMessage::InvalidParameterException(exception()),
    ]
}

fn every_agent_message() -> Vec<AgentMessage> {
    vec![
        AgentMessage::PublishMetrics(full_metrics()),
        AgentMessage::PublishHealth(full_health()),
        AgentMessage::PublishInstanceStatus(full_instance_status()),
        AgentMessage::StartTelemetrySession(StartTelemetrySessionRequest {
            cluster: s("default"),
            container_instance: s(INSTANCE),
        }),
    ]
}

// ---- round trips ---------------------------------------------------------------------

#[test]
fn every_message_round_trips() {
    for message in every_server_message() {
        let frame = message.encode();
        assert_eq!(ServerMessage::decode(&frame).unwrap(), message, "{frame}");
    }
    for message in every_agent_message() {
        let frame = message.encode();
        assert!(!frame.contains("null"), "{frame}");
        assert_eq!(AgentMessage::decode(&frame).unwrap(), message, "{frame}");
    }
}

// ---- frames written the way the Go agent writes them ----------------------------------

/// The header block `signRequestFunc` writes: `http.Header.Write` of a signed GET (sorted
/// names, `Name: value\r\n`), then `\r\n`.
const SIGNED_HEADERS: &str = "Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20231114/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0f1e2d\r\nHost: 127.0.0.1:4566\r\nX-Amz-Date: 20231114T221320Z\r\n\r\n";

#[test]
fn decodes_a_signed_metrics_frame_as_the_agent_sends_it() {
    // Members as the ecstcs types tag them; the timestamp as aws-sdk-go's BuildJSON writes
    // a time.Time (epoch seconds, millisecond fraction).
    let body = r#"{"type":"PublishMetricsRequest","message":{"instanceMetrics":{"storage":{"DataFilesystem":12.5,"OSFilesystem":40}},"metadata":{"cluster":"default","containerInstance":"ci-1","fin":true,"idle":false,"messageId":"6bd5c4a7"},"taskMetrics":[{"clusterArn":"default","containerMetrics":[{"containerArn":"c-arn","containerName":"web","cpuStatsSet":{"max":2.5,"min":0.5,"sampleCount":4,"sum":4},"memoryStatsSet":{"max":3.0,"min":1.0,"sampleCount":4,"sum":8},"networkStatsSet":{"rxBytes":{"max":9,"min":1,"overflowMax":0,"overflowMin":0,"overflowSum":0,"sampleCount":3,"sum":15},"rxBytesPerSecond":{"max":3,"min":1,"sampleCount":2,"sum":4}},"restartStatsSet":{"restartCount":0}}],"taskArn":"t-arn","taskDefinitionFamily":"web","taskDefinitionVersion":"3"}],"timestamp":1700000000.123}}"#;
    let frame = format!("{SIGNED_HEADERS}{body}");

    let (signed, message) = AgentMessage::decode_signed(&frame).unwrap();
    assert_eq!(signed.headers.len(), 3);
    assert_eq!(signed.headers[1], ("Host", "127.0.0.1:4566"));
    assert_eq!(signed.body, body);
    assert_eq!(AgentMessage::decode(&frame).unwrap(), message);

    let AgentMessage::PublishMetrics(metrics) = message else {
        panic!("not metrics");
    };
    assert_eq!(
        metrics.timestamp,
        Some(Timestamp::from_unix_millis(1_700_000_000_123))
    );
    let metadata = metrics.metadata.unwrap();
    assert_eq!(metadata.fin, Some(true));
    assert_eq!(metadata.idle, Some(false));
    let storage = metrics.instance_metrics.unwrap().storage.unwrap();
    assert_eq!(storage.os_filesystem, Some(40.0));
    assert_eq!(storage.data_filesystem, Some(12.5));
    let task = &metrics.task_metrics.unwrap()[0];
    let container = &task.container_metrics.as_ref().unwrap()[0];
    assert_eq!(container.cpu_stats_set.as_ref().unwrap().sum, Some(4.0));
    let network = container.network_stats_set.as_ref().unwrap();
    assert_eq!(network.rx_bytes.as_ref().unwrap().sum, 15);
    assert_eq!(network.rx_bytes_per_second.as_ref().unwrap().max, 3.0);
}

#[test]
fn decodes_health_and_instance_status_frames_as_the_agent_sends_them() {
    let health = r#"{"type":"PublishHealthRequest","message":{"metadata":{"cluster":"default","containerInstance":"ci-1","fin":true,"messageId":"m"},"tasks":[{"containers":[{"containerName":"web","healthStatus":"UNHEALTHY","statusMessage":"curl failed","statusSince":1700000000}],"taskArn":"t-arn","taskDefinitionFamily":"web","taskDefinitionVersion":"3"}],"timestamp":1700000020}}"#;
    let AgentMessage::PublishHealth(health) =
        AgentMessage::decode(&format!("{SIGNED_HEADERS}{health}")).unwrap()
    else {
        panic!("not health");
    };
    let tasks = health.tasks.unwrap();
    let container = &tasks[0].containers.as_ref().unwrap()[0];
    assert_eq!(container.health_status.as_deref(), Some("UNHEALTHY"));
    assert_eq!(
        container.status_since,
        Some(Timestamp::from_unix_seconds(1_700_000_000))
    );

    let status = r#"{"type":"PublishInstanceStatusRequest","message":{"metadata":{"cluster":"default","containerInstance":"ci-1","requestId":"r"},"statuses":[{"lastStatusChange":1699999000,"lastUpdated":1700000000,"status":"OK","type":"ContainerRuntime"}],"timestamp":1700000000}}"#;
    let AgentMessage::PublishInstanceStatus(status) = AgentMessage::decode(status).unwrap() else {
        panic!("not instance status");
    };
    assert_eq!(
        status.statuses.unwrap()[0].kind.as_deref(),
        Some("ContainerRuntime")
    );
}

#[test]
fn an_impaired_container_runtime_reads_as_agents_old_and_new_write_it() {
    // aws-sdk-go's BuildJSON: epoch seconds with a millisecond fraction; newer agents add
    // statusReason.
    let v1 = format!(
        "{SIGNED_HEADERS}{}",
        r#"{"type":"PublishInstanceStatusRequest","message":{"metadata":{"cluster":"default","containerInstance":"ci-1","requestId":"r"},"statuses":[{"lastStatusChange":1700000000.5,"lastUpdated":1700000020.25,"status":"IMPAIRED","statusReason":"Cannot connect to the Docker daemon","type":"ContainerRuntime"}],"timestamp":1700000020.25}}"#
    );
    // The SDK for Go v2: capitalised members, RFC 3339 times, the SDK's type name.
    let v2 = r#"{"type":"PublishInstanceStatusInput","message":{"Metadata":{"Cluster":"default","ContainerInstance":"ci-1","RequestId":"r"},"Statuses":[{"LastStatusChange":"2023-11-14T22:13:20.5Z","LastUpdated":"2023-11-14T22:13:40.25Z","Status":"IMPAIRED","StatusReason":"Cannot connect to the Docker daemon","Type":"ContainerRuntime"}],"Timestamp":"2023-11-14T22:13:40.25Z"}}"#;
    for frame in [v1.as_str(), v2] {
        let AgentMessage::PublishInstanceStatus(request) = AgentMessage::decode(frame).unwrap()
        else {
            panic!("not instance status: {frame}");
        };
        let statuses = request.statuses.unwrap();
        assert_eq!(
            statuses,
            vec![InstanceStatus {
                kind: s(INSTANCE_CHECK_CONTAINER_RUNTIME),
                status: s(INSTANCE_STATUS_IMPAIRED),
                last_updated: Some(Timestamp::from_unix_millis(1_700_000_020_250)),
                last_status_change: Some(Timestamp::from_unix_millis(1_700_000_000_500)),
                status_reason: s("Cannot connect to the Docker daemon"),
            }],
            "{frame}"
        );
        assert_eq!(request.metadata.unwrap().request_id.as_deref(), Some("r"));
    }
    // And as Berth's agent writes it: the model's members, epoch seconds.
    let written = AgentMessage::PublishInstanceStatus(PublishInstanceStatusRequest {
        statuses: Some(vec![InstanceStatus {
            kind: s(INSTANCE_CHECK_CONTAINER_RUNTIME),
            status: s(INSTANCE_STATUS_OK),
            last_updated: Some(Timestamp::from_unix_seconds(1_700_000_020)),
            last_status_change: Some(Timestamp::from_unix_millis(1_700_000_000_500)),
            status_reason: None,
        }]),
        ..full_instance_status()
    })
    .encode();
    let frame: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        frame["message"]["statuses"],
        json!([{"type": "ContainerRuntime", "status": "OK", "lastUpdated": 1700000020, "lastStatusChange": 1700000000.5}])
    );
}

#[test]
fn decodes_frames_of_agents_built_on_the_go_sdk_v2() {
    // SDK v2 structs have no JSON tags: capitalised members, RFC 3339 times, the SDK's type
    // names, and the newer model's rootFilesystem.
    let body = r#"{"type":"PublishMetricsInput","message":{"InstanceMetrics":{"Storage":{"RootFilesystem":40,"DataFilesystem":12.5}},"Metadata":{"Cluster":"default","ContainerInstance":"ci-1","Fin":true,"Idle":true,"MessageId":"m"},"TaskMetrics":[],"Timestamp":"2023-11-14T22:13:20.123Z"}}"#;
    let AgentMessage::PublishMetrics(metrics) = AgentMessage::decode(body).unwrap() else {
        panic!("not metrics");
    };
    assert_eq!(
        metrics.timestamp,
        Some(Timestamp::from_unix_millis(1_700_000_000_123))
    );
    assert_eq!(metrics.metadata.unwrap().idle, Some(true));
    assert_eq!(metrics.task_metrics, Some(vec![]));
    let storage = metrics.instance_metrics.unwrap().storage.unwrap();
    assert_eq!(storage.os_filesystem, Some(40.0));
    assert_eq!(storage.data_filesystem, Some(12.5));
}

#[test]
fn encodes_server_frames_the_way_the_agent_reads_them() {
    assert_eq!(
        ServerMessage::Heartbeat(HeartbeatMessage {
            healthy: Some(true)
        })
        .encode(),
        r#"{"type":"HeartbeatMessage","message":{"healthy":true}}"#
    );
    assert_eq!(
        ServerMessage::AckPublishMetric(AckPublishMetric { message: s("ok") }).encode(),
        r#"{"type":"AckPublishMetric","message":{"message":"ok"}}"#
    );
}

#[test]
fn signed_frames_render_and_parse() {
    let body = AgentMessage::StartTelemetrySession(StartTelemetrySessionRequest {
        cluster: s("default"),
        container_instance: s("ci"),
    })
    .encode();
    let headers = [("Authorization", "AWS4-HMAC-SHA256 x"), ("Host", "h:1")];
    let text = SignedFrame::render(&headers, &body);
    assert!(text.starts_with("Authorization: AWS4-HMAC-SHA256 x\r\nHost: h:1\r\n\r\n{"));
    let parsed = SignedFrame::parse(&text).unwrap();
    assert_eq!(parsed.headers, headers.to_vec());
    assert_eq!(parsed.body, body);

    let bare = SignedFrame::parse(&body).unwrap();
    assert!(bare.headers.is_empty());
    assert_eq!(bare.body, body);

    assert!(matches!(
        SignedFrame::parse("Host h\r\n\r\n{}"),
        Err(AcsError::SignedFrame(_))
    ));
    assert!(matches!(
        AgentMessage::decode("Host: h\r\n{}"),
        Err(AcsError::SignedFrame(_))
    ));
}

#[test]
fn members_the_model_requires_must_be_present() {
    // ULongStatsSet and UDoubleCWStatsSet require min, max, sampleCount and sum.
    let missing_sum = r#"{"type":"PublishMetricsRequest","message":{"taskMetrics":[{"ephemeralStorageMetrics":{"bytesUtilized":{"min":1,"max":2,"sampleCount":3}}}]}}"#;
    assert!(matches!(
        AgentMessage::decode(missing_sum),
        Err(AcsError::Message { .. })
    ));
    let missing_max = r#"{"type":"PublishMetricsRequest","message":{"taskMetrics":[{"volumeMetrics":[{"size":{"min":1,"sampleCount":3,"sum":4}}]}]}}"#;
    assert!(matches!(
        AgentMessage::decode(missing_max),
        Err(AcsError::Message { .. })
    ));
}

#[test]
fn unknown_types_and_members() {
    let frame = r#"{"type":"PublishSomethingNew","message":{"x":1}}"#;
    assert_eq!(
        AgentMessage::decode(frame).unwrap(),
        AgentMessage::Unknown {
            type_name: "PublishSomethingNew".into(),
            message: json!({"x": 1}),
        }
    );
    let frame = r#"{"type":"AckPublishHealth","message":{"message":"ok","extra":true}}"#;
    assert_eq!(
        ServerMessage::decode(frame).unwrap(),
        ServerMessage::AckPublishHealth(AckPublishHealth { message: s("ok") })
    );
}

#[test]
fn reads_and_writes_the_query_the_agent_dials_with() {
    let query = "agentHash=4023248e&agentVersion=1.82.0&cluster=default&containerInstance=arn%3Aaws%3Aecs%3Aus-east-1%3A000000000000%3Acontainer-instance%2Fdefault%2F0123456789abcdef&dockerVersion=24.0.7";
    let parsed = TcsQuery::parse(query).unwrap();
    assert_eq!(parsed.cluster, "default");
    assert_eq!(parsed.container_instance, INSTANCE);
    assert_eq!(parsed.docker_version.as_deref(), Some("24.0.7"));
    assert_eq!(parsed.encode(), query);
    assert_eq!(
        parsed.url("http://127.0.0.1:4566"),
        format!("http://127.0.0.1:4566/ws?{query}")
    );
}

// ---- member names held to the model ---------------------------------------------------

const ULONG_STATS_SET: &[&str] = &[
    "min",
    "max",
    "sampleCount",
    "sum",
    "overflowMin",
    "overflowMax",
    "overflowSum",
];
const UDOUBLE_STATS_SET: &[&str] = &["min", "max", "sampleCount", "sum"];
const CW_STATS_SET: &[&str] = &["min", "max", "sampleCount", "sum"];
const MESSAGE_ONLY: &[&str] = &["message"];

#[test]
fn every_message_emits_exactly_the_models_members() {
    let server = every_server_message();
    assert_eq!(server.len(), 9, "one sample per ServerMessage variant");
    for message in server {
        let type_name = message.type_name().to_owned();
        let expected: &[&str] = match type_name.as_str() {
            "HeartbeatMessage" => &["healthy"],
            _ => MESSAGE_ONLY,
        };
        let body = message_of(&message.encode(), &type_name);
        assert_eq!(keys(&body), members(expected), "{type_name}");
    }

    let agent = every_agent_message();
    assert_eq!(agent.len(), 4, "one sample per AgentMessage variant");
    for message in agent {
        let type_name = message.type_name().to_owned();
        let expected: &[&str] = match type_name.as_str() {
            "PublishMetricsRequest" => &["metadata", "instanceMetrics", "taskMetrics", "timestamp"],
            "PublishHealthRequest" => &["metadata", "tasks", "timestamp"],
            "PublishInstanceStatusRequest" => &["metadata", "statuses", "timestamp"],
            "StartTelemetrySessionRequest" => &["cluster", "containerInstance"],
            other => panic!("no member list for {other}"),
        };
        let body = message_of(&message.encode(), &type_name);
        assert_eq!(keys(&body), members(expected), "{type_name}");
    }
}

#[test]
fn nested_shapes_emit_exactly_the_models_members() {
    let metrics = message_of(
        &AgentMessage::PublishMetrics(full_metrics()).encode(),
        "PublishMetricsRequest",
    );
    let task = &metrics["taskMetrics"][0];
    let container = &task["containerMetrics"][0];
    let network = &container["networkStatsSet"];
    let wrapper = &task["serviceConnectMetricsWrapper"][0];
    let health = message_of(
        &AgentMessage::PublishHealth(full_health()).encode(),
        "PublishHealthRequest",
    );
    let status = message_of(
        &AgentMessage::PublishInstanceStatus(full_instance_status()).encode(),
        "PublishInstanceStatusRequest",
    );

    let expectations: Vec<(&str, &Value, &[&str])> = vec![
        (
            "MetricsMetadata",
            &metrics["metadata"],
            &["cluster", "containerInstance", "messageId", "idle", "fin"],
        ),
        (
            "InstanceMetrics",
            &metrics["instanceMetrics"],
            &["storage", "generalMetricsPayload"],
        ),
        (
            "InstanceStorageMetrics",
            &metrics["instanceMetrics"]["storage"],
            &["OSFilesystem", "DataFilesystem"],
        ),
        (
            "TaskMetric",
            task,
            &[
                "taskArn",
                "clusterArn",
                "taskDefinitionFamily",
                "taskDefinitionVersion",
                "containerMetrics",
                "ephemeralStorageMetrics",
                "volumeMetrics",
                "serviceConnectMetricsWrapper",
            ],
        ),
        (
            "ContainerMetric",
            container,
            &[
                "containerArn",
                "containerName",
                "cpuStatsSet",
                "memoryStatsSet",
                "networkStatsSet",
                "storageStatsSet",
                "restartStatsSet",
                "generalMetricsPayload",
            ],
        ),
        ("CWStatsSet", &container["cpuStatsSet"], CW_STATS_SET),
        (
            "NetworkStatsSet",
            network,
            &[
                "rxBytesPerSecond",
                "rxBytes",
                "rxDropped",
                "rxErrors",
                "rxPackets",
                "txBytesPerSecond",
                "txBytes",
                "txDropped",
                "txErrors",
                "txPackets",
            ],
        ),
        (
            "UDoubleCWStatsSet",
            &network["rxBytesPerSecond"],
            UDOUBLE_STATS_SET,
        ),
        ("ULongStatsSet", &network["rxBytes"], ULONG_STATS_SET),
        (
            "StorageStatsSet",
            &container["storageStatsSet"],
            &["readSizeBytes", "writeSizeBytes"],
        ),
        (
            "RestartStatsSet",
            &container["restartStatsSet"],
            &["restartCount"],
        ),
        (
            "EphemeralStorageMetrics",
            &task["ephemeralStorageMetrics"],
            &["bytesUtilized"],
        ),
        (
            "VolumeMetric",
            &task["volumeMetrics"][0],
            &["volumeId", "volumeName", "utilized", "size"],
        ),
        (
            "GeneralMetricsWrapper",
            wrapper,
            &["dimensions", "metricType", "generalMetrics"],
        ),
        ("Dimension", &wrapper["dimensions"][0], &["key", "value"]),
        (
            "GeneralMetric",
            &wrapper["generalMetrics"][0],
            &[
                "metricName",
                "metricValues",
                "metricCounts",
                "metricValueDouble",
                "metricValueLong",
                "metricValueStatsSet",
                "unit",
            ],
        ),
        (
            "HealthMetadata",
            &health["metadata"],
            &["cluster", "containerInstance", "messageId", "fin"],
        ),
        (
            "TaskHealth",
            &health["tasks"][0],
            &[
                "taskArn",
                "clusterArn",
                "taskDefinitionFamily",
                "taskDefinitionVersion",
                "containers",
            ],
        ),
        (
            "ContainerHealth",
            &health["tasks"][0]["containers"][0],
            &[
                "containerName",
                "healthStatus",
                "statusSince",
                "statusMessage",
            ],
        ),
        (
            "InstanceStatusMetadata",
            &status["metadata"],
            &["cluster", "containerInstance", "requestId"],
        ),
        (
            "InstanceStatus",
            &status["statuses"][0],
            &[
                "type",
                "status",
                "lastUpdated",
                "lastStatusChange",
                "statusReason",
            ],
        ),
    ];
    for (shape, value, expected) in expectations {
        assert_eq!(keys(value), members(expected), "{shape}");
    }
    // Timestamps travel as numbers of seconds.
    assert_eq!(metrics["timestamp"], json!(1_700_000_000.123));
    assert_eq!(health["timestamp"], json!(1_700_000_010));
}
