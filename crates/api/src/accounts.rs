//! Berth's own API for the installation's accounts (`berth accounts create|list`), on the
//! same port as the AWS APIs: JSON 1.1 with `X-Amz-Target: BerthAccounts_20261206.OPERATION`,
//! SigV4-signed for service `berth`. Only the root of the installation's default account may
//! call it: an account made here has its own root, which is not the installation's owner.
//!
//! - `CreateAccount {"AccountName"}` → `{"AccountId", "AccountName", "AccessKeyId",
//!   "SecretAccessKey", "CreatedAt"}`: the new account and its root key pair (shown here
//!   only: `ListAccounts` leaves the secret out).
//! - `ListAccounts {}` → `{"Accounts": [{"AccountId", "AccountName", "AccessKeyId",
//!   "CreatedAt"?}]}`: the default account first (named `default`), then the others by id.

use berth_iam::Principal;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::iam::iam_error;
use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "BerthAccounts_20261206";

/// The service name requests to this API are signed for.
pub const SERVICE: &str = "berth";

/// Only the default account's root manages accounts.
pub fn check_caller(app: &AppState, principal: &Principal) -> Result<(), AwsError> {
    match principal {
        Principal::Root { account } if account == app.account.as_str() => Ok(()),
        _ => Err(AwsError::client(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to manage the installation's accounts: only the root user of its default account ({}) is",
                principal.arn(),
                app.account
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAccountRequest {
    account_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountSummary {
    account_id: String,
    account_name: String,
    access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAccountsResponse {
    accounts: Vec<AccountSummary>,
}

/// Runs `operation` (the caller was checked by [`check_caller`]).
pub async fn dispatch(ctx: AwsContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    let app = ctx.app.clone();
    match operation {
        "CreateAccount" => {
            let request: CreateAccountRequest = serde_json::from_slice(body).map_err(|e| {
                AwsError::client("ValidationException", format!("AccountName: {e}"))
            })?;
            let account = crate::protocol::json::blocking(move || {
                app.iam
                    .create_account(&request.account_name, app.account.as_str())
                    .map_err(iam_error)
            })
            .await?;
            Ok(serde_json::to_vec(&account).expect("serialisable"))
        }
        "ListAccounts" => {
            let others =
                crate::protocol::json::blocking(move || app.iam.list_accounts().map_err(iam_error))
                    .await?;
            let mut accounts = vec![AccountSummary {
                account_id: ctx.app.account.to_string(),
                account_name: berth_iam::DEFAULT_ACCOUNT_NAME.to_string(),
                access_key_id: ctx.app.credentials.access_key_id.clone(),
                created_at: None,
            }];
            accounts.extend(others.into_iter().map(|a| AccountSummary {
                account_id: a.account_id,
                account_name: a.account_name,
                access_key_id: a.access_key_id,
                created_at: Some(a.created_at),
            }));
            Ok(serde_json::to_vec(&ListAccountsResponse { accounts }).expect("serialisable"))
        }
        _ => Err(AwsError::client(
            "UnknownOperationException",
            format!("The operation '{TARGET_PREFIX}.{operation}' is not known to this service"),
        )),
    }
}
