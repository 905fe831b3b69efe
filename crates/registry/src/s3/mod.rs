//! Blobs in S3-compatible object storage: [`S3BlobStore`] keeps each blob as the object
//! `PREFIX/blobs/{algorithm}/{hex}` of one bucket. Small writes are one PutObject; a staged
//! upload (already verified and fsynced locally) goes up as a multipart upload streamed
//! from the file in parts, a few at a time; reads are ranged GETs streamed to the client.
//! Keeping one replica's writes of a digest apart from another's deletions of it is done in
//! the store (`blob_deletions.rs`), not here: this module only moves bytes.

mod http;
mod staging;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use berth_model::Digest;
use futures_util::{StreamExt, TryStreamExt};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject,
    ListObjectsV2, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::blobs::{BlobFuture, BlobStore, BlobStream};
use http::{Http, PRESIGN_TTL, S3Body};
pub(crate) use staging::StagedPart;

/// The default part size of multipart uploads: 16 MiB parts keep a 1 GiB layer at 64
/// parts and a part's retry cheap. S3 allows 10,000 parts, so larger blobs get larger parts.
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;
/// S3's smallest part (every part but the last).
const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;
/// Parts of one blob in flight at once.
const PART_CONCURRENCY: usize = 4;

/// Where and how to reach the bucket (`berth server --blobs s3://BUCKET[/PREFIX]
/// --s3-endpoint URL --s3-region REGION`).
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (empty: the bucket's root).
    pub prefix: String,
    /// `http://HOST[:PORT]` or `https://HOST[:PORT]`.
    pub endpoint: String,
    pub region: String,
    /// A PEM file of the CA certificates an https endpoint is trusted by (the AWS tools'
    /// `AWS_CA_BUNDLE`); None: the system's.
    pub ca_bundle: Option<std::path::PathBuf>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("ca_bundle", &self.ca_bundle)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .finish()
    }
}

/// `s3://BUCKET[/PREFIX]` → (bucket, prefix without surrounding slashes).
pub fn parse_s3_location(location: &str) -> Result<(String, String), String> {
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{location:?} is not s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !valid_bucket {
        return Err(format!(
            "{location:?}: {bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
        return Err(format!(
            "{location:?}: the prefix may not hold empty, . or .. segments"
        ));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// Blobs as objects of an S3-compatible bucket. Cheap to clone (one pooled client).
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    credentials: Credentials,
    /// `""` or `"PREFIX/"`.
    prefix: String,
    http: Http,
    part_size: u64,
    /// Blobs up to this size are copied from staging by one CopyObject.
    copy_limit: u64,
    copy_part_size: u64,
}

impl S3BlobStore {
    /// A store on the bucket `config` names; no request is made (see [`S3BlobStore::check`]).
    /// Path-style URLs when the endpoint's host is an IP address (or `localhost`),
    /// virtual-hosted ones otherwise.
    pub fn new(config: &S3Config) -> io::Result<S3BlobStore> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let endpoint = url::Url::parse(&config.endpoint)
            .map_err(|e| invalid(format!("S3 endpoint {:?}: {e}", config.endpoint)))?;
        let tls = match endpoint.scheme() {
            "http" => http::tls_config(None, true)?,
            "https" => http::tls_config(config.ca_bundle.as_deref(), false)?,
            _ => {
                return Err(invalid(format!(
                    "S3 endpoint {:?}: not an http:// or https:// URL",
                    config.endpoint
                )));
            }
        };
        let style = match endpoint.host() {
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => UrlStyle::Path,
            Some(url::Host::Domain("localhost")) => UrlStyle::Path,
            Some(url::Host::Domain(_)) => UrlStyle::VirtualHost,
            None => {
                return Err(invalid(format!(
                    "S3 endpoint {:?} has no host",
                    config.endpoint
                )));
            }
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| invalid(format!("S3 bucket {:?}: {e:?}", config.bucket)))?;
        let credentials = match &config.session_token {
            Some(token) => {
                Credentials::new_with_token(&config.access_key_id, &config.secret_access_key, token)
            }
            None => Credentials::new(&config.access_key_id, &config.secret_access_key),
        };
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                bucket,
                credentials,
                prefix,
                http: Http::new(tls),
                part_size: DEFAULT_PART_SIZE,
                copy_limit: staging::MAX_COPY_OBJECT,
                copy_part_size: staging::COPY_PART_SIZE,
            }),
        })
    }

    /// The same store with another multipart part size (at least S3's 5 MiB; tests use
    /// small parts to cover several of them cheaply).
    pub fn with_part_size(self, part_size: u64) -> S3BlobStore {
        let inner = Inner {
            bucket: self.inner.bucket.clone(),
            credentials: self.inner.credentials.clone(),
            prefix: self.inner.prefix.clone(),
            http: self.inner.http.clone(),
            part_size: part_size.max(MIN_PART_SIZE),
            copy_limit: self.inner.copy_limit,
            copy_part_size: self.inner.copy_part_size,
        };
        S3BlobStore {
            inner: Arc::new(inner),
        }
    }

    /// One ListObjectsV2 call: fails with S3's own words when the bucket is missing, the
    /// credentials are refused or the endpoint is unreachable (the server checks at start).
    pub async fn check(&self) -> io::Result<()> {
        self.inner.list_page(None, 1).await.map(|_| ())
    }

    /// Creates the bucket (tests and benchmarks; an installation creates its bucket with
    /// its own tools).
    pub async fn create_bucket(&self) -> io::Result<()> {
        let i = &self.inner;
        let action = rusty_s3::actions::CreateBucket::new(&i.bucket, &i.credentials);
        let body = action.body();
        let what = format!("CreateBucket {}", i.bucket.name());
        let answer = i
            .http
            .send_retrying(
                &what,
                hyper::Method::PUT,
                || action.sign(PRESIGN_TTL),
                &[],
                || Ok(http::bytes_body(body.clone().into())),
            )
            .await?;
        http::read_body(&what, answer).await.map(|_| ())
    }

    /// Every object key under the store's prefix, blobs and staged uploads (tests and
    /// diagnostics: what a session left behind).
    pub async fn list_keys(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (objects, next) = self
                .inner
                .list_page_under(&self.inner.prefix, token.as_deref(), 1000)
                .await?;
            out.extend(objects.into_iter().map(|(key, _)| key));
            match next {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The object key of a blob.
    pub fn key(&self, digest: &Digest) -> String {
        self.inner.key(digest)
    }
}

impl Inner {
    fn key(&self, digest: &Digest) -> String {
        format!(
            "{}blobs/{}/{}",
            self.prefix,
            digest.algorithm().as_str(),
            digest.hex()
        )
    }

    fn blobs_prefix(&self) -> String {
        format!("{}blobs/", self.prefix)
    }

    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> io::Result<hyper::Response<hyper::body::Incoming>> {
        let action = GetObject::new(&self.bucket, Some(&self.credentials), key);
        let headers: Vec<(&str, String)> = match range {
            Some((start, len)) => vec![("range", format!("bytes={start}-{}", start + len - 1))],
            None => Vec::new(),
        };
        self.http
            .send_retrying(
                &format!("GetObject {key}"),
                hyper::Method::GET,
                || action.sign(PRESIGN_TTL),
                &headers,
                || Ok(http::empty()),
            )
            .await
    }

    async fn put(
        &self,
        key: &str,
        len: u64,
        body: impl Fn() -> io::Result<S3Body>,
    ) -> io::Result<()> {
        let action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        let what = format!("PutObject {key}");
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::PUT,
                || action.sign(PRESIGN_TTL),
                &[("content-length", len.to_string())],
                body,
            )
            .await?;
        http::read_body(&what, answer).await.map(|_| ())
    }

    /// The part size for a blob of `size` bytes: ours, or larger if 10,000 parts of ours
    /// would not hold it.
    fn part_size_for(&self, size: u64) -> u64 {
        self.part_size.max(size.div_ceil(MAX_PARTS))
    }

    async fn upload_file(&self, staged: &Path, digest: &Digest) -> io::Result<()> {
        let file = Arc::new(std::fs::File::open(staged)?);
        let size = file.metadata()?.len();
        let key = self.key(digest);
        let part_size = self.part_size_for(size);
        if size <= part_size {
            return self
                .put(&key, size, || {
                    Ok(http::file_range_body(file.clone(), 0, size))
                })
                .await;
        }
        let upload_id = self.create_multipart(&key).await?;
        match self
            .upload_parts(&key, &upload_id, &file, size, part_size)
            .await
        {
            Ok(etags) => match self.complete_multipart(&key, &upload_id, &etags).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.abort_multipart(&key, &upload_id).await;
                    Err(e)
                }
            },
            Err(e) => {
                self.abort_multipart(&key, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn create_multipart(&self, key: &str) -> io::Result<String> {
        let what = format!("CreateMultipartUpload {key}");
        // Signed by hand: rusty-s3's action sends `?uploads=1`, which moto_server fails
        // on (HTTP 500); S3 and the SDKs use the bare `?uploads`.
        let sign = || {
            rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Post,
                self.bucket.object_url(key),
                self.credentials.key(),
                self.credentials.secret(),
                self.credentials.token(),
                self.bucket.region(),
                PRESIGN_TTL.as_secs(),
                std::iter::once(("uploads", "")),
                std::iter::empty(),
            )
        };
        let answer = self
            .http
            .send_retrying(&what, hyper::Method::POST, sign, &[], || Ok(http::empty()))
            .await?;
        let body = http::read_body(&what, answer).await?;
        let text = String::from_utf8_lossy(&body);
        CreateMultipartUpload::parse_response(&text)
            .map(|r| r.upload_id().to_owned())
            .map_err(|e| io::Error::other(format!("{what}: unreadable answer ({e:?}): {text}")))
    }

    /// Every part, `PART_CONCURRENCY` at a time, each streamed from the file; their ETags
    /// in part order.
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &Arc<std::fs::File>,
        size: u64,
        part_size: u64,
    ) -> io::Result<Vec<String>> {
        let parts = size.div_ceil(part_size);
        let uploads = (0..parts).map(|index| {
            let offset = index * part_size;
            let len = part_size.min(size - offset);
            let number = u16::try_from(index + 1).expect("at most 10,000 parts");
            self.upload_part(key, upload_id, number, file, offset, len)
        });
        let mut etags: Vec<(u16, String)> = futures_util::stream::iter(uploads)
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        etags.sort_by_key(|(number, _)| *number);
        Ok(etags.into_iter().map(|(_, etag)| etag).collect())
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        file: &Arc<std::fs::File>,
        offset: u64,
        len: u64,
    ) -> io::Result<(u16, String)> {
        let body = || Ok(http::file_range_body(file.clone(), offset, len));
        let etag = self
            .upload_part_body(key, upload_id, number, len, body)
            .await?;
        Ok((number, etag))
    }

    /// One UploadPart of `len` bytes that `body` makes (afresh for each attempt); the
    /// part's ETag.
    async fn upload_part_body(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        len: u64,
        body: impl Fn() -> io::Result<S3Body>,
    ) -> io::Result<String> {
        let action = UploadPart::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            number,
            upload_id,
        );
        let what = format!("UploadPart {key} part {number}");
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::PUT,
                || action.sign(PRESIGN_TTL),
                &[("content-length", len.to_string())],
                body,
            )
            .await?;
        let etag = answer
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("{what}: the answer has no ETag")))?;
        http::read_body(&what, answer).await?;
        Ok(etag)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> io::Result<()> {
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(PRESIGN_TTL);
        let body: Vec<u8> = action.body().into_bytes();
        self.complete_multipart_with(key, url, body).await
    }

    /// CompleteMultipartUpload with `body` (rusty-s3's action numbers its parts 1, 2, …;
    /// staged uploads name theirs, which may skip numbers).
    async fn complete_multipart_with(
        &self,
        key: &str,
        url: url::Url,
        body: Vec<u8>,
    ) -> io::Result<()> {
        let what = format!("CompleteMultipartUpload {key}");
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::POST,
                || url.clone(),
                &[],
                || Ok(http::bytes_body(body.clone().into())),
            )
            .await?;
        // S3 may answer 200 and still have failed: the error is in the document.
        let body = http::read_body(&what, answer).await?;
        let text = String::from_utf8_lossy(&body);
        if text.contains("<Error>") {
            let code = http::xml_text(&text, "Code").unwrap_or_default();
            let message = http::xml_text(&text, "Message").unwrap_or_default();
            return Err(io::Error::other(format!("{what}: {code}: {message}")));
        }
        Ok(())
    }

    /// Best effort: an upload left behind costs storage until the bucket's lifecycle rule
    /// (AbortIncompleteMultipartUpload) removes it.
    async fn abort_multipart(&self, key: &str, upload_id: &str) {
        let action =
            AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, upload_id);
        let what = format!("AbortMultipartUpload {key}");
        if let Err(e) = self
            .http
            .send_retrying(
                &what,
                hyper::Method::DELETE,
                || action.sign(PRESIGN_TTL),
                &[],
                || Ok(http::empty()),
            )
            .await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        let action = DeleteObject::new(&self.bucket, Some(&self.credentials), key);
        let what = format!("DeleteObject {key}");
        match self
            .http
            .send_retrying(
                &what,
                hyper::Method::DELETE,
                || action.sign(PRESIGN_TTL),
                &[],
                || Ok(http::empty()),
            )
            .await
        {
            Ok(answer) => http::read_body(&what, answer).await.map(|_| ()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page of the blobs' listing: (key, last modified) pairs and the token of the
    /// next page.
    async fn list_page(
        &self,
        token: Option<&str>,
        max_keys: usize,
    ) -> io::Result<(Vec<(String, Option<String>)>, Option<String>)> {
        self.list_page_under(&self.blobs_prefix(), token, max_keys)
            .await
    }

    async fn list_page_under(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> io::Result<(Vec<(String, Option<String>)>, Option<String>)> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        action.with_prefix(prefix);
        action.with_max_keys(max_keys);
        if let Some(token) = token {
            action.with_continuation_token(token);
        }
        let what = format!("ListObjectsV2 {}/{prefix}", self.bucket.name());
        let answer = self
            .http
            .send_retrying(
                &what,
                hyper::Method::GET,
                || action.sign(PRESIGN_TTL),
                &[],
                || Ok(http::empty()),
            )
            .await?;
        let body = http::read_body(&what, answer).await?;
        let text = String::from_utf8_lossy(&body);
        let page = ListObjectsV2::parse_response(&text)
            .map_err(|e| io::Error::other(format!("{what}: unreadable answer ({e:?})")))?;
        let objects = page
            .contents
            .into_iter()
            .map(|o| (o.key, o.last_modified))
            .collect();
        Ok((objects, page.next_continuation_token))
    }

    async fn list(&self) -> io::Result<Vec<(Digest, SystemTime)>> {
        let prefix = self.blobs_prefix();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (objects, next) = self.list_page(token.as_deref(), 1000).await?;
            for (key, modified) in objects {
                // blobs/{algorithm}/{hex}; anything else under the prefix is not ours.
                let Some((alg, hex)) = key.strip_prefix(&prefix).and_then(|k| k.split_once('/'))
                else {
                    continue;
                };
                let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                    continue;
                };
                let modified = modified
                    .as_deref()
                    .and_then(parse_timestamp)
                    .unwrap_or_else(SystemTime::now);
                out.push((digest, modified));
            }
            match next {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// S3's LastModified (`2026-12-06T15:41:36.000Z`).
fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(
        SystemTime::UNIX_EPOCH
            + std::time::Duration::from_nanos(u64::try_from(t.unix_timestamp_nanos()).ok()?),
    )
}

impl BlobStore for S3BlobStore {
    fn read_all<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let key = self.inner.key(digest);
            let answer = self.inner.get(&key, None).await?;
            Ok(http::read_body(&format!("GetObject {key}"), answer)
                .await?
                .to_vec())
        })
    }

    fn write_whole<'a>(&'a self, digest: &'a Digest, bytes: Vec<u8>) -> BlobFuture<'a, ()> {
        Box::pin(async move {
            let key = self.inner.key(digest);
            let bytes = bytes::Bytes::from(bytes);
            let len = bytes.len() as u64;
            self.inner
                .put(&key, len, || Ok(http::bytes_body(bytes.clone())))
                .await
        })
    }

    fn commit_file<'a>(&'a self, staged: &'a Path, digest: &'a Digest) -> BlobFuture<'a, ()> {
        Box::pin(self.inner.upload_file(staged, digest))
    }

    /// The GET is made when the stream is first polled; a missing object shows as the
    /// stream's first item (an error).
    fn stream(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobStream> {
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let inner = self.inner.clone();
        let key = inner.key(digest);
        let opened = async move {
            let answer = inner.get(&key, Some((start, len))).await?;
            let what = format!("GetObject {key}");
            // A range S3 did not honour would send the whole object from byte 0.
            if answer.status() != hyper::StatusCode::PARTIAL_CONTENT && start != 0 {
                return Err(io::Error::other(format!(
                    "{what}: the range was not honoured"
                )));
            }
            Ok(http::exact_stream(what, answer.into_body(), len))
        };
        let stream = futures_util::stream::once(opened)
            .map(|opened| match opened {
                Ok(body) => body.left_stream(),
                Err(e) => futures_util::stream::once(async { Err(e) }).right_stream(),
            })
            .flatten();
        Ok(Box::pin(stream))
    }

    fn remove<'a>(&'a self, digest: &'a Digest) -> BlobFuture<'a, ()> {
        Box::pin(async move { self.inner.delete(&self.inner.key(digest)).await })
    }

    fn list(&self) -> BlobFuture<'_, Vec<(Digest, SystemTime)>> {
        Box::pin(self.inner.list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            parse_s3_location("s3://my-bucket").unwrap(),
            ("my-bucket".into(), String::new())
        );
        assert_eq!(
            parse_s3_location("s3://my.bucket/a/b/").unwrap(),
            ("my.bucket".into(), "a/b".into())
        );
        assert!(parse_s3_location("http://b").is_err());
        assert!(parse_s3_location("s3://B").is_err());
        assert!(parse_s3_location("s3://ab").is_err());
        assert!(parse_s3_location("s3://bucket/a/../b").is_err());
    }

    fn config(endpoint: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: "bucket".into(),
            prefix: prefix.into(),
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            ca_bundle: None,
        }
    }

    #[test]
    fn keys_and_addressing() {
        let digest = Digest::sha256_of(b"x");
        let store = S3BlobStore::new(&config("http://127.0.0.1:9000", "/reg/one/")).unwrap();
        assert_eq!(
            store.key(&digest),
            format!("reg/one/blobs/sha256/{}", digest.hex())
        );
        assert_eq!(
            store.inner.bucket.base_url().as_str(),
            "http://127.0.0.1:9000/bucket/"
        );
        let store = S3BlobStore::new(&config("http://s3.example.test", "")).unwrap();
        assert_eq!(store.key(&digest), format!("blobs/sha256/{}", digest.hex()));
        assert_eq!(
            store.inner.bucket.base_url().as_str(),
            "http://bucket.s3.example.test/"
        );
        let ftp = S3BlobStore::new(&config("ftp://s3.example.test", ""));
        assert!(ftp.is_err_and(|e| e.to_string().contains("not an http")));
        let missing_bundle = S3Config {
            ca_bundle: Some("/nonexistent/ca.pem".into()),
            ..config("https://127.0.0.1:9000", "")
        };
        assert!(
            S3BlobStore::new(&missing_bundle).is_err_and(|e| e.to_string().contains("CA bundle"))
        );
    }

    #[test]
    fn part_sizes() {
        let store = S3BlobStore::new(&config("http://127.0.0.1:9000", "")).unwrap();
        assert_eq!(store.inner.part_size_for(1 << 30), DEFAULT_PART_SIZE);
        let huge = 1u64 << 40;
        assert!(huge.div_ceil(store.inner.part_size_for(huge)) <= MAX_PARTS);
        let small = store.with_part_size(1);
        assert_eq!(small.inner.part_size, MIN_PART_SIZE);
    }

    #[test]
    fn last_modified() {
        let t = parse_timestamp("2026-12-06T15:41:36.500Z").unwrap();
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((secs - 1_796_571_696.5).abs() < 1e-3, "{secs}");
    }
}
