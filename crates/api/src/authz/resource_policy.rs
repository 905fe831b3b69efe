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

/// The policy of the one repository `resources` names (`arn:aws:ecr:R:A:repository/NAME`),
/// read in `scope`; `None` for anything else, a repository without a policy, or one that does
/// not exist (the operation then says so). A request naming several repositories gets no
/// resource policy: one repository's policy must not decide for the others (a statement
/// without `Resource` would match them all), so the identity policies decide alone.
pub fn repository_policy(
    registry: &berth_registry::Registry,
    scope: &Scope,
    resources: &[String],
) -> Result<ResourcePolicy, crate::protocol::AwsError> {
    let account = scope.account.to_string();
    let only = match resources {
        [one] => Some(one),
        _ => None,
    };
    let name = only
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

/// The policy of the one secret `resources` names (a full or partial ARN of `scope`), and
/// the resources with that ARN made the secret's full ARN (policies name `secret:NAME-*`).
/// A secret that does not exist brings no policy (the operation then says so).
pub fn secret_policy(
    secrets: &berth_secrets::Secrets,
    scope: &Scope,
    resources: &[String],
) -> Result<(ResourcePolicy, Vec<String>), crate::protocol::AwsError> {
    let account = scope.account.to_string();
    let none = |resources: &[String]| {
        Ok((
            ResourcePolicy {
                account: account.clone(),
                document: None,
            },
            resources.to_vec(),
        ))
    };
    let [one] = resources else {
        return none(resources);
    };
    if !one.starts_with("arn:aws:secretsmanager:") {
        return none(resources);
    }
    let secret_scope = berth_secrets::SecretScope {
        account: account.clone(),
        region: scope.region.to_string(),
    };
    match secrets.describe(&secret_scope, one) {
        Ok(secret) => Ok((
            ResourcePolicy {
                account: account.clone(),
                document: secret.policy,
            },
            vec![secret.arn],
        )),
        Err(berth_secrets::SecretsError::Store(e)) => Err(crate::protocol::AwsError::server(
            format!("cannot read the secret: {e}"),
        )),
        Err(_) => none(resources),
    }
}

#[cfg(test)]
mod tests {
    use berth_iam::Principal;

    use super::*;
    use crate::authz::{OnResource, Refusal, RequestContext, authorize_on};

    const REPO: &str = "arn:aws:ecr:us-east-1:111111111111:repository/app";

    fn policy_for(principal: &str) -> ResourcePolicy {
        ResourcePolicy {
            account: "111111111111".into(),
            document: Some(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"ecr:BatchGetImage"}}]}}"#
            )),
        }
    }

    #[test]
    fn a_repository_policy_lets_in_its_own_account_alone_and_another_with_its_identity() {
        let iam = berth_iam::Iam::new(std::sync::Arc::new(berth_store::MemStore::new()));
        let cx = RequestContext::default();
        let resources = [REPO.to_string()];
        let decide = |who: &Principal, resource: &ResourcePolicy| {
            authorize_on(
                &iam,
                who,
                "ecr:BatchGetImage",
                &resources,
                &cx,
                Refusal::Json,
                OnResource {
                    policy: Some(resource),
                    tags: None,
                },
            )
        };
        // Same account: a policy naming the user allows it without any identity policy.
        let user = Principal::User {
            account: "111111111111".into(),
            name: "ci".into(),
            id: "AIDAEXAMPLE0000000000".into(),
            arn: "arn:aws:iam::111111111111:user/ci".into(),
        };
        assert!(decide(&user, &policy_for("arn:aws:iam::111111111111:user/ci")).is_ok());
        // Naming the account delegates to the (absent) identity policies.
        let e = decide(&user, &policy_for("arn:aws:iam::111111111111:root")).unwrap_err();
        assert!(
            e.message
                .ends_with("because no identity-based policy allows the ecr:BatchGetImage action"),
            "{}",
            e.message
        );

        // Another account's root: unrestricted at home, but here only the policy decides.
        let other_root = Principal::Root {
            account: "222222222222".into(),
        };
        let none = ResourcePolicy {
            account: "111111111111".into(),
            document: None,
        };
        let e = decide(&other_root, &none).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message,
            format!(
                "User: arn:aws:iam::222222222222:root is not authorized to perform: ecr:BatchGetImage on resource: {REPO} because no resource-based policy allows the ecr:BatchGetImage action"
            )
        );
        assert!(decide(&other_root, &policy_for("arn:aws:iam::222222222222:root")).is_ok());
        assert!(decide(&other_root, &policy_for("arn:aws:iam::333333333333:root")).is_err());
        // The same root in its own account needs no policy at all.
        let own = ResourcePolicy {
            account: "222222222222".into(),
            document: None,
        };
        assert!(decide(&other_root, &own).is_ok());
    }
}
