//! Building HTTP/1.1 responses, mostly rotki's JSON envelope `{"result": ..., "message": ...}`.
use serde_json::{Value, json};

/// A complete response, serialized in one piece by [`Response::to_bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers, such as `Allow`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with any body.
    pub fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    /// A response without a body (a CORS preflight's 204).
    pub fn empty(status: u16) -> Response {
        Response { status, content_type: "text/plain", headers: Vec::new(), body: Vec::new() }
    }

    /// An HTML page.
    pub fn html(page: &str) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: page.as_bytes().to_vec(),
        }
    }

    /// rotki's envelope: `{"result": result, "message": message}`.
    pub fn envelope(status: u16, result: Value, message: &str) -> Response {
        Response::json(status, &json!({ "result": result, "message": message }))
    }

    /// An error envelope: `{"result": null, "message": message}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::envelope(status, Value::Null, message)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Whether this answer refuses the client (401, 403, 503): the connection is closed after it.
    pub fn is_refusal(&self) -> bool {
        matches!(self.status, 401 | 403 | 503)
    }

    /// The bytes on the wire. `head_only` drops the body (HEAD requests) but keeps its length.
    pub fn to_bytes(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        use std::fmt::Write;
        let mut head = String::with_capacity(160);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The reason phrase for the statuses robin sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_bytes_are_exact() {
        let bytes = Response::envelope(200, Value::Bool(true), "").to_bytes(false, false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 28\r\nConnection: close\r\n"
        ));
        assert!(text.ends_with("\r\n\r\n{\"result\":true,\"message\":\"\"}"));
    }

    #[test]
    fn head_only_keeps_the_length_but_not_the_body() {
        let text = String::from_utf8(Response::error(404, "no").to_bytes(true, true)).unwrap();
        assert!(text.contains("Content-Length: 30\r\n") && text.ends_with("\r\n\r\n"), "{text}");
    }
}
