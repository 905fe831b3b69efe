//! AWS Signature Version 4, pure and synchronous: verifies the `Authorization` header and
//! presigned-URL forms that the aws CLI, boto3 and the AWS SDKs send to Berth, and signs
//! requests the same way for Berth's own clients and tests. No HTTP types, no I/O: the
//! caller hands in the request's parts, a credential lookup and the current time.

mod canonical;
mod error;
mod sign;
mod verify;

pub use canonical::{EMPTY_PAYLOAD_SHA256, UNSIGNED_PAYLOAD, sha256_hex};
pub use error::SigV4Error;
pub use sign::{HeaderSignature, SigningParams, presign, sign};
pub use verify::{MAX_CLOCK_SKEW, MAX_PRESIGNED_EXPIRES_SECS, verify};

use std::collections::HashMap;

/// The parts of an HTTP request that SigV4 covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The raw path, still percent-encoded as received.
    pub path: &'a str,
    /// The raw query string without the `?`, still percent-encoded.
    pub query: Option<&'a str>,
    /// Name and value as received: any case, repeated names allowed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, computed by the caller. `None` means "trust the
    /// `x-amz-content-sha256` header if there is one, else expect `UNSIGNED-PAYLOAD`".
    pub payload_sha256: Option<&'a str>,
}

/// Finds the secret access key for an access key id.
pub trait CredentialLookup {
    fn secret_for(&self, access_key_id: &str) -> Option<String>;
}

impl CredentialLookup for HashMap<String, String> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.get(access_key_id).cloned()
    }
}

/// Who signed a request that verified, and for what scope. The caller checks that
/// `service` and `region` are the ones it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// The signing time, from `X-Amz-Date` (or `Date`).
    pub date: time::OffsetDateTime,
    /// True when the signature came in the query string (a presigned URL).
    pub presigned: bool,
}
