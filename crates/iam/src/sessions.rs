//! Temporary credentials (STS): an `ASIA…` access key, its secret and a session token,
//! valid until an expiry, acting as the principal they were issued to. GetSessionToken
//! issues them to the caller itself; AssumeRole (next) to a role's session. Kept in the
//! store under `iam/sessions/{key id}` so every replica accepts them; a request signed with
//! one must carry its token (`X-Amz-Security-Token`) and is refused once it expired.

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::{Iam, IamError, Principal, Result, decode, encode, ids, now_epoch};

/// Temporary credentials as STS hands them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Seconds since the epoch.
    pub expiration: f64,
    pub principal: Principal,
}

/// What a request signed with a session key must still pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    Valid,
    /// The request carried no token or another one.
    WrongToken,
    Expired,
}

fn session_key(id: &str) -> String {
    format!("iam/sessions/{id}")
}

impl Session {
    /// Whether a request carrying `token` at `now` may use these credentials.
    pub fn check(&self, token: Option<&str>, now: f64) -> SessionCheck {
        if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.session_token.as_bytes())) {
            SessionCheck::WrongToken
        } else if now >= self.expiration {
            SessionCheck::Expired
        } else {
            SessionCheck::Valid
        }
    }
}

/// Compares two secrets in time that depends on their length only, not on where they first
/// differ (a timing side channel would let a caller guess a token byte by byte).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Iam {
    /// Issues temporary credentials acting as `principal` for `seconds`.
    pub fn issue_session(&self, principal: Principal, seconds: i64) -> Result<Session> {
        loop {
            let session = Session {
                access_key_id: ids::session_key_id(),
                secret_access_key: ids::secret(),
                session_token: ids::session_token(),
                expiration: (now_epoch() as i64 + seconds) as f64,
                principal: principal.clone(),
            };
            let key = session_key(&session.access_key_id);
            if let TxnOutcome::Committed(_) = self.store.txn(
                &[Compare::ModRevision(key.clone(), 0)],
                &[Op::put(&key, encode(&session))],
            )? {
                return Ok(session);
            }
        }
    }

    /// The session of a temporary access key id, if there is one.
    pub fn session(&self, id: &str) -> Result<Option<Session>> {
        let key = session_key(id);
        match self.store.get(&key)? {
            Some(kv) => decode(&key, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets sessions that expired more than `grace_seconds` ago; how many (run by the
    /// leader).
    pub fn forget_expired_sessions(&self, grace_seconds: f64) -> Result<usize> {
        let cutoff = now_epoch() - grace_seconds;
        let mut gone = 0;
        for kv in self.store.range("iam/sessions/", None, 0)? {
            let Ok(session) = decode::<Session>(&kv.key, &kv.value) else {
                continue;
            };
            if session.expiration < cutoff
                && self
                    .store
                    .txn(
                        &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                        &[Op::delete(&kv.key)],
                    )?
                    .is_committed()
            {
                gone += 1;
            }
        }
        Ok(gone)
    }
}

/// GetSessionToken's duration bounds (seconds): 15 minutes to 36 hours, 12 by default; at
/// most an hour for the account's root.
pub fn session_token_duration(requested: Option<i64>, root: bool, min: i64) -> Result<i64> {
    let max = if root { 3600 } else { 129_600 };
    let seconds = requested.unwrap_or(if root { 3600 } else { 43_200 });
    if seconds < min {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"
        )));
    }
    if seconds > 129_600 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600"
        )));
    }
    Ok(seconds.min(max))
}
