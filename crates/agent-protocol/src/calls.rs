//! The agent's HTTP calls to the ECS API that carry its reports (ECS's JSON 1.1, as the
//! official agent's SDK sends them): SubmitTaskStateChange, SubmitContainerStateChange and
//! DiscoverPollEndpoint. One declaration for both sides: `berth agent` serialises them, the
//! server deserialises them (members it does not model are ignored; absent optional ones are
//! never sent).

use serde::{Deserialize, Serialize};

/// ECS's NetworkBinding (the domain's own type: the control plane keeps what agents send).
pub use berth_model::ecs::NetworkBinding;

/// SubmitContainerStateChange: one container's new status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub task: String,
    pub container_name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// The digest of the image the container runs (the official agent sends it; ECS shows
    /// it as DescribeTasks' `containers[].imageDigest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bindings: Vec<NetworkBinding>,
}

/// One container inside a [`TaskStateChange`] (ECS's ContainerStateChange shape, without
/// the cluster and task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerChangeInTask {
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// The digest of the image the container runs (the official agent sends it; ECS shows
    /// it as DescribeTasks' `containers[].imageDigest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bindings: Vec<NetworkBinding>,
}

/// An attachment's new status inside SubmitTaskStateChange (the task's ENI: `ATTACHED`
/// once its network namespace exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentStateChange {
    pub attachment_arn: String,
    pub status: String,
}

/// SubmitTaskStateChange: the task's new status, with its containers' latest changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub task: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds since the epoch, as AWS JSON timestamps travel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerChangeInTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentStateChange>,
}

/// SubmitTaskStateChange's and SubmitContainerStateChange's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgment {
    pub acknowledgment: String,
}

/// DiscoverPollEndpoint: where an instance's agent opens its ACS and telemetry sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointResponse {
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_change_travels_as_ecs_names_it_and_reads_back() {
        let change = TaskStateChange {
            cluster: Some("c".into()),
            task: "arn:t".into(),
            status: "RUNNING".into(),
            reason: None,
            pull_started_at: Some(1.5),
            pull_stopped_at: None,
            execution_stopped_at: None,
            containers: vec![ContainerChangeInTask {
                container_name: "web".into(),
                status: Some("RUNNING".into()),
                runtime_id: Some("abc".into()),
                image_digest: None,
                exit_code: None,
                reason: None,
                network_bindings: vec![NetworkBinding {
                    bind_ip: "0.0.0.0".into(),
                    container_port: 80,
                    host_port: 8080,
                    protocol: "tcp".into(),
                    ..NetworkBinding::default()
                }],
            }],
            attachments: vec![],
        };
        let wire = serde_json::to_value(&change).unwrap();
        assert_eq!(
            wire,
            json!({"cluster": "c", "task": "arn:t", "status": "RUNNING", "pullStartedAt": 1.5,
                   "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "abc",
                       "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80,
                                            "hostPort": 8080, "protocol": "tcp"}]}]})
        );
        assert_eq!(
            serde_json::from_value::<TaskStateChange>(wire).unwrap(),
            change
        );
        // What the official agent sends beyond the model is ignored.
        let official: TaskStateChange = serde_json::from_value(json!({
            "task": "arn:t", "status": "STOPPED", "managedAgents": [], "containers": [
                {"containerName": "web", "exitCode": 1, "imageDigest": "sha256:x"}]}))
        .unwrap();
        assert_eq!(official.containers[0].exit_code, Some(1));
    }
}
