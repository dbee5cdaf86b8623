//! Whether a directory is robind's user's alone to change: the check behind the data and
//! runtime directories (robin refuses a shared one, and never changes its mode).
//!
//! May touch: nothing; it reads metadata it is given.
use std::os::unix::fs::MetadataExt;

/// Why `meta` (a directory's) could let another user replace what is in it: owned by another
/// user, or writable by group or others. `None` when it is private enough.
pub fn shared_reason(meta: &std::fs::Metadata) -> Option<String> {
    let ours = rustix::process::geteuid().as_raw();
    if meta.uid() != ours {
        return Some(format!("belongs to uid {}, not to robind's uid {ours}", meta.uid()));
    }
    let mode = meta.mode() & 0o7777;
    (mode & 0o022 != 0).then(|| format!("is writable by other users (mode {mode:04o})"))
}
