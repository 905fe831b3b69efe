//! etcd leases, for replicas: a lease a replica keeps alive, and keys that live only as long
//! as it (the leader key).

use serde_json::json;

use super::{CallError, EtcdStore, wire};
use crate::{Revision, StoreError};

/// An etcd lease id.
pub type LeaseId = i64;

impl EtcdStore {
    /// A new lease that expires `ttl_seconds` after its last renewal (etcd may round a
    /// short TTL up to its minimum).
    pub fn grant_lease(&self, ttl_seconds: u64) -> Result<(LeaseId, u64), StoreError> {
        let granted: wire::LeaseGrantResponse = self.call(
            "/v3/lease/grant",
            &json!({ "TTL": ttl_seconds.to_string() }),
            true,
        )?;
        Ok((granted.id, granted.ttl.max(0) as u64))
    }

    /// Renews a lease: the seconds it now has to live, or 0 when it has expired (its keys
    /// are gone).
    pub fn keep_alive(&self, lease: LeaseId) -> Result<u64, StoreError> {
        let answer: wire::LeaseKeepAliveResponse = self.call(
            "/v3/lease/keepalive",
            &json!({ "ID": lease.to_string() }),
            false,
        )?;
        Ok(answer.result.ttl.max(0) as u64)
    }

    /// Ends a lease at once, deleting its keys (a replica that stops hands over at once).
    pub fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self.call::<serde_json::Value>(
            "/v3/lease/revoke",
            &json!({ "ID": lease.to_string() }),
            true,
        ) {
            Ok(_) => Ok(()),
            Err(CallError::Refused(r)) if r.message.contains("lease not found") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `key` attached to `lease` only if the key does not exist: the key's create
    /// revision when this call made it.
    pub fn create_with_lease(
        &self,
        key: &str,
        value: &[u8],
        lease: LeaseId,
    ) -> Result<Option<Revision>, StoreError> {
        let ns = &self.config.namespace;
        let request = json!({
            "compare": [wire::compare(ns, &crate::Compare::CreateRevision(key.to_owned(), 0))],
            "success": [wire::request_op(ns, &crate::Op::put(key, value), Some(lease))],
        });
        let response: wire::TxnResponse = self.call("/v3/kv/txn", &request, true)?;
        Ok(response
            .succeeded
            .then_some(response.header.revision.max(0) as u64))
    }
}
