//! Secrets Manager's JSON 1.1 API (`secretsmanager.*`): typed requests and responses with
//! AWS's field names, one module per resource, and the mapping of `SecretsError` to Secrets
//! Manager's exceptions. Authorization (`secretsmanager:<Operation>` on the secret's ARN,
//! with the secret's resource policy) happens in `front.rs` before a handler runs;
//! BatchGetSecretValue also checks `secretsmanager:GetSecretValue` on every secret it reads.

mod password;
mod policies;
mod secrets;
mod values;
mod versions;

use berth_secrets::{Secret, SecretScope, SecretValue, SecretsError, Tag};
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "secretsmanager";
pub const SERVICE: &str = "secretsmanager";

pub fn secrets_error(e: SecretsError) -> AwsError {
    let code = match &e {
        SecretsError::ResourceNotFound(_) => "ResourceNotFoundException",
        SecretsError::ResourceExists(_) => "ResourceExistsException",
        SecretsError::InvalidParameter(_) => "InvalidParameterException",
        SecretsError::InvalidRequest(_) => "InvalidRequestException",
        SecretsError::LimitExceeded(_) => "LimitExceededException",
        SecretsError::Decryption(_) => "DecryptionFailure",
        SecretsError::Store(_) => {
            return AwsError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                e.to_string(),
            );
        }
    };
    AwsError::client(code, e.to_string())
}

pub(crate) fn secret_scope(ctx: &AwsContext) -> SecretScope {
    SecretScope {
        account: ctx.scope.account.to_string(),
        region: ctx.scope.region.to_string(),
    }
}

/// The account a `SecretId` ARN names, when it is another than the caller's: the request
/// then acts on that account's secret, as its resource policy allows.
pub fn secret_account(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = value.get("SecretId")?.as_str()?;
    let rest = id.strip_prefix("arn:")?;
    Some(rest.split(':').nth(3)?.to_string())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagWire {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

fn tags_in(tags: Option<Vec<TagWire>>) -> Vec<Tag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

fn tags_out(tags: &[Tag]) -> Vec<TagWire> {
    tags.iter()
        .map(|t| TagWire {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

/// `SecretString` or `SecretBinary` (base64 on the wire), at most one.
fn value_of(
    string: Option<String>,
    binary: Option<String>,
) -> Result<Option<SecretValue>, AwsError> {
    use base64::Engine as _;
    match (string, binary) {
        (Some(_), Some(_)) => Err(AwsError::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => Ok(Some(SecretValue::String(s))),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(|bytes| Some(SecretValue::Binary(bytes)))
            .map_err(|_| {
                AwsError::client(
                    "SerializationException",
                    "SecretBinary is not valid base64.",
                )
            }),
        (None, None) => Ok(None),
    }
}

/// What `Debug` shows of an optional secret value: whether there is one.
fn hidden(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| "<hidden>")
}

fn max_results(value: Option<i64>, max: i64) -> Result<Option<usize>, AwsError> {
    match value {
        None => Ok(None),
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(AwsError::invalid_parameter(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
            if n < 1 {
                "greater than or equal to 1".to_string()
            } else {
                format!("less than or equal to {max}")
            }
        ))),
    }
}

/// The many answers that are a secret's ARN and name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnAndName {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

impl From<Secret> for ArnAndName {
    fn from(s: Secret) -> Self {
        ArnAndName {
            arn: s.arn,
            name: s.name,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretIdRequest {
    pub secret_id: String,
}

crate::aws_actions! {
    SecretsManagerAction, "Secrets Manager";
    CreateSecret(secrets::CreateSecretRequest) => blocking secrets::create_secret,
    DescribeSecret(SecretIdRequest) => blocking secrets::describe_secret,
    UpdateSecret(secrets::UpdateSecretRequest) => blocking secrets::update_secret,
    ListSecrets(secrets::ListSecretsRequest) => blocking secrets::list_secrets,
    DeleteSecret(secrets::DeleteSecretRequest) => blocking secrets::delete_secret,
    RestoreSecret(SecretIdRequest) => blocking secrets::restore_secret,
    TagResource(secrets::TagResourceRequest) => blocking secrets::tag_resource,
    UntagResource(secrets::UntagResourceRequest) => blocking secrets::untag_resource,
    RotateSecret(secrets::RotateSecretRequest) => blocking secrets::rotate_secret,
    CancelRotateSecret(SecretIdRequest) => blocking secrets::cancel_rotate_secret,
    GetSecretValue(values::GetSecretValueRequest) => blocking values::get_secret_value,
    PutSecretValue(values::PutSecretValueRequest) => blocking values::put_secret_value,
    BatchGetSecretValue(values::BatchGetSecretValueRequest) => blocking values::batch_get_secret_value,
    ListSecretVersionIds(versions::ListSecretVersionIdsRequest) => blocking versions::list_secret_version_ids,
    UpdateSecretVersionStage(versions::UpdateSecretVersionStageRequest) => blocking versions::update_secret_version_stage,
    PutResourcePolicy(policies::PutResourcePolicyRequest) => blocking policies::put_resource_policy,
    GetResourcePolicy(SecretIdRequest) => blocking policies::get_resource_policy,
    DeleteResourcePolicy(SecretIdRequest) => blocking policies::delete_resource_policy,
    ValidateResourcePolicy(policies::ValidateResourcePolicyRequest) => blocking policies::validate_resource_policy,
    GetRandomPassword(password::GetRandomPasswordRequest) => inline password::get_random_password,
}

#[cfg(test)]
mod tests {
    use super::SecretsManagerAction;

    #[test]
    fn debug_output_shows_no_secret_value() {
        for (operation, body) in [
            (
                "CreateSecret",
                r#"{"Name":"n","SecretString":"s3cr3t-value"}"#,
            ),
            (
                "UpdateSecret",
                r#"{"SecretId":"n","SecretString":"s3cr3t-value"}"#,
            ),
            (
                "PutSecretValue",
                r#"{"SecretId":"n","SecretString":"s3cr3t-value"}"#,
            ),
            (
                "PutSecretValue",
                r#"{"SecretId":"n","SecretBinary":"czNjcjN0LXZhbHVl"}"#,
            ),
        ] {
            let action = SecretsManagerAction::parse(operation, body.as_bytes()).unwrap();
            let shown = format!("{action:?}");
            assert!(
                !shown.contains("s3cr3t-value") && !shown.contains("czNjcjN0"),
                "{shown}"
            );
            assert!(shown.contains("<hidden>"), "{shown}");
        }
        let answer = super::values::SecretValueWire {
            arn: "arn".into(),
            name: "n".into(),
            version_id: "v".into(),
            secret_string: Some("s3cr3t-value".into()),
            secret_binary: None,
            version_stages: vec!["AWSCURRENT".into()],
            created_date: 0.0,
        };
        assert!(!format!("{answer:?}").contains("s3cr3t-value"));
    }
}
