//! The API contract tests in one test binary (one link of the whole server instead of one
//! per file). Each module is one suite, selected with `test(/^module::/)`.

mod app_autoscaling;
mod autoscaling_groups;
mod aws_auth;
mod cloudwatch_alarms;
mod cloudwatch_metrics;
mod ec2_networking;
mod ecr_api;
mod ecr_images;
mod ecr_lifecycle;
mod ecs_account_and_agent;
mod ecs_agent_protocol;
mod ecs_capacity_providers;
mod ecs_clusters;
mod ecs_concurrency;
mod ecs_instances;
mod ecs_protection;
mod ecs_services;
mod ecs_task_definitions;
mod ecs_task_sets;
mod ecs_tasks;
mod elbv2_api;
mod logs_api;
mod logs_conformance;
mod oci_negative;
mod published_metrics;
mod secrets_manager;
mod ssm_parameters;
