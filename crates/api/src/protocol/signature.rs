//! SigV4 over an incoming request: the canonical parts taken from the request itself,
//! checked against the root credentials (`berth_sigv4`), AWS's error on failure.

use axum::http::{HeaderMap, StatusCode};

use crate::AppState;
use crate::protocol::AwsError;

/// Checks a request's SigV4 signature. `query`: the request speaks the Query protocol, whose
/// services name the same failures with other codes.
pub fn authenticate(
    app: &AppState,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    query: bool,
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
            if query { e.query_code() } else { e.aws_code() },
            e.message(),
        )
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
