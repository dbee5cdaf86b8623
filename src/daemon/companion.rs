//! Companion mode: living and dying with the desktop app that started robind, and handing
//! over to a robind that already serves the data directory.
//!
//! Three independent pieces, each asked for on the command line (see `docs/companion.md`):
//! following the parent with `PR_SET_PDEATHSIG`, treating end of file on standard input as a
//! stop request, and attaching to a running daemon instead of failing on its lock. All of it
//! happens before the loop starts, except the lifeline's wait, which is a channel.
//!
//! May touch: the process's parent-death signal, standard input (on its own thread), and the
//! control socket of the daemon holding the lock (as a client).
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use rustix::process::{Pid, Signal};

use super::{Error, Result};
use crate::config::Config;
use crate::control::ReadyLine;
use crate::control::client::{self, Client};
use crate::lockfile::Owner;

/// How long a running daemon gets to answer `ready` before it counts as not healthy.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the control socket is tried again while the owner is still binding it.
const ATTACH_RETRY: Duration = Duration::from_millis(50);

/// Asks the kernel to send SIGTERM when the thread that spawned robind exits, then checks
/// that the parent recorded at start is still there: if it died before the request, no
/// signal will ever come. The parent now followed.
pub(super) fn follow_parent(recorded: Option<Pid>) -> Result<Pid> {
    let gone = || Error::ParentGone { pid: Pid::as_raw(recorded) };
    let parent = recorded.filter(|pid| !pid.is_init()).ok_or_else(gone)?;
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM)).map_err(|err| {
        Error::Companion(format!(
            "cannot ask to be told of the parent's death (prctl PR_SET_PDEATHSIG): {err}"
        ))
    })?;
    if rustix::process::getppid() != Some(parent) {
        return Err(gone());
    }
    log::info!("following the parent process (pid {}): robind stops when it exits", parent.as_raw_nonzero());
    Ok(parent)
}

/// Whether the followed parent has gone (robind was re-parented).
pub(super) fn parent_gone(parent: Pid) -> bool {
    rustix::process::getppid() != Some(parent)
}

/// Reads standard input on a thread of its own until end of file or an error; the receiver
/// then gets a message (or sees the channel closed). Whatever is read is ignored.
pub(super) fn stdin_lifeline() -> Result<async_channel::Receiver<&'static str>> {
    let (cut, lifeline) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("robind-stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            use std::io::Read;
            let mut buffer = [0u8; 512];
            let mut stdin = std::io::stdin().lock();
            let why = loop {
                match stdin.read(&mut buffer) {
                    Ok(0) => break "standard input reached end of file",
                    Ok(_) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break "standard input could not be read",
                }
            };
            let _ = cut.send_blocking(why);
        })
        .map_err(|err| Error::Companion(format!("cannot start the standard input watcher: {err}")))?;
    Ok(lifeline)
}

/// The ready line of the healthy robind holding `dir`, marked as not ours; an error that says
/// what to do when the holder does not answer within [`ATTACH_TIMEOUT`]. The whole exchange
/// runs on a thread of its own under one deadline: a holder whose backlog is full blocks
/// `connect`, and one that trickles its answer resets every per-read timeout.
pub(super) fn attach(config: &Config, dir: &Path, owner: &Owner) -> Result<ReadyLine> {
    let socket = owner.control_socket.clone().unwrap_or_else(|| config.ipc_socket_path());
    let not_answering = |why: String| Error::NotAnswering {
        dir: dir.to_path_buf(),
        pid: owner.pid,
        held_for: owner.since.and_then(|t| SystemTime::now().duration_since(t).ok()),
        socket: socket.clone(),
        why,
    };
    let (done, outcome) = std::sync::mpsc::channel();
    let (path, expected_pid) = (socket.clone(), owner.pid);
    std::thread::Builder::new()
        .name("robind-attach".into())
        .spawn(move || {
            let _ = done.send(ask_until(&path, expected_pid, Instant::now() + ATTACH_TIMEOUT));
        })
        .map_err(|err| Error::Companion(format!("cannot start the attach thread: {err}")))?;
    let mut line = match outcome.recv_timeout(ATTACH_TIMEOUT + ATTACH_RETRY) {
        Ok(Ok(line)) => line,
        Ok(Err(why)) => return Err(not_answering(why)),
        Err(_) => return Err(not_answering(format!("no answer within {ATTACH_TIMEOUT:?}"))),
    };
    if !same_dir(&line.data_dir, dir) {
        return Err(Error::Companion(format!(
            "the robind answering on {} (pid {}) serves {}, not {}; pass --runtime-dir so that each \
             data directory has its own control socket",
            socket.display(),
            line.pid,
            line.data_dir.display(),
            dir.display()
        )));
    }
    line.owner = false;
    Ok(line)
}

/// Asks `socket` for the ready line until `deadline`, trying again while the holder is still
/// binding its socket.
fn ask_until(
    socket: &Path,
    expected_pid: Option<u32>,
    deadline: Instant,
) -> std::result::Result<ReadyLine, String> {
    loop {
        match ask_ready(socket, expected_pid, deadline) {
            Ok(line) => return Ok(line),
            Err(Attempt::Again(why)) if Instant::now() + ATTACH_RETRY < deadline => {
                log::debug!("attach: {why}; trying again");
                std::thread::sleep(ATTACH_RETRY);
            }
            Err(Attempt::Again(why) | Attempt::Failed(why)) => return Err(why),
        }
    }
}

/// Why one try at the control socket failed: worth another try, or not.
enum Attempt {
    Again(String),
    Failed(String),
}

fn ask_ready(
    socket: &Path,
    expected_pid: Option<u32>,
    deadline: Instant,
) -> std::result::Result<ReadyLine, Attempt> {
    let mut client = Client::connect(socket).map_err(|err| Attempt::Again(err.to_string()))?;
    // Only the lock's holder, running as this user, is believed: not a socket someone else
    // left at that path.
    // (root too: a socket systemd made for a socket-activated robind is root's.)
    let (_, uid) = client.peer().map_err(|err| Attempt::Failed(err.to_string()))?;
    let ours = rustix::process::geteuid().as_raw();
    if uid != ours && uid != 0 {
        return Err(Attempt::Failed(format!("the socket belongs to uid {uid}, not to robind's uid {ours}")));
    }
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    client.set_timeout(left).map_err(|err| Attempt::Failed(err.to_string()))?;
    let answer = client.call("ready", serde_json::json!({})).map_err(|err| match err {
        client::Error::Io(io)
            if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
        {
            Attempt::Failed(format!("no answer within {ATTACH_TIMEOUT:?}"))
        }
        other => Attempt::Failed(other.to_string()),
    })?;
    let line: ReadyLine = serde_json::from_value(answer)
        .map_err(|err| Attempt::Failed(format!("unreadable ready line: {err}")))?;
    // The lock file names its holder: a robind answering for another pid is not it.
    if expected_pid.is_some_and(|holder| holder != line.pid) {
        return Err(Attempt::Failed(format!(
            "the socket is served by robind pid {}, not by the lock's holder",
            line.pid
        )));
    }
    Ok(line)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canonical(a) == canonical(b)
}

/// "1h 2m 3s", for how long a lock has been held.
pub(super) fn held_for_text(held: Option<Duration>) -> String {
    let Some(held) = held else { return String::new() };
    let secs = held.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let text = match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    };
    format!(" for {text}")
}

/// Where the pid came from, for messages.
pub(super) fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "of unknown pid".to_string(), |pid| format!("pid {pid}"))
}

/// The advice when a daemon holds the lock without answering.
pub(super) fn what_to_do(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(
            "check it with `ps -o pid,stat,etime,cmd -p {pid}` (T: stopped, D: stuck in the kernel); \
             stop it with `kill {pid}` (`kill -9 {pid}` if it does not exit), then start robind again"
        ),
        None => "find it with `fuser -v robind.lock` in the data directory, stop it, then start robind again"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_for_reads_like_a_clock() {
        assert_eq!(held_for_text(None), "");
        assert_eq!(held_for_text(Some(Duration::from_secs(5))), " for 5s");
        assert_eq!(held_for_text(Some(Duration::from_secs(125))), " for 2m 5s");
        assert_eq!(held_for_text(Some(Duration::from_secs(3723))), " for 1h 2m 3s");
    }
}
