//! The ACS websocket URL the agent dials: `<endpoint>/ws?<query>`.

use serde::{Deserialize, Serialize};

use crate::AcsError;
use crate::frame::ws_url;

/// The query of the ACS websocket URL, as the agent builds it (`acsURL` in
/// `ecs-agent/acs/session/session.go`); it stands in for the model's `PollRequest`.
///
/// The agent sends `clusterArn` = its configured cluster, which is usually a name
/// (`default`), not an ARN; `seqNum` = `1`; `protocolVersion` = `2`; `dockerVersion` =
/// `"DockerVersion: <version>"` (or `containerd`); `sendCredentials` = `true` on the first
/// connection after the agent starts, asking for every task's credentials, `false` after.
/// The GET is SigV4-signed in headers (service `ecs`, the agent's region) over the whole URL
/// with the empty-body hash, and the agent sends no `X-Amz-Content-Sha256` header, so a
/// verifier must assume the empty-payload hash.
///
/// Members are declared in the order Go's `url.Values.Encode` sorts them, so [`Self::encode`]
/// writes the agent's exact query string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Berth's extension: the Berth messages this agent takes, comma-separated
    /// (`firewall`: [`super::BerthFirewallMessage`]). The official agent never sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_extensions: Option<String>,
    pub cluster_arn: String,
    pub container_instance_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_credentials: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_num: Option<i64>,
}

impl AcsQuery {
    /// Reads a query string (without the `?`); `clusterArn` and `containerInstanceArn` are
    /// required, unknown parameters ignored.
    pub fn parse(query: &str) -> Result<Self, AcsError> {
        serde_urlencoded::from_str(query).map_err(AcsError::Query)
    }

    /// The query string, without the `?`.
    pub fn encode(&self) -> String {
        serde_urlencoded::to_string(self).expect("a flat struct of strings and numbers")
    }

    /// The websocket URL for an ACS endpoint as `DiscoverPollEndpoint` returns it
    /// (`http://host:port` or `https://…`; the agent itself swaps the scheme for `ws`/`wss`).
    pub fn url(&self, endpoint: &str) -> String {
        ws_url(endpoint, &self.encode())
    }

    /// Whether the agent asked for Berth's extension `name` at connect.
    pub fn berth_extension(&self, name: &str) -> bool {
        self.berth_extensions
            .as_deref()
            .is_some_and(|all| all.split(',').any(|e| e.trim() == name))
    }

    /// The Docker version without the `DockerVersion: ` prefix the agent adds.
    pub fn docker_version_number(&self) -> Option<&str> {
        let version = self.docker_version.as_deref()?;
        Some(version.strip_prefix("DockerVersion: ").unwrap_or(version))
    }
}
