//! SigV4 authentication and the AWS JSON 1.1 envelope, in-process through the HTTP stack
//! with the kit's own signer: each refusal with AWS's error code, and the registry token's
//! lifetime and binding. (The e2e tier keeps one test with the aws CLI's own signing.)

use std::thread;
use std::time::Duration;

use berth_testkit::ecr::epoch_seconds;
use berth_testkit::sigv4::{ECR_TARGET_PREFIX, JSON_CONTENT_TYPE, now_unix, sign_json_request};
use berth_testkit::{
    Endpoint, HttpResponse, ROOT_ACCESS_KEY_ID, Registry, TestServer, basic_auth, http,
};
use serde_json::json;

fn describe_target() -> String {
    format!("{ECR_TARGET_PREFIX}.DescribeRepositories")
}

/// A raw signed AWS JSON request to the server, as of `unix_time`.
fn signed(s: &TestServer, target: &str, body: &[u8], unix_time: i64) -> HttpResponse {
    signed_as(s, &s.access_key, &s.secret_key, target, body, unix_time)
}

/// [`signed`] with the given credentials.
fn signed_as(
    s: &TestServer,
    access_key: &str,
    secret_key: &str,
    target: &str,
    body: &[u8],
    unix_time: i64,
) -> HttpResponse {
    let headers = sign_json_request(
        &s.host(),
        "us-east-1",
        "ecr",
        access_key,
        secret_key,
        target,
        body,
        unix_time,
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http(s.port(), "POST", "/", &refs, body).expect("signed request")
}

/// Asserts an AWS JSON error: the status range, `__type` naming `code`, a message,
/// and the request id header.
#[track_caller]
fn assert_json_error(r: &HttpResponse, statuses: &[u16], code: &str) {
    assert!(
        statuses.contains(&r.status),
        "expected {statuses:?} {code}: {}",
        r.describe()
    );
    let v = r.json();
    let ty = v["__type"]
        .as_str()
        .unwrap_or_else(|| panic!("no __type: {}", r.describe()));
    // AWS may prefix the type with a namespace (`com.amazonaws...#Code`).
    assert!(
        ty == code || ty.ends_with(&format!("#{code}")),
        "__type {ty}, expected {code}"
    );
    let message = v.get("message").or_else(|| v.get("Message"));
    assert!(
        message.and_then(|m| m.as_str()).is_some(),
        "no message: {}",
        r.describe()
    );
    assert_request_id(r);
}

#[track_caller]
fn assert_request_id(r: &HttpResponse) {
    let id = r.header("x-amzn-requestid");
    assert!(
        id.is_some_and(|id| !id.is_empty()),
        "no x-amzn-RequestId: {}",
        r.describe()
    );
}

#[test]
fn a_signed_request_succeeds_with_a_request_id() {
    let s = TestServer::start();
    let r = signed(&s, &describe_target(), b"{}", now_unix());
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_request_id(&r);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with(JSON_CONTENT_TYPE),
        "{}",
        r.describe()
    );
    assert!(r.json()["repositories"].is_array());
}

#[test]
fn no_signature_is_missing_authentication_token() {
    let s = TestServer::start();
    let target = describe_target();
    let r = http(
        s.port(),
        "POST",
        "/",
        &[
            ("X-Amz-Target", target.as_str()),
            ("Content-Type", JSON_CONTENT_TYPE),
        ],
        b"{}",
    )
    .unwrap();
    assert_json_error(&r, &[400, 403], "MissingAuthenticationTokenException");
}

#[test]
fn a_garbage_authorization_header_is_incomplete_signature() {
    let s = TestServer::start();
    let target = describe_target();
    for garbage in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST0000001/20240101/us-east-1/ecr/aws4_request",
        "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=zz",
    ] {
        let r = http(
            s.port(),
            "POST",
            "/",
            &[
                ("X-Amz-Target", target.as_str()),
                ("Content-Type", JSON_CONTENT_TYPE),
                ("X-Amz-Date", &berth_testkit::sigv4::amz_date(now_unix())),
                ("Authorization", garbage),
            ],
            b"{}",
        )
        .unwrap();
        assert_json_error(&r, &[400, 403], "IncompleteSignatureException");
    }
}

#[test]
fn a_wrong_secret_is_invalid_signature() {
    let s = TestServer::start();
    let r = signed_as(
        &s,
        &s.access_key,
        "wrongwrongwrongwrongwrongwrongwrongwrong",
        &describe_target(),
        b"{}",
        now_unix(),
    );
    assert_json_error(&r, &[400, 403], "InvalidSignatureException");
}

#[test]
fn an_unknown_access_key_is_unrecognized_client() {
    let s = TestServer::start();
    let r = signed_as(
        &s,
        "AKIDUNKNOWN000000000",
        &s.secret_key,
        &describe_target(),
        b"{}",
        now_unix(),
    );
    assert_json_error(&r, &[400, 403], "UnrecognizedClientException");
}

#[test]
fn a_skewed_clock_is_signature_expired() {
    let s = TestServer::start();
    for skew in [-20 * 60, 20 * 60] {
        let r = signed(&s, &describe_target(), b"{}", now_unix() + skew);
        assert_json_error(&r, &[400, 403], "InvalidSignatureException");
        let message = r.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        // AWS's wording: "Signature expired: ..." for a clock behind, "Signature not yet
        // current: ..." for a clock ahead.
        let expected = if skew < 0 {
            "signature expired"
        } else {
            "signature not yet current"
        };
        assert!(message.contains(expected), "skew {skew}: {message}");
    }
    // Within 15 minutes is fine.
    let r = signed(&s, &describe_target(), b"{}", now_unix() - 5 * 60);
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn a_body_that_does_not_match_its_signature_is_invalid_signature() {
    let s = TestServer::start();
    let target = describe_target();
    let headers = sign_json_request(
        &s.host(),
        "us-east-1",
        "ecr",
        &s.access_key,
        &s.secret_key,
        &target,
        b"{}",
        now_unix(),
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = http(s.port(), "POST", "/", &refs, br#"{"maxResults":1}"#).unwrap();
    assert_json_error(&r, &[400, 403], "InvalidSignatureException");
}

#[test]
fn malformed_json_is_serialization_exception() {
    let s = TestServer::start();
    for body in [&b"{not json"[..], b"[1,2]", br#"{"repositoryName": 42}"#] {
        let r = signed(
            &s,
            &format!("{ECR_TARGET_PREFIX}.CreateRepository"),
            body,
            now_unix(),
        );
        assert_json_error(&r, &[400], "SerializationException");
    }
}

#[test]
fn an_unknown_operation_is_unknown_operation() {
    let s = TestServer::start();
    let r = signed(
        &s,
        &format!("{ECR_TARGET_PREFIX}.LaunchRockets"),
        b"{}",
        now_unix(),
    );
    assert_json_error(&r, &[400, 404], "UnknownOperationException");
    let r = signed(
        &s,
        "SomeOtherService_20200101.DescribeThings",
        b"{}",
        now_unix(),
    );
    assert_json_error(&r, &[400, 404], "UnknownOperationException");
}

#[test]
fn an_oversized_body_is_refused_and_the_server_lives_on() {
    let s = TestServer::start();
    // Berth accepts AWS JSON bodies up to 16 MiB (ECR layer parts travel base64 in JSON).
    let filler = "a".repeat(17 * 1024 * 1024);
    let body = format!(r#"{{"repositoryName":"big","filler":"{filler}"}}"#);
    let target = format!("{ECR_TARGET_PREFIX}.CreateRepository");
    let headers = sign_json_request(
        &s.host(),
        "us-east-1",
        "ecr",
        &s.access_key,
        &s.secret_key,
        &target,
        body.as_bytes(),
        now_unix(),
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match http(s.port(), "POST", "/", &refs, body.as_bytes()) {
        Ok(r) => {
            assert!(
                r.status == 413 || (400..500).contains(&r.status),
                "a 17 MiB body was not refused: {}",
                r.describe()
            );
            assert_request_id(&r);
        }
        // The server may cut the connection before reading the rest of the body.
        Err(e) => eprintln!("connection closed on the oversized body: {e}"),
    }
    // Not created, and the server still answers.
    let r = http(s.port(), "GET", "/health", &[], b"").expect("server alive after big body");
    assert_eq!(r.status, 200);
    s.ecr("DescribeRepositories", json!({"repositoryNames": ["big"]}))
        .expect_error("RepositoryNotFoundException");
}

#[test]
fn registry_tokens_expire() {
    // A 2 s registry token lifetime (12 h by default; `berth server` reads it from
    // BERTH_TOKEN_TTL_SECONDS) so that expiry can be tested without waiting 12 hours.
    let s = TestServer::start_with(|config| config.token_ttl = Duration::from_secs(2));
    let data = s.authorization_data();
    let expires = epoch_seconds(&data["expiresAt"]);
    assert!(
        (expires - now_unix() as f64).abs() < 30.0,
        "expiresAt {expires} with a 2 s TTL"
    );

    let reg = s.registry();
    let r = reg.get("/v2/");
    assert_eq!(r.status, 200, "{}", r.describe());
    thread::sleep(Duration::from_secs(4));
    let r = reg.get("/v2/");
    assert_eq!(
        r.status,
        401,
        "an expired token was accepted: {}",
        r.describe()
    );
}

#[test]
fn a_registry_token_is_bound_to_its_account() {
    // Two servers with the same root credentials but different accounts: a token
    // that one issued does not open the other.
    let a = TestServer::start();
    let b = TestServer::start_with(|config| {
        config.account_id = "111111111111".to_owned();
        config.root_credentials = Some(berth_api::RootCredentials {
            access_key_id: ROOT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: a.secret_key.clone(),
        });
    });
    assert_eq!(b.secret_key, a.secret_key);
    let v = b.ecr("DescribeRegistry", json!({})).ok();
    assert_eq!(v["registryId"], "111111111111");

    let token_a = a.login_password();
    let r = Registry {
        port: b.port(),
        authorization: Some(basic_auth("AWS", &token_a)),
    }
    .get("/v2/");
    assert_eq!(
        r.status,
        401,
        "account 000000000000's token opened account 111111111111: {}",
        r.describe()
    );
    let r = Registry {
        port: a.port(),
        authorization: Some(basic_auth("AWS", &token_a)),
    }
    .get("/v2/");
    assert_eq!(r.status, 200, "{}", r.describe());
}
