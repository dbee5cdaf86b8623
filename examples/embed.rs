//! A desktop app embedding robin as a library on a thread of its own, instead of a process.
//! The app's (UI) thread talks to it only through the thread-safe handles of the notifier and the task tracker.
//!
//! ```sh
//! cargo run --example embed
//! ```
use std::rc::Rc;
use std::time::Duration;

use futures_lite::FutureExt;
use robin::notifier::{self, Message, Notifier, NotifierHandle};
use robin::runtime::Spawner;
use robin::tasks::{self, Outcome, SpawnOptions, TaskManager, TasksHandle};
use robin::{control, server};
use serde_json::json;

/// What the app keeps: handles, the listener's address, and a way to stop robin.
struct Embedded {
    notifier: NotifierHandle,
    tasks: TasksHandle,
    http: std::net::SocketAddr,
    stop: async_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn start_robin() -> Embedded {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("robin".into())
        .spawn(move || {
            // robin's loop: everything below lives on this one thread.
            let ex = Spawner::new();
            let notifier = Notifier::new(Default::default());
            let tasks =
                TaskManager::new(ex.clone(), Rc::new(|e| eprintln!("user error: {e}")), Rc::new(|_| {}));
            let session = control::Session::new(tasks.clone());
            let controller = Rc::new(control::Controller::new(
                Default::default(),
                notifier.clone(),
                tasks.clone(),
                session,
            ));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let http = listener.local_addr().expect("addr");
            let server = server::Server::new(listener, controller, Default::default()).expect("server");
            let (notifier_handle, notifier_pump) =
                notifier::channel(notifier, notifier::handle::DEFAULT_BRIDGE_CAPACITY);
            let (tasks_handle, tasks_pump) = tasks::remote_channel(tasks);
            ready_tx.send((notifier_handle, tasks_handle, http)).expect("app waits");
            let _pumps = (ex.spawn(notifier_pump), ex.spawn(tasks_pump));
            ex.block_on(server.serve().or(async {
                let _ = stopped.recv().await;
            }));
        })
        .expect("thread");
    let (notifier, tasks, http) = ready_rx.recv().expect("robin started");
    Embedded { notifier, tasks, http, stop, thread }
}

fn main() {
    let robin = start_robin();
    println!("robin serves ws://{}/ws for the app's web view", robin.http);
    // Synchronous app code: a blocking job, tracked by robin, run on its blocking pool.
    let task = robin
        .tasks
        .spawn_blocking("import_csv", SpawnOptions::default(), || Ok(json!({ "rows": 120 })))
        .expect("robin is running");
    match task.wait_timeout(Duration::from_secs(5)).expect("finished") {
        Outcome::Completed(result) => println!("import_csv: {result}"),
        other => println!("import_csv: {other:?}"),
    }
    robin.notifier.broadcast(Message::refresh_balances(robin::notifier::Blockchain::Eth));
    let _ = robin.stop.send_blocking(());
    robin.thread.join().expect("robin stopped cleanly");
}
