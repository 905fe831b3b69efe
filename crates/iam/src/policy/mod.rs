//! IAM's policy language and its evaluation, as a pure planner: compiled policies and a
//! request context in, a decision out. No I/O, no clock (the caller puts aws:CurrentTime in
//! the request), nothing allocated per decision: documents are compiled once (actions
//! lowercased, wildcards and variables split into parts, CIDRs and dates parsed) and request
//! values are parsed once when added to the request.
//!
//! - `document`: JSON documents → [`Policy`], with IAM's MalformedPolicyDocument messages;
//!   size quotas.
//! - `pattern`: wildcards, policy variables, action and ARN patterns.
//! - `condition`: the condition operators.
//! - `context`: the [`Request`] and its [`RequestPrincipal`].
//! - `evaluate`: [`evaluate`] → [`Decision`].
//! - `positions`: where statements are in a document's text and which context keys they
//!   name (the policy simulator's report).
//!
//! ```
//! use berth_iam::policy::{evaluate, Decision, Policy, PolicySet, PolicyType, Request, RequestPrincipal};
//!
//! let policy = Policy::parse(r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
//!     "Action": "ecr:BatchGetImage", "Resource": "arn:aws:ecr:*:111122223333:repository/app",
//!     "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}"#, PolicyType::Identity).unwrap();
//! let policies = PolicySet::new().with_identity(policy); // once per principal, then reused
//! let bob = RequestPrincipal::user("111122223333", "bob", "AIDAEXAMPLE", "arn:aws:iam::111122223333:user/bob");
//! let request = Request::new(bob, "ecs:RunTask", "arn:aws:ecs:us-east-1:111122223333:cluster/c")
//!     .with_key("aws:SourceIp", "10.1.2.3");
//! let decision = evaluate(&request, &policies);
//! assert!(matches!(decision, Decision::ImplicitDeny { .. }));
//! assert_eq!(decision.message(&request).unwrap(),
//!     "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: ecs:RunTask on \
//!      resource: arn:aws:ecs:us-east-1:111122223333:cluster/c because no identity-based policy \
//!      allows the ecs:RunTask action");
//! ```

mod condition;
mod context;
mod document;
mod evaluate;
mod pattern;
mod positions;

pub use context::{ContextValue, PrincipalKind, Request, RequestPrincipal};
pub use document::{
    Effect, Policy, PolicySizeQuota, PolicyType, PolicyVersion, Statement, TagKeysNamed,
    check_policy_size, policy_size,
};
pub use evaluate::{
    Decision, PolicySet, PolicySource, StatementRef, evaluate, matching_statements,
};
pub use positions::{Position, statement_context_keys, statement_positions};

/// Why a policy document is refused, in IAM's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// IAM's MalformedPolicyDocument (HTTP 400).
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// IAM's LimitExceeded (HTTP 409): a size quota.
    #[error("{0}")]
    LimitExceeded(String),
}

#[cfg(test)]
mod tests;
