//! The end-to-end tier in one test binary (one link of the whole server instead of one per
//! file; CI's disk and its two cores both pay per binary). Each module is one suite; nextest
//! runs every test in its own process and selects a suite with `test(/^module::/)`.

mod accounts;
mod agent_awsvpc;
mod agent_docker;
mod agent_docker_daemon;
mod agent_docker_placement;
mod agent_docker_volumes;
mod agent_identity;
mod aws_auth;
mod awslogs;
mod berth_up;
mod conformance;
mod conformance_ecr;
mod conformance_ecs;
mod conformance_logs;
mod crash;
mod docker_flow;
mod ec2_networking;
mod ecs_service_scheduler;
mod elbv2_api;
mod etcd_store;
mod fargate;
mod gc;
mod identity;
mod identity_breadth;
mod identity_conditions;
mod identity_replicas;
mod identity_simulator;
mod logs_api;
mod logs_replicas;
mod official_agent;
mod quickstart;
mod registry_replicas;
mod replicas;
mod s3_blobs;
mod secrets_manager;
mod security_groups;
mod service_scale_simulated;
mod service_throttle;
mod shared_host;
mod skopeo_flow;
mod ssm_parameters;
mod task_roles;
mod task_roles_sdk;
mod task_secrets;
