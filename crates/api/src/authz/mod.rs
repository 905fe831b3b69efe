//! Authorization of every AWS API request, after its signature is checked. The account's
//! root credentials are unrestricted. An IAM user is allowed only what a policy allows —
//! and as policies cannot be attached yet (the next step of the identity issue), a user
//! has none: IAM's evaluation then ends in an implicit deny for every action but those
//! that need no permission (`sts:GetCallerIdentity`, `sts:GetSessionToken`), as AWS answers a user without
//! policies.

mod resources;

use axum::http::StatusCode;
use berth_iam::Principal;

pub use resources::resources;

use crate::protocol::AwsError;

/// Actions every principal may call: AWS checks no permission for them.
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity", "sts:GetSessionToken"];

/// The protocol a refusal is written in: its code differs.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// JSON services: `AccessDeniedException` (HTTP 400).
    Json,
    /// Query services: `AccessDenied` (HTTP 403).
    Query,
}

/// Whether `principal` may perform `action` (`service:Operation`) on every one of
/// `resources` (ARNs, or `*`).
pub fn authorize(
    principal: &Principal,
    action: &str,
    resources: &[String],
    refusal: Refusal,
) -> Result<(), AwsError> {
    if matches!(principal, Principal::Root { .. }) || NEEDS_NO_PERMISSION.contains(&action) {
        return Ok(());
    }
    let resource = resources.first().map_or("*", String::as_str);
    let message = format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
        principal.arn()
    );
    Err(match refusal {
        Refusal::Json => AwsError::client("AccessDeniedException", message),
        Refusal::Query => AwsError::new(StatusCode::FORBIDDEN, "AccessDenied", message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_may_do_anything_and_a_user_without_policies_only_ask_who_it_is() {
        let root = Principal::Root {
            account: "000000000000".into(),
        };
        let any = ["*".to_string()];
        assert!(authorize(&root, "ecs:RunTask", &any, Refusal::Json).is_ok());
        let user = Principal::User {
            account: "000000000000".into(),
            name: "ci".into(),
            id: "AIDAEXAMPLE0000000000".into(),
            arn: "arn:aws:iam::000000000000:user/ci".into(),
        };
        assert!(authorize(&user, "sts:GetCallerIdentity", &any, Refusal::Query).is_ok());
        let e = authorize(&user, "ecs:ListClusters", &any, Refusal::Json).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message,
            "User: arn:aws:iam::000000000000:user/ci is not authorized to perform: ecs:ListClusters on resource: * because no identity-based policy allows the ecs:ListClusters action"
        );
        let e = authorize(&user, "iam:GetUser", &any, Refusal::Query).unwrap_err();
        assert_eq!((e.code.as_str(), e.status.as_u16()), ("AccessDenied", 403));
    }
}
