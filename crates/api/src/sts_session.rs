//! What STS's actions share: the shortest session they issue and the `Credentials` shape.

use crate::protocol::query::Xml;

/// The shortest session STS issues, seconds (`BERTH_STS_MIN_SESSION_SECONDS` lowers it for
/// tests that watch credentials expire).
pub(crate) fn min_session_seconds() -> i64 {
    std::env::var("BERTH_STS_MIN_SESSION_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(900)
}

/// STS's `Credentials` shape.
pub(crate) fn credentials_xml(x: &mut Xml, session: &berth_iam::Session) {
    x.leaf("AccessKeyId", &session.access_key_id)
        .leaf("SecretAccessKey", &session.secret_access_key)
        .leaf("SessionToken", &session.session_token)
        .leaf("Expiration", crate::iam::iso8601(session.expiration));
}
