//! SigV4 with the real `aws` CLI: botocore's own signing is accepted and the same request
//! signed with a wrong secret is refused with AWS's error code. Every other refusal of the
//! SigV4 verifier and the AWS JSON envelope, and the registry token's lifetime and binding,
//! are API contract tests in crates/testkit/tests/contract/aws_auth.rs (the kit's own signer).

use berth_e2e::{BerthServer, assert_aws_error, ok_json};

#[test]
fn a_wrong_secret_is_invalid_signature() {
    let s = BerthServer::start();
    // The CLI's signature with the right secret opens the API.
    let v = ok_json(&s.aws(&["ecr", "describe-repositories"]));
    assert!(v["repositories"].is_array(), "{v}");

    let out = s.aws_with(
        "us-east-1",
        &s.access_key,
        "wrongwrongwrongwrongwrongwrongwrongwrong",
        &["ecr", "describe-repositories"],
    );
    assert_aws_error(&out, "InvalidSignatureException");
}
