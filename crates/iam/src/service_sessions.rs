//! Sessions an AWS service opens on a role on the caller's behalf: ECS assuming a task's
//! role (`ecs-tasks.amazonaws.com`) to hand its containers credentials. The role's trust
//! policy must let the service assume it, as AWS checks when the service calls
//! `sts:AssumeRole` itself; the session acts as the role, named as the service names it
//! (ECS: the task's id).

use crate::policy::{Policy, PolicySet, PolicyType, Request, RequestPrincipal, evaluate};
use crate::{Iam, IamError, Principal, Result, Role, Session};

impl Iam {
    /// The role `role_arn` of an account of this installation, when its trust policy lets
    /// `service` assume it. `Ok(None)`: no such role, or its trust policy does not.
    pub fn role_trusting_service(&self, role_arn: &str, service: &str) -> Result<Option<Role>> {
        let Some((account, name)) = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(":role/"))
            .and_then(|(account, rest)| Some((account, rest.rsplit('/').next()?)))
        else {
            return Ok(None);
        };
        let role = match self.get_role(account, name) {
            Ok(role) if role.arn == role_arn => role,
            Ok(_) | Err(IamError::NoSuchEntity(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(trusts(&role, service).then_some(role))
    }

    /// A session of `role` opened by `service`, named `session_name`, for `seconds`
    /// (the role's maximum session duration at most).
    pub fn service_session(
        &self,
        role: &Role,
        session_name: &str,
        seconds: i64,
    ) -> Result<Session> {
        let account = role
            .arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(':'))
            .map(|(account, _)| account.to_string())
            .unwrap_or_default();
        self.issue_session(
            Principal::AssumedRole {
                account,
                role_name: role.role_name.clone(),
                role_arn: role.arn.clone(),
                role_id: role.role_id.clone(),
                session_name: session_name.to_string(),
                session_policies: Vec::new(),
                session_tags: Vec::new(),
                transitive_tag_keys: Vec::new(),
            },
            seconds.clamp(1, role.max_session_duration.max(1)),
        )
    }
}

/// Whether `role`'s trust policy allows `service` to `sts:AssumeRole`.
fn trusts(role: &Role, service: &str) -> bool {
    let Ok(trust) = Policy::parse(&role.assume_role_policy_document, PolicyType::Resource) else {
        return false;
    };
    let request = Request::new(
        RequestPrincipal::service(service),
        "sts:AssumeRole",
        &role.arn,
    );
    evaluate(&request, &PolicySet::new().with_resource(trust)).is_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CreateRole;

    fn iam() -> Iam {
        Iam::new(std::sync::Arc::new(berth_store::MemStore::new()))
    }

    fn role(iam: &Iam, name: &str, service: &str) -> Role {
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        iam.create_role(
            "111122223333",
            CreateRole {
                role_name: name.into(),
                assume_role_policy_document: trust,
                ..CreateRole::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn only_a_role_trusting_the_service_is_assumed_by_it() {
        let iam = iam();
        let app = role(&iam, "app", "ecs-tasks.amazonaws.com");
        let other = role(&iam, "other", "ec2.amazonaws.com");
        let ecs = "ecs-tasks.amazonaws.com";
        assert_eq!(
            iam.role_trusting_service(&app.arn, ecs)
                .unwrap()
                .map(|r| r.arn),
            Some(app.arn.clone())
        );
        assert!(
            iam.role_trusting_service(&other.arn, ecs)
                .unwrap()
                .is_none()
        );
        let missing = "arn:aws:iam::111122223333:role/missing";
        assert!(iam.role_trusting_service(missing, ecs).unwrap().is_none());
        assert!(iam.role_trusting_service("app", ecs).unwrap().is_none());

        let session = iam.service_session(&app, "0123abcd", 900).unwrap();
        assert!(session.access_key_id.starts_with("ASIA"));
        assert_eq!(
            session.principal.arn(),
            "arn:aws:sts::111122223333:assumed-role/app/0123abcd"
        );
    }
}
