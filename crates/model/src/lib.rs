//! Domain types shared by every Berth crate. Values are parsed and validated here, at the
//! edge, so that the rest of the code never handles raw strings for names or digests.

pub mod digest;
pub mod names;
pub mod task_definition;

pub use digest::{Digest, DigestAlgorithm, DigestError, Hasher};
pub use names::{AccountId, NameError, Reference, Region, RepositoryName, Tag};
