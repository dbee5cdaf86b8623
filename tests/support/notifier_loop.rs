//! An in-process HTTP listener + notifier on its own loop thread, reachable from the test
//! thread through the thread-safe bridge handle and the shared counters.
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use async_io::Async;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use futures_lite::{FutureExt, StreamExt};
use robin::config::{Feature, Features};
use robin::control::Controller;
use robin::notifier::{self, NotifierHandle};
use robin::notifier::{Limits, Notifier};
use robin::runtime::Spawner;
use robin::server::{self, Access};
use serde_json::Value;

pub type Client = WebSocketStream<Async<std::net::TcpStream>>;

/// The listener's loop thread; stopped and joined on drop.
pub struct NotifierLoop {
    pub addr: SocketAddr,
    pub handle: NotifierHandle,
    stop: async_channel::Sender<()>,
    thread: Option<thread::JoinHandle<()>>,
}

pub struct Options {
    pub limits: Limits,
    pub server_limits: server::Limits,
    pub access: Access,
    pub websockets: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            server_limits: server::Limits::default(),
            access: Access::default(),
            websockets: true,
        }
    }
}

impl NotifierLoop {
    pub fn start(options: Options) -> NotifierLoop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (handle_tx, handle_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let ex = Spawner::new();
            let notifier = Notifier::new(options.limits);
            let mut features = Features::defaults();
            features.set(Feature::Websockets, options.websockets, robin::config::Source::Default);
            let tasks = robin::tasks::TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
            let controller = Rc::new(Controller::new(
                features,
                notifier.clone(),
                tasks.clone(),
                robin::control::Session::new(tasks),
            ));
            let (handle, pump) = notifier::channel(notifier, notifier::handle::DEFAULT_BRIDGE_CAPACITY);
            handle_tx.send(handle).unwrap();
            let peers = server::Peers::by_uid(robin::peers::Policy::new(&[])).unwrap();
            let server =
                server::Server::with_access(tcp, controller, options.server_limits, options.access, peers)
                    .unwrap();
            let _pump = ex.spawn(pump);
            ex.block_on(server.serve().or(async {
                let _ = stopped.recv().await;
            }));
        });
        let handle = handle_rx.recv().unwrap();
        NotifierLoop { addr, handle, stop, thread: Some(thread) }
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.addr)
    }

    /// Waits (bounded) until the notifier counts `n` connected clients.
    pub fn wait_for_clients(&self, n: u64) {
        let stats = self.handle.stats();
        super::eventually(&format!("{n} clients connected"), || {
            stats.clients.load(std::sync::atomic::Ordering::Relaxed) == n
        });
    }
}

impl Drop for NotifierLoop {
    fn drop(&mut self) {
        let _ = self.stop.send_blocking(());
        let _ = self.thread.take().unwrap().join();
    }
}

/// Connects a WebSocket client to `url`.
pub async fn connect(url: &str) -> Client {
    let addr: SocketAddr = url.trim_start_matches("ws://").split('/').next().unwrap().parse().unwrap();
    let stream = Async::<std::net::TcpStream>::connect(addr).await.unwrap();
    let (client, _) = async_tungstenite::client_async(url, stream).await.expect("websocket handshake");
    client
}

/// The next text message as JSON, skipping pings; panics after 10 s or on close.
pub async fn next_json(client: &mut Client) -> Value {
    loop {
        let message = async { client.next().await }
            .or(async {
                async_io::Timer::after(Duration::from_secs(10)).await;
                panic!("no message within 10 s");
            })
            .await;
        match message {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}
