//! What a hostile local user tried against robind (the attack report's findings 1 to 4 and 9),
//! each refused through the real listener. Hostile clients run as other users with `setpriv`,
//! which needs root: CI runs as root. Elsewhere the tests fail unless
//! ROBIN_SKIP_PRIVILEGED_TESTS=1 says to skip them, so a green run never hides that they did not
//! run.
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use robin::peers::Policy;
use robin::runtime::Spawner;
use robin::server::{Access, Limits, Peers, Server};
use serde_json::{Value, json};
use support::{Daemon, PATIENCE, Sandbox, ipc_call, parse_response};

/// The kernel's overflow uid, `nobody`: a user robind never serves.
const NOBODY: u32 = 65534;
/// Another local user: hostile in some tests, allowed (then revoked) in another.
const OTHER: u32 = 4242;

fn privileged() -> bool {
    support::privileged("hostile_users")
}

/// `python3 -c SCRIPT ARGS` as `uid`, with piped stdin and stdout; killed when dropped.
struct Script {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Script {
    fn start(uid: u32, script: &str, args: &[&str]) -> Script {
        let mut child = Command::new("setpriv")
            .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"])
            .args(["/usr/bin/python3", "-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Script { child, stdout }
    }

    /// The next line the script prints (it must print within [`PATIENCE`]).
    fn line(&mut self) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        let deadline = Instant::now() + PATIENCE;
        let mut line = String::new();
        thread::scope(|scope| {
            scope.spawn(|| {
                let _ = self.stdout.read_line(&mut line);
                let _ = tx.send(());
            });
            if rx.recv_timeout(deadline - Instant::now()).is_err() {
                let _ = self.child.kill(); // unblocks the reader
                panic!("the script printed nothing within {PATIENCE:?}");
            }
        });
        line.trim().to_string()
    }

    fn tell(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    /// Waits (bounded) for the script to exit; true when it succeeded.
    fn finish(mut self) -> bool {
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the script did not finish");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Listens on `HOST PORT` (port 0: any) and prints the port; holds it until killed.
const LISTEN: &str = r#"
import socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(120)
"#;

/// A request with an `Origin`, from the test (standing in for the owner's browser).
fn with_origin(addr: SocketAddr, method: &str, path: &str, origin: &str) -> (u16, Value) {
    let body = if method == "POST" { r#"{"method":"ping"}"# } else { "" };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {origin}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        addr.port(),
        body.len()
    );
    parse_response(&support::http_raw(addr, request.as_bytes()))
}

/// Finding 1: with `--ws-origin 'http://localhost:*'`, a page that another user serves on a
/// loopback port must not use the API through the owner's browser.
#[test]
fn an_allowed_loopback_origin_counts_only_when_an_allowed_user_serves_it() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["--ws-origin", "http://localhost:*"]);
    let daemon = Daemon::start(cmd);
    let addr = daemon.http_addr();

    let mut evil = Script::start(OTHER, LISTEN, &["127.0.0.1", "0"]);
    let evil_port = evil.line();
    let origin = format!("http://localhost:{evil_port}");
    let (status, body) = with_origin(addr, "POST", "/api/1/control", &origin);
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "the page's origin {origin} is served by uid {OTHER}, not by this robind's user"
        )),
        "{message}"
    );
    let (status, _) = with_origin(addr, "OPTIONS", "/api/1/control", &origin);
    assert_eq!(status, 403, "a preflight too");
    let (status, _) = with_origin(addr, "GET", "/ws", &origin);
    assert_eq!(status, 403, "the WebSocket too");
    drop(evil);

    // The owner's own dev server on a loopback port: its page is served.
    let own = TcpListener::bind("127.0.0.1:0").unwrap();
    let own_origin = format!("http://localhost:{}", own.local_addr().unwrap().port());
    let (status, body) = with_origin(addr, "POST", "/api/1/control", &own_origin);
    assert_eq!((status, &body["result"]), (200, &json!(true)), "{body}");
    // ... unless another user listens on the same port in the other family, which a browser
    // asking for localhost may reach instead.
    if TcpListener::bind("[::1]:0").is_ok() {
        let port = own.local_addr().unwrap().port().to_string();
        let mut squatter = Script::start(OTHER, LISTEN, &["::1", &port]);
        assert_eq!(squatter.line(), port);
        let (status, body) = with_origin(addr, "POST", "/api/1/control", &own_origin);
        assert_eq!(status, 403, "{body}");
    }
    drop(own);
    // Nobody listens there any more: whoever binds it next could serve anything.
    let (status, body) = with_origin(addr, "POST", "/api/1/control", &own_origin);
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("nothing listens on port"), "{body}");
    // `*` in the port position takes a port only.
    let (status, _) = with_origin(addr, "POST", "/api/1/control", "http://localhost:5173.evil.example");
    assert_eq!(status, 403);
}

/// Sends `settings.set main_currency=CUR` with the token to each `HOST` in turn, `N` times
/// each, closing the socket right after sending (never reading the answer): half the time
/// plainly (the closed socket lingers, orphaned), half with a reset (it is gone at once).
const CLOSE_RACE: &str = r#"
import socket, struct, sys
port, token, n, currency = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = '{"method":"settings.set","params":{"name":"main_currency","value":"%s"}}' % currency
request = ("POST /api/1/control HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: %d\r\n\r\n%s" % (token, len(body), body)).encode()
for host in sys.argv[5:]:
    for i in range(n):
        s = socket.create_connection((host, port))
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(request)
        s.close()
print("sent", flush=True)
"#;

/// The address this host sends from towards `far` (an address no test machine has), when it
/// has a route there: one of its own, not loopback.
fn own_address(far: &str) -> Option<IpAddr> {
    let local = if far.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(far).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// Writes a private token file and returns its path.
fn token_file(sandbox: &Sandbox, token: &str, mode: u32) -> std::path::PathBuf {
    let path = sandbox.dir.path().join("token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Finding 2: on a `[::]` listener, a local user holding the token must not get past the uid
/// check by closing its socket before robind looks it up, whether it connects to 127.0.0.1
/// (seen as ::ffff:127.0.0.1) or to one of the machine's own addresses.
#[test]
fn closing_at_once_does_not_get_past_the_uid_check_on_a_wildcard_listener() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let token = "secret-token-value-1234567890";
    let mut cmd = sandbox.command();
    cmd.args(["--listen", "[::]:0", "--api-token-file"]).arg(token_file(&sandbox, token, 0o600));
    let daemon = Daemon::start(cmd);
    let port = daemon.http_addr().port().to_string();
    let mut targets = vec!["127.0.0.1".to_string(), "::ffff:127.0.0.1".to_string()];
    targets.extend(own_address("203.0.113.1:9").map(|ip| ip.to_string()));
    targets.extend(own_address("[2001:db8::1]:9").map(|ip| ip.to_string()));
    let mut args = vec![port.as_str(), token, "20", "GBP"];
    args.extend(targets.iter().map(String::as_str));
    // Stopped, robind looks its clients up only after they have closed (as a busy robind
    // would). Given a moment (the delayed ACK of their FIN), the kernel keeps each as a
    // timewait socket that no longer names its user, or has dropped it (the resets).
    daemon.signal("STOP");
    let mut race = Script::start(NOBODY, CLOSE_RACE, &args);
    let sent = race.line();
    thread::sleep(Duration::from_millis(500));
    daemon.signal("CONT");
    assert_eq!(sent, "sent");
    assert!(race.finish());
    // Every request has been read by now or never will be: the owner's own request, sent
    // after them, is answered after theirs.
    let get = r#"{"id":1,"method":"settings.get","params":{"name":"main_currency"}}"#;
    let ping = b"GET /api/1/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert!(support::http_raw(daemon.http_addr(), ping).starts_with("HTTP/1.1 200"));
    thread::sleep(Duration::from_millis(500));
    let answer = ipc_call(&sandbox.socket(), get);
    assert_eq!(answer["result"]["main_currency"], "USD", "targets {targets:?}: {answer}");
}

/// Connects to `PORT`, sends as much as the kernel takes without robind reading (so the
/// socket still has data to deliver), and closes it.
const CLOSE_WITH_DATA_PENDING: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /api/1/control HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\n")
s.setblocking(False)
try:
    while True:
        s.send(b"x" * 65536)
except BlockingIOError:
    pass
s.close()
print("closed", flush=True)
"#;

/// Finding 2: a socket its process has closed while it still has data to deliver (FIN_WAIT1)
/// is still named by the user who made it, not taken as unknown.
#[test]
fn a_closed_socket_with_data_pending_is_still_named_by_its_user() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    daemon.signal("STOP");
    let mut client =
        Script::start(NOBODY, CLOSE_WITH_DATA_PENDING, &[&daemon.http_addr().port().to_string()]);
    let closed = client.line();
    daemon.signal("CONT");
    assert_eq!(closed, "closed");
    daemon.wait_for_log("uid 65534 may not use this robind: it is also how the kernel shows");
    assert!(!daemon.log().contains("cannot tell which user"), "{}", daemon.log());
}

/// Finding 2: a token file others can read, one of another user, or a short token is refused
/// at start, naming the file and the fix.
#[test]
fn unsafe_token_files_are_refused_at_start_with_the_fix() {
    if !privileged() {
        return;
    }
    let cases: [(&str, u32, Option<u32>, &str); 3] = [
        ("secret-token-value-1234567890", 0o644, None, "run chmod 600"),
        ("abc", 0o600, None, "is 3 characters long; use at least 16"),
        ("secret-token-value-1234567890", 0o600, Some(OTHER), "belongs to uid 4242"),
    ];
    for (token, mode, owner, expected) in cases {
        let sandbox = Sandbox::new();
        let path = token_file(&sandbox, token, mode);
        if let Some(uid) = owner {
            rustix::fs::chown(&path, Some(rustix::fs::Uid::from_raw(uid)), None).unwrap();
        }
        let out = sandbox.command().arg("--api-token-file").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{expected}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected) && stderr.contains(path.to_str().unwrap()), "{stderr}");
    }
}

/// Opens `N` connections to `PORT` at once (a thread each), each sending a request head with
/// `Content-Length: 1048576` and all of the body but its last byte, as far as robind takes it;
/// then waits up to 3 s for an answer and closes. Prints how many were answered 403.
const BODY_BOMB: &str = r#"
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
head = b"POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n"
chunk = b"x" * 65536
answered = []
def bomb():
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(head)
        for _ in range(15):
            s.sendall(chunk)
        s.sendall(chunk[:-1])
    except OSError:
        pass
    try:
        if s.recv(12).startswith(b"HTTP/1.1 403"):
            answered.append(1)
    except OSError:
        pass
    s.close()
threads = [threading.Thread(target=bomb) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(len(answered), flush=True)
"#;

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Findings 3 and 9: refused connections that each send a 1 MiB body cost robind almost no
/// memory, the owner is still served meanwhile, and the refusals are logged once, not each.
#[test]
fn refused_connections_sending_large_bodies_cost_almost_nothing() {
    if !privileged() {
        return;
    }
    const CONNECTIONS: usize = 150;
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let (addr, pid) = (daemon.http_addr(), daemon.pid());
    assert_eq!(support::http_get(addr, "/api/1/ping").0, 200);
    let before = rss_kib(pid);
    let mut bomb = Script::start(NOBODY, BODY_BOMB, &[&addr.port().to_string(), &CONNECTIONS.to_string()]);
    let mut peak = before;
    let mut owner_served = false;
    let answered: usize = loop {
        peak = peak.max(rss_kib(pid));
        if !owner_served {
            owner_served = support::http_get(addr, "/api/1/ping").0 == 200;
        }
        if let Ok(Some(_)) = bomb.child.try_wait() {
            break bomb.line().parse().unwrap();
        }
        thread::sleep(Duration::from_millis(10));
    };
    peak = peak.max(rss_kib(pid));
    // 150 bodies buffered would be 150 MiB; a refusal holds about a kilobyte.
    assert!(peak < before + 16 * 1024, "RSS grew from {before} KiB to {peak} KiB");
    assert!(owner_served, "the owner was served during the attack");
    assert!(answered > 0, "refused clients are told why (up to the bound on refusals at once)");
    let refusals = daemon.log().matches("http: refused a connection from").count();
    assert!(refusals <= 2, "{refusals} refusal lines for one user within a minute");
}

/// Opens `N` connections to `PORT` and prints what each got within a second (`403`, or `-`
/// for a close without an answer), then holds them until told to close.
const HOLD_REFUSED: &str = r#"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
got = []
for s in socks:
    s.settimeout(1)
    try:
        got.append(s.recv(12)[9:12].decode() or "-")
    except OSError:
        got.append("-")
print(" ".join(got), flush=True)
sys.stdin.readline()
"#;

/// Finding 3: refused connections hold no slot of their user or of the total, and only a few
/// are answered at once; past that they are closed at once.
#[test]
fn refusals_take_no_slots_and_only_a_few_are_answered_at_once() {
    if !privileged() {
        return;
    }
    let limits = Limits {
        max_connections: 4,
        owner_reserved: 0,
        max_refusing: 2,
        // Long enough that the refused connections are still being refused below.
        refusal_linger: Duration::from_secs(20),
        ..Limits::default()
    };
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let server = thread::spawn(move || {
        let ex = Spawner::new();
        let access = Access::for_listener(addr);
        let peers = Peers::by_uid(Policy::new(&[])).unwrap();
        let controller = Rc::new(support::standalone_controller());
        let server = Server::with_access(tcp, controller, limits, access, peers).unwrap();
        ex.block_on(server.serve().or(async {
            let _ = stopped.recv().await;
        }));
    });

    let mut hostile = Script::start(NOBODY, HOLD_REFUSED, &[&addr.port().to_string(), "6"]);
    let got = hostile.line();
    let mut answers: Vec<&str> = got.split(' ').collect();
    answers.sort();
    assert_eq!(answers, ["-", "-", "-", "-", "403", "403"], "two refusals at a time: {got}");
    // While those are held, the owner still has every one of the four slots.
    let held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream.write_all(b"GET /api/1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            let mut status = [0u8; 12];
            let status = match stream.read_exact(&mut status) {
                Ok(()) => String::from_utf8_lossy(&status).into_owned(),
                Err(err) => format!("no answer ({err})"),
            };
            assert_eq!(status, "HTTP/1.1 200", "owner connection {i}");
            stream
        })
        .collect();
    hostile.tell("done");
    drop((held, hostile));
    let _ = stop.send_blocking(());
    server.join().unwrap();
}

/// As an allowed user: opens `/ws`, a control-socket client and a keep-alive HTTP connection,
/// checks each is served, prints `ready`; after a line on stdin sends one more request on each
/// and prints, per connection, `answered`, `closed` or `silent`.
const REVOKED: &str = r#"
import json, os, socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
def ws_send(s, text):
    data = text.encode(); mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
def ws_frame(s):
    head = s.recv(2)
    if len(head) < 2: return None
    n = head[1] & 0x7F
    if n == 126: n = int.from_bytes(s.recv(2), "big")
    data = b""
    while len(data) < n:
        more = s.recv(n - len(data))
        if not more: return None
        data += more
    return data
def ws_recv(s):
    # Notifications may come first; the answer is the frame with a result.
    while True:
        frame = ws_frame(s)
        if frame is None or b'"result"' in frame: return frame
def http_send(s): s.sendall(b"GET /api/1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
def http_recv(s):
    data = s.recv(4096)
    return data if data.startswith(b"HTTP/1.1 200") else None
def ipc_send(s): s.sendall(b'{"id":1,"method":"ping"}\n')
def ipc_recv(s):
    data = s.recv(4096)
    return data if b'"result":true' in data else None
ws = socket.create_connection(("127.0.0.1", port))
ws.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while not head.endswith(b"\r\n\r\n"): head += ws.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head
ipc = socket.socket(socket.AF_UNIX); ipc.connect(path)
http = socket.create_connection(("127.0.0.1", port))
request = '{"id":1,"method":"ping"}'
conns = {"ws": (ws, lambda s: ws_send(s, request), ws_recv), "ipc": (ipc, ipc_send, ipc_recv), "http": (http, http_send, http_recv)}
for name, (s, send, recv) in conns.items():
    send(s); assert recv(s), name
print("ready", flush=True)
sys.stdin.readline()
result = {}
for name, (s, send, recv) in conns.items():
    s.settimeout(3)
    try:
        send(s)
        result[name] = "answered" if recv(s) else "closed"
    except socket.timeout:
        result[name] = "silent"
    except OSError:
        result[name] = "closed"
print(json.dumps(result), flush=True)
"#;

/// Finding 4: when a reload takes a user out of `ipc_allow_uids`, its open WebSocket,
/// control-socket and keep-alive HTTP connections are closed, not only its new ones refused.
#[test]
fn a_reload_that_revokes_a_user_closes_its_open_connections() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let config = sandbox.dir.path().join("robin.toml");
    std::fs::write(&config, format!("ipc_allow_uids = [{OTHER}]\n")).unwrap();
    let mut cmd = sandbox.command();
    cmd.arg("--config").arg(&config);
    let daemon = Daemon::start(cmd);
    for (path, mode) in
        [(sandbox.dir.path().to_path_buf(), 0o755), (sandbox.runtime_dir(), 0o755), (sandbox.socket(), 0o666)]
    {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let port = daemon.http_addr().port().to_string();
    let mut friend = Script::start(OTHER, REVOKED, &[&port, sandbox.socket().to_str().unwrap()]);
    assert_eq!(friend.line(), "ready");
    // The owner's own WebSocket must survive the reload.
    let (mut owner_ws, _) = support::raw_websocket(daemon.http_addr());

    std::fs::write(&config, "ipc_allow_uids = []\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("ipc_allow_uids = [] applied");
    friend.tell("go");
    let result: Value = serde_json::from_str(&friend.line()).unwrap();
    assert_eq!(result, json!({"ws": "closed", "ipc": "closed", "http": "closed"}));

    // A masked ping frame; the owner's socket answers with a pong.
    owner_ws.write_all(&[0x89, 0x80, 1, 2, 3, 4]).unwrap();
    let mut pong = [0u8; 2];
    owner_ws.read_exact(&mut pong).unwrap();
    assert_eq!(pong, [0x8A, 0x00], "the owner's WebSocket is still open");
}
