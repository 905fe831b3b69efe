//! AWS's wire protocols, shared by every service that speaks them: `json` (JSON 1.0/1.1:
//! ECR, ECS, CloudWatch Logs) and `signature` (SigV4 over a request, for every protocol and
//! the agents' websockets). The Query protocol (IAM, STS, EC2, ELBv2) joins them here.

pub mod json;
pub mod signature;

pub use json::{AwsContext, AwsError, parse_body};
