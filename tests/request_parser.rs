//! Property tests of the request path every transport shares: whatever bytes arrive, the
//! answer is exactly one JSON response line with the request's id, and nothing panics.
mod support;

use proptest::prelude::*;
use robin::control::{Command, Controller, Request};
use serde_json::Value;

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Known method names and some that are not.
fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(robin::control::methods().collect::<Vec<_>>()).prop_map(str::to_string),
        ".{0,16}",
    ]
}

fn answer(controller: &Controller, bytes: &[u8]) -> Value {
    let line = match futures_lite::future::block_on(robin::ipc::handle_line(
        bytes,
        controller,
        &robin::control::Caller::default(),
    )) {
        robin::ipc::Reply::Line(line) => line,
        // A blank line is skipped; a subscription is acknowledged in one line too.
        robin::ipc::Reply::Nothing => br#"{"id":null,"result":null}
"#
        .to_vec(),
        robin::ipc::Reply::Subscribe { ack, .. } => ack,
    };
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "exactly one line");
    assert_eq!(line.last(), Some(&b'\n'));
    serde_json::from_slice(&line).expect("the answer is JSON")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_one_json_answer(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let controller = support::standalone_controller();
        let reply = answer(&controller, &bytes);
        prop_assert!(reply.get("result").is_some() != reply.get("error").is_some());
    }

    #[test]
    fn requests_with_any_params_are_answered_with_their_id(
        id in json_value(),
        method in method(),
        params in proptest::option::of(json_value()),
    ) {
        let mut request = serde_json::json!({ "id": id, "method": method });
        if let Some(params) = params.clone() {
            request["params"] = params;
        }
        let controller = support::standalone_controller();
        // Commands that need a database or the scheduler answer an error here, never panic.
        let reply = answer(&controller, request.to_string().as_bytes());
        prop_assert_eq!(&reply["id"], &id);
        let parsed = Command::parse(&method, params.as_ref());
        if parsed.is_err() {
            prop_assert!(reply.get("error").is_some(), "{reply}");
        }
    }

    #[test]
    fn parse_round_trips_well_formed_requests(id in json_value(), method in ".{1,16}", params in json_value()) {
        let bytes = serde_json::json!({ "id": id, "method": method, "params": params }).to_string();
        let request = Request::parse(bytes.as_bytes()).unwrap();
        prop_assert_eq!(request.id, id);
        prop_assert_eq!(request.method, method);
        prop_assert_eq!(request.params, Some(params));
    }
}
