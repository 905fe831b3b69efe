//! A tiny HTTP/1.1 client over `std::net::TcpStream`, so negative tests can send
//! exactly the bytes they mean (unnormalised paths, broken headers) without a
//! client library rewriting them; and a registry client built on it.

use std::io::{self, BufRead, BufReader, Read, Write};
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

/// One persistent HTTP/1.1 connection to a server, for load generators: every request
/// goes over the same `TcpStream` (TCP_NODELAY) while the server keeps it open. The
/// connection is opened again on the next request after the server answers
/// `Connection: close`, answers HTTP/1.0 without keep-alive, ends a body by closing,
/// or after a transport error.
#[derive(Debug)]
pub struct KeepAlive {
    addr: String,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
    /// Connections opened so far.
    pub connects: u64,
    /// Requests sent again on a fresh connection because a reused one had been closed
    /// before any byte of the answer came back (a server's idle close racing the send).
    pub stale_retries: u64,
}

/// How a round trip failed: before any byte of the answer arrived or after.
struct RoundTripError {
    before_answer: bool,
    error: io::Error,
}

impl KeepAlive {
    /// `addr` is `host:port`; it is also sent as the `Host` header.
    pub fn new(addr: &str, timeout: Duration) -> Self {
        Self {
            addr: addr.to_owned(),
            timeout,
            stream: None,
            connects: 0,
            stale_retries: 0,
        }
    }

    /// The `Host` header this connection sends (`host:port`).
    pub fn host(&self) -> &str {
        &self.addr
    }

    /// Sends one request and reads its whole answer. A request that finds its reused
    /// connection closed before any answer byte came back is sent once more on a new
    /// connection (as HTTP client libraries do); any other failure closes the
    /// connection and is returned.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut req = Vec::with_capacity(256 + body.len());
        req.extend_from_slice(
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr).as_bytes(),
        );
        for (k, v) in headers {
            req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        let is_head = method == "HEAD";
        let reused = self.stream.is_some();
        match self.round_trip(&req, is_head) {
            Ok(r) => Ok(r),
            Err(e) if reused && e.before_answer => {
                self.stream = None;
                self.stale_retries += 1;
                self.round_trip(&req, is_head).map_err(|e| {
                    self.stream = None;
                    e.error
                })
            }
            Err(e) => {
                self.stream = None;
                Err(e.error)
            }
        }
    }

    fn round_trip(&mut self, req: &[u8], is_head: bool) -> Result<HttpResponse, RoundTripError> {
        let early = |error| RoundTripError {
            before_answer: true,
            error,
        };
        let late = |error| RoundTripError {
            before_answer: false,
            error,
        };
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).map_err(late)?;
            stream.set_nodelay(true).map_err(late)?;
            stream.set_read_timeout(Some(self.timeout)).map_err(late)?;
            stream.set_write_timeout(Some(self.timeout)).map_err(late)?;
            self.connects += 1;
            self.stream = Some(BufReader::with_capacity(16 * 1024, stream));
        }
        let reader = self.stream.as_mut().unwrap();
        reader.get_mut().write_all(req).map_err(early)?;
        let mut line = String::new();
        // The status line; 1xx interim answers are skipped.
        let (version, status, headers) = loop {
            line.clear();
            if reader.read_line(&mut line).map_err(early)? == 0 {
                return Err(early(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before an answer",
                )));
            }
            let mut parts = line.split_whitespace();
            let version = parts.next().unwrap_or("").to_owned();
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| late(invalid(&format!("bad status line {line:?}"))))?;
            let headers = read_headers(reader).map_err(late)?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            break (version, status, headers);
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let connection = find("connection").unwrap_or("").to_ascii_lowercase();
        let mut keep = if version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
        let body = if is_head || status == 204 || status == 304 {
            Vec::new()
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            read_chunked(reader).map_err(late)?
        } else if let Some(len) = find("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| late(invalid("bad Content-Length")))?;
            let mut body = vec![0; len];
            reader.read_exact(&mut body).map_err(late)?;
            body
        } else {
            // The body ends where the connection does.
            keep = false;
            let mut body = Vec::new();
            reader.read_to_end(&mut body).map_err(late)?;
            body
        };
        if !keep {
            self.stream = None;
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_owned())
}

/// Header lines up to the empty line that ends them.
fn read_headers(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the headers",
            ));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}

/// A chunked body from the stream, trailers read and dropped.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in a chunked body",
            ));
        }
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            read_headers(reader)?;
            return Ok(out);
        }
        let start = out.len();
        out.resize(start + size, 0);
        reader.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// Reads one request (head and Content-Length body) from a server-side stream.
    fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let headers = read_headers(reader).ok()?;
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// A server that answers the requests of each connection with the scripted answers
    /// in turn (`None`: close the connection without answering), then closes it.
    fn serve(script: Vec<Vec<Option<&'static str>>>) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            for answers in script {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                for answer in answers {
                    let Some(answer) = answer else { break };
                    if read_request(&mut reader).is_none() {
                        break;
                    }
                    reader.get_mut().write_all(answer.as_bytes()).unwrap();
                }
            }
        });
        (addr, handle)
    }

    #[test]
    fn keep_alive_reuses_reconnects_and_decodes_bodies() {
        let (addr, server) = serve(vec![
            vec![
                Some("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"),
                Some(
                    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ncde\r\n2;x=y\r\nfg\r\n0\r\nTrailer: 1\r\n\r\n",
                ),
                Some("HTTP/1.1 201 Created\r\nContent-Length: 1\r\nConnection: close\r\n\r\nh"),
            ],
            vec![Some("HTTP/1.0 200 OK\r\n\r\nto the end")],
            // Kept open by the answer but closed by the server before the next request:
            // the next request goes out again on a new connection.
            vec![Some("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ni"), None],
            vec![Some("HTTP/1.1 204 No Content\r\n\r\n")],
        ]);
        let mut c = KeepAlive::new(&addr, Duration::from_secs(10));
        let mut get = |body: &[u8]| c.request("POST", "/", &[("X", "y")], body).unwrap();
        let bodies: Vec<(u16, Vec<u8>)> = ["1", "2", "3", "4", "5", "6"]
            .iter()
            .map(|b| {
                let r = get(b.as_bytes());
                (r.status, r.body)
            })
            .collect();
        assert_eq!(
            bodies,
            vec![
                (200, b"ab".to_vec()),
                (200, b"cdefg".to_vec()),
                (201, b"h".to_vec()),
                (200, b"to the end".to_vec()),
                (200, b"i".to_vec()),
                (204, Vec::new()),
            ]
        );
        assert_eq!((c.connects, c.stale_retries), (4, 1));
        server.join().unwrap();
    }

    #[test]
    fn keep_alive_reports_a_cut_answer() {
        let (addr, server) = serve(vec![vec![Some(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        )]]);
        let mut c = KeepAlive::new(&addr, Duration::from_secs(10));
        let e = c.request("POST", "/", &[], b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert_eq!((c.connects, c.stale_retries), (1, 0));
        server.join().unwrap();
    }
}
