//! The HTTP listener on its own, with tight limits, against real loopback clients.
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use futures_lite::FutureExt;
use robin::runtime::Spawner;
use robin::server::{Limits, Server};

/// A listener running on its own loop thread; stopped (and joined) on drop.
struct Listener {
    addr: SocketAddr,
    stop: async_channel::Sender<()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Listener {
    fn start(limits: Limits) -> Listener {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = thread::spawn(move || {
            let ex = Spawner::new();
            let server = Server::new(tcp, Rc::new(support::standalone_controller()), limits).unwrap();
            ex.block_on(server.serve().or(async {
                let _ = stopped.recv().await;
            }));
        });
        Listener { addr, stop, thread: Some(thread) }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.stop.send_blocking(());
        let _ = self.thread.take().unwrap().join();
    }
}

/// Everything until the listener closes the connection, which it must do within 3 s (the
/// limits under test are shorter; the client's own read timeout is 10 s).
fn read_all(mut stream: TcpStream) -> String {
    String::from_utf8_lossy(&support::read_until_closed(&mut stream, Duration::from_secs(3))).into_owned()
}

fn short_timeout() -> Limits {
    Limits { request_timeout: Duration::from_millis(300), ..Limits::default() }
}

#[test]
fn slow_loris_gets_408_and_is_closed() {
    let listener = Listener::start(short_timeout());
    let mut stream = listener.connect();
    stream.write_all(b"GET /api/1/ping HTTP/1.1\r\nX-Slow: ").unwrap();
    let reply = read_all(stream);
    assert!(reply.starts_with("HTTP/1.1 408 Request Timeout"), "{reply}");
}

#[test]
fn idle_keep_alive_connection_is_closed_quietly() {
    let listener = Listener::start(short_timeout());
    let mut stream = listener.connect();
    stream.write_all(b"GET /api/1/ping HTTP/1.1\r\n\r\n").unwrap();
    let reply = read_all(stream);
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "one answer, then a silent close: {reply}");
    assert!(reply.starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn connections_over_the_limit_get_503() {
    let listener = Listener::start(Limits { max_connections: 2, ..Limits::default() });
    // Two held connections, each proven accepted by a keep-alive answer.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = listener.connect();
            stream.write_all(b"GET /api/1/ping HTTP/1.1\r\n\r\n").unwrap();
            let mut buf = [0u8; 12];
            stream.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"HTTP/1.1 200");
            stream
        })
        .collect();
    let reply = read_all(listener.connect());
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    drop(held);
    // Once they close, a new client is served again (the count went down).
    let mut stream;
    let mut attempts = 0;
    loop {
        stream = listener.connect();
        stream.write_all(b"GET /api/1/ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let reply = read_all(stream);
        if reply.starts_with("HTTP/1.1 200") {
            break;
        }
        attempts += 1;
        assert!(attempts < 50, "never served again: {reply}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let listener = Listener::start(Limits::default());
    let mut stream = listener.connect();
    stream.write_all(b"POST /api/1/nope HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"abc").unwrap();
    assert!(read_all(stream).starts_with("HTTP/1.1 404"));
}

#[test]
fn head_requests_get_headers_only() {
    let listener = Listener::start(Limits::default());
    let mut stream = listener.connect();
    stream.write_all(b"HEAD /api/1/ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let reply = read_all(stream);
    assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("\r\n\r\n"), "{reply}");
    assert!(reply.contains("Content-Length: 28\r\n"));
}

#[test]
fn a_client_that_vanishes_mid_request_does_not_hurt_others() {
    let listener = Listener::start(Limits::default());
    for _ in 0..20 {
        let mut stream = listener.connect();
        stream.write_all(b"POST /api/1/ping HTTP/1.1\r\nContent-Length: 100\r\n\r\nhalf").unwrap();
        drop(stream);
    }
    let mut stream = listener.connect();
    stream.write_all(b"GET /api/1/ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_all(stream).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn a_client_that_does_not_read_its_responses_is_closed_after_the_write_deadline() {
    let limits = Limits { write_timeout: Duration::from_millis(500), ..Limits::default() };
    let listener = Listener::start(limits);
    let mut stream = listener.connect();
    // 30 MB of status pages asked for and never read: far more than the kernel buffers hold.
    let requests = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(3000);
    stream.write_all(requests.as_bytes()).unwrap();
    thread::sleep(Duration::from_secs(2));
    // Closed by the deadline: what was buffered, then EOF (or a reset for the unread requests).
    // Still open, the listener would go on answering, then wait 10 s for more: a timeout here.
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the connection was not closed: {err} after {} bytes", sink.len()),
    }
    assert!(sink.len() < 3000 * 10_000, "it stopped before answering everything ({} bytes)", sink.len());
}

#[test]
fn one_user_holds_a_bounded_number_of_connections() {
    let limits = Limits { max_connections_per_peer: 3, ..Limits::default() };
    let listener = Listener::start(limits);
    let held: Vec<TcpStream> = (0..3).map(|_| listener.connect()).collect();
    thread::sleep(Duration::from_millis(100)); // let the listener take all three
    let mut fourth = listener.connect();
    fourth.write_all(b"GET /api/1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let reply = read_all(fourth);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too many connections from this user (3 at most)"), "{reply}");
    assert!(reply.contains("Connection: close"), "{reply}");
    drop(held);
    thread::sleep(Duration::from_millis(100));
    let mut again = listener.connect();
    again.write_all(b"GET /api/1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_all(again).starts_with("HTTP/1.1 200"), "slots come back when connections close");
}
