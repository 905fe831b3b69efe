//! ECS's JSON API (`AmazonEC2ContainerServiceV20141113.*`): the action table (which handler
//! serves each operation, and whether it may block), ECS's error mapping, and what the
//! resources' modules share (Failure, pagination). One module per resource, each with its
//! wire structs (AWS field names) and handlers over `berth_ecs`.

mod account;
mod agent;
mod capacity_providers;
mod clusters;
mod instances;
mod protection;
mod service_deployments;
mod services;
mod tags;
mod task_definitions;
mod task_sets;
mod tasks;

use berth_ecs::EcsError;
use berth_model::Scope;
use berth_model::ecs::EcsArn;
use serde::Serialize;

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

pub fn ecs_error(e: EcsError) -> AwsError {
    use EcsError as E;
    let code = match &e {
        E::ClusterNotFound => "ClusterNotFoundException",
        E::ServiceNotFound => "ServiceNotFoundException",
        E::ServiceNotActive => "ServiceNotActiveException",
        E::ServiceDeploymentNotFound => "ServiceDeploymentNotFoundException",
        E::TaskSetNotFound => "TaskSetNotFoundException",
        E::Conflict(_) => "ConflictException",
        E::ClusterContainsContainerInstances => "ClusterContainsContainerInstancesException",
        E::ClusterContainsServices => "ClusterContainsServicesException",
        E::ClusterContainsTasks => "ClusterContainsTasksException",
        E::InvalidParameter(_) => "InvalidParameterException",
        E::Client(_) => "ClientException",
        E::ResourceNotFound(_) => "ResourceNotFoundException",
        E::ResourceInUse(_) => "ResourceInUseException",
        E::Store(_) | E::Corrupt(_) | E::Server(_) => return AwsError::server(e.to_string()),
    };
    AwsError::client(code, e.to_string())
}

/// ECS's Failure.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Empty for a failure that names no resource (Fargate capacity).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arn: String,
    pub reason: String,
}

impl Failure {
    /// A failure for a resource a request named by ARN or by name: the ARN as given, or
    /// this scope's ARN for `resource` (e.g. `cluster/NAME`).
    fn named(
        ctx: &AwsContext,
        reference: String,
        resource: impl FnOnce(&Scope, &str) -> EcsArn,
        reason: impl Into<String>,
    ) -> Failure {
        let arn = if reference.starts_with("arn:") {
            reference
        } else {
            resource(&ctx.scope, &reference).into_string()
        };
        Failure {
            arn,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EmptyResponse {}

crate::aws_actions! {
    EcsAction, "ECS";
    CreateCluster(clusters::CreateClusterRequest) => blocking clusters::create_cluster,
    DescribeClusters(clusters::DescribeClustersRequest) => blocking clusters::describe_clusters,
    ListClusters(clusters::ListClustersRequest) => blocking clusters::list_clusters,
    DeleteCluster(clusters::DeleteClusterRequest) => blocking clusters::delete_cluster,
    UpdateCluster(clusters::UpdateClusterRequest) => blocking clusters::update_cluster,
    UpdateClusterSettings(clusters::UpdateClusterSettingsRequest) => blocking clusters::update_cluster_settings,
    PutClusterCapacityProviders(clusters::PutClusterCapacityProvidersRequest) => blocking clusters::put_cluster_capacity_providers,
    TagResource(tags::TagResourceRequest) => blocking tags::tag_resource,
    UntagResource(tags::UntagResourceRequest) => blocking tags::untag_resource,
    ListTagsForResource(tags::ListTagsForResourceRequest) => blocking tags::list_tags_for_resource,
    CreateCapacityProvider(capacity_providers::CreateCapacityProviderRequest) => blocking capacity_providers::create_capacity_provider,
    UpdateCapacityProvider(capacity_providers::UpdateCapacityProviderRequest) => blocking capacity_providers::update_capacity_provider,
    DeleteCapacityProvider(capacity_providers::DeleteCapacityProviderRequest) => blocking capacity_providers::delete_capacity_provider,
    DescribeCapacityProviders(capacity_providers::DescribeCapacityProvidersRequest) => blocking capacity_providers::describe_capacity_providers,
    RegisterContainerInstance(instances::RegisterContainerInstanceRequest) => blocking instances::register_container_instance,
    DeregisterContainerInstance(instances::DeregisterContainerInstanceRequest) => blocking instances::deregister_container_instance,
    DescribeContainerInstances(instances::DescribeContainerInstancesRequest) => blocking instances::describe_container_instances,
    ListContainerInstances(instances::ListContainerInstancesRequest) => blocking instances::list_container_instances,
    UpdateContainerInstancesState(instances::UpdateContainerInstancesStateRequest) => blocking instances::update_container_instances_state,
    PutAttributes(instances::AttributesRequest) => blocking instances::put_attributes,
    DeleteAttributes(instances::AttributesRequest) => blocking instances::delete_attributes,
    ListAttributes(instances::ListAttributesRequest) => blocking instances::list_attributes,
    RegisterTaskDefinition(berth_model::task_definition::RegisterTaskDefinitionRequest) => blocking task_definitions::register_task_definition,
    DescribeTaskDefinition(task_definitions::DescribeTaskDefinitionRequest) => blocking task_definitions::describe_task_definition,
    ListTaskDefinitions(task_definitions::ListTaskDefinitionsRequest) => blocking task_definitions::list_task_definitions,
    ListTaskDefinitionFamilies(task_definitions::ListTaskDefinitionFamiliesRequest) => blocking task_definitions::list_task_definition_families,
    DeregisterTaskDefinition(task_definitions::DeregisterTaskDefinitionRequest) => blocking task_definitions::deregister_task_definition,
    DeleteTaskDefinitions(task_definitions::DeleteTaskDefinitionsRequest) => blocking task_definitions::delete_task_definitions,
    RunTask(tasks::RunTaskRequest) => inline tasks::run_task,
    StartTask(tasks::StartTaskRequest) => blocking tasks::start_task,
    StopTask(tasks::StopTaskRequest) => blocking tasks::stop_task,
    DescribeTasks(tasks::DescribeTasksRequest) => inline tasks::describe_tasks,
    ListTasks(tasks::ListTasksRequest) => blocking tasks::list_tasks,
    GetTaskProtection(protection::GetTaskProtectionRequest) => blocking protection::get_task_protection,
    UpdateTaskProtection(protection::UpdateTaskProtectionRequest) => blocking protection::update_task_protection,
    SubmitTaskStateChange(berth_agent_protocol::calls::TaskStateChange) => blocking tasks::submit_task_state_change,
    CreateService(services::CreateServiceRequest) => blocking services::create_service,
    UpdateService(services::UpdateServiceRequest) => blocking services::update_service,
    DeleteService(services::DeleteServiceRequest) => blocking services::delete_service,
    DescribeServices(services::DescribeServicesRequest) => blocking services::describe_services,
    ListServices(services::ListServicesRequest) => blocking services::list_services,
    CreateTaskSet(task_sets::CreateTaskSetRequest) => blocking task_sets::create_task_set,
    DescribeTaskSets(task_sets::DescribeTaskSetsRequest) => blocking task_sets::describe_task_sets,
    UpdateTaskSet(task_sets::UpdateTaskSetRequest) => blocking task_sets::update_task_set,
    DeleteTaskSet(task_sets::DeleteTaskSetRequest) => blocking task_sets::delete_task_set,
    UpdateServicePrimaryTaskSet(task_sets::UpdateServicePrimaryTaskSetRequest) => blocking task_sets::update_service_primary_task_set,
    ListServiceDeployments(service_deployments::ListServiceDeploymentsRequest) => blocking service_deployments::list_service_deployments,
    DescribeServiceDeployments(service_deployments::DescribeServiceDeploymentsRequest) => blocking service_deployments::describe_service_deployments,
    DescribeServiceRevisions(service_deployments::DescribeServiceRevisionsRequest) => blocking service_deployments::describe_service_revisions,
    StopServiceDeployment(service_deployments::StopServiceDeploymentRequest) => blocking service_deployments::stop_service_deployment,
    ListAccountSettings(account::ListAccountSettingsRequest) => blocking account::list_account_settings,
    PutAccountSetting(account::PutAccountSettingRequest) => blocking account::put_account_setting,
    PutAccountSettingDefault(account::PutAccountSettingRequest) => blocking account::put_account_setting,
    DeleteAccountSetting(account::DeleteAccountSettingRequest) => blocking account::delete_account_setting,
    DiscoverPollEndpoint(berth_agent_protocol::calls::DiscoverPollEndpointRequest) => blocking agent::discover_poll_endpoint,
    SubmitContainerStateChange(berth_agent_protocol::calls::ContainerStateChange) => blocking agent::submit_container_state_change,
    SubmitAttachmentStateChanges(agent::SubmitAttachmentStateChangesRequest) => blocking agent::submit_attachment_state_changes,
}

/// The order of a paged list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
}

/// One page of names or ARNs, in their own ascending order ([`page_of`]).
fn page_of_names(
    items: Vec<String>,
    next_token: Option<&str>,
    max_results: Option<i64>,
    limit: i64,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    page_of(
        items,
        String::clone,
        Order::Ascending,
        next_token,
        max_results,
        limit,
    )
}

/// One page of `items`, ordered by `key` (as `order` says), with ECS's `maxResults`
/// bounds and the key-based `nextToken` every list operation uses
/// ([`berth_store::page_token`]): a page starts strictly after the key the token holds,
/// so following pages stay right while items come and go between calls.
fn page_of<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    order: Order,
    next_token: Option<&str>,
    max_results: Option<i64>,
    limit: i64,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = match max_results {
        None => limit as usize,
        Some(n) if (1..=limit).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::invalid_parameter(format!(
                "maxResults must be between 1 and {limit} (got {n})."
            )));
        }
    };
    let mut keyed: Vec<(String, T)> = items.drain(..).map(|item| (key(&item), item)).collect();
    keyed.sort_by(|a, b| match order {
        Order::Ascending => a.0.cmp(&b.0),
        Order::Descending => b.0.cmp(&a.0),
    });
    let start = match next_token {
        None => 0,
        Some(token) => {
            let after = berth_store::page_token::decode(token)
                .ok_or_else(|| AwsError::invalid_parameter("Invalid nextToken."))?;
            keyed.partition_point(|(k, _)| match order {
                Order::Ascending => *k <= after,
                Order::Descending => *k >= after,
            })
        }
    };
    let more = keyed.len() > start + max;
    let page: Vec<(String, T)> = keyed.into_iter().skip(start).take(max).collect();
    let next = if more {
        page.last().map(|(k, _)| berth_store::page_token::encode(k))
    } else {
        None
    };
    Ok((page.into_iter().map(|(_, item)| item).collect(), next))
}
