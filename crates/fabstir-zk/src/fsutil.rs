//! File helpers for key material: create-new with a mode, private
//! directories, bounded reads, permission checks on secrets. Public so the
//! node's backups use the same rules.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::KeyError;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` with `mode` (never overwriting an existing file), writes
/// `bytes` and syncs them to disk. On a write failure the partial file is
/// removed, so a later attempt can create it again.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if let Err(source) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(KeyError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Reads `file` (at `path`) to its end, refusing more than `limit` bytes
/// before anything is allocated for them.
fn read_open(file: std::fs::File, path: &Path, limit: u64) -> Result<Vec<u8>, KeyError> {
    let len = file.metadata().map_err(io_error(path))?.len();
    if len > limit {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
            len,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > limit {
        // The file grew while it was read.
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Reads a file of at most `limit` bytes; a larger file is refused before
/// anything is allocated for it.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, KeyError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    read_open(file, path, limit)
}

/// Reads a secret file of at most `limit` bytes: it must be a regular file
/// that group and others cannot access, checked on the open handle, so the
/// file checked is the file read.
pub fn read_secret(path: &Path, limit: u64) -> Result<Vec<u8>, KeyError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let metadata = file.metadata().map_err(io_error(path))?;
    if !metadata.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_mode(path, &metadata)?;
    read_open(file, path, limit)
}

fn check_mode(path: &Path, metadata: &std::fs::Metadata) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
    Ok(())
}

/// Refuses a secret file that group or others can read or write.
pub fn check_secret_permissions(path: &Path) -> Result<(), KeyError> {
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    check_mode(path, &metadata)
}

/// Creates `dir` (and its parents) with mode 0700, and tightens an existing
/// one to 0700 (an existing directory keeps its mode on create).
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_error(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error(dir))?;
    }
    Ok(())
}
