//! Images made by hand, byte for byte: a one-file tar layer (gzip with stored
//! blocks, so no compression library is needed), an image config, OCI manifests and
//! indexes, and an OCI image layout directory that skopeo reads as `oci:DIR:TAG`.
//! Knowing every digest up front lets the tests check what the server gives back.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

pub fn sha512_digest(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

/// A ustar archive holding one regular file.
pub fn tar_single_file(name: &str, content: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "tar name too long");
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let s = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 1_700_000_000);
    header[148..156].copy_from_slice(b"        ");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(s.as_bytes());

    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid gzip stream made of stored (uncompressed) deflate blocks.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i == last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// One single-layer OCI image, every part with its digest.
#[derive(Debug, Clone)]
pub struct ImageParts {
    pub arch: String,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
}

impl ImageParts {
    /// Descriptor of this image's manifest, with its platform, for an index.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.manifest_media_type,
            "digest": self.manifest_digest,
            "size": self.manifest.len(),
            "platform": {"architecture": self.arch, "os": "linux"},
        })
    }

    pub fn blob_digests(&self) -> [&str; 2] {
        [&self.config_digest, &self.layer_digest]
    }
}

/// A linux/`arch` image whose one layer holds `/payload` with `payload` in it;
/// different payloads give different digests.
pub fn make_image(arch: &str, payload: &str) -> ImageParts {
    let tar = tar_single_file("payload", payload.as_bytes());
    let layer = gzip_stored(&tar);
    let layer_digest = sha256_digest(&layer);
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", "cat /payload"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar)]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth-e2e"}],
    }))
    .unwrap();
    let config_digest = sha256_digest(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    ImageParts {
        arch: arch.to_owned(),
        manifest_digest: sha256_digest(&manifest),
        layer,
        layer_digest,
        config,
        config_digest,
        manifest,
        manifest_media_type: OCI_MANIFEST.to_owned(),
    }
}

/// An OCI image index over `images`: (bytes, digest).
pub fn make_index(images: &[&ImageParts]) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|i| i.descriptor()).collect::<Vec<_>>(),
    }))
    .unwrap();
    let digest = sha256_digest(&body);
    (body, digest)
}

/// An OCI image layout directory (`oci-layout`, `blobs/sha256/…`, `index.json`).
#[derive(Debug)]
pub struct OciLayout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    pub fn create(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = Self {
            dir: dir.to_owned(),
            refs: Vec::new(),
        };
        layout.write_index_json();
        layout
    }

    /// An existing layout, to read blobs from (index.json is left alone).
    pub fn open(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            refs: Vec::new(),
        }
    }

    pub fn add_blob(&self, data: &[u8]) -> String {
        let hex = sha256_hex(data);
        fs::write(self.dir.join("blobs/sha256").join(&hex), data).unwrap();
        format!("sha256:{hex}")
    }

    pub fn add_image_blobs(&self, image: &ImageParts) {
        self.add_blob(&image.layer);
        self.add_blob(&image.config);
        self.add_blob(&image.manifest);
    }

    /// Names a manifest or index (already added as a blob) `tag` in index.json.
    pub fn add_ref(&mut self, tag: &str, media_type: &str, digest: &str, size: usize) {
        self.refs.push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index_json();
    }

    /// Adds a single-platform image under `tag`.
    pub fn add_image(&mut self, tag: &str, image: &ImageParts) {
        self.add_image_blobs(image);
        let (mt, d, size) = (
            image.manifest_media_type.clone(),
            image.manifest_digest.clone(),
            image.manifest.len(),
        );
        self.add_ref(tag, &mt, &d, size);
    }

    /// Adds a multi-platform index over `images` under `tag`; returns its digest.
    pub fn add_index(&mut self, tag: &str, images: &[&ImageParts]) -> String {
        for image in images {
            self.add_image_blobs(image);
        }
        let (body, digest) = make_index(images);
        self.add_blob(&body);
        self.add_ref(tag, OCI_INDEX, &digest, body.len());
        digest
    }

    fn write_index_json(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }

    /// The blob `digest` from this layout, if present.
    pub fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        let (alg, hex) = digest.split_once(':')?;
        fs::read(self.dir.join("blobs").join(alg).join(hex)).ok()
    }
}

/// Reads the digest that `index.json` of a layout in `dir` names `tag`.
pub fn layout_ref_digest(dir: &Path, tag: &str) -> Option<String> {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).ok()?).ok()?;
    index["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn tar_is_block_aligned() {
        let t = tar_single_file("a", b"hello");
        assert_eq!(t.len() % 512, 0);
        assert_eq!(&t[512..517], b"hello");
    }
}
