//! Verifies a request's SigV4 signature, header or presigned form, checking in the order
//! AWS's JSON services do so that a client gets the same error AWS would give it.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::canonical::{
    ALGORITHM, AMZ_DATE, CanonicalInput, EMPTY_PAYLOAD_SHA256, TERMINATOR, UNSIGNED_PAYLOAD,
    canonical_request, credential_scope, format_amz_date, parse_query, signature_matches,
    signing_key, string_to_sign,
};
use crate::{CredentialLookup, RequestParts, SigV4Error, Verified};

/// How far a request's time may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);
/// The longest `X-Amz-Expires` accepted: one week, as AWS allows.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// The `Date` header's format, RFC 7231's IMF-fixdate: `Sun, 30 Aug 2015 12:36:00 GMT`.
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// The authentication data, from the `Authorization` header or the query string.
struct AuthFields {
    algorithm: String,
    credential: String,
    signed_headers: String,
    signature: String,
    /// The raw date and whether it came from the `Date` header (which may be an HTTP date).
    date: (String, bool),
    expires: Option<String>,
    presigned: bool,
}

/// Verifies `req`'s signature against the secret `creds` holds for its access key, at
/// server time `now`.
pub fn verify(
    req: &RequestParts<'_>,
    creds: &dyn CredentialLookup,
    now: OffsetDateTime,
) -> Result<Verified, SigV4Error> {
    let query = parse_query(req.query);
    let authorization = first_header(req.headers, "authorization");
    let query_auth = query.iter().any(|(name, _)| name == b"X-Amz-Algorithm");
    let fields = match (authorization, query_auth) {
        (Some(_), true) => {
            return Err(SigV4Error::IncompleteSignature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' \
                 as HTTP header."
                    .to_owned(),
            ));
        }
        (None, false) => return Err(SigV4Error::MissingAuthenticationToken),
        // Another scheme (Basic, Bearer, SigV2) is not a SigV4 attempt at all.
        (Some(header), false) if !header.starts_with("AWS4-") => {
            return Err(SigV4Error::MissingAuthenticationToken);
        }
        (Some(header), false) => parse_authorization(header, req.headers)?,
        (None, true) => parse_presigned(&query)?,
    };

    let date = parse_date(&fields.date.0, fields.date.1)?;
    let amz_date = format_amz_date(date);
    check_time(date, fields.expires.as_deref(), now)?;

    let signed_headers: Vec<String> = fields
        .signed_headers
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if !signed_headers
        .iter()
        .any(|name| name == "host" || name == ":authority")
    {
        return Err(SigV4Error::InvalidSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }

    if fields.algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
            fields.algorithm
        )));
    }

    // AWS ignores trailing slashes here.
    let credential = fields.credential.trim_end_matches('/');
    let [access_key_id, scope_date, region, service, terminator] =
        <[&str; 5]>::try_from(credential.split('/').collect::<Vec<_>>()).map_err(|_| {
            SigV4Error::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, \
                 e.g. keyid/date/region/service/term, got '{credential}'"
            ))
        })?;
    check_scope(scope_date, region, terminator, &amz_date)?;

    let secret = creds
        .secret_for(access_key_id)
        .ok_or(SigV4Error::UnrecognizedClient)?;

    let signed_names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    let scope = credential_scope(scope_date, region, service);
    let key = signing_key(&secret, scope_date, region, service);
    let mut first_attempt = None;
    for payload_hash in payload_hash_candidates(req, &query, fields.presigned) {
        let canonical = canonical_request(&CanonicalInput {
            method: req.method,
            path: req.path,
            query: &query,
            skip_signature_param: fields.presigned,
            headers: req.headers,
            signed_headers: &signed_names,
            payload_hash: &payload_hash,
            service,
        });
        let to_sign = string_to_sign(&amz_date, &scope, &canonical);
        if signature_matches(&key, &to_sign, &fields.signature) {
            return Ok(Verified {
                access_key_id: access_key_id.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
                date,
                presigned: fields.presigned,
            });
        }
        first_attempt.get_or_insert((canonical, to_sign));
    }
    let (canonical_request, string_to_sign) = first_attempt.unwrap_or_default();
    Err(SigV4Error::SignatureDoesNotMatch {
        canonical_request,
        string_to_sign,
    })
}

/// The first value of a header, trimmed.
fn first_header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`. Parameters may be
/// separated by commas, spaces or both.
fn parse_authorization(header: &str, headers: &[(&str, &str)]) -> Result<AuthFields, SigV4Error> {
    let (algorithm, params) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for param in params
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|p| !p.is_empty())
    {
        let Some((name, value)) = param.split_once('=') else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "'{param}' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{header}'."
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        *slot = Some(value.to_owned()).filter(|v| !v.is_empty());
    }
    let date = first_header(headers, "x-amz-date")
        .map(|d| (d.to_owned(), false))
        .or_else(|| first_header(headers, "date").map(|d| (d.to_owned(), true)));

    let mut message = String::new();
    for (param, value) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if value.is_none() {
            message.push_str(&format!(
                "Authorization header requires '{param}' parameter. "
            ));
        }
    }
    if date.is_none() {
        message.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. ",
        );
    }
    match (credential, signed_headers, signature, date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(date)) => Ok(AuthFields {
            algorithm: algorithm.to_owned(),
            credential,
            signed_headers,
            signature,
            date,
            expires: None,
            presigned: false,
        }),
        _ => Err(SigV4Error::IncompleteSignature(format!(
            "{message}Authorization={header}"
        ))),
    }
}

/// Reads the `X-Amz-*` parameters of a presigned URL.
fn parse_presigned(query: &[(Vec<u8>, Vec<u8>)]) -> Result<AuthFields, SigV4Error> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .filter(|value| !value.is_empty())
    };
    let algorithm = param("X-Amz-Algorithm");
    let credential = param("X-Amz-Credential");
    let signature = param("X-Amz-Signature");
    let signed_headers = param("X-Amz-SignedHeaders");
    let date = param("X-Amz-Date");

    let mut message = String::new();
    for (name, value) in [
        ("X-Amz-Algorithm", &algorithm),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Signature", &signature),
        ("X-Amz-SignedHeaders", &signed_headers),
        ("X-Amz-Date", &date),
    ] {
        if value.is_none() {
            message.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    match (algorithm, credential, signature, signed_headers, date) {
        (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) => {
            Ok(AuthFields {
                algorithm,
                credential,
                signed_headers,
                signature,
                date: (date, false),
                expires: param("X-Amz-Expires"),
                presigned: true,
            })
        }
        _ => Err(SigV4Error::IncompleteSignature(format!(
            "{message}Re-examine the query-string parameters."
        ))),
    }
}

/// `X-Amz-Date` is ISO 8601 basic format; a `Date` header may also be an HTTP date.
fn parse_date(raw: &str, from_date_header: bool) -> Result<OffsetDateTime, SigV4Error> {
    PrimitiveDateTime::parse(raw, AMZ_DATE)
        .or_else(|e| match from_date_header {
            true => PrimitiveDateTime::parse(raw, HTTP_DATE),
            false => Err(e),
        })
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            SigV4Error::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format'. Got '{raw}'. \
                 See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })
}

/// Refuses a request dated more than [`MAX_CLOCK_SKEW`] away from `now`; a presigned URL
/// instead stays valid until its `X-Amz-Expires` runs out.
fn check_time(
    date: OffsetDateTime,
    expires: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let skew_minutes = MAX_CLOCK_SKEW.whole_minutes();
    let latest = now + MAX_CLOCK_SKEW;
    if date > latest {
        return Err(SigV4Error::SignatureExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + {skew_minutes} min.)",
            format_amz_date(date),
            format_amz_date(latest),
            format_amz_date(now),
        )));
    }
    match expires {
        None => {
            let earliest = now - MAX_CLOCK_SKEW;
            if date < earliest {
                return Err(SigV4Error::SignatureExpired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {skew_minutes} min.)",
                    format_amz_date(date),
                    format_amz_date(earliest),
                    format_amz_date(now),
                )));
            }
        }
        Some(expires) => {
            let Ok(secs) = expires.parse::<u64>() else {
                return Err(SigV4Error::IncompleteSignature(
                    "X-Amz-Expires should be a number".to_owned(),
                ));
            };
            if secs > MAX_PRESIGNED_EXPIRES_SECS {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "X-Amz-Expires must be less than a week (in seconds); that is, the given \
                     X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES_SECS} seconds"
                )));
            }
            // secs ≤ one week, so the cast cannot wrap; and date ≤ now + 15 min here, so
            // adding a week stays far inside the representable range.
            if now > date + Duration::seconds(secs as i64) {
                return Err(SigV4Error::SignatureExpired(
                    "Request has expired".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the parts of the credential scope that must agree with the request itself.
/// Region and service are the caller's to check against what it serves.
fn check_scope(
    scope_date: &str,
    region: &str,
    terminator: &str,
    amz_date: &str,
) -> Result<(), SigV4Error> {
    let mut problems = Vec::new();
    if region.is_empty() {
        problems.push("Credential should be scoped to a valid region, not ''.".to_owned());
    }
    if terminator != TERMINATOR {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
             '{terminator}'."
        ));
    }
    if scope_date != &amz_date[..8] {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
            &amz_date[..8]
        ));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(SigV4Error::InvalidSignature(problems.join(" "))),
    }
}

/// The payload hashes a genuine signature may have used, most likely first.
///
/// A declared `x-amz-content-sha256` is what clients sign, but when the caller hashed the
/// body itself that hash is used instead, so that a body altered in transit fails. A
/// presigned URL is signed either over `UNSIGNED-PAYLOAD` (S3 style, and our `presign`)
/// or over the body's hash (botocore for other services), so both are tried.
fn payload_hash_candidates(
    req: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    presigned: bool,
) -> Vec<String> {
    let caller = req.payload_sha256.map(str::to_ascii_lowercase);
    let declared = first_header(req.headers, "x-amz-content-sha256")
        .map(str::to_owned)
        .or_else(|| {
            presigned
                .then(|| {
                    query
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(b"X-Amz-Content-Sha256"))
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                })
                .flatten()
        });
    match (declared, caller) {
        (Some(declared), _) if declared == UNSIGNED_PAYLOAD => vec![declared],
        (Some(_), Some(caller)) => vec![caller],
        (Some(declared), None) => vec![declared],
        (None, caller) if presigned => vec![
            caller.unwrap_or_else(|| EMPTY_PAYLOAD_SHA256.to_owned()),
            UNSIGNED_PAYLOAD.to_owned(),
        ],
        (None, Some(caller)) => vec![caller],
        (None, None) => vec![UNSIGNED_PAYLOAD.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::macros::datetime;

    use super::*;
    use crate::canonical::sha256_hex;
    use crate::{SigningParams, presign, sign};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SIGNED_AT: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);
    const MISMATCH: &str = "The request signature we calculated does not match the signature \
                            you provided. Check your AWS Secret Access Key and signing method. \
                            Consult the service documentation for details.";

    fn creds() -> HashMap<String, String> {
        HashMap::from([(AKID.to_owned(), SECRET.to_owned())])
    }

    fn params(time: OffsetDateTime) -> SigningParams<'static> {
        SigningParams {
            access_key_id: AKID,
            secret_access_key: SECRET,
            region: "us-east-1",
            service: "ecs",
            time,
        }
    }

    /// An owned request, so tests can tamper with it after signing.
    #[derive(Clone)]
    struct Req {
        method: String,
        path: String,
        query: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Req {
        /// An ECS call as the aws CLI makes it.
        fn ecs(body: &str) -> Self {
            Req {
                method: "POST".into(),
                path: "/".into(),
                query: None,
                headers: vec![
                    ("Host".into(), "127.0.0.1:9000".into()),
                    ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                    (
                        "X-Amz-Target".into(),
                        "AmazonEC2ContainerServiceV20141113.ListClusters".into(),
                    ),
                ],
                body: body.as_bytes().to_vec(),
            }
        }

        fn header_refs(&self) -> Vec<(&str, &str)> {
            self.headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect()
        }

        /// Signs with the `Authorization` header, adding it and `X-Amz-Date`.
        fn signed(mut self, time: OffsetDateTime) -> Self {
            let hash = sha256_hex(&self.body);
            let headers = self.header_refs();
            let signature = sign(
                &RequestParts {
                    method: &self.method,
                    path: &self.path,
                    query: self.query.as_deref(),
                    headers: &headers,
                    payload_sha256: Some(&hash),
                },
                &params(time),
            );
            self.headers
                .push(("X-Amz-Date".into(), signature.x_amz_date));
            self.headers
                .push(("Authorization".into(), signature.authorization));
            self
        }

        /// Presigns, replacing the query string.
        fn presigned(mut self, time: OffsetDateTime, expires: u64) -> Self {
            let headers = self.header_refs();
            let query = presign(
                &RequestParts {
                    method: &self.method,
                    path: &self.path,
                    query: self.query.as_deref(),
                    headers: &headers,
                    payload_sha256: None,
                },
                &params(time),
                expires,
            );
            self.query = Some(query);
            self
        }

        fn set_header(&mut self, name: &str, value: &str) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            self.headers.push((name.into(), value.into()));
        }

        fn verify_at(&self, now: OffsetDateTime) -> Result<Verified, SigV4Error> {
            let hash = sha256_hex(&self.body);
            let headers = self.header_refs();
            verify(
                &RequestParts {
                    method: &self.method,
                    path: &self.path,
                    query: self.query.as_deref(),
                    headers: &headers,
                    payload_sha256: Some(&hash),
                },
                &creds(),
                now,
            )
        }

        fn verify(&self) -> Result<Verified, SigV4Error> {
            self.verify_at(SIGNED_AT + Duration::seconds(30))
        }
    }

    fn assert_error(result: Result<Verified, SigV4Error>, code: &str, status: u16, message: &str) {
        let error = result.expect_err("must be refused");
        assert_eq!(error.aws_code(), code, "{error:?}");
        assert_eq!(error.status(), status, "{error:?}");
        assert_eq!(error.message(), message, "{error:?}");
    }

    fn assert_mismatch(result: Result<Verified, SigV4Error>) {
        assert_error(result, "InvalidSignatureException", 403, MISMATCH);
    }

    fn assert_incomplete(result: Result<Verified, SigV4Error>, message: &str) {
        assert_error(result, "IncompleteSignatureException", 400, message);
    }

    #[test]
    fn documented_iam_example_verifies() {
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        ];
        let verified = verify(
            &RequestParts {
                method: "GET",
                path: "/",
                query: Some("Action=ListUsers&Version=2010-05-08"),
                headers: &headers,
                payload_sha256: Some(EMPTY_PAYLOAD_SHA256),
            },
            &creds(),
            datetime!(2015-08-30 12:40:00 UTC),
        )
        .unwrap();
        assert_eq!(
            verified,
            Verified {
                access_key_id: AKID.into(),
                region: "us-east-1".into(),
                service: "iam".into(),
                date: datetime!(2015-08-30 12:36:00 UTC),
                presigned: false,
            }
        );
    }

    #[test]
    fn header_round_trip() {
        let req = Req::ecs(r#"{"maxResults":10}"#).signed(SIGNED_AT);
        let verified = req.verify().unwrap();
        assert_eq!(verified.access_key_id, AKID);
        assert_eq!(verified.region, "us-east-1");
        assert_eq!(verified.service, "ecs");
        assert_eq!(verified.date, SIGNED_AT);
        assert!(!verified.presigned);
    }

    #[test]
    fn presigned_round_trip() {
        let mut req = Req::ecs("");
        req.method = "GET".into();
        req.headers.truncate(1);
        req.query = Some("Action=ListClusters&maxResults=5".into());
        let req = req.presigned(SIGNED_AT, 3600);
        let verified = req.verify().unwrap();
        assert!(verified.presigned);
        assert_eq!(verified.date, SIGNED_AT);
        // Valid for the whole hour, well past the 15-minute skew window.
        req.verify_at(SIGNED_AT + Duration::minutes(59)).unwrap();
        // X-Amz-Signature is not part of what is signed, so its position does not matter;
        // the other parameters are.
        let query = req.query.clone().unwrap();
        let (rest, signature) = query.split_once("&X-Amz-Signature=").unwrap();
        let mut moved = req.clone();
        moved.query = Some(format!("X-Amz-Signature={signature}&{rest}"));
        moved.verify().unwrap();
        let mut tampered = req.clone();
        tampered.query = Some(query.replace("maxResults=5", "maxResults=6"));
        assert_mismatch(tampered.verify());
    }

    #[test]
    fn presigned_url_expires() {
        let mut req = Req::ecs("");
        req.headers.truncate(1);
        let req = req.presigned(SIGNED_AT, 60);
        req.verify_at(SIGNED_AT + Duration::seconds(60)).unwrap();
        assert_error(
            req.verify_at(SIGNED_AT + Duration::seconds(61)),
            "InvalidSignatureException",
            403,
            "Request has expired",
        );
    }

    #[test]
    fn presigned_expires_must_be_a_number_of_at_most_a_week() {
        let mut req = Req::ecs("");
        req.headers.truncate(1);
        let signed = req.presigned(SIGNED_AT, 60);
        let mut not_a_number = signed.clone();
        not_a_number.query = signed
            .query
            .as_ref()
            .map(|q| q.replace("X-Amz-Expires=60", "X-Amz-Expires=soon"));
        assert_incomplete(not_a_number.verify(), "X-Amz-Expires should be a number");
        let mut req = Req::ecs("");
        req.headers.truncate(1);
        let too_long = req.presigned(SIGNED_AT, 604_801);
        assert_incomplete(
            too_long.verify(),
            "X-Amz-Expires must be less than a week (in seconds); that is, the given \
             X-Amz-Expires must be less than 604800 seconds",
        );
    }

    #[test]
    fn presigned_url_missing_parameters() {
        let mut req = Req::ecs("");
        req.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z".into());
        assert_incomplete(
            req.verify(),
            "AWS query-string parameters must include 'X-Amz-Credential'. \
             AWS query-string parameters must include 'X-Amz-Signature'. \
             AWS query-string parameters must include 'X-Amz-SignedHeaders'. \
             Re-examine the query-string parameters.",
        );
    }

    #[test]
    fn no_authentication_at_all() {
        let req = Req::ecs("{}");
        assert_error(
            req.verify(),
            "MissingAuthenticationTokenException",
            403,
            "Request is missing Authentication Token",
        );
        let mut bearer = req.clone();
        bearer.set_header("Authorization", "Bearer abc");
        assert_error(
            bearer.verify(),
            "MissingAuthenticationTokenException",
            403,
            "Request is missing Authentication Token",
        );
    }

    #[test]
    fn header_and_query_authentication_together() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        req.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256".into());
        assert_incomplete(
            req.verify(),
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP \
             header.",
        );
    }

    #[test]
    fn authorization_header_missing_parameters() {
        let mut req = Req::ecs("{}");
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ecs/aws4_request";
        req.set_header("Authorization", header);
        assert_incomplete(
            req.verify(),
            &format!(
                "Authorization header requires 'Signature' parameter. \
                 Authorization header requires 'SignedHeaders' parameter. \
                 Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. Authorization={header}"
            ),
        );
        let mut bare = Req::ecs("{}");
        bare.set_header("Authorization", "AWS4-HMAC-SHA256");
        bare.set_header("X-Amz-Date", "20260101T000000Z");
        assert_incomplete(
            bare.verify(),
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256",
        );
    }

    #[test]
    fn authorization_parameter_without_equal_sign() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = "AWS4-HMAC-SHA256 Credential AKIDEXAMPLE/20260101/us-east-1/ecs/aws4_request";
        req.set_header("Authorization", header);
        assert_incomplete(
            req.verify(),
            &format!(
                "'Credential' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{header}'."
            ),
        );
    }

    #[test]
    fn authorization_parameters_separated_by_commas_only() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = req.headers.last().unwrap().1.replace(", ", ",");
        req.set_header("Authorization", &header);
        req.verify().unwrap();
    }

    #[test]
    fn unsupported_algorithm() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = req
            .headers
            .last()
            .unwrap()
            .1
            .replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
        req.set_header("Authorization", &header);
        assert_incomplete(
            req.verify(),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). ",
        );
    }

    #[test]
    fn credential_with_the_wrong_number_of_elements() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = req.headers.last().unwrap().1.replace("/ecs/", "/");
        req.set_header("Authorization", &header);
        assert_incomplete(
            req.verify(),
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got 'AKIDEXAMPLE/20260101/us-east-1/aws4_request'",
        );
    }

    #[test]
    fn malformed_date() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        req.set_header("X-Amz-Date", "2026-01-01T00:00:00Z");
        assert_incomplete(
            req.verify(),
            "Date must be in ISO-8601 'basic format'. Got '2026-01-01T00:00:00Z'. \
             See http://en.wikipedia.org/wiki/ISO_8601",
        );
    }

    #[test]
    fn credential_scope_must_agree_with_the_request() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = req.headers.last().unwrap().1.replace(
            "20260101/us-east-1/ecs/aws4_request",
            "20251231/us-east-1/ecs/aws5_request",
        );
        req.set_header("Authorization", &header);
        assert_error(
            req.verify(),
            "InvalidSignatureException",
            403,
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 \
             version of date from HTTP: '20251231' != '20260101', from '20260101T000000Z'.",
        );
    }

    #[test]
    fn host_must_be_signed() {
        let mut req = Req::ecs("{}");
        req.headers.remove(0);
        let mut req = req.signed(SIGNED_AT);
        req.set_header("Host", "127.0.0.1:9000");
        assert_error(
            req.verify(),
            "InvalidSignatureException",
            403,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        );
    }

    #[test]
    fn unknown_access_key() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        let header = req.headers.last().unwrap().1.replace(AKID, "AKIDUNKNOWN");
        req.set_header("Authorization", &header);
        assert_error(
            req.verify(),
            "UnrecognizedClientException",
            403,
            "The security token included in the request is invalid.",
        );
    }

    #[test]
    fn wrong_secret() {
        let req = Req::ecs("{}").signed(SIGNED_AT);
        let hash = sha256_hex(&req.body);
        let headers = req.header_refs();
        let other = HashMap::from([(AKID.to_owned(), "another secret".to_owned())]);
        let result = verify(
            &RequestParts {
                method: &req.method,
                path: &req.path,
                query: None,
                headers: &headers,
                payload_sha256: Some(&hash),
            },
            &other,
            SIGNED_AT,
        );
        assert_mismatch(result);
    }

    #[test]
    fn mismatch_keeps_the_canonical_request_for_logs() {
        let mut req = Req::ecs(r#"{"cluster":"a"}"#).signed(SIGNED_AT);
        req.body = br#"{"cluster":"b"}"#.to_vec();
        let Err(SigV4Error::SignatureDoesNotMatch {
            canonical_request,
            string_to_sign,
        }) = req.verify()
        else {
            panic!("expected a mismatch");
        };
        assert!(canonical_request.starts_with("POST\n/\n\ncontent-type:"));
        assert!(canonical_request.ends_with(&sha256_hex(br#"{"cluster":"b"}"#)));
        assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20260101T000000Z\n"));
    }

    #[test]
    fn tampered_body() {
        let mut req = Req::ecs(r#"{"cluster":"default"}"#).signed(SIGNED_AT);
        req.body = br#"{"cluster":"prod"}"#.to_vec();
        assert_mismatch(req.verify());
    }

    #[test]
    fn tampered_body_with_a_declared_content_sha256() {
        let mut req = Req::ecs(r#"{"cluster":"default"}"#);
        let declared = sha256_hex(&req.body);
        req.set_header("X-Amz-Content-Sha256", &declared);
        let mut req = req.signed(SIGNED_AT);
        req.verify().unwrap();
        req.body = br#"{"cluster":"prod"}"#.to_vec();
        assert_mismatch(req.verify());
    }

    #[test]
    fn unsigned_payload_accepts_any_body() {
        let mut req = Req::ecs(r#"{"cluster":"default"}"#);
        req.set_header("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD);
        let mut req = req.signed(SIGNED_AT);
        req.body = b"anything".to_vec();
        req.verify().unwrap();
    }

    #[test]
    fn tampered_signed_header() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        req.set_header(
            "X-Amz-Target",
            "AmazonEC2ContainerServiceV20141113.DeleteCluster",
        );
        assert_mismatch(req.verify());
    }

    #[test]
    fn unsigned_headers_may_change_and_signed_ones_may_be_reformatted() {
        let mut req = Req::ecs("{}").signed(SIGNED_AT);
        req.set_header("User-Agent", "aws-cli/2.15.0");
        req.set_header("content-type", "  application/x-amz-json-1.1  ");
        req.verify().unwrap();
    }

    #[test]
    fn repeated_headers_are_joined_in_order() {
        let mut req = Req::ecs("{}");
        req.headers.push(("X-Custom".into(), "a".into()));
        req.headers.push(("x-custom".into(), "b".into()));
        let req = req.signed(SIGNED_AT);
        req.verify().unwrap();
        let mut swapped = req.clone();
        let a = swapped
            .headers
            .iter()
            .position(|(n, _)| n == "X-Custom")
            .unwrap();
        swapped.headers[a].1 = "b".into();
        let b = swapped
            .headers
            .iter()
            .position(|(n, _)| n == "x-custom")
            .unwrap();
        swapped.headers[b].1 = "a".into();
        assert_mismatch(swapped.verify());
    }

    #[test]
    fn sixteen_minutes_old() {
        let req = Req::ecs("{}").signed(datetime!(2026-01-01 00:00:00 UTC));
        req.verify_at(datetime!(2026-01-01 00:15:00 UTC)).unwrap();
        assert_error(
            req.verify_at(datetime!(2026-01-01 00:16:00 UTC)),
            "InvalidSignatureException",
            403,
            "Signature expired: 20260101T000000Z is now earlier than 20260101T000100Z \
             (20260101T001600Z - 15 min.)",
        );
    }

    #[test]
    fn sixteen_minutes_in_the_future() {
        let req = Req::ecs("{}").signed(datetime!(2026-01-01 00:16:00 UTC));
        req.verify_at(datetime!(2026-01-01 00:01:00 UTC)).unwrap();
        assert_error(
            req.verify_at(datetime!(2026-01-01 00:00:00 UTC)),
            "InvalidSignatureException",
            403,
            "Signature not yet current: 20260101T001600Z is still later than 20260101T001500Z \
             (20260101T000000Z + 15 min.)",
        );
    }

    #[test]
    fn date_header_instead_of_x_amz_date() {
        // Our signer always adds X-Amz-Date, so sign over a Date header by hand. The string
        // to sign carries the ISO 8601 form of the HTTP date.
        let http_date = "Thu, 01 Jan 2026 00:00:00 GMT";
        let signed_headers = [("Host", "127.0.0.1:9000"), ("Date", http_date)];
        let canonical = canonical_request(&CanonicalInput {
            method: "GET",
            path: "/",
            query: &[],
            skip_signature_param: false,
            headers: &signed_headers,
            signed_headers: &["date", "host"],
            payload_hash: EMPTY_PAYLOAD_SHA256,
            service: "ecs",
        });
        let key = signing_key(SECRET, "20260101", "us-east-1", "ecs");
        let scope = credential_scope("20260101", "us-east-1", "ecs");
        let signature = crate::canonical::signature(
            &key,
            &string_to_sign("20260101T000000Z", &scope, &canonical),
        );
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=date;host, \
             Signature={signature}"
        );
        let check = |extra: Option<(&str, &str)>| {
            let mut headers = vec![
                signed_headers[0],
                signed_headers[1],
                ("Authorization", authorization.as_str()),
            ];
            headers.extend(extra);
            verify(
                &RequestParts {
                    method: "GET",
                    path: "/",
                    query: None,
                    headers: &headers,
                    payload_sha256: Some(EMPTY_PAYLOAD_SHA256),
                },
                &creds(),
                SIGNED_AT,
            )
        };
        assert_eq!(check(None).unwrap().date, SIGNED_AT);
        // X-Amz-Date, when present, is the signing time, not Date.
        assert_mismatch(check(Some(("X-Amz-Date", "20260101T000001Z"))));
        assert!(parse_date(http_date, false).is_err());
    }

    #[test]
    fn unsorted_and_duplicate_query_parameters() {
        let mut req = Req::ecs("");
        req.method = "GET".into();
        req.query = Some("b=2&a=z&a=y&c".into());
        let req = req.signed(SIGNED_AT);
        req.verify().unwrap();
        // Canonicalisation sorts, so the order on the wire does not matter...
        let mut reordered = req.clone();
        reordered.query = Some("a=y&c=&b=2&a=z".into());
        reordered.verify().unwrap();
        // ...but every duplicate counts.
        let mut dropped = req.clone();
        dropped.query = Some("b=2&a=z&c".into());
        assert_mismatch(dropped.verify());
        let mut changed = req.clone();
        changed.query = Some("b=2&a=z&a=x&c".into());
        assert_mismatch(changed.verify());
    }

    #[test]
    fn query_values_needing_encoding() {
        let mut req = Req::ecs("");
        req.method = "GET".into();
        req.query = Some("marker=a%20b%2Fc%2B&name=%C3%A9t%C3%A9".into());
        let req = req.signed(SIGNED_AT);
        req.verify().unwrap();
        // Lower-case hex escapes decode to the same bytes.
        let mut lower = req.clone();
        lower.query = Some("marker=a%20b%2fc%2b&name=%c3%a9t%c3%a9".into());
        lower.verify().unwrap();
    }

    #[test]
    fn path_with_characters_needing_encoding() {
        let mut req = Req::ecs("{}");
        req.path = "/2015-03-31/functions/my%3Afn%20%E2%9C%93/invocations".into();
        let req = req.signed(SIGNED_AT);
        req.verify().unwrap();
        // The path is signed as sent: decoding an escape changes the canonical URI.
        let mut decoded = req.clone();
        decoded.path = "/2015-03-31/functions/my:fn%20%E2%9C%93/invocations".into();
        assert_mismatch(decoded.verify());
        // Dot segments and doubled slashes are normalised away before signing.
        let mut dotted = req.clone();
        dotted.path = "/2015-03-31//functions/./x/../my%3Afn%20%E2%9C%93/invocations".into();
        dotted.verify().unwrap();
    }

    #[test]
    fn http2_authority_stands_in_for_host() {
        let req = Req::ecs("{}").signed(SIGNED_AT);
        let mut h2 = req.clone();
        h2.headers.retain(|(n, _)| n != "Host");
        h2.headers
            .push((":authority".into(), "127.0.0.1:9000".into()));
        h2.verify().unwrap();
    }
}
