//! etcd's v3 API as its JSON gateway speaks it (the protobuf messages of `etcdserverpb`
//! in proto3's JSON mapping): bytes are base64, 64-bit integers are strings, and fields at
//! their default value (0, false, an empty list, PUT as an event type) are left out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::{Compare, KeyValue, Op};

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(s)
        .map_err(|e| format!("etcd sent bad base64: {e}"))
}

/// A proto3 JSON int64: a string, or a number.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom("int64 out of range")),
        Value::Null => Ok(0),
        other => Err(serde::de::Error::custom(format!("not an int64: {other}"))),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Header {
    #[serde(default, deserialize_with = "int64")]
    pub(crate) revision: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireKv {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    create_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
}

impl WireKv {
    /// The key-value with the installation's key prefix taken off.
    pub(crate) fn into_kv(self, namespace: &str) -> Result<KeyValue, String> {
        let key = String::from_utf8(unb64(&self.key)?)
            .map_err(|_| "etcd sent a key that is not UTF-8".to_owned())?;
        let key = key
            .strip_prefix(namespace)
            .ok_or_else(|| format!("etcd sent key {key:?} outside {namespace:?}"))?
            .to_owned();
        Ok(KeyValue {
            key,
            value: unb64(&self.value)?,
            create_revision: self.create_revision.max(0) as u64,
            mod_revision: self.mod_revision.max(0) as u64,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeResponse {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) kvs: Vec<WireKv>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TxnResponse {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) succeeded: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LeaseGrantResponse {
    #[serde(default, rename = "ID", deserialize_with = "int64")]
    pub(crate) id: i64,
    #[serde(default, rename = "TTL", deserialize_with = "int64")]
    pub(crate) ttl: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LeaseKeepAliveResponse {
    #[serde(default)]
    pub(crate) result: LeaseKeepAliveResult,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LeaseKeepAliveResult {
    #[serde(default, rename = "TTL", deserialize_with = "int64")]
    pub(crate) ttl: i64,
}

/// One message of a watch stream: `{"result": {...}}`, or `{"error": {...}}` when the
/// gateway's stream fails.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatchMessage {
    #[serde(default)]
    pub(crate) result: Option<WatchResult>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatchResult {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) created: bool,
    #[serde(default)]
    pub(crate) canceled: bool,
    #[serde(default, deserialize_with = "int64")]
    pub(crate) compact_revision: i64,
    #[serde(default)]
    pub(crate) cancel_reason: String,
    #[serde(default)]
    pub(crate) events: Vec<WireEvent>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireEvent {
    /// Absent for PUT (proto3 leaves the zero value out), `"DELETE"` for deletes.
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) kv: WireKv,
}

/// An error answer of the gateway: `{"error": "...", "code": 9, "message": "..."}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) code: i64,
    #[serde(default)]
    pub(crate) message: String,
}

/// gRPC's OUT_OF_RANGE: etcd answers a read or watch of compacted history with it.
pub(crate) const CODE_OUT_OF_RANGE: i64 = 11;

pub(crate) fn compare(namespace: &str, c: &Compare) -> Value {
    match c {
        Compare::ModRevision(key, rev) => json!({
            "target": "MOD",
            "key": b64(format!("{namespace}{key}").as_bytes()),
            "mod_revision": rev.to_string(),
        }),
        Compare::CreateRevision(key, rev) => json!({
            "target": "CREATE",
            "key": b64(format!("{namespace}{key}").as_bytes()),
            "create_revision": rev.to_string(),
        }),
    }
}

pub(crate) fn request_op(namespace: &str, op: &Op, lease: Option<i64>) -> Value {
    match op {
        Op::Put { key, value } => {
            let mut put = json!({
                "key": b64(format!("{namespace}{key}").as_bytes()),
                "value": b64(value),
            });
            if let Some(lease) = lease {
                put["lease"] = json!(lease.to_string());
            }
            json!({ "request_put": put })
        }
        Op::Delete { key } => json!({
            "request_delete_range": { "key": b64(format!("{namespace}{key}").as_bytes()) }
        }),
    }
}

/// The first key after every key starting with `prefix` (etcd's `range_end` for a prefix);
/// `"\0"` (every key from the start) when no such key exists.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_exactly_the_prefix() {
        assert_eq!(prefix_end(b"berth/"), b"berth0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn gateway_messages_parse_with_defaults_left_out() {
        let m: WatchMessage = serde_json::from_str(
            r#"{"result":{"header":{"revision":"7"},"events":[
                {"kv":{"key":"bnMvYQ==","create_revision":"2","mod_revision":"7","version":"3","value":"eA=="}},
                {"type":"DELETE","kv":{"key":"bnMvYg==","mod_revision":"7"}}]}}"#,
        )
        .unwrap();
        let r = m.result.unwrap();
        assert_eq!(r.header.revision, 7);
        assert!(!r.created && !r.canceled);
        let kinds: Vec<_> = r.events.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(kinds, [None, Some("DELETE".to_owned())]);
        let kvs: Vec<_> = r
            .events
            .into_iter()
            .map(|e| e.kv.into_kv("ns/").unwrap())
            .collect();
        assert_eq!(kvs[0].key, "a");
        assert_eq!(kvs[0].value, b"x");
        assert_eq!((kvs[0].create_revision, kvs[0].mod_revision), (2, 7));
        assert_eq!((kvs[1].key.as_str(), kvs[1].value.len()), ("b", 0));
        let txn: TxnResponse = serde_json::from_str(r#"{"header":{"revision":"3"}}"#).unwrap();
        assert!(!txn.succeeded);
        assert!(WireKv::default().into_kv("ns/").is_err());
    }
}
