//! Content-addressed blob files under the data dir. A blob becomes visible only whole and
//! verified: bytes are written to a file in `uploads/`, fsynced, then renamed into
//! `blobs/{algorithm}/{xx}/{hex}` and the directory fsynced. The digest newtype guarantees
//! the path has no traversal in it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_model::{Digest, DigestAlgorithm};

pub struct FsBlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl FsBlobStore {
    pub fn open(data_dir: &Path) -> io::Result<FsBlobStore> {
        let blobs = data_dir.join("blobs");
        let uploads = data_dir.join("uploads");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&uploads)?;
        Ok(FsBlobStore { blobs, uploads })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    pub(crate) fn upload_path(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    pub(crate) fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    pub async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn open_read(&self, digest: &Digest) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(digest)).await
    }

    pub async fn read_all(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(digest)).await
    }

    /// Move a fully written, fsynced file into place under its digest.
    pub(crate) async fn commit_file(&self, temp: &Path, digest: &Digest) -> io::Result<()> {
        let dest = self.path(digest);
        let temp = temp.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let dir = dest.parent().expect("blob paths have a parent");
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&temp, &dest)?;
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Write small content (manifests) durably under its digest.
    pub(crate) async fn write_whole(&self, digest: &Digest, bytes: Vec<u8>) -> io::Result<()> {
        let temp = self
            .uploads
            .join(format!("manifest-{}", uuid::Uuid::new_v4()));
        let t = temp.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&t)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .await
        .map_err(io::Error::other)??;
        self.commit_file(&temp, digest).await
    }

    pub(crate) async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every blob file on disk with its modification time (for garbage collection of files
    /// whose record was never committed).
    pub(crate) fn list_files(&self) -> io::Result<Vec<(Digest, SystemTime)>> {
        let mut out = Vec::new();
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let dir = self.blobs.join(alg.as_str());
            let Ok(shards) = std::fs::read_dir(&dir) else {
                continue;
            };
            for shard in shards {
                for entry in std::fs::read_dir(shard?.path())? {
                    let entry = entry?;
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if let Ok(d) = format!("{}:{name}", alg.as_str()).parse::<Digest>() {
                        out.push((d, entry.metadata()?.modified()?));
                    }
                }
            }
        }
        Ok(out)
    }
}
