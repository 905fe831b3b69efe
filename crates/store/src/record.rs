//! Records as every domain crate stores them: JSON (serde) values, with the time they
//! carry in seconds since the epoch (millisecond resolution, as AWS's timestamps).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{KeyValue, StoreError};

/// The record in `kv`; one that does not read is `StoreError::Corrupt` naming its key.
pub fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T, StoreError> {
    serde_json::from_slice(&kv.value).map_err(|e| StoreError::Corrupt(format!("{}: {e}", kv.key)))
}

/// A record's bytes.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

/// Now, in seconds since the epoch, to the millisecond.
pub fn now_epoch() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs() as f64 + f64::from(since.subsec_millis()) / 1000.0
}
