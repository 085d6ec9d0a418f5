//! Encrypted backups of a key directory.
//!
//! The whole directory (current keys and `retired/` sets) is packed, then
//! sealed with XChaCha20-Poly1305 under a key derived from a passphrase with
//! Argon2id. The header (format, KDF parameters, salt, nonce) is
//! authenticated as associated data, so any change to the file, or a wrong
//! passphrase, fails authentication. Restoring decrypts into a staging
//! directory, checks that the keys load and pair, and only then installs them.
//!
//! ```text
//! magic "FZK-BAK1" | m_cost u32 | t_cost u32 | p_cost u32 | salt 16 | nonce 24 | length u64 | ciphertext
//! plaintext: "FZKBAKP1" | count u32 | count x (path_len u16 | path | mode u32 | len u64 | bytes)
//! ```

use std::path::{Component, Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"FZK-BAK1";
const PLAIN_MAGIC: &[u8; 8] = b"FZKBAKP1";
const HEADER_LEN: usize = 8 + 12 + 16 + 24 + 8;
/// Largest backup read (key directories are a few hundred KiB).
const MAX_BACKUP_LEN: u64 = 256 << 20;
const MAX_ENTRIES: u32 = 10_000;
const MAX_PATH_LEN: usize = 512;
/// Shortest passphrase accepted for a new backup.
pub const MIN_PASSPHRASE_LEN: usize = 12;

/// Argon2id cost for new backups: 64 MiB, 3 passes, 1 lane (~0.3 s here).
const M_COST_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;

/// A backup or restore failure, named for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the passphrase must be at least {MIN_PASSPHRASE_LEN} characters")]
    WeakPassphrase,
    #[error("no passphrase given (give --passphrase-file FILE, or the passphrase as the first line of standard input)")]
    NoPassphrase,
    #[error("the two passphrases do not match; nothing was written")]
    PassphraseMismatch,
    #[error("cancelled at the passphrase prompt; nothing was written")]
    Cancelled,
    #[error("{0} is not a fabstir key backup, or it is truncated")]
    NotABackup(PathBuf),
    #[error("cannot decrypt {0}: wrong passphrase, or the backup is damaged")]
    Authentication(PathBuf),
    #[error("backup content is malformed: {0}")]
    Malformed(String),
    #[error("{0} already holds keys; restore over them with --force (they are moved aside, not deleted)")]
    Exists(PathBuf),
    #[error("the restored keys do not check out: {0}")]
    Keys(#[from] fabstir_zk::KeyError),
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the passphrase is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passphrase {
    /// Setting it, for a new backup: asked twice on a terminal.
    New,
    /// Entering it, to decrypt a backup: asked once.
    Existing,
}

/// Reads the passphrase: the first line of `file`; else, when standard
/// input is a terminal, at a prompt on standard error without echo (a new
/// one twice, refusing a mismatch; Ctrl-C cancels); else the first line of
/// standard input (for scripts: `cat pass | fabstir-node keys backup ...`).
pub fn read_passphrase(
    file: Option<&Path>,
    purpose: Passphrase,
) -> Result<Zeroizing<String>, BackupError> {
    let line = match file {
        Some(path) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
            Zeroizing::new(text.lines().next().unwrap_or("").to_string())
        }
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            return prompt_passphrase(purpose);
        }
        None => read_stdin_line()?,
    };
    non_empty(line)
}

/// The line without its line ending; an empty one is no passphrase.
fn non_empty(line: Zeroizing<String>) -> Result<Zeroizing<String>, BackupError> {
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if trimmed.is_empty() {
        return Err(BackupError::NoPassphrase);
    }
    Ok(trimmed)
}

fn read_stdin_line() -> Result<Zeroizing<String>, BackupError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(io(Path::new("<stdin>")))?;
    Ok(line)
}

/// The interactive prompt(s) on a terminal.
fn prompt_passphrase(purpose: Passphrase) -> Result<Zeroizing<String>, BackupError> {
    match purpose {
        Passphrase::Existing => non_empty(terminal::read_hidden("Backup passphrase: ")?),
        Passphrase::New => {
            let first = non_empty(terminal::read_hidden(&format!(
                "New backup passphrase (at least {MIN_PASSPHRASE_LEN} characters): "
            ))?)?;
            // Refuse a short one before asking again.
            if first.chars().count() < MIN_PASSPHRASE_LEN {
                return Err(BackupError::WeakPassphrase);
            }
            let second = non_empty(terminal::read_hidden("Repeat the passphrase: ")?)?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                first.as_bytes(),
                second.as_bytes(),
            )) {
                return Err(BackupError::PassphraseMismatch);
            }
            Ok(first)
        }
    }
}

/// Reading a line from the terminal on standard input without echo.
#[cfg(unix)]
mod terminal {
    use std::io::Write;
    use std::path::Path;

    use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
    use zeroize::Zeroizing;

    use super::{io, BackupError};

    /// Puts the terminal's saved modes back, also on an early return.
    struct Restore(Termios);

    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
        }
    }

    /// Ctrl-C: ends the line (VEOL) instead of killing the process with
    /// echo still off.
    const CTRL_C: u8 = 0x03;

    /// Shows `prompt` on standard error and reads one line from the
    /// terminal with echo off (the Enter still moves to the next line).
    pub fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, BackupError> {
        let stdin = std::io::stdin();
        let tty_error = |e: rustix::io::Errno| BackupError::Io {
            path: Path::new("<terminal>").to_path_buf(),
            source: e.into(),
        };
        let saved = termios::tcgetattr(&stdin).map_err(tty_error)?;
        let mut quiet = saved.clone();
        quiet
            .local_modes
            .remove(LocalModes::ECHO | LocalModes::ISIG);
        quiet
            .local_modes
            .insert(LocalModes::ICANON | LocalModes::ECHONL);
        quiet.special_codes[SpecialCodeIndex::VEOL] = CTRL_C;
        // Flush: what was typed before the prompt (and echoed) is dropped.
        termios::tcsetattr(&stdin, OptionalActions::Flush, &quiet).map_err(tty_error)?;
        let restore = Restore(saved);
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "{prompt}");
        let _ = stderr.flush();
        let read = read_line(&stdin);
        drop(restore);
        let line = read?;
        if line.last() == Some(&CTRL_C) {
            let _ = writeln!(stderr);
            return Err(BackupError::Cancelled);
        }
        if line.last() != Some(&b'\n') {
            // End of input (Ctrl-D): no newline was echoed.
            let _ = writeln!(stderr);
        }
        let text = std::str::from_utf8(&line).map_err(|_| BackupError::Io {
            path: Path::new("<terminal>").to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the passphrase is not UTF-8",
            ),
        })?;
        Ok(Zeroizing::new(text.to_string()))
    }

    /// One line from the terminal, read with `read(2)` (unbuffered: in
    /// canonical mode a read ends at Enter, Ctrl-C (VEOL) or Ctrl-D).
    fn read_line(stdin: &std::io::Stdin) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        let mut line = Zeroizing::new(Vec::new());
        let mut chunk = Zeroizing::new([0u8; 512]);
        loop {
            let n = match rustix::io::read(stdin, chunk.as_mut()) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io(Path::new("<stdin>"))(e.into())),
            };
            line.extend_from_slice(&chunk[..n]);
            if n == 0 || matches!(line.last(), Some(b'\n') | Some(&CTRL_C)) {
                return Ok(line);
            }
            if line.len() > 4096 {
                return Err(BackupError::Io {
                    path: Path::new("<terminal>").to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "the passphrase line is longer than 4096 bytes",
                    ),
                });
            }
        }
    }
}

/// Without termios: the line is read as typed (echoed).
#[cfg(not(unix))]
mod terminal {
    use zeroize::Zeroizing;

    use super::BackupError;

    pub fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, BackupError> {
        eprint!("{prompt}");
        super::read_stdin_line()
    }
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| BackupError::Kdf(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| BackupError::Kdf(e.to_string()))?;
    Ok(key)
}

/// Every regular file under `dir`, as (relative path with `/`, mode, bytes).
fn collect(dir: &Path) -> Result<Vec<(String, u32, Vec<u8>)>, BackupError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let absolute = dir.join(&relative);
        let mut entries: Vec<_> = std::fs::read_dir(&absolute)
            .map_err(io(&absolute))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let rel = relative.join(&name);
            // Staging and scratch directories are not part of the key set.
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = std::fs::symlink_metadata(entry.path()).map_err(io(&entry.path()))?;
            if meta.is_dir() {
                stack.push(rel);
            } else if meta.is_file() {
                #[cfg(unix)]
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.permissions().mode() & 0o777
                };
                #[cfg(not(unix))]
                let mode = 0o400;
                let bytes = std::fs::read(entry.path()).map_err(io(&entry.path()))?;
                let path = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((path, mode, bytes));
            }
        }
    }
    Ok(out)
}

/// Writes an encrypted backup of `dir` to `out` (a new file, mode 0400).
/// Returns the number of files backed up.
pub fn backup(dir: &Path, out: &Path, passphrase: &str) -> Result<usize, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(BackupError::WeakPassphrase);
    }
    // Refuse to back up keys that do not load: a backup must restore.
    fabstir_zk::KeySet::load(dir)?;
    let files = collect(dir)?;
    let mut plain = Zeroizing::new(Vec::new());
    plain.extend_from_slice(PLAIN_MAGIC);
    plain.extend_from_slice(&(files.len() as u32).to_be_bytes());
    for (path, mode, bytes) in &files {
        plain.extend_from_slice(&(path.len() as u16).to_be_bytes());
        plain.extend_from_slice(path.as_bytes());
        plain.extend_from_slice(&mode.to_be_bytes());
        plain.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        plain.extend_from_slice(bytes);
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let key = derive_key(passphrase, &salt, M_COST_KIB, T_COST, P_COST)?;
    let ciphertext_len = plain.len() as u64 + 16;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    for v in [M_COST_KIB, T_COST, P_COST] {
        header.extend_from_slice(&v.to_be_bytes());
    }
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    header.extend_from_slice(&ciphertext_len.to_be_bytes());
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &header,
            },
        )
        .map_err(|_| BackupError::Kdf("encryption failed".into()))?;
    let mut file_bytes = header;
    file_bytes.extend_from_slice(&ciphertext);
    fabstir_zk::fsutil::write_new(out, &file_bytes, 0o400).map_err(file_error)?;
    Ok(files.len())
}

/// A file-system failure from the shared helpers, as a backup error (not as
/// a key check failure).
fn file_error(e: fabstir_zk::KeyError) -> BackupError {
    match e {
        fabstir_zk::KeyError::Io { path, source } => BackupError::Io { path, source },
        fabstir_zk::KeyError::Exists { path } => BackupError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists; refusing to overwrite",
            ),
        },
        other => BackupError::Keys(other),
    }
}

/// A safe relative path inside the key directory.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let candidate = PathBuf::from(path);
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && candidate
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !path.split('/').any(|part| part.starts_with('.'));
    ok.then_some(candidate)
}

/// Decrypts and unpacks a backup into (path, mode, bytes) entries.
fn open_backup(
    input: &Path,
    passphrase: &str,
) -> Result<Vec<(PathBuf, u32, Vec<u8>)>, BackupError> {
    let meta = std::fs::metadata(input).map_err(io(input))?;
    if meta.len() > MAX_BACKUP_LEN || (meta.len() as usize) < HEADER_LEN + 16 {
        return Err(BackupError::NotABackup(input.to_path_buf()));
    }
    let bytes = std::fs::read(input).map_err(io(input))?;
    let (header, ciphertext) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err(BackupError::NotABackup(input.to_path_buf()));
    }
    let u32_at =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (m, t, p) = (u32_at(8), u32_at(12), u32_at(16));
    // Bound the KDF cost a file can demand (1 GiB, 10 passes, 8 lanes).
    if m > (1 << 20) || t > 10 || p > 8 {
        return Err(BackupError::Malformed(
            "key derivation parameters out of range".into(),
        ));
    }
    let salt = &header[20..36];
    let nonce = &header[36..60];
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[60..68]);
    if u64::from_be_bytes(len) != ciphertext.len() as u64 {
        return Err(BackupError::NotABackup(input.to_path_buf()));
    }
    let key = derive_key(passphrase, salt, m, t, p)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: header,
                },
            )
            .map_err(|_| BackupError::Authentication(input.to_path_buf()))?,
    );
    parse_entries(&plain)
}

fn parse_entries(plain: &[u8]) -> Result<Vec<(PathBuf, u32, Vec<u8>)>, BackupError> {
    let malformed = |what: &str| BackupError::Malformed(what.to_string());
    let mut rest = plain
        .strip_prefix(PLAIN_MAGIC.as_slice())
        .ok_or_else(|| malformed("bad inner magic"))?;
    let mut take = |n: usize| -> Result<&[u8], BackupError> {
        if rest.len() < n {
            return Err(malformed("truncated entry"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| malformed("count"))?);
    if count > MAX_ENTRIES {
        return Err(malformed("too many entries"));
    }
    let mut entries = Vec::new();
    for _ in 0..count {
        let path_len =
            u16::from_be_bytes(take(2)?.try_into().map_err(|_| malformed("path length"))?) as usize;
        let path = std::str::from_utf8(take(path_len)?)
            .map_err(|_| malformed("path is not UTF-8"))?
            .to_string();
        let path = safe_relative(&path).ok_or_else(|| malformed("unsafe path"))?;
        let mode = u32::from_be_bytes(take(4)?.try_into().map_err(|_| malformed("mode"))?) & 0o777;
        let len = u64::from_be_bytes(take(8)?.try_into().map_err(|_| malformed("length"))?);
        let bytes = take(usize::try_from(len).map_err(|_| malformed("length"))?)?.to_vec();
        entries.push((path, mode, bytes));
    }
    Ok(entries)
}

/// Whether `dir` holds any key file.
fn holds_keys(dir: &Path) -> bool {
    fabstir_zk::keystore::files::ALL
        .iter()
        .chain(std::iter::once(&fabstir_zk::keystore::files::RETIRED))
        .any(|name| std::fs::symlink_metadata(dir.join(name)).is_ok())
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub files: usize,
    pub vk_id: String,
    pub host_id: String,
    /// Where the keys it replaced were moved (with `--force`).
    pub replaced: Option<PathBuf>,
}

/// Restores a backup into `dir`: decrypt, unpack into a staging directory
/// beside it, check that the keys load and pair, then install. Existing keys
/// are only replaced with `force`, and are moved aside rather than deleted.
pub fn restore(
    input: &Path,
    dir: &Path,
    passphrase: &str,
    force: bool,
) -> Result<Restored, BackupError> {
    if holds_keys(dir) && !force {
        return Err(BackupError::Exists(dir.to_path_buf()));
    }
    let entries = open_backup(input, passphrase)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keys".into());
    let seconds = crate::store::now_ms() / 1000;
    let staging = parent.join(format!(".{name}.restore-{seconds}"));
    if std::fs::symlink_metadata(&staging).is_ok() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let result = (|| {
        fabstir_zk::fsutil::create_private_dir(&staging).map_err(file_error)?;
        for (path, mode, bytes) in &entries {
            let target = staging.join(path);
            if let Some(parent) = target.parent() {
                fabstir_zk::fsutil::create_private_dir(parent).map_err(file_error)?;
            }
            fabstir_zk::fsutil::write_new(&target, bytes, *mode).map_err(file_error)?;
        }
        let keys = fabstir_zk::KeySet::load(&staging)?;
        let (_, failed) = fabstir_zk::keystore::load_retired_verifiers(&staging);
        if let Some((path, e)) = failed.into_iter().next() {
            return Err(BackupError::Malformed(format!(
                "retired keys {}: {e}",
                path.display()
            )));
        }
        Ok(keys)
    })();
    let keys = match result {
        Ok(keys) => keys,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let mut replaced = None;
    if std::fs::symlink_metadata(dir).is_ok() {
        if holds_keys(dir) {
            let aside = parent.join(format!("{name}.replaced-{seconds}"));
            std::fs::rename(dir, &aside).map_err(io(dir))?;
            replaced = Some(aside);
        } else {
            std::fs::remove_dir(dir).map_err(io(dir))?;
        }
    }
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    Ok(Restored {
        files: entries.len(),
        vk_id: keys.manifest.vk_id.to_string(),
        host_id: keys.manifest.host_id.to_string(),
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("keys");
        fabstir_zk::KeySet::generate(&dir, &fabstir_zk::SrsSource::InsecureDev, rand::rngs::OsRng)
            .unwrap();
        (temp, dir)
    }

    const PASS: &str = "correct horse battery staple";

    #[test]
    fn backup_restore_round_trip_preserves_files_and_modes() {
        let (temp, dir) = keys();
        let out = temp.path().join("keys.bak");
        let count = backup(&dir, &out, PASS).unwrap();
        assert_eq!(count, 5);
        let target = temp.path().join("restored");
        let restored = restore(&out, &target, PASS, false).unwrap();
        assert_eq!(restored.files, 5);
        for name in fabstir_zk::keystore::files::ALL {
            assert_eq!(
                std::fs::read(dir.join(name)).unwrap(),
                std::fs::read(target.join(name)).unwrap(),
                "{name}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&target.join("host.key")), 0o400);
            assert_eq!(mode(&target.join("proving.key")), 0o400);
            assert_eq!(mode(&out), 0o400);
        }
        fabstir_zk::KeySet::load(&target).unwrap();
    }

    #[test]
    fn wrong_passphrase_and_any_flipped_byte_fail_authentication() {
        let (temp, dir) = keys();
        let out = temp.path().join("keys.bak");
        backup(&dir, &out, PASS).unwrap();
        let target = temp.path().join("restored");
        assert!(matches!(
            restore(&out, &target, "wrong passphrase!!", false),
            Err(BackupError::Authentication(_))
        ));
        let original = std::fs::read(&out).unwrap();
        // Header fields (salt, nonce, KDF parameters) and ciphertext alike.
        for at in [8, 20, 40, 70, original.len() / 2, original.len() - 1] {
            let mut bad = original.clone();
            bad[at] ^= 0x01;
            let path = temp.path().join(format!("bad-{at}.bak"));
            std::fs::write(&path, &bad).unwrap();
            let err = restore(&path, &target, PASS, false).unwrap_err();
            assert!(
                matches!(
                    err,
                    BackupError::Authentication(_)
                        | BackupError::Malformed(_)
                        | BackupError::NotABackup(_)
                ),
                "byte {at}: {err}"
            );
        }
        assert!(!target.exists(), "nothing is installed from a bad backup");
        let truncated = temp.path().join("short.bak");
        std::fs::write(&truncated, &original[..original.len() - 10]).unwrap();
        assert!(matches!(
            restore(&truncated, &target, PASS, false),
            Err(BackupError::NotABackup(_))
        ));
    }

    #[test]
    fn restoring_over_existing_keys_needs_force_and_moves_them_aside() {
        let (temp, dir) = keys();
        let out = temp.path().join("keys.bak");
        backup(&dir, &out, PASS).unwrap();
        let (_other_temp, other) = keys();
        assert!(matches!(
            restore(&out, &other, PASS, false),
            Err(BackupError::Exists(_))
        ));
        let before = std::fs::read(other.join("host.key")).unwrap();
        let restored = restore(&out, &other, PASS, true).unwrap();
        let aside = restored.replaced.expect("old keys moved aside");
        assert_eq!(std::fs::read(aside.join("host.key")).unwrap(), before);
        assert_eq!(
            std::fs::read(other.join("host.key")).unwrap(),
            std::fs::read(dir.join("host.key")).unwrap()
        );
    }

    #[test]
    fn weak_passphrase_is_refused() {
        let (temp, dir) = keys();
        assert!(matches!(
            backup(&dir, &temp.path().join("x.bak"), "short"),
            Err(BackupError::WeakPassphrase)
        ));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for path in ["../x", "/etc/passwd", "a/../../b", ".hidden", "", "a/./b"] {
            assert!(safe_relative(path).is_none(), "{path}");
        }
        assert!(safe_relative("retired/0123-1/host.key").is_some());
    }
}
