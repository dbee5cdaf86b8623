//! Shared helpers for integration tests that run the real `robind` binary.
#![allow(dead_code, unused_imports)] // each test file uses its own subset

pub mod fake_http;
pub mod notifier_loop;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A controller over fresh parts with every feature at its default and no database: what an
/// in-process listener needs when the test is about the transport. Its task tracker has an
/// executor of its own that nothing drives.
pub fn standalone_controller() -> robin::control::Controller {
    let tasks = robin::tasks::TaskManager::new(
        robin::runtime::Spawner::new(),
        std::rc::Rc::new(|_| {}),
        std::rc::Rc::new(|_| {}),
    );
    robin::control::Controller::new(
        robin::config::Features::defaults(),
        robin::notifier::Notifier::new(Default::default()),
        tasks.clone(),
        robin::control::Session::new(tasks),
    )
}

/// Whether tests that run clients as other users (`setpriv`, which needs root) may run: true
/// as root; false (and says so) when ROBIN_SKIP_PRIVILEGED_TESTS asks to skip them; otherwise
/// they fail, so that a green run never hides that they did not run.
pub fn privileged(suite: &str) -> bool {
    if rustix::process::getuid().is_root() {
        return true;
    }
    if std::env::var_os("ROBIN_SKIP_PRIVILEGED_TESTS").is_some() {
        eprintln!("{suite}: skipped (ROBIN_SKIP_PRIVILEGED_TESTS is set)");
        return false;
    }
    panic!(
        "these tests run clients as other users and need root; set ROBIN_SKIP_PRIVILEGED_TESTS=1 to skip them"
    );
}

/// Runs `node tests/browser/SCRIPT ARGS...` (Debian's Chromium driven by playwright-core;
/// tests/run.sh installs both) and asserts it printed OK. Each script bounds itself in time.
pub fn run_browser_script(script: &str, args: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "Chromium and playwright-core are missing: run tests/run.sh, which installs them"
    );
    let out = Command::new("node").arg(dir.join(script)).args(args).output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long a test waits for the daemon to become ready or to exit before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A fresh temporary directory with `data/` and `run/` for one daemon.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join("robind.sock")
    }
    /// `robind` with this sandbox's directories and an ephemeral port; HOME points inside too.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_robind"));
        cmd.arg("--listen").arg("127.0.0.1:0");
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd.arg("--runtime-dir").arg(self.runtime_dir());
        cmd.env("HOME", self.dir.path()).env_remove("XDG_RUNTIME_DIR").env_remove("XDG_DATA_HOME");
        cmd.env_remove("NOTIFY_SOCKET").env_remove("LISTEN_FDS").env_remove("RUST_LOG");
        cmd.env("ROBIN_LOG", "debug");
        cmd
    }
}

/// A running daemon; killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Child,
    pub ready: Value,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    log: std::cell::RefCell<String>,
}

impl Daemon {
    /// Spawns `cmd` and waits for its ready line on stdout.
    pub fn start(mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn robind");
        let stderr = drain_lines(child.stderr.take().unwrap());
        let stdout = drain_lines(child.stdout.take().unwrap());
        let line = match stdout.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let log: Vec<String> = stderr.try_iter().collect();
                panic!("robind did not print its ready line; stderr:\n{}", log.join("\n"));
            }
        };
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        assert_eq!(ready["event"], "ready", "{line}");
        Daemon { child, ready, stderr, log: Default::default() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.ready["http"].as_str().unwrap().parse().unwrap()
    }

    /// Sends a signal by name (`TERM`, `INT`) with the `kill` command, which keeps the tests
    /// free of unsafe `libc::kill` calls.
    pub fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "robind did not exit within {PATIENCE:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the daemon wrote on stderr since the last call (see [`Daemon::log`] for all of it).
    pub fn stderr(&self) -> String {
        let new = self.stderr.try_iter().collect::<Vec<_>>().join("\n");
        let mut log = self.log.borrow_mut();
        log.push_str(&new);
        log.push('\n');
        new
    }

    /// Everything the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        self.stderr();
        self.log.borrow().clone()
    }

    /// Waits (bounded) for a log line containing `needle`; the whole log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {PATIENCE:?}; log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends raw bytes and reads the whole answer until the server closes (which it must do
/// within [`PATIENCE`]).
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    String::from_utf8_lossy(&read_until_closed(&mut stream, PATIENCE)).into_owned()
}

/// Reads until the server closes the connection, which must happen within `within`; what
/// arrived before. A reset counts as closed (the server closed with unread data). A read that
/// times out fails the test: a check that the server hangs up must not pass by waiting.
pub fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut data = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server did not close the connection within {within:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return data,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return data,
            Err(err)
                if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                panic!(
                    "the server did not close the connection within {within:?} ({} bytes read)",
                    data.len()
                )
            }
            Err(err) => panic!("reading failed: {err}"),
        }
    }
}

/// A one-shot `GET` with `Connection: close`; returns (status, parsed JSON body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    parse_response(&http_raw(addr, request.as_bytes()))
}

pub fn parse_response(reply: &str) -> (u16, Value) {
    let status =
        reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {reply:?}"));
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// One request on the control socket; returns the parsed reply line.
pub fn ipc_call(socket: &Path, line: &str) -> Value {
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to control socket");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    (&stream).write_all(line.as_bytes()).unwrap();
    (&stream).write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|_| panic!("reply is not JSON: {reply:?}"))
}

/// Polls `check` every 20 ms until it holds or `PATIENCE` runs out.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The RFC 6455 example key; its accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Opens `/ws` by hand and reads the whole 101 head; returns the stream and the head.
pub fn raw_websocket(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (stream, head)
}

/// Runs `robinctl --socket <sandbox socket> ARGS`.
pub fn robinctl(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_robinctl"))
        .arg("--socket")
        .arg(sandbox.socket())
        .args(args)
        .output()
        .unwrap()
}
