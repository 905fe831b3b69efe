//! A tiny HTTP/1.1 client over `std::net::TcpStream`, so negative tests can send
//! exactly the bytes they mean (unnormalised paths, broken headers) without a
//! client library rewriting them; and a registry client built on it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::oci::{ImageParts, sha256_digest};

/// A whole HTTP response, body read to the end (chunked bodies decoded).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.describe()))
    }

    /// The `code`s of an OCI distribution error body `{"errors":[{"code":...}]}`.
    pub fn error_codes(&self) -> Vec<String> {
        let Ok(v) = serde_json::from_slice::<Value>(&self.body) else {
            return Vec::new();
        };
        v["errors"]
            .as_array()
            .map(|errs| {
                errs.iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Status, headers and (the start of) the body, for assertion messages.
    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 2000 {
            body.truncate(2000);
            body.push_str("...");
        }
        format!("HTTP {} {:?} body: {body}", self.status, self.headers)
    }

    /// Asserts the status and that an OCI error body names `code`.
    #[track_caller]
    pub fn assert_oci_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}: {}",
            self.describe()
        );
        assert!(
            self.error_codes().iter().any(|c| c == code),
            "expected OCI error code {code}: {}",
            self.describe()
        );
    }
}

/// Sends one request to 127.0.0.1:`port` with `Connection: close` and reads the
/// whole answer. `path` goes on the wire unchanged.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-length") {
            has_length = true;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413, 401) and close before it has read the body: keep
    // what it said rather than reporting the broken pipe.
    let write_result = stream.write_all(body).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read_result = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        write_result?;
        read_result?;
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty response",
        ));
    }
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], is_head: bool) -> io::Result<HttpResponse> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if is_head || status == 204 || status == 304 {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        decode_chunked(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `Authorization: Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The path (and query) of a `Location` header, which may be absolute or relative.
pub fn location_path(location: &str) -> String {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = location.strip_prefix(scheme) {
            return rest
                .find('/')
                .map(|i| rest[i..].to_owned())
                .unwrap_or_else(|| "/".into());
        }
    }
    location.to_owned()
}

/// Appends `key=value` to a path that may already have a query.
pub fn with_query(path: &str, query: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{query}")
}

/// An OCI distribution client for one Berth server, with or without credentials.
#[derive(Debug, Clone)]
pub struct Registry {
    pub port: u16,
    pub authorization: Option<String>,
}

impl Registry {
    /// Sends a request with this client's credentials; panics on a transport error.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(auth) = &self.authorization {
            all.push(("Authorization", auth));
        }
        all.extend_from_slice(headers);
        http(self.port, method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {path} failed on the wire: {e}"))
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// `POST /v2/REPO/blobs/uploads/`; asserts 202 and returns the upload's path.
    pub fn start_upload(&self, repo: &str) -> String {
        let r = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(r.status, 202, "start upload in {repo}: {}", r.describe());
        let loc = r
            .header("location")
            .unwrap_or_else(|| panic!("no Location: {}", r.describe()));
        location_path(loc)
    }

    /// Monolithic POST + PUT of one blob under `digest` (which may be sha512).
    pub fn upload_blob_as(&self, repo: &str, data: &[u8], digest: &str) -> HttpResponse {
        let upload = self.start_upload(repo);
        let path = with_query(&upload, &format!("digest={digest}"));
        self.request(
            "PUT",
            &path,
            &[("Content-Type", "application/octet-stream")],
            data,
        )
    }

    /// Uploads a blob, asserts 201 and returns its sha256 digest.
    pub fn upload_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let r = self.upload_blob_as(repo, data, &digest);
        assert_eq!(
            r.status,
            201,
            "upload blob {digest} to {repo}: {}",
            r.describe()
        );
        digest
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> HttpResponse {
        self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            body,
        )
    }

    /// Pushes config, layer and manifest of `image` as `repo:tag`; asserts 201.
    pub fn push_image(&self, repo: &str, tag: &str, image: &ImageParts) {
        self.upload_blob(repo, &image.config);
        self.upload_blob(repo, &image.layer);
        let r = self.put_manifest(repo, tag, &image.manifest_media_type, &image.manifest);
        assert_eq!(
            r.status,
            201,
            "push manifest {repo}:{tag}: {}",
            r.describe()
        );
        if let Some(d) = r.header("docker-content-digest") {
            assert_eq!(
                d, image.manifest_digest,
                "Docker-Content-Digest of the pushed manifest"
            );
        }
    }

    /// GETs a manifest with every media type accepted.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> HttpResponse {
        self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", crate::oci::ACCEPT_ALL_MANIFESTS)],
            b"",
        )
    }
}
