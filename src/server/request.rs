//! Reading one HTTP/1.x request off a connection, within limits.
//!
//! Heads are parsed by `httparse`; this file only adds buffering, the size limits, and the
//! decisions about bodies (Content-Length only; `Expect: 100-continue` honoured).
use std::io;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Limits;

/// A parsed request. Header names are lower-cased; values that are not UTF-8 are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string, e.g. `/api/1/ping`.
    pub path: String,
    /// The raw query string after `?`, if any.
    pub query: Option<String>,
    /// `(name, value)` pairs in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
    /// Whether the client allows another request on this connection after this one.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `name`, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
    }
}

/// Why no request could be read. [`ReadError::status`] says what, if anything, to answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection between requests: the normal end of a connection.
    #[error("connection closed")]
    Closed,
    /// A socket error or a close in the middle of a request.
    #[error("connection error")]
    Io(#[from] io::Error),
    /// The head did not fit in [`Limits::max_head_bytes`].
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// More header lines than [`Limits::max_headers`].
    #[error("more than {0} request headers")]
    TooManyHeaders(usize),
    /// The head is not HTTP.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// `Content-Length` is missing where needed, repeated or not a number.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// A `Transfer-Encoding` we do not implement.
    #[error("Transfer-Encoding is not supported; send a Content-Length")]
    TransferEncoding,
    /// The body is larger than [`Limits::max_body_bytes`].
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The request did not arrive within [`Limits::request_timeout`].
    #[error("request not received in time")]
    Timeout,
}

impl ReadError {
    /// The status to answer with before closing, or `None` to close silently.
    pub fn status(&self) -> Option<u16> {
        match self {
            ReadError::Closed | ReadError::Io(_) => None,
            ReadError::HeadTooLarge(_) | ReadError::TooManyHeaders(_) => Some(431),
            ReadError::Malformed(_) | ReadError::BadContentLength => Some(400),
            ReadError::TransferEncoding => Some(501),
            ReadError::BodyTooLarge(_) => Some(413),
            ReadError::Timeout => Some(408),
        }
    }
}

/// Reads one request. `buf` carries bytes between calls (pipelined requests).
pub async fn read_request<S>(stream: &mut S, buf: &mut Vec<u8>, limits: &Limits) -> Result<Request, ReadError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut request, head_len, content_length, expects_continue) = loop {
        if let Some(parsed) = parse_head(buf, limits)? {
            break parsed;
        }
        if buf.len() >= limits.max_head_bytes {
            return Err(ReadError::HeadTooLarge(limits.max_head_bytes));
        }
        let mut chunk = [0u8; 4096];
        let room = (limits.max_head_bytes - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                io::Error::from(io::ErrorKind::UnexpectedEof).into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    buf.drain(..head_len);

    if content_length > limits.max_body_bytes {
        return Err(ReadError::BodyTooLarge(limits.max_body_bytes));
    }
    if expects_continue && content_length > buf.len() {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    while buf.len() < content_length {
        let want = (content_length - buf.len()).min(READ_CHUNK);
        if read_more(stream, buf, want).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
    request.body = buf.drain(..content_length).collect();
    Ok(request)
}

/// Most bytes asked of the socket in one read.
const READ_CHUNK: usize = 4096;

/// Reads up to `max` bytes onto the end of `buf`. Reading into the Vec itself, rather than a
/// stack array, keeps a 4-12 KiB buffer out of every connection's future: that future stays
/// allocated for a WebSocket client's whole life.
async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + max, 0);
    let result = stream.read(&mut buf[start..]).await;
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

type ParsedHead = (Request, usize, usize, bool);

fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<ParsedHead>, ReadError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooManyHeaders(limits.max_headers)),
        Err(e) => return Err(ReadError::Malformed(e)),
    };
    let target = parsed.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let version = parsed.version.unwrap_or(1);
    let mut request = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        path,
        query,
        headers: Vec::with_capacity(parsed.headers.len()),
        body: Vec::new(),
        keep_alive: version >= 1,
    };
    let mut content_length: Option<usize> = None;
    let mut expects_continue = false;
    for header in parsed.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        let Ok(value) = std::str::from_utf8(header.value) else { continue };
        let value = value.trim();
        match name.as_str() {
            "content-length" => {
                // Plain digits only: Rust's parser also takes "+5", which other HTTP parsers in
                // front of robin may read differently (request smuggling).
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ReadError::BadContentLength);
                }
                let n = value.parse().map_err(|_| ReadError::BadContentLength)?;
                // Two different lengths is the request-smuggling shape: refuse it.
                if content_length.is_some_and(|old| old != n) {
                    return Err(ReadError::BadContentLength);
                }
                content_length = Some(n);
            }
            "transfer-encoding" => return Err(ReadError::TransferEncoding),
            "connection" => {
                let tokens = value.to_ascii_lowercase();
                if tokens.split(',').any(|t| t.trim() == "close") {
                    request.keep_alive = false;
                } else if tokens.split(',').any(|t| t.trim() == "keep-alive") {
                    request.keep_alive = true;
                }
            }
            "expect" => expects_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
        request.headers.push((name, value.to_string()));
    }
    Ok(Some((request, head_len, content_length.unwrap_or(0), expects_continue)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], limits: &Limits) -> (Result<Request, ReadError>, Vec<u8>) {
        let mut stream = futures_lite::io::Cursor::new(bytes.to_vec());
        let mut buf = Vec::new();
        let result = futures_lite::future::block_on(read_request(&mut stream, &mut buf, limits));
        (result, buf)
    }

    #[test]
    fn pipelined_requests_leave_the_next_one_in_the_buffer() {
        let (req, rest) = read(
            b"POST /a?x=1&y HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\n\r\n",
            &Limits::default(),
        );
        let req = req.unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str(), req.body.as_slice()), ("POST", "/a", &b"hi"[..]));
        assert_eq!(req.query_param("x"), Some("1"));
        assert_eq!(req.query_param("y"), Some(""));
        assert_eq!(rest, b"GET /b HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn http10_closes_unless_asked_and_connection_close_is_honoured() {
        assert!(!read(b"GET / HTTP/1.0\r\n\r\n", &Limits::default()).0.unwrap().keep_alive);
        assert!(
            read(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &Limits::default())
                .0
                .unwrap()
                .keep_alive
        );
        assert!(
            !read(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &Limits::default()).0.unwrap().keep_alive
        );
    }

    #[test]
    fn limits_map_to_statuses() {
        let small = Limits { max_head_bytes: 64, max_body_bytes: 4, max_headers: 2, ..Limits::default() };
        let long_head = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(read(long_head.as_bytes(), &small).0.unwrap_err().status(), Some(431));
        assert_eq!(
            read(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", &small).0.unwrap_err().status(),
            Some(431)
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &small).0.unwrap_err().status(),
            Some(413)
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &small).0.unwrap_err().status(),
            Some(501)
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &small)
                .0
                .unwrap_err()
                .status(),
            Some(400)
        );
        assert_eq!(read(b"\x00\x01garbage\r\n\r\n", &small).0.unwrap_err().status(), Some(400));
        for odd in ["+1", "-1", "1 1", "0x1", "1.0", ""] {
            let request = format!("POST / HTTP/1.1\r\nContent-Length: {odd}\r\n\r\nx");
            assert!(
                matches!(read(request.as_bytes(), &small).0, Err(ReadError::BadContentLength)),
                "{odd:?}"
            );
        }
        assert!(matches!(read(b"", &small).0, Err(ReadError::Closed)));
        assert!(matches!(read(b"GET / HT", &small).0, Err(ReadError::Io(_))));
    }
}
