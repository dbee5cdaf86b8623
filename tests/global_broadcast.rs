//! `robin::notifier::broadcast_ws_message`, the process-wide entry point for code without a
//! handle. In a file of its own: the global is set once per process.
mod support;

use robin::notifier::{Message, broadcast_ws_message};
use serde_json::json;
use support::notifier_loop::{NotifierLoop, Options, connect, next_json};

#[test]
fn global_broadcast_reaches_clients_once_installed() {
    let server = NotifierLoop::start(Options::default());
    assert!(
        !broadcast_ws_message(Message::refresh_balances(robin::notifier::Blockchain::Eth)),
        "nothing installed yet"
    );
    assert!(robin::notifier::install_global(server.handle.clone()));
    assert!(!robin::notifier::install_global(server.handle.clone()), "only the first install wins");
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        server.wait_for_clients(1);
        let sender = std::thread::spawn(|| {
            broadcast_ws_message(Message::PremiumStatusUpdate(robin::notifier::payloads::PremiumStatus {
                is_premium_active: false,
                expired: false,
                reason: None,
            }))
        });
        assert!(sender.join().unwrap());
        let message = next_json(&mut client).await;
        assert_eq!(message["type"], "premium_status_update");
        assert_eq!(message["data"], json!({"is_premium_active": false, "expired": false}));
    });
}
