//! The control protocol's envelope, shared by every transport and by the client.
//!
//! A request is `{"id": .., "method": "..", "params": {..}}`; its answer is
//! `{"id": .., "result": ..}` or `{"id": .., "error": {"code": n, "message": ".."}}`, with
//! JSON-RPC's error codes where one exists. The control socket carries one such object per
//! line, `POST /api/1/control` carries one per request (answered in rotki's envelope), and a
//! WebSocket client may send them as text messages.
//!
//! ```text
//! client → {"id": 1, "method": "ping", "params": {}}
//! daemon ← {"id": 1, "result": true}
//! client → {"id": 2, "method": "nope"}
//! daemon ← {"id": 2, "error": {"code": -32601, "message": "unknown method 'nope' (known: ping, ...)"}}
//! ```
use serde_json::{Value, json};

/// JSON-RPC code: the request is not JSON.
pub const CODE_PARSE_ERROR: i64 = -32700;
/// JSON-RPC code: JSON, but not a request object (or a line too long to frame).
pub const CODE_INVALID_REQUEST: i64 = -32600;
/// JSON-RPC code: no such method.
pub const CODE_METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC code: the params do not fit the method.
pub const CODE_INVALID_PARAMS: i64 = -32602;

/// The method that turns a control-socket connection into a stream of notifications.
pub const SUBSCRIBE: &str = "subscribe";

/// One request as every transport carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Echoed back in the response (any JSON value; `null` when absent).
    pub id: Value,
    /// The command's name.
    pub method: String,
    /// The command's parameters, if any.
    pub params: Option<Value>,
}

impl Request {
    /// Parses a request; the error is the response to send back.
    pub fn parse(bytes: &[u8]) -> Result<Request, Value> {
        let value: Value = serde_json::from_slice(bytes).map_err(|err| {
            error_response(&Value::Null, CODE_PARSE_ERROR, &format!("malformed JSON: {err}"))
        })?;
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = value.get("method").and_then(Value::as_str) else {
            let message = r#"invalid request: expected {"id": .., "method": "..", "params": {..}}"#;
            return Err(error_response(&id, CODE_INVALID_REQUEST, message));
        };
        Ok(Request { id, method: method.to_string(), params: value.get("params").cloned() })
    }

    /// For `subscribe`: the sequence number to replay after, if the client gave one. The error
    /// is the response to send back.
    pub fn since(&self) -> Result<Option<u64>, Value> {
        let since = self.params.as_ref().and_then(|p| p.get("since"));
        match since {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or_else(|| {
                let message = "invalid params for 'subscribe': since must be a message sequence number";
                error_response(&self.id, CODE_INVALID_PARAMS, message)
            }),
        }
    }
}

/// `{"id": id, "result": result}`.
pub fn result_response(id: &Value, result: Value) -> Value {
    json!({ "id": id, "result": result })
}

/// `{"id": id, "error": {"code": code, "message": message}}`.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({ "id": id, "error": { "code": code, "message": message } })
}

/// A response as one line of the control socket's framing.
pub fn to_line(value: &Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_their_refusals() {
        let request = Request::parse(br#"{"id":7,"method":"ping"}"#).unwrap();
        assert_eq!((request.id, request.method.as_str(), request.params), (json!(7), "ping", None));
        assert_eq!(Request::parse(b"not json").unwrap_err()["error"]["code"], CODE_PARSE_ERROR);
        let missing = Request::parse(br#"{"id":"a"}"#).unwrap_err();
        assert_eq!(
            (missing["id"].clone(), missing["error"]["code"].clone()),
            (json!("a"), json!(CODE_INVALID_REQUEST))
        );
        assert_eq!(Request::parse(b"[1,2]").unwrap_err()["id"], Value::Null);
    }

    #[test]
    fn since_must_be_a_sequence_number() {
        let parse = |text: &str| Request::parse(text.as_bytes()).unwrap().since();
        assert_eq!(parse(r#"{"method":"subscribe"}"#), Ok(None));
        assert_eq!(parse(r#"{"method":"subscribe","params":{"since":41}}"#), Ok(Some(41)));
        assert_eq!(
            parse(r#"{"method":"subscribe","params":{"since":-1}}"#).unwrap_err()["error"]["code"],
            -32602
        );
    }
}
