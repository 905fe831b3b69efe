//! IAM for Berth: the principals requests are made by and the keys they sign with.
//!
//! IAM is global: its records are per account, not per region, under `iam/{account}/`
//! in Berth's store, and access keys are also indexed by key id (`iam/access-keys/{id}`)
//! so that SigV4 finds a key's secret and owner with one read: users and their access keys,
//! groups, roles (service-linked ones too), instance profiles, managed and inline policies,
//! and IAM's policy language and evaluation (`policy`).

mod access_keys;
mod accounts;
mod attachments;
mod entities;
mod groups;
mod ids;
mod instance_profiles;
mod managed;
mod policies;
pub mod policy;
mod policy_cache;
mod principal_tags;
mod roles;
mod server_certificates;
mod service_linked;
mod service_sessions;
mod sessions;
mod tags;
mod users;

use std::sync::Arc;

use berth_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use access_keys::{
    AccessKey, AccessKeyLastUsed, AccessKeyStatus, KEY_USE_RECORD_INTERVAL_SECONDS,
};
pub use accounts::{Account, DEFAULT_ACCOUNT_NAME, MAX_ACCOUNT_NAME, is_account_id};
pub use attachments::{Holder, MAX_ATTACHED};
pub use entities::{AuthorizationDetails, DetailFilter, PolicyEntities, RoleDetail};
pub use groups::{Group, MAX_GROUPS_PER_USER};
pub use instance_profiles::InstanceProfile;
pub use policies::{
    CreatePolicy, MAX_MANAGED_POLICY_SIZE, ManagedPolicy, PolicyScope, PolicyVersion,
    check_document,
};
pub use policy_cache::{MAX_DOCUMENTS, MAX_SETS};
pub use roles::{CreateRole, Role};
pub use server_certificates::{ServerCertificate, UploadServerCertificate};
pub use service_linked::{DeletionTask, service_linked_role_arn};
pub use sessions::{Session, SessionCheck, session_token_duration};
pub use tags::{MAX_TAGS, Tagged};
pub use users::{CreateUser, User};

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// IAM's NoSuchEntity (HTTP 404).
    #[error("{0}")]
    NoSuchEntity(String),
    /// IAM's EntityAlreadyExists (HTTP 409).
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// IAM's DeleteConflict (HTTP 409).
    #[error("{0}")]
    DeleteConflict(String),
    /// IAM's LimitExceeded (HTTP 409).
    #[error("{0}")]
    LimitExceeded(String),
    /// IAM's ValidationError (HTTP 400).
    #[error("{0}")]
    Validation(String),
    /// IAM's UnmodifiableEntity (HTTP 400): a service-linked role, which only its service
    /// may change.
    #[error("{0}")]
    UnmodifiableEntity(String),
    /// IAM's InvalidInput (HTTP 400).
    #[error("{0}")]
    InvalidInput(String),
    /// IAM's PolicyNotAttachable (HTTP 400): a service-linked role's policy given to a
    /// user, group or role.
    #[error("{0}")]
    PolicyNotAttachable(String),
    /// IAM's MalformedPolicyDocument (HTTP 400).
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// IAM's MalformedCertificate (HTTP 400): a certificate, chain or key that is not PEM.
    #[error("{0}")]
    MalformedCertificate(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("corrupt IAM record {0}")]
    Corrupt(String),
}

pub type Result<T, E = IamError> = std::result::Result<T, E>;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// The account's root credentials: unrestricted.
    Root { account: String },
    /// An IAM user.
    User {
        account: String,
        name: String,
        id: String,
        arn: String,
    },
    /// A session of a role (AssumeRole): the role's policies, narrowed by the session's.
    AssumedRole {
        account: String,
        role_name: String,
        role_arn: String,
        role_id: String,
        session_name: String,
        /// Session policies (inline `Policy` and `PolicyArns`' documents) given to
        /// AssumeRole: the session may do only what they allow too.
        #[serde(default)]
        session_policies: Vec<String>,
        /// Session tags (AssumeRole's `Tags`, and the transitive tags of the session that
        /// assumed the role): `aws:PrincipalTag/…`, over the role's own tags.
        #[serde(default)]
        session_tags: Vec<(String, String)>,
        /// The keys of `session_tags` that pass on to a session this one assumes.
        #[serde(default)]
        transitive_tag_keys: Vec<String>,
    },
}

impl Principal {
    pub fn account(&self) -> &str {
        match self {
            Principal::Root { account }
            | Principal::User { account, .. }
            | Principal::AssumedRole { account, .. } => account,
        }
    }

    /// The principal's ARN as GetCallerIdentity and refusals name it.
    pub fn arn(&self) -> String {
        match self {
            Principal::Root { account } => format!("arn:aws:iam::{account}:root"),
            Principal::User { arn, .. } => arn.clone(),
            Principal::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
        }
    }

    /// `aws:userid`: the account id for root, the unique id for a user, `ROLEID:SESSION`
    /// for a role session.
    pub fn user_id(&self) -> String {
        match self {
            Principal::Root { account } => account.clone(),
            Principal::User { id, .. } => id.clone(),
            Principal::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }
}

/// IAM's state and operations for every account of the installation. Clones share one
/// cache of parsed policies (`policy_cache`).
#[derive(Clone)]
pub struct Iam {
    /// `store` wrapped in `policy_cache::Generations`: every write to a user, role or
    /// managed policy bumps its account's IAM generation.
    store: Arc<dyn Store>,
    /// When this process last wrote each access key's last use (shared by clones).
    key_uses: Arc<access_keys::KeyUses>,
    cache: Arc<policy_cache::PolicyCache>,
    /// This process is the store's only writer: the IAM generation is read from memory.
    sole_writer: bool,
    /// Seals server certificates' private keys at rest (none: they cannot be uploaded).
    data_key: Option<Arc<berth_kms::DataKey>>,
}

impl Iam {
    pub fn new(store: Arc<dyn Store>) -> Iam {
        Iam {
            store: Arc::new(policy_cache::Generations::new(store)),
            key_uses: Arc::default(),
            cache: Arc::default(),
            sole_writer: false,
            data_key: None,
        }
    }

    /// The installation's data key, which seals server certificates' private keys.
    pub fn with_data_key(mut self, key: Arc<berth_kms::DataKey>) -> Iam {
        self.data_key = Some(key);
        self
    }

    /// Declares this process the only writer of the store (the embedded store, which one
    /// process holds locked; not etcd, which replicas share): cached policies are checked
    /// against this process's own count of IAM writes instead of a store read.
    pub fn sole_writer(mut self) -> Iam {
        self.sole_writer = true;
        self
    }
}

fn now_epoch() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|_| IamError::Corrupt(key.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("IAM records serialise")
}

fn user_key(account: &str, name: &str) -> String {
    // IAM names are case-insensitive for uniqueness: the key is the lowercased name.
    format!("iam/{account}/users/{}", name.to_ascii_lowercase())
}

fn users_prefix(account: &str) -> String {
    format!("iam/{account}/users/")
}

fn access_key_key(id: &str) -> String {
    format!("iam/access-keys/{id}")
}

#[cfg(test)]
mod tests;
