//! Domain types shared by every Berth crate. Values are parsed and validated here, at the
//! edge, so that the rest of the code never handles raw strings for names or digests.

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

impl Scope {
    pub fn new(account: AccountId, region: Region) -> Scope {
        Scope { account, region }
    }

    /// `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}
