//! Berth's HTTP edge. One listening port serves the AWS APIs (`front`: dispatched on
//! `X-Amz-Target`, the RPC v2 CBOR path or the Query form's signing service, over the
//! shared `protocol` layer), the OCI
//! registry on `/v2/` (`oci`), the agents' websockets (`acs`), and `/health` (`router`).
//! Nothing here holds domain logic: requests are parsed into typed actions and handed to
//! the domain crates.

pub mod accounts;
pub mod acs;
pub mod acs_credentials;
pub mod acs_firewall;
pub mod acs_payload;
pub mod acs_telemetry;
pub mod application_autoscaling;
mod assume_role;
pub mod auth;
pub mod authz;
pub mod autoscaling;
pub mod cloudwatch;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod forward;
mod front;
pub mod iam;
pub mod logs;
pub mod logs_tail;
pub mod oci;
pub mod protocol;
mod router;
pub mod secretsmanager;
pub mod ssm;
mod state;
pub mod sts;
mod sts_session;

pub use auth::{RootCredentials, TokenIssuer};
pub use router::{MAX_IN_FLIGHT, app, serve};
pub use state::{AppState, registry_host};
