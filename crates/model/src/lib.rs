//! Domain types shared by every Berth crate. Values are parsed and validated here, at the
//! edge, so that the rest of the code never handles raw strings for names or digests.

pub mod cloudwatch;
pub mod digest;
pub mod ecs;
pub mod installation;
pub mod names;
pub mod task_definition;

pub use digest::{Digest, DigestAlgorithm, DigestError, Hasher};
pub use installation::{InstallationId, InstallationIdError, LABEL_INSTALLATION};
pub use names::{AccountId, ImageTag, NameError, Reference, Region, RepositoryName};

/// Where a resource lives: ECR and ECS resources are per account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: AccountId,
    pub region: Region,
}

/// The account resources belong to unless `--account-id` says otherwise (../shared/INTERFACE.md).
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// The region `berth up` tells clients to use, and the agent's when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

impl Scope {
    pub fn new(account: AccountId, region: Region) -> Scope {
        Scope { account, region }
    }

    /// [`DEFAULT_ACCOUNT_ID`] in [`DEFAULT_REGION`]: where an installation's resources are
    /// when nothing else is asked for.
    pub fn default_installation() -> Scope {
        Scope::new(
            DEFAULT_ACCOUNT_ID.parse().expect("a valid account id"),
            DEFAULT_REGION.parse().expect("a valid region"),
        )
    }

    /// `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}
