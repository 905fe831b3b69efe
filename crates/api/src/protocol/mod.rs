//! AWS's wire protocols, shared by every service that speaks them: `json` (JSON 1.0/1.1:
//! ECR, ECS, CloudWatch Logs), `query` (the Query protocol: STS, IAM, EC2, ELBv2, and
//! CloudWatch's old form), `rpcv2cbor` (Smithy RPC v2 CBOR: CloudWatch), `document` (the
//! protocol-neutral values the last two share) and `signature` (SigV4 over a request, for
//! every protocol and the agents' websockets).

pub mod document;
pub mod json;
pub mod query;
pub mod rpcv2cbor;
pub mod signature;

pub use json::{AwsContext, AwsError, parse_body};
