//! A scripted agent: plays the official Amazon ECS agent's side of the ACS and telemetry
//! websockets (a SigV4-signed GET upgrade, JSON frames `{"type", "message"}`), so tests can
//! hold exactly what Berth sends and answer as the agent would.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::Endpoint;
use crate::oci::sha256_hex;
use crate::sigv4::{amz_date, hmac_sha256, now_unix};

/// RFC 3986 encoding as SigV4 wants it (everything but unreserved characters).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical (sorted, encoded) query string of `params`.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4 headers (`Authorization`, `X-Amz-Date`) for a GET of `path?query` with an empty
/// body, signing only `host` and `x-amz-date`, as the official agent signs its upgrades.
pub fn sign_get(
    host: &str,
    path: &str,
    query: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> Vec<(String, String)> {
    let amz = amz_date(now_unix());
    let date = &amz[..8];
    let signed_headers = "host;x-amz-date";
    let canonical = format!(
        "GET\n{path}\n{query}\nhost:{host}\nx-amz-date:{amz}\n\n{signed_headers}\n{}",
        sha256_hex(b"")
    );
    let scope = format!("{date}/{region}/ecs/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    for part in [region, "ecs", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    vec![
        (
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
            ),
        ),
        ("X-Amz-Date".into(), amz),
    ]
}

/// The outcome of an upgrade attempt that the server refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// One websocket session of a scripted agent. A reader thread answers every
/// `HeartbeatMessage` at once with `HeartbeatAckRequest`, as the official agent does, so the
/// session stays alive while the test is busy elsewhere; every frame (heartbeats included)
/// is queued for `recv`.
pub struct ScriptedAgent {
    socket: Arc<Mutex<WebSocket<TcpStream>>>,
    frames: mpsc::Receiver<Value>,
    closed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

impl ScriptedAgent {
    fn start(socket: WebSocket<TcpStream>) -> ScriptedAgent {
        let socket = Arc::new(Mutex::new(socket));
        let (tx, frames) = mpsc::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (socket, closed, stop) = (socket.clone(), closed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let read = socket.lock().unwrap().read();
                    match read {
                        Ok(Message::Text(text)) => {
                            let frame: Value =
                                serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                                    panic!("a frame that is not JSON ({e}): {text}")
                                });
                            if frame["type"] == "HeartbeatMessage" {
                                let ack = json!({
                                    "type": "HeartbeatAckRequest",
                                    "message": {"messageId": frame["message"]["messageId"]}
                                });
                                let _ = socket
                                    .lock()
                                    .unwrap()
                                    .send(Message::Text(ack.to_string().into()));
                            }
                            if tx.send(frame).is_err() {
                                return;
                            }
                        }
                        Ok(Message::Close(_)) => {
                            closed.store(true, Ordering::SeqCst);
                            return;
                        }
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {
                            // Let writers in between reads.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => {
                            closed.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        };
        ScriptedAgent {
            socket,
            frames,
            closed,
            stop,
            reader: Some(reader),
        }
    }

    /// Opens `path?query` on the server (signed unless `signed` is false).
    pub fn open(
        server: &impl Endpoint,
        path: &str,
        params: &[(&str, &str)],
        signed: bool,
    ) -> Result<ScriptedAgent, Refused> {
        let host = server.host();
        let query = canonical_query(params);
        let url = format!("ws://{host}{path}?{query}");
        let mut request = url.into_client_request().unwrap();
        if signed {
            for (k, v) in sign_get(
                &host,
                path,
                &query,
                "us-east-1",
                server.access_key(),
                server.secret_key(),
            ) {
                request.headers_mut().insert(
                    k.parse::<tungstenite::http::HeaderName>().unwrap(),
                    v.parse().unwrap(),
                );
            }
        }
        let stream = TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match tungstenite::client::client(request, stream) {
            Ok((socket, _)) => Ok(ScriptedAgent::start(socket)),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                Err(Refused {
                    status: response.status().as_u16(),
                    body: response
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                })
            }
            Err(e) => panic!("websocket handshake failed: {e}"),
        }
    }

    /// The ACS session of `instance_arn` in `cluster`, as the official agent opens it.
    pub fn acs(
        server: &impl Endpoint,
        cluster: &str,
        instance_arn: &str,
    ) -> Result<ScriptedAgent, Refused> {
        Self::open(
            server,
            "/ws",
            &[
                ("agentHash", "e2e"),
                ("agentVersion", "1.0.0"),
                ("clusterArn", cluster),
                ("containerInstanceArn", instance_arn),
                ("dockerVersion", "DockerVersion: 28.2.2"),
                ("protocolVersion", "2"),
                ("sendCredentials", "true"),
                ("seqNum", "1"),
            ],
            true,
        )
    }

    /// The telemetry session of `instance_arn` in `cluster`.
    pub fn tcs(
        server: &impl Endpoint,
        cluster: &str,
        instance_arn: &str,
    ) -> Result<ScriptedAgent, Refused> {
        Self::open(
            server,
            "/tcs/ws",
            &[
                ("agentHash", "e2e"),
                ("agentVersion", "1.0.0"),
                ("cluster", cluster),
                ("containerInstance", instance_arn),
                ("dockerVersion", "28.2.2"),
            ],
            true,
        )
    }

    /// The next frame as JSON, or `None` after `timeout` without one (or once closed).
    pub fn recv(&mut self, timeout: Duration) -> Option<Value> {
        self.frames.recv_timeout(timeout).ok()
    }

    /// The next frame of `kind` (others are skipped), or `None` after `timeout`.
    pub fn recv_kind(&mut self, kind: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let frame = self.recv(left)?;
            if frame["type"] == kind {
                return Some(frame);
            }
        }
        None
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn send(&mut self, frame: &Value) {
        self.socket
            .lock()
            .unwrap()
            .send(Message::Text(frame.to_string().into()))
            .unwrap();
    }

    /// Acknowledges a PayloadMessage as the agent does.
    pub fn ack(&mut self, payload: &Value) {
        let m = &payload["message"];
        self.send(&json!({
            "type": "AckRequest",
            "message": {
                "messageId": m["messageId"],
                "cluster": m["clusterArn"],
                "containerInstance": m["containerInstanceArn"],
            }
        }));
    }

    /// Goes away: stops reading and closes the connection.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let mut socket = self.socket.lock().unwrap();
        let _ = socket.close(None);
        let _ = socket.flush();
    }
}

impl Drop for ScriptedAgent {
    fn drop(&mut self) {
        self.shutdown();
    }
}
