//! The key directory's record of the marketplaces its `host_id` is
//! registered with (written by `chain register` and by `serve` once its
//! start-up checks passed), so that `keys rotate --new-host-key` can tell
//! that a new host key would lock the node out of them.

/// The file in a key directory that lists the marketplaces its `host_id`
/// is registered with.
pub const REGISTRATIONS_FILE: &str = "chain-registrations.json";

/// One registration of a key directory's `host_id` on a marketplace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    pub chain_id: u64,
    /// EIP-55 checksummed.
    pub marketplace: String,
    /// The host wallet, EIP-55 checksummed.
    pub wallet: String,
    /// `0x` + 64 hex digits.
    pub host_id: String,
}

/// The registrations recorded in `keys_dir` (none when the file is missing
/// or unreadable).
pub fn registrations(keys_dir: &std::path::Path) -> Vec<Registration> {
    std::fs::read(keys_dir.join(REGISTRATIONS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds `registration` to `keys_dir`'s list (once), replacing the file
/// atomically (mode 0600: it holds no secret, but lives among secrets).
pub fn record_registration(
    keys_dir: &std::path::Path,
    registration: &Registration,
) -> std::io::Result<()> {
    let mut list = registrations(keys_dir);
    if list.contains(registration) {
        return Ok(());
    }
    list.push(registration.clone());
    let path = keys_dir.join(REGISTRATIONS_FILE);
    let staging = keys_dir.join(format!(".{REGISTRATIONS_FILE}.tmp"));
    let _ = std::fs::remove_file(&staging);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&staging)?;
    std::io::Write::write_all(
        &mut file,
        serde_json::to_string_pretty(&list)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    file.sync_all()?;
    std::fs::rename(&staging, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_recorded_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(registrations(dir.path()).is_empty());
        let registration = Registration {
            chain_id: 31337,
            marketplace: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512".into(),
            wallet: "0xDe72E1Ac5C5100cc1108B933e99295075F558877".into(),
            host_id: format!("0x{}", "11".repeat(32)),
        };
        record_registration(dir.path(), &registration).unwrap();
        record_registration(dir.path(), &registration).unwrap();
        assert_eq!(registrations(dir.path()), vec![registration]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(REGISTRATIONS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
