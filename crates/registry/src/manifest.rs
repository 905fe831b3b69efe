//! Parsing of image manifests and indexes (Docker schema 2 and OCI), to find what they
//! reference: config and layer blobs, child manifests, and the subject of an artifact.

use std::collections::BTreeMap;

use berth_model::Digest;
use serde::{Deserialize, Serialize};

use crate::{RegistryError, Result};

pub mod media_types {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
}

/// Manifests larger than this are refused, as ECR and distribution do (4 MiB).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct ParsedManifest {
    pub media_type: String,
    pub is_index: bool,
    pub config: Option<Descriptor>,
    /// Blobs that must be present in the repository: config and distributable layers.
    pub blobs: Vec<Descriptor>,
    pub layers_size: u64,
    /// Child manifests of an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

fn invalid(why: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(why.into())
}

/// Parse a manifest body. `content_type` is what the client declared (HTTP Content-Type or
/// ECR's imageManifestMediaType); when both it and the body's `mediaType` are present they
/// must agree.
pub(crate) fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(RegistryError::ManifestTooLarge {
            limit: MAX_MANIFEST_SIZE,
        });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a manifest: {e}")))?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (&raw.media_type, content_type) {
        (Some(body), Some(declared)) if body != declared => {
            return Err(invalid(format!(
                "mediaType '{body}' does not match the declared content type '{declared}'"
            )));
        }
        (Some(body), _) => body.clone(),
        (None, Some(declared)) => declared.to_string(),
        (None, None) if raw.manifests.is_some() => media_types::OCI_INDEX.to_string(),
        (None, None) => media_types::OCI_MANIFEST.to_string(),
    };
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let is_index = match media_type.as_str() {
        media_types::DOCKER_MANIFEST_LIST | media_types::OCI_INDEX => true,
        media_types::DOCKER_MANIFEST | media_types::OCI_MANIFEST => false,
        other => {
            return Err(invalid(format!(
                "unsupported manifest media type '{other}'"
            )));
        }
    };
    let mut parsed = ParsedManifest {
        media_type,
        is_index,
        config: None,
        blobs: Vec::new(),
        layers_size: 0,
        manifests: Vec::new(),
        subject: raw.subject,
        artifact_type: raw.artifact_type,
        annotations: raw.annotations,
    };
    if is_index {
        parsed.manifests = raw
            .manifests
            .ok_or_else(|| invalid("an index must have 'manifests'"))?;
    } else {
        let config = raw
            .config
            .ok_or_else(|| invalid("an image manifest must have 'config'"))?;
        let layers = raw
            .layers
            .ok_or_else(|| invalid("an image manifest must have 'layers'"))?;
        parsed.blobs.push(config.clone());
        for layer in layers {
            parsed.layers_size += layer.size;
            // Non-distributable ("foreign") layers live elsewhere; they need not be here.
            if layer.urls.as_ref().is_none_or(|u| u.is_empty()) {
                parsed.blobs.push(layer);
            }
        }
        parsed.config = Some(config);
    }
    Ok(parsed)
}

impl ParsedManifest {
    /// What ECR reports as `artifactMediaType`, and what the referrers API reports as
    /// `artifactType`: the explicit artifactType, else the config's media type.
    pub fn artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_manifest() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":10}},"layers":[{{"mediaType":"x","digest":"{}","size":5}},{{"mediaType":"x","digest":"{}","size":7,"urls":["http://x"]}}]}}"#,
            media_types::DOCKER_MANIFEST,
            d('a'),
            d('b'),
            d('c')
        );
        let p = parse_manifest(m.as_bytes(), Some(media_types::DOCKER_MANIFEST)).unwrap();
        assert!(!p.is_index);
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.layers_size, 12);
        assert_eq!(
            p.artifact_type().as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert!(parse_manifest(m.as_bytes(), Some(media_types::OCI_MANIFEST)).is_err());
    }

    #[test]
    fn index_and_bad_input() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            media_types::OCI_MANIFEST,
            d('a')
        );
        let p = parse_manifest(m.as_bytes(), None).unwrap();
        assert!(p.is_index);
        assert_eq!(p.manifests.len(), 1);
        assert!(parse_manifest(b"{", None).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None).is_err());
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(parse_manifest(bad_digest.as_bytes(), None).is_err());
    }
}
