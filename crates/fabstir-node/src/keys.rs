//! KeyManager: the node's keys, loaded once and shared across threads,
//! reloadable for rotation without failing requests in flight.
//!
//! Provers take an `Arc` of the current key set for the duration of a proof,
//! so a reload swaps the set for new work while old work finishes with the
//! old keys. Verifying keys are kept by `vk_id`, so proofs made before a
//! rotation still verify.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use fabstir_zk::{
    BatchSize, BatchVerifyingKey, Digest32, KeyError, KeySet, Srs, SrsSource, SrsTrust,
    VerifyingKey, VkId,
};

/// Why the keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("production mode needs existing keys in {0} (create them with `fabstir-node keygen --keys-dir {0} --srs FILE --srs-sha256 HEX`)")]
    Missing(String),
    #[error("production mode refuses the insecure development SRS in {0}; generate keys from a ceremony SRS")]
    InsecureSrs(String),
    #[error("key directory {dir} (named by {named_by}) {problem}: create the keys with `fabstir-node keygen --keys-dir {dir}` (or restore a backup there), or fix {named_by} if the path is wrong; only the default key directory DATA_DIR/keys is created on first start")]
    NotFound {
        /// The directory.
        dir: String,
        /// The setting that named it: `--keys-dir`, `environment variable FABSTIR_KEYS_DIR`, ...
        named_by: String,
        /// `does not exist`, or `holds no keys (no keys.json)`.
        problem: &'static str,
    },
    /// The node's chain refuses the new keys (see [`KeyManager::guard_reloads`]).
    #[error("key reload refused: {0}; the previous keys stay in use")]
    Refused(String),
}

/// Checks a key set a reload would install; `Err` says why it must not be
/// (for instance: the marketplace knows the node by another `host_id`).
pub type ReloadGuard = Box<dyn Fn(&KeySet) -> Result<(), String> + Send + Sync>;

/// The node's keys.
pub struct KeyManager {
    dir: PathBuf,
    current: RwLock<Arc<KeySet>>,
    verifiers: RwLock<HashMap<VkId, VerifyingKey>>,
    guard: RwLock<Option<ReloadGuard>>,
    /// Batch verifying keys derived so far, by (current vk_id, batch size).
    batch_verifiers: Mutex<HashMap<(VkId, usize), Arc<BatchVerifyingKey>>>,
    /// Held while a batch key is derived, so concurrent requests for a new
    /// size derive it once.
    batch_keygen: Mutex<()>,
    /// The ceremony parameters file the keys were made from, for batch keys
    /// larger than the key directory's SRS gives.
    batch_srs: Option<PathBuf>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// Loads the default key directory (`DATA_DIR/keys`). Outside production
    /// a missing directory is created with the insecure development SRS
    /// (reported loudly by the caller); in production missing keys and a
    /// development SRS are refused. Returns whether keys were created.
    pub fn open(dir: &Path, production: bool) -> Result<(Self, bool), KeysError> {
        Self::open_configured(dir, production, None)
    }

    /// Loads the key directory the configuration gives. `named_by` is the
    /// setting that named it (`None`: the default directory, see
    /// [`KeyManager::open`]). A named directory without keys is refused,
    /// never created: a mistyped path must not give the node a new identity.
    pub fn open_configured(
        dir: &Path,
        production: bool,
        named_by: Option<&str>,
    ) -> Result<(Self, bool), KeysError> {
        if let Some(named_by) = named_by {
            Self::check_named(dir, named_by)?;
        }
        let manifest = dir.join(fabstir_zk::keystore::files::MANIFEST);
        let mut created = false;
        let keys = if std::fs::symlink_metadata(&manifest).is_ok() {
            KeySet::load(dir)?
        } else if production {
            return Err(KeysError::Missing(dir.display().to_string()));
        } else {
            created = true;
            KeySet::generate(dir, &SrsSource::InsecureDev, rand::rngs::OsRng)?
        };
        if production && keys.manifest.srs.trust == SrsTrust::InsecureDev {
            return Err(KeysError::InsecureSrs(dir.display().to_string()));
        }
        let mut verifiers = retired_verifiers(dir);
        insert_key_set(&mut verifiers, &keys);
        Ok((
            Self {
                dir: dir.to_path_buf(),
                current: RwLock::new(Arc::new(keys)),
                verifiers: RwLock::new(verifiers),
                guard: RwLock::new(None),
                batch_verifiers: Mutex::new(HashMap::new()),
                batch_keygen: Mutex::new(()),
                batch_srs: None,
            },
            created,
        ))
    }

    /// Refuses a key directory named by the setting `named_by` that holds no
    /// keys (cheap: `serve` checks it before touching the data directory).
    pub fn check_named(dir: &Path, named_by: &str) -> Result<(), KeysError> {
        let manifest = dir.join(fabstir_zk::keystore::files::MANIFEST);
        if std::fs::symlink_metadata(&manifest).is_ok() {
            return Ok(());
        }
        let problem = if std::fs::symlink_metadata(dir).is_ok() {
            "holds no keys (no keys.json)"
        } else {
            "does not exist"
        };
        Err(KeysError::NotFound {
            dir: dir.display().to_string(),
            named_by: named_by.to_string(),
            problem,
        })
    }

    /// The key set new work uses.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The verifying key with this id, current or retired.
    pub fn verifier(&self, id: &VkId) -> Option<VerifyingKey> {
        self.verifiers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Uses `file`, the ceremony parameters file the keys were made from,
    /// for batch keys larger than the key directory's SRS gives (see
    /// [`batch_verifying_key`]).
    pub fn with_batch_srs(mut self, file: Option<PathBuf>) -> Self {
        self.batch_srs = file;
        self
    }

    /// The batch verifying key of `size` for the current key set
    /// ([`batch_verifying_key`], with the ceremony file if one was given):
    /// derived on first use (seconds at the larger sizes; call it off the
    /// async runtime) and kept.
    pub fn batch_verifier(&self, size: BatchSize) -> Result<Arc<BatchVerifyingKey>, KeyError> {
        let current = self.current();
        let slot = (current.manifest.vk_id, size.get());
        let cached = || {
            self.batch_verifiers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&slot)
                .cloned()
        };
        if let Some(vk) = cached() {
            return Ok(vk);
        }
        let _deriving = self.batch_keygen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(vk) = cached() {
            return Ok(vk);
        }
        let vk = Arc::new(batch_verifying_key(
            &current.srs,
            &current.manifest.srs.source_sha256,
            self.batch_srs.as_deref(),
            size,
        )?);
        self.batch_verifiers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot, Arc::clone(&vk));
        Ok(vk)
    }

    /// Ids of every verifying key held.
    pub fn verifier_ids(&self) -> Vec<VkId> {
        self.verifiers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every later reload first passes `guard`, and is refused (the old
    /// keys stay in use) when it fails. A node serving a chain uses it: the
    /// marketplace knows the node by its `host_id` and `vk_id`, which keys
    /// cannot change under it.
    pub fn guard_reloads(&self, guard: ReloadGuard) {
        *self.guard.write().unwrap_or_else(|p| p.into_inner()) = Some(guard);
    }

    /// Reloads the key directory (after a rotation). The old verifying key
    /// stays available. Returns the new current `vk_id`.
    pub fn reload(&self, production: bool) -> Result<VkId, KeysError> {
        let keys = KeySet::load(&self.dir)?;
        if production && keys.manifest.srs.trust == SrsTrust::InsecureDev {
            return Err(KeysError::InsecureSrs(self.dir.display().to_string()));
        }
        if let Some(guard) = self
            .guard
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            guard(&keys).map_err(KeysError::Refused)?;
        }
        let id = keys.manifest.vk_id;
        let mut verifiers = retired_verifiers(&self.dir);
        insert_key_set(&mut verifiers, &keys);
        self.verifiers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(verifiers);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(id)
    }
}

/// Every verifying key of a key set: the current version's and those of
/// older circuit versions derived from its SRS (so that proofs made before
/// the upgrade to circuit version 2 still verify).
fn insert_key_set(verifiers: &mut HashMap<VkId, VerifyingKey>, keys: &KeySet) {
    for vk in keys.verifying_keys() {
        verifiers.insert(vk.id(), vk.clone());
    }
}

/// The batch verifying key of `size` for a key set whose SRS is `srs`:
/// from that SRS when it is large enough, or the development SRS rebuilt at
/// any size ([`BatchVerifyingKey::for_key_srs`]); else, for keys made from a
/// ceremony SRS (a key directory stores it cut to 2^7 rows), from
/// `ceremony_file`, the parameters file they were made from, checked against
/// the key set's pin `source_sha256`. The node (`POST /v1/verify`) and the
/// CLI (`verify --batch`, `keys export-vk --batch-size`) both derive here.
pub fn batch_verifying_key(
    srs: &Arc<Srs>,
    source_sha256: &Digest32,
    ceremony_file: Option<&Path>,
    size: BatchSize,
) -> Result<BatchVerifyingKey, KeyError> {
    match (BatchVerifyingKey::for_key_srs(srs, size), ceremony_file) {
        (Err(KeyError::BatchSrs { .. }), Some(file)) => {
            let ceremony = Srs::load_ceremony_at(file, source_sha256, size.k())?;
            BatchVerifyingKey::derive(Arc::new(ceremony), size)
        }
        (derived, _) => derived,
    }
}

/// Verifying keys of the retired key sets (after rotations), by id, with
/// those of older circuit versions derived from each set's SRS. A retired
/// set that does not load is reported and skipped: it must not stop the node.
fn retired_verifiers(dir: &Path) -> HashMap<VkId, VerifyingKey> {
    let (loaded, failed) = fabstir_zk::keystore::load_retired_verifiers(dir);
    for (path, e) in failed {
        tracing::error!(path = %path.display(), error = %e, "cannot load retired verifying key");
    }
    let mut verifiers = HashMap::new();
    for (vk, manifest) in loaded {
        match vk.older_versions() {
            Ok(older) => verifiers.extend(older.into_iter().map(|vk| (vk.id(), vk))),
            Err(e) => {
                tracing::error!(vk_id = %manifest.vk_id, error = %e, "cannot derive older verifying keys")
            }
        }
        verifiers.insert(manifest.vk_id, vk);
    }
    verifiers
}
