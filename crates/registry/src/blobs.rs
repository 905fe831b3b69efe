//! Where blob bytes live. [`BlobStore`] is what the registry needs of it: content-addressed
//! blobs, each visible only whole and verified, read whole or streamed, listed and removed
//! by garbage collection. [`FsBlobStore`] keeps them as files under the data dir: bytes are
//! written to a file in `uploads/`, fsynced, then hard-linked as `blobs/{algorithm}/{xx}/{hex}`
//! and the directory fsynced (the digest newtype guarantees the path has no traversal in
//! it). Uploads in progress are staged as local files ([`Staging`]) whatever the blob store.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::SystemTime;

use berth_model::{Digest, DigestAlgorithm};

/// A blob store operation in flight.
pub type BlobFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Content-addressed blob storage: the filesystem ([`FsBlobStore`]) or an S3-compatible
/// bucket ([`crate::S3BlobStore`]). Writing a digest that exists replaces it with the same
/// bytes; keeping writes and deletions of a digest apart is the registry's business
/// (`blob_deletions.rs`), not the store's.
pub trait BlobStore: Send + Sync + 'static {
    /// The whole blob (manifests and configs: small).
    fn read_all<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, Vec<u8>>;
    /// Stores small content (a manifest) durably under its digest.
    fn write_whole<'a>(&'a self, digest: &'a Digest, bytes: Vec<u8>) -> BlobFuture<'a, ()>;
    /// Stores a fully written, fsynced, verified staging file as the blob `digest`. The
    /// staging file stays: the registry removes it once the blob's record is committed
    /// (a commit that loses to a deletion of the digest stores it again).
    fn commit_file<'a>(&'a self, staged: &'a Path, digest: &'a Digest) -> BlobFuture<'a, ()>;
    /// `len` bytes of the blob from `start`.
    fn stream(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobStream>;
    /// Removes the blob; removing a missing one is not an error.
    fn remove<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, ()>;
    /// Every stored blob with when it was written (garbage collection of blobs whose
    /// record was never committed).
    fn list(&self) -> BlobFuture<'_, Vec<(Digest, SystemTime)>>;
}

/// Where uploads in progress are written: one local file per upload id.
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub(crate) fn open(data_dir: &Path) -> io::Result<Staging> {
        let dir = data_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        Ok(Staging { dir })
    }

    pub(crate) fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

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

    pub async fn read_all(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(digest)).await
    }

    /// Link a fully written, fsynced file into place under its digest (the file itself
    /// stays where it is). A file already there holds the same bytes (its name is their
    /// digest, and only whole verified files get a name there), so it is kept.
    pub async fn commit_file(&self, temp: &Path, digest: &Digest) -> io::Result<()> {
        let dest = self.path(digest);
        let temp = temp.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let dir = dest.parent().expect("blob paths have a parent");
            if !dir.exists() {
                // A new shard directory must itself be durable before a record names a
                // file in it: fsync the directories above it too.
                std::fs::create_dir_all(dir)?;
                let algorithm_dir = dir.parent().expect("shards live in an algorithm dir");
                std::fs::File::open(algorithm_dir)?.sync_all()?;
                if let Some(blobs) = algorithm_dir.parent() {
                    std::fs::File::open(blobs)?.sync_all()?;
                }
            }
            match std::fs::hard_link(&temp, &dest) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Write small content (manifests) durably under its digest.
    pub async fn write_whole(&self, digest: &Digest, bytes: Vec<u8>) -> io::Result<()> {
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
        let committed = self.commit_file(&temp, digest).await;
        let _ = tokio::fs::remove_file(&temp).await;
        committed
    }

    pub async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every blob file on disk with its modification time (for garbage collection of files
    /// whose record was never committed).
    pub fn list_files(&self) -> io::Result<Vec<(Digest, SystemTime)>> {
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

/// Appends a stream of bytes to an upload file at a known offset with as little CPU as the
/// machine allows: whole 4 MiB blocks go through an `O_DIRECT` descriptor from an aligned
/// buffer (no page-cache copy; on this project's reference machine buffered writes plus
/// fsync reach 340 MB/s where direct writes reach 2.3 GB/s), while the unaligned head and
/// tail go through an ordinary descriptor. Where the filesystem refuses `O_DIRECT` (tmpfs),
/// everything goes through the ordinary descriptor.
pub(crate) struct AppendWriter {
    buffered: std::fs::File,
    direct: Option<std::fs::File>,
    buf: Vec<u8>,
    /// Where the aligned region starts inside `buf`.
    align_offset: usize,
    /// Bytes waiting in the aligned region.
    len: usize,
    /// File offset of the first waiting byte.
    pos: u64,
    /// Bytes still to write through the ordinary descriptor before `pos` is aligned.
    head: usize,
}

const DIRECT_ALIGN: usize = 4096;
const DIRECT_BLOCK: usize = 4 << 20;

impl AppendWriter {
    pub(crate) fn open(path: &Path, start: u64) -> io::Result<AppendWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let buffered = std::fs::OpenOptions::new().write(true).open(path)?;
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        let buf = if direct.is_some() {
            vec![0u8; DIRECT_BLOCK + DIRECT_ALIGN]
        } else {
            vec![0u8; DIRECT_BLOCK]
        };
        let align_offset = if direct.is_some() {
            buf.as_ptr().align_offset(DIRECT_ALIGN)
        } else {
            0
        };
        let misalignment = (start % DIRECT_ALIGN as u64) as usize;
        Ok(AppendWriter {
            buffered,
            direct,
            buf,
            align_offset,
            len: 0,
            pos: start,
            head: if misalignment == 0 {
                0
            } else {
                DIRECT_ALIGN - misalignment
            },
        })
    }

    pub(crate) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.head > 0 {
            let n = self.head.min(data.len());
            self.buffered.write_all_at(&data[..n], self.pos)?;
            self.pos += n as u64;
            self.head -= n;
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = (DIRECT_BLOCK - self.len).min(data.len());
            let at = self.align_offset + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == DIRECT_BLOCK {
                self.flush_aligned(DIRECT_BLOCK)?;
            }
        }
        Ok(())
    }

    /// Write the first `n` waiting bytes (a multiple of the alignment) at `pos`.
    fn flush_aligned(&mut self, n: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let region = &self.buf[self.align_offset..self.align_offset + n];
        match &self.direct {
            Some(f) => f.write_all_at(region, self.pos)?,
            None => self.buffered.write_all_at(region, self.pos)?,
        }
        self.pos += n as u64;
        self.buf.copy_within(
            self.align_offset + n..self.align_offset + self.len,
            self.align_offset,
        );
        self.len -= n;
        Ok(())
    }

    /// Write out everything still waiting.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let aligned = self.len - self.len % DIRECT_ALIGN;
        if aligned > 0 {
            self.flush_aligned(aligned)?;
        }
        if self.len > 0 {
            let tail = &self.buf[self.align_offset..self.align_offset + self.len];
            self.buffered.write_all_at(tail, self.pos)?;
        }
        Ok(())
    }
}

/// Bytes of a blob file, streamed.
pub type BlobStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send>>;

/// Reads are big enough for the kernel to read ahead well and small enough that many
/// concurrent pulls stay within a few MiB each.
const READ_CHUNK: usize = 1 << 20;

impl FsBlobStore {
    /// Stream `len` bytes of a blob from `start`, through the page cache (hot blobs are
    /// served from memory; cold ones at the disk's read-ahead speed).
    pub fn stream(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobStream> {
        Ok(stream_buffered(
            std::fs::File::open(self.path(digest))?,
            start,
            len,
        ))
    }
}

impl BlobStore for FsBlobStore {
    fn read_all<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, Vec<u8>> {
        Box::pin(FsBlobStore::read_all(self, digest))
    }

    fn write_whole<'a>(&'a self, digest: &'a Digest, bytes: Vec<u8>) -> BlobFuture<'a, ()> {
        Box::pin(FsBlobStore::write_whole(self, digest, bytes))
    }

    fn commit_file<'a>(&'a self, staged: &'a Path, digest: &'a Digest) -> BlobFuture<'a, ()> {
        Box::pin(FsBlobStore::commit_file(self, staged, digest))
    }

    fn stream(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobStream> {
        FsBlobStore::stream(self, digest, start, len)
    }

    fn remove<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, ()> {
        Box::pin(FsBlobStore::remove(self, digest))
    }

    fn list(&self) -> BlobFuture<'_, Vec<(Digest, SystemTime)>> {
        Box::pin(async move {
            let this = FsBlobStore {
                blobs: self.blobs.clone(),
                uploads: self.uploads.clone(),
            };
            tokio::task::spawn_blocking(move || this.list_files())
                .await
                .map_err(io::Error::other)?
        })
    }
}

fn receiver_stream(rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>) -> BlobStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A dedicated blocking reader, a couple of chunks ahead of the network. The chunk buffer
/// is reclaimed once the network has sent it, so a pull does not keep faulting in fresh
/// memory (which on this project's reference VM costs more than the read itself).
fn stream_buffered(file: std::fs::File, start: u64, len: u64) -> BlobStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut pos = start;
        let end = start + len;
        let mut buf = bytes::BytesMut::new();
        while pos < end {
            let n = READ_CHUNK.min((end - pos) as usize);
            // Reclaims the previous chunk's allocation once the network has sent it.
            buf.reserve(n);
            buf.resize(n, 0);
            let item = file
                .read_exact_at(&mut buf, pos)
                .map(|()| buf.split().freeze());
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return; // the client went away, or the read failed and was reported
            }
            pos += n as u64;
        }
    });
    receiver_stream(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of unaligned starts and odd chunk sizes lands byte-exact.
    #[test]
    fn append_writer_is_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(DIRECT_BLOCK * 2 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for start in [0usize, 1, 4095, 4096, 5000] {
            for chunk in [513usize, 4096, 65_537, DIRECT_BLOCK + 3] {
                let path = dir.path().join(format!("f-{start}-{chunk}"));
                std::fs::write(&path, &data[..start]).unwrap();
                let mut w = AppendWriter::open(&path, start as u64).unwrap();
                for c in data[start..].chunks(chunk) {
                    w.write(c).unwrap();
                }
                w.finish().unwrap();
                assert!(
                    std::fs::read(&path).unwrap() == data,
                    "start {start} chunk {chunk}"
                );
            }
        }
    }

    async fn collect(mut stream: BlobStream) -> Vec<u8> {
        use futures_util::StreamExt;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    /// Streams return exactly the requested bytes, for whole blobs and ranges.
    #[tokio::test]
    async fn streams_are_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let len = DIRECT_BLOCK * 3 + 777;
        let data: Vec<u8> = (0..len).map(|i| (i * 13 % 253) as u8).collect();
        let digest = Digest::sha256_of(&data);
        std::fs::create_dir_all(store.path(&digest).parent().unwrap()).unwrap();
        std::fs::write(store.path(&digest), &data).unwrap();
        let file = || std::fs::File::open(store.path(&digest)).unwrap();
        assert!(collect(stream_buffered(file(), 0, len as u64)).await == data);
        assert!(collect(stream_buffered(file(), 5, 100)).await == data[5..105]);
        let streamed = store.stream(&digest, 4096, 5000).unwrap();
        assert!(collect(streamed).await == data[4096..9096]);
    }
}
