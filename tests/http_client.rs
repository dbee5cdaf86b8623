//! The outbound HTTP client against a scriptable server on loopback.
mod support;

use std::time::{Duration, Instant};

use robin::outbound::{Client, Error, Settings};
use serde_json::{Value, json};
use support::fake_http::FakeHttp;

fn quick() -> Settings {
    Settings {
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(2),
        ..Settings::default()
    }
}

#[test]
fn json_comes_back_decoded() {
    let server = FakeHttp::start();
    let client = Client::new(quick());
    let value: Value = smol::block_on(client.get_json(&server.url("/json"))).unwrap();
    assert_eq!(value, json!({"ok": true}));
    let echoed: Value =
        smol::block_on(client.post_json(&server.url("/echo"), &json!({"id": 1}), false)).unwrap();
    assert_eq!(echoed, json!({"id": 1}));
}

#[test]
fn a_slow_server_is_a_timeout_naming_host_and_limit() {
    let server = FakeHttp::start();
    let client = Client::new(Settings { timeout: Duration::from_millis(300), ..quick() });
    let err = smol::block_on(client.get_json::<Value>(&server.url("/slow?ms=2000"))).unwrap_err();
    assert!(matches!(&err, Error::Timeout { limit, .. } if *limit == Duration::from_millis(300)), "{err:?}");
    assert_eq!(err.to_string(), "request to 127.0.0.1 timed out after 300ms");
    assert_eq!(server.hits("/slow"), 1, "a timeout is not retried");
}

#[test]
fn retry_after_is_honoured_and_the_retry_succeeds() {
    let server = FakeHttp::start();
    let client = Client::new(quick());
    let started = Instant::now();
    let value: Value = smol::block_on(client.get_json(&server.url("/flaky429"))).unwrap();
    assert_eq!(value, json!({"ok": true}));
    assert_eq!(server.hits("/flaky429"), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After: 1");
}

#[test]
fn server_errors_are_retried_then_reported_and_posts_are_not_retried() {
    let server = FakeHttp::start();
    let client = Client::new(Settings { retries: 2, ..quick() });
    let err = smol::block_on(client.get_json::<Value>(&server.url("/always500"))).unwrap_err();
    assert_eq!(err.to_string(), "127.0.0.1 answered 500: boom");
    assert_eq!(server.hits("/always500"), 3, "one try and two retries");
    let err = smol::block_on(client.post_json::<Value, _>(&server.url("/always500"), &json!({}), false))
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }));
    assert_eq!(server.hits("/always500"), 4, "a non-idempotent POST is sent once");
}

#[test]
fn malformed_json_says_what_was_expected() {
    let server = FakeHttp::start();
    let client = Client::new(quick());
    let err =
        smol::block_on(client.get_json::<std::collections::HashMap<String, f64>>(&server.url("/malformed")))
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("unexpected response from 127.0.0.1: expected std::collections::hash::map::HashMap"),
        "{text}"
    );
}

#[test]
fn an_oversized_body_is_refused() {
    let server = FakeHttp::start();
    let client = Client::new(Settings { max_body: 1024 * 1024, ..quick() });
    let err = smol::block_on(client.get_json::<Value>(&server.url("/big?bytes=5000000"))).unwrap_err();
    assert_eq!(err.to_string(), "response from 127.0.0.1 is larger than 1048576 bytes");
}

#[test]
fn a_reset_connection_is_retried_and_then_reported() {
    let server = FakeHttp::start();
    let client = Client::new(Settings { retries: 1, ..quick() });
    let err = smol::block_on(client.get_json::<Value>(&server.url("/reset"))).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(server.hits("/reset"), 2);
}

#[test]
fn per_host_concurrency_and_rate_are_limited() {
    let server = FakeHttp::start();
    let client = Client::new(Settings { per_host_concurrency: 2, ..quick() });
    let urls: Vec<String> = (0..6).map(|_| server.url("/slow?ms=100")).collect();
    let results = smol::block_on(robin::outbound::join_all_bounded(
        urls.iter().map(|u| client.get_json::<Value>(u)),
        6,
    ));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        server.counters.peak.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "never more than 2 at once"
    );

    let paced = Client::new(Settings { per_host_interval: Duration::from_millis(100), ..quick() });
    let started = Instant::now();
    let urls: Vec<String> = (0..4).map(|_| server.url("/json")).collect();
    smol::block_on(robin::outbound::join_all_bounded(urls.iter().map(|u| paced.get_json::<Value>(u)), 4));
    assert!(started.elapsed() >= Duration::from_millis(300), "4 starts at least 100 ms apart");
}

#[test]
fn requests_carry_robins_user_agent() {
    let server = FakeHttp::start();
    let client = Client::new(quick());
    let seen: Value = smol::block_on(client.get_json(&server.url("/user-agent"))).unwrap();
    assert_eq!(seen["user_agent"], format!("robin/{}", robin::VERSION));
}
