//! The data directory: one node at a time (an exclusive lock held for the
//! node's lifetime), and the bearer token that guards the admin routes.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "node.lock";

/// Name of the admin token file created in the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// Environment variable that can hold the admin token itself.
pub const TOKEN_ENV: &str = "FABSTIR_ADMIN_TOKEN";

/// Shortest admin token accepted from a file or the environment.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{} is not a directory; --data-dir must name a directory (it is created if missing)", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot create the data directory {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {} is in use by another node (pid {pid}); stop it or choose another --data-dir", path.display())]
    Locked { path: PathBuf, pid: String },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token: {0}")]
    Token(String),
}

/// An exclusive lock on a data directory, released when dropped (or when
/// the process ends, however it ends). The lock file holds the holder's PID.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the data directory (mode 0700) if needed and takes its lock;
    /// fails, naming the holder's PID, when another process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, DataDirError> {
        if dir.exists() && !dir.is_dir() {
            return Err(DataDirError::NotADirectory(dir.to_path_buf()));
        }
        fabstir_zk::fsutil::create_private_dir(dir).map_err(|e| DataDirError::Create {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = dir.join(LOCK_FILE);
        let lock_error = |source| DataDirError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.take(32).read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(DataDirError::Locked {
                    path: dir.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.into()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        file.set_len(0).map_err(lock_error)?;
        file.seek(SeekFrom::Start(0)).map_err(lock_error)?;
        writeln!(file, "{}", std::process::id()).map_err(lock_error)?;
        file.sync_all().map_err(lock_error)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bearer token of the admin routes (and, in production, of every
/// state-changing route). Compared in constant time; never printed.
pub struct AdminToken {
    digest: [u8; 32],
    /// Where it came from, for the start-up line (never the token itself).
    pub source: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl AdminToken {
    /// A token with this value.
    pub fn new(token: &str, source: impl Into<String>) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
            source: source.into(),
        }
    }

    /// Whether `candidate` is the token (constant time in its content).
    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(self.digest.ct_eq(&digest))
    }

    /// The token from `file` (mode 0400/0600: not readable by group or
    /// others), else from [`TOKEN_ENV`], else from `DATA_DIR/admin.token`,
    /// created (0400, 32 random bytes in hex) on first start.
    pub fn load(file: Option<&Path>, data_dir: &Path) -> Result<Self, DataDirError> {
        if let Some(path) = file {
            return read_token_file(path);
        }
        if let Ok(value) = std::env::var(TOKEN_ENV) {
            let value = Zeroizing::new(value);
            let token = value.trim();
            check_token(token, TOKEN_ENV)?;
            return Ok(Self::new(
                token,
                format!("environment variable {TOKEN_ENV}"),
            ));
        }
        let path = data_dir.join(TOKEN_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            let token = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
            fabstir_zk::fsutil::write_new(&path, format!("{}\n", token.as_str()).as_bytes(), 0o400)
                .map_err(|e| DataDirError::Token(e.to_string()))?;
            tracing::info!(path = %path.display(), "created the admin token file");
        }
        read_token_file(&path)
    }
}

fn check_token(token: &str, what: &str) -> Result<(), DataDirError> {
    if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(DataDirError::Token(format!(
            "{what} must hold at least {MIN_TOKEN_LEN} printable characters without spaces"
        )));
    }
    Ok(())
}

fn read_token_file(path: &Path) -> Result<AdminToken, DataDirError> {
    let token_error = |e: fabstir_zk::KeyError| DataDirError::Token(e.to_string());
    fabstir_zk::fsutil::check_secret_permissions(path).map_err(token_error)?;
    let bytes = Zeroizing::new(fabstir_zk::fsutil::read_bounded(path, 1024).map_err(token_error)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| DataDirError::Token(format!("{} is not UTF-8 text", path.display())))?;
    let token = text.trim();
    check_token(token, &path.display().to_string())?;
    Ok(AdminToken::new(token, path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        match DataDirLock::acquire(&data) {
            Err(DataDirError::Locked { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(&data).expect("free again once dropped");
    }

    #[test]
    fn a_file_is_not_a_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            DataDirLock::acquire(&file),
            Err(DataDirError::NotADirectory(_))
        ));
    }

    #[test]
    fn token_is_created_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = AdminToken::load(None, dir.path()).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o400);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let token = text.trim();
        assert_eq!(token.len(), 64);
        assert!(first.matches(token));
        assert!(!first.matches(&token[1..]));
        assert!(!first.matches(""));
        let again = AdminToken::load(None, dir.path()).unwrap();
        assert!(again.matches(token), "the file is reused, not replaced");
        assert!(!format!("{first:?}").contains(token));
    }

    #[test]
    fn token_files_must_be_private_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        fabstir_zk::fsutil::write_new(&short, b"abc\n", 0o400).unwrap();
        assert!(AdminToken::load(Some(&short), dir.path()).is_err());
        let open = dir.path().join("open");
        fabstir_zk::fsutil::write_new(&open, b"0123456789abcdef0123\n", 0o644).unwrap();
        assert!(AdminToken::load(Some(&open), dir.path()).is_err());
        let good = dir.path().join("good");
        fabstir_zk::fsutil::write_new(&good, b"0123456789abcdef0123\n", 0o600).unwrap();
        let token = AdminToken::load(Some(&good), dir.path()).unwrap();
        assert!(token.matches("0123456789abcdef0123"));
    }
}
