//! The key layout in the store. Repository names never contain `@`, so `{repo}@` is an
//! unambiguous prefix for everything belonging to one repository.
//!
//! ```text
//! ecr/{account}/{region}/repo/{repo}                      Repository
//! ecr/{account}/{region}/img/{repo}@{digest}              ImageRecord (one per manifest)
//! ecr/{account}/{region}/tag/{repo}@{tag}                 TagRecord -> digest
//! ecr/{account}/{region}/link/{repo}@{digest}             blob usable from this repository
//! ecr/{account}/{region}/ref/{repo}@{subject}@{digest}    referrer of `subject`
//! ecr/{account}/{region}/parent/{repo}@{child}@{index}    `index` lists image `child`
//! ecr/{account}/{region}/lcpreview/{repo}                 LifecyclePreview (the last one)
//! ecr/{account}/{region}/registry/policy                  RegistryPolicy
//! ecr/{account}/{region}/registry/scanning                ScanningConfiguration
//! blob/{digest}                                           BlobRecord (global, deduplicated)
//! blobdel/{digest}                                        the last deletion of its bytes
//! upload/{uuid}                                           UploadRecord
//! ```

use berth_model::{Digest, RepositoryName};

use crate::Scope;

pub(crate) fn scope_prefix(scope: &Scope) -> String {
    format!("ecr/{}/{}/", scope.account, scope.region)
}

pub(crate) fn repo(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}repo/{name}", scope_prefix(scope))
}

pub(crate) fn repos(scope: &Scope) -> String {
    format!("{}repo/", scope_prefix(scope))
}

pub(crate) fn image(scope: &Scope, name: &RepositoryName, digest: &Digest) -> String {
    format!("{}img/{name}@{digest}", scope_prefix(scope))
}

pub(crate) fn images(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}img/{name}@", scope_prefix(scope))
}

pub(crate) fn tag(scope: &Scope, name: &RepositoryName, tag: &str) -> String {
    format!("{}tag/{name}@{tag}", scope_prefix(scope))
}

pub(crate) fn tags(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}tag/{name}@", scope_prefix(scope))
}

pub(crate) fn link(scope: &Scope, name: &RepositoryName, digest: &Digest) -> String {
    format!("{}link/{name}@{digest}", scope_prefix(scope))
}

/// Every blob link of every repository of the scope.
pub(crate) fn all_links(scope: &Scope) -> String {
    format!("{}link/", scope_prefix(scope))
}

pub(crate) fn links(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}link/{name}@", scope_prefix(scope))
}

pub(crate) fn referrer(
    scope: &Scope,
    name: &RepositoryName,
    subject: &Digest,
    digest: &Digest,
) -> String {
    format!("{}ref/{name}@{subject}@{digest}", scope_prefix(scope))
}

pub(crate) fn referrers(scope: &Scope, name: &RepositoryName, subject: &Digest) -> String {
    format!("{}ref/{name}@{subject}@", scope_prefix(scope))
}

pub(crate) fn referrers_of_repo(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}ref/{name}@", scope_prefix(scope))
}

pub(crate) fn parent(
    scope: &Scope,
    name: &RepositoryName,
    child: &Digest,
    index: &Digest,
) -> String {
    format!("{}parent/{name}@{child}@{index}", scope_prefix(scope))
}

pub(crate) fn parents(scope: &Scope, name: &RepositoryName, child: &Digest) -> String {
    format!("{}parent/{name}@{child}@", scope_prefix(scope))
}

pub(crate) fn parents_of_repo(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}parent/{name}@", scope_prefix(scope))
}

pub(crate) fn lifecycle_preview(scope: &Scope, name: &RepositoryName) -> String {
    format!("{}lcpreview/{name}", scope_prefix(scope))
}

pub(crate) fn registry_policy(scope: &Scope) -> String {
    format!("{}registry/policy", scope_prefix(scope))
}

pub(crate) fn scanning_configuration(scope: &Scope) -> String {
    format!("{}registry/scanning", scope_prefix(scope))
}

/// Every scope's records lie under this prefix, at `{account}/{region}/`.
pub(crate) const ECR: &str = "ecr/";

pub(crate) fn blob(digest: &Digest) -> String {
    format!("blob/{digest}")
}

pub(crate) const BLOBS: &str = "blob/";

/// The marker of the last deletion of a digest's bytes (`blob_deletions.rs`).
pub(crate) fn blob_deletion(digest: &Digest) -> String {
    format!("{BLOB_DELETIONS}{digest}")
}

pub(crate) const BLOB_DELETIONS: &str = "blobdel/";

pub(crate) fn upload(id: &str) -> String {
    format!("upload/{id}")
}

pub(crate) const UPLOADS: &str = "upload/";

/// The digest at the end of a `...@{digest}` key.
pub(crate) fn trailing_digest(key: &str) -> Option<Digest> {
    key.rsplit('@').next()?.parse().ok()
}
