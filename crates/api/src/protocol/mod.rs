//! AWS's wire protocols, shared by every service that speaks them: `json` (JSON 1.0/1.1:
//! ECR, ECS, CloudWatch Logs) and `signature` (SigV4 over a request, for every protocol and
//! the agents' websockets) and `query` (the Query protocol: STS, IAM; EC2 and ELBv2 later).

pub mod json;
pub mod query;
pub mod signature;

pub use json::{AwsContext, AwsError, parse_body};
