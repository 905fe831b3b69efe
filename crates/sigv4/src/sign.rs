//! Signs requests: the `Authorization` header form and presigned query strings. Used by
//! Berth's own clients (the agent calling Berth) and by tests of the verifier.

use time::OffsetDateTime;

use crate::RequestParts;
use crate::canonical::{
    ALGORITHM, CanonicalInput, UNSIGNED_PAYLOAD, canonical_request, credential_scope,
    format_amz_date, header_value, parse_query, signature, signing_key, string_to_sign, uri_encode,
};

/// Who signs, for which scope, at what time.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
}

/// What [`sign`] produces: the caller adds `X-Amz-Date: x_amz_date` and
/// `Authorization: authorization` to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSignature {
    pub authorization: String,
    pub x_amz_date: String,
    /// `;`-separated lower-case names, as in the `Authorization` header.
    pub signed_headers: String,
    /// Hex signature, as in the `Authorization` header.
    pub signature: String,
}

/// Sorted, deduplicated lower-case names of every header given, except `authorization`.
fn names_to_sign(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name != "authorization")
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Signs `req` for the `Authorization` header.
///
/// Every header in `req.headers` is signed (include `host`; leave out headers a proxy may
/// rewrite), together with the `X-Amz-Date` this adds, which replaces any given. The
/// payload hash is the `x-amz-content-sha256` header if present, else
/// `req.payload_sha256`, else `UNSIGNED-PAYLOAD`.
pub fn sign(req: &RequestParts<'_>, params: &SigningParams<'_>) -> HeaderSignature {
    let amz_date = format_amz_date(params.time);
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("x-amz-date"))
        .copied()
        .collect();
    headers.push(("x-amz-date", &amz_date));
    let names = names_to_sign(&headers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let declared = header_value(req.headers, "x-amz-content-sha256");
    let payload_hash = declared
        .as_deref()
        .or(req.payload_sha256)
        .unwrap_or(UNSIGNED_PAYLOAD);

    let query = parse_query(req.query);
    let canonical = canonical_request(&CanonicalInput {
        method: req.method,
        path: req.path,
        query: &query,
        skip_signature_param: false,
        headers: &headers,
        signed_headers: &names,
        payload_hash,
        service: params.service,
    });
    let scope = credential_scope(&amz_date[..8], params.region, params.service);
    let key = signing_key(
        params.secret_access_key,
        &amz_date[..8],
        params.region,
        params.service,
    );
    let signature = signature(&key, &string_to_sign(&amz_date, &scope, &canonical));
    let signed_headers = names.join(";");
    HeaderSignature {
        authorization: format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            params.access_key_id
        ),
        x_amz_date: amz_date,
        signed_headers,
        signature,
    }
}

/// Presigns `req`: returns the whole query string to send (the request's own parameters
/// followed by the `X-Amz-*` ones and `X-Amz-Signature`), valid for `expires_in_secs`.
///
/// Every header in `req.headers` is signed; usually that is just `host`. The payload is
/// `UNSIGNED-PAYLOAD`, as a URL cannot know its body in advance.
pub fn presign(req: &RequestParts<'_>, params: &SigningParams<'_>, expires_in_secs: u64) -> String {
    let amz_date = format_amz_date(params.time);
    let names = names_to_sign(req.headers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let signed_headers = names.join(";");
    let credential = format!(
        "{}/{}",
        params.access_key_id,
        credential_scope(&amz_date[..8], params.region, params.service)
    );
    let expires = expires_in_secs.to_string();
    let auth_params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &amz_date),
        ("X-Amz-Expires", &expires),
        ("X-Amz-SignedHeaders", &signed_headers),
    ];

    let mut query = req.query.unwrap_or_default().to_owned();
    for (name, value) in auth_params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        uri_encode(value.as_bytes(), false, &mut query);
    }

    let canonical = canonical_request(&CanonicalInput {
        method: req.method,
        path: req.path,
        query: &parse_query(Some(&query)),
        skip_signature_param: false,
        headers: req.headers,
        signed_headers: &names,
        payload_hash: UNSIGNED_PAYLOAD,
        service: params.service,
    });
    let scope = credential_scope(&amz_date[..8], params.region, params.service);
    let key = signing_key(
        params.secret_access_key,
        &amz_date[..8],
        params.region,
        params.service,
    );
    let signature = signature(&key, &string_to_sign(&amz_date, &scope, &canonical));
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{EMPTY_PAYLOAD_SHA256, sha256_hex};
    use time::macros::datetime;

    fn example_params() -> SigningParams<'static> {
        SigningParams {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "iam",
            time: datetime!(2015-08-30 12:36:00 UTC),
        }
    }

    /// AWS's documented example: `GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08`
    /// with AKIDEXAMPLE, signed at 20150830T123600Z.
    #[test]
    fn documented_iam_list_users_example() {
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
        ];
        let req = RequestParts {
            method: "GET",
            path: "/",
            query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            payload_sha256: Some(EMPTY_PAYLOAD_SHA256),
        };

        // The intermediate values AWS publishes for this example.
        let with_date = [headers[0], headers[1], ("x-amz-date", "20150830T123600Z")];
        let canonical = canonical_request(&CanonicalInput {
            method: "GET",
            path: "/",
            query: &parse_query(req.query),
            skip_signature_param: false,
            headers: &with_date,
            signed_headers: &["content-type", "host", "x-amz-date"],
            payload_hash: EMPTY_PAYLOAD_SHA256,
            service: "iam",
        });
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );

        let signed = sign(&req, &example_params());
        assert_eq!(signed.x_amz_date, "20150830T123600Z");
        assert_eq!(
            signed.signature,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn presign_appends_auth_params_after_the_request_params() {
        let headers = [("host", "iam.amazonaws.com")];
        let req = RequestParts {
            method: "GET",
            path: "/",
            query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            payload_sha256: None,
        };
        let query = presign(&req, &example_params(), 60);
        let expected_prefix = "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=";
        assert!(query.starts_with(expected_prefix), "{query}");
        assert_eq!(query.len(), expected_prefix.len() + 64);
    }

    #[test]
    fn sign_uses_the_declared_content_sha256() {
        let body_hash = sha256_hex(b"{}");
        let declared = [("host", "h"), ("x-amz-content-sha256", body_hash.as_str())];
        let plain = [("host", "h")];
        let params = example_params();
        let with_header = sign(
            &RequestParts {
                method: "POST",
                path: "/",
                query: None,
                headers: &declared,
                payload_sha256: None,
            },
            &params,
        );
        assert_eq!(
            with_header.signed_headers,
            "host;x-amz-content-sha256;x-amz-date"
        );
        let unsigned = sign(
            &RequestParts {
                method: "POST",
                path: "/",
                query: None,
                headers: &plain,
                payload_sha256: None,
            },
            &params,
        );
        let hashed = sign(
            &RequestParts {
                method: "POST",
                path: "/",
                query: None,
                headers: &plain,
                payload_sha256: Some(&body_hash),
            },
            &params,
        );
        assert_ne!(unsigned.signature, hashed.signature);
    }
}
