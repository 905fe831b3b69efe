//! SSM Parameter Store's JSON 1.1 API (`AmazonSSM.*`): typed requests and responses with
//! SSM's field names, `SsmError` mapped to SSM's exceptions, and the second authorization
//! SSM implies: reading a SecureString with decryption needs `kms:Decrypt` on its key.

mod parameters;
mod query;
mod tags;

use berth_ssm::{Parameter, SsmError, SsmScope};
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "AmazonSSM";

pub fn ssm_error(e: SsmError) -> AwsError {
    if e.is_internal() {
        return AwsError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            e.code(),
            e.to_string(),
        );
    }
    AwsError::client(e.code(), e.to_string())
}

pub(crate) fn ssm_scope(ctx: &AwsContext) -> SsmScope {
    SsmScope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str())
}

/// The ARN `kms:Decrypt` is authorized on for a `KeyId` as SSM keeps it: an ARN as given,
/// an alias or key id made into one in the caller's region and account.
pub(crate) fn key_arn(ctx: &AwsContext, key_id: &str) -> String {
    if key_id.starts_with("arn:") {
        return key_id.to_string();
    }
    let (region, account) = (ctx.scope.region.as_str(), ctx.scope.account.as_str());
    if key_id.starts_with("alias/") {
        format!("arn:aws:kms:{region}:{account}:{key_id}")
    } else {
        format!("arn:aws:kms:{region}:{account}:key/{key_id}")
    }
}

/// Opens the SecureString values of `found` when the caller may decrypt with their keys
/// (`kms:Decrypt`, decided as every request is). The AWS managed key `aws/ssm` lets every
/// principal of its account decrypt through SSM (its key policy allows `"AWS": "*"` of the
/// account), so with it only an explicit deny refuses; another key needs an allow in the
/// caller's policies (Berth has no key policies of customer keys).
pub(crate) fn decrypt_all(
    ctx: &AwsContext,
    scope: &SsmScope,
    found: Vec<Parameter>,
) -> Result<Vec<Parameter>, AwsError> {
    let mut keys: Vec<String> = found
        .iter()
        .filter(|p| p.version.kind == berth_ssm::ParameterType::SecureString)
        .filter_map(|p| p.version.key_id.as_deref().map(|k| key_arn(ctx, k)))
        .collect();
    keys.sort();
    keys.dedup();
    let account = ctx.scope.account.as_str();
    let managed = key_arn(ctx, berth_kms::SSM_DEFAULT_KEY);
    let managed_key_policy = crate::authz::ResourcePolicy {
        account: account.to_string(),
        document: Some(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalAccount":"{account}"}}}}}}]}}"#
        )),
    };
    for key in keys {
        crate::authz::authorize_on(
            &ctx.app.iam,
            &ctx.principal,
            "kms:Decrypt",
            std::slice::from_ref(&key),
            &ctx.keys,
            crate::authz::Refusal::Json,
            crate::authz::OnResource {
                policy: (key == managed).then_some(&managed_key_policy),
                tags: None,
            },
        )?;
    }
    found
        .into_iter()
        .map(|p| ctx.app.ssm.decrypt(scope, p).map_err(ssm_error))
        .collect()
}

/// `found` as the caller asked: SecureString values opened with `WithDecryption`.
pub(crate) fn opened(
    ctx: &AwsContext,
    scope: &SsmScope,
    found: Vec<Parameter>,
    with_decryption: Option<bool>,
) -> Result<Vec<Parameter>, AwsError> {
    if with_decryption.unwrap_or(false) {
        decrypt_all(ctx, scope, found)
    } else {
        Ok(found)
    }
}

/// What `Debug` shows of a value: a SecureString's (which may be opened) never.
pub(crate) fn shown_value<'a>(kind: &str, value: &'a str) -> &'a str {
    if kind == "SecureString" {
        "<hidden>"
    } else {
        value
    }
}

/// A `LastModifiedDate`: seconds since the epoch, as AWS's JSON timestamps are.
pub(crate) fn timestamp(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A parameter policy as answers show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyShown {
    pub policy_text: String,
    pub policy_type: String,
    pub policy_status: &'static str,
}

pub(crate) fn policies(version: &berth_ssm::ParameterVersion) -> Vec<PolicyShown> {
    version
        .policies
        .iter()
        .map(|p| PolicyShown {
            policy_text: p.text.clone(),
            policy_type: p.kind.clone(),
            policy_status: "Pending",
        })
        .collect()
}

/// What DescribeParameters and GetParameterHistory both show of a parameter version.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionDetails {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub last_modified_date: f64,
    pub last_modified_user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    pub version: u64,
    pub tier: &'static str,
    pub policies: Vec<PolicyShown>,
    pub data_type: String,
}

impl VersionDetails {
    /// The details of `version`, with what it keeps besides (value, labels) handed back.
    pub(crate) fn split(
        version: berth_ssm::ParameterVersion,
    ) -> (VersionDetails, String, Vec<String>) {
        let details = VersionDetails {
            kind: version.kind.as_str(),
            policies: policies(&version),
            key_id: version.key_id,
            last_modified_date: timestamp(version.last_modified_ms),
            last_modified_user: version.last_modified_user,
            description: version.description,
            allowed_pattern: version.allowed_pattern,
            version: version.version,
            tier: version.tier.as_str(),
            data_type: version.data_type,
        };
        (details, version.value, version.labels)
    }
}

crate::aws_actions! {
    SsmAction, "Amazon SSM";
    PutParameter(parameters::PutParameterRequest) => blocking parameters::put_parameter,
    GetParameter(parameters::GetParameterRequest) => blocking parameters::get_parameter,
    GetParameters(parameters::GetParametersRequest) => blocking parameters::get_parameters,
    DeleteParameter(parameters::NameRequest) => blocking parameters::delete_parameter,
    DeleteParameters(parameters::NamesRequest) => blocking parameters::delete_parameters,
    GetParameterHistory(parameters::GetParameterHistoryRequest) => blocking parameters::get_parameter_history,
    LabelParameterVersion(parameters::LabelParameterVersionRequest) => blocking parameters::label_parameter_version,
    UnlabelParameterVersion(parameters::UnlabelParameterVersionRequest) => blocking parameters::unlabel_parameter_version,
    GetParametersByPath(query::GetParametersByPathRequest) => blocking query::get_parameters_by_path,
    DescribeParameters(query::DescribeParametersRequest) => blocking query::describe_parameters,
    AddTagsToResource(tags::AddTagsToResourceRequest) => blocking tags::add_tags_to_resource,
    RemoveTagsFromResource(tags::RemoveTagsFromResourceRequest) => blocking tags::remove_tags_from_resource,
    ListTagsForResource(tags::ListTagsForResourceRequest) => blocking tags::list_tags_for_resource,
}

/// Runs an SSM operation. SSM calls a missing or ill-formed member a
/// `ValidationException` where the shared parser says `InvalidParameterException`.
pub async fn serve(ctx: AwsContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, AwsError> {
    dispatch(ctx, operation, body).await.map_err(|mut e| {
        if e.code == "InvalidParameterException" {
            e.code = "ValidationException".to_string();
        }
        e
    })
}

#[cfg(test)]
mod tests {
    use super::SsmAction;
    use super::parameters::ParameterShown;

    #[test]
    fn debug_output_shows_no_secure_string_value() {
        let body = r#"{"Name":"/p","Value":"s3cr3t-value","Type":"SecureString"}"#;
        let action = SsmAction::parse("PutParameter", body.as_bytes()).unwrap();
        assert!(!format!("{action:?}").contains("s3cr3t-value"));
        let shown = |kind| ParameterShown {
            name: "/p".into(),
            kind,
            value: "s3cr3t-value".into(),
            version: 1,
            selector: None,
            last_modified_date: 0.0,
            arn: "arn".into(),
            data_type: "text".into(),
        };
        assert!(!format!("{:?}", shown("SecureString")).contains("s3cr3t-value"));
        assert!(format!("{:?}", shown("String")).contains("s3cr3t-value"));
    }
}
