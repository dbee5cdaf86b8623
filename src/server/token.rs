//! The API token: read from a file the user chose, or generated fresh at start.
//!
//! Runs before the loop starts (it reads and writes files).
//!
//! A token is a password for the whole API, so a token file is refused when another user
//! could read it or change it, or when the token is short enough to guess: a local user who
//! holds the token gets as far as the uid check lets them, and a remote one gets everything.
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be read, or it is empty.
    #[error("cannot read API token file {}", .path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
    /// The token file belongs to another user, or others may read or write it.
    #[error("API token file {} {reason}", .path.display())]
    Unsafe {
        /// The token file.
        path: PathBuf,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// The token is too short to keep anyone out.
    #[error(
        "the token in API token file {} is {chars} characters long; use at least {MIN_TOKEN_CHARS} \
         (for example: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE), or --generate-api-token",
        .path.display()
    )]
    TooShort {
        /// The token file.
        path: PathBuf,
        /// The token's length.
        chars: usize,
    },
    /// A fresh token could not be written.
    #[error("cannot write API token file {}", .path.display())]
    Write {
        /// The token file.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
}

/// The shortest token accepted from a file: 16 characters. A generated one has 64.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A token that `/ws` and `/api/1/*` require, and the file it lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// The secret itself.
    pub token: String,
    /// Where it is kept, for the ready line and `status`.
    pub file: PathBuf,
}

impl ApiToken {
    /// Reads the token from `path` (surrounding whitespace is ignored; empty is an error). The
    /// file must belong to robind's user and be readable and writable by nobody else, and the
    /// token must have at least [`MIN_TOKEN_CHARS`] characters.
    pub fn read(path: &Path) -> Result<ApiToken, TokenError> {
        let read_err = |source| TokenError::Read { path: path.to_path_buf(), source };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        // Checked on the open file, so that what is checked is what is read.
        check_private(path, &file.metadata().map_err(read_err)?)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_err)?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty")));
        }
        let chars = token.chars().count();
        if chars < MIN_TOKEN_CHARS {
            return Err(TokenError::TooShort { path: path.to_path_buf(), chars });
        }
        Ok(ApiToken { token, file: path.to_path_buf() })
    }

    /// Generates 256 random bits into `path` (a new file of mode 0600; an old token file is
    /// replaced, never written through, so a symlink planted there cannot redirect the write).
    /// The directory must exist and be private (see `ipc::secure_dir`).
    pub fn generate(path: &Path) -> Result<ApiToken, TokenError> {
        let write_err = |source| TokenError::Write { path: path.to_path_buf(), source };
        let token = random_token().map_err(write_err)?;
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(write_err(err)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        file.write_all(token.as_bytes()).map_err(write_err)?;
        Ok(ApiToken { token, file: path.to_path_buf() })
    }
}

/// A token file must be robind's user's own, and private to it.
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), TokenError> {
    let unsafe_file = |reason: String| TokenError::Unsafe { path: path.to_path_buf(), reason };
    let ours = rustix::process::geteuid().as_raw();
    if meta.uid() != ours {
        return Err(unsafe_file(format!(
            "belongs to uid {}, not to robind's uid {ours}, who can change the token; use a file of robind's \
             user (chmod 600), or --generate-api-token",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unsafe_file(format!(
            "can be read or written by other users (mode {mode:04o}); run chmod 600 {}",
            path.display()
        )));
    }
    Ok(())
}

/// 256 random bits from the kernel, as 64 hex digits.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_private_and_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("api-token");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path)?;
        let generated = ApiToken::generate(&path)?;
        assert!(!dir.path().join("elsewhere").exists(), "a planted symlink is replaced, not followed");
        assert_eq!(generated.token.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(ApiToken::read(&path)?, generated);
        std::fs::write(&path, "  \n")?;
        assert!(ApiToken::read(&path).unwrap_err().to_string().contains("cannot read API token file"));
        Ok(())
    }

    #[test]
    fn token_files_others_can_read_and_short_tokens_are_refused_with_the_fix()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("token");
        std::fs::write(&path, "secret-token-value-1234567890\n")?;
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            let err = ApiToken::read(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("run chmod 600 {}", path.display())), "{mode:o}: {err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        assert_eq!(ApiToken::read(&path)?.token, "secret-token-value-1234567890");
        std::fs::write(&path, "abc\n")?;
        let err = ApiToken::read(&path).unwrap_err().to_string();
        assert!(err.contains("is 3 characters long; use at least 16"), "{err}");
        Ok(())
    }
}
