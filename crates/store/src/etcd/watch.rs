//! Watches on etcd: one gateway stream per watcher, read by its own thread, which feeds the
//! watcher's channel and, when a member goes away, resumes on another from the revision
//! after the last one delivered, so the holder sees every revision once, in order. When the
//! history it needs has been compacted meanwhile, the channel closes and the holder re-reads
//! (as it does after `Compacted`). Dropping the watcher closes the stream at once.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::http::{Closer, Conn};
use super::{CALL_TIMEOUT, CallError, EtcdStore, wire};
use crate::{EventKind, Revision, StoreError, WatchEvent, Watcher};

/// What a watch asks etcd for, kept to resume it elsewhere.
struct Spec {
    endpoints: Vec<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    namespace: String,
    key: Vec<u8>,
    end: Vec<u8>,
}

type Messages = serde_json::StreamDeserializer<
    'static,
    serde_json::de::IoRead<Box<dyn Read + Send>>,
    wire::WatchMessage,
>;

/// The connection a watch currently reads, closed when the watcher is dropped.
#[derive(Default)]
struct Shared {
    closer: Mutex<Option<Closer>>,
    dropped: AtomicBool,
}

impl Shared {
    /// Installs the new stream's closer; `false` when the watcher is already gone.
    fn replace(&self, closer: Closer) -> bool {
        let mut slot = self.closer.lock().unwrap_or_else(|p| p.into_inner());
        if self.dropped.load(Ordering::SeqCst) {
            return false; // `closer` drops here, closing the new stream
        }
        *slot = Some(closer);
        true
    }
}

struct Guard(Arc<Shared>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
        let closer = self
            .0
            .closer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(closer);
    }
}

pub(super) fn start(
    store: &EtcdStore,
    prefix: &str,
    after: Revision,
) -> Result<Watcher, StoreError> {
    let key = store.key(prefix);
    let spec = Spec {
        endpoints: store.config.endpoints.clone(),
        tls: store.tls.clone(),
        namespace: store.config.namespace.clone(),
        end: wire::prefix_end(&key),
        key,
    };
    let first = store.preferred.load(Ordering::Relaxed);
    let (conn, mut messages, revision) = open_any(&spec, first, after + 1)
        .map_err(|e| StoreError::Io(format!("etcd watch: {e}")))?;
    // History from `after` must still be kept: a read at that revision tells (etcd then
    // cancels the new watch with the revision it compacted to).
    if after < revision {
        let probe = store.range_raw(json!({
            "key": wire::b64(&spec.key),
            "limit": "1",
            "revision": (after + 1).to_string(),
        }));
        match probe {
            Ok(_) => {}
            Err(CallError::Refused(r)) if r.code == wire::CODE_OUT_OF_RANGE => {
                let oldest = compacted_to(&mut messages).unwrap_or(after + 1);
                return Err(StoreError::Compacted {
                    requested: after,
                    oldest: oldest.saturating_sub(1),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    let shared = Arc::new(Shared::default());
    let closer = conn.map_err(|e| StoreError::Io(format!("etcd watch: {e}")))?;
    shared.replace(closer);
    let (tx, rx) = unbounded_channel();
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("etcd-watch".into())
        .spawn(move || follow(spec, first, messages, after, tx, thread_shared))
        .map_err(|e| StoreError::Io(format!("starting a watch thread: {e}")))?;
    Ok(Watcher::holding(rx, Box::new(Guard(shared))))
}

/// Reads a just-created stream's cancellation for compaction: the compact revision.
fn compacted_to(messages: &mut Messages) -> Option<Revision> {
    for message in messages.by_ref().take(4) {
        let result = message.ok()?.result?;
        if result.canceled {
            return (result.compact_revision > 0).then_some(result.compact_revision as u64);
        }
    }
    None
}

/// Opens a watch stream from `start` on the first member that takes it: its closer, the
/// messages after the `created` one, and the cluster revision at creation.
#[allow(clippy::type_complexity)]
fn open_any(
    spec: &Spec,
    first: usize,
    start: Revision,
) -> Result<(std::io::Result<Closer>, Messages, Revision), String> {
    let mut failures = Vec::new();
    for i in 0..spec.endpoints.len() {
        let member = (first + i) % spec.endpoints.len();
        match open(spec, member, start) {
            Ok(opened) => return Ok(opened),
            Err(e) => failures.push(format!("{}: {e}", spec.endpoints[member])),
        }
    }
    Err(failures.join("; "))
}

#[allow(clippy::type_complexity)]
fn open(
    spec: &Spec,
    member: usize,
    start: Revision,
) -> Result<(std::io::Result<Closer>, Messages, Revision), String> {
    let mut conn =
        Conn::open(&spec.endpoints[member], spec.tls.as_ref()).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(CALL_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let body = json!({
        "create_request": {
            "key": wire::b64(&spec.key),
            "range_end": wire::b64(&spec.end),
            "start_revision": start.to_string(),
        }
    });
    let head = conn
        .post("/v3/watch", &serde_json::to_vec(&body).expect("JSON"))
        .map_err(|e| e.to_string())?;
    if head.status != 200 {
        let text = conn.read_body(&head).unwrap_or_default();
        return Err(format!(
            "HTTP {}: {}",
            head.status,
            String::from_utf8_lossy(&text)
        ));
    }
    let closer = conn.closer();
    let unbounded = conn.set_read_timeout(None);
    let mut messages: Messages =
        serde_json::Deserializer::from_reader(conn.into_stream(&head)).into_iter();
    let created = match messages.next() {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Err(format!("reading the watch's first answer: {e}")),
        None => return Err("the watch stream ended at once".into()),
    };
    match created.result {
        Some(r) if r.created => {
            unbounded.map_err(|e| e.to_string())?;
            Ok((closer, messages, r.header.revision.max(0) as u64))
        }
        _ => Err(format!(
            "etcd did not create the watch: {:?}",
            created.error
        )),
    }
}

/// The watch's thread: deliver, and resume after a lost stream, until the watcher is
/// dropped or the history to resume from is gone.
fn follow(
    spec: Spec,
    mut member: usize,
    mut messages: Messages,
    mut delivered: Revision,
    tx: UnboundedSender<WatchEvent>,
    shared: Arc<Shared>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match deliver(&spec, &mut messages, &mut delivered, &tx) {
            Ended::Closed => return,
            Ended::Lost(why) => {
                if shared.dropped.load(Ordering::SeqCst) || tx.is_closed() {
                    return;
                }
                tracing::warn!(error = %why, revision = delivered, "etcd watch lost; resuming");
            }
        }
        // Resume on the next member from the revision after the last delivered.
        loop {
            if shared.dropped.load(Ordering::SeqCst) || tx.is_closed() {
                return;
            }
            member = (member + 1) % spec.endpoints.len();
            match open(&spec, member, delivered + 1) {
                Ok((Ok(closer), resumed, _)) => {
                    if !shared.replace(closer) {
                        return;
                    }
                    messages = resumed;
                    backoff = Duration::from_millis(100);
                    break;
                }
                Ok((Err(_), _, _)) | Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

enum Ended {
    /// Nothing more will come: the watcher is gone, or etcd compacted what is needed.
    Closed,
    /// The stream broke; resume elsewhere.
    Lost(String),
}

fn deliver(
    spec: &Spec,
    messages: &mut Messages,
    delivered: &mut Revision,
    tx: &UnboundedSender<WatchEvent>,
) -> Ended {
    for message in messages.by_ref() {
        let message = match message {
            Ok(m) => m,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let Some(result) = message.result else {
            return Ended::Lost(format!("gateway error {:?}", message.error));
        };
        if result.canceled {
            if result.compact_revision > 0 {
                tracing::warn!(
                    revision = *delivered,
                    compacted = result.compact_revision,
                    "etcd compacted the history a watch needs; its holder re-reads"
                );
                return Ended::Closed;
            }
            return Ended::Lost(format!("watch canceled: {}", result.cancel_reason));
        }
        // A revision's events all arrive in one message (etcd never splits a revision
        // across messages): skip what a resumed stream replays, then count it delivered.
        let floor = *delivered;
        for event in result.events {
            let kind = match event.kind.as_deref() {
                Some("DELETE") => EventKind::Delete,
                _ => EventKind::Put,
            };
            let kv = match event.kv.into_kv(&spec.namespace) {
                Ok(kv) => kv,
                Err(e) => return Ended::Lost(e),
            };
            if kv.mod_revision <= floor {
                continue;
            }
            let revision = kv.mod_revision;
            if tx.send(WatchEvent { kind, kv }).is_err() {
                return Ended::Closed;
            }
            *delivered = (*delivered).max(revision);
        }
    }
    Ended::Lost("the stream ended".into())
}
