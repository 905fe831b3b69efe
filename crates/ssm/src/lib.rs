//! SSM Parameter Store: parameters (String, StringList, SecureString) with their versions,
//! labels and tags, one store record per parameter under `ssm/{account}/{region}/parameter/`
//! (`keys`), so that every change to a parameter is one compare-and-swap. SecureString
//! values are sealed with the installation's data key (`berth-kms`), each version bound to
//! its record; the store never holds their plaintext.

mod names;
mod parameters;
mod query;

use std::sync::Arc;

use berth_kms::DataKey;
use berth_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use names::{MAX_HIERARCHY_LEVELS, ParameterName, Selector, parse_selector};
pub use parameters::{LabelOutcome, PutOutcome, PutParameter, UnlabelOutcome};
pub use query::{Filter, FilterOption, Page};

/// At most this many versions of a parameter are kept (the oldest goes when a new one comes).
pub const MAX_VERSIONS: usize = 100;
/// At most this many labels on one version.
pub const MAX_LABELS_PER_VERSION: usize = 10;
/// At most this many tags on one parameter.
pub const MAX_TAGS: usize = 50;
/// Value size limits (bytes) of the tiers.
pub const STANDARD_VALUE_LIMIT: usize = 4096;
pub const ADVANCED_VALUE_LIMIT: usize = 8192;

pub type Result<T, E = SsmError> = std::result::Result<T, E>;

/// Parameter Store's exceptions, named as SSM names them (`code()`), with its messages.
#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    #[error("{0}")]
    ParameterNotFound(String),
    #[error(
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    )]
    ParameterAlreadyExists,
    #[error("{0}")]
    ParameterVersionNotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error(
        "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and Constraints for Parameter Names in the AWS Systems Manager User Guide."
    )]
    HierarchyLevelLimitExceeded,
    #[error("Parameter value, cannot be validated against allowedPattern: {0}")]
    ParameterPatternMismatch(String),
    #[error("{0}")]
    InvalidAllowedPattern(String),
    #[error("{0}")]
    ParameterMaxVersionLimitExceeded(String),
    #[error(
        "A parameter version can have a maximum of 10 labels.Move one or more labels to another version and try again."
    )]
    ParameterVersionLabelLimitExceeded,
    #[error("{0}")]
    UnsupportedParameterType(String),
    #[error("{0}")]
    InvalidFilterKey(String),
    #[error("{0}")]
    InvalidFilterOption(String),
    #[error("{0}")]
    InvalidFilterValue(String),
    #[error("The specified token is not valid.")]
    InvalidNextToken,
    #[error("The resource ID is not valid. Verify that you entered the correct ID and try again.")]
    InvalidResourceId,
    #[error("The resource type is not valid.")]
    InvalidResourceType,
    #[error(
        "The Targets parameter includes too many tags. Remove one or more tags and try the request again."
    )]
    TooManyTags,
    #[error("{0}")]
    InvalidPolicy(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("a sealed value does not open: {0}")]
    Kms(#[from] berth_kms::KmsError),
}

impl SsmError {
    /// The exception's name on the wire (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            SsmError::ParameterNotFound(_) => "ParameterNotFound",
            SsmError::ParameterAlreadyExists => "ParameterAlreadyExists",
            SsmError::ParameterVersionNotFound(_) => "ParameterVersionNotFound",
            SsmError::Validation(_) => "ValidationException",
            SsmError::HierarchyLevelLimitExceeded => "HierarchyLevelLimitExceededException",
            SsmError::ParameterPatternMismatch(_) => "ParameterPatternMismatchException",
            SsmError::InvalidAllowedPattern(_) => "InvalidAllowedPatternException",
            SsmError::ParameterMaxVersionLimitExceeded(_) => "ParameterMaxVersionLimitExceeded",
            SsmError::ParameterVersionLabelLimitExceeded => "ParameterVersionLabelLimitExceeded",
            SsmError::UnsupportedParameterType(_) => "UnsupportedParameterType",
            SsmError::InvalidFilterKey(_) => "InvalidFilterKey",
            SsmError::InvalidFilterOption(_) => "InvalidFilterOption",
            SsmError::InvalidFilterValue(_) => "InvalidFilterValue",
            SsmError::InvalidNextToken => "InvalidNextToken",
            SsmError::InvalidResourceId => "InvalidResourceId",
            SsmError::InvalidResourceType => "InvalidResourceType",
            SsmError::TooManyTags => "TooManyTagsError",
            SsmError::InvalidPolicy(_) => "InvalidPolicyTypeException",
            SsmError::Store(_) | SsmError::Kms(_) => "InternalServerError",
        }
    }

    /// Whether the fault is the server's (HTTP 500).
    pub fn is_internal(&self) -> bool {
        matches!(self, SsmError::Store(_) | SsmError::Kms(_))
    }
}

pub(crate) fn validation(message: impl Into<String>) -> SsmError {
    SsmError::Validation(message.into())
}

/// Where a request acts: an account's parameters in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmScope {
    pub account: String,
    pub region: String,
}

impl SsmScope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> SsmScope {
        SsmScope {
            account: account.into(),
            region: region.into(),
        }
    }

    /// Every parameter record of the scope starts with this.
    pub(crate) fn parameters_prefix(&self) -> String {
        format!("ssm/{}/{}/parameter/", self.account, self.region)
    }

    /// The record of parameter `name` (names keep their leading slash: `/a` and `a` differ).
    pub(crate) fn parameter_key(&self, name: &ParameterName) -> String {
        format!("{}{}", self.parameters_prefix(), name.as_str())
    }

    /// The parameter's ARN: `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME` (one slash).
    pub fn parameter_arn(&self, name: &str) -> String {
        parameter_arn(&self.region, &self.account, name)
    }
}

/// `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`, the leading slash of a hierarchical name
/// not doubled (as SSM writes it).
pub fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.strip_prefix('/').unwrap_or(name)
    )
}

/// The three parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn parse(value: &str) -> Result<ParameterType> {
        match value {
            "String" => Ok(ParameterType::String),
            "StringList" => Ok(ParameterType::StringList),
            "SecureString" => Ok(ParameterType::SecureString),
            other => Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }
}

/// The storage tiers a parameter is kept in (Intelligent-Tiering picks one of the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    Standard,
    Advanced,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "Standard",
            Tier::Advanced => "Advanced",
        }
    }

    pub fn value_limit(self) -> usize {
        match self {
            Tier::Standard => STANDARD_VALUE_LIMIT,
            Tier::Advanced => ADVANCED_VALUE_LIMIT,
        }
    }
}

/// A policy attached to a parameter (Advanced tier), kept and shown as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub text: String,
    pub kind: String,
}

/// One version of a parameter as stored. `value` is sealed (base64) for SecureString; once
/// opened (`Ssm::decrypt`) it is plaintext, so `Debug` never shows a SecureString's value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterVersion {
    pub version: u64,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<StoredPolicy>,
    pub data_type: String,
    /// Milliseconds since the epoch.
    pub last_modified_ms: i64,
    pub last_modified_user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl std::fmt::Debug for ParameterVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = match self.kind {
            ParameterType::SecureString => &"<hidden>",
            _ => &self.value,
        };
        f.debug_struct("ParameterVersion")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("value", value)
            .field("key_id", &self.key_id)
            .field("tier", &self.tier)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// A parameter's record: its name, every kept version (oldest first) and its tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterRecord {
    pub name: String,
    pub versions: Vec<ParameterVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
}

impl ParameterRecord {
    pub fn latest(&self) -> &ParameterVersion {
        self.versions
            .last()
            .expect("a stored parameter has at least one version")
    }

    pub fn version(&self, version: u64) -> Option<&ParameterVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn labelled(&self, label: &str) -> Option<&ParameterVersion> {
        self.versions
            .iter()
            .find(|v| v.labels.iter().any(|l| l == label))
    }
}

/// A version as an answer shows it: the value opened when asked to decrypt.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub arn: String,
    /// `:label` or `:version` when the request selected one.
    pub selector: Option<String>,
    pub version: ParameterVersion,
}

/// Parameter Store over a store, with the installation's data key for SecureString values.
pub struct Ssm {
    store: Arc<dyn Store>,
    key: Arc<DataKey>,
}

impl std::fmt::Debug for Ssm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ssm(..)")
    }
}

impl Ssm {
    pub fn new(store: Arc<dyn Store>, key: Arc<DataKey>) -> Ssm {
        Ssm { store, key }
    }

    fn read(&self, scope: &SsmScope, name: &ParameterName) -> Result<Option<ParameterRecord>> {
        let Some(kv) = self.store.get(&scope.parameter_key(name))? else {
            return Ok(None);
        };
        decode(&kv.key, &kv.value).map(Some)
    }

    /// The binding a SecureString version is sealed for: its record and version.
    fn binding(scope: &SsmScope, name: &ParameterName, version: u64) -> String {
        format!("{}#{version}", scope.parameter_key(name))
    }

    /// `version` as an answer shows it: SecureString values opened when `decrypt`, else
    /// left sealed (SSM shows the ciphertext, base64).
    fn shown(
        &self,
        scope: &SsmScope,
        name: &ParameterName,
        mut version: ParameterVersion,
        decrypt: bool,
    ) -> Result<ParameterVersion> {
        if decrypt && version.kind == ParameterType::SecureString {
            let plain = self
                .key
                .open(&Ssm::binding(scope, name, version.version), &version.value)?;
            version.value = String::from_utf8_lossy(&plain).into_owned();
        }
        Ok(version)
    }
}

impl Ssm {
    /// `parameter` with its SecureString value opened (read without decryption first, so
    /// that the edge can authorize `kms:Decrypt` on its key before it is opened).
    pub fn decrypt(&self, scope: &SsmScope, mut parameter: Parameter) -> Result<Parameter> {
        let name = ParameterName::parse(&parameter.name)?;
        parameter.version = self.shown(scope, &name, parameter.version, true)?;
        Ok(parameter)
    }
}

pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<ParameterRecord> {
    serde_json::from_slice(bytes)
        .map_err(|e| SsmError::Store(StoreError::Corrupt(format!("{key}: {e}"))))
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests;
