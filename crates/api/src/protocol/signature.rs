//! SigV4 over an incoming request: the canonical parts taken from the request itself,
//! checked against the root credentials (`berth_sigv4`), AWS's error on failure.

use std::cell::RefCell;

use axum::http::{HeaderMap, StatusCode};
use berth_iam::Principal;

use crate::AppState;
use crate::protocol::AwsError;

/// A request whose signature verified, and who signed it.
pub struct Authenticated {
    pub verified: berth_sigv4::Verified,
    pub principal: Principal,
    /// Signed with temporary credentials (an STS session).
    pub temporary: bool,
}

/// The keys requests may be signed with: the account's root credentials, and IAM users'
/// active access keys (found in the store). Remembers whose key it gave out.
struct Keys<'a> {
    app: &'a AppState,
    found: RefCell<Option<Principal>>,
    /// The temporary credentials the key belongs to, when it is one.
    session: RefCell<Option<berth_iam::Session>>,
}

impl berth_sigv4::CredentialLookup for Keys<'_> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        let root = &self.app.credentials;
        if access_key_id == root.access_key_id {
            *self.found.borrow_mut() = Some(Principal::Root {
                account: self.app.account.to_string(),
            });
            return Some(root.secret_access_key.clone());
        }
        if access_key_id.starts_with("ASIA") {
            return match self.app.iam.session(access_key_id) {
                Ok(Some(session)) => {
                    let secret = session.secret_access_key.clone();
                    *self.found.borrow_mut() = Some(session.principal.clone());
                    *self.session.borrow_mut() = Some(session);
                    Some(secret)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a session");
                    None
                }
            };
        }
        match self.app.iam.signing_key(access_key_id) {
            Ok(Some((secret, principal))) => {
                *self.found.borrow_mut() = Some(principal);
                Some(secret)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read an access key");
                None
            }
        }
    }
}

/// Checks a request's SigV4 signature. `query`: the request speaks the Query protocol, whose
/// services name the same failures with other codes.
pub fn authenticate(
    app: &AppState,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    query: bool,
) -> Result<Authenticated, AwsError> {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let payload = berth_sigv4::sha256_hex(body);
    let parts = berth_sigv4::RequestParts {
        method,
        path: uri.path(),
        query: uri.query(),
        headers: &pairs,
        payload_sha256: Some(&payload),
    };
    let keys = Keys {
        app,
        found: RefCell::new(None),
        session: RefCell::new(None),
    };
    let verified =
        berth_sigv4::verify(&parts, &keys, time::OffsetDateTime::now_utc()).map_err(|e| {
            AwsError::new(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
                if query { e.query_code() } else { e.aws_code() },
                e.message(),
            )
        })?;
    let principal = keys
        .found
        .into_inner()
        .ok_or_else(|| AwsError::server("the signing key's owner was not recorded"))?;
    let session = keys.session.into_inner();
    if let Some(session) = &session {
        check_session(session, uri, headers, query)?;
    }
    Ok(Authenticated {
        verified,
        principal,
        temporary: session.is_some(),
    })
}

/// The service named by a request's credential scope (`…/REGION/SERVICE/aws4_request`), in
/// its `Authorization` header or a presigned URL's `X-Amz-Credential`; read before the
/// signature is checked, to answer even a refusal in the service's protocol.
pub fn scope_service(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or("").to_string());
    let credential = from_header.or_else(|| {
        uri.query()?
            .split('&')
            .find_map(|kv| kv.strip_prefix("X-Amz-Credential="))
            .map(|c| c.replace("%2F", "/").replace("%2f", "/"))
    })?;
    credential.split('/').nth(3).map(str::to_string)
}

/// A request signed with temporary credentials carries their session token
/// (`X-Amz-Security-Token`, as a header or in a presigned URL) and comes before they expire.
fn check_session(
    session: &berth_iam::Session,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    query: bool,
) -> Result<(), AwsError> {
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            uri.query()?
                .split('&')
                .find_map(|kv| kv.strip_prefix("X-Amz-Security-Token="))
                .map(crate::protocol::query::percent_decode)
        });
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    match session.check(token.as_deref(), now) {
        berth_iam::SessionCheck::Valid => Ok(()),
        berth_iam::SessionCheck::WrongToken => Err(AwsError::new(
            StatusCode::FORBIDDEN,
            if query {
                "InvalidClientTokenId"
            } else {
                "UnrecognizedClientException"
            },
            "The security token included in the request is invalid.",
        )),
        berth_iam::SessionCheck::Expired => Err(if query {
            AwsError::new(
                StatusCode::FORBIDDEN,
                "ExpiredToken",
                "The security token included in the request is expired",
            )
        } else {
            AwsError::client(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        }),
    }
}
