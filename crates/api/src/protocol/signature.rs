//! SigV4 over an incoming request: the canonical parts taken from the request itself,
//! checked against the root credentials (`berth_sigv4`), AWS's error on failure.

use axum::http::{HeaderMap, StatusCode};

use crate::AppState;
use crate::protocol::AwsError;

pub fn authenticate(
    app: &AppState,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<berth_sigv4::Verified, AwsError> {
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
    berth_sigv4::verify(&parts, &app.credentials, time::OffsetDateTime::now_utc()).map_err(|e| {
        AwsError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
            e.aws_code(),
            e.message(),
        )
    })
}
