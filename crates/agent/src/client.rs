//! A small SigV4-signed client for the AWS JSON 1.1 calls the agent makes: ECS's
//! RegisterContainerInstance, DiscoverPollEndpoint, SubmitTaskStateChange,
//! SubmitContainerStateChange, ECR's GetAuthorizationToken (at the `endpointOverride`
//! a task's `ecrAuthData` names), and the CloudWatch Logs calls of the awslogs driver. Plain HTTP/1.1 over hyper's connection API with a few
//! kept-alive connections per host: the control plane sits on a local network, so there is
//! no TLS here.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Credentials;

const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per host.
const MAX_IDLE_PER_HOST: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an AWS error (`{"__type": code, "message": ...}`).
    #[error("{code}: {message} (HTTP {status})")]
    Aws {
        status: u16,
        code: String,
        message: String,
    },
    /// The service could not be reached, or the connection broke.
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    /// An endpoint URL this client cannot use, or an answer it cannot read.
    #[error("{0}")]
    Protocol(String),
}

/// What a boxed call returns (the engine's control-plane calls and the awslogs shippers'
/// CloudWatch Logs calls go through traits, so that tests can fake them).
pub type ControlFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

impl ClientError {
    /// Worth trying again later: the service was unreachable, failed (5xx) or throttled.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Aws { status, code, .. } => {
                *status >= 500 || code.contains("Throttling") || code.contains("ServerException")
            }
            ClientError::Protocol(_) => false,
        }
    }
}

/// `http://host[:port][/…]` split into what a request needs. Only plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    /// `host:port` (the port made explicit), used to dial and as the `Host` header.
    pub authority: String,
}

impl HttpEndpoint {
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(ClientError::Protocol(format!(
                "{url}: the agent speaks plain HTTP only (no TLS); use http://"
            )));
        } else {
            // ECR's endpointOverride may come without a scheme, as the official agent
            // accepts it.
            url
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(ClientError::Protocol(format!("{url}: no host")));
        }
        let has_port = match authority.rsplit_once(':') {
            // `[::1]:80` or `host:80`, but not a bare IPv6 address.
            Some((host, port)) => {
                port.chars().all(|c| c.is_ascii_digit())
                    && (!host.contains(':') || host.ends_with(']'))
            }
            None => false,
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpEndpoint { authority })
    }

    /// The host without the port.
    pub fn host(&self) -> &str {
        self.authority
            .rsplit_once(':')
            .map_or(self.authority.as_str(), |(host, _)| host)
    }

    pub fn port(&self) -> u16 {
        self.authority
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(80)
    }
}

/// The signed client. Cheap to share (`Arc`).
pub struct AwsClient {
    /// The control plane's replicas (or one address in front of them): calls go to the
    /// current one and move to the next when it cannot be reached.
    endpoints: Vec<HttpEndpoint>,
    current: std::sync::atomic::AtomicUsize,
    credentials: Credentials,
    region: String,
    /// Idle kept-alive connections by `host:port`. A std mutex: held only to push or pop.
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
}

impl AwsClient {
    /// `endpoint_url`: one URL, or several separated by commas (the replicas of one
    /// control plane).
    pub fn new(
        endpoint_url: &str,
        credentials: Credentials,
        region: &str,
    ) -> Result<Self, ClientError> {
        let endpoints = endpoint_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(HttpEndpoint::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(ClientError::Protocol(format!(
                "no control plane endpoint in {endpoint_url:?}"
            )));
        }
        Ok(AwsClient {
            endpoints,
            current: std::sync::atomic::AtomicUsize::new(0),
            credentials,
            region: region.to_owned(),
            idle: Mutex::new(HashMap::new()),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The control plane endpoint calls go to now.
    pub fn endpoint(&self) -> HttpEndpoint {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        self.endpoints[i % self.endpoints.len()].clone()
    }

    /// `failed` could not be reached: later calls go to the next endpoint (unless another
    /// call moved on already).
    fn move_on_from(&self, failed: &HttpEndpoint) {
        if self.endpoints.len() < 2 {
            return;
        }
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        if self.endpoints[i % self.endpoints.len()].authority == failed.authority {
            let _ = self.current.compare_exchange(
                i,
                i + 1,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
            tracing::warn!(
                unreachable = %failed.authority,
                next = %self.endpoint().authority,
                "control plane endpoint unreachable; moving to the next"
            );
        }
    }

    pub async fn register_container_instance(
        &self,
        request: &RegisterContainerInstanceRequest,
    ) -> Result<RegisteredInstance, ClientError> {
        let answer = self.ecs("RegisterContainerInstance", request).await?;
        let instance = &answer["containerInstance"];
        let arn = instance["containerInstanceArn"]
            .as_str()
            .ok_or_else(|| {
                ClientError::Protocol("RegisterContainerInstance: no containerInstanceArn".into())
            })?
            .to_owned();
        let attributes = serde_json::from_value(instance["attributes"].clone()).unwrap_or_default();
        let installation = answer["berthInstallationId"]
            .as_str()
            .and_then(|id| id.parse().ok());
        Ok(RegisteredInstance {
            arn,
            attributes,
            installation,
        })
    }

    pub async fn discover_poll_endpoint(
        &self,
        cluster: &str,
        container_instance: &str,
    ) -> Result<PollEndpoints, ClientError> {
        let answer = self
            .ecs(
                "DiscoverPollEndpoint",
                &berth_agent_protocol::calls::DiscoverPollEndpointRequest {
                    cluster: Some(cluster.to_owned()),
                    container_instance: Some(container_instance.to_owned()),
                },
            )
            .await?;
        serde_json::from_value(answer)
            .map_err(|e| ClientError::Protocol(format!("DiscoverPollEndpoint answer: {e}")))
    }

    pub async fn submit_task_state_change(
        &self,
        change: &TaskStateChange,
    ) -> Result<(), ClientError> {
        self.ecs("SubmitTaskStateChange", change).await.map(drop)
    }

    pub async fn submit_container_state_change(
        &self,
        change: &ContainerStateChange,
    ) -> Result<(), ClientError> {
        self.ecs("SubmitContainerStateChange", change)
            .await
            .map(drop)
    }

    /// ECR's GetAuthorizationToken at `endpoint_url` (a task's `endpointOverride`, else the
    /// control plane): the registry user name and password it encodes.
    pub async fn ecr_authorization(
        &self,
        endpoint_url: Option<&str>,
        region: Option<&str>,
        registry_id: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<EcrAuthorization, ClientError> {
        let endpoint = match endpoint_url {
            Some(url) if !url.is_empty() => HttpEndpoint::parse(url)?,
            _ => self.endpoint(),
        };
        let body = match registry_id {
            Some(id) if !id.is_empty() => serde_json::json!({"registryIds": [id]}),
            _ => serde_json::json!({}),
        };
        let answer = self
            .call_as(
                credentials.unwrap_or(&self.credentials),
                &endpoint,
                "ecr",
                region.filter(|r| !r.is_empty()).unwrap_or(&self.region),
                &format!("{ECR_TARGET_PREFIX}.GetAuthorizationToken"),
                serde_json::to_vec(&body).expect("json"),
            )
            .await?;
        let data = &answer["authorizationData"][0];
        let token = data["authorizationToken"].as_str().ok_or_else(|| {
            ClientError::Protocol("GetAuthorizationToken: no authorizationToken".into())
        })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                ClientError::Protocol("GetAuthorizationToken: token is not base64 text".into())
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            ClientError::Protocol("GetAuthorizationToken: token is not USER:PASSWORD".into())
        })?;
        Ok(EcrAuthorization {
            username: username.to_owned(),
            password: password.to_owned(),
            expires_at: data["expiresAt"].as_f64(),
        })
    }

    /// A CloudWatch Logs call (`target`: `Logs_20140328.<Operation>`) on the control plane,
    /// signed for service `logs` in `region` (the awslogs driver's `awslogs-region`).
    pub async fn logs_call(
        &self,
        region: &str,
        target: &str,
        body: &impl Serialize,
        credentials: Option<&Credentials>,
    ) -> Result<Value, ClientError> {
        self.call_as(
            credentials.unwrap_or(&self.credentials),
            &self.endpoint(),
            "logs",
            region,
            target,
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    /// A JSON call (`target`: `PREFIX.Operation`) on the control plane, signed for
    /// `service` in this client's region: for admin commands (`berth accounts`).
    pub async fn json_call(
        &self,
        service: &str,
        target: &str,
        body: &impl Serialize,
    ) -> Result<Value, ClientError> {
        self.call(
            &self.endpoint(),
            service,
            &self.region,
            target,
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    /// Signs an ACS/TCS websocket upgrade GET of `path?query` on the control plane: the
    /// headers to add (`X-Amz-Date`, `Authorization`, and the session token if any), signed
    /// over `host` and the empty payload, service `ecs`, as the official agent signs them.
    pub fn sign_websocket_get(
        &self,
        authority: &str,
        path: &str,
        query: &str,
    ) -> Vec<(String, String)> {
        let mut headers: Vec<(&str, &str)> = vec![("host", authority)];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token", token));
        }
        let signed = berth_sigv4::sign(
            &berth_sigv4::RequestParts {
                method: "GET",
                path,
                query: Some(query),
                headers: &headers,
                payload_sha256: Some(berth_sigv4::EMPTY_PAYLOAD_SHA256),
            },
            &signing_params(&self.credentials, "ecs", &self.region),
        );
        let mut out = vec![
            ("X-Amz-Date".to_owned(), signed.x_amz_date),
            ("Authorization".to_owned(), signed.authorization),
        ];
        if let Some(token) = &self.credentials.session_token {
            out.push(("X-Amz-Security-Token".to_owned(), token.clone()));
        }
        out
    }

    /// A JSON call on the control plane signed with `credentials` for `service` in
    /// `region` (a task's execution role reading its secrets).
    pub async fn json_call_as(
        &self,
        credentials: &Credentials,
        service: &str,
        region: &str,
        target: &str,
        body: &impl Serialize,
    ) -> Result<Value, ClientError> {
        let endpoint = self.endpoint();
        self.call_as(
            credentials,
            &endpoint,
            service,
            region,
            target,
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    async fn ecs(&self, operation: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        self.call(
            &self.endpoint(),
            "ecs",
            &self.region,
            &format!("{ECS_TARGET_PREFIX}.{operation}"),
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    async fn call(
        &self,
        endpoint: &HttpEndpoint,
        service: &str,
        region: &str,
        target: &str,
        body: Vec<u8>,
    ) -> Result<Value, ClientError> {
        self.call_as(&self.credentials, endpoint, service, region, target, body)
            .await
    }

    /// A JSON call signed with `credentials` (a task's execution role, say) rather than the
    /// agent's own.
    async fn call_as(
        &self,
        credentials: &Credentials,
        endpoint: &HttpEndpoint,
        service: &str,
        region: &str,
        target: &str,
        body: Vec<u8>,
    ) -> Result<Value, ClientError> {
        let payload_hash = berth_sigv4::sha256_hex(&body);
        let content_type = "application/x-amz-json-1.1";
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", content_type),
            ("host", &endpoint.authority),
            ("x-amz-target", target),
        ];
        if let Some(token) = &credentials.session_token {
            headers.push(("x-amz-security-token", token));
        }
        let signed = berth_sigv4::sign(
            &berth_sigv4::RequestParts {
                method: "POST",
                path: "/",
                query: None,
                headers: &headers,
                payload_sha256: Some(&payload_hash),
            },
            &signing_params(credentials, service, region),
        );
        let mut request = hyper::Request::post("/");
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let request = request
            .header("x-amz-date", &signed.x_amz_date)
            .header("authorization", &signed.authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(format!("building the request: {e}")))?;

        let transport = |message: String| ClientError::Transport {
            endpoint: format!("http://{}", endpoint.authority),
            message,
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, self.send(endpoint, request))
            .await
            .map_err(|_| transport(format!("no answer to {target} within {CALL_TIMEOUT:?}")))
            .and_then(|sent| sent.map_err(|e| transport(e.to_string())))
            .inspect_err(|_| self.move_on_from(endpoint))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Protocol(format!(
                    "{target}: answer (HTTP {status}) is not JSON: {e}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value["__type"].as_str().unwrap_or("UnknownError");
        // `__type` may carry a namespace (`com.amazonaws.ecs#ClientException`).
        let code = code.rsplit('#').next().unwrap_or(code).to_owned();
        let message = value["message"]
            .as_str()
            .or_else(|| value["Message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Err(ClientError::Aws {
            status,
            code,
            message,
        })
    }

    /// Sends on an idle kept-alive connection to the host, or a new one.
    async fn send(
        &self,
        endpoint: &HttpEndpoint,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), TransportError> {
        let mut sender = loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&endpoint.authority)
                .and_then(Vec::pop);
            match idle {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        break sender;
                    }
                }
                None => break connect(&endpoint.authority).await?,
            }
        };
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let pool = idle.entry(endpoint.authority.clone()).or_default();
        if pool.len() < MAX_IDLE_PER_HOST && !sender.is_closed() {
            pool.push(sender);
        }
        Ok((status, body))
    }
}

/// Why a request got no answer (the `message` of [`ClientError::Transport`]).
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error(transparent)]
    Connect(#[from] std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, TransportError> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

// ---- wire shapes (ECS's JSON members, camelCase) ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub agent_version: String,
    pub agent_hash: String,
    pub docker_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstanceRequest {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub total_resources: Vec<Resource>,
    pub version_info: VersionInfo,
    pub attributes: Vec<Attribute>,
    /// As on EC2, where it names the instance: sent only for an instance with an id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_identity_document: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredInstance {
    pub arn: String,
    pub attributes: Vec<Attribute>,
    /// The control plane's installation (Berth's extension to the answer, which the
    /// official agent ignores).
    pub installation: Option<berth_model::InstallationId>,
}

pub use berth_agent_protocol::calls::{
    AttachmentStateChange, ContainerChangeInTask, ContainerStateChange,
    DiscoverPollEndpointResponse as PollEndpoints, NetworkBinding, TaskStateChange,
};

/// Registry credentials from ECR's GetAuthorizationToken.
#[derive(Clone, PartialEq)]
pub struct EcrAuthorization {
    pub username: String,
    pub password: String,
    /// Seconds since the epoch.
    pub expires_at: Option<f64>,
}

impl std::fmt::Debug for EcrAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrAuthorization")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn signing_params<'a>(
    credentials: &'a Credentials,
    service: &'a str,
    region: &'a str,
) -> berth_sigv4::SigningParams<'a> {
    berth_sigv4::SigningParams {
        access_key_id: &credentials.access_key_id,
        secret_access_key: &credentials.secret_access_key,
        region,
        service,
        time: OffsetDateTime::now_utc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_to_dialable_authorities() {
        assert_eq!(
            HttpEndpoint::parse("http://127.0.0.1:4566")
                .unwrap()
                .authority,
            "127.0.0.1:4566"
        );
        assert_eq!(
            HttpEndpoint::parse("http://berth.local/")
                .unwrap()
                .authority,
            "berth.local:80"
        );
        assert_eq!(
            HttpEndpoint::parse("127.0.0.1:9000").unwrap().authority,
            "127.0.0.1:9000"
        );
        let v6 = HttpEndpoint::parse("http://[::1]:4566").unwrap();
        assert_eq!(v6.authority, "[::1]:4566");
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.port(), 4566);
        assert!(matches!(
            HttpEndpoint::parse("https://ecs.us-east-1.amazonaws.com"),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn state_changes_use_ecs_member_names() {
        let change = TaskStateChange {
            cluster: Some("c".into()),
            task: "arn:task".into(),
            status: "STOPPED".into(),
            reason: Some("Essential container in task exited".into()),
            pull_started_at: None,
            pull_stopped_at: None,
            execution_stopped_at: Some(1.5),
            containers: vec![ContainerChangeInTask {
                container_name: "web".into(),
                status: Some("STOPPED".into()),
                runtime_id: None,
                image_digest: None,
                exit_code: Some(3),
                reason: None,
                network_bindings: vec![NetworkBinding {
                    bind_ip: "0.0.0.0".into(),
                    container_port: 80,
                    host_port: 32768,
                    protocol: "tcp".into(),
                    ..NetworkBinding::default()
                }],
            }],
            attachments: vec![AttachmentStateChange {
                attachment_arn: "arn:aws:ecs:us-east-1:0:attachment/a".into(),
                status: "ATTACHED".into(),
            }],
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json["attachments"],
            serde_json::json!([{"attachmentArn": "arn:aws:ecs:us-east-1:0:attachment/a", "status": "ATTACHED"}])
        );
        assert_eq!(json["executionStoppedAt"], 1.5);
        assert_eq!(json["containers"][0]["exitCode"], 3);
        assert_eq!(
            json["containers"][0]["networkBindings"][0]["bindIP"],
            "0.0.0.0"
        );
        assert!(json.get("pullStartedAt").is_none());
    }

    #[test]
    fn websocket_upgrades_are_signed_as_the_server_verifies_them() {
        let client = AwsClient::new(
            "http://127.0.0.1:4566",
            Credentials {
                access_key_id: "AKIDAGENT".into(),
                secret_access_key: "agent/secret".into(),
                session_token: None,
            },
            "eu-west-1",
        )
        .unwrap();
        let query = "clusterArn=prod&containerInstanceArn=arn%3Aaws%3Aecs%3A1&seqNum=1";
        let signed = client.sign_websocket_get("127.0.0.1:4566", "/ws", query);
        let mut headers: Vec<(&str, &str)> = vec![("Host", "127.0.0.1:4566")];
        headers.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let credentials =
            std::collections::HashMap::from([("AKIDAGENT".to_owned(), "agent/secret".to_owned())]);
        // The server assumes the empty payload (the agent sends no content hash header).
        let verified = berth_sigv4::verify(
            &berth_sigv4::RequestParts {
                method: "GET",
                path: "/ws",
                query: Some(query),
                headers: &headers,
                payload_sha256: Some(berth_sigv4::EMPTY_PAYLOAD_SHA256),
            },
            &credentials,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(verified.service, "ecs");
        assert_eq!(verified.region, "eu-west-1");
    }

    #[test]
    fn retryable_errors() {
        let aws = |status, code: &str| ClientError::Aws {
            status,
            code: code.into(),
            message: String::new(),
        };
        assert!(aws(500, "ServerException").is_retryable());
        assert!(aws(400, "ThrottlingException").is_retryable());
        assert!(!aws(400, "ClientException").is_retryable());
        assert!(
            ClientError::Transport {
                endpoint: "x".into(),
                message: "refused".into()
            }
            .is_retryable()
        );
    }
}
