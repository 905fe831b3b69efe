//! AWS STS over the Query protocol. So far GetCallerIdentity, which every infrastructure
//! tool calls first: who the request's credentials belong to. Until IAM users and roles
//! exist, the one identity is the account's root (its ARN `arn:aws:iam::ACCOUNT:root`,
//! its user id the account id, as AWS answers for root credentials).

use berth_sigv4::Verified;

use crate::protocol::query::{Namespace, QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub const NAMESPACE: Namespace = Namespace("https://sts.amazonaws.com/doc/2011-06-15/");

/// Runs an STS action: its `Result` element's content.
pub async fn dispatch(
    ctx: &AwsContext,
    verified: &Verified,
    request: &QueryRequest,
) -> Result<Option<Xml>, AwsError> {
    match request.action.as_str() {
        "GetCallerIdentity" => Ok(Some(get_caller_identity(ctx, verified))),
        other => Err(AwsError::client(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

/// GetCallerIdentity: needs no permission (AWS answers it even when a policy denies it).
fn get_caller_identity(ctx: &AwsContext, _verified: &Verified) -> Xml {
    let account = ctx.app.account.to_string();
    let mut xml = Xml::default();
    xml.leaf("Arn", format!("arn:aws:iam::{account}:root"))
        .leaf("UserId", &account)
        .leaf("Account", &account);
    xml
}
