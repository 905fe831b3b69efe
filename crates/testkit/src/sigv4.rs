//! A SigV4 signer for AWS JSON 1.1 requests, written out so that tests can sign
//! what the aws CLI never sends: a skewed clock, malformed JSON, an oversized body.
//! It signs exactly as botocore does (`content-type;host;x-amz-date;x-amz-target`).

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::oci::sha256_hex;

pub const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Sha256::new();
    inner.update(&ipad);
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(&opad);
    outer.update(inner);
    outer.finalize().to_vec()
}

/// (year, month, day, hour, minute, second) in UTC of a Unix time.
pub fn utc_parts(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// Unix time of a UTC civil date-time.
pub fn unix_from_parts(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss)
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `20240101T000000Z`
pub fn amz_date(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(unix);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The headers (Authorization, X-Amz-Date, X-Amz-Target, Content-Type) of a
/// signed AWS JSON 1.1 POST to `/` of `host`.
#[allow(clippy::too_many_arguments)]
pub fn sign_json_request(
    host: &str,
    region: &str,
    service: &str,
    access_key: &str,
    secret_key: &str,
    target: &str,
    body: &[u8],
    unix_time: i64,
) -> Vec<(String, String)> {
    let credentials = (access_key, secret_key);
    sign_post(
        host,
        region,
        service,
        credentials,
        JSON_CONTENT_TYPE,
        Some(target),
        body,
        unix_time,
    )
}

/// The headers (Authorization, X-Amz-Date, Content-Type) of a signed AWS Query protocol
/// POST (a form body: `Action=…&Version=…`) to `/` of `host`.
pub fn sign_query_request(
    host: &str,
    region: &str,
    service: &str,
    (access_key, secret_key): (&str, &str),
    body: &[u8],
    unix_time: i64,
) -> Vec<(String, String)> {
    let credentials = (access_key, secret_key);
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    sign_post(
        host,
        region,
        service,
        credentials,
        form,
        None,
        body,
        unix_time,
    )
}

/// The headers (Authorization, X-Amz-Date, Content-Type) of a signed Smithy RPC v2 CBOR
/// POST to `path` (`/service/{Service}/operation/{Operation}`) of `host`; the caller adds
/// `smithy-protocol: rpc-v2-cbor` (unsigned, as SDKs leave it).
pub fn sign_cbor_request(
    host: &str,
    region: &str,
    service: &str,
    credentials: (&str, &str),
    path: &str,
    body: &[u8],
    unix_time: i64,
) -> Vec<(String, String)> {
    sign_post_to(
        host,
        region,
        service,
        credentials,
        path,
        ("application/cbor", None),
        body,
        unix_time,
    )
}

#[allow(clippy::too_many_arguments)]
fn sign_post(
    host: &str,
    region: &str,
    service: &str,
    credentials: (&str, &str),
    content_type: &str,
    target: Option<&str>,
    body: &[u8],
    unix_time: i64,
) -> Vec<(String, String)> {
    sign_post_to(
        host,
        region,
        service,
        credentials,
        "/",
        (content_type, target),
        body,
        unix_time,
    )
}

#[allow(clippy::too_many_arguments)]
fn sign_post_to(
    host: &str,
    region: &str,
    service: &str,
    (access_key, secret_key): (&str, &str),
    path: &str,
    (content_type, target): (&str, Option<&str>),
    body: &[u8],
    unix_time: i64,
) -> Vec<(String, String)> {
    let amz = amz_date(unix_time);
    let date = &amz[..8];
    let (signed_headers, target_line) = match target {
        Some(t) => (
            "content-type;host;x-amz-date;x-amz-target",
            format!("x-amz-target:{t}\n"),
        ),
        None => ("content-type;host;x-amz-date", String::new()),
    };
    let canonical = format!(
        "POST\n{path}\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{amz}\n\
         {target_line}\n{signed_headers}\n{}",
        sha256_hex(body)
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let mut headers = vec![
        (
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
                 SignedHeaders={signed_headers}, Signature={signature}"
            ),
        ),
        ("X-Amz-Date".into(), amz),
        ("Content-Type".into(), content_type.into()),
    ];
    if let Some(t) = target {
        headers.push(("X-Amz-Target".into(), t.into()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
        assert_eq!(unix_from_parts(2024, 2, 29, 23, 59, 59), 1_709_251_199);
    }

    #[test]
    fn signature_matches_botocore() {
        // Computed with botocore (vendored in awscli 1.46) SigV4Auth for the same request and time.
        let headers = sign_json_request(
            "127.0.0.1:4566",
            "us-east-1",
            "ecr",
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            b"{}",
            1_700_000_000,
        );
        let auth = &headers[0].1;
        assert!(auth.ends_with(BOTOCORE_SIGNATURE), "{auth}");
    }

    const BOTOCORE_SIGNATURE: &str =
        "Signature=45e8a176d29d38074c83bee9757cb3c4ac0613a050d62f957c20fc0d3a6e68c2";
}
