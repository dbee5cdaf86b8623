//! The `backup` command cannot destroy data: it refuses every destination that is live data,
//! writes only private, complete files, and leaves nothing behind when it fails. Against the
//! real daemon, through its control API.
//!
//! The regression: a backup written onto `DATA/robin.db` or its `-wal` replaced the database
//! under its open connections (50 acknowledged writes became 2 after a restart; with the
//! `-wal` and a kill -9, the whole database went).
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Daemon, Sandbox, eventually, http_raw, ipc_call, parse_response};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
}

/// The HTTP status of a `backup` with `params` through `POST /api/1/control`.
fn http_status(daemon: &Daemon, params: Value) -> u16 {
    let body = json!({"method": "backup", "params": params}).to_string();
    let request = format!(
        "POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    parse_response(&http_raw(daemon.http_addr(), request.as_bytes())).0
}

/// The error message of a reply that must be an error, and its code.
fn refusal(reply: &Value) -> (String, i64) {
    let message = reply["error"]["message"].as_str().unwrap_or_else(|| panic!("not refused: {reply}"));
    (message.to_string(), reply["error"]["code"].as_i64().unwrap())
}

/// Adds `asset-<first>` .. `asset-<first + count - 1>`; each add is acknowledged.
fn add_assets(sandbox: &Sandbox, first: usize, count: usize) -> Vec<String> {
    let assets: Vec<String> = (first..first + count).map(|i| format!("asset-{i:03}")).collect();
    for asset in &assets {
        let reply = call(sandbox, "assets.add", json!({ "asset": asset }));
        assert_eq!(reply["result"]["added"], true, "{reply}");
    }
    assets
}

/// Each entry of `dir` (not following symlinks) by name: its inode, mode and, for a regular
/// file outside the live database, its content. A file replaced by a rename gets a new inode.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u32, Option<Vec<u8>>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let content = (meta.is_file() && !name.starts_with("robin.db"))
                .then(|| std::fs::read(entry.path()).unwrap());
            (name, (meta.ino(), meta.mode(), content))
        })
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Assets in a backup of the plain database, read with SQLite directly.
fn assets_in(backup: &Path) -> i64 {
    let conn = rusqlite::Connection::open(backup).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "a backup is one self-contained file");
    conn.query_row("SELECT count(*) FROM assets", [], |r| r.get(0)).unwrap()
}

#[test]
fn refused_backups_change_nothing_and_every_acknowledged_write_survives_a_restart() {
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    // Half the writes come before the attempts and half after: a backup written over the
    // database would hold the first half only, so a lost write shows after the restart even
    // if a refusal's message were right.
    let mut assets = add_assets(&sandbox, 0, 25);
    let data = sandbox.data_dir();
    let outside = tempfile::tempdir().unwrap();
    let link = outside.path().join("link.db");
    std::os::unix::fs::symlink(data.join("robin.db"), &link).unwrap();
    let existing = outside.path().join("existing.db");
    std::fs::write(&existing, b"precious, not a backup").unwrap();
    let directory = outside.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    // A backups directory that leads back into the data directory lets nothing in.
    std::os::unix::fs::symlink(&data, data.join("backups")).unwrap();
    let (data_before, outside_before) = (snapshot(&data), snapshot(outside.path()));

    let live_db = "refusing to back up onto the live database file";
    let mut cases: Vec<(Value, &str, i64)> = Vec::new();
    // With and without overwrite: a live file is refused for what it is, not for existing.
    for overwrite in [false, true] {
        for name in ["robin.db", "robin.db-wal", "robin.db-shm", "robin.db-journal"] {
            cases.push((json!({"path": data.join(name), "overwrite": overwrite}), live_db, -32602));
        }
        cases.push((json!({"path": link, "overwrite": overwrite}), live_db, -32602));
        let lock = data.join(robin::lockfile::LOCK_FILE_NAME);
        cases.push((json!({"path": lock, "overwrite": overwrite}), "onto the live lock file", -32602));
        let beside = data.join("beside-the-database.db");
        cases.push((json!({"path": beside, "overwrite": overwrite}), "holds live data", -32602));
        let looped = data.join("backups/beside-the-database.db");
        cases.push((json!({"path": looped, "overwrite": overwrite}), "holds live data", -32602));
        cases.push((json!({"path": directory, "overwrite": overwrite}), "is a directory", -32602));
    }
    cases.push((json!({"path": "robin.db"}), "must be absolute", -32602));
    cases.push((json!({"path": existing}), "exists; pass \"overwrite\": true to replace it", -32005));
    for (params, expected, code) in &cases {
        let (message, got_code) = refusal(&call(&sandbox, "backup", params.clone()));
        assert!(message.contains(expected), "{params}: {message}");
        assert_eq!(got_code, *code, "{params}: {message}");
    }
    // C interfaces read a path up to its NUL: `/x/nul.db\0y` must not write `/x/nul.db`.
    let nul = format!(
        r#"{{"id":1,"method":"backup","params":{{"path":"{}\u0000y"}}}}"#,
        outside.path().join("nul.db").display()
    );
    let (message, code) = refusal(&ipc_call(&sandbox.socket(), &nul));
    assert!(message.contains("NUL"), "{message}");
    assert_eq!(code, -32602);
    // Over HTTP a refusal is the client's to fix: 400, and 409 for a file in the way.
    assert_eq!(http_status(&daemon, json!({"path": data.join("robin.db-wal"), "overwrite": true})), 400);
    assert_eq!(http_status(&daemon, json!({ "path": existing })), 409);

    assert_eq!(snapshot(&data), data_before, "the data directory is untouched");
    assert_eq!(snapshot(outside.path()), outside_before, "the other files are untouched");

    assets.extend(add_assets(&sandbox, 25, 25));
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(call(&sandbox, "assets.list", json!({}))["result"], json!(assets));
}

#[test]
fn a_backup_is_a_private_complete_file_and_overwrite_replaces_one() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    add_assets(&sandbox, 0, 50);
    let outside = tempfile::tempdir().unwrap();

    let fresh = outside.path().join("fresh.db");
    let reply = call(&sandbox, "backup", json!({ "path": fresh }));
    assert_eq!(reply["result"]["path"], fresh.to_str().unwrap(), "{reply}");
    assert_eq!(mode_of(&fresh), 0o600);
    assert_eq!(assets_in(&fresh), 50);

    let old = outside.path().join("old.db");
    std::fs::write(&old, b"last week's").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reply = call(&sandbox, "backup", json!({ "path": old, "overwrite": true }));
    assert!(reply["result"].is_object(), "{reply}");
    assert_eq!(mode_of(&old), 0o600, "the replacement is private too");
    assert_eq!(assets_in(&old), 50);
    assert_eq!(file_names(outside.path()), ["fresh.db", "old.db"], "no temporary files are left");

    // The backups directory beside the database takes backups, inside the data directory.
    let backups = sandbox.data_dir().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let reply = call(&sandbox, "backup", json!({ "path": backups.join("by-hand.db") }));
    assert!(reply["result"].is_object(), "{reply}");
    assert_eq!(assets_in(&backups.join("by-hand.db")), 50);
}

#[test]
fn an_encrypted_database_follows_the_same_rules() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    call(&sandbox, "unlock", json!({"username": "alice", "password": "pw"}));
    add_assets(&sandbox, 0, 5);
    let data = sandbox.data_dir();
    let alice = data.join("users/alice");
    for (path, expected) in [
        (alice.join("robin.db"), "refusing to back up onto the live database file"),
        (alice.join("robin.db-wal"), "refusing to back up onto the live database file"),
        // The default database is live too while a user's is current.
        (data.join("robin.db"), "refusing to back up onto the live database file"),
        (alice.join("notes.db"), "holds live data"),
    ] {
        let (message, _) = refusal(&call(&sandbox, "backup", json!({"path": path, "overwrite": true})));
        assert!(message.contains(expected), "{}: {message}", path.display());
    }

    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("alice.db");
    let reply = call(&sandbox, "backup", json!({ "path": copy }));
    assert!(reply["result"].is_object(), "{reply}");
    assert_eq!(mode_of(&copy), 0o600);
    assert_eq!(file_names(outside.path()), ["alice.db"], "no temporary or journal files are left");
    let (message, code) = refusal(&call(&sandbox, "backup", json!({ "path": copy })));
    assert!(message.contains("exists"), "{message}");
    assert_eq!(code, -32005);
    let raw = rusqlite::Connection::open(&copy).unwrap();
    raw.execute_batch("PRAGMA key = 'pw';").unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "a backup is one self-contained file");
    drop(raw);
    let open = |password: Option<&str>| {
        futures_lite::future::block_on(robin::db::Database::open(
            &copy,
            password.map(|p| robin::db::Password::new(p.into())),
            robin::db::Options::default(),
        ))
    };
    assert!(matches!(open(None), Err(robin::db::Error::PasswordNeeded(_))), "the copy is encrypted");
    assert_eq!(futures_lite::future::block_on(open(Some("pw")).unwrap().assets()).unwrap().len(), 5);

    // Each user's backups directory takes backups.
    std::fs::create_dir(alice.join("backups")).unwrap();
    let reply = call(&sandbox, "backup", json!({ "path": alice.join("backups/by-hand.db") }));
    assert!(reply["result"].is_object(), "{reply}");
}

/// A directory whose path is longer than SQLite accepts (512 bytes) while the kernel takes it:
/// the temporary file is created there, then SQLite fails to open it. This fails for root too,
/// unlike a read-only directory.
fn too_deep_for_sqlite(root: &Path) -> PathBuf {
    let mut dir = root.to_path_buf();
    while dir.as_os_str().len() < 600 {
        dir.push("d".repeat(200));
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_failed_backup_leaves_no_partial_file() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    add_assets(&sandbox, 0, 3);
    let outside = tempfile::tempdir().unwrap();
    let deep = too_deep_for_sqlite(outside.path());

    let (message, code) = refusal(&call(&sandbox, "backup", json!({ "path": deep.join("b.db") })));
    assert!(message.contains("failed"), "{message}");
    assert_eq!(code, -32002, "a failure, not a refusal: {message}");
    assert!(file_names(&deep).is_empty(), "left behind: {:?}", file_names(&deep));

    // The same through sqlcipher_export, for an encrypted database.
    call(&sandbox, "unlock", json!({"username": "bob", "password": "pw"}));
    let (message, _) = refusal(&call(&sandbox, "backup", json!({ "path": deep.join("b.db") })));
    assert!(message.contains("failed"), "{message}");
    assert!(file_names(&deep).is_empty(), "left behind: {:?}", file_names(&deep));

    // A parent that is a file is refused before anything is created.
    let file = outside.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let (message, _) = refusal(&call(&sandbox, "backup", json!({ "path": file.join("b.db") })));
    assert!(message.contains("is not a directory"), "{message}");
}

#[test]
fn leftovers_of_interrupted_backups_go_at_start_and_with_each_rotation() {
    let sandbox = Sandbox::new();
    let backups = sandbox.data_dir().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let leftover = |n: u32| backups.join(format!(".robin-{n:020}.db.robin-partial-{n}-00000000000000ff"));
    std::fs::write(leftover(1), b"half a backup").unwrap();
    std::fs::write(backups.join("robin-00000000000000000001.db"), b"a finished backup").unwrap();

    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(file_names(&backups), ["robin-00000000000000000001.db"]);

    std::fs::write(leftover(2), b"half a backup").unwrap();
    let started = call(&sandbox, "tasks.run", json!({"job": "db_backup"}));
    let id = started["result"]["task_id"].as_u64().unwrap_or_else(|| panic!("{started}"));
    eventually("the backup job to finish", || {
        call(&sandbox, "tasks.result", json!({ "id": id }))["result"]["status"] == "completed"
    });
    let names = file_names(&backups);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("robin-")), "{names:?}");
}

#[test]
fn the_daemons_own_files_are_never_a_backup_target() {
    let sandbox = Sandbox::new();
    // A copy of robind, so that a failure here cannot destroy the binary other tests run.
    let exe = sandbox.dir.path().join("robind-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_robind"), &exe).unwrap();
    let config = sandbox.dir.path().join("robin.toml");
    std::fs::write(&config, "log_level = \"info\"\n").unwrap();
    let log = sandbox.dir.path().join("robind.log");
    let template = sandbox.command();
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(template.get_args()).arg("--config").arg(&config);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
    cmd.stderr(std::fs::File::create(&log).unwrap());
    /// Stops the copy however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Running(cmd.spawn().unwrap());
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.0.stdout.take().unwrap()), &mut ready)
        .unwrap();
    assert!(ready.contains("\"event\":\"ready\""), "{ready}");

    let outside = tempfile::tempdir().unwrap();
    let exe_link = outside.path().join("exe-link");
    std::os::unix::fs::symlink("/proc/self/exe", &exe_link).unwrap();
    let before = (std::fs::read(&exe).unwrap(), std::fs::read(&config).unwrap());
    for (path, expected) in [
        (exe_link.clone(), "robind's executable"),
        (exe.clone(), "robind's executable"),
        (log.clone(), "robind's standard error"),
        (config.clone(), "configuration file"),
        (sandbox.runtime_dir().join("copy.db"), "holds live data"),
        (PathBuf::from("/dev/stderr"), "belong to the kernel or a process"),
        (PathBuf::from("/proc/self/exe"), "belong to the kernel or a process"),
    ] {
        let (message, code) = refusal(&call(&sandbox, "backup", json!({"path": path, "overwrite": true})));
        assert!(message.contains(expected), "{}: {message}", path.display());
        assert_eq!(code, -32602, "{message}");
    }
    assert_eq!((std::fs::read(&exe).unwrap(), std::fs::read(&config).unwrap()), before);
    let text = std::fs::read_to_string(&log).expect("the log is still text");
    assert!(text.contains("ready"), "{text}");
}
