//! The host's Ethereum wallet: a secp256k1 key that signs proof-of-work claims.
//!
//! The key comes from a file the operator protects (mode 0400), from the
//! `HOST_PRIVATE_KEY` environment variable, or is generated. The key never
//! leaves this type: `Debug` shows only the address, and errors never quote
//! key material.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use k256::ecdsa::{SigningKey, VerifyingKey};
use k256::elliptic_curve::rand_core::{CryptoRng, RngCore};
use k256::elliptic_curve::zeroize::Zeroizing;
use thiserror::Error;

use super::abi::eip191_digest;

/// Environment variable read by [`HostWallet::from_env`].
pub const HOST_KEY_ENV: &str = "HOST_PRIVATE_KEY";

/// Largest key file [`HostWallet::load`] accepts, in bytes.
///
/// A key file is 66 characters plus a newline; the bound keeps a wrong path
/// (a log, a device) from being read whole into memory.
pub const MAX_KEY_FILE_LEN: u64 = 256;

/// Why a text private key was rejected. Never contains key material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyFormatError {
    /// Not exactly 64 hex digits after an optional `0x`.
    #[error(
        "private key must be 64 hex digits (32 bytes), optionally prefixed with 0x; found {found} characters"
    )]
    Length {
        /// Number of characters found after the optional `0x` prefix.
        found: usize,
    },
    /// Right length but not all hex digits.
    #[error("private key must contain only hex digits 0-9, a-f, A-F")]
    NotHex,
    /// The all-zero key, which has no public key.
    #[error("private key is zero, which is not a valid secp256k1 key; generate a new key")]
    Zero,
    /// A value at or above the secp256k1 group order.
    #[error(
        "private key is not below the secp256k1 group order, so it is not a valid key; generate a new key"
    )]
    OutOfRange,
}

/// Errors loading, storing or parsing the host wallet's key.
#[derive(Debug, Error)]
pub enum WalletError {
    /// A private key given as text (e.g. to [`HostWallet::from_hex`]) is malformed.
    #[error("invalid private key: {0}")]
    InvalidKey(#[from] KeyFormatError),
    /// The key file's content is malformed.
    #[error("invalid key file {}: {source}", path.display())]
    InvalidKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its content.
        #[source]
        source: KeyFormatError,
    },
    /// The environment variable holding the key is malformed.
    #[error("invalid private key in environment variable {var}: {source}")]
    InvalidEnvKey {
        /// The variable's name.
        var: String,
        /// What is wrong with its value.
        #[source]
        source: KeyFormatError,
    },
    /// The environment variable is set but is not valid Unicode.
    #[error(
        "environment variable {var} is not valid UTF-8; it must hold 0x followed by 64 hex digits"
    )]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The key file can be read by its group or by others.
    #[error(
        "key file {} has mode {mode:04o}, which lets other users read the host key; run `chmod 0400 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// The key file is larger than [`MAX_KEY_FILE_LEN`].
    #[error(
        "key file {} is larger than {max} bytes, so it is not a key file (expected 0x followed by 64 hex digits)",
        path.display()
    )]
    KeyFileTooLarge {
        /// The key file.
        path: PathBuf,
        /// The limit, [`MAX_KEY_FILE_LEN`].
        max: u64,
    },
    /// The key path names something other than a regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// [`HostWallet::write_new`] refuses to replace an existing file.
    #[error("key file {} already exists; refusing to overwrite a key (move it away or choose another path)", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// Any other I/O failure on the key file.
    #[error("cannot {action} key file {}: {source}", path.display())]
    Io {
        /// What was being done: "read" or "create".
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The host's secp256k1 signing key and its Ethereum address.
///
/// Signs proof-of-work messages with EIP-191 `personal_sign`, producing the
/// 65-byte `r || s || v` signatures the marketplace contract checks with
/// `ecrecover`. The key is zeroized on drop (by `k256`).
#[derive(Clone)]
pub struct HostWallet {
    key: SigningKey,
    address: [u8; 20],
}

impl HostWallet {
    /// A new random key drawn from `rng` (use a cryptographic RNG such as
    /// `rand::rngs::OsRng`).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self::from_signing_key(SigningKey::random(rng))
    }

    /// Parses a private key written as 64 hex digits, with or without a `0x`
    /// prefix (either case). Rejects zero and values not below the curve order.
    pub fn from_hex(text: &str) -> Result<Self, WalletError> {
        Ok(Self::parse_key(text)?)
    }

    /// Reads the key from the environment variable [`HOST_KEY_ENV`]
    /// (`HOST_PRIVATE_KEY`).
    ///
    /// Returns `Ok(None)` when it is unset or empty, so the caller can fall
    /// back to a key file; an invalid value is an error rather than silently
    /// ignored.
    pub fn from_env() -> Result<Option<Self>, WalletError> {
        Self::from_env_value(HOST_KEY_ENV, std::env::var_os(HOST_KEY_ENV))
    }

    /// [`Self::from_env`] given the variable's value (testable without
    /// touching the process environment).
    fn from_env_value(var: &str, value: Option<OsString>) -> Result<Option<Self>, WalletError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value =
            Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| WalletError::EnvNotUnicode {
                        var: var.to_owned(),
                    })?,
            );
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        Self::parse_key(trimmed)
            .map(Some)
            .map_err(|source| WalletError::InvalidEnvKey {
                var: var.to_owned(),
                source,
            })
    }

    /// Loads the key from a file holding `0x` followed by 64 hex digits
    /// (the `0x` is optional) and an optional trailing newline.
    ///
    /// Refuses a file that its group or others may access (any bit of
    /// `0o077` set) and a file larger than [`MAX_KEY_FILE_LEN`] bytes.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WalletError> {
        let path = path.as_ref();
        let content = Zeroizing::new(
            fabstir_zk::fsutil::read_secret(path, MAX_KEY_FILE_LEN)
                .map_err(|e| file_error(path, "read", e))?,
        );
        let invalid = |source| WalletError::InvalidKeyFile {
            path: path.to_owned(),
            source,
        };
        // Non-UTF-8 content cannot be hex: report it as such.
        let text = std::str::from_utf8(&content).map_err(|_| invalid(KeyFormatError::NotHex))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(text);
        Self::parse_key(text).map_err(invalid)
    }

    /// Writes this wallet's key to a new file at `path` (as `0x` + 64 hex
    /// digits and a newline) with mode 0400, ready for [`Self::load`].
    ///
    /// Never overwrites: fails with [`WalletError::AlreadyExists`] if `path`
    /// exists. The file is synced before returning; on a write failure the
    /// partial file is removed.
    pub fn write_new(&self, path: impl AsRef<Path>) -> Result<(), WalletError> {
        let path = path.as_ref();
        let mut text = Zeroizing::new(String::with_capacity(67));
        text.push_str("0x");
        text.push_str(&hex::encode(self.key.to_bytes()));
        text.push('\n');
        fabstir_zk::fsutil::write_new(path, text.as_bytes(), 0o400)
            .map_err(|e| file_error(path, "create", e))
    }

    /// The wallet's 20-byte Ethereum address: the last 20 bytes of the
    /// Keccak-256 of the uncompressed public key (without its `0x04` tag).
    pub fn address(&self) -> [u8; 20] {
        self.address
    }

    /// The address as an EIP-55 mixed-case checksummed string (`0x…`), the
    /// form to show operators and to compare against explorers.
    pub fn address_checksummed(&self) -> String {
        to_checksum_address(&self.address)
    }

    /// Signs a 32-byte message with EIP-191 `personal_sign`: the ECDSA
    /// signature over `keccak256("\x19Ethereum Signed Message:\n32" || message)`.
    ///
    /// Returns `r (32) || s (32) || v (1)` with `s` in the lower half of the
    /// curve order (as Ethereum requires) and `v = 27 + recovery id` (27 or
    /// 28), the layout `ecrecover`/OpenZeppelin's `ECDSA.recover` accept.
    /// Signing is deterministic (RFC 6979).
    pub fn sign_personal(&self, message32: &[u8; 32]) -> [u8; 65] {
        use alloy::signers::SignerSync as _;
        let digest = alloy::primitives::B256::from(eip191_digest(message32));
        let signature = self
            .signer()
            .sign_hash_sync(&digest)
            .expect("signing a 32-byte prehash with a local key cannot fail");
        // alloy's signer returns low-s; normalise anyway (flipping the parity
        // to match) so the guarantee does not rest on that detail.
        let signature = signature.normalize_s().unwrap_or(signature);
        // r || s || v with v = 27 + parity.
        signature.as_bytes()
    }

    /// The key as an alloy signer, for signing transactions (the key stays
    /// in memory only; alloy's signer zeroizes it on drop too).
    pub fn signer(&self) -> alloy::signers::local::PrivateKeySigner {
        alloy::signers::local::PrivateKeySigner::from_signing_key(self.key.clone())
    }

    fn from_signing_key(key: SigningKey) -> Self {
        let address = address_of(key.verifying_key());
        Self { key, address }
    }

    fn parse_key(text: &str) -> Result<Self, KeyFormatError> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        let found = digits.chars().count();
        if found != 64 {
            return Err(KeyFormatError::Length { found });
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, bytes.as_mut()).map_err(|_| KeyFormatError::NotHex)?;
        if bytes.iter().all(|&b| b == 0) {
            return Err(KeyFormatError::Zero);
        }
        let key = SigningKey::from_bytes(bytes.as_ref().into())
            .map_err(|_| KeyFormatError::OutOfRange)?;
        Ok(Self::from_signing_key(key))
    }
}

impl fmt::Debug for HostWallet {
    /// Shows the address only: the key must never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostWallet")
            .field("address", &self.address_checksummed())
            .finish_non_exhaustive()
    }
}

/// The wallet's error for a failure of the shared file helpers.
fn file_error(path: &Path, action: &'static str, e: fabstir_zk::KeyError) -> WalletError {
    use fabstir_zk::KeyError;
    let path = path.to_owned();
    match e {
        KeyError::Permissions { mode, .. } => WalletError::InsecurePermissions { path, mode },
        KeyError::Exists { .. } => WalletError::AlreadyExists { path },
        KeyError::NotAFile { .. } => WalletError::NotAFile { path },
        KeyError::TooLarge { limit, .. } => WalletError::KeyFileTooLarge { path, max: limit },
        KeyError::Io { source, .. } => WalletError::Io {
            action,
            path,
            source,
        },
        other => WalletError::Io {
            action,
            path,
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// The Ethereum address of a secp256k1 public key (alloy's derivation).
fn address_of(key: &VerifyingKey) -> [u8; 20] {
    alloy::primitives::Address::from_public_key(key).0 .0
}

/// EIP-55 checksummed hex form of an address (alloy's).
pub fn to_checksum_address(address: &[u8; 20]) -> String {
    alloy::primitives::Address::from(*address).to_checksum(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId as SecpRecoveryId};
    use secp256k1::{Message, SECP256K1};
    use std::os::unix::fs::PermissionsExt as _;

    /// secp256k1 group order n, and n / 2 (the low-s bound).
    const ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    const HALF_ORDER: [u8; 32] = [
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b,
        0x20, 0xa0,
    ];
    const KEY_HEX: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    /// Recovers the signer with libsecp256k1 (not k256) from the EIP-191
    /// digest, computed here by hand.
    fn recover_with_libsecp(message: &[u8; 32], signature: &[u8; 65]) -> Option<[u8; 20]> {
        let mut prefixed = b"\x19Ethereum Signed Message:\n32".to_vec();
        prefixed.extend_from_slice(message);
        let digest = *alloy_primitives::keccak256(&prefixed);
        let recid = SecpRecoveryId::try_from(i32::from(signature[64]) - 27).ok()?;
        let sig = RecoverableSignature::from_compact(&signature[..64], recid).ok()?;
        let msg = Message::from_digest(digest);
        let key = SECP256K1.recover_ecdsa(msg, &sig).ok()?;
        // libsecp256k1 rejects high-s signatures in verification.
        SECP256K1.verify_ecdsa(msg, &sig.to_standard(), &key).ok()?;
        let uncompressed = key.serialize_uncompressed();
        let hash = alloy_primitives::keccak256(&uncompressed[1..]);
        Some(hash[12..].try_into().unwrap())
    }

    #[test]
    fn known_keys_have_known_addresses() {
        let one = format!("0x{:064x}", 1);
        let wallet = HostWallet::from_hex(&one).unwrap();
        assert_eq!(
            wallet.address_checksummed(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        let wallet = HostWallet::from_hex(KEY_HEX).unwrap();
        assert_eq!(
            wallet.address_checksummed(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
        let upper = format!("0X{}", KEY_HEX.to_uppercase());
        assert_eq!(
            HostWallet::from_hex(&upper).unwrap().address(),
            wallet.address()
        );
    }

    #[test]
    fn eip55_vectors() {
        for expected in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let mut address = [0u8; 20];
            hex::decode_to_slice(&expected[2..], &mut address).unwrap();
            assert_eq!(to_checksum_address(&address), expected);
        }
    }

    #[test]
    fn signatures_recover_with_libsecp256k1() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut seen_v = [false; 2];
        for _ in 0..8 {
            let wallet = HostWallet::generate(&mut rng);
            for _ in 0..40 {
                let message: [u8; 32] = rng.gen();
                let signature = wallet.sign_personal(&message);
                let v = signature[64];
                assert!(v == 27 || v == 28, "v = {v}");
                seen_v[usize::from(v - 27)] = true;
                assert!(signature[32..64] <= HALF_ORDER[..], "high s");
                assert_ne!(signature[32..64], [0u8; 32]);
                assert_eq!(
                    recover_with_libsecp(&message, &signature),
                    Some(wallet.address())
                );
                // Deterministic.
                assert_eq!(wallet.sign_personal(&message), signature);

                let mut other = message;
                other[usize::from(message[0]) % 32] ^= 0x01;
                assert_ne!(
                    recover_with_libsecp(&other, &signature),
                    Some(wallet.address())
                );
            }
        }
        assert_eq!(seen_v, [true, true], "both recovery ids should occur");
    }

    #[test]
    fn signature_equals_libsecp256k1_rfc6979_signature() {
        // Both implement RFC 6979 with low-s, so the bytes must be identical.
        let wallet = HostWallet::from_hex(KEY_HEX).unwrap();
        let secret = secp256k1::SecretKey::from_byte_array(
            hex::decode(KEY_HEX).unwrap().try_into().unwrap(),
        )
        .unwrap();
        for i in 0..20u8 {
            let message = [i; 32];
            let digest = eip191_digest(&message);
            let (recid, compact) = SECP256K1
                .sign_ecdsa_recoverable(Message::from_digest(digest), &secret)
                .serialize_compact();
            let ours = wallet.sign_personal(&message);
            assert_eq!(ours[..64], compact[..]);
            assert_eq!(i32::from(ours[64]) - 27, i32::from(recid));
        }
    }

    #[test]
    fn from_hex_rejects_malformed_keys() {
        use KeyFormatError::*;
        let err = |s: &str| match HostWallet::from_hex(s) {
            Err(WalletError::InvalidKey(e)) => e,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(err(""), Length { found: 0 });
        assert_eq!(err("0x"), Length { found: 0 });
        assert_eq!(err(&KEY_HEX[..63]), Length { found: 63 });
        assert_eq!(err(&format!("{KEY_HEX}0")), Length { found: 65 });
        assert_eq!(err(&format!("0x{KEY_HEX} ")), Length { found: 65 });
        assert_eq!(err(&format!("g{}", &KEY_HEX[1..])), NotHex);
        // 64 characters, but not 64 hex digits.
        assert_eq!(err(&format!("é{}", &KEY_HEX[1..])), NotHex);
        assert_eq!(err(&"0".repeat(64)), Zero);
        assert_eq!(err(ORDER), OutOfRange);
        assert_eq!(err(&"f".repeat(64)), OutOfRange);
        // n - 1 is the largest valid key.
        let n_minus_1 = format!("{}40", &ORDER[..62]);
        HostWallet::from_hex(&n_minus_1).unwrap();
        // Messages never quote the key.
        let message = HostWallet::from_hex(&format!("{KEY_HEX}00"))
            .unwrap_err()
            .to_string();
        assert!(!message.contains(KEY_HEX), "{message}");
    }

    #[test]
    fn debug_shows_address_not_key() {
        let wallet = HostWallet::from_hex(KEY_HEX).unwrap();
        let debug = format!("{wallet:?} {wallet:#?}");
        assert!(!debug.to_lowercase().contains(KEY_HEX), "{debug}");
        assert!(debug.contains("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"));
    }

    #[test]
    fn key_file_round_trip_mode_0400_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
        wallet.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o400);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 67);
        assert!(text.starts_with("0x") && text.ends_with('\n'));
        assert_eq!(HostWallet::load(&path).unwrap().address(), wallet.address());

        let other = HostWallet::generate(&mut rand::rngs::OsRng);
        assert!(matches!(
            other.write_new(&path),
            Err(WalletError::AlreadyExists { .. })
        ));
        // The original key is untouched.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    /// Writes `content` to a new file in `dir` with `mode`.
    fn key_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn load_rejects_group_or_world_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let content = format!("0x{KEY_HEX}\n");
        for mode in [0o644, 0o640, 0o604, 0o610, 0o601] {
            let path = key_file(dir.path(), &format!("k{mode:o}"), content.as_bytes(), mode);
            match HostWallet::load(&path) {
                Err(WalletError::InsecurePermissions { mode: found, .. }) => {
                    assert_eq!(found, mode)
                }
                other => panic!("{mode:o}: {other:?}"),
            }
        }
        let path = key_file(dir.path(), "open", content.as_bytes(), 0o644);
        let message = HostWallet::load(&path).unwrap_err().to_string();
        assert!(message.contains("chmod 0400"), "{message}");
        assert!(message.contains("0644"), "{message}");
        // Owner-only modes are accepted, with or without 0x and newline.
        for (name, content, mode) in [
            ("a", format!("0x{KEY_HEX}\n"), 0o600),
            ("b", KEY_HEX.to_string(), 0o400),
            ("c", format!("0x{KEY_HEX}\r\n"), 0o400),
        ] {
            let path = key_file(dir.path(), name, content.as_bytes(), mode);
            assert_eq!(
                HostWallet::load(&path).unwrap().address_checksummed(),
                "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
            );
        }
    }

    #[test]
    fn load_rejects_malformed_files() {
        use KeyFormatError::*;
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, KeyFormatError)> = vec![
            ("empty", b"".to_vec(), Length { found: 0 }),
            (
                "short",
                format!("0x{}\n", &KEY_HEX[..62]).into_bytes(),
                Length { found: 62 },
            ),
            (
                "long",
                format!("0x{KEY_HEX}ab\n").into_bytes(),
                Length { found: 66 },
            ),
            (
                "two-newlines",
                format!("0x{KEY_HEX}\n\n").into_bytes(),
                Length { found: 65 },
            ),
            (
                "nonhex",
                format!("0x{}zz\n", &KEY_HEX[..62]).into_bytes(),
                NotHex,
            ),
            ("binary", vec![0xff; 66], NotHex),
            ("zero", format!("0x{}\n", "0".repeat(64)).into_bytes(), Zero),
            ("order", format!("0x{ORDER}\n").into_bytes(), OutOfRange),
        ];
        for (name, content, expected) in cases {
            let path = key_file(dir.path(), name, &content, 0o400);
            match HostWallet::load(&path) {
                Err(WalletError::InvalidKeyFile { source, path: p }) => {
                    assert_eq!(source, expected, "{name}");
                    assert_eq!(p, path);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let big = key_file(dir.path(), "big", &[b'0'; 257], 0o400);
        assert!(matches!(
            HostWallet::load(&big),
            Err(WalletError::KeyFileTooLarge { max: 256, .. })
        ));
        assert!(matches!(
            HostWallet::load(dir.path().join("missing")),
            Err(WalletError::Io { action: "read", .. })
        ));
        assert!(matches!(
            HostWallet::load(dir.path()),
            Err(WalletError::NotAFile { .. })
        ));
    }

    #[test]
    fn env_value_parsing() {
        let var = HOST_KEY_ENV;
        assert!(HostWallet::from_env_value(var, None).unwrap().is_none());
        assert!(HostWallet::from_env_value(var, Some("".into()))
            .unwrap()
            .is_none());
        assert!(HostWallet::from_env_value(var, Some("  \n".into()))
            .unwrap()
            .is_none());
        let wallet = HostWallet::from_env_value(var, Some(format!("0x{KEY_HEX}\n").into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            wallet.address_checksummed(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
        match HostWallet::from_env_value(var, Some("0x1234".into())) {
            Err(e @ WalletError::InvalidEnvKey { .. }) => {
                assert!(e.to_string().contains("HOST_PRIVATE_KEY"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        {
            use std::os::unix::ffi::OsStringExt as _;
            let bad = OsString::from_vec(vec![0xff, 0xfe]);
            assert!(matches!(
                HostWallet::from_env_value(var, Some(bad)),
                Err(WalletError::EnvNotUnicode { .. })
            ));
        }
    }
}
