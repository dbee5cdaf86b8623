//! The control socket under abuse: many clients at once, half-open clients, garbage.
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::FutureExt;
use robin::runtime::Spawner;

/// A control socket served on its own loop thread; stopped on drop.
struct Socket {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    stop: async_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Socket {
    fn start(idle: Duration) -> Socket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/robind.sock");
        let (listener, file) = robin::ipc::bind(&path).unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let _file = file;
            let ex = Spawner::new();
            let server = robin::ipc::Server::new(listener, Rc::new(support::standalone_controller()))
                .unwrap()
                .with_idle_timeout(idle);
            ex.block_on(server.serve().or(async {
                let _ = stopped.recv().await;
            }));
        });
        Socket { path, _dir: dir, stop, thread: Some(thread) }
    }

    fn ping(&self) -> String {
        let stream = UnixStream::connect(&self.path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (&stream).write_all(b"{\"id\":1,\"method\":\"ping\"}\n").unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        line
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.stop.send_blocking(());
        let _ = self.thread.take().unwrap().join();
    }
}

#[test]
fn a_thousand_clients_at_once_get_an_answer_or_a_clear_refusal() {
    let socket = Socket::start(robin::ipc::IDLE_TIMEOUT);
    let clients: Vec<UnixStream> = (0..1000).map(|_| UnixStream::connect(&socket.path).unwrap()).collect();
    let (mut served, mut refused) = (0, 0);
    for client in &clients {
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = (&*client).write_all(b"{\"id\":1,\"method\":\"ping\"}\n");
    }
    for client in &clients {
        let mut line = String::new();
        let _ = BufReader::new(client).read_line(&mut line);
        if line.contains("\"result\":true") {
            served += 1;
        } else if line.contains("too many clients: too many connections from this user") {
            refused += 1;
        }
    }
    assert_eq!(served + refused, 1000, "every client got one or the other");
    // All from one user, all held open: that user gets its share, and no more.
    assert_eq!(served, robin::ipc::MAX_CONNECTIONS_PER_UID, "{served} served");
    drop(clients);
    assert!(socket.ping().contains("\"result\":true"), "the socket still serves afterwards");
}

#[test]
fn a_half_open_client_is_closed_after_the_idle_limit() {
    let socket = Socket::start(Duration::from_millis(200));
    let mut half = UnixStream::connect(&socket.path).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    half.write_all(b"{\"id\":1,\"meth").unwrap(); // and nothing more
    let mut rest = Vec::new();
    assert_eq!(half.read_to_end(&mut rest).unwrap(), 0, "closed without an answer");
    assert!(socket.ping().contains("\"result\":true"));
}

#[test]
fn garbage_and_huge_lines_do_not_hurt_the_next_client() {
    let socket = Socket::start(robin::ipc::IDLE_TIMEOUT);
    let garbage = UnixStream::connect(&socket.path).unwrap();
    (&garbage).write_all(&[0xff; 4096]).unwrap();
    (&garbage).write_all(b"\n").unwrap();
    let huge = UnixStream::connect(&socket.path).unwrap();
    let _ = (&huge).write_all(&vec![b'x'; 200 * 1024]);
    assert!(socket.ping().contains("\"result\":true"));
}
