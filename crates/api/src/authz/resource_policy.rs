//! A resource's own policy in the decision: an ECR repository's policy is the resource-based
//! policy of every `ecr:` action on the repository, and the repository's account is the
//! request's resource account (IAM's evaluation then needs, in the same account, the identity
//! OR the repository policy to allow; across accounts, both).

use berth_iam::policy::{Policy, PolicyType};
use berth_registry::{RegistryError, Scope};

/// The account owning the resources a request acts on, and their policy when they have one.
#[derive(Debug, Clone)]
pub struct ResourcePolicy {
    pub account: String,
    /// The policy document (JSON); `None`: the resource has none.
    pub document: Option<String>,
}

impl ResourcePolicy {
    /// The document compiled as a resource-based policy; one that no longer parses (it was
    /// checked when it was set) grants nothing.
    pub(super) fn parsed(&self) -> Option<Policy> {
        let document = self.document.as_deref()?;
        Policy::parse(document, PolicyType::Resource)
            .inspect_err(
                |e| tracing::warn!(error = %e, "a stored repository policy does not parse"),
            )
            .ok()
    }
}

/// The policy of the repository `resources` name first (`arn:aws:ecr:R:A:repository/NAME`),
/// read in `scope`; `None` for anything else, a repository without a policy, or one that does
/// not exist (the operation then says so).
pub fn repository_policy(
    registry: &berth_registry::Registry,
    scope: &Scope,
    resources: &[String],
) -> Result<ResourcePolicy, crate::protocol::AwsError> {
    let account = scope.account.to_string();
    let name = resources
        .first()
        .filter(|arn| arn.starts_with("arn:aws:ecr:"))
        .and_then(|arn| arn.split_once(":repository/"))
        .and_then(|(_, name)| name.parse().ok());
    let Some(name) = name else {
        return Ok(ResourcePolicy {
            account,
            document: None,
        });
    };
    let document = match registry.get_repository_policy(scope, &name) {
        Ok(text) => Some(text),
        Err(RegistryError::RepositoryPolicyNotFound { .. })
        | Err(RegistryError::RepositoryNotFound { .. }) => None,
        Err(e) => return Err(crate::ecr::ecr_error(e)),
    };
    Ok(ResourcePolicy { account, document })
}
