//! The routes: rotki's `/api/1/` JSON API, the status page, the `/ws` upgrade, and CORS for
//! the browser pages (and the desktop app) that are allowed to call them.
use serde_json::{Value, json};

use super::{API_PREFIX, Request, Response, STATUS_PAGE, Shared, WS_PATH};
use crate::control::{Caller, CancelTarget, Command, Controller, TaskId};

/// What a request turned into.
pub(super) enum Routed {
    /// An ordinary response.
    Respond(Response),
    /// A valid WebSocket upgrade: answer 101 and serve the socket as a subscription.
    Upgrade { accept: String, since: Option<u64> },
}

/// The methods a preflight may ask for (rotki answers the same list).
const CORS_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

/// Maps a request to its response or to a WebSocket upgrade.
pub(super) async fn route(request: &Request, shared: &Shared, caller: &Caller) -> Routed {
    let is_ws = request.path == WS_PATH || request.path == "/ws/";
    let api_path = request.path.strip_prefix(API_PREFIX);
    let preflight = request.method == "OPTIONS" && request.header("access-control-request-method").is_some();
    // A preflight carries no credentials, and liveness probes need none (as in rotki).
    let needs_token = (is_ws || api_path.is_some()) && !preflight && api_path != Some("/ping");
    let (checked, cors_origin, local_origin) = {
        let access = shared.access.borrow();
        (access.check(request, needs_token), access.cors_origin(request), access.local_origin(request))
    };
    if let Err(refused) = checked {
        return Routed::Respond(refused);
    }
    // An allowed page on this host counts only when one of our users serves it.
    if let Some(Err(refused)) =
        local_origin.map(|origin| super::admission::check_origin_server(shared, &origin))
    {
        return Routed::Respond(refused);
    }
    if preflight {
        let requested = request.header("access-control-request-headers").unwrap_or("");
        let answer = Response::empty(204)
            .with_header("Access-Control-Allow-Methods", CORS_METHODS)
            .with_header("Access-Control-Allow-Headers", requested);
        return Routed::Respond(with_cors(answer, cors_origin.as_deref()));
    }
    if is_ws {
        return websocket_upgrade(request, &shared.controller);
    }
    let response = api_route(request, api_path, &shared.controller, caller).await;
    Routed::Respond(with_cors(response, cors_origin.as_deref()))
}

/// Adds `Access-Control-Allow-Origin` for a page of an allowed origin, so its browser lets it
/// read the answer; `Vary: Origin` because the answer depends on who asks.
fn with_cors(response: Response, origin: Option<&str>) -> Response {
    match origin {
        Some(origin) => {
            response.with_header("Access-Control-Allow-Origin", origin).with_header("Vary", "Origin")
        }
        None => response,
    }
}

async fn api_route(
    request: &Request,
    api_path: Option<&str>,
    controller: &Controller,
    caller: &Caller,
) -> Response {
    let method = if request.method == "HEAD" { "GET" } else { request.method.as_str() };
    let Some(api_path) = api_path else {
        if method == "GET" && request.path == "/" {
            return Response::html(STATUS_PAGE);
        }
        return not_found(request);
    };
    if !controller.http_api_enabled() {
        return Response::error(404, "the HTTP API is disabled (feature flag http_api)");
    }
    match (method, api_path) {
        ("GET", "/ping") => respond(controller.execute(Command::Ping, caller).await),
        ("GET", "/messages") => respond(controller.execute(Command::Messages, caller).await),
        ("GET", "/tasks") => respond(controller.execute(Command::TasksIds, caller).await),
        ("GET", "/snapshots") => snapshots_route(request, controller, caller).await,
        ("PUT", "/tasks/scheduler") => scheduler_route(&request.body, controller, caller).await,
        ("POST", "/tasks/trigger") => trigger_route(&request.body, controller, caller).await,
        (_, "/tasks/scheduler") => method_not_allowed("PUT"),
        (_, "/tasks/trigger") => method_not_allowed("POST"),
        ("POST", "/control") => control_request(&request.body, controller, caller).await,
        (_, "/control") => method_not_allowed("POST"),
        (_, "/ping" | "/messages" | "/tasks" | "/snapshots") => method_not_allowed("GET"),
        (method, path) if path.starts_with("/tasks/") => {
            task_route(method, &path["/tasks/".len()..], controller, caller).await
        }
        _ => not_found(request),
    }
}

/// `POST /api/1/control` with `{"method": .., "params": {..}}`: any command of the control
/// layer, answered in rotki's envelope with the command's status code.
async fn control_request(body: &[u8], controller: &Controller, caller: &Caller) -> Response {
    let request = match crate::control::Request::parse(body) {
        Ok(request) => request,
        Err(error) => {
            return Response::error(400, error["error"]["message"].as_str().unwrap_or("bad request"));
        }
    };
    let command = match Command::parse(&request.method, request.params.as_ref()) {
        Ok(command) => command,
        Err(err) => return error_response(&err),
    };
    respond(controller.execute(command, caller).await)
}

/// `GET /api/1/snapshots?from=T&to=T&limit=N`: the net value over time, as the `snapshots`
/// command gives it (the query's numbers are its params).
async fn snapshots_route(request: &Request, controller: &Controller, caller: &Caller) -> Response {
    let mut params = serde_json::Map::new();
    for name in ["from", "to", "limit"] {
        let Some(raw) = request.query_param(name) else { continue };
        match raw.parse::<u64>() {
            Ok(number) => params.insert(name.to_string(), number.into()),
            Err(_) => {
                return Response::error(400, &format!("\"{name}\" must be a whole number, not '{raw}'"));
            }
        };
    }
    match Command::parse("snapshots", Some(&Value::Object(params))) {
        Ok(command) => respond(controller.execute(command, caller).await),
        Err(err) => error_response(&err),
    }
}

/// The JSON body of a request, or the 400 that says why it is not one.
fn json_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|err| Response::error(400, &format!("malformed JSON: {err}")))
}

/// `PUT /api/1/tasks/scheduler` with `{"enabled": bool}`: the scheduler switch, as rotki's UI
/// turns it on after its first load. Answers `{"enabled": bool}`.
async fn scheduler_route(body: &[u8], controller: &Controller, caller: &Caller) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Some(enabled) = body.get("enabled").and_then(Value::as_bool) else {
        return Response::error(400, r#"expected {"enabled": true|false}"#);
    };
    match controller.execute(Command::Schedule { enabled }, caller).await {
        Ok(_) => Response::envelope(200, json!({ "enabled": enabled }), ""),
        Err(err) => error_response(&err),
    }
}

/// `POST /api/1/tasks/trigger` with `{"task": name, "async_query"?: bool}`: runs a job now.
/// Answers `true`, or `{"task_id": n}` with `async_query` (what rotki's UI sends); an unknown
/// task is a 400 naming the known ones.
async fn trigger_route(body: &[u8], controller: &Controller, caller: &Caller) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Some(task) = body.get("task").and_then(Value::as_str) else {
        return Response::error(400, r#"expected {"task": "<job name>"}"#);
    };
    let async_query = body.get("async_query").and_then(Value::as_bool).unwrap_or(false);
    match controller.execute(Command::TasksRun(task.to_string()), caller).await {
        Ok(started) if async_query => Response::envelope(200, json!({ "task_id": started["task_id"] }), ""),
        Ok(_) => Response::envelope(200, Value::Bool(true), ""),
        Err(err @ crate::control::Error::RunNow(crate::tasks::RunNowError::UnknownJob(..))) => {
            Response::error(400, &err.to_string())
        }
        Err(err) => error_response(&err),
    }
}

/// `GET` and `DELETE /api/1/tasks/<id>`, with rotki's envelopes and texts.
async fn task_route(method: &str, id: &str, controller: &Controller, caller: &Caller) -> Response {
    let Ok(id) = id.parse::<TaskId>() else {
        return Response::error(404, &format!("No task with id {id} found"));
    };
    match method {
        "GET" => match controller.execute(Command::TasksResult(id), caller).await {
            Ok(result) if result["status"] == "pending" => {
                Response::envelope(200, result, &format!("The task with id {id} is still pending"))
            }
            other => respond(other),
        },
        "DELETE" => match controller.execute(Command::TasksCancel(CancelTarget::Id(id)), caller).await {
            Ok(result) if result["cancelled"] == 1 => Response::envelope(200, Value::Bool(true), ""),
            Ok(_) => Response::error(
                404,
                &format!("Did not cancel task with id {id} because it could not be found"),
            ),
            Err(err) => error_response(&err),
        },
        _ => method_not_allowed("GET, DELETE"),
    }
}

/// Validates an RFC 6455 upgrade request.
fn websocket_upgrade(request: &Request, controller: &Controller) -> Routed {
    if !controller.websockets_enabled() {
        return Routed::Respond(Response::error(
            404,
            "WebSocket notifications are disabled (feature flag websockets)",
        ));
    }
    if request.method != "GET" {
        return Routed::Respond(method_not_allowed("GET"));
    }
    let has_token = |name: &str, token: &str| {
        request.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        let reply = Response::error(426, "this endpoint speaks WebSocket: send Upgrade: websocket");
        return Routed::Respond(reply.with_header("Upgrade", "websocket"));
    }
    if request.header("sec-websocket-version") != Some("13") {
        let reply = Response::error(426, "unsupported WebSocket version; robin speaks version 13");
        return Routed::Respond(reply.with_header("Sec-WebSocket-Version", "13"));
    }
    let Some(key) = request.header("sec-websocket-key").filter(|k| !k.is_empty()) else {
        return Routed::Respond(Response::error(400, "missing Sec-WebSocket-Key"));
    };
    let since = match request.query_param("since").map(str::parse::<u64>) {
        None => None,
        Some(Ok(seq)) => Some(seq),
        Some(Err(_)) => {
            return Routed::Respond(Response::error(400, "since must be a message sequence number"));
        }
    };
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Routed::Upgrade { accept, since }
}

fn respond(result: Result<Value, crate::control::Error>) -> Response {
    match result {
        Ok(value) => Response::envelope(200, value, ""),
        Err(err) => error_response(&err),
    }
}

/// A control error in rotki's envelope, with its status.
fn error_response(err: &crate::control::Error) -> Response {
    Response::envelope(err.http_status(), err.http_result(), &err.to_string())
}

fn not_found(request: &Request) -> Response {
    Response::error(404, &format!("no route for {} {}", request.method, request.path))
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response::error(405, &format!("method not allowed; use {allow}")).with_header("Allow", allow)
}
