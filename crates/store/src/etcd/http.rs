//! The little HTTP/1.1 the etcd engine needs: JSON POSTs to etcd's v3 gateway over a kept-
//! alive connection, and a streamed (chunked) response for watches. A peer this fixed (etcd's
//! Go server) needs no general client; owning the socket is what lets a dropped watcher close
//! its stream at once (`Shutdown`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Connect and unary-call deadline: a member that does not answer within it is skipped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection's byte stream: the socket itself, or TLS over it.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One connection to one etcd member.
pub(crate) struct Conn {
    host: String,
    io: BufReader<Box<dyn Stream>>,
    /// The socket under `io`: timeouts and shutdown.
    socket: TcpStream,
}

/// Closes a connection from another thread (a watcher's drop), unblocking its reader.
pub(crate) struct Closer(TcpStream);

impl Drop for Closer {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

impl Conn {
    /// Connects to `host` (`HOST:PORT`), over TLS when `tls` is given.
    pub(crate) fn open(host: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
        for addr in host.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                    let socket = stream.try_clone()?;
                    let io: Box<dyn Stream> = match tls {
                        None => Box::new(stream),
                        Some(config) => Box::new(tls_stream(host, config, stream)?),
                    };
                    return Ok(Conn {
                        host: host.to_owned(),
                        io: BufReader::with_capacity(64 * 1024, io),
                        socket,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A handle that closes this connection when dropped.
    pub(crate) fn closer(&self) -> io::Result<Closer> {
        Ok(Closer(self.socket.try_clone()?))
    }

    /// Bounds how long a read may block (`None`: forever, for watch streams).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Sends a JSON POST and reads the status line and headers; the body is read next with
    /// [`Conn::read_body`] or streamed with [`Conn::into_stream`].
    pub(crate) fn post(&mut self, path: &str, body: &[u8]) -> io::Result<Head> {
        let mut request = Vec::with_capacity(body.len() + 160);
        write!(
            request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )?;
        request.extend_from_slice(body);
        // A response is always read whole before the next request: nothing is buffered.
        let io = self.io.get_mut();
        io.write_all(&request)?;
        io.flush()?;
        self.read_head()
    }

    fn read_head(&mut self) -> io::Result<Head> {
        let mut line = String::new();
        if self.io.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "etcd closed the connection",
            ));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let mut head = Head {
            status,
            length: None,
            chunked: false,
            close: false,
        };
        loop {
            line.clear();
            if self.io.read_line(&mut line)? == 0 {
                return Err(bad("eof in headers".into()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                return Ok(head);
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.length = Some(
                    value
                        .parse()
                        .map_err(|_| bad("bad content-length".into()))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
    }

    /// The whole body of a response whose head was just read.
    pub(crate) fn read_body(&mut self, head: &Head) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        if head.chunked {
            Chunked::new(&mut self.io).read_to_end(&mut body)?;
        } else if let Some(n) = head.length {
            body.resize(n, 0);
            self.io.read_exact(&mut body)?;
        } else {
            self.io.read_to_end(&mut body)?;
        }
        Ok(body)
    }

    /// The body as a stream (a watch): the connection is consumed.
    pub(crate) fn into_stream(self, head: &Head) -> Box<dyn Read + Send> {
        if head.chunked {
            Box::new(Chunked::new(self.io))
        } else {
            Box::new(self.io)
        }
    }
}

/// A response's status and framing.
pub(crate) struct Head {
    pub(crate) status: u16,
    length: Option<usize>,
    chunked: bool,
    /// The server closes the connection after this response: do not reuse it.
    pub(crate) close: bool,
}

/// TLS over `stream` to `host`, verified against the configuration's roots; the handshake
/// completes here, so that a refused certificate fails the connect.
fn tls_stream(
    host: &str,
    config: &Arc<rustls::ClientConfig>,
    stream: TcpStream,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let server = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}")))?;
    let connection = rustls::ClientConnection::new(config.clone(), server)
        .map_err(|e| io::Error::other(format!("TLS to {host}: {e}")))?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {host}: {e}")))?;
    }
    Ok(tls)
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("etcd HTTP: {message}"))
}

/// Decodes a chunked body (RFC 9112 §7.1) as it arrives.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Chunked<R> {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "etcd closed the stream",
            ));
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers (none expected) up to the blank line.
            loop {
                line.clear();
                if self.inner.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    break;
                }
            }
            self.done = true;
        }
        self.left = size;
        Ok(())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "etcd closed the stream mid-chunk",
            ));
        }
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_across_chunk_boundaries() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
        let mut out = String::new();
        Chunked::new(&wire[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
        let cut = b"5\r\nhel";
        let mut out = Vec::new();
        assert!(Chunked::new(&cut[..]).read_to_end(&mut out).is_err());
    }
}
