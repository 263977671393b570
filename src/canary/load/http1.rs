//! A minimal HTTP/1.1 client connection built for load generation: the request is encoded once per run and
//! written with one syscall, response heads are parsed with `httparse` (the parser inside hyper) straight
//! from a reused buffer, and bodies are counted and discarded, never collected. No allocation per request.
//!
//! Supported: `Content-Length`, `Transfer-Encoding: chunked` (with trailers), bodies delimited by the
//! connection closing, no body for `HEAD`/204/304, interim `1xx` responses skipped, keep-alive by the
//! HTTP/1.0 and 1.1 rules. Not supported (reported as `http_parse`): protocol upgrades (101).

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, CONTENT_LENGTH};
use http::{HeaderMap, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ErrorKind;

/// Read buffer size; a response head must fit in it.
const BUF_SIZE: usize = 64 << 10;
/// Headers parsed per response head.
const MAX_HEADERS: usize = 64;

/// The request every connection sends, encoded once.
#[derive(Debug, Clone)]
pub struct RequestBytes {
    bytes: Bytes,
    is_head: bool,
}

impl RequestBytes {
    /// Encodes `method path HTTP/1.1`, the headers (which must include `Host`), a `Content-Length` when
    /// there is a body or the method usually carries one, and the body.
    pub fn new(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> RequestBytes {
        let mut b = BytesMut::with_capacity(256 + body.len());
        b.put_slice(method.as_str().as_bytes());
        b.put_u8(b' ');
        b.put_slice(path.as_bytes());
        b.put_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            b.put_slice(name.as_str().as_bytes());
            b.put_slice(b": ");
            b.put_slice(value.as_bytes());
            b.put_slice(b"\r\n");
        }
        let wants_length =
            !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        if wants_length && !headers.contains_key(CONTENT_LENGTH) {
            b.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        b.put_slice(b"\r\n");
        b.put_slice(body);
        RequestBytes {
            bytes: b.freeze(),
            is_head: *method == Method::HEAD,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Body bytes (after chunked decoding).
    pub bytes: u64,
    /// What the `intern` callback returned for the backend header's value (0 when absent).
    pub backend: u32,
    /// Whether the connection can carry another request.
    pub keep_alive: bool,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// What a response head says, with the head's length in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    backend: u32,
}

/// Parses a response head at the start of `buf`; `Ok(None)` when more bytes are needed.
fn parse_head(
    buf: &[u8],
    request_is_head: bool,
    backend_header: Option<&HeaderName>,
    intern: &mut dyn FnMut(&[u8]) -> u32,
) -> Result<Option<Head>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::HttpParse),
    };
    let status = resp.code.ok_or(ErrorKind::HttpParse)?;
    let mut keep_alive = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut backend = 0;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(ErrorKind::HttpParse)?;
            if length.is_some_and(|l| l != n) {
                return Err(ErrorKind::HttpParse);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must be the last coding; any other final coding is delimited by close.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
        if backend_header.is_some_and(|b| name.eq_ignore_ascii_case(b.as_str())) {
            backend = intern(h.value);
        }
    }
    let framing =
        if request_is_head || status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
        backend,
    }))
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::TimedOut => ErrorKind::Timeout,
        K::UnexpectedEof => ErrorKind::Closed,
        _ => ErrorKind::Io,
    }
}

/// One open connection with its read buffer; `buf[start..end]` holds bytes received but not yet used.
pub struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Whether the current request has received any byte yet.
    answered: bool,
}

impl Conn {
    /// Connects with `TCP_NODELAY`.
    pub async fn connect(addr: std::net::SocketAddr) -> Result<Conn, ErrorKind> {
        let stream = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            _ => ErrorKind::ConnectFailed,
        })?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            answered: false,
        })
    }

    /// Whether the request being sent (or last sent) got any response byte.
    pub fn got_response_bytes(&self) -> bool {
        self.answered
    }

    /// Whether the connection can still carry a request: false when the server has closed it while it sat
    /// idle (a keep-alive timeout) or sent bytes nobody asked for. Costs no syscall unless the socket has
    /// become readable, which an idle keep-alive connection only does when something is wrong with it.
    pub fn is_usable(&mut self) -> bool {
        if self.start != self.end {
            return false;
        }
        match self.stream.try_read(&mut self.buf) {
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> Result<usize, ErrorKind> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(ErrorKind::HttpParse); // a head larger than the buffer
            }
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let n = self
            .stream
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| io_kind(&e))?;
        self.end += n;
        self.answered |= n > 0;
        Ok(n)
    }

    /// Like `fill`, but the end of the stream is an error: the server closed mid-response.
    async fn fill_more(&mut self) -> Result<(), ErrorKind> {
        match self.fill().await? {
            0 => Err(ErrorKind::Closed),
            _ => Ok(()),
        }
    }

    /// Sends `req` and reads the whole response. `intern` maps the backend header's value to an index.
    /// After an error the connection must be dropped.
    pub async fn send(
        &mut self,
        req: &RequestBytes,
        backend_header: Option<&HeaderName>,
        intern: &mut dyn FnMut(&[u8]) -> u32,
    ) -> Result<Response, ErrorKind> {
        self.answered = false;
        self.stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| io_kind(&e))?;
        let head = loop {
            match parse_head(
                &self.buf[self.start..self.end],
                req.is_head,
                backend_header,
                intern,
            )? {
                Some(h) if (100..200).contains(&h.status) => {
                    if h.status == 101 {
                        return Err(ErrorKind::HttpParse);
                    }
                    self.start += h.len; // interim response: the real one follows
                }
                Some(h) => break h,
                None => self.fill_more().await?,
            }
        };
        self.start += head.len;
        let bytes = match head.framing {
            Framing::Length(n) => self.skip(n).await?,
            Framing::Chunked => self.skip_chunked().await?,
            Framing::UntilClose => self.skip_to_close().await?,
        };
        Ok(Response {
            status: head.status,
            bytes,
            backend: head.backend,
            keep_alive: head.keep_alive,
        })
    }

    /// Consumes exactly `n` body bytes.
    async fn skip(&mut self, n: u64) -> Result<u64, ErrorKind> {
        let mut left = n;
        loop {
            let take = left.min((self.end - self.start) as u64);
            self.start += take as usize;
            left -= take;
            if left == 0 {
                return Ok(n);
            }
            self.fill_more().await?;
        }
    }

    /// Consumes a chunked body and its trailers; returns the decoded length.
    async fn skip_chunked(&mut self) -> Result<u64, ErrorKind> {
        let mut total = 0;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.start += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.fill_more().await?,
                    Err(_) => return Err(ErrorKind::HttpParse),
                }
            };
            if size == 0 {
                break;
            }
            total += self.skip(size).await?;
            self.expect_crlf().await?;
        }
        // Trailer lines, ended by an empty line.
        loop {
            let line_end = loop {
                match self.buf[self.start..self.end]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                {
                    Some(i) => break i,
                    None => self.fill_more().await?,
                }
            };
            self.start += line_end + 2;
            if line_end == 0 {
                return Ok(total);
            }
        }
    }

    async fn expect_crlf(&mut self) -> Result<(), ErrorKind> {
        while self.end - self.start < 2 {
            self.fill_more().await?;
        }
        if &self.buf[self.start..self.start + 2] != b"\r\n" {
            return Err(ErrorKind::HttpParse);
        }
        self.start += 2;
        Ok(())
    }

    /// Consumes everything until the server closes the connection.
    async fn skip_to_close(&mut self) -> Result<u64, ErrorKind> {
        let mut total = (self.end - self.start) as u64;
        self.start = self.end;
        loop {
            match self.fill().await? {
                0 => return Ok(total),
                n => {
                    total += n as u64;
                    self.start = self.end;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, ErrorKind> {
        let name: HeaderName = "x-backend".parse().unwrap();
        let mut seen = Vec::new();
        let r = parse_head(raw.as_bytes(), false, Some(&name), &mut |v| {
            seen.push(v.to_vec());
            seen.len() as u32
        });
        r
    }

    #[test]
    fn request_is_encoded_once_with_headers_and_length() {
        let mut h = HeaderMap::new();
        h.insert("host", "example:8080".parse().unwrap());
        h.insert("x-a", "1".parse().unwrap());
        let r = RequestBytes::new(&Method::POST, "/p?q=1", &h, b"body");
        assert_eq!(
            std::str::from_utf8(r.as_bytes()).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: example:8080\r\nx-a: 1\r\ncontent-length: 4\r\n\r\nbody"
        );
        let r = RequestBytes::new(&Method::GET, "/", &h, b"");
        assert!(!std::str::from_utf8(r.as_bytes())
            .unwrap()
            .contains("content-length"));
    }

    #[test]
    fn heads_give_status_framing_keep_alive_and_backend() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Backend: blue\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive, h.backend),
            (200, Framing::Length(12), true, 1)
        );
        assert_eq!(
            h.len,
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Backend: blue\r\n\r\n".len()
        );
        let h =
            head("HTTP/1.1 503 x\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive, h.backend),
            (503, Framing::Chunked, false, 0)
        );
        let h = head("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), true));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), true));
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert_eq!(head("SMTP ready\r\n\r\n"), Err(ErrorKind::HttpParse));
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ErrorKind::HttpParse)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ErrorKind::HttpParse)
        );
    }

    /// Runs `send` against a server that answers the first request with `reply` (in pieces of `piece`
    /// bytes) and then closes.
    async fn exchange(
        reply: &'static [u8],
        piece: usize,
        method: Method,
    ) -> (Result<Response, ErrorKind>, bool) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            for part in reply.chunks(piece) {
                s.write_all(part).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        let mut conn = Conn::connect(addr).await.unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "t".parse().unwrap());
        let req = RequestBytes::new(&method, "/", &h, b"");
        let r = conn.send(&req, None, &mut |_| 1).await;
        let leftover = conn.start != conn.end;
        (r, leftover)
    }

    #[tokio::test]
    async fn bodies_are_counted_whatever_the_framing_and_split() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in [1, 7, 4096] {
            let (r, leftover) = exchange(chunked, piece, Method::GET).await;
            assert_eq!(r.unwrap().bytes, 11, "chunked in pieces of {piece}");
            assert!(!leftover);
            let (r, _) = exchange(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", piece, Method::GET).await;
            assert_eq!(r.unwrap().status, 201);
            let (r, _) = exchange(b"HTTP/1.0 200 OK\r\n\r\nuntil close", piece, Method::GET).await;
            assert_eq!(
                r.unwrap(),
                Response {
                    status: 200,
                    bytes: 11,
                    backend: 0,
                    keep_alive: false
                }
            );
        }
        let (r, _) = exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            4096,
            Method::HEAD,
        )
        .await;
        assert_eq!(r.unwrap().bytes, 0);
    }

    #[tokio::test]
    async fn a_response_cut_short_is_closed() {
        let (r, _) = exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            4096,
            Method::GET,
        )
        .await;
        assert_eq!(r, Err(ErrorKind::Closed));
        let (r, _) = exchange(b"HTTP/1.1 200 O", 4096, Method::GET).await;
        assert_eq!(r, Err(ErrorKind::Closed));
        let (r, _) = exchange(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            4096,
            Method::GET,
        )
        .await;
        assert_eq!(r, Err(ErrorKind::HttpParse));
    }
}
