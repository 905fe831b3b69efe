//! Identity (issue 18), through the real `aws` CLI: STS and IAM speak AWS's Query protocol
//! (form-encoded requests, XML answers and errors) on Berth's one port. So far:
//! `sts get-caller-identity` for the root credentials, and the Query protocol's
//! authentication errors as STS names them.

use berth_e2e::{BerthServer, assert_aws_error, ok_json};

#[test]
fn get_caller_identity_names_the_account_root() {
    let s = BerthServer::start();
    let me = ok_json(&s.aws(&["sts", "get-caller-identity"]));
    assert_eq!(me["Account"], "000000000000", "{me}");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root", "{me}");
    assert_eq!(me["UserId"], "000000000000", "{me}");
    // Any region's scope works (STS has regional endpoints).
    let me = ok_json(&s.aws_with(
        "eu-west-1",
        &s.access_key,
        &s.secret_key,
        &["sts", "get-caller-identity"],
    ));
    assert_eq!(me["Account"], "000000000000");
}

#[test]
fn query_protocol_refusals_are_xml_with_sts_codes() {
    let s = BerthServer::start();
    // An unknown access key: STS's InvalidClientTokenId (the JSON services say
    // UnrecognizedClientException).
    let out = s.aws_with(
        "us-east-1",
        "AKIAUNKNOWN000000000",
        "x",
        &["sts", "get-caller-identity"],
    );
    assert_aws_error(&out, "InvalidClientTokenId");
    assert!(
        berth_e2e::stderr_of(&out)
            .contains("The security token included in the request is invalid."),
        "{}",
        berth_e2e::stderr_of(&out)
    );
    // The right key with a wrong secret.
    let out = s.aws_with(
        "us-east-1",
        &s.access_key,
        "wrong-secret",
        &["sts", "get-caller-identity"],
    );
    assert_aws_error(&out, "SignatureDoesNotMatch");
    // An action STS does not have (the CLI cannot send one: a raw signed form POST).
    let answer = s
        .json_client()
        .query(
            "sts",
            "us-east-1",
            "Action=GetFederationTokenX&Version=2011-06-15",
        )
        .unwrap();
    assert_eq!(answer.status, 400);
    let body = String::from_utf8_lossy(&answer.body);
    assert!(body.contains("<ErrorResponse"), "{body}");
    assert!(body.contains("<Type>Sender</Type>"), "{body}");
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");
}
