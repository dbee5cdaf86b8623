//! The API token: read from a file the user chose, or generated fresh at start.
//!
//! Runs before the loop starts (it reads and writes files).
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// A token that `/ws` and `/api/1/*` require, and the file it lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// The secret itself.
    pub token: String,
    /// Where it is kept, for the ready line and `status`.
    pub file: PathBuf,
}

impl ApiToken {
    /// Reads the token from `path` (surrounding whitespace is ignored; empty is an error).
    pub fn read(path: &Path) -> Result<ApiToken, TokenError> {
        let read_err = |source| TokenError::Read { path: path.to_path_buf(), source };
        let token = std::fs::read_to_string(path).map_err(read_err)?.trim().to_string();
        if token.is_empty() {
            return Err(read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty")));
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
}
