//! Broadcasting from async code and, through a `NotifierHandle`, from a plain thread; a WebSocket
//! client on loopback prints what arrives.
//!
//! ```sh
//! cargo run --example broadcast
//! ```
use std::rc::Rc;

use async_tungstenite::tungstenite::Message as Frame;
use futures_lite::StreamExt;
use robin::notifier::{self, Blockchain, Message, Notifier, Progress};
use robin::runtime::Spawner;
use robin::{control, server, tasks};

fn main() {
    let ex = Spawner::new();
    let notifier = Notifier::new(Default::default());
    let tracker = tasks::TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
    let session = control::Session::new(tracker.clone());
    let controller =
        Rc::new(control::Controller::new(Default::default(), notifier.clone(), tracker, session));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("ws://{addr}/ws");
    let _server =
        ex.spawn(server::Server::new(listener, controller, Default::default()).expect("server").serve());
    // A Send + Sync handle for other threads, and the pump that delivers on the loop.
    let (handle, pump) = notifier::channel(notifier.clone(), notifier::handle::DEFAULT_BRIDGE_CAPACITY);
    let _pump = ex.spawn(pump);

    ex.block_on(async {
        let stream = async_io::Async::<std::net::TcpStream>::connect(addr).await.expect("connect");
        let (mut client, _) = async_tungstenite::client_async(&url, stream).await.expect("handshake");
        while notifier.client_count() == 0 {
            futures_lite::future::yield_now().await;
        }
        // From async code on the loop: typed data, serialized once for every client.
        let progress = Progress::MultiplePricesQueryStatus { total: 10, processed: 3 };
        notifier.broadcast(&Message::ProgressUpdates(progress));
        // From a plain thread: only an enqueue; it never blocks on the loop.
        std::thread::spawn(move || handle.broadcast(Message::refresh_balances(Blockchain::Eth)))
            .join()
            .expect("thread");
        notifier.add_error("a user-facing error, as rotki's legacy message");
        for _ in 0..3 {
            if let Some(Ok(Frame::Text(text))) = client.next().await {
                println!("{text}");
            }
        }
    });
}
