//! Service-linked roles: CreateServiceLinkedRole, DeleteServiceLinkedRole,
//! GetServiceLinkedRoleDeletionStatus. Such a role is made by IAM for one AWS service, with
//! the name, path (`/aws-service-role/SERVICE/`), trust policy and AWS managed policy that
//! service defines; only the service may change it: UpdateRole, UpdateAssumeRolePolicy,
//! DeleteRole and the role's policy actions refuse it (UnmodifiableEntity).
//!
//! AWS deletes such a role asynchronously, after asking its service whether resources still
//! use it; Berth has no resources that depend on it, so the task succeeds at once and its
//! status is kept for GetServiceLinkedRoleDeletionStatus.

use std::collections::BTreeMap;

use berth_store::{Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::roles::{MIN_SESSION, Role, no_such_role, role_key};
use crate::users::check_name;
use crate::{Iam, IamError, Result, decode, encode, ids, now_epoch};

/// A service that has a service-linked role Berth can make.
struct LinkedService {
    service: &'static str,
    role_name: &'static str,
    policy_arn: &'static str,
    description: Option<&'static str>,
    /// Whether CreateServiceLinkedRole's `CustomSuffix` may name another role of the
    /// service (`ROLE_SUFFIX`).
    suffix_allowed: bool,
}

/// The services of ECS's world whose service-linked roles Berth knows, as AWS names them
/// (ECS's, Application Auto Scaling's for ECS services, EC2 Auto Scaling's for capacity
/// providers).
const SERVICES: &[LinkedService] = &[
    LinkedService {
        service: "ecs.amazonaws.com",
        role_name: "AWSServiceRoleForECS",
        policy_arn: "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy",
        description: Some("Allows ECS to create and manage AWS resources on your behalf."),
        suffix_allowed: false,
    },
    LinkedService {
        service: "ecs.application-autoscaling.amazonaws.com",
        role_name: "AWSServiceRoleForApplicationAutoScaling_ECSService",
        policy_arn: "arn:aws:iam::aws:policy/aws-service-role/AWSApplicationAutoscalingECSServicePolicy",
        description: None,
        suffix_allowed: false,
    },
    LinkedService {
        service: "autoscaling.amazonaws.com",
        role_name: "AWSServiceRoleForAutoScaling",
        policy_arn: "arn:aws:iam::aws:policy/aws-service-role/AutoScalingServiceRolePolicy",
        description: None,
        suffix_allowed: true,
    },
];

/// The ARN of `service`'s service-linked role in `account` (with `suffix` when the service
/// takes one), for a service Berth knows: what CreateServiceLinkedRole is authorized on.
pub fn service_linked_role_arn(
    account: &str,
    service: &str,
    suffix: Option<&str>,
) -> Option<String> {
    SERVICES.iter().find(|s| s.service == service).map(|s| {
        let suffix = suffix
            .filter(|_| s.suffix_allowed)
            .map(|x| format!("_{x}"))
            .unwrap_or_default();
        format!(
            "arn:aws:iam::{account}:role/aws-service-role/{service}/{}{suffix}",
            s.role_name
        )
    })
}

/// A deletion task of a service-linked role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionTask {
    pub deletion_task_id: String,
    /// `SUCCEEDED`, `IN_PROGRESS`, `FAILED` or `NOT_STARTED`.
    pub status: String,
}

fn task_key(account: &str, task_id: &str) -> String {
    format!("iam/{account}/slr-deletions/{}", task_id.replace('/', "|"))
}

impl Iam {
    /// CreateServiceLinkedRole for `service` (`ecs.amazonaws.com`, …).
    pub fn create_service_linked_role(
        &self,
        account: &str,
        service: &str,
        description: Option<&str>,
        custom_suffix: Option<&str>,
    ) -> Result<Role> {
        let linked = SERVICES
            .iter()
            .find(|s| s.service == service)
            .ok_or_else(|| IamError::InvalidInput(format!("Invalid service name: {service}")))?;
        let role_name = match custom_suffix {
            None => linked.role_name.to_string(),
            Some(suffix) if linked.suffix_allowed => {
                check_name("customSuffix", suffix, 64)?;
                format!("{}_{suffix}", linked.role_name)
            }
            Some(_) => {
                return Err(IamError::InvalidInput(format!(
                    "Custom suffix is not allowed for {service}"
                )));
            }
        };
        let path = format!("/aws-service-role/{service}/");
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        let role = Role {
            arn: format!("arn:aws:iam::{account}:role{path}{role_name}"),
            path,
            role_id: ids::role_id(),
            role_name,
            create_date: now_epoch(),
            assume_role_policy_document: trust,
            description: description
                .map(str::to_string)
                .or(linked.description.map(str::to_string)),
            max_session_duration: MIN_SESSION,
            tags: Vec::new(),
            last_used: None,
            attached_policies: vec![linked.policy_arn.to_string()],
            inline_policies: BTreeMap::new(),
            service_linked: Some(service.to_string()),
        };
        let key = role_key(account, &role.role_name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&role))],
        )? {
            TxnOutcome::Committed(_) => Ok(role),
            TxnOutcome::Conflict => Err(IamError::InvalidInput(format!(
                "Service role name {} has been taken in this account, please try a different suffix.",
                role.role_name
            ))),
        }
    }

    /// The service-linked role of `service` in `account`, made when it is missing: what
    /// ECS (CreateCluster), Application Auto Scaling (RegisterScalableTarget) and EC2 Auto
    /// Scaling (CreateAutoScalingGroup) do on their first use. `Ok(true)`: made now.
    pub fn ensure_service_linked_role(&self, account: &str, service: &str) -> Result<bool> {
        let linked = SERVICES
            .iter()
            .find(|s| s.service == service)
            .ok_or_else(|| IamError::InvalidInput(format!("Invalid service name: {service}")))?;
        if self
            .store
            .get(&role_key(account, linked.role_name))?
            .is_some()
        {
            return Ok(false);
        }
        match self.create_service_linked_role(account, service, None, None) {
            Ok(_) => Ok(true),
            // Made meanwhile by another request.
            Err(_)
                if self
                    .store
                    .get(&role_key(account, linked.role_name))?
                    .is_some() =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// DeleteServiceLinkedRole: the role goes (its policies with it) and a deletion task
    /// records it; its id names the service and the role, as AWS's do.
    pub fn delete_service_linked_role(&self, account: &str, role_name: &str) -> Result<String> {
        loop {
            let key = role_key(account, role_name);
            let kv = self
                .store
                .get(&key)?
                .ok_or_else(|| no_such_role(role_name))?;
            let role: Role = decode(&key, &kv.value)?;
            let Some(service) = &role.service_linked else {
                return Err(IamError::InvalidInput(format!(
                    "Role {role_name} is not a service-linked role."
                )));
            };
            let task_id = format!(
                "task/aws-service-role/{service}/{}/{}",
                role.role_name,
                uuid::Uuid::new_v4()
            );
            let task = DeletionTask {
                deletion_task_id: task_id.clone(),
                status: "SUCCEEDED".into(),
            };
            let tkey = task_key(account, &task_id);
            if self
                .store
                .txn(
                    &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                    &[Op::delete(&key), Op::put(&tkey, encode(&task))],
                )?
                .is_committed()
            {
                return Ok(task_id);
            }
        }
    }

    pub fn service_linked_role_deletion_status(
        &self,
        account: &str,
        task_id: &str,
    ) -> Result<DeletionTask> {
        // `task/aws-service-role/SERVICE/ROLE/UUID`, as DeleteServiceLinkedRole gives them.
        let well_formed = task_id
            .strip_prefix("task/aws-service-role/")
            .is_some_and(|rest| rest.split('/').filter(|p| !p.is_empty()).count() == 3);
        if !well_formed {
            return Err(IamError::InvalidInput(format!(
                "Invalid deletion task id: {task_id}"
            )));
        }
        let key = task_key(account, task_id);
        let kv = self.store.get(&key)?.ok_or_else(|| {
            IamError::NoSuchEntity(format!("Deletion task {task_id} cannot be found."))
        })?;
        decode(&key, &kv.value)
    }
}
