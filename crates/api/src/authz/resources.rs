//! The resources an API action is authorized on, as the AWS Service Authorization
//! Reference lists them per action: ECS clusters, services, tasks and task definitions,
//! ECR repositories, CloudWatch Logs groups and streams — read from the request's own
//! fields, before the handler runs. Actions whose reference lists no resource type (or
//! lists that cannot name one, such as unfiltered List and Describe calls) are
//! authorized on `*`.

use berth_model::Scope;
use serde_json::Value;

/// The ARNs `service:operation` acts on for a JSON `body`.
pub fn resources(service: &str, operation: &str, body: &[u8], scope: &Scope) -> Vec<String> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (region, account) = (scope.region.as_str(), scope.account.as_str());
    let found = match service {
        "ecs" => ecs(operation, &body, region, account),
        "ecr" => ecr(operation, &body, region, account),
        "logs" => logs(&body, region, account),
        "ssm" => ssm(operation, &body, region, account),
        "secretsmanager" => secretsmanager(operation, &body, region, account),
        _ => Vec::new(),
    };
    if found.is_empty() {
        vec!["*".to_string()]
    } else {
        found
    }
}

/// The service condition keys a JSON request gives: `ecs:cluster` (the cluster's ARN) for
/// every ECS operation that names or defaults to a cluster, as the Service Authorization
/// Reference lists it for them; Application Auto Scaling's
/// `application-autoscaling:service-namespace` and `application-autoscaling:scalable-dimension`
/// from the request's members.
pub fn service_keys(
    service: &str,
    operation: &str,
    body: &[u8],
    scope: &Scope,
) -> Vec<(String, String)> {
    if service == "application-autoscaling" {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        return [
            (
                "ServiceNamespace",
                "application-autoscaling:service-namespace",
            ),
            (
                "ScalableDimension",
                "application-autoscaling:scalable-dimension",
            ),
        ]
        .into_iter()
        .filter_map(|(member, key)| text(&body, member).map(|v| (key.to_string(), v.to_string())))
        .collect();
    }
    if service != "ecs" {
        return Vec::new();
    }
    let clusterless = [
        "ListClusters",
        "CreateCluster",
        "DescribeClusters",
        "RegisterTaskDefinition",
        "DeregisterTaskDefinition",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "ListTaskDefinitionFamilies",
        "DeleteTaskDefinitions",
        "ListAccountSettings",
        "PutAccountSetting",
        "PutAccountSettingDefault",
        "DeleteAccountSetting",
        "CreateCapacityProvider",
        "UpdateCapacityProvider",
        "DeleteCapacityProvider",
        "DescribeCapacityProviders",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    ];
    if clusterless.contains(&operation) {
        return Vec::new();
    }
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let cluster = cluster_name(text(&body, "cluster"));
    vec![(
        "ecs:cluster".to_string(),
        format!(
            "arn:aws:ecs:{}:{}:cluster/{cluster}",
            scope.region.as_str(),
            scope.account.as_str()
        ),
    )]
}

/// The IAM resource a Query action acts on, by the parameter its handler uses: group
/// actions their `GroupName`, instance profile actions their `InstanceProfileName`
/// (AddRoleToInstanceProfile too), role actions their `RoleName`, service-linked role
/// actions the role made or deleted, policy actions their `PolicyArn` (CreatePolicy the ARN
/// it will have), user, tag and access-key actions their `UserName` or else the calling
/// user; named with the stored entity's path (`iam_arn`). Other actions (listings,
/// GetAccountAuthorizationDetails, STS): `*`.
pub fn query_resources(
    request: &crate::protocol::query::QueryRequest,
    account: &str,
    principal: &berth_iam::Principal,
    iam_arn: impl Fn(&str, &str) -> Option<String>,
) -> Vec<String> {
    let action = request.action.as_str();
    let entity = |kind: &str, name: &str| {
        iam_arn(kind, name).unwrap_or_else(|| format!("arn:aws:iam::{account}:{kind}/{name}"))
    };
    let path_arn = |kind: &str, member: &str| {
        request.get(member).map(|name| {
            let path = request.get("Path").unwrap_or("/");
            format!("arn:aws:iam::{account}:{kind}{path}{name}")
        })
    };
    let arn = if let Some(arn) = match action {
        // Group actions: the group (AddUserToGroup and RemoveUserFromGroup too).
        "CreateGroup" => Some(path_arn("group", "GroupName")),
        "GetGroup"
        | "UpdateGroup"
        | "DeleteGroup"
        | "AddUserToGroup"
        | "RemoveUserFromGroup"
        | "AttachGroupPolicy"
        | "DetachGroupPolicy"
        | "ListAttachedGroupPolicies"
        | "PutGroupPolicy"
        | "GetGroupPolicy"
        | "ListGroupPolicies"
        | "DeleteGroupPolicy" => Some(request.get("GroupName").map(|n| entity("group", n))),
        // Instance profile actions: the profile (AddRoleToInstanceProfile too).
        "CreateInstanceProfile" => Some(path_arn("instance-profile", "InstanceProfileName")),
        "GetInstanceProfile"
        | "DeleteInstanceProfile"
        | "AddRoleToInstanceProfile"
        | "RemoveRoleFromInstanceProfile"
        | "TagInstanceProfile"
        | "UntagInstanceProfile"
        | "ListInstanceProfileTags" => Some(
            request
                .get("InstanceProfileName")
                .map(|n| entity("instance-profile", n)),
        ),
        // The service-linked role it will make, or the one a deletion task names
        // (`task/aws-service-role/SERVICE/ROLE/ID`).
        "CreateServiceLinkedRole" => Some(request.get("AWSServiceName").and_then(|s| {
            berth_iam::service_linked_role_arn(account, s, request.get("CustomSuffix"))
        })),
        "GetServiceLinkedRoleDeletionStatus" => Some(
            request
                .get("DeletionTaskId")
                .and_then(|t| t.strip_prefix("task/"))
                .and_then(|t| t.rsplit_once('/'))
                .map(|(role, _)| format!("arn:aws:iam::{account}:role/{role}")),
        ),
        // The user, group or role whose policies are read (iam:SimulatePrincipalPolicy's
        // resource types); custom policies read none.
        "SimulatePrincipalPolicy" | "GetContextKeysForPrincipalPolicy" => {
            Some(request.get("PolicySourceArn").map(str::to_string))
        }
        "SimulateCustomPolicy" | "GetContextKeysForCustomPolicy" => Some(None),
        // Server certificate actions: the certificate (its path from the request or the
        // stored certificate).
        "UploadServerCertificate" => Some(path_arn("server-certificate", "ServerCertificateName")),
        "GetServerCertificate" | "UpdateServerCertificate" | "DeleteServerCertificate" => Some(
            request
                .get("ServerCertificateName")
                .map(|n| entity("server-certificate", n)),
        ),
        // The key's owner: `access-key` looks the key up.
        "GetAccessKeyLastUsed" => Some(
            request
                .get("AccessKeyId")
                .and_then(|id| iam_arn("access-key", id)),
        ),
        _ => None,
    } {
        arn
    } else if action.contains("Role") {
        request.get("RoleName").map(|n| entity("role", n))
    } else if action.contains("Polic") && !action.contains("User") {
        match (action, request.get("PolicyArn"), request.get("PolicyName")) {
            ("CreatePolicy", _, Some(name)) => {
                let path = request.get("Path").unwrap_or("/");
                Some(format!("arn:aws:iam::{account}:policy{path}{name}"))
            }
            (_, Some(arn), _) => Some(arn.to_string()),
            _ => None,
        }
    } else if action.contains("User") || action.contains("AccessKey") {
        match (request.get("UserName"), principal) {
            (Some(name), _) => Some(entity("user", name)),
            (None, berth_iam::Principal::User { arn, .. }) => Some(arn.clone()),
            (None, _) => None,
        }
    } else {
        None
    };
    vec![arn.unwrap_or_else(|| "*".to_string())]
}

/// The EC2 resources a Query action acts on, as the Service Authorization Reference lists
/// them: the VPC, subnet, security group, internet gateway or route table it names (a
/// Create* the resource type's `*`, with the VPC it goes in); CreateTags and DeleteTags each
/// resource tagged. Describe* and the account's views: `*`.
pub fn ec2_resources(
    request: &crate::protocol::query::QueryRequest,
    region: &str,
    account: &str,
) -> Vec<String> {
    let arn = |kind: &str, id: &str| format!("arn:aws:ec2:{region}:{account}:{kind}/{id}");
    let named = |kind: &str, member: &str| request.get(member).map(|id| arn(kind, id));
    let found: Vec<Option<String>> = match request.action.as_str() {
        "CreateVpc" => vec![Some(arn("vpc", "*"))],
        "DeleteVpc" | "ModifyVpcAttribute" | "DescribeVpcAttribute" => {
            vec![named("vpc", "VpcId")]
        }
        "CreateSubnet" => vec![Some(arn("subnet", "*")), named("vpc", "VpcId")],
        "DeleteSubnet" | "ModifySubnetAttribute" => vec![named("subnet", "SubnetId")],
        "CreateSecurityGroup" => vec![Some(arn("security-group", "*")), named("vpc", "VpcId")],
        "DeleteSecurityGroup"
        | "AuthorizeSecurityGroupIngress"
        | "AuthorizeSecurityGroupEgress"
        | "RevokeSecurityGroupIngress"
        | "RevokeSecurityGroupEgress" => vec![named("security-group", "GroupId")],
        "CreateInternetGateway" => vec![Some(arn("internet-gateway", "*"))],
        "DeleteInternetGateway" => vec![named("internet-gateway", "InternetGatewayId")],
        "AttachInternetGateway" | "DetachInternetGateway" => vec![
            named("internet-gateway", "InternetGatewayId"),
            named("vpc", "VpcId"),
        ],
        "CreateRouteTable" => vec![Some(arn("route-table", "*")), named("vpc", "VpcId")],
        "DeleteRouteTable" | "CreateRoute" | "DeleteRoute" | "ReplaceRoute" => {
            vec![named("route-table", "RouteTableId")]
        }
        "AssociateRouteTable" => vec![
            named("route-table", "RouteTableId"),
            named("subnet", "SubnetId"),
        ],
        "CreateLaunchTemplate" => vec![Some(arn("launch-template", "*"))],
        "DeleteLaunchTemplate" | "CreateLaunchTemplateVersion" => {
            vec![Some(request.get("LaunchTemplateId").map_or_else(
                || arn("launch-template", "*"),
                |id| arn("launch-template", id),
            ))]
        }
        "CreateTags" | "DeleteTags" => request
            .ec2_list("ResourceId")
            .into_iter()
            .map(|id| {
                let kind = match id.split('-').next().unwrap_or_default() {
                    "vpc" => "vpc",
                    "subnet" => "subnet",
                    "sg" => "security-group",
                    "igw" => "internet-gateway",
                    "rtb" => "route-table",
                    "eni" => "network-interface",
                    _ => return None,
                };
                Some(arn(kind, id))
            })
            .collect(),
        _ => Vec::new(),
    };
    let found: Vec<String> = found.into_iter().flatten().collect();
    if found.is_empty() {
        vec!["*".to_string()]
    } else {
        found
    }
}

/// The EC2 Auto Scaling resources a Query action acts on, as the Service Authorization
/// Reference lists them: a group by name (any id) for the actions on one group, `*` for
/// the Describe actions and for those naming only an instance.
pub fn autoscaling_resources(
    request: &crate::protocol::query::QueryRequest,
    region: &str,
    account: &str,
) -> Vec<String> {
    match (request.action.as_str(), request.get("AutoScalingGroupName")) {
        (
            "CreateAutoScalingGroup"
            | "UpdateAutoScalingGroup"
            | "DeleteAutoScalingGroup"
            | "SetDesiredCapacity"
            | "SetInstanceProtection",
            Some(name),
        ) => vec![format!(
            "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"
        )],
        _ => vec!["*".to_string()],
    }
}

/// The ELBv2 resources a Query action acts on, as the Service Authorization Reference
/// lists them: the load balancer, target group, listener or rule its ARN parameter names
/// (CreateLoadBalancer and CreateTargetGroup the ARN they will have, any id:
/// `loadbalancer/app/NAME/*`), every resource AddTags and RemoveTags name, every rule
/// SetRulePriorities names. Describe calls: `*`.
pub fn elbv2_resources(
    request: &crate::protocol::query::QueryRequest,
    region: &str,
    account: &str,
) -> Vec<String> {
    let base = format!("arn:aws:elasticloadbalancing:{region}:{account}");
    let found: Vec<String> = match request.action.as_str() {
        "CreateLoadBalancer" => {
            let kind = match request.get("Type") {
                Some("network") => "net",
                _ => "app",
            };
            request
                .get("Name")
                .map(|n| format!("{base}:loadbalancer/{kind}/{n}/*"))
                .into_iter()
                .collect()
        }
        "CreateTargetGroup" => request
            .get("Name")
            .map(|n| format!("{base}:targetgroup/{n}/*"))
            .into_iter()
            .collect(),
        "AddTags" | "RemoveTags" => request
            .list("ResourceArns")
            .into_iter()
            .map(str::to_string)
            .collect(),
        "SetRulePriorities" => request
            .structs("RulePriorities")
            .into_iter()
            .filter_map(|m| m.get("RuleArn").map(|a| a.to_string()))
            .collect(),
        action if action.starts_with("Describe") => Vec::new(),
        _ => [
            "RuleArn",
            "ListenerArn",
            "TargetGroupArn",
            "LoadBalancerArn",
        ]
        .iter()
        .find_map(|p| request.get(p))
        .map(str::to_string)
        .into_iter()
        .collect(),
    };
    if found.is_empty() {
        vec!["*".to_string()]
    } else {
        found
    }
}

fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

fn texts<'a>(body: &'a Value, field: &str) -> Vec<&'a str> {
    body.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A name or an ARN of `kind` in `region` and `account`: ARNs as given.
fn arn_of(kind: &str, name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        name.to_string()
    } else {
        format!("arn:aws:ecs:{region}:{account}:{kind}/{name}")
    }
}

/// The short name of a cluster given by name or ARN.
fn cluster_name(cluster: Option<&str>) -> &str {
    let cluster = cluster.unwrap_or("default");
    cluster.rsplit('/').next().unwrap_or(cluster)
}

fn ecs(operation: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    let cluster = cluster_name(text(body, "cluster"));
    let cluster_arn = || arn_of("cluster", cluster, region, account);
    match operation {
        "CreateCluster" => vec![arn_of(
            "cluster",
            text(body, "clusterName").unwrap_or("default"),
            region,
            account,
        )],
        "DescribeClusters" => {
            let names = texts(body, "clusters");
            if names.is_empty() {
                vec![cluster_arn()]
            } else {
                names
                    .iter()
                    .map(|n| arn_of("cluster", cluster_name(Some(n)), region, account))
                    .collect()
            }
        }
        "DeleteCluster"
        | "UpdateCluster"
        | "UpdateClusterSettings"
        | "PutClusterCapacityProviders" => vec![arn_of(
            "cluster",
            cluster_name(text(body, "cluster")),
            region,
            account,
        )],
        "RunTask" | "StartTask" => text(body, "taskDefinition")
            .map(|td| vec![task_definition_arn(td, region, account)])
            .unwrap_or_default(),
        "CreateService" => text(body, "serviceName")
            .map(|n| {
                vec![arn_of(
                    "service",
                    &format!("{cluster}/{n}"),
                    region,
                    account,
                )]
            })
            .unwrap_or_default(),
        "UpdateService" | "DeleteService" => text(body, "service")
            .map(|n| vec![service_arn(cluster, n, region, account)])
            .unwrap_or_default(),
        "DescribeServices" => texts(body, "services")
            .iter()
            .map(|n| service_arn(cluster, n, region, account))
            .collect(),
        "StopTask" => text(body, "task")
            .map(|t| vec![task_arn(cluster, t, region, account)])
            .unwrap_or_default(),
        "DescribeTasks" => texts(body, "tasks")
            .iter()
            .map(|t| task_arn(cluster, t, region, account))
            .collect(),
        "GetTaskProtection" | "UpdateTaskProtection" => texts(body, "tasks")
            .iter()
            .map(|t| task_arn(cluster, t, region, account))
            .collect(),
        // The cluster an instance joins or leaves, or whose instances are listed.
        "RegisterContainerInstance" | "DeregisterContainerInstance" | "ListContainerInstances" => {
            vec![cluster_arn()]
        }
        "DescribeContainerInstances" | "UpdateContainerInstancesState" => {
            texts(body, "containerInstances")
                .iter()
                .map(|i| instance_arn(cluster, i, region, account))
                .collect()
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => text(body, "resourceArn")
            .map(|a| vec![a.to_string()])
            .unwrap_or_default(),
        "CreateCapacityProvider" => text(body, "name")
            .map(|n| vec![arn_of("capacity-provider", n, region, account)])
            .unwrap_or_default(),
        "UpdateCapacityProvider" | "DeleteCapacityProvider" => text(body, "name")
            .or_else(|| text(body, "capacityProvider"))
            .map(|n| vec![arn_of("capacity-provider", short(n), region, account)])
            .unwrap_or_default(),
        "DescribeCapacityProviders" => texts(body, "capacityProviders")
            .iter()
            .map(|n| arn_of("capacity-provider", short(n), region, account))
            .collect(),
        _ => Vec::new(),
    }
}

fn instance_arn(cluster: &str, instance: &str, region: &str, account: &str) -> String {
    let instance = short(instance);
    format!("arn:aws:ecs:{region}:{account}:container-instance/{cluster}/{instance}")
}

/// The last segment of a name or ARN: ECS's handlers find a service or task by it within
/// the request's cluster, so authorization names it the same way.
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn service_arn(cluster: &str, service: &str, region: &str, account: &str) -> String {
    let service = short(service);
    format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{service}")
}

fn task_arn(cluster: &str, task: &str, region: &str, account: &str) -> String {
    let task = short(task);
    format!("arn:aws:ecs:{region}:{account}:task/{cluster}/{task}")
}

/// A task definition by ARN, `family:revision`, or family (its every revision).
fn task_definition_arn(td: &str, region: &str, account: &str) -> String {
    if td.contains(':') {
        arn_of("task-definition", td, region, account)
    } else {
        arn_of("task-definition", &format!("{td}:*"), region, account)
    }
}

fn ecr(operation: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    let registry = text(body, "registryId").unwrap_or(account);
    let repository = |name: &str| format!("arn:aws:ecr:{region}:{registry}:repository/{name}");
    match operation {
        // Registry-wide: the reference lists no resource type.
        "GetAuthorizationToken"
        | "DescribeRegistry"
        | "PutRegistryPolicy"
        | "GetRegistryPolicy"
        | "DeleteRegistryPolicy"
        | "PutRegistryScanningConfiguration"
        | "GetRegistryScanningConfiguration"
        | "PutReplicationConfiguration" => Vec::new(),
        "DescribeRepositories" => texts(body, "repositoryNames")
            .iter()
            .map(|n| repository(n))
            .collect(),
        "TagResource" | "UntagResource" | "ListTagsForResource" => text(body, "resourceArn")
            .map(|a| vec![a.to_string()])
            .unwrap_or_default(),
        _ => text(body, "repositoryName")
            .map(|n| vec![repository(n)])
            .unwrap_or_default(),
    }
}

fn logs(body: &Value, region: &str, account: &str) -> Vec<String> {
    let Some(group) = text(body, "logGroupName") else {
        return text(body, "logGroupIdentifier")
            .map(|g| {
                let g = g.trim_end_matches(":*");
                if g.starts_with("arn:") {
                    vec![g.to_string()]
                } else {
                    vec![format!("arn:aws:logs:{region}:{account}:log-group:{g}")]
                }
            })
            .unwrap_or_default();
    };
    let group_arn = format!("arn:aws:logs:{region}:{account}:log-group:{group}");
    match text(body, "logStreamName") {
        Some(stream) => vec![format!("{group_arn}:log-stream:{stream}")],
        None => vec![group_arn],
    }
}

/// SSM Parameter Store: the parameters a call names (`Name`, `Names`, a tagging call's
/// `ResourceId`; selectors `:version`/`:label` left off), GetParametersByPath its path's
/// ARN (`parameter/a/b`), as the Service Authorization Reference lists them.
fn ssm(operation: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    // An ARN is authorized as given (another account's is not this one's), less its selector.
    let arn = |given: &str| match berth_ssm::parse_selector(given) {
        Ok((_, selector)) if given.starts_with("arn:") => {
            let suffix = selector.shown().unwrap_or_default();
            given
                .strip_suffix(suffix.as_str())
                .unwrap_or(given)
                .to_string()
        }
        Ok((name, _)) => berth_ssm::parameter_arn(region, account, name.as_str()),
        Err(_) => berth_ssm::parameter_arn(region, account, given),
    };
    match operation {
        "GetParameters" | "DeleteParameters" => texts(body, "Names").into_iter().map(arn).collect(),
        "GetParametersByPath" => text(body, "Path")
            .map(|path| {
                let path = path.trim_end_matches('/');
                vec![berth_ssm::parameter_arn(region, account, path)]
            })
            .unwrap_or_default(),
        "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource" => {
            match (text(body, "ResourceType"), text(body, "ResourceId")) {
                (Some("Parameter"), Some(id)) => vec![arn(id)],
                _ => Vec::new(),
            }
        }
        "DescribeParameters" => Vec::new(),
        _ => text(body, "Name").map(arn).into_iter().collect(),
    }
}

/// Secrets Manager: the secret `SecretId` (CreateSecret: `Name`) names, as an ARN; a name
/// is made the partial ARN `…:secret:NAME`, which the request path resolves to the secret's
/// full ARN before deciding (`authz::secret_policy`). ListSecrets, GetRandomPassword and
/// BatchGetSecretValue act on `*` (BatchGetSecretValue checks each secret it reads).
fn secretsmanager(operation: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    let field = if operation == "CreateSecret" {
        "Name"
    } else {
        "SecretId"
    };
    text(body, field)
        .map(|id| {
            if id.starts_with("arn:") {
                vec![id.to_string()]
            } else {
                vec![format!(
                    "arn:aws:secretsmanager:{region}:{account}:secret:{id}"
                )]
            }
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn application_autoscaling_acts_on_star_with_its_namespace_and_dimension_keys() {
        let body = br#"{"ServiceNamespace":"ecs","ResourceId":"service/c/s","ScalableDimension":"ecs:service:DesiredCount"}"#;
        assert_eq!(
            super::resources(
                "application-autoscaling",
                "RegisterScalableTarget",
                body,
                &scope()
            ),
            ["*"]
        );
        assert_eq!(
            super::service_keys(
                "application-autoscaling",
                "RegisterScalableTarget",
                body,
                &scope()
            ),
            [
                (
                    "application-autoscaling:service-namespace".to_string(),
                    "ecs".to_string()
                ),
                (
                    "application-autoscaling:scalable-dimension".to_string(),
                    "ecs:service:DesiredCount".to_string()
                ),
            ]
        );
    }

    use super::*;

    fn scope() -> Scope {
        Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        )
    }

    #[test]
    fn secrets_manager_actions_name_the_secret() {
        let r = |op: &str, body: &str| resources("secretsmanager", op, body.as_bytes(), &scope());
        assert_eq!(
            r("GetSecretValue", r#"{"SecretId":"db/pass"}"#),
            ["arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pass"]
        );
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pass-AbC123";
        assert_eq!(
            r("PutSecretValue", &format!(r#"{{"SecretId":"{arn}"}}"#)),
            [arn]
        );
        assert_eq!(
            r("CreateSecret", r#"{"Name":"new"}"#),
            ["arn:aws:secretsmanager:us-east-1:000000000000:secret:new"]
        );
        assert_eq!(r("ListSecrets", "{}"), ["*"]);
        assert_eq!(r("GetRandomPassword", "{}"), ["*"]);
    }

    #[test]
    fn actions_name_the_resources_the_reference_lists() {
        let r = |s: &str, op: &str, body: &str| resources(s, op, body.as_bytes(), &scope());
        assert_eq!(
            r(
                "ecs",
                "RunTask",
                r#"{"cluster":"prod","taskDefinition":"web:3"}"#
            ),
            ["arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"]
        );
        assert_eq!(
            r(
                "ecs",
                "DescribeServices",
                r#"{"cluster":"arn:aws:ecs:us-east-1:000000000000:cluster/prod","services":["a"]}"#
            ),
            ["arn:aws:ecs:us-east-1:000000000000:service/prod/a"]
        );
        assert_eq!(r("ecs", "ListClusters", "{}"), ["*"]);
        assert_eq!(
            r("ecs", "ListContainerInstances", r#"{"cluster":"prod"}"#),
            ["arn:aws:ecs:us-east-1:000000000000:cluster/prod"]
        );
        assert_eq!(
            r(
                "ecs",
                "DescribeContainerInstances",
                r#"{"cluster":"prod","containerInstances":["abc"]}"#
            ),
            ["arn:aws:ecs:us-east-1:000000000000:container-instance/prod/abc"]
        );
        assert_eq!(
            r(
                "ecs",
                "TagResource",
                r#"{"resourceArn":"arn:aws:ecs:us-east-1:000000000000:cluster/a","tags":[]}"#
            ),
            ["arn:aws:ecs:us-east-1:000000000000:cluster/a"]
        );
        assert_eq!(
            r(
                "ecs",
                "DeleteCapacityProvider",
                r#"{"capacityProvider":"cp"}"#
            ),
            ["arn:aws:ecs:us-east-1:000000000000:capacity-provider/cp"]
        );
        assert_eq!(
            r("ecr", "BatchGetImage", r#"{"repositoryName":"app"}"#),
            ["arn:aws:ecr:us-east-1:000000000000:repository/app"]
        );
        assert_eq!(r("ecr", "GetAuthorizationToken", "{}"), ["*"]);
        assert_eq!(
            r(
                "logs",
                "PutLogEvents",
                r#"{"logGroupName":"g","logStreamName":"s"}"#
            ),
            ["arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:s"]
        );
    }

    #[test]
    fn iam_actions_name_the_group_profile_or_role_the_reference_lists() {
        let root = berth_iam::Principal::Root {
            account: "000000000000".into(),
        };
        let r = |query: &str| {
            let request = crate::protocol::query::QueryRequest::parse(Some(query), b"").unwrap();
            query_resources(&request, "000000000000", &root, |kind, name| {
                (kind == "group").then(|| format!("arn:aws:iam::000000000000:group/team/{name}"))
            })
        };
        assert_eq!(
            r("Action=AddUserToGroup&GroupName=ops&UserName=dev"),
            ["arn:aws:iam::000000000000:group/team/ops"]
        );
        assert_eq!(
            r("Action=ListGroupPolicies&GroupName=ops"),
            ["arn:aws:iam::000000000000:group/team/ops"]
        );
        assert_eq!(
            r("Action=CreateGroup&GroupName=new&Path=%2Fx%2F"),
            ["arn:aws:iam::000000000000:group/x/new"]
        );
        assert_eq!(
            r("Action=ListGroupsForUser&UserName=dev"),
            ["arn:aws:iam::000000000000:user/dev"]
        );
        assert_eq!(
            r("Action=AddRoleToInstanceProfile&InstanceProfileName=hosts&RoleName=r"),
            ["arn:aws:iam::000000000000:instance-profile/hosts"]
        );
        assert_eq!(
            r("Action=ListInstanceProfilesForRole&RoleName=r"),
            ["arn:aws:iam::000000000000:role/r"]
        );
        assert_eq!(
            r("Action=CreateServiceLinkedRole&AWSServiceName=ecs.amazonaws.com"),
            [
                "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
            ]
        );
        assert_eq!(
            r(
                "Action=GetServiceLinkedRoleDeletionStatus&DeletionTaskId=task%2Faws-service-role%2Fecs.amazonaws.com%2FAWSServiceRoleForECS%2Fabc"
            ),
            [
                "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
            ]
        );
        assert_eq!(
            r("Action=TagUser&UserName=dev"),
            ["arn:aws:iam::000000000000:user/dev"]
        );
        assert_eq!(r("Action=GetAccountAuthorizationDetails"), ["*"]);
        assert_eq!(r("Action=ListInstanceProfiles"), ["*"]);
    }

    #[test]
    fn ssm_actions_name_their_parameters() {
        let r = |op: &str, body: &str| resources("ssm", op, body.as_bytes(), &scope());
        let arn = |p: &str| format!("arn:aws:ssm:us-east-1:000000000000:parameter/{p}");
        assert_eq!(r("GetParameter", r#"{"Name":"/a/b:prod"}"#), [arn("a/b")]);
        assert_eq!(r("PutParameter", r#"{"Name":"flat"}"#), [arn("flat")]);
        assert_eq!(
            r("GetParameters", r#"{"Names":["/a","b:3"]}"#),
            [arn("a"), arn("b")]
        );
        assert_eq!(
            r("GetParametersByPath", r#"{"Path":"/a/b/"}"#),
            [arn("a/b")]
        );
        assert_eq!(
            r(
                "ListTagsForResource",
                r#"{"ResourceType":"Parameter","ResourceId":"/t"}"#
            ),
            [arn("t")]
        );
        assert_eq!(
            r(
                "GetParameter",
                r#"{"Name":"arn:aws:ssm:us-east-1:000000000000:parameter/x/y:2"}"#
            ),
            [arn("x/y")]
        );
        assert_eq!(
            r(
                "GetParameter",
                r#"{"Name":"arn:aws:ssm:us-east-1:111111111111:parameter/x"}"#
            ),
            ["arn:aws:ssm:us-east-1:111111111111:parameter/x"]
        );
        assert_eq!(r("DescribeParameters", "{}"), ["*"]);
    }
}
