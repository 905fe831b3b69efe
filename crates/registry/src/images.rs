//! Images: manifests (pushed through the OCI API or ECR's PutImage), tags, deletes, the
//! ECR image queries, and the referrers index.

use std::collections::HashMap;

use berth_model::{Digest, DigestAlgorithm, Hasher, ImageTag, Reference, RepositoryName};
use berth_store::{Compare, KeyValue, Op};
use serde::{Deserialize, Serialize};

use crate::blob_deletions::BlobWrite;
use crate::manifest::{Descriptor, parse_manifest};
use crate::uploads::{BlobRecord, touch_blob};
use crate::{Registry, RegistryError, Result, Scope, decode, encode, keys, now_epoch, page};

/// One stored manifest in one repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub digest: Digest,
    pub media_type: String,
    #[serde(default)]
    pub artifact_media_type: Option<String>,
    /// Sum of the layer sizes (what ECR reports as imageSizeInBytes).
    pub size: u64,
    pub manifest_size: u64,
    pub pushed_at: f64,
    #[serde(default)]
    pub blobs: Vec<Digest>,
    #[serde(default)]
    pub children: Vec<Digest>,
    #[serde(default)]
    pub subject: Option<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagRecord {
    digest: Digest,
    updated_at: f64,
}

/// ECR's ImageIdentifier, kept as raw strings so invalid ones can be reported as failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// ECR's ImageDetail.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    pub registry_id: String,
    pub repository_name: RepositoryName,
    pub image_digest: Digest,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tags: Vec<String>,
    pub image_size_in_bytes: u64,
    pub image_pushed_at: f64,
    pub image_manifest_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_media_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListImagesFilter {
    Any,
    Tagged,
    Untagged,
}

#[derive(Debug, Clone)]
pub struct ManifestContent {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct PutManifestOutcome {
    pub digest: Digest,
    /// False when this exact manifest was already stored under this tag (or untagged).
    pub changed: bool,
    pub subject: Option<Digest>,
    pub media_type: String,
}

/// An entry of the referrers index (an OCI descriptor).
pub type Referrer = Descriptor;

/// Why a batch operation could not handle one image identifier (ECR's ImageFailure).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    pub image_id: ImageIdentifier,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

const MAX_TXN_RETRIES: usize = 16;

impl Registry {
    fn tag_record(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Option<(TagRecord, u64)>> {
        Ok(match self.store.get(&keys::tag(scope, repo, tag))? {
            Some(kv) => Some((decode(&kv)?, kv.mod_revision)),
            None => None,
        })
    }

    fn image_record(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<(ImageRecord, KeyValue)>> {
        Ok(match self.store.get(&keys::image(scope, repo, digest))? {
            Some(kv) => Some((decode(&kv)?, kv)),
            None => None,
        })
    }

    /// Store a manifest, optionally under a tag. `expected` is the digest the client named
    /// (OCI PUT by digest, ECR imageDigest); the content must hash to it.
    pub async fn put_manifest(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: Option<&ImageTag>,
        expected: Option<&Digest>,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<PutManifestOutcome> {
        self.repository(scope, repo)?;
        let algorithm = expected.map_or(DigestAlgorithm::Sha256, |d| d.algorithm());
        let mut hasher = Hasher::new(algorithm);
        hasher.update(&bytes);
        let digest = hasher.finish();
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(RegistryError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let parsed = parse_manifest(&bytes, content_type)?;
        let manifest_blob = keys::blob(&digest);

        for _ in 0..MAX_TXN_RETRIES {
            // The repository must still be there, with the settings read here, at commit: a
            // concurrent force delete or mutability change makes this attempt conflict.
            let (repository, repo_rev) = self.repository_with_revision(scope, repo)?;
            let mut compares = vec![Compare::ModRevision(keys::repo(scope, repo), repo_rev)];
            let mut ops = Vec::new();
            // Every referenced blob must be usable from this repository (its link still the
            // same at commit), and be touched so that garbage collection cannot take it
            // (see `touch_blob`). Concurrent pushes sharing blobs do not conflict.
            for blob in &parsed.blobs {
                let link = self.store.get(&keys::link(scope, repo, &blob.digest))?;
                let record = self.store.get(&keys::blob(&blob.digest))?;
                let (Some(link), Some(record)) = (link, record) else {
                    return Err(RegistryError::ManifestBlobUnknown(blob.digest.clone()));
                };
                compares.push(Compare::CreateRevision(link.key, link.create_revision));
                let (compare, op) = touch_blob(&record)?;
                compares.push(compare);
                ops.push(op);
            }
            // Children of an index must be images of this repository. Each gets a parent
            // key, and is rewritten so that a concurrent delete of it (which compares on
            // its mod revision) conflicts instead of orphaning the index.
            for child in &parsed.manifests {
                match self.store.get(&keys::image(scope, repo, &child.digest))? {
                    Some(kv) => {
                        compares.push(Compare::CreateRevision(kv.key.clone(), kv.create_revision));
                        ops.push(Op::put(kv.key, kv.value));
                        ops.push(Op::put(
                            keys::parent(scope, repo, &child.digest, &digest),
                            b"{}".to_vec(),
                        ));
                    }
                    None => return Err(RegistryError::ManifestChildUnknown(child.digest.clone())),
                }
            }
            let existing_tag = match tag {
                Some(t) => self.tag_record(scope, repo, t.as_str())?,
                None => None,
            };
            if let (Some(t), Some((record, _))) = (tag, &existing_tag)
                && record.digest != digest
                && repository.tag_is_immutable(t.as_str())
            {
                return Err(RegistryError::ImageTagAlreadyExists {
                    tag: t.to_string(),
                    repository: repo.clone(),
                });
            }
            let existing_image = self.image_record(scope, repo, &digest)?;
            let changed = match (&existing_image, tag, &existing_tag) {
                (None, _, _) => true,
                (Some(_), None, _) => false,
                (Some(_), Some(_), Some((t, _))) => t.digest != digest,
                (Some(_), Some(_), None) => true,
            };
            if let Some(t) = tag {
                let key = keys::tag(scope, repo, t.as_str());
                compares.push(Compare::ModRevision(
                    key.clone(),
                    existing_tag.as_ref().map_or(0, |(_, rev)| *rev),
                ));
                let record = TagRecord {
                    digest: digest.clone(),
                    updated_at: now_epoch(),
                };
                ops.push(Op::put(key, encode(&record)));
            }
            let image = ImageRecord {
                digest: digest.clone(),
                media_type: parsed.media_type.clone(),
                artifact_media_type: parsed.artifact_type(),
                size: if parsed.is_index {
                    bytes.len() as u64
                } else {
                    parsed.layers_size
                },
                manifest_size: bytes.len() as u64,
                pushed_at: existing_image
                    .as_ref()
                    .map_or_else(now_epoch, |(r, _)| r.pushed_at),
                blobs: parsed.blobs.iter().map(|b| b.digest.clone()).collect(),
                children: parsed.manifests.iter().map(|m| m.digest.clone()).collect(),
                subject: parsed.subject.as_ref().map(|s| s.digest.clone()),
            };
            let image_key = keys::image(scope, repo, &digest);
            compares.push(Compare::ModRevision(
                image_key.clone(),
                existing_image.as_ref().map_or(0, |(_, kv)| kv.mod_revision),
            ));
            ops.push(Op::put(image_key, encode(&image)));
            ops.push(Op::put(keys::link(scope, repo, &digest), b"{}".to_vec()));
            if let Some(subject) = &parsed.subject {
                let referrer = Descriptor {
                    media_type: parsed.media_type.clone(),
                    digest: digest.clone(),
                    size: bytes.len() as u64,
                    artifact_type: parsed.artifact_type(),
                    urls: None,
                    annotations: parsed.annotations.clone(),
                    platform: None,
                };
                ops.push(Op::put(
                    keys::referrer(scope, repo, &subject.digest, &digest),
                    encode(&referrer),
                ));
            }

            // The manifest's own bytes, stored as a blob like any other (when new,
            // fenced against deletions: `blob_deletions.rs`).
            match self.prepare_blob_write(&digest).await? {
                BlobWrite::Exists(kv) => {
                    let (compare, op) = touch_blob(&kv)?;
                    compares.push(compare);
                    ops.push(op);
                }
                BlobWrite::New(fence) => {
                    self.blobs.write_whole(&digest, bytes.clone()).await?;
                    compares.push(Compare::CreateRevision(manifest_blob.clone(), 0));
                    compares.push(fence.compare());
                    let record = BlobRecord::new(bytes.len() as u64);
                    ops.push(Op::put(manifest_blob.clone(), encode(&record)));
                }
            }
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(PutManifestOutcome {
                    digest,
                    changed,
                    subject: image.subject,
                    media_type: image.media_type,
                });
            }
        }
        Err(RegistryError::Store(berth_store::StoreError::Io(
            "too much contention on the manifest; retry".into(),
        )))
    }

    /// Resolve a reference to an image record.
    pub fn resolve(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<ImageRecord> {
        self.repository(scope, repo)?;
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.tag_record(scope, repo, t.as_str())? {
                Some((record, _)) => record.digest,
                None => return Err(RegistryError::ManifestUnknown(t.to_string())),
            },
        };
        match self.image_record(scope, repo, &digest)? {
            Some((record, _)) => Ok(record),
            None => Err(RegistryError::ManifestUnknown(digest.to_string())),
        }
    }

    pub async fn get_manifest(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<ManifestContent> {
        let record = self.resolve(scope, repo, reference)?;
        let bytes = self.blobs.read_all(&record.digest).await?;
        Ok(ManifestContent {
            digest: record.digest,
            media_type: record.media_type,
            bytes,
        })
    }

    /// Delete a manifest and every tag that points at it.
    pub fn delete_manifest(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<()> {
        self.repository(scope, repo)?;
        for _ in 0..MAX_TXN_RETRIES {
            let Some((record, kv)) = self.image_record(scope, repo, digest)? else {
                return Err(RegistryError::ManifestUnknown(digest.to_string()));
            };
            // An image that an index lists stays while the index does (ECR's
            // ImageReferencedByManifestList). An index put that commits after this read
            // rewrites the image record, so the compare below catches it.
            let parents = self
                .store
                .range(&keys::parents(scope, repo, digest), None, 0)?;
            if !parents.is_empty() {
                return Err(RegistryError::ImageReferencedByManifestList(
                    parents
                        .iter()
                        .filter_map(|p| keys::trailing_digest(&p.key))
                        .collect(),
                ));
            }
            let mut compares = vec![Compare::ModRevision(kv.key.clone(), kv.mod_revision)];
            let mut ops = vec![Op::delete(kv.key)];
            for child in &record.children {
                ops.push(Op::delete(keys::parent(scope, repo, child, digest)));
            }
            for tkv in self.store.range(&keys::tags(scope, repo), None, 0)? {
                let t: TagRecord = decode(&tkv)?;
                if &t.digest == digest {
                    compares.push(Compare::ModRevision(tkv.key.clone(), tkv.mod_revision));
                    ops.push(Op::delete(tkv.key));
                }
            }
            if let Some(subject) = &record.subject {
                ops.push(Op::delete(keys::referrer(scope, repo, subject, digest)));
            }
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(());
            }
        }
        Err(RegistryError::Store(berth_store::StoreError::Io(
            "too much contention on the manifest; retry".into(),
        )))
    }

    /// Remove a tag. With `delete_untagged`, the image goes too when this was its last tag
    /// (ECR's BatchDeleteImage by tag).
    pub fn delete_tag(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: &ImageTag,
        delete_untagged: bool,
    ) -> Result<Digest> {
        self.repository(scope, repo)?;
        let Some((record, rev)) = self.tag_record(scope, repo, tag.as_str())? else {
            return Err(RegistryError::ManifestUnknown(tag.to_string()));
        };
        let key = keys::tag(scope, repo, tag.as_str());
        if !self
            .store
            .txn(
                &[Compare::ModRevision(key.clone(), rev)],
                &[Op::delete(key)],
            )?
            .is_committed()
        {
            return Err(RegistryError::ManifestUnknown(tag.to_string()));
        }
        if delete_untagged
            && !self
                .tags_by_digest(scope, repo)?
                .contains_key(&record.digest)
        {
            match self.delete_manifest(scope, repo, &record.digest) {
                Ok(()) | Err(RegistryError::ManifestUnknown(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(record.digest)
    }

    pub(crate) fn tags_by_digest(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> Result<HashMap<Digest, Vec<String>>> {
        let prefix = keys::tags(scope, repo);
        let mut map: HashMap<Digest, Vec<String>> = HashMap::new();
        for kv in self.store.range(&prefix, None, 0)? {
            let t: TagRecord = decode(&kv)?;
            map.entry(t.digest)
                .or_default()
                .push(kv.key[prefix.len()..].to_string());
        }
        Ok(map)
    }

    /// OCI tag listing: lexical order, at most `n`, strictly after `last`. Returns the tags
    /// and whether more follow.
    pub fn list_tags(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        self.repository(scope, repo)?;
        self.names_under(&keys::tags(scope, repo), n, last)
    }

    /// OCI catalog: repository names of the scope in lexical order.
    pub fn catalog(
        &self,
        scope: &Scope,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        self.names_under(&keys::repos(scope), n, last)
    }

    /// The key suffixes under `prefix`, OCI-paginated (`n`, `last`), and whether more follow.
    fn names_under(
        &self,
        prefix: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        let after = last.map(|l| format!("{prefix}{l}"));
        let limit = n.map_or(0, |n| n + 1);
        let mut names: Vec<String> = self
            .store
            .range(prefix, after.as_deref(), limit)?
            .into_iter()
            .map(|kv| kv.key[prefix.len()..].to_string())
            .collect();
        let more = n.is_some_and(|n| names.len() > n);
        if let Some(n) = n {
            names.truncate(n);
        }
        Ok((names, more))
    }

    fn detail(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        r: ImageRecord,
        tags: Vec<String>,
    ) -> ImageDetail {
        ImageDetail {
            registry_id: scope.account.to_string(),
            repository_name: repo.clone(),
            image_digest: r.digest,
            image_tags: tags,
            image_size_in_bytes: r.size,
            image_pushed_at: r.pushed_at,
            image_manifest_media_type: r.media_type,
            artifact_media_type: r.artifact_media_type,
        }
    }

    /// ECR DescribeImages for explicit image ids: every id must resolve.
    pub fn describe_images_by_id(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: &[ImageIdentifier],
    ) -> Result<Vec<ImageDetail>> {
        self.repository(scope, repo)?;
        let tags = self.tags_by_digest(scope, repo)?;
        let mut out: Vec<ImageDetail> = Vec::new();
        for id in ids {
            let record = match self.resolve_id(scope, repo, id) {
                Ok(r) => r,
                Err(f) if f.failure_code == "ImageNotFound" => {
                    return Err(RegistryError::ImageNotFound(format!(
                        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{}' in the registry with id '{}'",
                        id.image_digest.as_deref().unwrap_or("null"),
                        id.image_tag.as_deref().unwrap_or("null"),
                        repo,
                        scope.account,
                    )));
                }
                Err(f) => return Err(RegistryError::InvalidParameter(f.failure_reason)),
            };
            if out.iter().any(|d| d.image_digest == record.digest) {
                continue;
            }
            let t = tags.get(&record.digest).cloned().unwrap_or_default();
            out.push(self.detail(scope, repo, record, t));
        }
        Ok(out)
    }

    /// ECR DescribeImages over the whole repository, a page at a time.
    pub fn describe_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        filter: ListImagesFilter,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<ImageDetail>, Option<String>)> {
        self.repository(scope, repo)?;
        let tags = self.tags_by_digest(scope, repo)?;
        let (kvs, next) = page(
            &*self.store,
            &keys::images(scope, repo),
            next_token,
            max_results,
        )?;
        let mut out = Vec::new();
        for kv in kvs {
            let record: ImageRecord = decode(&kv)?;
            let t = tags.get(&record.digest).cloned().unwrap_or_default();
            let keep = match filter {
                ListImagesFilter::Any => true,
                ListImagesFilter::Tagged => !t.is_empty(),
                ListImagesFilter::Untagged => t.is_empty(),
            };
            if keep {
                out.push(self.detail(scope, repo, record, t));
            }
        }
        Ok((out, next))
    }

    /// ECR ListImages: one identifier per tag, and one digest-only identifier per untagged
    /// image.
    pub fn list_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        filter: ListImagesFilter,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<ImageIdentifier>, Option<String>)> {
        let (details, next) = self.describe_images(scope, repo, filter, next_token, max_results)?;
        let mut ids = Vec::new();
        for d in details {
            if d.image_tags.is_empty() {
                ids.push(ImageIdentifier {
                    image_digest: Some(d.image_digest.to_string()),
                    image_tag: None,
                });
            }
            for t in d.image_tags {
                ids.push(ImageIdentifier {
                    image_digest: Some(d.image_digest.to_string()),
                    image_tag: Some(t),
                });
            }
        }
        Ok((ids, next))
    }

    /// Resolve an ECR image identifier, or say why not as an ECR ImageFailure.
    pub fn resolve_id(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &ImageIdentifier,
    ) -> std::result::Result<ImageRecord, ImageFailure> {
        let fail = |code: &'static str, reason: &str| ImageFailure {
            image_id: id.clone(),
            failure_code: code,
            failure_reason: reason.to_string(),
        };
        let digest = match &id.image_digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|_| fail("InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"))?,
            ),
            None => None,
        };
        let tag = match &id.image_tag {
            Some(t) => Some(t.parse::<ImageTag>().map_err(|_| {
                fail(
                    "InvalidImageTag",
                    "Invalid request parameters: invalid image tag",
                )
            })?),
            None => None,
        };
        let not_found = || fail("ImageNotFound", "Requested image not found");
        let record = match (&digest, &tag) {
            (None, None) => {
                return Err(fail(
                    "MissingDigestAndTag",
                    "Invalid request parameters: both tag and digest cannot be null",
                ));
            }
            (Some(d), _) => self
                .resolve(scope, repo, &Reference::Digest(d.clone()))
                .map_err(|_| not_found())?,
            (None, Some(t)) => self
                .resolve(scope, repo, &Reference::Tag(t.clone()))
                .map_err(|_| not_found())?,
        };
        if let (Some(d), Some(t)) = (&digest, &tag) {
            let tagged = self
                .resolve(scope, repo, &Reference::Tag(t.clone()))
                .map_err(|_| not_found())?;
            if &tagged.digest != d {
                return Err(fail(
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: given tag does not map to the given digest",
                ));
            }
        }
        Ok(record)
    }

    /// ECR BatchGetImage: manifests for each id, or a failure per id.
    pub async fn batch_get_image(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: &[ImageIdentifier],
    ) -> Result<(Vec<(ImageIdentifier, ManifestContent)>, Vec<ImageFailure>)> {
        self.repository(scope, repo)?;
        let mut images = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            match self.resolve_id(scope, repo, id) {
                Ok(record) => {
                    let bytes = self.blobs.read_all(&record.digest).await?;
                    let mut id = id.clone();
                    id.image_digest = Some(record.digest.to_string());
                    images.push((
                        id,
                        ManifestContent {
                            digest: record.digest,
                            media_type: record.media_type,
                            bytes,
                        },
                    ));
                }
                Err(f) => failures.push(f),
            }
        }
        Ok((images, failures))
    }

    /// ECR BatchDeleteImage: by digest deletes the image and its tags; by tag removes the
    /// tag, and the image with it when that was its last tag.
    pub fn batch_delete_image(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: &[ImageIdentifier],
    ) -> Result<(Vec<ImageIdentifier>, Vec<ImageFailure>)> {
        self.repository(scope, repo)?;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            let record = match self.resolve_id(scope, repo, id) {
                Ok(r) => r,
                Err(f) => {
                    failures.push(f);
                    continue;
                }
            };
            let result = match (&id.image_tag, &id.image_digest) {
                (Some(t), None) => {
                    let tag: ImageTag = t.parse().expect("validated by resolve_id");
                    self.delete_tag(scope, repo, &tag, true).map(|_| ())
                }
                _ => self.delete_manifest(scope, repo, &record.digest),
            };
            match result {
                Ok(()) => deleted.push(ImageIdentifier {
                    image_digest: Some(record.digest.to_string()),
                    image_tag: id.image_tag.clone(),
                }),
                Err(RegistryError::ManifestUnknown(_)) => failures.push(ImageFailure {
                    image_id: id.clone(),
                    failure_code: "ImageNotFound",
                    failure_reason: "Requested image not found".into(),
                }),
                Err(RegistryError::ImageReferencedByManifestList(parents)) => {
                    let parents: Vec<String> = parents.iter().map(ToString::to_string).collect();
                    failures.push(ImageFailure {
                        image_id: id.clone(),
                        failure_code: "ImageReferencedByManifestList",
                        failure_reason: format!(
                            "Requested image referenced by manifest list: [{}]",
                            parents.join(", ")
                        ),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok((deleted, failures))
    }

    /// The referrers of `subject` in `repo`, optionally only those of one artifact type.
    pub fn referrers(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        self.repository(scope, repo)?;
        let mut out = Vec::new();
        for kv in self
            .store
            .range(&keys::referrers(scope, repo, subject), None, 0)?
        {
            let d: Descriptor = decode(&kv)?;
            if artifact_type.is_none_or(|a| d.artifact_type.as_deref() == Some(a)) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The media type a manifest of `repo` gives the blob `digest` (BatchCheckLayerAvailability's
    /// `mediaType`): the newest manifest that references it says. None when no manifest does.
    pub async fn layer_media_type(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let mut referencing: Vec<ImageRecord> = Vec::new();
        for kv in self.store.range(&keys::images(scope, repo), None, 0)? {
            let record: ImageRecord = decode(&kv)?;
            if record.blobs.contains(digest) {
                referencing.push(record);
            }
        }
        referencing.sort_by(|a, b| b.pushed_at.total_cmp(&a.pushed_at));
        for record in referencing {
            // A manifest whose bytes cannot be read names no media type; look at the next.
            let Ok(bytes) = self.blobs.read_all(&record.digest).await else {
                continue;
            };
            let Ok(parsed) = parse_manifest(&bytes, Some(&record.media_type)) else {
                continue;
            };
            if let Some(d) = parsed.blobs.iter().find(|b| &b.digest == digest) {
                return Ok(Some(d.media_type.clone()));
            }
        }
        Ok(None)
    }

    /// ECR BatchCheckLayerAvailability for one digest: its size when usable from `repo`.
    pub fn layer_availability(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        match self.blob_size(scope, repo, digest) {
            Ok(size) => Ok(Some(size)),
            Err(RegistryError::BlobUnknown(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
