//! Opening one connection: key, verification, pragmas. Runs on the blocking pool only.
use std::fmt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use zeroize::{Zeroize, Zeroizing};

use super::{Error, Options, Result, Synchronous};

/// A database password. Zeroed when dropped, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of the text (the caller's copy is moved, not cloned).
    pub fn new(text: String) -> Password {
        Password(Zeroizing::new(text))
    }

    /// `PRAGMA key = '...'` with `'` doubled, as SQL string literals need; zeroed on drop.
    fn key_pragma(&self) -> Zeroizing<String> {
        let mut sql = Zeroizing::new(String::with_capacity(self.0.len() + 20));
        sql.push_str("PRAGMA key = '");
        for c in self.0.chars() {
            if c == '\'' {
                sql.push('\'');
            }
            sql.push(c);
        }
        sql.push_str("';");
        sql
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Password) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl From<String> for Password {
    fn from(mut text: String) -> Password {
        let password = Password::new(text.clone());
        text.zeroize();
        password
    }
}

/// Whether connections are for writing or reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Writer,
    Reader,
}

/// Opens, keys and verifies one connection, then applies the pragmas. Verification comes
/// before any pragma that writes (journal_mode), so a wrong password changes nothing on disk.
pub(crate) fn open(
    path: &Path,
    password: Option<&Password>,
    options: &Options,
    role: Role,
) -> Result<Connection> {
    crate::runtime::assert_off_loop("opening a SQLite connection");
    let open_err = |source| Error::Open { path: path.to_path_buf(), source };
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    if let Some(password) = password {
        let version: Option<String> = conn.query_row("PRAGMA cipher_version", [], |row| row.get(0)).ok();
        if version.is_none_or(|v| v.is_empty()) {
            return Err(Error::NoEncryption);
        }
        // SQLCipher logs a wrong key as "hmac check failed" on stderr, which reads like data
        // corruption to a user; the error we return (and our log line) says what it means.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;").map_err(open_err)?;
        conn.execute_batch(&password.key_pragma()).map_err(open_err)?;
    }
    // The first read decrypts page 1: this is where a wrong key shows.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0)) {
        Ok(_) => {}
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(match password {
                Some(_) => {
                    log::warn!(
                        "wrong password for {}: SQLCipher could not decrypt page 1 (its 'hmac check failed')",
                        path.display()
                    );
                    Error::WrongPassword(path.to_path_buf())
                }
                None => Error::PasswordNeeded(path.to_path_buf()),
            });
        }
        Err(err) => return Err(open_err(err)),
    }
    conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
    let mut pragmas = format!(
        "PRAGMA foreign_keys = ON; PRAGMA cache_size = -{}; PRAGMA synchronous = {};",
        if password.is_some() { options.encrypted_cache_kib } else { options.cache_kib },
        match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    );
    if role == Role::Writer {
        pragmas.push_str("PRAGMA journal_mode = WAL;");
    }
    conn.execute_batch(&pragmas).map_err(open_err)?;
    Ok(conn)
}

/// The default time a statement waits on a lock held by another connection.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_in_the_key_pragma() {
        let password = Password::new("it's".into());
        assert_eq!(password.key_pragma().as_str(), "PRAGMA key = 'it''s';");
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
