//! Container instances and attributes: Register/Deregister/Describe/List,
//! UpdateContainerInstancesState, Put/Delete/ListAttributes.

use berth_ecs::{EcsError, EcsTag};
use berth_model::ecs::{EcsArn, VersionInfo};
use serde::{Deserialize, Serialize};

use super::{Failure, Order, ecs_error, page_of, page_of_names};
use crate::protocol::{AwsContext, AwsError};

/// ECS's Resource, as RegisterContainerInstance takes it and Describe returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceWire {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub double_value: f64,
    #[serde(default)]
    pub long_value: i64,
    #[serde(default)]
    pub integer_value: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

pub(super) fn parse_resources(list: &[ResourceWire]) -> Result<berth_ecs::Resources, AwsError> {
    let mut r = berth_ecs::Resources::default();
    let amount = |w: &ResourceWire| {
        if w.integer_value != 0 {
            w.integer_value
        } else if w.long_value != 0 {
            w.long_value
        } else {
            w.double_value as i64
        }
    };
    let ports = |w: &ResourceWire| -> Result<std::collections::BTreeSet<u16>, AwsError> {
        w.string_set_value
            .iter()
            .flatten()
            .map(|p| {
                p.parse::<u16>().map_err(|_| {
                    AwsError::invalid_parameter(format!("Invalid port '{p}' in {}.", w.name))
                })
            })
            .collect()
    };
    for w in list {
        match w.name.as_str() {
            "CPU" => r.cpu = amount(w),
            "MEMORY" => r.memory = amount(w),
            "PORTS" => r.ports = ports(w)?,
            "PORTS_UDP" => r.ports_udp = ports(w)?,
            _ => {} // GPUs and other resources arrive with later issues
        }
    }
    if r.cpu < 0 || r.memory < 0 {
        return Err(AwsError::invalid_parameter(
            "CPU and MEMORY resources must not be negative.",
        ));
    }
    Ok(r)
}

pub(super) fn resources_wire(r: &berth_ecs::Resources) -> Vec<ResourceWire> {
    let integer = |name: &str, v: i64| ResourceWire {
        name: name.into(),
        kind: Some("INTEGER".into()),
        integer_value: v,
        ..ResourceWire::default()
    };
    let set = |name: &str, ports: &std::collections::BTreeSet<u16>| ResourceWire {
        name: name.into(),
        kind: Some("STRINGSET".into()),
        string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        ..ResourceWire::default()
    };
    vec![
        integer("CPU", r.cpu),
        integer("MEMORY", r.memory),
        set("PORTS", &r.ports),
        set("PORTS_UDP", &r.ports_udp),
    ]
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceWire {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    pub remaining_resources: Vec<ResourceWire>,
    pub registered_resources: Vec<ResourceWire>,
    pub status: berth_ecs::InstanceStatus,
    pub agent_connected: bool,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub attributes: Vec<berth_ecs::Attribute>,
    pub registered_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
    /// Only with `include: CONTAINER_INSTANCE_HEALTH`, as ECS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_status: Option<berth_ecs::ContainerInstanceHealth>,
}

pub(super) fn instance_wire(
    ctx: &AwsContext,
    i: berth_ecs::ContainerInstance,
    with_tags: bool,
) -> ContainerInstanceWire {
    ContainerInstanceWire {
        container_instance_arn: i.arn(&ctx.scope),
        ec2_instance_id: i.ec2_instance_id,
        version: i.version,
        version_info: i.version_info,
        remaining_resources: resources_wire(&i.remaining),
        registered_resources: resources_wire(&i.registered),
        status: i.status,
        agent_connected: i.agent_connected,
        running_tasks_count: i.running_tasks_count,
        pending_tasks_count: i.pending_tasks_count,
        attributes: i.attributes,
        registered_at: i.registered_at,
        capacity_provider_name: i.capacity_provider_name,
        tags: with_tags.then_some(i.tags),
        health_status: None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstanceRequest {
    pub cluster: Option<String>,
    pub instance_identity_document: Option<String>,
    #[serde(default)]
    pub total_resources: Vec<ResourceWire>,
    pub version_info: Option<VersionInfo>,
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub attributes: Vec<berth_ecs::Attribute>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceResponse {
    pub container_instance: ContainerInstanceWire,
    /// Berth's extension to RegisterContainerInstance's answer (the official agent ignores
    /// it): the installation whose id `berth agent` puts on its Docker objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub berth_installation_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceRequest {
    pub cluster: Option<String>,
    pub container_instance: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesRequest {
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstancesResponse {
    pub container_instances: Vec<ContainerInstanceWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesRequest {
    pub cluster: Option<String>,
    pub filter: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesResponse {
    pub container_instance_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateRequest {
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct AttributesRequest {
    pub cluster: Option<String>,
    pub attributes: Vec<berth_ecs::Attribute>,
}

#[derive(Debug, Serialize)]
pub struct AttributesResponse {
    pub attributes: Vec<berth_ecs::Attribute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesRequest {
    pub cluster: Option<String>,
    pub target_type: String,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesResponse {
    pub attributes: Vec<berth_ecs::Attribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn register_container_instance(
    ctx: &AwsContext,
    req: RegisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, AwsError> {
    let ec2_instance_id = req
        .instance_identity_document
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| d["instanceId"].as_str().map(str::to_string));
    let instance = ctx
        .app
        .ecs
        .register_container_instance(
            &ctx.scope,
            berth_ecs::RegisterContainerInstance {
                cluster: req.cluster,
                container_instance_arn: req.container_instance_arn,
                ec2_instance_id,
                total: parse_resources(&req.total_resources)?,
                attributes: req.attributes,
                version_info: req.version_info,
                tags: req.tags,
                host_address: ctx.keys.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            },
        )
        .map_err(ecs_error)?;
    let installation = ctx.app.ecs.installation().map_err(ecs_error)?;
    Ok(ContainerInstanceResponse {
        container_instance: instance_wire(ctx, instance, true),
        berth_installation_id: Some(installation.to_string()),
    })
}

pub(super) async fn deregister_container_instance(
    ctx: &AwsContext,
    req: DeregisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, AwsError> {
    let instance = ctx
        .app
        .ecs
        .deregister_container_instance(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.container_instance,
            req.force,
        )
        .map_err(ecs_error)?;
    ctx.app
        .agents
        .deregistered(&ctx.scope, &instance.cluster, &instance.id);
    Ok(ContainerInstanceResponse {
        container_instance: instance_wire(ctx, instance, false),
        berth_installation_id: None,
    })
}

pub(super) fn missing_instance(
    ctx: &AwsContext,
    cluster: Option<&str>,
    id_or_arn: String,
) -> Failure {
    let cluster = cluster.unwrap_or(berth_ecs::DEFAULT_CLUSTER);
    Failure::named(
        ctx,
        id_or_arn,
        |scope, id| EcsArn::container_instance(scope, cluster, id),
        "MISSING",
    )
}

pub(super) async fn describe_container_instances(
    ctx: &AwsContext,
    req: DescribeContainerInstancesRequest,
) -> Result<ContainerInstancesResponse, AwsError> {
    if req.container_instances.is_empty() {
        return Err(AwsError::invalid_parameter(
            "Container instance cannot be empty.",
        ));
    }
    if req.container_instances.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "containerInstances must list 1 to 100 container instances.",
        ));
    }
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let with_health = req.include.iter().any(|i| i == "CONTAINER_INSTANCE_HEALTH");
    let cluster = req.cluster.as_deref();
    let mut container_instances = Vec::new();
    let mut failures = Vec::new();
    for id in req.container_instances {
        match ctx.app.ecs.container_instance(&ctx.scope, cluster, &id) {
            Ok(Some(i)) => {
                let health =
                    with_health.then(|| ctx.app.ecs.container_instance_health(&ctx.scope, &i));
                container_instances.push(ContainerInstanceWire {
                    health_status: health,
                    ..instance_wire(ctx, i, with_tags)
                });
            }
            Ok(None) | Err(EcsError::InvalidParameter(_)) => {
                failures.push(missing_instance(ctx, cluster, id))
            }
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

pub(super) async fn list_container_instances(
    ctx: &AwsContext,
    req: ListContainerInstancesRequest,
) -> Result<ListContainerInstancesResponse, AwsError> {
    let status = req
        .status
        .as_deref()
        .map(berth_ecs::parse_instance_status)
        .transpose()
        .map_err(ecs_error)?;
    let arns: Vec<String> = ctx
        .app
        .ecs
        .list_container_instances(
            &ctx.scope,
            req.cluster.as_deref(),
            status,
            req.filter.as_deref(),
        )
        .map_err(ecs_error)?
        .iter()
        .map(|i| i.arn(&ctx.scope))
        .collect();
    let (container_instance_arns, next_token) =
        page_of_names(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListContainerInstancesResponse {
        container_instance_arns,
        next_token,
    })
}

pub(super) async fn update_container_instances_state(
    ctx: &AwsContext,
    req: UpdateContainerInstancesStateRequest,
) -> Result<ContainerInstancesResponse, AwsError> {
    let status = berth_ecs::parse_instance_status(&req.status).map_err(ecs_error)?;
    let cluster = req.cluster.as_deref();
    let mut container_instances = Vec::new();
    let mut failures = Vec::new();
    for id in req.container_instances {
        match ctx
            .app
            .ecs
            .update_container_instance_state(&ctx.scope, cluster, &id, status)
        {
            Ok(i) => container_instances.push(instance_wire(ctx, i, false)),
            Err(EcsError::InvalidParameter(_)) if status != berth_ecs::InstanceStatus::Inactive => {
                failures.push(missing_instance(ctx, cluster, id))
            }
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

pub(super) async fn put_attributes(
    ctx: &AwsContext,
    req: AttributesRequest,
) -> Result<AttributesResponse, AwsError> {
    let attributes = ctx
        .app
        .ecs
        .put_attributes(&ctx.scope, req.cluster.as_deref(), &req.attributes)
        .map_err(ecs_error)?;
    Ok(AttributesResponse { attributes })
}

pub(super) async fn delete_attributes(
    ctx: &AwsContext,
    req: AttributesRequest,
) -> Result<AttributesResponse, AwsError> {
    let attributes = ctx
        .app
        .ecs
        .delete_attributes(&ctx.scope, req.cluster.as_deref(), &req.attributes)
        .map_err(ecs_error)?;
    Ok(AttributesResponse { attributes })
}

pub(super) async fn list_attributes(
    ctx: &AwsContext,
    req: ListAttributesRequest,
) -> Result<ListAttributesResponse, AwsError> {
    if req.target_type != "container-instance" {
        return Err(AwsError::invalid_parameter(
            "targetType must be container-instance.",
        ));
    }
    let all = ctx
        .app
        .ecs
        .list_attributes(
            &ctx.scope,
            req.cluster.as_deref(),
            req.attribute_name.as_deref(),
            req.attribute_value.as_deref(),
        )
        .map_err(ecs_error)?;
    let (attributes, next_token) = page_of(
        all,
        |a| format!("{}/{}", a.target_id.as_deref().unwrap_or_default(), a.name),
        Order::Ascending,
        req.next_token.as_deref(),
        req.max_results,
        100,
    )?;
    Ok(ListAttributesResponse {
        attributes,
        next_token,
    })
}
