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

mod condition;
mod context;
mod document;
mod evaluate;
mod pattern;

pub use context::{ContextValue, PrincipalKind, Request, RequestPrincipal};
pub use document::{
    Effect, Policy, PolicySizeQuota, PolicyType, PolicyVersion, Statement, check_policy_size,
    policy_size,
};
pub use evaluate::{
    Decision, PolicySet, PolicySource, StatementRef, evaluate, matching_statements,
};

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
