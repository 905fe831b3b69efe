//! The policy module's tests: documents, operators, evaluation order, AWS's documented
//! examples, and properties.

mod aws_examples;
mod conditions;
mod documents;
mod evaluation;

use super::*;

pub(super) const ACCOUNT: &str = "111122223333";
pub(super) const OTHER: &str = "444455556666";

pub(super) fn bob() -> RequestPrincipal {
    RequestPrincipal::user(
        ACCOUNT,
        "bob",
        "AIDAEXAMPLEBOB",
        "arn:aws:iam::111122223333:user/bob",
    )
}

pub(super) fn identity(doc: serde_json::Value) -> Policy {
    Policy::from_json(&doc, PolicyType::Identity).unwrap()
}

pub(super) fn resource_policy(doc: serde_json::Value) -> Policy {
    Policy::from_json(&doc, PolicyType::Resource).unwrap()
}

/// A 2012-10-17 identity policy of one statement.
pub(super) fn one(statement: serde_json::Value) -> Policy {
    identity(serde_json::json!({"Version": "2012-10-17", "Statement": statement}))
}

pub(super) fn allowed(request: &Request, policies: &PolicySet) -> bool {
    evaluate(request, policies).is_allowed()
}
