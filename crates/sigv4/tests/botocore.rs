//! Verifies requests recorded from botocore, the signer inside the aws CLI and boto3, so
//! that what the real clients send is accepted. Regenerate the fixture with
//! `tests/fixtures/botocore_requests.py`.

use std::collections::HashMap;

use berth_sigv4::{RequestParts, SigV4Error, Verified, sha256_hex, verify};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const FIXTURE: &str = include_str!("fixtures/botocore_requests.json");

struct Recorded {
    name: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
    now: OffsetDateTime,
    expect: Value,
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
        .to_owned()
}

fn load() -> (HashMap<String, String>, Vec<Recorded>) {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let creds = HashMap::from([(
        text(&fixture, "access_key_id"),
        text(&fixture, "secret_access_key"),
    )]);
    let requests = fixture["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Recorded {
            name: text(r, "name"),
            method: text(r, "method"),
            path: text(r, "path"),
            query: r["query"].as_str().map(str::to_owned),
            headers: r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_owned(),
                        h[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect(),
            body: text(r, "body"),
            now: OffsetDateTime::parse(&text(r, "now"), &Rfc3339).unwrap(),
            expect: r["expect"].clone(),
        })
        .collect();
    (creds, requests)
}

fn check(
    r: &Recorded,
    body: &str,
    creds: &HashMap<String, String>,
) -> Result<Verified, SigV4Error> {
    let hash = sha256_hex(body.as_bytes());
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    verify(
        &RequestParts {
            method: &r.method,
            path: &r.path,
            query: r.query.as_deref(),
            headers: &headers,
            payload_sha256: Some(&hash),
        },
        creds,
        r.now,
    )
}

#[test]
fn botocore_signed_requests_verify() {
    let (creds, requests) = load();
    assert!(requests.len() >= 8, "fixture has too few requests");
    for r in &requests {
        let verified = check(r, &r.body, &creds).unwrap_or_else(|e| panic!("{}: {e:?}", r.name));
        assert_eq!(verified.service, text(&r.expect, "service"), "{}", r.name);
        assert_eq!(verified.region, text(&r.expect, "region"), "{}", r.name);
        assert_eq!(
            verified.presigned,
            r.expect["presigned"].as_bool().unwrap(),
            "{}",
            r.name
        );
        assert_eq!(verified.access_key_id, "AKIDEXAMPLE");
    }
}

#[test]
fn botocore_signed_bodies_are_protected() {
    let (creds, requests) = load();
    let mut checked = 0;
    for r in requests.iter().filter(|r| !r.body.is_empty()) {
        let error = check(r, &format!("{} ", r.body), &creds).unwrap_err();
        assert!(
            matches!(error, SigV4Error::SignatureDoesNotMatch { .. }),
            "{}: {error:?}",
            r.name
        );
        checked += 1;
    }
    assert!(checked >= 3);
}
