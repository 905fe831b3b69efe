//! Services as resources: create (with ECS's validation and idempotency), update (a new
//! task definition or forceNewDeployment starts a new PRIMARY deployment), delete (refused
//! above zero unless forced; DRAINING, then INACTIVE once its tasks are gone), describe and
//! list. Keeping the desired count running is issue 6's scheduler.
//!
//! Keys: `service/{cluster}/{name}` holds the service; `service-active/{cluster}/{name}`
//! marks an ACTIVE one, so a prefix count is the cluster's `activeServicesCount`.

use crate::network::NetworkConfiguration;
use berth_model::Scope;
use berth_model::ecs::{DeploymentAlarms, EcsArn, LoadBalancer, ServiceEvent, ServiceRegistry};
use berth_model::ecs::{
    DeploymentControllerType, DeploymentStatus, LaunchType, RolloutState, ServiceDeploymentStatus,
    ServiceStatus, TaskDefinitionStatus,
};
use berth_scheduler::service::Throttle;
use berth_store::{Change, Op, Update};
use serde::{Deserialize, Serialize};

use crate::keys::{service_active_key, service_key, services_prefix};
use crate::{Ecs, EcsError, EcsTag, Result, decode, now_epoch};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
}

/// A deployment of a service (ECS's Deployment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub desired_count: i64,
    pub pending_count: i64,
    pub running_count: i64,
    pub failed_tasks: i64,
    pub created_at: f64,
    pub updated_at: f64,
    pub launch_type: LaunchType,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
}

/// A service deployment as ECS's ServiceDeployment APIs show it, kept in its service (the
/// last [`MAX_SERVICE_DEPLOYMENTS`]). It follows the [`Deployment`] `deployment_id`: IN_PROGRESS,
/// then SUCCESSFUL; STOPPED when a newer one replaces it first or it fails without a
/// rollback; ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL (or ROLLBACK_FAILED) when the circuit
/// breaker or StopServiceDeployment rolls it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentRecord {
    /// The last part of its ARN.
    pub id: String,
    pub deployment_id: String,
    /// Its target service revision (numbered like the deployments).
    pub revision: u64,
    pub source_revisions: Vec<u64>,
    pub status: ServiceDeploymentStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default)]
    pub finished_at: Option<f64>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(default)]
    pub rollback: Option<RollbackRecord>,
}

/// A service revision: the configuration one deployment runs its tasks with (ECS's
/// ServiceRevision), numbered as the deployments are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionRecord {
    pub revision: u64,
    pub task_definition: String,
    pub launch_type: LaunchType,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<crate::CapacityProviderStrategyItem>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    pub created_at: f64,
}

/// The rollback of a service deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecord {
    pub reason: String,
    pub started_at: f64,
    /// The revision rolled back to.
    pub revision: u64,
    /// The deployment (in `deployments`) doing it.
    pub deployment_id: String,
}

/// ECS keeps a service's last 100 events.
pub const MAX_EVENTS: usize = 100;

/// ECS keeps 90 days of service deployments; Berth keeps a service's last 100.
pub const MAX_SERVICE_DEPLOYMENTS: usize = 100;

/// The revision number in a deployment id (`ecs-svc/…N`).
pub fn revision_of(deployment_id: &str) -> u64 {
    deployment_id
        .rsplit('/')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n.saturating_sub(DEPLOYMENT_ID_BASE))
}

const DEPLOYMENT_ID_BASE: u64 = 1_000_000_000_000;

/// The id of a service's `serial`th deployment or task set: `ecs-svc/` and 19 digits.
pub(crate) fn deployment_id(serial: u64) -> String {
    format!("ecs-svc/{:019}", serial + DEPLOYMENT_ID_BASE)
}

/// A placement constraint or strategy as given (validated by the engine's parsers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A stored service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_name: String,
    pub cluster: String,
    pub status: ServiceStatus,
    pub desired_count: i64,
    pub launch_type: LaunchType,
    pub task_definition: String,
    pub deployment_configuration: DeploymentConfiguration,
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    pub created_at: f64,
    pub created_by: String,
    #[serde(default)]
    pub placement_constraints: Vec<Placement>,
    #[serde(default)]
    pub placement_strategy: Vec<Placement>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: String,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub enable_ecs_managed_tags: bool,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    #[serde(default)]
    pub client_token: Option<String>,
    /// Numbers deployment ids within the service.
    #[serde(default)]
    pub deployment_serial: u64,
    /// The last deployment that COMPLETED: (id, task definition), what a circuit breaker
    /// rolls back to.
    #[serde(default)]
    pub last_completed: Option<(String, String)>,
    /// Reached steady state (and said so in its events) since its last change.
    #[serde(default)]
    pub steady: bool,
    /// Newest first.
    #[serde(default)]
    pub service_deployments: Vec<ServiceDeploymentRecord>,
    /// Runs its tasks by this strategy (on the Fargate pool) rather than `launch_type`
    /// (which then says FARGATE, for the definition and network checks).
    #[serde(default)]
    pub capacity_provider_strategy: Vec<crate::CapacityProviderStrategyItem>,
    /// The IAM role ECS uses with the service's load balancer, as an ARN (CreateService's
    /// `role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The service throttle (failed launch attempts in a row, when to retry): the
    /// scheduler's own bookkeeping, not part of any API answer.
    #[serde(default, with = "ThrottleRecord")]
    pub throttle: Throttle,
    /// `None`: ECS's own (rolling update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_controller: Option<DeploymentControllerType>,
    /// Its service revisions, oldest first (the last [`MAX_SERVICE_DEPLOYMENTS`]): what each
    /// deployment ran, for DescribeServiceRevisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<ServiceRevisionRecord>,
    /// EXTERNAL: its task sets, oldest first ([`crate::task_sets`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_sets: Vec<crate::task_sets::record::TaskSet>,
}

/// How the planner's [`Throttle`] is stored (the scheduler crate has no serde).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Throttle", rename_all = "camelCase")]
struct ThrottleRecord {
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    last_stopped_at: f64,
    #[serde(default)]
    retry_at: f64,
    #[serde(default)]
    noted_at: f64,
}

impl Service {
    /// Adds an event (newest first), keeping ECS's last [`MAX_EVENTS`].
    pub(crate) fn push_event(&mut self, message: String, now: f64) {
        self.events.insert(
            0,
            ServiceEvent {
                id: uuid::Uuid::new_v4().to_string(),
                created_at: now,
                message,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::service(scope, &self.cluster, &self.service_name).into_string()
    }
}

/// What CreateService asks for (after the API's parsing).
#[derive(Debug, Clone, Default)]
pub struct CreateService {
    pub cluster: Option<String>,
    pub service_name: String,
    pub task_definition: Option<String>,
    pub desired_count: Option<i64>,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub placement_constraints: Vec<Placement>,
    pub placement_strategy: Vec<Placement>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub tags: Vec<EcsTag>,
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: Option<String>,
    pub enable_execute_command: bool,
    pub platform_version: Option<String>,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<ServiceRegistry>,
    pub client_token: Option<String>,
    pub capacity_provider_strategy: Vec<crate::CapacityProviderStrategyItem>,
    /// A role name or ARN.
    pub role: Option<String>,
    pub deployment_controller: Option<DeploymentControllerType>,
}

/// What UpdateService changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UpdateService {
    pub desired_count: Option<i64>,
    pub task_definition: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<Placement>>,
    pub placement_strategy: Option<Vec<Placement>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub force_new_deployment: bool,
    pub enable_execute_command: Option<bool>,
    /// A new list replaces the service's (a new deployment registers its tasks there).
    pub load_balancers: Option<Vec<LoadBalancer>>,
    /// A new capacity provider strategy for the tasks launched from now on (an empty list:
    /// back to the launch type). As in ECS, not a new deployment by itself.
    pub capacity_provider_strategy: Option<Vec<crate::CapacityProviderStrategyItem>>,
}

/// A role as CreateService's `role` names it: an ARN as it is, a name (without a path: a
/// role with a path must be given by its ARN) as `arn:aws:iam::ACCOUNT:role/NAME`.
fn role_arn(scope: &Scope, role: &str) -> String {
    if role.starts_with("arn:") {
        role.to_owned()
    } else {
        format!("arn:aws:iam::{}:role/{role}", scope.account)
    }
}

/// An EXTERNAL service's task sets are its deployments: what would make a deployment or
/// change how its tasks launch is refused (no published ECS text found for this).
fn deployed_by_task_sets() -> EcsError {
    EcsError::InvalidParameter(
        "A service with the EXTERNAL deployment controller is deployed through its task sets: use CreateTaskSet.".into(),
    )
}

fn check_placement(constraints: &[Placement], strategy: &[Placement]) -> Result<()> {
    let invalid = |e: berth_scheduler::PlacementError| EcsError::InvalidParameter(e.to_string());
    if constraints.len() > berth_scheduler::MAX_PLACEMENT_CONSTRAINTS {
        return Err(EcsError::InvalidParameter(
            "A service can have at most 10 placement constraints.".into(),
        ));
    }
    if strategy.len() > berth_scheduler::MAX_PLACEMENT_STRATEGIES {
        return Err(EcsError::InvalidParameter(
            "A service can have at most 5 placement strategies.".into(),
        ));
    }
    for c in constraints {
        berth_scheduler::parse_placement_constraint(&c.kind, c.expression.as_deref())
            .map_err(invalid)?;
    }
    for s in strategy {
        berth_scheduler::parse_placement_strategy(&s.kind, s.field.as_deref()).map_err(invalid)?;
    }
    Ok(())
}

fn check_deployment_configuration(c: &DeploymentConfiguration, daemon: bool) -> Result<()> {
    let min = c
        .minimum_healthy_percent
        .unwrap_or(if daemon { 0 } else { 100 });
    let max = c.maximum_percent.unwrap_or(if daemon { 100 } else { 200 });
    if !(0..=100).contains(&min) {
        return Err(EcsError::InvalidParameter(
            "minimumHealthyPercent must be between 0 and 100.".into(),
        ));
    }
    if !(100..=2000).contains(&max) {
        return Err(EcsError::InvalidParameter(
            "maximumPercent must be between 100 and 2000.".into(),
        ));
    }
    if daemon && max != 100 {
        return Err(EcsError::InvalidParameter(
            "The daemon scheduling strategy requires a maximumPercent of 100.".into(),
        ));
    }
    Ok(())
}

impl Ecs {
    pub(crate) fn service_task_definition(
        &self,
        scope: &Scope,
        reference: &str,
        launch_type: LaunchType,
        network_configuration: &Option<NetworkConfiguration>,
    ) -> Result<String> {
        let td = self.task_definition(scope, reference)?.task_definition;
        if td.status.unwrap_or(TaskDefinitionStatus::Active) != TaskDefinitionStatus::Active {
            return Err(EcsError::InvalidParameter(
                "TaskDefinition is inactive".into(),
            ));
        }
        if !td
            .compatibilities
            .iter()
            .flatten()
            .any(|c| c == launch_type.as_str())
        {
            return Err(EcsError::InvalidParameter(format!(
                "Task definition does not support launch_type {launch_type}."
            )));
        }
        // The same checks, and messages, as RunTask's.
        let configuration = network_configuration.clone();
        let awsvpc = crate::network::check_network_configuration(
            td.network_mode.as_deref(),
            launch_type,
            configuration.as_ref(),
        )?;
        // The subnets must be EC2's (and able to hold tasks) now, not when tasks start.
        for id in awsvpc.iter().flat_map(|vpc| vpc.subnets.iter()) {
            self.ensure_subnet(scope, id)?;
        }
        Ok(td.task_definition_arn.unwrap_or_default())
    }

    /// A new PRIMARY deployment of `task_definition`, with its service deployment record
    /// (a deployment still in progress is STOPPED by it).
    pub(crate) fn new_deployment(service: &mut Service, task_definition: &str) {
        let sources: Vec<u64> = service
            .deployments
            .iter()
            .map(|d| revision_of(&d.id))
            .collect();
        let id = Self::start_deployment(service, task_definition);
        let now = now_epoch();
        for r in &mut service.service_deployments {
            if r.status == ServiceDeploymentStatus::InProgress
                || r.status == ServiceDeploymentStatus::RollbackInProgress
            {
                r.status = ServiceDeploymentStatus::Stopped;
                r.status_reason = Some(format!(
                    "Service deployment stopped: a new deployment ({id}) replaced it."
                ));
                r.stopped_at = Some(now);
                r.updated_at = now;
            }
        }
        service.service_deployments.insert(
            0,
            ServiceDeploymentRecord {
                id: uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
                revision: revision_of(&id),
                deployment_id: id,
                source_revisions: sources,
                status: ServiceDeploymentStatus::InProgress,
                status_reason: None,
                created_at: now,
                updated_at: now,
                finished_at: None,
                stopped_at: None,
                deployment_configuration: service.deployment_configuration.clone(),
                rollback: None,
            },
        );
        service
            .service_deployments
            .truncate(MAX_SERVICE_DEPLOYMENTS);
    }

    /// A new PRIMARY deployment (the old PRIMARY becomes ACTIVE); its id.
    pub(crate) fn start_deployment(service: &mut Service, task_definition: &str) -> String {
        let now = now_epoch();
        // A new deployment (an update's or a rollback's) starts its tasks unthrottled.
        service.throttle.failures = 0;
        service.throttle.retry_at = 0.0;
        for d in &mut service.deployments {
            if d.status == DeploymentStatus::Primary {
                d.status = DeploymentStatus::Active;
                d.updated_at = now;
            }
        }
        service.deployment_serial += 1;
        let id = deployment_id(service.deployment_serial);
        service.revisions.push(ServiceRevisionRecord {
            revision: revision_of(&id),
            task_definition: task_definition.to_string(),
            launch_type: service.launch_type,
            capacity_provider_strategy: service.capacity_provider_strategy.clone(),
            platform_version: service.platform_version.clone(),
            network_configuration: service.network_configuration.clone(),
            load_balancers: service.load_balancers.clone(),
            service_registries: service.service_registries.clone(),
            created_at: now,
        });
        if service.revisions.len() > MAX_SERVICE_DEPLOYMENTS {
            service.revisions.remove(0);
        }
        service.deployments.insert(
            0,
            Deployment {
                id: id.clone(),
                status: DeploymentStatus::Primary,
                task_definition: task_definition.to_string(),
                desired_count: service.desired_count,
                pending_count: 0,
                running_count: 0,
                failed_tasks: 0,
                created_at: now,
                updated_at: now,
                launch_type: service.launch_type,
                rollout_state: RolloutState::InProgress,
                rollout_state_reason: "ECS deployment ecs-svc in progress.".into(),
            },
        );
        id
    }

    pub fn create_service(&self, scope: &Scope, req: CreateService) -> Result<Service> {
        // Request validation (enum members) comes before any lookup, as for RunTask.
        if let Some(l) = &req.launch_type {
            LaunchType::parse_member("launchType", l).map_err(EcsError::InvalidParameter)?;
        }
        crate::clusters::refuse_the_pool(scope, req.cluster.as_deref())?;
        let cluster = self.active_cluster(scope, req.cluster.as_deref())?;
        crate::clusters::check_resource_name("Service", &req.service_name)?;
        crate::clusters::check_tags(&req.tags)?;
        let scheduling = req
            .scheduling_strategy
            .clone()
            .unwrap_or_else(|| "REPLICA".into());
        let daemon = match scheduling.as_str() {
            "REPLICA" => false,
            "DAEMON" => true,
            other => {
                return Err(EcsError::InvalidParameter(format!(
                    "Invalid schedulingStrategy '{other}'. Valid values: [REPLICA, DAEMON]"
                )));
            }
        };
        // A capacity provider strategy: the request's, else the cluster's default when the
        // request names no launch type.
        let strategy = if req.capacity_provider_strategy.is_empty() && req.launch_type.is_none() {
            cluster.default_capacity_provider_strategy.clone()
        } else {
            req.capacity_provider_strategy.clone()
        };
        let resolved = if strategy.is_empty() {
            None
        } else {
            Some(crate::fargate::resolve_launch(
                &cluster,
                req.launch_type.as_deref(),
                Some(&strategy),
                req.platform_version.as_deref(),
                1,
            )?)
        };
        // Fargate providers run the service on the pool, Auto Scaling group providers on
        // their instances (EC2).
        let launch_type = match (&req.launch_type, resolved) {
            (Some(l), _) => {
                LaunchType::parse_member("launchType", l).map_err(EcsError::InvalidParameter)?
            }
            (None, Some(launch)) => launch.launch_type(),
            (None, None) => LaunchType::Ec2,
        };
        if daemon && launch_type == LaunchType::Fargate {
            return Err(EcsError::InvalidParameter(
                "The daemon scheduling strategy does not support the FARGATE launch type.".into(),
            ));
        }
        if daemon && req.desired_count.is_some() {
            return Err(EcsError::InvalidParameter(
                "The daemon scheduling strategy does not support a desired count for services."
                    .into(),
            ));
        }
        let desired_count = req.desired_count.unwrap_or(0);
        if desired_count < 0 {
            return Err(EcsError::InvalidParameter(
                "desiredCount can't be less than 0.".into(),
            ));
        }
        let controller = req
            .deployment_controller
            .filter(|c| *c != DeploymentControllerType::Ecs);
        let external = match controller {
            None => false,
            Some(DeploymentControllerType::External) => true,
            Some(other) => {
                return Err(EcsError::InvalidParameter(format!(
                    "Berth does not support the {other} deployment controller."
                )));
            }
        };
        if external && daemon {
            // The developer guide's rule, as its text (no published response found).
            return Err(EcsError::InvalidParameter(
                "Tasks using the Fargate launch type or the CODE_DEPLOY or EXTERNAL deployment controller types don't support the DAEMON scheduling strategy.".into(),
            ));
        }
        // An EXTERNAL service's task sets name their own task definitions.
        let task_definition = match (req.task_definition.as_deref(), external) {
            (Some(reference), _) => self.service_task_definition(
                scope,
                reference,
                launch_type,
                &req.network_configuration,
            )?,
            (None, true) => String::new(),
            (None, false) => {
                return Err(EcsError::InvalidParameter(
                    "A task definition is required to create a service.".into(),
                ));
            }
        };
        if !task_definition.is_empty() {
            self.check_load_balancers(scope, &req.load_balancers, &task_definition)?;
        }
        let deployment_configuration =
            req.deployment_configuration
                .clone()
                .unwrap_or(DeploymentConfiguration {
                    deployment_circuit_breaker: None,
                    maximum_percent: None,
                    minimum_healthy_percent: None,
                    alarms: None,
                });
        check_deployment_configuration(&deployment_configuration, daemon)?;
        let deployment_configuration = DeploymentConfiguration {
            deployment_circuit_breaker: Some(
                deployment_configuration
                    .deployment_circuit_breaker
                    .clone()
                    .unwrap_or(DeploymentCircuitBreaker {
                        enable: false,
                        rollback: false,
                    }),
            ),
            maximum_percent: Some(
                deployment_configuration
                    .maximum_percent
                    .unwrap_or(if daemon { 100 } else { 200 }),
            ),
            minimum_healthy_percent: Some(
                deployment_configuration
                    .minimum_healthy_percent
                    .unwrap_or(if daemon { 0 } else { 100 }),
            ),
            alarms: deployment_configuration.alarms.clone(),
        };
        check_placement(&req.placement_constraints, &req.placement_strategy)?;
        let key = service_key(scope, &cluster.name, &req.service_name);
        let active = service_active_key(scope, &cluster.name, &req.service_name);
        let created = berth_store::update(&*self.store, &key, |existing: Option<Service>| {
            if let Some(current) = existing
                && current.status != ServiceStatus::Inactive
            {
                // Idempotent with the same client token; otherwise ECS refuses.
                if req.client_token.is_some() && current.client_token == req.client_token {
                    return Ok(Update::from(Change::Keep));
                }
                return Err(EcsError::InvalidParameter(
                    "Creation of service was not idempotent.".into(),
                ));
            }
            let mut service = Service {
                service_name: req.service_name.clone(),
                cluster: cluster.name.clone(),
                status: ServiceStatus::Active,
                desired_count,
                launch_type,
                task_definition: task_definition.clone(),
                deployment_configuration: deployment_configuration.clone(),
                deployments: Vec::new(),
                events: Vec::new(),
                created_at: now_epoch(),
                created_by: format!("arn:aws:iam::{}:root", scope.account),
                placement_constraints: req.placement_constraints.clone(),
                placement_strategy: if req.placement_strategy.is_empty() && !daemon {
                    // ECS's default for EC2 services: spread across zones, then instances.
                    vec![
                        Placement {
                            kind: "spread".into(),
                            expression: None,
                            field: Some("attribute:ecs.availability-zone".into()),
                        },
                        Placement {
                            kind: "spread".into(),
                            expression: None,
                            field: Some("instanceId".into()),
                        },
                    ]
                } else {
                    req.placement_strategy.clone()
                },
                network_configuration: req.network_configuration.clone(),
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                scheduling_strategy: scheduling.clone(),
                tags: req.tags.clone(),
                enable_ecs_managed_tags: req.enable_ecs_managed_tags,
                propagate_tags: req.propagate_tags.clone(),
                enable_execute_command: req.enable_execute_command,
                platform_version: req.platform_version.clone(),
                load_balancers: req.load_balancers.clone(),
                service_registries: req.service_registries.clone(),
                client_token: req.client_token.clone(),
                deployment_serial: 0,
                last_completed: None,
                steady: false,
                service_deployments: Vec::new(),
                capacity_provider_strategy: strategy.clone(),
                role_arn: req.role.as_deref().map(|role| role_arn(scope, role)),
                throttle: Throttle::default(),
                deployment_controller: controller,
                task_sets: Vec::new(),
                revisions: Vec::new(),
            };
            if !external {
                Self::new_deployment(&mut service, &task_definition);
            }
            Ok(Update::from(Change::Put(service)).also(Op::put(active.clone(), b"{}".to_vec())))
        })?;
        created.ok_or(EcsError::ServiceNotFound)
    }

    /// A service by name or ARN, in any status.
    pub fn service(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name_or_arn: &str,
    ) -> Result<Service> {
        let cluster = self.active_cluster(scope, cluster)?;
        let name = name_or_arn
            .rsplit_once('/')
            .filter(|_| name_or_arn.starts_with("arn:"))
            .map_or(name_or_arn, |(_, n)| n);
        match self.store.get(&service_key(scope, &cluster.name, name))? {
            Some(kv) => Ok(decode(&kv)?),
            None => Err(EcsError::ServiceNotFound),
        }
    }

    /// Services of a cluster that are not INACTIVE, by name.
    pub fn services(&self, scope: &Scope, cluster: Option<&str>) -> Result<Vec<Service>> {
        let cluster = self.active_cluster(scope, cluster)?;
        let all: Vec<Service> = self
            .store
            .range(&services_prefix(scope, &cluster.name), None, 0)?
            .iter()
            .map(decode)
            .collect::<Result<_>>()?;
        Ok(all
            .into_iter()
            .filter(|s| s.status != ServiceStatus::Inactive)
            .collect())
    }

    pub(crate) fn change_service(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name_or_arn: &str,
        change: impl Fn(&mut Service) -> Result<()>,
    ) -> Result<Service> {
        let current = self.service(scope, cluster, name_or_arn)?;
        let key = service_key(scope, &current.cluster, &current.service_name);
        let changed = berth_store::update(&*self.store, &key, |service: Option<Service>| {
            let Some(mut service) = service else {
                return Err(EcsError::ServiceNotFound);
            };
            let before = service.clone();
            change(&mut service)?;
            if service == before {
                // Nothing to write (and no watch event to wake the scheduler for nothing).
                return Ok(Update::from(Change::Keep));
            }
            let inactive = service.status != ServiceStatus::Active;
            let active = service_active_key(scope, &service.cluster, &service.service_name);
            let update = Update::from(Change::Put(service));
            Ok(if inactive {
                update.also(Op::delete(active))
            } else {
                update
            })
        })?;
        changed.ok_or(EcsError::ServiceNotFound)
    }

    pub fn update_service(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name_or_arn: &str,
        update: UpdateService,
    ) -> Result<Service> {
        let current = self.service(scope, cluster, name_or_arn)?;
        if current.status != ServiceStatus::Active {
            return Err(EcsError::ServiceNotActive);
        }
        let daemon = current.scheduling_strategy == "DAEMON";
        if current.is_external()
            && (update.task_definition.is_some() || update.force_new_deployment)
        {
            return Err(deployed_by_task_sets());
        }
        if daemon && update.desired_count.is_some() {
            return Err(EcsError::InvalidParameter(
                "The daemon scheduling strategy does not support a desired count for services."
                    .into(),
            ));
        }
        if update.desired_count.is_some_and(|n| n < 0) {
            return Err(EcsError::InvalidParameter(
                "desiredCount can't be less than 0.".into(),
            ));
        }
        let network = update
            .network_configuration
            .clone()
            .or(current.network_configuration.clone());
        let task_definition = update
            .task_definition
            .as_deref()
            .map(|t| self.service_task_definition(scope, t, current.launch_type, &network))
            .transpose()?;
        if let Some(c) = &update.deployment_configuration {
            check_deployment_configuration(c, daemon)?;
        }
        check_placement(
            update.placement_constraints.as_deref().unwrap_or_default(),
            update.placement_strategy.as_deref().unwrap_or_default(),
        )?;
        if let Some(balancers) = &update.load_balancers {
            let definition = task_definition
                .as_deref()
                .unwrap_or(&current.task_definition);
            self.check_load_balancers(scope, balancers, definition)?;
        }
        let launch = self.updated_launch(scope, &current, &update, task_definition.as_deref())?;
        self.change_service(scope, cluster, name_or_arn, |s| {
            let before = s.clone();
            if s.status != ServiceStatus::Active {
                return Err(EcsError::ServiceNotActive);
            }
            // As in ECS, any update takes a throttled service out of its back-off at once.
            s.throttle.failures = 0;
            s.throttle.retry_at = 0.0;
            if let Some(n) = update.desired_count {
                s.desired_count = n;
                if let Some(primary) = s
                    .deployments
                    .iter_mut()
                    .find(|d| d.status == DeploymentStatus::Primary)
                {
                    primary.desired_count = n;
                    primary.updated_at = now_epoch();
                }
            }
            if let Some(c) = &update.deployment_configuration {
                if let Some(v) = c.maximum_percent {
                    s.deployment_configuration.maximum_percent = Some(v);
                }
                if let Some(v) = c.minimum_healthy_percent {
                    s.deployment_configuration.minimum_healthy_percent = Some(v);
                }
                if let Some(v) = &c.deployment_circuit_breaker {
                    s.deployment_configuration.deployment_circuit_breaker = Some(v.clone());
                }
            }
            if let Some(c) = &update.placement_constraints {
                s.placement_constraints = c.clone();
            }
            if let Some(p) = &update.placement_strategy {
                s.placement_strategy = p.clone();
            }
            if let Some(n) = &update.network_configuration {
                s.network_configuration = Some(n.clone());
            }
            if let Some(g) = update.health_check_grace_period_seconds {
                s.health_check_grace_period_seconds = Some(g);
            }
            if let Some(e) = update.enable_execute_command {
                s.enable_execute_command = e;
            }
            if let Some(l) = &update.load_balancers {
                s.load_balancers = l.clone();
            }
            if let Some((strategy, launch_type)) = &launch {
                s.capacity_provider_strategy = strategy.clone();
                s.launch_type = *launch_type;
                // The tasks the current deployment launches from now on go the new way.
                if let Some(primary) = s
                    .deployments
                    .iter_mut()
                    .find(|d| d.status == DeploymentStatus::Primary)
                {
                    primary.launch_type = *launch_type;
                }
            }
            let changed_definition = task_definition
                .as_ref()
                .is_some_and(|t| *t != s.task_definition);
            if let Some(t) = &task_definition {
                s.task_definition = t.clone();
            }
            // As in ECS, what the tasks run with (placement, network) changing is a new
            // deployment too: the running tasks are replaced by ones placed the new way.
            let changed_tasks = update
                .placement_constraints
                .as_ref()
                .is_some_and(|c| *c != before.placement_constraints)
                || update
                    .placement_strategy
                    .as_ref()
                    .is_some_and(|p| *p != before.placement_strategy)
                || update
                    .network_configuration
                    .as_ref()
                    .is_some_and(|n| Some(n) != before.network_configuration.as_ref())
                || update
                    .load_balancers
                    .as_ref()
                    .is_some_and(|l| *l != before.load_balancers);
            if !s.is_external()
                && (changed_definition || changed_tasks || update.force_new_deployment)
            {
                let td = s.task_definition.clone();
                Self::new_deployment(s, &td);
            }
            Ok(())
        })
    }

    /// UpdateService's `capacityProviderStrategy`, checked: the strategy and the launch
    /// type it gives (an empty list keeps the launch type the service runs on). The
    /// service's definition and network must suit a changed launch type, as on creation.
    fn updated_launch(
        &self,
        scope: &Scope,
        current: &Service,
        update: &UpdateService,
        task_definition: Option<&str>,
    ) -> Result<Option<(Vec<crate::CapacityProviderStrategyItem>, LaunchType)>> {
        let Some(strategy) = &update.capacity_provider_strategy else {
            return Ok(None);
        };
        if current.is_external() {
            return Err(deployed_by_task_sets());
        }
        if strategy.is_empty() {
            return Ok(Some((Vec::new(), current.launch_type)));
        }
        let cluster = self.active_cluster(scope, Some(&current.cluster))?;
        let launch_type = crate::fargate::resolve_launch(
            &cluster,
            None,
            Some(strategy),
            current.platform_version.as_deref(),
            1,
        )?
        .launch_type();
        if launch_type != current.launch_type {
            if current.scheduling_strategy == "DAEMON" && launch_type == LaunchType::Fargate {
                return Err(EcsError::InvalidParameter(
                    "The daemon scheduling strategy does not support the FARGATE launch type."
                        .into(),
                ));
            }
            let network = update
                .network_configuration
                .clone()
                .or(current.network_configuration.clone());
            self.service_task_definition(
                scope,
                task_definition.unwrap_or(&current.task_definition),
                launch_type,
                &network,
            )?;
        }
        Ok(Some((strategy.clone(), launch_type)))
    }

    /// Application Auto Scaling's write: an ACTIVE service's desired count set to `desired`
    /// only while it is still `expected` (one compare-and-swap on the service record, as
    /// UpdateService sets it); `Ok(false)` when it had changed, nothing written.
    pub fn set_desired_count_if(
        &self,
        scope: &Scope,
        cluster: &str,
        name: &str,
        expected: i64,
        desired: i64,
    ) -> Result<bool> {
        let matched = std::cell::Cell::new(false);
        self.change_service(scope, Some(cluster), name, |s| {
            matched.set(false);
            if s.status != ServiceStatus::Active {
                return Err(EcsError::ServiceNotActive);
            }
            if s.desired_count != expected {
                return Ok(());
            }
            matched.set(true);
            s.desired_count = desired;
            if let Some(primary) = s
                .deployments
                .iter_mut()
                .find(|d| d.status == DeploymentStatus::Primary)
            {
                primary.desired_count = desired;
                primary.updated_at = now_epoch();
            }
            Ok(())
        })?;
        Ok(matched.get())
    }

    /// DeleteService: refused while desiredCount > 0 unless forced. The service drains
    /// (DRAINING); with no live tasks left it is INACTIVE.
    pub fn delete_service(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name_or_arn: &str,
        force: bool,
    ) -> Result<Service> {
        let live = self.live_tasks_of_group(scope, cluster, name_or_arn)?;
        self.change_service(scope, cluster, name_or_arn, |s| {
            if s.status == ServiceStatus::Inactive {
                return Err(EcsError::ServiceNotActive);
            }
            if s.desired_count > 0 && !force && s.scheduling_strategy == "REPLICA" {
                return Err(EcsError::InvalidParameter(
                    "The service cannot be stopped while it is scaled above 0.".into(),
                ));
            }
            s.desired_count = 0;
            s.status = if live == 0 {
                ServiceStatus::Inactive
            } else {
                ServiceStatus::Draining
            };
            Ok(())
        })
        .map(|mut s| {
            // ECS answers DeleteService with the service DRAINING.
            s.status = ServiceStatus::Draining;
            s
        })
    }

    fn live_tasks_of_group(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name_or_arn: &str,
    ) -> Result<usize> {
        let service = self.service(scope, cluster, name_or_arn)?;
        let group = format!("service:{}", service.service_name);
        Ok(self
            .tasks(scope, Some(&service.cluster))?
            .iter()
            .filter(|t| t.group == group && t.is_live())
            .count())
    }
}
