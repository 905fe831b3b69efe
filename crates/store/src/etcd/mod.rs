//! The `Store` on etcd (v3 API), for a control plane of several replicas.
//!
//! It speaks etcd's v3 API through etcd's own JSON gateway on the client port (the same
//! `etcdserverpb` messages as gRPC, mapped to JSON by etcd): no protobuf compiler, no gRPC
//! stack in Berth's build. Keys live under a prefix (`berth/` by default), so an etcd can
//! hold other data or several installations. etcd's revision is the store's revision; its
//! compare-and-swap transactions, ranges, watches and compaction are the trait's, one to one.
//!
//! Calls go to one member at a time and move to the next when a member cannot be reached. A
//! read is retried anywhere. A write is retried only when it never reached a member: once
//! sent, a lost answer is an error ("outcome unknown"), never a second attempt that could
//! apply twice. Reads are linearizable (etcd's default), so a replica reads every write
//! any replica acknowledged.

mod http;
mod lease;
mod watch;
mod wire;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{Compare, KeyValue, Op, Revision, Store, StoreError, TxnOutcome, Watcher};
use http::{Conn, Head};
pub use lease::LeaseId;
use wire::b64;

/// How long a member may take to answer one call before the next one is tried (reads) or
/// the outcome is reported unknown (writes). etcd answers within its election timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the store is: `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `HOST:PORT` of each member's client URL.
    pub endpoints: Vec<String>,
    /// Every key is stored under this prefix (ends with `/`).
    pub namespace: String,
    /// TLS to the members (their client URLs are https), when set.
    pub tls: Option<EtcdTls>,
}

/// TLS settings for etcd: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificates members' certificates are checked against.
    pub ca: PathBuf,
    /// A client certificate (chain) and its key, for members that require one
    /// (`--client-cert-auth`).
    pub client: Option<(PathBuf, PathBuf)>,
}

impl EtcdTls {
    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, StoreError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &Path, e: &dyn std::fmt::Display| {
            StoreError::Io(format!("etcd TLS: {}: {e}", what.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).map_err(|e| bad(&self.ca, &e))? {
            roots
                .add(cert.map_err(|e| bad(&self.ca, &e))?)
                .map_err(|e| bad(&self.ca, &e))?;
        }
        // ring, not aws-lc-rs (no C toolchain dependency beyond ring's own; DEPENDENCIES.md):
        // rustls deprecates it for lacking post-quantum key exchange, which a control
        // plane's link to its own etcd does not need yet.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&self.ca, &e))?
            .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| bad(cert, &e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(cert, &e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(cert, &e))?
            }
        };
        Ok(Arc::new(config))
    }
}

impl EtcdConfig {
    pub const DEFAULT_NAMESPACE: &'static str = "berth/";

    pub fn parse(url: &str) -> Result<EtcdConfig, StoreError> {
        let invalid = |why: &str| {
            StoreError::Io(format!(
                "{url:?} is not an etcd store URL (etcd://HOST:PORT[,HOST:PORT...][/PREFIX]): {why}"
            ))
        };
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| invalid("it must start with etcd://"))?;
        let (hosts, prefix) = match rest.split_once('/') {
            Some((hosts, prefix)) => (hosts, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(invalid("no HOST:PORT"));
        }
        if let Some(bad) = endpoints.iter().find(|h| !h.contains(':')) {
            return Err(invalid(&format!("{bad:?} has no port")));
        }
        let namespace = if prefix.is_empty() {
            EtcdConfig::DEFAULT_NAMESPACE.to_owned()
        } else {
            format!("{prefix}/")
        };
        Ok(EtcdConfig {
            endpoints,
            namespace,
            tls: None,
        })
    }
}

/// An etcd error answer (gRPC code and etcd's message).
#[derive(Debug)]
struct Refused {
    code: i64,
    message: String,
}

/// Why a call failed.
#[derive(Debug)]
enum CallError {
    /// No member could be reached (nothing was applied).
    Unreachable(String),
    /// The request was sent but no answer came: it may or may not have applied.
    Unknown(String),
    Refused(Refused),
}

impl From<CallError> for StoreError {
    fn from(e: CallError) -> StoreError {
        match e {
            CallError::Unreachable(m) => StoreError::Io(format!("etcd unreachable: {m}")),
            CallError::Unknown(m) => StoreError::Io(format!(
                "etcd did not answer a write (its outcome is unknown): {m}"
            )),
            CallError::Refused(r) => StoreError::Io(format!(
                "etcd refused the request (code {}): {}{}",
                r.code,
                r.message,
                hint(&r.message)
            )),
        }
    }
}

/// What to change in etcd's settings for limits Berth's transactions can reach.
fn hint(message: &str) -> &'static str {
    if message.contains("too many operations") {
        " (start etcd with a larger --max-txn-ops, e.g. 10000; docs/replicas.md)"
    } else if message.contains("request is too large") {
        " (start etcd with a larger --max-request-bytes, e.g. 10485760; docs/replicas.md)"
    } else {
        ""
    }
}

/// A Berth store on an etcd cluster.
pub struct EtcdStore {
    config: EtcdConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Idle kept-alive connections, with the member each goes to.
    idle: Mutex<Vec<(usize, Conn)>>,
    /// The member calls go to first: the last one that answered.
    preferred: AtomicUsize,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the cluster and checks that a member answers.
    pub fn open(config: EtcdConfig) -> Result<EtcdStore, StoreError> {
        let tls = config
            .tls
            .as_ref()
            .map(EtcdTls::client_config)
            .transpose()?;
        // Each process starts at a member of its own, so that replicas spread their calls
        // over the members rather than all loading the first one listed.
        let first = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                d.subsec_nanos() as usize ^ std::process::id() as usize
            })
            % config.endpoints.len();
        let store = EtcdStore {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            preferred: AtomicUsize::new(first),
        };
        store.current_revision()?;
        Ok(store)
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    fn key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.config.namespace).into_bytes()
    }

    fn take_conn(&self, member: usize) -> io::Result<Conn> {
        let pooled = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .rposition(|(m, _)| *m == member)
                .map(|i| idle.swap_remove(i).1)
        };
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                let conn = Conn::open(&self.config.endpoints[member], self.tls.as_ref())?;
                conn.set_read_timeout(Some(CALL_TIMEOUT))?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, member: usize, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 64 {
            idle.push((member, conn));
        }
    }

    /// One call on one member: `Ok(Err(..))` when the member answered with an error.
    fn call_member(
        &self,
        member: usize,
        path: &str,
        body: &[u8],
    ) -> Result<(Head, Vec<u8>), (bool, io::Error)> {
        // A pooled connection the member has since closed fails at once: one fresh retry.
        for attempt in 0..2 {
            let mut conn = self.take_conn(member).map_err(|e| (false, e))?;
            let head = match conn.post(path, body) {
                Ok(head) => head,
                Err(e) if attempt == 0 && is_stale(&e) => continue,
                Err(e) => return Err((sent(&e), e)),
            };
            let body = conn.read_body(&head).map_err(|e| (true, e))?;
            if !head.close {
                self.give_back(member, conn);
            }
            return Ok((head, body));
        }
        Err((false, io::Error::other("no connection")))
    }

    /// POSTs `body` to `path`, trying members in turn; `write`: never resend a request
    /// that may have reached a member.
    fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        write: bool,
    ) -> Result<T, CallError> {
        let body = serde_json::to_vec(body).expect("JSON values serialise");
        let members = self.config.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..members {
            let member = (first + i) % members;
            let endpoint = &self.config.endpoints[member];
            match self.call_member(member, path, &body) {
                Ok((head, bytes)) if head.status == 200 => {
                    self.preferred.store(member, Ordering::Relaxed);
                    return serde_json::from_slice(&bytes).map_err(|e| {
                        CallError::Unknown(format!("{endpoint}: unreadable answer: {e}"))
                    });
                }
                Ok((head, bytes)) => {
                    let refused: wire::ErrorBody =
                        serde_json::from_slice(&bytes).unwrap_or_else(|_| wire::ErrorBody {
                            code: 0,
                            message: format!(
                                "HTTP {}: {}",
                                head.status,
                                String::from_utf8_lossy(&bytes)
                            ),
                        });
                    if write && maybe_applied(&refused) {
                        return Err(CallError::Unknown(format!(
                            "{endpoint}: {}",
                            refused.message
                        )));
                    }
                    if retry_elsewhere(&refused) {
                        failures.push(format!("{endpoint}: {}", refused.message));
                        continue;
                    }
                    return Err(CallError::Refused(Refused {
                        code: refused.code,
                        message: refused.message,
                    }));
                }
                Err((was_sent, e)) => {
                    if write && was_sent {
                        return Err(CallError::Unknown(format!("{endpoint}: {e}")));
                    }
                    failures.push(format!("{endpoint}: {e}"));
                }
            }
        }
        Err(CallError::Unreachable(failures.join("; ")))
    }

    fn range_raw(&self, request: Value) -> Result<wire::RangeResponse, CallError> {
        self.call("/v3/kv/range", &request, false)
    }

    fn kvs(&self, response: wire::RangeResponse) -> Result<Vec<KeyValue>, StoreError> {
        response
            .kvs
            .into_iter()
            .map(|kv| kv.into_kv(&self.config.namespace))
            .collect::<Result<_, _>>()
            .map_err(StoreError::Corrupt)
    }
}

/// A kept-alive connection the peer closed: the request never arrived.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Whether a failed exchange may have delivered the request (a timeout waiting for the
/// answer, or a connection lost after sending).
fn sent(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NotFound
            | io::ErrorKind::AddrNotAvailable
    )
}

/// Answers that mean "this member cannot serve now; another may" (no leader, stopping,
/// unavailable).
fn retry_elsewhere(e: &wire::ErrorBody) -> bool {
    const UNAVAILABLE: i64 = 14;
    e.code == UNAVAILABLE
        || e.message.contains("no leader")
        || e.message.contains("leader changed")
        || e.message.contains("server stopped")
        || e.message.contains("request timed out")
}

/// An error after which a write may still commit (etcd timed out waiting for it).
fn maybe_applied(e: &wire::ErrorBody) -> bool {
    e.message.contains("request timed out") || e.message.contains("leader changed")
}

/// etcd refuses two operations on one key in a transaction; the last one is what the
/// transaction means.
fn last_op_per_key(ops: &[Op]) -> Vec<&Op> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<&Op> = ops
        .iter()
        .rev()
        .filter(|op| seen.insert(op.key()))
        .collect();
    kept.reverse();
    kept
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self.range_raw(json!({ "key": b64(&self.key(key)) }))?;
        Ok(self.kvs(response)?.into_iter().next())
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let from = self.key(prefix);
        let end = wire::prefix_end(&from);
        let start = match start_after {
            Some(after) => {
                let mut after = self.key(after);
                after.push(0);
                after.max(from)
            }
            None => from,
        };
        let mut request = json!({ "key": b64(&start), "range_end": b64(&end) });
        if limit > 0 {
            request["limit"] = json!(limit.to_string());
        }
        let response = self.range_raw(request)?;
        self.kvs(response)
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        let ns = &self.config.namespace;
        let request = json!({
            "compare": compares.iter().map(|c| wire::compare(ns, c)).collect::<Vec<_>>(),
            "success": last_op_per_key(ops)
                .into_iter()
                .map(|op| wire::request_op(ns, op, None))
                .collect::<Vec<_>>(),
        });
        let response: wire::TxnResponse = self.call("/v3/kv/txn", &request, true)?;
        Ok(if response.succeeded {
            TxnOutcome::Committed(response.header.revision.max(0) as u64)
        } else {
            TxnOutcome::Conflict
        })
    }

    fn current_revision(&self) -> Result<Revision, StoreError> {
        // A read of one (absent) key: its header carries the cluster's revision.
        let response = self.range_raw(json!({ "key": b64(&self.key("")), "limit": "1" }))?;
        Ok(response.header.revision.max(0) as u64)
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError> {
        watch::start(self, prefix, after)
    }

    fn compact(&self, keep_after: Revision) -> Result<(), StoreError> {
        // etcd keeps the revision it compacts at: compacting at `keep_after + 1` makes a
        // watch from `keep_after` the oldest that works. etcd cannot compact the current
        // revision away, so the bound is one below it.
        let current = self.current_revision()?;
        let at = (keep_after + 1).min(current);
        if at <= 1 {
            return Ok(());
        }
        match self.call::<Value>(
            "/v3/kv/compaction",
            &json!({ "revision": at.to_string() }),
            true,
        ) {
            Ok(_) => Ok(()),
            // Compacting backwards is a no-op, as the trait says.
            Err(CallError::Refused(r)) if r.message.contains("compacted") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_members_and_prefix() {
        let c = EtcdConfig::parse("etcd://127.0.0.1:2379,10.0.0.2:2379").unwrap();
        assert_eq!(c.endpoints, ["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!(c.namespace, "berth/");
        let c = EtcdConfig::parse("etcd://h:1/prod/east/").unwrap();
        assert_eq!((c.endpoints.len(), c.namespace.as_str()), (1, "prod/east/"));
        for bad in ["http://h:1", "etcd://", "etcd://host"] {
            assert!(EtcdConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_transaction_keeps_the_last_operation_on_each_key() {
        let ops = [
            Op::put("a", "1"),
            Op::put("b", "1"),
            Op::delete("a"),
            Op::put("c", "1"),
        ];
        let kept: Vec<_> = last_op_per_key(&ops).into_iter().cloned().collect();
        assert_eq!(
            kept,
            [Op::put("b", "1"), Op::delete("a"), Op::put("c", "1")]
        );
    }
}
