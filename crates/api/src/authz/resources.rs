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
        _ => Vec::new(),
    };
    if found.is_empty() {
        vec!["*".to_string()]
    } else {
        found
    }
}

/// The IAM resources a Query action names: its user, role or policy (paths left out), else
/// `*` (STS's actions are checked on the role they assume, by AssumeRole itself).
pub fn query_resources(
    request: &crate::protocol::query::QueryRequest,
    account: &str,
) -> Vec<String> {
    let arn = if let Some(user) = request.get("UserName") {
        format!("arn:aws:iam::{account}:user/{user}")
    } else if let Some(role) = request.get("RoleName") {
        format!("arn:aws:iam::{account}:role/{role}")
    } else if let Some(policy) = request.get("PolicyArn") {
        policy.to_string()
    } else {
        "*".to_string()
    };
    vec![arn]
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
        _ => Vec::new(),
    }
}

fn service_arn(cluster: &str, service: &str, region: &str, account: &str) -> String {
    arn_of("service", &format!("{cluster}/{service}"), region, account)
}

fn task_arn(cluster: &str, task: &str, region: &str, account: &str) -> String {
    arn_of("task", &format!("{cluster}/{task}"), region, account)
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
            .map(|g| vec![g.trim_end_matches(":*").to_string()])
            .unwrap_or_default();
    };
    let group_arn = format!("arn:aws:logs:{region}:{account}:log-group:{group}");
    match text(body, "logStreamName") {
        Some(stream) => vec![format!("{group_arn}:log-stream:{stream}")],
        None => vec![group_arn],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        )
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
}
