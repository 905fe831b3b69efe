//! ACS frames: as the official agent and ACS write them, round trips of every message, and
//! the member names of every shape held to the model (lists transcribed from
//! `ecs-agent/acs/model/api/api-2.json`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;
use crate::{AcsError, ConnectionError, ExceptionMessage};

const CLUSTER: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/default";
const INSTANCE: &str =
    "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0123456789abcdef";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/fedcba9876543210";

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|item| item.to_string()).collect())
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
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

/// The `message` of an encoded frame, checking the envelope on the way.
fn message_of(frame: &str, type_name: &str) -> Value {
    let frame: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(keys(&frame), members(&["type", "message"]));
    assert_eq!(frame["type"], type_name);
    frame["message"].clone()
}

// ---- fully populated samples: every member the model defines is set -------------------

fn full_credentials(id: &str) -> IAMRoleCredentials {
    IAMRoleCredentials {
        credentials_id: s(id),
        role_arn: s("arn:aws:iam::000000000000:role/app"),
        access_key_id: s("ASIAEXAMPLE"),
        secret_access_key: s("secret"),
        session_token: s("token"),
        expiration: s("2016-03-25T06:17:19.318+0000"),
        credential_scope: s("task"),
    }
}

fn full_eni() -> ElasticNetworkInterface {
    ElasticNetworkInterface {
        name: s("eth1"),
        mac_address: s("00:0a:95:9d:68:16"),
        attachment_arn: s("arn:aws:ecs:us-east-1:000000000000:attachment/1"),
        ec2_id: s("eni-1"),
        index: Some(1),
        interface_association_protocol: s("vlan"),
        interface_tunnel_properties: Some(NetworkInterfaceTunnelProperties {
            tunnel_id: s("7"),
            interface_ip_address: s("10.0.0.9"),
        }),
        interface_veth_properties: Some(NetworkInterfaceVethProperties {
            peer_interface: s("veth0"),
        }),
        interface_vlan_properties: Some(NetworkInterfaceVlanProperties {
            vlan_id: s("101"),
            trunk_interface_mac_address: s("00:0a:95:9d:68:17"),
        }),
        ipv4_addresses: Some(vec![IPv4AddressAssignment {
            private_address: s("10.0.0.8"),
            primary: Some(true),
        }]),
        ipv6_addresses: Some(vec![IPv6AddressAssignment {
            address: s("2600::1"),
            primary: Some(true),
        }]),
        domain_name: strings(&["ec2.internal"]),
        domain_name_servers: strings(&["10.0.0.2"]),
        private_dns_name: s("ip-10-0-0-8.ec2.internal"),
        subnet_gateway_ipv4_address: s("10.0.0.1/24"),
        subnet_gateway_ipv6_address: s("2600::/64"),
        subnet_id: s("subnet-0abc"),
        berth_firewall: Some(Firewall {
            ingress: Some(vec![FirewallRule {
                ip_protocol: s("tcp"),
                from_port: Some(80),
                to_port: Some(80),
                cidrs: strings(&["10.0.0.0/16"]),
            }]),
            egress: Some(vec![]),
        }),
    }
}

fn full_attachment() -> Attachment {
    Attachment {
        attachment_arn: s("arn:aws:ecs:us-east-1:000000000000:attachment/2"),
        attachment_type: s("EBSTaskAttach"),
        attachment_properties: Some(vec![AttachmentProperty {
            name: s("volumeId"),
            value: s("vol-1"),
        }]),
    }
}

fn full_container() -> Container {
    Container {
        command: strings(&["nginx", "-g", "daemon off;"]),
        cpu: Some(256),
        credential_specs: strings(&["credentialspec:file://spec.json"]),
        entry_point: strings(&["/docker-entrypoint.sh"]),
        environment: map(&[("MODE", "production")]),
        environment_files: Some(vec![EnvironmentFile {
            value: s("arn:aws:s3:::bucket/app.env"),
            kind: s("s3"),
        }]),
        essential: Some(true),
        restart_policy: Some(RestartPolicy {
            enabled: Some(true),
            ignored_exit_codes: Some(vec![0, 143]),
            restart_attempt_period: Some(60),
        }),
        image: s("127.0.0.1:4566/web:v1"),
        links: strings(&["db:db"]),
        memory: Some(512),
        name: s("web"),
        overrides: s("{}"),
        port_mappings: Some(vec![PortMapping {
            container_port: Some(80),
            host_port: Some(8080),
            container_port_range: s("8000-8010"),
            protocol: s("tcp"),
        }]),
        managed_agents: Some(vec![ManagedAgent {
            name: s("ExecuteCommandAgent"),
            properties: map(&[("enabled", "true")]),
        }]),
        mount_points: Some(vec![MountPoint {
            source_volume: s("data"),
            container_path: s("/data"),
            read_only: Some(false),
        }]),
        linux_parameters: Some(LinuxParameters {
            capabilities: Some(KernelCapabilities {
                add: strings(&["NET_ADMIN"]),
                drop: strings(&["MKNOD"]),
            }),
            devices: Some(vec![Device {
                host_path: "/dev/fuse".into(),
                container_path: s("/dev/fuse"),
                permissions: strings(&["read", "write"]),
            }]),
            init_process_enabled: Some(true),
            shared_memory_size: Some(64),
        }),
        privileged: Some(false),
        network_interface_names: strings(&["eth1"]),
        volumes_from: Some(vec![VolumeFrom {
            source_container: s("sidecar"),
            read_only: Some(true),
        }]),
        docker_config: Some(DockerConfig {
            version: s("1.17"),
            config: s(r#"{"WorkingDir":"/srv","User":"1000"}"#),
            host_config: s(r#"{"MemoryReservation":268435456}"#),
        }),
        health_check_type: s("docker"),
        registry_authentication: Some(RegistryAuthenticationData {
            kind: s("ecr"),
            ecr_auth_data: Some(ECRAuthData {
                registry_id: s("000000000000"),
                region: s("us-east-1"),
                endpoint_override: s("http://127.0.0.1:4566"),
                use_execution_role: Some(false),
            }),
            asm_auth_data: Some(ASMAuthData {
                credentials_parameter: s("arn:aws:secretsmanager:us-east-1:000000000000:secret:r"),
                region: s("us-east-1"),
            }),
        }),
        logs_auth_strategy: s("ExecutionRole"),
        secrets: Some(vec![Secret {
            name: s("DB_PASSWORD"),
            value_from: s("arn:aws:ssm:us-east-1:000000000000:parameter/db"),
            container_path: s("/run/secrets/db"),
            kind: s("ENVIRONMENT_VARIABLE"),
            region: s("us-east-1"),
            provider: s("ssm"),
            target: s("CONTAINER"),
        }]),
        depends_on: Some(vec![ContainerDependency {
            container_name: s("db"),
            condition: s("HEALTHY"),
        }]),
        start_timeout: Some(30),
        stop_timeout: Some(10),
        firelens_configuration: Some(FirelensConfiguration {
            kind: s("fluentbit"),
            options: map(&[("enable-ecs-log-metadata", "true")]),
        }),
        container_arn: s("arn:aws:ecs:us-east-1:000000000000:container/default/1/web"),
        resource_requirements: Some(vec![ResourceRequirement {
            value: s("1"),
            kind: s("GPU"),
            sharing_strategy: Some(SharingStrategy {
                nvidia_mps: Some(NvidiaMpsAllocation {
                    memory: 1024,
                    max_compute_percent: Some(50),
                }),
            }),
        }]),
    }
}

fn full_volume() -> Volume {
    Volume {
        name: s("data"),
        kind: s("docker"),
        host: Some(HostVolumeProperties {
            source_path: s("/srv/data"),
        }),
        docker_volume_configuration: Some(DockerVolumeConfiguration {
            scope: s("shared"),
            autoprovision: Some(true),
            driver: s("local"),
            driver_opts: map(&[("type", "tmpfs")]),
            labels: map(&[("team", "web")]),
        }),
        efs_volume_configuration: Some(EFSVolumeConfiguration {
            file_system_id: s("fs-1"),
            root_directory: s("/"),
            transit_encryption: s("ENABLED"),
            transit_encryption_port: Some(2049),
            authorization_config: Some(EFSAuthorizationConfig {
                access_point_id: s("fsap-1"),
                iam: s("ENABLED"),
            }),
        }),
        fsx_windows_file_server_volume_configuration: Some(
            FSxWindowsFileServerVolumeConfiguration {
                file_system_id: s("fs-2"),
                root_directory: s("share"),
                authorization_config: Some(FSxWindowsFileServerAuthorizationConfig {
                    credentials_parameter: s("arn:aws:ssm:us-east-1:000000000000:parameter/c"),
                    domain: s("corp.example.com"),
                }),
            },
        ),
        ebs_volume_configuration: Some(EBSVolumeConfiguration {
            volume_id: s("vol-1"),
            delete_on_termination: Some(true),
            device_name: s("/dev/xvdf"),
            filesystem_type: s("ext4"),
        }),
        log_driver_volume_configuration: Some(LogDriverVolumeConfiguration {
            driver: s("awslogs"),
        }),
    }
}

fn full_task() -> Task {
    Task {
        arn: s(TASK_ARN),
        task_cluster_arn: s(CLUSTER),
        containers: Some(vec![full_container()]),
        desired_status: s("RUNNING"),
        family: s("web"),
        overrides: s("{}"),
        version: s("3"),
        zone: s("us-east-1a"),
        task_definition_account_id: s("000000000000"),
        volumes: Some(vec![full_volume()]),
        role_credentials: Some(full_credentials("creds-app")),
        execution_role_credentials: Some(full_credentials("creds-exec")),
        elastic_network_interfaces: Some(vec![full_eni()]),
        cpu: Some(0.25),
        memory: Some(512),
        associations: Some(vec![Association {
            name: s("gpu0"),
            kind: s("gpu"),
            content: Some(EncodedString {
                value: s("MA=="),
                encoding: s("base64"),
            }),
            containers: strings(&["web"]),
        }]),
        pid_mode: s("task"),
        ipc_mode: s("none"),
        proxy_configuration: Some(ProxyConfiguration {
            kind: s("APPMESH"),
            container_name: s("envoy"),
            properties: map(&[("ProxyIngressPort", "15000")]),
        }),
        agent_configuration: s("{}"),
        launch_type: s("EC2"),
        attachments: Some(vec![full_attachment()]),
        network_mode: s("bridge"),
        service_name: s("web-service"),
        group: s("service:web-service"),
        enable_fault_injection: Some(false),
        trusted_execution_configuration: Some(TrustedExecutionConfiguration {
            isolation_mode: s("SHARED"),
            attestation_policy: s("policy"),
        }),
    }
}

fn task_identifier() -> TaskIdentifier {
    TaskIdentifier {
        task_arn: s(TASK_ARN),
        task_cluster_arn: s(CLUSTER),
        desired_status: s("STOPPED"),
    }
}

fn update_info() -> Option<UpdateInfo> {
    Some(UpdateInfo {
        location: s("https://example.com/agent.tar"),
        signature: s("sig"),
    })
}

fn exception() -> ExceptionMessage {
    ExceptionMessage {
        message: s("details"),
    }
}

/// One fully populated message of every server → agent type.
fn every_server_message() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Payload(PayloadMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            tasks: Some(vec![full_task()]),
            generated_at: Some(1_700_000_000_000),
            message_id: s("payload-1"),
            seq_num: Some(3),
            timeline: Some(3),
        }),
        ServerMessage::Heartbeat(HeartbeatMessage {
            healthy: Some(true),
            message_id: s("hb-1"),
        }),
        ServerMessage::IamRoleCredentials(IAMRoleCredentialsMessage {
            task_arn: s(TASK_ARN),
            task_cluster_arn: s(CLUSTER),
            role_credentials: Some(full_credentials("creds-app")),
            role_type: s("TaskApplication"),
            message_id: s("creds-1"),
        }),
        ServerMessage::TaskManifest(TaskManifestMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            tasks: Some(vec![task_identifier()]),
            generated_at: Some(1_700_000_000_000),
            message_id: s("manifest-1"),
            timeline: Some(4),
        }),
        ServerMessage::TaskStopVerificationAck(TaskStopVerificationAck {
            generated_at: Some(1_700_000_000_000),
            message_id: s("manifest-1"),
            stop_tasks: Some(vec![task_identifier()]),
        }),
        ServerMessage::AttachTaskNetworkInterfaces(AttachTaskNetworkInterfacesMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            task_arn: s(TASK_ARN),
            task_cluster_arn: s(CLUSTER),
            generated_at: Some(1),
            message_id: s("eni-1"),
            wait_timeout_ms: Some(1000),
            elastic_network_interfaces: Some(vec![full_eni()]),
        }),
        ServerMessage::AttachInstanceNetworkInterfaces(AttachInstanceNetworkInterfacesMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            generated_at: Some(1),
            message_id: s("eni-2"),
            wait_timeout_ms: Some(1000),
            elastic_network_interfaces: Some(vec![full_eni()]),
        }),
        ServerMessage::ConfirmAttachment(ConfirmAttachmentMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            task_arn: s(TASK_ARN),
            task_cluster_arn: s(CLUSTER),
            generated_at: Some(1),
            message_id: s("attach-1"),
            wait_timeout_ms: Some(300_000),
            attachment: Some(full_attachment()),
        }),
        ServerMessage::StageUpdate(StageUpdateMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            update_info: update_info(),
            message_id: s("stage-1"),
        }),
        ServerMessage::PerformUpdate(PerformUpdateMessage {
            container_instance_arn: s(INSTANCE),
            cluster_arn: s(CLUSTER),
            update_info: update_info(),
            message_id: s("perform-1"),
        }),
        ServerMessage::Close(CloseMessage { message: s("bye") }),
        ServerMessage::Error(ErrorMessage { message: s("oops") }),
        ServerMessage::ServerException(exception()),
        ServerMessage::BadRequestException(exception()),
        ServerMessage::InvalidClusterException(exception()),
        ServerMessage::InvalidInstanceException(exception()),
        ServerMessage::AccessDeniedException(exception()),
        ServerMessage::InactiveInstanceException(exception()),
    ]
}

/// One fully populated message of every agent → server type.
fn every_agent_message() -> Vec<AgentMessage> {
    vec![
        AgentMessage::Ack(AckRequest {
            cluster: s(CLUSTER),
            container_instance: s(INSTANCE),
            message_id: s("payload-1"),
        }),
        AgentMessage::HeartbeatAck(HeartbeatAckRequest {
            message_id: s("hb-1"),
        }),
        AgentMessage::IamRoleCredentialsAck(IAMRoleCredentialsAckRequest {
            message_id: s("creds-1"),
            expiration: s("2016-03-25T06:17:19.318+0000"),
            credentials_id: s("creds-app"),
        }),
        AgentMessage::TaskStopVerification(TaskStopVerificationMessage {
            message_id: s("manifest-1"),
            stop_candidates: Some(vec![task_identifier()]),
        }),
        AgentMessage::Nack(NackRequest {
            cluster: s(CLUSTER),
            container_instance: s(INSTANCE),
            message_id: s("stage-1"),
            reason: s("download failed"),
        }),
    ]
}

// ---- round trips ---------------------------------------------------------------------

#[test]
fn every_server_message_round_trips() {
    for message in every_server_message() {
        let frame = message.encode();
        assert_eq!(ServerMessage::decode(&frame).unwrap(), message, "{frame}");
        assert!(!frame.contains("null"), "{frame}");
    }
}

#[test]
fn every_agent_message_round_trips() {
    for message in every_agent_message() {
        let frame = message.encode();
        assert_eq!(AgentMessage::decode(&frame).unwrap(), message, "{frame}");
    }
}

#[test]
fn empty_messages_round_trip_as_empty_objects() {
    let heartbeat = ServerMessage::Heartbeat(HeartbeatMessage::default());
    assert_eq!(
        heartbeat.encode(),
        r#"{"type":"HeartbeatMessage","message":{}}"#
    );
    assert_eq!(
        ServerMessage::decode(&heartbeat.encode()).unwrap(),
        heartbeat
    );
}

// ---- frames written the way ACS and the Go agent write them ---------------------------

#[test]
fn decodes_a_payload_as_acs_sends_it() {
    // The shape of the payload in the agent's own client test (acs_client_test.go,
    // TestConnect), with a container member the model does not have ("desiredStatus").
    let frame = r#"{"type":"PayloadMessage","message":{"tasks":[{"arn":"arn1","desiredStatus":"RUNNING","overrides":"{}","family":"test","version":"v1","containers":[{"name":"c1","image":"redis","command":["arg1","arg2"],"cpu":10,"memory":20,"links":["db"],"portMappings":[{"containerPort":22,"hostPort":22}],"essential":true,"entryPoint":["bash"],"environment":{"key":"val"},"overrides":"{}","desiredStatus":"RUNNING"}]}],"messageId":"messageId"}}"#;
    let ServerMessage::Payload(payload) = ServerMessage::decode(frame).unwrap() else {
        panic!("not a payload");
    };
    assert_eq!(payload.message_id.as_deref(), Some("messageId"));
    let task = &payload.tasks.as_ref().unwrap()[0];
    assert_eq!(task.arn.as_deref(), Some("arn1"));
    assert_eq!(task.desired_status.as_deref(), Some("RUNNING"));
    let container = &task.containers.as_ref().unwrap()[0];
    assert_eq!(container.cpu, Some(10));
    assert_eq!(container.memory, Some(20));
    assert_eq!(container.essential, Some(true));
    assert_eq!(container.environment, map(&[("key", "val")]));
    assert_eq!(
        container.port_mappings.as_ref().unwrap()[0].host_port,
        Some(22)
    );
}

#[test]
fn decodes_credentials_and_network_interface_messages_as_acs_sends_them() {
    // As in the agent's acs_client_test.go samples.
    let credentials = r#"{
      "type": "IAMRoleCredentialsMessage",
      "message": {
        "messageId": "123",
        "clusterArn": "default",
        "taskArn": "t1",
        "roleCredentials": {
          "credentialsId": "credsId",
          "accessKeyId": "accessKeyId",
          "expiration": "2016-03-25T06:17:19.318+0000",
          "roleArn": "roleArn",
          "secretAccessKey": "secretAccessKey",
          "sessionToken": "token"
        }
      }
    }"#;
    let ServerMessage::IamRoleCredentials(message) = ServerMessage::decode(credentials).unwrap()
    else {
        panic!("not credentials");
    };
    let role = message.role_credentials.unwrap();
    assert_eq!(role.credentials_id.as_deref(), Some("credsId"));
    assert_eq!(
        role.expiration.as_deref(),
        Some("2016-03-25T06:17:19.318+0000")
    );
    assert!(!format!("{role:?}").contains("secretAccessKey"));

    let eni = r#"{"type":"AttachTaskNetworkInterfacesMessage","message":{"messageId":"123","clusterArn":"default","taskArn":"task","elasticNetworkInterfaces":[{"attachmentArn":"attach_arn","ec2Id":"eni_id","ipv4Addresses":[{"primary":true,"privateAddress":"ipv4"}],"ipv6Addresses":[{"address":"ipv6"}],"macAddress":"mac"}]}}"#;
    let ServerMessage::AttachTaskNetworkInterfaces(message) = ServerMessage::decode(eni).unwrap()
    else {
        panic!("not an ENI attachment");
    };
    let interface = &message.elastic_network_interfaces.unwrap()[0];
    assert_eq!(interface.ec2_id.as_deref(), Some("eni_id"));
    assert_eq!(
        interface.ipv4_addresses.as_ref().unwrap()[0].primary,
        Some(true)
    );
}

#[test]
fn decodes_the_agents_replies() {
    let ack = r#"{"type":"AckRequest","message":{"cluster":"default","containerInstance":"instance","messageId":"123"}}"#;
    assert_eq!(
        AgentMessage::decode(ack).unwrap(),
        AgentMessage::Ack(AckRequest {
            cluster: s("default"),
            container_instance: s("instance"),
            message_id: s("123"),
        })
    );
    let verification = r#"{"type":"TaskStopVerificationMessage","message":{"messageId":"m1","stopCandidates":[{"taskArn":"arn2","taskClusterArn":"default","desiredStatus":"STOPPED"}]}}"#;
    let AgentMessage::TaskStopVerification(message) = AgentMessage::decode(verification).unwrap()
    else {
        panic!("not a stop verification");
    };
    assert_eq!(
        message.stop_candidates.unwrap()[0].task_arn.as_deref(),
        Some("arn2")
    );
}

#[test]
fn decodes_replies_of_agents_built_on_the_go_sdk_v2() {
    // Such agents register SDK structs (HeartbeatOutput, …) that have no JSON tags, so the
    // type name is the struct's and members come capitalised, with SDK bookkeeping beside.
    let heartbeat =
        r#"{"type":"HeartbeatOutput","message":{"MessageId":"hb-1","ResultMetadata":{}}}"#;
    assert_eq!(
        AgentMessage::decode(heartbeat).unwrap(),
        AgentMessage::HeartbeatAck(HeartbeatAckRequest {
            message_id: s("hb-1"),
        })
    );
    let credentials = r#"{"type":"RefreshTaskIAMRoleCredentialsOutput","message":{"CredentialsId":"c","Expiration":"e","MessageId":"m"}}"#;
    assert_eq!(
        AgentMessage::decode(credentials).unwrap(),
        AgentMessage::IamRoleCredentialsAck(IAMRoleCredentialsAckRequest {
            message_id: s("m"),
            expiration: s("e"),
            credentials_id: s("c"),
        })
    );
    let verification = r#"{"type":"TaskStopVerificationInput","message":{"MessageId":"m","StopCandidates":[{"TaskArn":"a","DesiredStatus":"STOPPED"}]}}"#;
    let AgentMessage::TaskStopVerification(message) = AgentMessage::decode(verification).unwrap()
    else {
        panic!("not a stop verification");
    };
    assert_eq!(
        message.stop_candidates.unwrap()[0].task_arn.as_deref(),
        Some("a")
    );
    // Re-encoded under the model's name and casing.
    let reencoded = AgentMessage::decode(heartbeat).unwrap().encode();
    assert_eq!(
        reencoded,
        r#"{"type":"HeartbeatAckRequest","message":{"messageId":"hb-1"}}"#
    );
}

#[test]
fn encodes_frames_the_way_the_agent_reads_them() {
    let heartbeat = ServerMessage::Heartbeat(HeartbeatMessage {
        healthy: Some(true),
        message_id: s("hb-1"),
    });
    assert_eq!(
        heartbeat.encode(),
        r#"{"type":"HeartbeatMessage","message":{"healthy":true,"messageId":"hb-1"}}"#
    );

    // The agent's json.Unmarshal needs integers for Integer/Long members, booleans for
    // Boolean, and strings for JSON documents such as overrides and dockerConfig.
    let payload = ServerMessage::Payload(PayloadMessage {
        cluster_arn: s(CLUSTER),
        container_instance_arn: s(INSTANCE),
        message_id: s("payload-1"),
        seq_num: Some(1),
        tasks: Some(vec![Task {
            arn: s(TASK_ARN),
            desired_status: s("RUNNING"),
            family: s("web"),
            version: s("1"),
            network_mode: s("bridge"),
            containers: Some(vec![Container {
                name: s("web"),
                image: s("127.0.0.1:4566/web:v1"),
                cpu: Some(128),
                memory: Some(256),
                essential: Some(true),
                port_mappings: Some(vec![PortMapping {
                    container_port: Some(80),
                    host_port: Some(0),
                    protocol: s("tcp"),
                    ..Default::default()
                }]),
                docker_config: Some(DockerConfig {
                    config: s(r#"{"Labels":{"team":"web"}}"#),
                    ..Default::default()
                }),
                registry_authentication: Some(RegistryAuthenticationData {
                    kind: s("ecr"),
                    ecr_auth_data: Some(ECRAuthData {
                        registry_id: s("000000000000"),
                        region: s("us-east-1"),
                        endpoint_override: s("http://127.0.0.1:4566"),
                        use_execution_role: Some(false),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let message = message_of(&payload.encode(), "PayloadMessage");
    assert_eq!(
        message,
        json!({
            "containerInstanceArn": INSTANCE,
            "clusterArn": CLUSTER,
            "messageId": "payload-1",
            "seqNum": 1,
            "tasks": [{
                "arn": TASK_ARN,
                "desiredStatus": "RUNNING",
                "family": "web",
                "version": "1",
                "networkMode": "bridge",
                "containers": [{
                    "name": "web",
                    "image": "127.0.0.1:4566/web:v1",
                    "cpu": 128,
                    "memory": 256,
                    "essential": true,
                    "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
                    "dockerConfig": {"config": "{\"Labels\":{\"team\":\"web\"}}"},
                    "registryAuthentication": {
                        "type": "ecr",
                        "ecrAuthData": {
                            "registryId": "000000000000",
                            "region": "us-east-1",
                            "endpointOverride": "http://127.0.0.1:4566",
                            "useExecutionRole": false
                        }
                    }
                }]
            }]
        })
    );
    assert!(message["tasks"][0]["containers"][0]["cpu"].is_i64());
}

// ---- envelope rules -------------------------------------------------------------------

#[test]
fn unknown_types_are_kept_whole() {
    let frame = r#"{"type":"FutureMessage","message":{"anything":[1,2]}}"#;
    let decoded = ServerMessage::decode(frame).unwrap();
    assert_eq!(
        decoded,
        ServerMessage::Unknown {
            type_name: "FutureMessage".into(),
            message: json!({"anything": [1, 2]}),
        }
    );
    assert_eq!(decoded.type_name(), "FutureMessage");
    assert_eq!(decoded.encode(), frame);
    assert!(matches!(
        AgentMessage::decode(frame).unwrap(),
        AgentMessage::Unknown { .. }
    ));
}

#[test]
fn unknown_members_are_ignored() {
    let frame = r#"{"type":"HeartbeatMessage","message":{"messageId":"hb","healthy":true,"future":{"x":1}},"extra":1}"#;
    assert_eq!(
        ServerMessage::decode(frame).unwrap(),
        ServerMessage::Heartbeat(HeartbeatMessage {
            healthy: Some(true),
            message_id: s("hb"),
        })
    );
}

#[test]
fn malformed_envelopes_are_errors() {
    assert!(matches!(
        ServerMessage::decode("not json"),
        Err(AcsError::Json(_))
    ));
    assert!(matches!(
        ServerMessage::decode("[1]"),
        Err(AcsError::Json(_))
    ));
    assert!(matches!(
        ServerMessage::decode(r#"{"message":{}}"#),
        Err(AcsError::MissingType)
    ));
    assert!(matches!(
        ServerMessage::decode(r#"{"type":"","message":{}}"#),
        Err(AcsError::MissingType)
    ));
    assert!(matches!(
        ServerMessage::decode(r#"{"type":"HeartbeatMessage"}"#),
        Err(AcsError::MissingMessage { .. })
    ));
    // Go leaves the message empty for null; so do we.
    assert_eq!(
        ServerMessage::decode(r#"{"type":"HeartbeatMessage","message":null}"#).unwrap(),
        ServerMessage::Heartbeat(HeartbeatMessage::default())
    );
    // A member of the wrong JSON type is an error, as it is for Go's decoder.
    let err =
        ServerMessage::decode(r#"{"type":"PayloadMessage","message":{"seqNum":"1"}}"#).unwrap_err();
    assert!(
        matches!(err, AcsError::Message { ref type_name, .. } if type_name == "PayloadMessage")
    );
}

#[test]
fn members_the_model_requires_must_be_present() {
    // Device.hostPath and NvidiaMpsAllocation.memory are the ACS model's required members.
    let device = r#"{"type":"PayloadMessage","message":{"tasks":[{"containers":[{"linuxParameters":{"devices":[{"containerPath":"/dev/fuse"}]}}]}]}}"#;
    assert!(matches!(
        ServerMessage::decode(device),
        Err(AcsError::Message { .. })
    ));
    let mps = r#"{"type":"PayloadMessage","message":{"tasks":[{"containers":[{"resourceRequirements":[{"sharingStrategy":{"nvidiaMps":{"maxComputePercent":50}}}]}]}]}}"#;
    assert!(matches!(
        ServerMessage::decode(mps),
        Err(AcsError::Message { .. })
    ));
}

#[test]
fn inactive_instance_is_recognised_in_frames_and_handshake_bodies() {
    let frame = ServerMessage::InactiveInstanceException(exception()).encode();
    assert!(
        ServerMessage::decode(&frame)
            .unwrap()
            .is_inactive_instance()
    );
    assert!(!ServerMessage::ServerException(exception()).is_inactive_instance());

    let refused = ConnectionError::new("InactiveInstanceException", "instance is deregistered");
    let body = refused.encode();
    assert_eq!(
        body,
        r#"{"InactiveInstanceException":"instance is deregistered"}"#
    );
    assert_eq!(ConnectionError::decode(&body).unwrap(), refused);
    // The agent's own test body (acs_client_test.go, TestConnectClientError).
    assert_eq!(
        ConnectionError::decode("{\"InvalidClusterException\":\"Invalid cluster\"}\n").unwrap(),
        ConnectionError::new("InvalidClusterException", "Invalid cluster")
    );
    assert!(ConnectionError::decode(r#"{"a":"1","b":"2"}"#).is_err());
    assert!(ConnectionError::decode(r#"{}"#).is_err());
}

// ---- the websocket URL ----------------------------------------------------------------

#[test]
fn reads_and_writes_the_query_the_agent_dials_with() {
    // What acsURL builds (url.Values.Encode: sorted keys, spaces as '+').
    let query = "agentHash=4023248e&agentVersion=1.82.0&clusterArn=default&containerInstanceArn=arn%3Aaws%3Aecs%3Aus-east-1%3A000000000000%3Acontainer-instance%2Fdefault%2F0123456789abcdef&dockerVersion=DockerVersion%3A+24.0.7&protocolVersion=2&sendCredentials=true&seqNum=1";
    let parsed = AcsQuery::parse(query).unwrap();
    assert_eq!(
        parsed,
        AcsQuery {
            agent_hash: s("4023248e"),
            agent_version: s("1.82.0"),
            berth_extensions: None,
            cluster_arn: "default".into(),
            container_instance_arn: INSTANCE.into(),
            docker_version: s("DockerVersion: 24.0.7"),
            protocol_version: Some(PROTOCOL_VERSION),
            send_credentials: Some(true),
            seq_num: Some(1),
        }
    );
    assert_eq!(parsed.docker_version_number(), Some("24.0.7"));
    assert_eq!(parsed.encode(), query);
    assert_eq!(
        parsed.url("http://127.0.0.1:4566"),
        format!("http://127.0.0.1:4566/ws?{query}")
    );
    assert_eq!(
        parsed.url("http://127.0.0.1:4566/"),
        format!("http://127.0.0.1:4566/ws?{query}")
    );
    assert!(matches!(
        AcsQuery::parse("clusterArn=default"),
        Err(AcsError::Query(_))
    ));
    assert!(!parsed.berth_extension(BERTH_EXTENSION_FIREWALL));
}

/// Berth's agent asks for its extensions in the query; they sort where Go would put them.
#[test]
fn berth_extensions_ride_in_the_query() {
    let query = AcsQuery {
        berth_extensions: s("firewall,other"),
        cluster_arn: "default".into(),
        container_instance_arn: INSTANCE.into(),
        ..AcsQuery::default()
    };
    let encoded = query.encode();
    assert!(
        encoded.starts_with("berthExtensions=firewall%2Cother&clusterArn="),
        "{encoded}"
    );
    let parsed = AcsQuery::parse(&encoded).unwrap();
    assert!(parsed.berth_extension(BERTH_EXTENSION_FIREWALL));
    assert!(!parsed.berth_extension("fire"));
    let frame = ServerMessage::BerthFirewall(BerthFirewallMessage {
        message_id: s("m"),
        tasks: Some(vec![BerthTaskFirewall {
            task_arn: s("arn:aws:ecs:us-east-1:000000000000:task/default/1"),
            firewall: Some(Firewall::default()),
        }]),
        ..BerthFirewallMessage::default()
    })
    .encode();
    assert!(
        frame.contains(r#""type":"BerthFirewallMessage""#),
        "{frame}"
    );
    assert!(matches!(
        ServerMessage::decode(&frame),
        Ok(ServerMessage::BerthFirewall(m)) if m.tasks.as_ref().is_some_and(|t| t.len() == 1)
    ));
}

// ---- member names held to the model ---------------------------------------------------

const PAYLOAD_MESSAGE: &[&str] = &[
    "containerInstanceArn",
    "clusterArn",
    "tasks",
    "generatedAt",
    "messageId",
    "seqNum",
    "timeline",
];
const TASK: &[&str] = &[
    "arn",
    "taskClusterArn",
    "containers",
    "desiredStatus",
    "family",
    "overrides",
    "version",
    "zone",
    "taskDefinitionAccountId",
    "volumes",
    "roleCredentials",
    "executionRoleCredentials",
    "elasticNetworkInterfaces",
    "cpu",
    "memory",
    "associations",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "agentConfiguration",
    "launchType",
    "attachments",
    "networkMode",
    "serviceName",
    "group",
    "enableFaultInjection",
    "trustedExecutionConfiguration",
];
const CONTAINER: &[&str] = &[
    "command",
    "cpu",
    "credentialSpecs",
    "entryPoint",
    "environment",
    "environmentFiles",
    "essential",
    "restartPolicy",
    "image",
    "links",
    "memory",
    "name",
    "overrides",
    "portMappings",
    "managedAgents",
    "mountPoints",
    "linuxParameters",
    "privileged",
    "networkInterfaceNames",
    "volumesFrom",
    "dockerConfig",
    "healthCheckType",
    "registryAuthentication",
    "logsAuthStrategy",
    "secrets",
    "dependsOn",
    "startTimeout",
    "stopTimeout",
    "firelensConfiguration",
    "containerArn",
    "resourceRequirements",
];
const VOLUME: &[&str] = &[
    "name",
    "type",
    "host",
    "dockerVolumeConfiguration",
    "efsVolumeConfiguration",
    "fsxWindowsFileServerVolumeConfiguration",
    "ebsVolumeConfiguration",
    "logDriverVolumeConfiguration",
];
const ELASTIC_NETWORK_INTERFACE: &[&str] = &[
    "name",
    "macAddress",
    "attachmentArn",
    "ec2Id",
    "index",
    "interfaceAssociationProtocol",
    "interfaceTunnelProperties",
    "interfaceVethProperties",
    "interfaceVlanProperties",
    "ipv4Addresses",
    "ipv6Addresses",
    "domainName",
    "domainNameServers",
    "privateDnsName",
    "subnetGatewayIpv4Address",
    "subnetGatewayIpv6Address",
    // Berth's extensions to the model (see `ElasticNetworkInterface::subnet_id` and
    // `berth_firewall`).
    "subnetId",
    "berthFirewall",
];
const IAM_ROLE_CREDENTIALS: &[&str] = &[
    "credentialsId",
    "roleArn",
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
    "expiration",
    "credentialScope",
];
const TASK_IDENTIFIER: &[&str] = &["taskArn", "taskClusterArn", "desiredStatus"];
const ATTACHMENT: &[&str] = &["attachmentArn", "attachmentType", "attachmentProperties"];
const MESSAGE_ONLY: &[&str] = &["message"];

/// The model's members of each message shape, by frame type.
fn server_message_members(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "PayloadMessage" => PAYLOAD_MESSAGE,
        "HeartbeatMessage" => &["healthy", "messageId"],
        "IAMRoleCredentialsMessage" => &[
            "taskArn",
            "taskClusterArn",
            "roleCredentials",
            "roleType",
            "messageId",
        ],
        "TaskManifestMessage" => &[
            "containerInstanceArn",
            "clusterArn",
            "tasks",
            "generatedAt",
            "messageId",
            "timeline",
        ],
        "TaskStopVerificationAck" => &["generatedAt", "messageId", "stopTasks"],
        "AttachTaskNetworkInterfacesMessage" => &[
            "containerInstanceArn",
            "clusterArn",
            "taskArn",
            "taskClusterArn",
            "generatedAt",
            "messageId",
            "waitTimeoutMs",
            "elasticNetworkInterfaces",
        ],
        "AttachInstanceNetworkInterfacesMessage" => &[
            "containerInstanceArn",
            "clusterArn",
            "generatedAt",
            "messageId",
            "waitTimeoutMs",
            "elasticNetworkInterfaces",
        ],
        "ConfirmAttachmentMessage" => &[
            "containerInstanceArn",
            "clusterArn",
            "taskArn",
            "taskClusterArn",
            "generatedAt",
            "messageId",
            "waitTimeoutMs",
            "attachment",
        ],
        "StageUpdateMessage" | "PerformUpdateMessage" => &[
            "containerInstanceArn",
            "clusterArn",
            "updateInfo",
            "messageId",
        ],
        "CloseMessage"
        | "ErrorMessage"
        | "ServerException"
        | "BadRequestException"
        | "InvalidClusterException"
        | "InvalidInstanceException"
        | "AccessDeniedException"
        | "InactiveInstanceException" => MESSAGE_ONLY,
        other => panic!("no member list for {other}"),
    }
}

fn agent_message_members(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "AckRequest" => &["cluster", "containerInstance", "messageId"],
        "HeartbeatAckRequest" => &["messageId"],
        "IAMRoleCredentialsAckRequest" => &["messageId", "expiration", "credentialsId"],
        "TaskStopVerificationMessage" => &["messageId", "stopCandidates"],
        "NackRequest" => &["cluster", "containerInstance", "messageId", "reason"],
        other => panic!("no member list for {other}"),
    }
}

#[test]
fn every_server_message_emits_exactly_the_models_members() {
    let messages = every_server_message();
    assert_eq!(messages.len(), 18, "one sample per ServerMessage variant");
    for message in messages {
        let type_name = message.type_name().to_owned();
        let body = message_of(&message.encode(), &type_name);
        assert_eq!(
            keys(&body),
            members(server_message_members(&type_name)),
            "{type_name}"
        );
    }
}

#[test]
fn every_agent_message_emits_exactly_the_models_members() {
    let messages = every_agent_message();
    assert_eq!(messages.len(), 5, "one sample per AgentMessage variant");
    for message in messages {
        let type_name = message.type_name().to_owned();
        let body = message_of(&message.encode(), &type_name);
        assert_eq!(
            keys(&body),
            members(agent_message_members(&type_name)),
            "{type_name}"
        );
    }
}

#[test]
fn nested_shapes_emit_exactly_the_models_members() {
    let payload = ServerMessage::Payload(PayloadMessage {
        tasks: Some(vec![full_task()]),
        ..Default::default()
    });
    let body = message_of(&payload.encode(), "PayloadMessage");
    let task = &body["tasks"][0];
    let container = &task["containers"][0];
    let volume = &task["volumes"][0];
    let eni = &task["elasticNetworkInterfaces"][0];
    let expectations: Vec<(&str, &Value, &[&str])> = vec![
        ("Task", task, TASK),
        ("Container", container, CONTAINER),
        ("Volume", volume, VOLUME),
        (
            "IAMRoleCredentials",
            &task["roleCredentials"],
            IAM_ROLE_CREDENTIALS,
        ),
        (
            "IAMRoleCredentials",
            &task["executionRoleCredentials"],
            IAM_ROLE_CREDENTIALS,
        ),
        ("ElasticNetworkInterface", eni, ELASTIC_NETWORK_INTERFACE),
        (
            "NetworkInterfaceTunnelProperties",
            &eni["interfaceTunnelProperties"],
            &["tunnelId", "interfaceIpAddress"],
        ),
        (
            "NetworkInterfaceVethProperties",
            &eni["interfaceVethProperties"],
            &["peerInterface"],
        ),
        (
            "NetworkInterfaceVlanProperties",
            &eni["interfaceVlanProperties"],
            &["vlanId", "trunkInterfaceMacAddress"],
        ),
        (
            "IPv4AddressAssignment",
            &eni["ipv4Addresses"][0],
            &["privateAddress", "primary"],
        ),
        (
            "IPv6AddressAssignment",
            &eni["ipv6Addresses"][0],
            &["address", "primary"],
        ),
        (
            "Association",
            &task["associations"][0],
            &["name", "type", "content", "containers"],
        ),
        (
            "EncodedString",
            &task["associations"][0]["content"],
            &["value", "encoding"],
        ),
        (
            "ProxyConfiguration",
            &task["proxyConfiguration"],
            &["type", "containerName", "properties"],
        ),
        ("Attachment", &task["attachments"][0], ATTACHMENT),
        (
            "AttachmentProperty",
            &task["attachments"][0]["attachmentProperties"][0],
            &["name", "value"],
        ),
        (
            "TrustedExecutionConfiguration",
            &task["trustedExecutionConfiguration"],
            &["isolationMode", "attestationPolicy"],
        ),
        (
            "PortMapping",
            &container["portMappings"][0],
            &[
                "containerPort",
                "hostPort",
                "containerPortRange",
                "protocol",
            ],
        ),
        (
            "MountPoint",
            &container["mountPoints"][0],
            &["sourceVolume", "containerPath", "readOnly"],
        ),
        (
            "VolumeFrom",
            &container["volumesFrom"][0],
            &["sourceContainer", "readOnly"],
        ),
        (
            "DockerConfig",
            &container["dockerConfig"],
            &["version", "config", "hostConfig"],
        ),
        (
            "ContainerDependency",
            &container["dependsOn"][0],
            &["containerName", "condition"],
        ),
        (
            "RegistryAuthenticationData",
            &container["registryAuthentication"],
            &["type", "ecrAuthData", "asmAuthData"],
        ),
        (
            "ECRAuthData",
            &container["registryAuthentication"]["ecrAuthData"],
            &[
                "registryId",
                "region",
                "endpointOverride",
                "useExecutionRole",
            ],
        ),
        (
            "ASMAuthData",
            &container["registryAuthentication"]["asmAuthData"],
            &["credentialsParameter", "region"],
        ),
        (
            "Secret",
            &container["secrets"][0],
            &[
                "name",
                "valueFrom",
                "containerPath",
                "type",
                "region",
                "provider",
                "target",
            ],
        ),
        (
            "EnvironmentFile",
            &container["environmentFiles"][0],
            &["value", "type"],
        ),
        (
            "RestartPolicy",
            &container["restartPolicy"],
            &["enabled", "ignoredExitCodes", "restartAttemptPeriod"],
        ),
        (
            "ManagedAgent",
            &container["managedAgents"][0],
            &["name", "properties"],
        ),
        (
            "LinuxParameters",
            &container["linuxParameters"],
            &[
                "capabilities",
                "devices",
                "initProcessEnabled",
                "sharedMemorySize",
            ],
        ),
        (
            "KernelCapabilities",
            &container["linuxParameters"]["capabilities"],
            &["add", "drop"],
        ),
        (
            "Device",
            &container["linuxParameters"]["devices"][0],
            &["hostPath", "containerPath", "permissions"],
        ),
        (
            "FirelensConfiguration",
            &container["firelensConfiguration"],
            &["type", "options"],
        ),
        (
            "ResourceRequirement",
            &container["resourceRequirements"][0],
            &["value", "type", "sharingStrategy"],
        ),
        (
            "SharingStrategy",
            &container["resourceRequirements"][0]["sharingStrategy"],
            &["nvidiaMps"],
        ),
        (
            "NvidiaMpsAllocation",
            &container["resourceRequirements"][0]["sharingStrategy"]["nvidiaMps"],
            &["memory", "maxComputePercent"],
        ),
        ("HostVolumeProperties", &volume["host"], &["sourcePath"]),
        (
            "DockerVolumeConfiguration",
            &volume["dockerVolumeConfiguration"],
            &["scope", "autoprovision", "driver", "driverOpts", "labels"],
        ),
        (
            "EFSVolumeConfiguration",
            &volume["efsVolumeConfiguration"],
            &[
                "fileSystemId",
                "rootDirectory",
                "transitEncryption",
                "transitEncryptionPort",
                "authorizationConfig",
            ],
        ),
        (
            "EFSAuthorizationConfig",
            &volume["efsVolumeConfiguration"]["authorizationConfig"],
            &["accessPointId", "iam"],
        ),
        (
            "FSxWindowsFileServerVolumeConfiguration",
            &volume["fsxWindowsFileServerVolumeConfiguration"],
            &["fileSystemId", "rootDirectory", "authorizationConfig"],
        ),
        (
            "FSxWindowsFileServerAuthorizationConfig",
            &volume["fsxWindowsFileServerVolumeConfiguration"]["authorizationConfig"],
            &["credentialsParameter", "domain"],
        ),
        (
            "EBSVolumeConfiguration",
            &volume["ebsVolumeConfiguration"],
            &[
                "volumeId",
                "deleteOnTermination",
                "deviceName",
                "filesystemType",
            ],
        ),
        (
            "LogDriverVolumeConfiguration",
            &volume["logDriverVolumeConfiguration"],
            &["driver"],
        ),
    ];
    for (shape, value, expected) in expectations {
        assert_eq!(keys(value), members(expected), "{shape}");
    }

    let manifest = message_of(
        &ServerMessage::TaskManifest(TaskManifestMessage {
            tasks: Some(vec![task_identifier()]),
            ..Default::default()
        })
        .encode(),
        "TaskManifestMessage",
    );
    assert_eq!(keys(&manifest["tasks"][0]), members(TASK_IDENTIFIER));
    let update = message_of(
        &ServerMessage::StageUpdate(StageUpdateMessage {
            update_info: update_info(),
            ..Default::default()
        })
        .encode(),
        "StageUpdateMessage",
    );
    assert_eq!(
        keys(&update["updateInfo"]),
        members(&["location", "signature"])
    );
}

#[test]
fn poll_request_has_the_models_members() {
    let poll = PollRequest {
        cluster: s("default"),
        container_instance: s(INSTANCE),
        seq_num: Some(1),
        timeline: Some(1),
        version_info: Some(VersionInfo {
            agent_version: s("1.82.0"),
            agent_hash: s("4023248e"),
            docker_version: s("24.0.7"),
        }),
        send_credentials: Some(true),
        protocol_version: Some(PROTOCOL_VERSION),
    };
    let value = serde_json::to_value(&poll).unwrap();
    assert_eq!(
        keys(&value),
        members(&[
            "cluster",
            "containerInstance",
            "seqNum",
            "timeline",
            "versionInfo",
            "sendCredentials",
            "protocolVersion",
        ])
    );
    assert_eq!(
        keys(&value["versionInfo"]),
        members(&["agentVersion", "agentHash", "dockerVersion"])
    );
    assert_eq!(serde_json::from_value::<PollRequest>(value).unwrap(), poll);
}
