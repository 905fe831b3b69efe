//! The SigV4 canonical request, string to sign and key derivation, shared by the signer
//! and the verifier so that both always agree on every byte.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const TERMINATOR: &str = "aws4_request";

/// The payload hash a client sends when it chose not to sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// ISO 8601 basic format as SigV4 uses it: `20150830T123600Z`.
pub(crate) const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

pub(crate) fn format_amz_date(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(AMZ_DATE)
        .expect("a UTC date formats")
}

/// Hex SHA-256 of `data`, for payload hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Percent-encodes `input` the way SigV4 wants it: every byte except the RFC 3986
/// unreserved characters (and `/` when `keep_slash`) becomes `%XX` with upper-case hex.
pub(crate) fn uri_encode(input: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

fn encoded(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    uri_encode(input, keep_slash, &mut out);
    out
}

/// Decodes `%XX` escapes. Malformed escapes are kept as they are, so that a sloppy client's
/// request still canonicalises the same way each time. `+` stays a `+` (in a path it is
/// one; a query is read with [`parse_query`]).
pub(crate) fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical URI.
///
/// For every service but S3 the path is normalised (empty and `.` segments dropped, `..`
/// resolved, as botocore and the Rust SDK do) and then encoded *again*: clients sign the
/// path as it goes on the wire, already percent-encoded, so `%3A` appears as `%253A`.
/// S3 signs the path encoded once and unnormalised.
pub(crate) fn canonical_uri(raw_path: &str, service: &str) -> String {
    if service == "s3" {
        if raw_path.is_empty() {
            return "/".to_owned();
        }
        return encoded(&percent_decode(raw_path), true);
    }
    encoded(normalize_path(raw_path).as_bytes(), true)
}

/// Removes empty and `.` segments and resolves `..` (never above the root), keeping a
/// leading and trailing slash.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs, in order. A `+` is a space,
/// as the AWS SDKs read a query before signing it: Go's `url.Values` writes a space as `+`
/// and the Go SDK signs it as `%20` (the official ECS agent's `dockerVersion=DockerVersion%3A+20.10`),
/// while botocore and the other SDKs never send a bare `+` (a plus is `%2B`).
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let form_decode = |part: &str| percent_decode(&part.replace('+', " "));
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// The canonical query string: each name and value encoded, sorted by name then value.
/// `X-Amz-Signature` is left out when verifying a presigned URL, which cannot sign itself.
pub(crate) fn canonical_query(pairs: &[(Vec<u8>, Vec<u8>)], skip_signature: bool) -> String {
    let mut encoded_pairs: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| !(skip_signature && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| (encoded(name, false), encoded(value, false)))
        .collect();
    encoded_pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in encoded_pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The value a header contributes: every occurrence trimmed, inner runs of whitespace
/// collapsed to one space, occurrences joined with `,`. `None` if the header is absent.
pub(crate) fn header_value(headers: &[(&str, &str)], name: &str) -> Option<String> {
    let mut found = false;
    let mut out = String::new();
    for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        if found {
            out.push(',');
        }
        found = true;
        for (i, word) in value.split_whitespace().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    found.then_some(out)
}

/// The canonical headers block (each line ending in `\n`) for the given lower-case names,
/// in the order given. HTTP/2 carries the host as `:authority`.
pub(crate) fn canonical_headers(headers: &[(&str, &str)], signed: &[&str]) -> String {
    let mut out = String::new();
    for name in signed {
        let value = header_value(headers, name)
            .or_else(|| (*name == "host").then(|| header_value(headers, ":authority"))?)
            .unwrap_or_default();
        out.push_str(name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

/// Everything that goes into a canonical request, already extracted from the request.
pub(crate) struct CanonicalInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(Vec<u8>, Vec<u8>)],
    pub skip_signature_param: bool,
    pub headers: &'a [(&'a str, &'a str)],
    pub signed_headers: &'a [&'a str],
    pub payload_hash: &'a str,
    pub service: &'a str,
}

pub(crate) fn canonical_request(input: &CanonicalInput<'_>) -> String {
    [
        input.method.to_ascii_uppercase(),
        canonical_uri(input.path, input.service),
        canonical_query(input.query, input.skip_signature_param),
        canonical_headers(input.headers, input.signed_headers),
        input.signed_headers.join(";"),
        input.payload_hash.to_owned(),
    ]
    .join("\n")
}

/// `date/region/service/aws4_request`.
pub(crate) fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, TERMINATOR] {
        key = hmac(&key, part.as_bytes()).finalize().into_bytes().to_vec();
    }
    key
}

/// Hex HMAC-SHA256 of the string to sign.
pub(crate) fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(
        hmac(signing_key, string_to_sign.as_bytes())
            .finalize()
            .into_bytes(),
    )
}

/// Compares in constant time; only the length (public: always 64 hex digits) can leak.
pub(crate) fn signature_matches(signing_key: &[u8], string_to_sign: &str, provided: &str) -> bool {
    let Ok(provided) = hex::decode(provided) else {
        return false;
    };
    hmac(signing_key, string_to_sign.as_bytes())
        .verify_slice(&provided)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encoding_keeps_only_unreserved_characters() {
        assert_eq!(encoded(b"AZaz09-_.~", false), "AZaz09-_.~");
        assert_eq!(encoded(b"a b+c/d=e*f%", false), "a%20b%2Bc%2Fd%3De%2Af%25");
        assert_eq!(encoded(b"a/b", true), "a/b");
        assert_eq!(encoded("é".as_bytes(), false), "%C3%A9");
    }

    #[test]
    fn percent_decoding_tolerates_malformed_escapes() {
        assert_eq!(percent_decode("a%20b%2fc"), b"a b/c");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(percent_decode("a+b"), b"a+b");
    }

    #[test]
    fn non_s3_paths_are_normalised_then_encoded_again() {
        assert_eq!(canonical_uri("", "ecs"), "/");
        assert_eq!(canonical_uri("/", "ecs"), "/");
        assert_eq!(
            canonical_uri("/2015-03-31/functions/my%3Afn%20x/", "lambda"),
            "/2015-03-31/functions/my%253Afn%2520x/"
        );
        assert_eq!(canonical_uri("/a/./b/../c//d", "ecs"), "/a/c/d");
        assert_eq!(canonical_uri("/../..", "ecs"), "/");
        assert_eq!(canonical_uri("/a b", "ecs"), "/a%20b");
    }

    #[test]
    fn s3_paths_are_encoded_once_and_not_normalised() {
        assert_eq!(
            canonical_uri("/bucket/a%20b/./c", "s3"),
            "/bucket/a%20b/./c"
        );
        assert_eq!(canonical_uri("/bucket/a+b=c", "s3"), "/bucket/a%2Bb%3Dc");
        assert_eq!(canonical_uri("/bucket//x", "s3"), "/bucket//x");
    }

    #[test]
    fn query_is_sorted_by_encoded_name_then_value_and_reencoded() {
        let pairs = parse_query(Some("b=2&a=z&a=y&c&Z=%7e&e=a%2fb&f=a b"));
        assert_eq!(
            canonical_query(&pairs, false),
            "Z=~&a=y&a=z&b=2&c=&e=a%2Fb&f=a%20b"
        );
        // A bare `+` is a space (Go's query encoding), `%2B` a plus.
        let go = parse_query(Some("dockerVersion=DockerVersion%3A+20.10.24&p=a%2Bb"));
        assert_eq!(
            canonical_query(&go, false),
            "dockerVersion=DockerVersion%3A%2020.10.24&p=a%2Bb"
        );
        let presigned = parse_query(Some("X-Amz-Signature=abc&X-Amz-Date=1"));
        assert_eq!(canonical_query(&presigned, true), "X-Amz-Date=1");
        assert_eq!(canonical_query(&parse_query(None), false), "");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let headers = [
            ("My-Header", "  a   b \t c "),
            ("host", "example.com"),
            ("my-header", "d"),
        ];
        assert_eq!(header_value(&headers, "my-header").unwrap(), "a b c,d");
        assert_eq!(
            canonical_headers(&headers, &["host", "my-header", "absent"]),
            "host:example.com\nmy-header:a b c,d\nabsent:\n"
        );
        let h2 = [(":authority", "example.com:9000")];
        assert_eq!(canonical_headers(&h2, &["host"]), "host:example.com:9000\n");
    }

    #[test]
    fn documented_signing_key_derivation() {
        // AWS's documented example key for 20150830/us-east-1/iam.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }
}
