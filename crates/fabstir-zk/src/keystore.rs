//! A key directory: everything a host needs to prove, and a verifier to verify.
//!
//! ```text
//! DIR/srs.params      KZG parameters sized for the circuit     0444
//! DIR/proving.key     proving key                              0400
//! DIR/verifying.key   verifying key                            0444
//! DIR/host.key        host secret key                          0400
//! DIR/keys.json       manifest: vk_id, host_id, SRS digest and trust level
//! ```
//!
//! The manifest is written last, so a directory without one is incomplete.
//! Nothing is ever overwritten.
//!
//! Keys on disk are of the current circuit version (2). The verifying keys of
//! older versions (1) are derived from the same SRS when a key set loads
//! ([`KeySet::older_verifying_keys`]), so proofs made before an upgrade
//! still verify. A key directory written for version 1 still loads as a
//! verifier ([`load_verifier`], retired sets) and can be rotated; proving
//! needs keys of the current version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::circuit::layout::K;
use crate::error::KeyError;
use crate::host::HostKey;
use crate::keys::{ProvingKey, VerifyingKey, VkId};
use crate::srs::{Srs, SrsTrust};
use crate::statement::{Digest32, HostId};
use crate::{CircuitVersion, CIRCUIT_VERSION};

/// File names inside a key directory.
pub mod files {
    /// KZG parameters.
    pub const SRS: &str = "srs.params";
    /// Proving key.
    pub const PROVING_KEY: &str = "proving.key";
    /// Verifying key.
    pub const VERIFYING_KEY: &str = "verifying.key";
    /// Host secret key.
    pub const HOST_KEY: &str = "host.key";
    /// Manifest.
    pub const MANIFEST: &str = "keys.json";
    /// Directory of retired key sets (one subdirectory each).
    pub const RETIRED: &str = "retired";
    /// Every file of a key set.
    pub const ALL: [&str; 5] = [SRS, PROVING_KEY, VERIFYING_KEY, HOST_KEY, MANIFEST];
}

/// Largest manifest read.
const MAX_MANIFEST_LEN: u64 = 64 * 1024;

/// Where the parameters come from.
#[derive(Debug, Clone)]
pub enum SrsSource {
    /// The insecure development parameters.
    InsecureDev,
    /// A ceremony file pinned by SHA-256.
    Ceremony {
        /// The parameters file.
        path: PathBuf,
        /// Its expected SHA-256.
        sha256: Digest32,
    },
    /// Parameters already loaded (rotation keeping the current SRS).
    Loaded(Arc<Srs>),
}

impl SrsSource {
    /// Loads or derives the parameters.
    pub fn load(&self) -> Result<Srs, KeyError> {
        match self {
            Self::InsecureDev => Ok(Srs::insecure_dev()),
            Self::Ceremony { path, sha256 } => Srs::load_ceremony(path, sha256),
            Self::Loaded(srs) => Ok(srs.as_ref().clone()),
        }
    }
}

/// Manifest of a key directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version (1).
    pub format: u32,
    /// Circuit version the keys were made for.
    pub circuit_version: u8,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Verifying key identity.
    pub vk_id: VkId,
    /// Host identity.
    pub host_id: HostId,
    /// The parameters.
    pub srs: SrsManifest,
}

/// Parameters section of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsManifest {
    /// Trust level.
    pub trust: SrsTrust,
    /// SHA-256 of `srs.params`.
    pub sha256: Digest32,
    /// SHA-256 of the file the parameters came from (the pinned ceremony file).
    pub source_sha256: Digest32,
}

/// A loaded key directory.
pub struct KeySet {
    /// Parameters.
    pub srs: Arc<Srs>,
    /// Proving key.
    pub proving_key: Arc<ProvingKey>,
    /// Host key.
    pub host_key: Arc<HostKey>,
    /// Manifest.
    pub manifest: Manifest,
    /// Verifying keys of the older circuit versions (version 1), derived
    /// from the same SRS, for proofs made before the upgrade.
    pub older_verifying_keys: Vec<VerifyingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl KeySet {
    /// Creates a key directory: parameters, keys and a fresh host key.
    /// Refuses to touch a directory that already holds any of the files.
    pub fn generate<R: RngCore + CryptoRng>(
        dir: &Path,
        source: &SrsSource,
        rng: R,
    ) -> Result<Self, KeyError> {
        Self::generate_with_host(dir, source, HostKey::generate(rng))
    }

    /// [`KeySet::generate`] with a given host key.
    pub fn generate_with_host(
        dir: &Path,
        source: &SrsSource,
        host_key: HostKey,
    ) -> Result<Self, KeyError> {
        for name in files::ALL {
            let path = dir.join(name);
            // symlink_metadata: a dangling symlink counts as present.
            if std::fs::symlink_metadata(&path).is_ok() {
                return Err(KeyError::Exists { path });
            }
        }
        crate::fsutil::create_private_dir(dir)?;
        let srs = Arc::new(source.load()?);
        let proving_key = ProvingKey::build(srs.clone())?;
        crate::fsutil::write_new(&dir.join(files::SRS), &srs.to_bytes(), 0o444)?;
        proving_key.write_new(&dir.join(files::PROVING_KEY))?;
        proving_key
            .verifying_key()
            .write_new(&dir.join(files::VERIFYING_KEY))?;
        host_key.write_new(&dir.join(files::HOST_KEY))?;
        let manifest = Manifest {
            format: 1,
            circuit_version: CIRCUIT_VERSION,
            k: K,
            vk_id: proving_key.vk_id(),
            host_id: host_key.host_id(),
            srs: SrsManifest {
                trust: srs.trust(),
                sha256: srs.sha256(),
                source_sha256: srs.source_sha256(),
            },
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| KeyError::Backend(e.to_string()))?;
        crate::fsutil::write_new(&dir.join(files::MANIFEST), &json, 0o444)?;
        sync_dir(dir);
        let older_verifying_keys = proving_key.verifying_key().older_versions()?;
        Ok(Self {
            srs,
            proving_key: Arc::new(proving_key),
            host_key: Arc::new(host_key),
            manifest,
            older_verifying_keys,
        })
    }

    /// Loads a key directory and checks that everything in it belongs
    /// together. Its keys must be of the current circuit version (a version
    /// 1 directory is refused with a hint to rotate it).
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let manifest = read_manifest(dir)?;
        if manifest.circuit_version != CIRCUIT_VERSION {
            return Err(KeyError::Corrupt {
                path: dir.join(files::MANIFEST),
                reason: format!(
                    "keys are for circuit version {}; this build proves version {CIRCUIT_VERSION}: rotate them \
                     (`fabstir-node keys rotate --keys-dir DIR`), the old verifying key stays usable for old proofs",
                    manifest.circuit_version
                ),
            });
        }
        let srs = load_srs(dir, &manifest)?;
        let proving_key = ProvingKey::load(&dir.join(files::PROVING_KEY), srs.clone())?;
        if proving_key.vk_id() != manifest.vk_id {
            return Err(KeyError::Pairing(format!(
                "{} has vk_id {}, the manifest names {}",
                files::PROVING_KEY,
                proving_key.vk_id(),
                manifest.vk_id
            )));
        }
        let host_key = HostKey::load(&dir.join(files::HOST_KEY))?;
        if host_key.host_id() != manifest.host_id {
            return Err(KeyError::Pairing(format!(
                "{} belongs to host {}, the manifest names {}",
                files::HOST_KEY,
                host_key.host_id(),
                manifest.host_id
            )));
        }
        let older_verifying_keys = proving_key.verifying_key().older_versions()?;
        Ok(Self {
            srs,
            proving_key: Arc::new(proving_key),
            host_key: Arc::new(host_key),
            manifest,
            older_verifying_keys,
        })
    }

    /// The verifying key (current circuit version).
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.proving_key.verifying_key()
    }

    /// Every verifying key of this key set: the current one first, then
    /// those of older circuit versions (same SRS).
    pub fn verifying_keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        std::iter::once(self.verifying_key()).chain(&self.older_verifying_keys)
    }
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Where the previous key set now lives.
    pub retired_dir: PathBuf,
    /// The previous verifying key's id.
    pub previous_vk_id: VkId,
    /// The previous host id.
    pub previous_host_id: HostId,
    /// The new key set.
    pub keys: KeySet,
}

impl KeySet {
    /// Replaces the key set in `dir` with a new one: keys from `source` (else
    /// the current SRS) and, with `new_host_key`, a new host key (else the
    /// current one). The new set is made and checked in a staging directory;
    /// then the current set moves to `dir/retired/<vk_id>-<unix time>/`, where
    /// its verifying key stays usable for proofs made before the rotation, and
    /// the new set takes its place. Every step is a rename, so an interruption
    /// leaves a complete set in `dir` or in the staging directory.
    pub fn rotate<R: RngCore + CryptoRng>(
        dir: &Path,
        source: Option<&SrsSource>,
        new_host_key: bool,
        rng: R,
    ) -> Result<Rotation, KeyError> {
        // Only what verification needs: a directory of an older circuit
        // version (which does not load for proving) can be rotated too.
        let (current_vk, current_manifest) = load_verifier(dir)?;
        let current_srs = current_vk.srs().clone();
        let staging = dir.join(".rotate-staging");
        if std::fs::symlink_metadata(&staging).is_ok() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        let host_key = if new_host_key {
            HostKey::generate(rng)
        } else {
            HostKey::load(&dir.join(files::HOST_KEY))?
        };
        let source = match source {
            Some(source) => source.clone(),
            None => SrsSource::Loaded(current_srs),
        };
        Self::generate_with_host(&staging, &source, host_key)?;
        let keys = Self::load(&staging)?;
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let id = current_manifest.vk_id.to_string();
        let retired_dir = dir
            .join(files::RETIRED)
            .join(format!("{}-{seconds}", &id[2..18]));
        crate::fsutil::create_private_dir(&retired_dir)?;
        for name in files::ALL {
            std::fs::rename(dir.join(name), retired_dir.join(name)).map_err(io(dir))?;
        }
        for name in files::ALL {
            std::fs::rename(staging.join(name), dir.join(name)).map_err(io(dir))?;
        }
        std::fs::remove_dir(&staging).map_err(io(&staging))?;
        sync_dir(&retired_dir);
        sync_dir(dir);
        Ok(Rotation {
            retired_dir,
            previous_vk_id: current_manifest.vk_id,
            previous_host_id: current_manifest.host_id,
            keys,
        })
    }
}

/// Retired key sets that loaded, and those that did not (with why).
pub type RetiredVerifiers = (Vec<(VerifyingKey, Manifest)>, Vec<(PathBuf, KeyError)>);

/// The verifying keys of every retired key set under `dir/retired/`, and the
/// retired directories that could not be loaded (with why).
pub fn load_retired_verifiers(dir: &Path) -> RetiredVerifiers {
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join(files::RETIRED)) else {
        return (loaded, failed);
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for retired in dirs {
        match load_verifier(&retired) {
            Ok(pair) => loaded.push(pair),
            Err(e) => failed.push((retired, e)),
        }
    }
    (loaded, failed)
}

/// Loads only what verification needs (no secret is read). The directory
/// may be of any circuit version this library verifies.
pub fn load_verifier(dir: &Path) -> Result<(VerifyingKey, Manifest), KeyError> {
    let manifest = read_manifest(dir)?;
    let srs = load_srs(dir, &manifest)?;
    let vk = VerifyingKey::load(&dir.join(files::VERIFYING_KEY), srs)?;
    if vk.version().as_u8() != manifest.circuit_version {
        return Err(KeyError::Pairing(format!(
            "{} is for circuit version {}, the manifest names {}",
            files::VERIFYING_KEY,
            vk.version(),
            manifest.circuit_version
        )));
    }
    if vk.id() != manifest.vk_id {
        return Err(KeyError::Pairing(format!(
            "{} has vk_id {}, the manifest names {}",
            files::VERIFYING_KEY,
            vk.id(),
            manifest.vk_id
        )));
    }
    Ok((vk, manifest))
}

/// Reads and checks the manifest (of any circuit version this library
/// verifies).
pub fn read_manifest(dir: &Path) -> Result<Manifest, KeyError> {
    let path = dir.join(files::MANIFEST);
    if !path.exists() {
        return Err(KeyError::Corrupt {
            path,
            reason: "missing: not a key directory, or key generation did not finish (run keygen into an empty directory)".into(),
        });
    }
    let bytes = crate::fsutil::read_bounded(&path, MAX_MANIFEST_LEN)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| KeyError::Corrupt {
        path: path.clone(),
        reason: format!("invalid manifest: {e}"),
    })?;
    if manifest.format != 1 {
        return Err(KeyError::Corrupt {
            path,
            reason: format!("manifest format {} is not supported", manifest.format),
        });
    }
    if CircuitVersion::from_u8(manifest.circuit_version).is_none() || manifest.k != K {
        return Err(KeyError::Corrupt {
            path,
            reason: format!(
                "keys are for circuit version {} (k = {}); this build has versions 1 to {CIRCUIT_VERSION} (k = {K})",
                manifest.circuit_version, manifest.k
            ),
        });
    }
    Ok(manifest)
}

fn load_srs(dir: &Path, manifest: &Manifest) -> Result<Arc<Srs>, KeyError> {
    Srs::load_stored(
        &dir.join(files::SRS),
        &manifest.srs.sha256,
        manifest.srs.trust,
        manifest.srs.source_sha256,
    )
    .map(Arc::new)
}

/// Makes the new directory entries durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}
