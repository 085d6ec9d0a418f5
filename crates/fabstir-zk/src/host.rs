//! The host's secret key `sk` and its public identity `host_id = Poseidon(sk)`.
//!
//! Only the holder of `sk` can prove for `host_id`, so another host cannot
//! claim the work. The key is never printed: `Debug` shows the host id only.

use std::fmt;
use std::path::Path;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::KeyError;
use crate::poseidon;
use crate::statement::{field_from_be, field_to_be, HostId};

const MAGIC: &[u8; 8] = b"FZK-HK1\0";
const FILE_LEN: usize = 8 + 32 + 4;

/// The host's secret key.
pub struct HostKey {
    sk: Fr,
}

impl HostKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: R) -> Self {
        Self {
            sk: Fr::random(rng),
        }
    }

    /// A key from a known secret (tests and deterministic fixtures only).
    pub fn from_secret(sk: Fr) -> Self {
        Self { sk }
    }

    /// The public identity.
    pub fn host_id(&self) -> HostId {
        HostId(poseidon::hash1(self.sk))
    }

    pub(crate) fn secret(&self) -> Fr {
        self.sk
    }

    /// The key file: magic, `sk` big-endian, and a 4-byte SHA-256 check.
    fn to_file_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FILE_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&field_to_be(&self.sk));
        let check = Sha256::digest(&out);
        out.extend_from_slice(&check[..4]);
        out
    }

    /// Writes a new key file with mode 0400 (never overwriting).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        crate::fsutil::write_new(path, &self.to_file_bytes(), 0o400)
    }

    /// Loads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        crate::fsutil::check_secret_permissions(path)?;
        let bytes = crate::fsutil::read_bounded(path, FILE_LEN as u64)?;
        let corrupt = |reason: &str| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() != FILE_LEN {
            return Err(corrupt("is not a host key file (wrong length)"));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("is not a host key file (bad magic)"));
        }
        if Sha256::digest(&bytes[..40])[..4] != bytes[40..] {
            return Err(corrupt("host key checksum does not match (file damaged)"));
        }
        let mut be = [0u8; 32];
        be.copy_from_slice(&bytes[8..40]);
        let sk = field_from_be(&be)
            .ok_or_else(|| corrupt("host key is not a canonical field element"))?;
        Ok(Self { sk })
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey(host_id={}, sk=<redacted>)", self.host_id())
    }
}

impl Drop for HostKey {
    fn drop(&mut self) {
        // Best-effort wipe; volatile so the store is not optimised away.
        unsafe { std::ptr::write_volatile(&mut self.sk, Fr::ZERO) };
    }
}
