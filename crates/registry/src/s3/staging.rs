//! Uploads staged in the bucket, so that any replica can continue one: a multipart upload
//! on the staging key `PREFIX/uploads/{id}` whose parts are sent as the chunks arrive, a
//! short tail (under S3's 5 MiB part minimum) kept as its own small object until the next
//! chunk, and a server-side copy to the blob's key once the digest is verified. The
//! session's state (part ETags, hasher) lives in the store (`shared_uploads.rs`); this
//! module only moves bytes.

use std::io;

use berth_model::{Digest, DigestAlgorithm, Hasher};
use bytes::Bytes;
use rusty_s3::S3Action;
use serde::{Deserialize, Serialize};

use super::http::{self, PRESIGN_TTL};
use super::{Inner, MAX_PARTS, MIN_PART_SIZE, S3BlobStore};

/// S3's largest CopyObject source; larger blobs are copied part by part (UploadPartCopy).
pub(super) const MAX_COPY_OBJECT: u64 = 5 << 30;
/// The part size of a copy done part by part (S3-internal: large parts cost nothing).
pub(super) const COPY_PART_SIZE: u64 = 1 << 30;

/// One part of a staged upload, as its session record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StagedPart {
    pub number: u16,
    pub size: u64,
    pub etag: String,
}

impl S3BlobStore {
    /// Parts sent while a chunk streams in are this big (the last one of a session may be
    /// smaller; S3 allows 10,000 parts, so sessions hold up to 10,000 of these).
    pub(crate) fn staging_part_size(&self) -> u64 {
        self.inner.part_size
    }

    /// S3's smallest part: a chunk's tail shorter than this waits as a tail object.
    pub(crate) fn min_part_size(&self) -> u64 {
        MIN_PART_SIZE
    }

    pub(crate) fn max_parts(&self) -> u64 {
        MAX_PARTS
    }

    fn staging_key(&self, id: &str) -> String {
        format!("{}uploads/{id}", self.inner.prefix)
    }

    fn tail_key(&self, id: &str, tail: &str) -> String {
        format!("{}uploads/{id}/tail-{tail}", self.inner.prefix)
    }

    /// Starts the multipart upload of session `id`; S3's upload id.
    pub(crate) async fn create_staging(&self, id: &str) -> io::Result<String> {
        self.inner.create_multipart(&self.staging_key(id)).await
    }

    /// Sends one part; its ETag.
    pub(crate) async fn upload_staging_part(
        &self,
        id: &str,
        upload_id: &str,
        number: u16,
        bytes: Bytes,
    ) -> io::Result<StagedPart> {
        let size = bytes.len() as u64;
        let etag = self
            .inner
            .upload_part_body(&self.staging_key(id), upload_id, number, size, || {
                Ok(http::bytes_body(bytes.clone()))
            })
            .await?;
        Ok(StagedPart { number, size, etag })
    }

    /// Stores a chunk's short tail under a name of its own (`tail`: unique per write, so
    /// two replicas racing on one session never overwrite each other's).
    pub(crate) async fn put_tail(&self, id: &str, tail: &str, bytes: Bytes) -> io::Result<()> {
        let len = bytes.len() as u64;
        self.inner
            .put(&self.tail_key(id, tail), len, || {
                Ok(http::bytes_body(bytes.clone()))
            })
            .await
    }

    /// The tail object, which must hold exactly `len` bytes.
    pub(crate) async fn read_tail(&self, id: &str, tail: &str, len: u64) -> io::Result<Bytes> {
        let key = self.tail_key(id, tail);
        let answer = self.inner.get(&key, None).await?;
        let bytes = http::read_body(&format!("GetObject {key}"), answer).await?;
        if bytes.len() as u64 != len {
            return Err(io::Error::other(format!(
                "GetObject {key}: {} bytes where the upload recorded {len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    pub(crate) async fn delete_tail(&self, id: &str, tail: &str) -> io::Result<()> {
        self.inner.delete(&self.tail_key(id, tail)).await
    }

    /// Completes the multipart upload with `parts` (ascending numbers, possibly with gaps:
    /// parts of requests that never committed are left out, and S3 drops them): the
    /// staging object then holds the session's bytes.
    pub(crate) async fn complete_staging(
        &self,
        id: &str,
        upload_id: &str,
        parts: &[StagedPart],
    ) -> io::Result<()> {
        let key = self.staging_key(id);
        let action = rusty_s3::actions::CompleteMultipartUpload::new(
            &self.inner.bucket,
            Some(&self.inner.credentials),
            &key,
            upload_id,
            std::iter::empty(),
        );
        let url = action.sign(super::PRESIGN_TTL);
        self.inner
            .complete_multipart_with(&key, url, complete_document(parts).into_bytes())
            .await
    }

    /// Aborts the multipart upload (best effort: a bucket lifecycle rule removes what an
    /// abort that failed leaves).
    pub(crate) async fn abort_staging(&self, id: &str, upload_id: &str) {
        self.inner
            .abort_multipart(&self.staging_key(id), upload_id)
            .await
    }

    /// Deletes the completed staging object.
    pub(crate) async fn delete_staging(&self, id: &str) -> io::Result<()> {
        self.inner.delete(&self.staging_key(id)).await
    }

    /// Copies the completed staging object of `size` bytes to the key of `digest`, inside
    /// S3: CopyObject up to 5 GiB, UploadPartCopy in 1 GiB parts beyond.
    pub(crate) async fn copy_staging_to_blob(
        &self,
        id: &str,
        digest: &Digest,
        size: u64,
    ) -> io::Result<()> {
        let from = self.staging_key(id);
        let to = self.inner.key(digest);
        if size <= self.inner.copy_limit {
            self.inner.copy_object(&from, &to).await
        } else {
            self.inner.copy_in_parts(&from, &to, size).await
        }
    }

    /// Reads the completed staging object back and hashes it (digests of algorithms
    /// other than the sha256 a session carries along).
    pub(crate) async fn hash_staging(
        &self,
        id: &str,
        size: u64,
        algorithm: DigestAlgorithm,
    ) -> io::Result<Digest> {
        use futures_util::StreamExt;
        let key = self.staging_key(id);
        let answer = self.inner.get(&key, None).await?;
        let stream = http::exact_stream(format!("GetObject {key}"), answer.into_body(), size);
        let mut stream = std::pin::pin!(stream);
        let mut hasher = Hasher::new(algorithm);
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }

    /// The same store copying part by part above `limit` bytes, in parts of `part_size`
    /// (tests cover the part-by-part copy with small blobs).
    pub fn with_copy_limit(self, limit: u64, part_size: u64) -> S3BlobStore {
        let inner = Inner {
            bucket: self.inner.bucket.clone(),
            credentials: self.inner.credentials.clone(),
            prefix: self.inner.prefix.clone(),
            http: self.inner.http.clone(),
            part_size: self.inner.part_size,
            copy_limit: limit,
            copy_part_size: part_size.max(MIN_PART_SIZE),
        };
        S3BlobStore {
            inner: std::sync::Arc::new(inner),
        }
    }
}

/// CompleteMultipartUpload's document naming each part's number and ETag.
fn complete_document(parts: &[StagedPart]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for part in parts {
        let etag = part
            .etag
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        xml.push_str(&format!(
            "<Part><ETag>{etag}</ETag><PartNumber>{}</PartNumber></Part>",
            part.number
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// `/bucket/key`, percent-encoded as `x-amz-copy-source` wants it (keys here are made of
/// the prefix, `uploads/` and a UUID, but a prefix may hold anything).
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 1);
    for b in format!("/{bucket}/{key}").bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Inner {
    /// A request on `key` signed by hand (rusty-s3 has no copy actions), with the copy
    /// headers among the signed ones.
    fn sign_copy(
        &self,
        method: rusty_s3::Method,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> url::Url {
        rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            method,
            self.bucket.object_url(key),
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            PRESIGN_TTL.as_secs(),
            query.iter().copied(),
            headers.iter().copied(),
        )
    }

    async fn copy_object(&self, from: &str, to: &str) -> io::Result<()> {
        let source = copy_source(self.bucket.name(), from);
        let headers = [("x-amz-copy-source", source.as_str())];
        let what = format!("CopyObject {from} to {to}");
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::PUT,
                || self.sign_copy(rusty_s3::Method::Put, to, &[], &headers),
                &[("x-amz-copy-source", source.clone())],
                || Ok(http::empty()),
            )
            .await?;
        // Like CompleteMultipartUpload, a copy may answer 200 and have failed.
        check_document(&what, &http::read_body(&what, answer).await?)
    }

    async fn copy_in_parts(&self, from: &str, to: &str, size: u64) -> io::Result<()> {
        let upload_id = self.create_multipart(to).await?;
        let part_size = self.copy_part_size.max(size.div_ceil(MAX_PARTS));
        let mut etags = Vec::new();
        let mut copied = Ok(());
        for (index, offset) in (0..size).step_by(part_size as usize).enumerate() {
            let end = (offset + part_size).min(size) - 1;
            match self
                .copy_part(from, to, &upload_id, index as u16 + 1, offset, end)
                .await
            {
                Ok(etag) => etags.push(etag),
                Err(e) => {
                    copied = Err(e);
                    break;
                }
            }
        }
        let completed = match copied {
            Ok(()) => self.complete_multipart(to, &upload_id, &etags).await,
            Err(e) => Err(e),
        };
        if completed.is_err() {
            self.abort_multipart(to, &upload_id).await;
        }
        completed
    }

    async fn copy_part(
        &self,
        from: &str,
        to: &str,
        upload_id: &str,
        number: u16,
        first: u64,
        last: u64,
    ) -> io::Result<String> {
        let source = copy_source(self.bucket.name(), from);
        let range = format!("bytes={first}-{last}");
        let number_text = number.to_string();
        let query = [
            ("partNumber", number_text.as_str()),
            ("uploadId", upload_id),
        ];
        let signed = [
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-copy-source-range", range.as_str()),
        ];
        let what = format!("UploadPartCopy {from} to {to} part {number}");
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::PUT,
                || self.sign_copy(rusty_s3::Method::Put, to, &query, &signed),
                &[
                    ("x-amz-copy-source", source.clone()),
                    ("x-amz-copy-source-range", range.clone()),
                ],
                || Ok(http::empty()),
            )
            .await?;
        let body = http::read_body(&what, answer).await?;
        check_document(&what, &body)?;
        http::xml_text(&String::from_utf8_lossy(&body), "ETag")
            .ok_or_else(|| io::Error::other(format!("{what}: the answer has no ETag")))
    }
}

/// An `<Error>` document in a 200 answer as an error.
fn check_document(what: &str, body: &[u8]) -> io::Result<()> {
    let text = String::from_utf8_lossy(body);
    if text.contains("<Error>") {
        let code = http::xml_text(&text, "Code").unwrap_or_default();
        let message = http::xml_text(&text, "Message").unwrap_or_default();
        return Err(io::Error::other(format!("{what}: {code}: {message}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_names_each_part() {
        let part = |number, etag: &str| StagedPart {
            number,
            size: 1,
            etag: etag.into(),
        };
        assert_eq!(
            complete_document(&[part(1, "\"a\""), part(4, "b")]),
            "<CompleteMultipartUpload><Part><ETag>&quot;a&quot;</ETag><PartNumber>1</PartNumber></Part>\
             <Part><ETag>b</ETag><PartNumber>4</PartNumber></Part></CompleteMultipartUpload>"
        );
    }

    #[test]
    fn copy_sources_are_encoded() {
        assert_eq!(copy_source("b", "p/uploads/1-2"), "/b/p/uploads/1-2");
        assert_eq!(copy_source("b", "a b/ü"), "/b/a%20b/%C3%BC");
    }
}
