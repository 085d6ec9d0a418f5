//! Key files, KZG parameter files, key directories and host keys: every
//! header field, every way a file can be damaged or belong elsewhere, file
//! modes, and the `MAX_DEGREE` environment check.
//!
//! Tests that run halo2 take `shared()`; the one that changes `MAX_DEGREE`
//! takes `exclusive()`, so no other test in this binary sees the variable.

use crate::common;

use std::fmt::Debug;
use std::fs;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::{host, sample_result};
use fabstir_zk::circuit::layout::K;
use fabstir_zk::keys::KEY_FORMAT_VERSION;
use fabstir_zk::keystore::{files, load_verifier, read_manifest};
use fabstir_zk::srs::MAX_SRS_K;
use fabstir_zk::CircuitVersion;
use fabstir_zk::{
    Digest32, HostId, HostKey, KeyError, KeySet, Manifest, ProofEnvelope, ProvingKey, Srs,
    SrsSource, SrsTrust, VerifyError, VerifyingKey, VkId, CIRCUIT_VERSION,
};
use halo2_axiom::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_axiom::halo2curves::group::Curve;
use halo2_axiom::poly::commitment::ParamsProver;
use halo2_axiom::poly::kzg::commitment::ParamsKZG;
use halo2_axiom::SerdeFormat;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

static KEY_LOCK: RwLock<()> = RwLock::new(());

/// Held by every test that runs halo2 (key generation, loading, proving).
fn shared() -> RwLockReadGuard<'static, ()> {
    KEY_LOCK.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by the tests that change the process environment.
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    KEY_LOCK.write().unwrap_or_else(PoisonError::into_inner)
}

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh path that does not exist yet.
    fn fresh(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "fabstir-zk-keys-test-{}-{n}-{label}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }

    /// A fresh, empty, existing directory.
    fn create(label: &str) -> Self {
        let dir = Self::fresh(label);
        fs::create_dir_all(&dir.0).unwrap();
        dir
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a file with exactly `mode` (whatever the umask).
fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = options.open(path).unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    drop(file);
    chmod(path, mode);
}

/// Rewrites a file in place (making it writable for the moment), keeping its mode.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mode = mode_of(path);
    chmod(path, 0o600);
    let mut bytes = fs::read(path).unwrap();
    edit(&mut bytes);
    fs::write(path, &bytes).unwrap();
    chmod(path, mode);
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    rewrite(&dir.join(files::MANIFEST), |bytes| {
        let mut json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        edit(&mut json);
        *bytes = serde_json::to_vec_pretty(&json).unwrap();
    });
}

/// Names, content digests and modes of a directory's entries (symlinks not followed).
fn snapshot(dir: &Path) -> Vec<(String, String, u32)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let content = if meta.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else {
                sha256_hex(&fs::read(&path).unwrap())
            };
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                content,
                meta.permissions().mode() & 0o7777,
            )
        })
        .collect();
    entries.sort();
    entries
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(Sha256::digest(bytes)))
}

const ALL_FILES: [&str; 5] = [
    files::SRS,
    files::PROVING_KEY,
    files::VERIFYING_KEY,
    files::HOST_KEY,
    files::MANIFEST,
];

/// One key directory generated under the development SRS, captured in memory
/// (contents and modes) and removed from disk.
struct Generated {
    files: Vec<(&'static str, Vec<u8>, u32)>,
    dir_mode: u32,
    manifest: Manifest,
    vk_id: VkId,
    host_id: HostId,
}

impl Generated {
    fn bytes(&self, name: &str) -> &[u8] {
        &self.files.iter().find(|(n, _, _)| *n == name).unwrap().1
    }

    fn mode(&self, name: &str) -> u32 {
        self.files.iter().find(|(n, _, _)| *n == name).unwrap().2
    }

    /// Writes the key directory anew (same contents and modes).
    fn materialize(&self, label: &str) -> TempDir {
        let dir = TempDir::create(label);
        chmod(dir.path(), 0o700);
        for (name, bytes, mode) in &self.files {
            write_file(&dir.join(name), bytes, *mode);
        }
        dir
    }
}

/// The generated fixture (callers hold `shared()` or `exclusive()`).
fn generated() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let dir = TempDir::fresh("fixture");
        let set = KeySet::generate(
            dir.path(),
            &SrsSource::InsecureDev,
            ChaCha20Rng::seed_from_u64(1),
        )
        .unwrap();
        let files = ALL_FILES
            .iter()
            .map(|name| {
                (
                    *name,
                    fs::read(dir.join(name)).unwrap(),
                    mode_of(&dir.join(name)),
                )
            })
            .collect();
        Generated {
            files,
            dir_mode: mode_of(dir.path()),
            manifest: set.manifest.clone(),
            vk_id: set.proving_key.vk_id(),
            host_id: set.host_key.host_id(),
        }
    })
}

fn dev_srs() -> Arc<Srs> {
    static SRS: OnceLock<Arc<Srs>> = OnceLock::new();
    SRS.get_or_init(|| Arc::new(Srs::insecure_dev())).clone()
}

/// Raw-format KZG parameters from `ParamsKZG::setup(k, ChaCha20(seed))`.
fn params_bytes(k: u32, seed: u64) -> Vec<u8> {
    let params = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(seed));
    let mut buf = Vec::new();
    params
        .write_custom(&mut buf, SerdeFormat::RawBytes)
        .unwrap();
    buf
}

/// `params` in halo2's raw format.
fn raw_params(params: &ParamsKZG<Bn256>) -> Vec<u8> {
    let mut buf = Vec::new();
    params
        .write_custom(&mut buf, SerdeFormat::RawBytes)
        .unwrap();
    buf
}

/// The generator the development SRS is drawn from (its seed is public).
fn dev_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed(Sha256::digest(fabstir_zk::srs::DEV_SRS_SEED.as_bytes()).into())
}

/// Size of a raw-format parameters file for `k`.
fn raw_len(k: u32) -> usize {
    4 + 2 * (1usize << k) * 64 + 2 * 128
}

/// Parameters unrelated to the development SRS (k = 7, another seed).
fn other_srs() -> Arc<Srs> {
    static SRS: OnceLock<Arc<Srs>> = OnceLock::new();
    SRS.get_or_init(|| {
        let dir = TempDir::create("other-srs");
        let bytes = params_bytes(K, 99);
        let path = dir.join("other.params");
        write_file(&path, &bytes, 0o444);
        Arc::new(Srs::load_ceremony(&path, &Digest32::sha256(&bytes)).unwrap())
    })
    .clone()
}

/// Loads parameters bytes as a pinned ceremony file.
fn load_ceremony_bytes(bytes: &[u8]) -> Result<Srs, KeyError> {
    let dir = TempDir::create("ceremony");
    let path = dir.join("ceremony.params");
    write_file(&path, bytes, 0o444);
    Srs::load_ceremony(&path, &Digest32::sha256(bytes))
}

#[track_caller]
fn expect_corrupt<T: Debug>(result: Result<T, KeyError>, needle: &str) -> PathBuf {
    match result {
        Err(KeyError::Corrupt { path, reason }) => {
            assert!(
                reason.contains(needle),
                "Corrupt reason {reason:?} does not mention {needle:?}"
            );
            path
        }
        // A file far too large is its own kind of corrupt file.
        Err(e @ KeyError::TooLarge { .. }) => {
            let reason = e.to_string();
            assert!(
                reason.contains(needle),
                "TooLarge {reason:?} does not mention {needle:?}"
            );
            match e {
                KeyError::TooLarge { path, .. } => path,
                _ => unreachable!(),
            }
        }
        other => panic!("expected KeyError::Corrupt mentioning {needle:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_pairing<T: Debug>(result: Result<T, KeyError>, needle: &str) {
    match result {
        Err(KeyError::Pairing(reason)) => {
            assert!(
                reason.contains(needle),
                "Pairing reason {reason:?} does not mention {needle:?}"
            )
        }
        other => panic!("expected KeyError::Pairing mentioning {needle:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Key directory: generate, load, prove, modes
// ---------------------------------------------------------------------------

#[test]
fn generate_load_prove_verify_round_trip() {
    let _guard = shared();
    let dir = TempDir::fresh("round-trip");
    let made = KeySet::generate(
        dir.path(),
        &SrsSource::InsecureDev,
        ChaCha20Rng::seed_from_u64(2),
    )
    .unwrap();

    let dev = dev_srs();
    let m = &made.manifest;
    assert_eq!((m.format, m.circuit_version, m.k), (1, CIRCUIT_VERSION, K));
    assert_eq!(m.vk_id, made.proving_key.vk_id());
    assert_eq!(m.host_id, made.host_key.host_id());
    assert_eq!(m.srs.trust, SrsTrust::InsecureDev);
    assert_eq!(m.srs.sha256, dev.sha256());
    assert_eq!(
        m.srs.sha256,
        Digest32::sha256(&fs::read(dir.join(files::SRS)).unwrap())
    );
    assert_eq!(m.srs.source_sha256, dev.source_sha256());
    // The manifest on disk is the one returned.
    assert_eq!(&read_manifest(dir.path()).unwrap(), m);
    // Keys under the dev SRS are deterministic: the same as the shared fixture's.
    assert_eq!(m.vk_id, common::proving_key().vk_id());

    let loaded = KeySet::load(dir.path()).unwrap();
    assert_eq!(&loaded.manifest, m);
    assert_eq!(loaded.proving_key.vk_id(), m.vk_id);
    assert_eq!(loaded.verifying_key().id(), m.vk_id);
    assert_eq!(loaded.host_key.host_id(), m.host_id);
    assert_eq!(loaded.srs.trust(), SrsTrust::InsecureDev);
    assert_eq!(loaded.srs.sha256(), m.srs.sha256);

    let (vk, vmanifest) = load_verifier(dir.path()).unwrap();
    assert_eq!(&vmanifest, m);
    assert_eq!(vk.id(), m.vk_id);

    let result = sample_result();
    let statement = result.statement(loaded.host_key.host_id());
    let proof = ProofEnvelope::create(
        &loaded.proving_key,
        &statement,
        &loaded.host_key,
        rand::rngs::OsRng,
    )
    .unwrap();
    assert_eq!(proof.vk_id, m.vk_id);
    proof
        .verify(&vk, &result.statement(m.host_id).instance())
        .unwrap();
    // ... and not for another host.
    let other = result.statement(host(9).host_id()).instance();
    assert!(proof.verify(&vk, &other).is_err());
}

/// A key directory of circuit version 1 (as the previous release wrote it):
/// it loads as a verifier and its proofs verify, it does not load for
/// proving (the error says to rotate), and rotating it with the same SRS and
/// host key gives a version 2 set whose retired version 1 set, and whose
/// derived version 1 key, still verify the old proofs.
#[test]
fn a_version_1_key_directory_verifies_and_rotates_to_version_2() {
    let _guard = shared();
    let dir = TempDir::fresh("v1-dir");
    let made = KeySet::generate_with_host(dir.path(), &SrsSource::InsecureDev, host(4)).unwrap();
    assert_eq!(made.older_verifying_keys.len(), 1);
    let v1_id = made.older_verifying_keys[0].id();
    assert_eq!(made.older_verifying_keys[0].version(), CircuitVersion::V1);
    assert_eq!(
        made.verifying_keys().map(|vk| vk.id()).collect::<Vec<_>>(),
        [made.manifest.vk_id, v1_id]
    );
    // Make it a version 1 directory: version 1 keys and manifest.
    let v1 = ProvingKey::build_version(made.srs.clone(), CircuitVersion::V1).unwrap();
    assert_eq!(v1.vk_id(), v1_id);
    for name in [files::PROVING_KEY, files::VERIFYING_KEY] {
        fs::remove_file(dir.join(name)).unwrap();
    }
    v1.write_new(&dir.join(files::PROVING_KEY)).unwrap();
    v1.verifying_key()
        .write_new(&dir.join(files::VERIFYING_KEY))
        .unwrap();
    edit_manifest(dir.path(), |m| {
        m["circuit_version"] = 1.into();
        m["vk_id"] = v1_id.to_string().into();
    });

    let err = KeySet::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("rotate them"), "{err}");
    let (vk, manifest) = load_verifier(dir.path()).unwrap();
    assert_eq!((vk.id(), vk.version()), (v1_id, CircuitVersion::V1));
    assert_eq!(manifest.circuit_version, 1);
    let result = sample_result();
    let statement = result.statement(host(4).host_id());
    let old = ProofEnvelope::create(&v1, &statement, &host(4), rand::rngs::OsRng).unwrap();
    let v1_instance = statement.instance_for(CircuitVersion::V1);
    old.verify(&vk, &v1_instance).unwrap();

    let rotation = KeySet::rotate(dir.path(), None, false, rand::rngs::OsRng).unwrap();
    assert_eq!(rotation.previous_vk_id, v1_id);
    assert_eq!(rotation.previous_host_id, host(4).host_id());
    assert_eq!(rotation.keys.manifest.circuit_version, CIRCUIT_VERSION);
    assert_eq!(rotation.keys.manifest.vk_id, common::proving_key().vk_id());
    let loaded = KeySet::load(dir.path()).unwrap();
    assert_eq!(loaded.older_verifying_keys[0].id(), v1_id);
    old.verify(&loaded.older_verifying_keys[0], &v1_instance)
        .unwrap();
    let (retired, failed) = fabstir_zk::keystore::load_retired_verifiers(dir.path());
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].0.id(), v1_id);
    old.verify(&retired[0].0, &v1_instance).unwrap();
    // New proofs are version 2 and bind tokens.
    let new = ProofEnvelope::create(
        &loaded.proving_key,
        &statement,
        &loaded.host_key,
        rand::rngs::OsRng,
    )
    .unwrap();
    assert_eq!(new.instance.tokens, Some(result.tokens_used));
    new.verify(loaded.verifying_key(), &statement.instance())
        .unwrap();
}

#[test]
fn generate_writes_private_modes() {
    let _guard = shared();
    let g = generated();
    assert_eq!(
        g.dir_mode & 0o777,
        0o700,
        "key directory mode {:04o}",
        g.dir_mode
    );
    for (name, expected) in [
        (files::PROVING_KEY, 0o400),
        (files::HOST_KEY, 0o400),
        (files::SRS, 0o444),
        (files::VERIFYING_KEY, 0o444),
        (files::MANIFEST, 0o444),
    ] {
        assert_eq!(
            g.mode(name) & 0o777,
            expected,
            "{name} has mode {:04o}",
            g.mode(name)
        );
    }
    // The directory's files are exactly the five.
    let mut names: Vec<_> = g.files.iter().map(|(n, _, _)| *n).collect();
    names.sort();
    let mut all = ALL_FILES.to_vec();
    all.sort();
    assert_eq!(names, all);
}

/// `mkdir keys && keygen keys`: the directory should end up private too.
#[test]
fn generate_into_existing_empty_dir_makes_it_private() {
    let _guard = shared();
    let dir = TempDir::create("existing");
    chmod(dir.path(), 0o755);
    KeySet::generate(
        dir.path(),
        &SrsSource::InsecureDev,
        ChaCha20Rng::seed_from_u64(5),
    )
    .unwrap();
    assert_eq!(mode_of(dir.path()), 0o700);
}

#[test]
fn generate_refuses_a_directory_holding_any_key_file() {
    let _guard = shared();
    for name in ALL_FILES {
        let dir = TempDir::create("exists");
        write_file(&dir.join(name), b"precious data", 0o640);
        chmod(dir.path(), 0o750);
        let before = snapshot(dir.path());
        match KeySet::generate(
            dir.path(),
            &SrsSource::InsecureDev,
            ChaCha20Rng::seed_from_u64(4),
        ) {
            Err(KeyError::Exists { path }) => assert_eq!(path, dir.join(name)),
            other => panic!("{name}: expected Exists, got {other:?}"),
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{name}: directory was modified"
        );
        assert_eq!(
            mode_of(dir.path()),
            0o750,
            "{name}: directory mode was changed"
        );
    }
}

/// A dangling symlink is an existing directory entry: generate must refuse
/// before writing anything (not after writing the files that come first).
#[test]
fn generate_refuses_a_dangling_symlink_before_writing() {
    let _guard = shared();
    let mut failures = Vec::new();
    for name in ALL_FILES {
        let dir = TempDir::create("dangling");
        symlink(dir.join("nowhere"), dir.join(name)).unwrap();
        let before = snapshot(dir.path());
        let result = KeySet::generate(
            dir.path(),
            &SrsSource::InsecureDev,
            ChaCha20Rng::seed_from_u64(5),
        );
        match result {
            Err(KeyError::Exists { path }) => assert_eq!(path, dir.join(name)),
            other => panic!("{name}: expected Exists, got {other:?}"),
        }
        let after = snapshot(dir.path());
        if after != before {
            let written: Vec<_> = after
                .iter()
                .filter(|e| !before.contains(e))
                .map(|e| e.0.clone())
                .collect();
            failures.push(format!(
                "dangling {name}: wrote {written:?} before refusing"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn generate_into_a_regular_file_is_an_io_error() {
    let _guard = shared();
    let dir = TempDir::create("file-not-dir");
    let file = dir.join("plain");
    write_file(&file, b"x", 0o644);
    match KeySet::generate(
        &file,
        &SrsSource::InsecureDev,
        ChaCha20Rng::seed_from_u64(6),
    ) {
        Err(KeyError::Io { path, .. }) => assert_eq!(path, file),
        other => panic!("expected Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Manifest
// ---------------------------------------------------------------------------

#[test]
fn load_without_manifest_is_corrupt() {
    let _guard = shared();
    let dir = generated().materialize("no-manifest");
    fs::remove_file(dir.join(files::MANIFEST)).unwrap();
    let path = expect_corrupt(KeySet::load(dir.path()), "missing");
    assert_eq!(path, dir.join(files::MANIFEST));
    expect_corrupt(load_verifier(dir.path()), "missing");
    // An empty directory is not a key directory either.
    let empty = TempDir::create("empty");
    expect_corrupt(KeySet::load(empty.path()), "missing");
}

#[test]
fn manifest_with_unknown_field_is_corrupt() {
    let _guard = shared();
    let dir = generated().materialize("manifest-unknown");
    edit_manifest(dir.path(), |m| {
        m["comment"] = "hello".into();
    });
    expect_corrupt(KeySet::load(dir.path()), "unknown field");
    expect_corrupt(load_verifier(dir.path()), "unknown field");

    let dir = generated().materialize("manifest-unknown-srs");
    edit_manifest(dir.path(), |m| {
        m["srs"]["url"] = "https://example.com".into();
    });
    expect_corrupt(KeySet::load(dir.path()), "unknown field");
}

#[test]
fn manifest_that_is_not_json_is_corrupt() {
    let _guard = shared();
    let dir = generated().materialize("manifest-garbage");
    rewrite(&dir.join(files::MANIFEST), |b| b.truncate(b.len() / 2));
    expect_corrupt(KeySet::load(dir.path()), "invalid manifest");
    rewrite(&dir.join(files::MANIFEST), |b| *b = vec![b' '; 100 * 1024]);
    expect_corrupt(KeySet::load(dir.path()), "more than");
}

#[test]
fn manifest_with_other_format_circuit_or_k_is_corrupt() {
    let _guard = shared();
    for (field, value, needle) in [
        ("format", 2, "format 2"),
        (
            "circuit_version",
            u64::from(CIRCUIT_VERSION) + 1,
            "circuit version",
        ),
        ("k", u64::from(K) + 1, "k = 8"),
    ] {
        let dir = generated().materialize("manifest-version");
        edit_manifest(dir.path(), |m| m[field] = value.into());
        expect_corrupt(KeySet::load(dir.path()), needle);
        expect_corrupt(load_verifier(dir.path()), needle);
    }
}

#[test]
fn manifest_with_other_vk_id_fails_to_pair() {
    let _guard = shared();
    let dir = generated().materialize("manifest-vk-id");
    let other = format!("0x{}", "11".repeat(32));
    edit_manifest(dir.path(), |m| m["vk_id"] = other.clone().into());
    expect_pairing(KeySet::load(dir.path()), &other);
    expect_pairing(load_verifier(dir.path()), &other);
}

#[test]
fn manifest_with_other_host_id_fails_to_pair() {
    let _guard = shared();
    let dir = generated().materialize("manifest-host-id");
    let other = host(42).host_id().to_string();
    assert_ne!(other, generated().host_id.to_string());
    edit_manifest(dir.path(), |m| m["host_id"] = other.clone().into());
    expect_pairing(KeySet::load(dir.path()), &other);
    // The verifier reads no secret and so does not check the host key.
    let (vk, manifest) = load_verifier(dir.path()).unwrap();
    assert_eq!(vk.id(), generated().vk_id);
    assert_eq!(manifest.host_id.to_string(), other);
}

#[test]
fn host_key_from_another_directory_fails_to_pair() {
    let _guard = shared();
    let dir = generated().materialize("swapped-host");
    let path = dir.join(files::HOST_KEY);
    fs::remove_file(&path).unwrap();
    host(7).write_new(&path).unwrap();
    expect_pairing(KeySet::load(dir.path()), &host(7).host_id().to_string());
}

#[test]
fn srs_file_not_matching_the_manifest_is_refused() {
    let _guard = shared();
    // The manifest's digest changed.
    let dir = generated().materialize("manifest-srs-digest");
    let pinned = format!("0x{}", "22".repeat(32));
    edit_manifest(dir.path(), |m| m["srs"]["sha256"] = pinned.clone().into());
    for result in [
        KeySet::load(dir.path()).map(drop),
        load_verifier(dir.path()).map(drop),
    ] {
        match result {
            Err(KeyError::SrsPin {
                expected, found, ..
            }) => {
                assert_eq!(expected, pinned);
                assert_eq!(found, generated().manifest.srs.sha256.to_string());
            }
            other => panic!("expected SrsPin, got {other:?}"),
        }
    }
    // The parameters file changed (one byte).
    let dir = generated().materialize("srs-flipped");
    rewrite(&dir.join(files::SRS), |b| b[1000] ^= 1);
    assert!(matches!(
        KeySet::load(dir.path()),
        Err(KeyError::SrsPin { .. })
    ));
    // The parameters file is missing.
    let dir = generated().materialize("srs-missing");
    fs::remove_file(dir.join(files::SRS)).unwrap();
    assert!(matches!(KeySet::load(dir.path()), Err(KeyError::Io { .. })));
}

/// Replacing the parameters (and the manifest's digest of them) leaves keys
/// that no longer pair with them.
#[test]
fn keys_with_replaced_srs_fail_to_pair() {
    let _guard = shared();
    let dir = generated().materialize("replaced-srs");
    let other = other_srs().to_bytes();
    rewrite(&dir.join(files::SRS), |b| *b = other.clone());
    edit_manifest(dir.path(), |m| {
        m["srs"]["sha256"] = sha256_hex(&other).into()
    });
    expect_pairing(KeySet::load(dir.path()), "another SRS");
    expect_pairing(load_verifier(dir.path()), "verifying.key");
}

/// The development SRS is public and deterministic, so a manifest that
/// relabels it as a ceremony SRS can be caught: the parameters would then
/// surface as trusted.
#[test]
fn dev_srs_relabelled_as_ceremony_is_not_trusted() {
    let _guard = shared();
    let dir = generated().materialize("relabelled");
    edit_manifest(dir.path(), |m| m["srs"]["trust"] = "ceremony".into());
    if let Ok(set) = KeySet::load(dir.path()) {
        assert_eq!(
            set.srs.trust(),
            SrsTrust::InsecureDev,
            "dev SRS loaded as trusted"
        );
    }
    if let Ok((vk, _)) = load_verifier(dir.path()) {
        assert_eq!(
            vk.srs().trust(),
            SrsTrust::InsecureDev,
            "dev SRS loaded as trusted"
        );
    }
}

// ---------------------------------------------------------------------------
// Key files: headers, bodies, pairing
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Proving,
    Verifying,
}

const KINDS: [Kind; 2] = [Kind::Proving, Kind::Verifying];
const HEADER_LEN: usize = 88;

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Proving => files::PROVING_KEY,
            Kind::Verifying => files::VERIFYING_KEY,
        }
    }

    fn bytes(self) -> Vec<u8> {
        generated().bytes(self.file()).to_vec()
    }

    fn other(self) -> Kind {
        match self {
            Kind::Proving => Kind::Verifying,
            Kind::Verifying => Kind::Proving,
        }
    }

    /// Writes `bytes` as this kind's file (with its generated mode) and loads it.
    fn load_bytes(self, bytes: &[u8], srs: Arc<Srs>) -> (PathBuf, Result<VkId, KeyError>) {
        let dir = TempDir::create("key-file");
        let path = dir.join(self.file());
        write_file(&path, bytes, generated().mode(self.file()));
        let result = match self {
            Kind::Proving => ProvingKey::load(&path, srs).map(|k| k.vk_id()),
            Kind::Verifying => VerifyingKey::load(&path, srs).map(|k| k.id()),
        };
        (path, result)
    }

    /// Loads this kind's generated file after `edit`, expecting Corrupt with `needle`.
    #[track_caller]
    fn expect_corrupt_after(self, needle: &str, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = self.bytes();
        edit(&mut bytes);
        let (path, result) = self.load_bytes(&bytes, dev_srs());
        let reported = expect_corrupt(result, needle);
        assert_eq!(reported, path, "{self:?}: error names the wrong file");
    }
}

/// Recomputes the length and digest fields for a new body (a crafted file).
fn with_body(file: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = file[..HEADER_LEN].to_vec();
    out[48..56].copy_from_slice(&(body.len() as u64).to_be_bytes());
    out[56..88].copy_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

#[test]
fn generated_key_files_load() {
    let _guard = shared();
    for kind in KINDS {
        let (_, result) = kind.load_bytes(&kind.bytes(), dev_srs());
        assert_eq!(result.unwrap(), generated().vk_id, "{kind:?}");
    }
    // The header layout documented in keys.rs.
    let pk = Kind::Proving.bytes();
    assert_eq!(&pk[..8], b"FZK-PK\0\0");
    assert_eq!(&Kind::Verifying.bytes()[..8], b"FZK-VK\0\0");
    assert_eq!(u16::from_be_bytes([pk[8], pk[9]]), KEY_FORMAT_VERSION);
    assert_eq!(
        u16::from_be_bytes([pk[10], pk[11]]),
        u16::from(CIRCUIT_VERSION)
    );
    assert_eq!(u32::from_be_bytes(pk[12..16].try_into().unwrap()), K);
    assert_eq!(&pk[16..48], &generated().vk_id.0);
    assert_eq!(
        u64::from_be_bytes(pk[48..56].try_into().unwrap()) as usize,
        pk.len() - HEADER_LEN
    );
    assert_eq!(&pk[56..88], Sha256::digest(&pk[HEADER_LEN..]).as_slice());
}

#[test]
fn key_file_with_bad_magic_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        kind.expect_corrupt_after("bad magic", |b| b[..8].copy_from_slice(b"FZK-XX\0\0"));
        kind.expect_corrupt_after("bad magic", |b| b[0] ^= 0x20);
        kind.expect_corrupt_after("bad magic", |b| b[..8].copy_from_slice(b"FZK-HK1\0"));
    }
}

#[test]
fn key_file_of_the_other_kind_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        // The other kind's whole file ...
        let (path, result) = kind.load_bytes(&kind.other().bytes(), dev_srs());
        assert_eq!(expect_corrupt(result, "other kind"), path);
        // ... or only its magic.
        let magic: &[u8; 8] = if kind == Kind::Proving {
            b"FZK-VK\0\0"
        } else {
            b"FZK-PK\0\0"
        };
        kind.expect_corrupt_after("other kind", |b| b[..8].copy_from_slice(magic));
    }
}

#[test]
fn key_file_with_other_format_version_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        for version in [0u16, KEY_FORMAT_VERSION + 1, 0x0100, u16::MAX] {
            kind.expect_corrupt_after("key format version", |b| {
                b[8..10].copy_from_slice(&version.to_be_bytes())
            });
        }
    }
}

#[test]
fn key_file_with_other_circuit_version_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        for version in [
            0u16,
            u16::from(CIRCUIT_VERSION) + 1,
            u16::from(CIRCUIT_VERSION) << 8,
        ] {
            kind.expect_corrupt_after("circuit version", |b| {
                b[10..12].copy_from_slice(&version.to_be_bytes())
            });
        }
    }
}

#[test]
fn key_file_with_other_k_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        for k in [0u32, K - 1, K + 1, K.swap_bytes(), u32::MAX] {
            kind.expect_corrupt_after(&format!("made for k = {k}"), |b| {
                b[12..16].copy_from_slice(&k.to_be_bytes())
            });
        }
    }
}

#[test]
fn key_file_with_other_vk_id_in_header_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        kind.expect_corrupt_after("header names vk_id", |b| b[16] ^= 0x01);
        kind.expect_corrupt_after("header names vk_id", |b| b[47] ^= 0x80);
        kind.expect_corrupt_after("header names vk_id", |b| b[16..48].fill(0));
    }
}

#[test]
fn key_file_with_wrong_body_length_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        let len = kind.bytes().len() as u64 - HEADER_LEN as u64;
        for declared in [0, len - 1, len + 1, u64::MAX] {
            kind.expect_corrupt_after(&format!("declares a {declared}-byte body"), |b| {
                b[48..56].copy_from_slice(&declared.to_be_bytes())
            });
        }
    }
}

#[test]
fn key_file_with_wrong_body_digest_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        kind.expect_corrupt_after("SHA-256", |b| b[56] ^= 1);
        kind.expect_corrupt_after("SHA-256", |b| b[87] ^= 0x80);
    }
}

#[test]
fn truncated_key_file_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        let full = kind.bytes().len();
        for len in [0, 1, 8, HEADER_LEN - 1] {
            kind.expect_corrupt_after("shorter than a key file header", |b| b.truncate(len));
        }
        for len in [HEADER_LEN, HEADER_LEN + 1, full / 2, full - 1] {
            kind.expect_corrupt_after("-byte body", |b| b.truncate(len));
        }
    }
}

#[test]
fn key_file_with_a_flipped_body_byte_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        let full = kind.bytes().len();
        for i in [
            HEADER_LEN,
            HEADER_LEN + 1,
            HEADER_LEN + 5,
            (HEADER_LEN + full) / 2,
            full - 1,
        ] {
            kind.expect_corrupt_after("SHA-256", |b| b[i] ^= 0x04);
        }
    }
}

#[test]
fn key_file_with_a_trailing_byte_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        kind.expect_corrupt_after("-byte body", |b| b.push(0));
        kind.expect_corrupt_after("-byte body", |b| b.extend_from_slice(&[0xff; 32]));
    }
}

#[test]
fn every_flipped_header_byte_is_corrupt() {
    let _guard = shared();
    for kind in KINDS {
        let bytes = kind.bytes();
        for i in 0..HEADER_LEN {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << (i % 8);
            let result = match kind {
                Kind::Proving => {
                    ProvingKey::from_file_bytes(Path::new("x"), &bad, dev_srs()).map(|k| k.vk_id())
                }
                Kind::Verifying => {
                    VerifyingKey::from_file_bytes(Path::new("x"), &bad, dev_srs()).map(|k| k.id())
                }
            };
            assert!(
                matches!(result, Err(KeyError::Corrupt { .. })),
                "{kind:?} header byte {i}: {result:?}"
            );
        }
    }
}

#[test]
fn proving_key_readable_by_others_is_refused() {
    let _guard = shared();
    for mode in [0o644, 0o440, 0o404, 0o600 | 0o002] {
        let dir = generated().materialize("pk-mode");
        let path = dir.join(files::PROVING_KEY);
        chmod(&path, mode);
        match ProvingKey::load(&path, dev_srs()) {
            Err(KeyError::Permissions { path: p, mode: m }) => {
                assert_eq!((p, m), (path.clone(), mode))
            }
            other => panic!("mode {mode:04o}: expected Permissions, got {other:?}"),
        }
        assert!(matches!(
            KeySet::load(dir.path()),
            Err(KeyError::Permissions { .. })
        ));
        // The verifier never reads it.
        load_verifier(dir.path()).unwrap();
    }
    // Owner-only modes are fine.
    let dir = generated().materialize("pk-mode-ok");
    chmod(&dir.join(files::PROVING_KEY), 0o600);
    KeySet::load(dir.path()).unwrap();
}

#[test]
fn proving_key_loaded_with_another_srs_fails_to_pair() {
    let _guard = shared();
    let (_, result) = Kind::Proving.load_bytes(&Kind::Proving.bytes(), other_srs());
    expect_pairing(result, "fixed commitments do not match");
}

#[test]
fn verifying_key_loaded_with_another_srs_fails_to_pair() {
    let _guard = shared();
    let (_, result) = Kind::Verifying.load_bytes(&Kind::Verifying.bytes(), other_srs());
    expect_pairing(result, &generated().vk_id.to_string());
}

#[test]
fn keys_made_with_another_srs_fail_to_pair_with_the_dev_srs() {
    let _guard = shared();
    let foreign = ProvingKey::build(other_srs()).unwrap();
    assert_ne!(foreign.vk_id(), generated().vk_id);
    // Both files are well-formed; only the parameters differ.
    let (_, result) =
        Kind::Verifying.load_bytes(&foreign.verifying_key().to_file_bytes(), dev_srs());
    expect_pairing(result, &foreign.vk_id().to_string());
    let (_, result) = Kind::Proving.load_bytes(&foreign.to_file_bytes(), dev_srs());
    expect_pairing(result, "fixed commitments do not match");
    // Against their own parameters they load.
    let (_, result) = Kind::Proving.load_bytes(&foreign.to_file_bytes(), other_srs());
    assert_eq!(result.unwrap(), foreign.vk_id());
    let (_, result) =
        Kind::Verifying.load_bytes(&foreign.verifying_key().to_file_bytes(), other_srs());
    assert_eq!(result.unwrap(), foreign.vk_id());
}

#[test]
fn key_file_write_new_never_overwrites() {
    let _guard = shared();
    let dir = TempDir::create("write-new");
    let pk = common::proving_key();
    let path = dir.join("k");
    write_file(&path, b"old", 0o600);
    assert!(matches!(pk.write_new(&path), Err(KeyError::Exists { .. })));
    assert!(matches!(
        pk.verifying_key().write_new(&path),
        Err(KeyError::Exists { .. })
    ));
    assert!(matches!(
        host(1).write_new(&path),
        Err(KeyError::Exists { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), b"old");
    // Fresh files get their modes.
    pk.write_new(&dir.join("pk")).unwrap();
    pk.verifying_key().write_new(&dir.join("vk")).unwrap();
    assert_eq!(mode_of(&dir.join("pk")), 0o400);
    assert_eq!(mode_of(&dir.join("vk")), 0o444);
    assert_eq!(fs::read(dir.join("pk")).unwrap(), pk.to_file_bytes());
}

/// Crafted bodies: the header's length and digest recomputed, as a hostile or
/// hand-made file would have them, so the body reaches halo2's reader.
fn crafted_bodies(kind: Kind, truncate: bool, inner_k: bool) -> Vec<(String, Vec<u8>)> {
    let file = kind.bytes();
    let body = &file[HEADER_LEN..];
    let mut cases = Vec::new();
    if truncate {
        for len in [body.len() - 1, body.len() / 2, 6, 0] {
            cases.push((
                format!("body truncated to {len} bytes"),
                with_body(&file, &body[..len]),
            ));
        }
    }
    if inner_k {
        // halo2's own key header: version byte 0x02, then k (u32 LE).
        assert_eq!(body[0], 0x02);
        assert_eq!(body[1..5], K.to_le_bytes());
        for k in [27u32, 40, 64] {
            let mut b = body.to_vec();
            b[1..5].copy_from_slice(&k.to_le_bytes());
            cases.push((
                format!("halo2 k = {k} inside the body"),
                with_body(&file, &b),
            ));
        }
    }
    cases
}

/// Loads each crafted file; a malformed body must be an error, not a panic.
fn check_crafted(kind: Kind, cases: Vec<(String, Vec<u8>)>) {
    let mut failures = Vec::new();
    for (what, bytes) in cases {
        let outcome = catch_unwind(AssertUnwindSafe(|| kind.load_bytes(&bytes, dev_srs()).1));
        match outcome {
            Ok(Err(KeyError::Corrupt { .. } | KeyError::Pairing(_))) => {}
            Ok(other) => failures.push(format!(
                "{kind:?}, {what}: expected Corrupt or Pairing, got {other:?}"
            )),
            Err(_) => failures.push(format!("{kind:?}, {what}: loading panicked")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn crafted_truncated_verifying_key_body_is_corrupt() {
    let _guard = shared();
    check_crafted(
        Kind::Verifying,
        crafted_bodies(Kind::Verifying, true, false),
    );
}

#[test]
fn crafted_verifying_key_body_with_huge_k_is_an_error_not_a_panic() {
    let _guard = shared();
    check_crafted(
        Kind::Verifying,
        crafted_bodies(Kind::Verifying, false, true),
    );
}

#[test]
fn crafted_proving_key_body_is_an_error_not_a_panic() {
    let _guard = shared();
    check_crafted(Kind::Proving, crafted_bodies(Kind::Proving, true, true));
}

// ---------------------------------------------------------------------------
// Host key
// ---------------------------------------------------------------------------

/// A host key written to a fresh file; returns the dir, the path and its bytes.
fn host_key_file(label: &str) -> (TempDir, PathBuf, Vec<u8>) {
    let dir = TempDir::create(label);
    let path = dir.join(files::HOST_KEY);
    HostKey::generate(ChaCha20Rng::seed_from_u64(77))
        .write_new(&path)
        .unwrap();
    let bytes = fs::read(&path).unwrap();
    (dir, path, bytes)
}

/// Replaces the host key file with `bytes` (mode 0400) and loads it.
fn load_host_bytes(path: &Path, bytes: &[u8]) -> Result<HostKey, KeyError> {
    let _ = fs::remove_file(path);
    write_file(path, bytes, 0o400);
    HostKey::load(path)
}

fn checksummed(magic_and_secret: &[u8]) -> Vec<u8> {
    let mut out = magic_and_secret.to_vec();
    out.extend_from_slice(&Sha256::digest(magic_and_secret)[..4]);
    out
}

#[test]
fn host_key_round_trips_with_mode_0400() {
    let key = HostKey::generate(ChaCha20Rng::seed_from_u64(77));
    let (_dir, path, bytes) = host_key_file("host-ok");
    assert_eq!(mode_of(&path), 0o400);
    assert_eq!(bytes.len(), 44);
    assert_eq!(&bytes[..8], b"FZK-HK1\0");
    assert_eq!(HostKey::load(&path).unwrap().host_id(), key.host_id());
    chmod(&path, 0o600);
    assert_eq!(HostKey::load(&path).unwrap().host_id(), key.host_id());
}

#[test]
fn host_key_readable_by_others_is_refused() {
    let (_dir, path, _) = host_key_file("host-mode");
    for mode in [0o644, 0o640, 0o444, 0o404, 0o602] {
        chmod(&path, mode);
        match HostKey::load(&path) {
            Err(KeyError::Permissions { path: p, mode: m }) => {
                assert_eq!((p, m), (path.clone(), mode))
            }
            other => panic!("mode {mode:04o}: expected Permissions, got {other:?}"),
        }
    }
}

#[test]
fn host_key_with_bad_magic_is_corrupt() {
    let (_dir, path, bytes) = host_key_file("host-magic");
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(b"FZK-PK\0\0");
    // Even with a matching checksum the magic is checked.
    let bad = checksummed(&bad[..40]);
    expect_corrupt(load_host_bytes(&path, &bad), "bad magic");
    let mut bad = bytes;
    bad[6] ^= 1;
    expect_corrupt(load_host_bytes(&path, &bad), "bad magic");
}

#[test]
fn host_key_with_bad_checksum_is_corrupt() {
    let (_dir, path, bytes) = host_key_file("host-check");
    for i in [8, 20, 39, 40, 43] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        expect_corrupt(load_host_bytes(&path, &bad), "checksum");
    }
}

#[test]
fn host_key_with_wrong_length_is_corrupt() {
    let (_dir, path, bytes) = host_key_file("host-length");
    for len in [0, 8, 40, 43] {
        expect_corrupt(load_host_bytes(&path, &bytes[..len]), "wrong length");
    }
    let mut long = bytes.clone();
    long.push(0);
    expect_corrupt(load_host_bytes(&path, &long), "45 bytes");
    let mut long = bytes;
    long.extend_from_slice(&[0; 4096]);
    expect_corrupt(load_host_bytes(&path, &long), "more than");
}

#[test]
fn host_key_with_non_canonical_secret_is_corrupt() {
    let (_dir, path, _) = host_key_file("host-canonical");
    let modulus =
        hex::decode("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001").unwrap();
    for secret in [modulus.clone(), vec![0xff; 32]] {
        let mut body = b"FZK-HK1\0".to_vec();
        body.extend_from_slice(&secret);
        expect_corrupt(load_host_bytes(&path, &checksummed(&body)), "canonical");
    }
    // modulus - 1 is canonical.
    let mut body = b"FZK-HK1\0".to_vec();
    let mut below = modulus;
    below[31] -= 1;
    body.extend_from_slice(&below);
    load_host_bytes(&path, &checksummed(&body)).unwrap();
}

#[test]
fn host_key_debug_hides_the_secret() {
    let _guard = shared();
    let (_dir, path, bytes) = host_key_file("host-debug");
    let secret_hex = hex::encode(&bytes[8..40]);
    let key = HostKey::load(&path).unwrap();
    let set = KeySet::load(generated().materialize("host-debug-set").path()).unwrap();
    let set_secret = hex::encode(&generated().bytes(files::HOST_KEY)[8..40]);
    for (text, secret) in [
        (format!("{key:?}"), &secret_hex),
        (format!("{key:#?}"), &secret_hex),
        (format!("{set:?}"), &set_secret),
        (format!("{set:#?}"), &set_secret),
    ] {
        // No 8-hex-digit window of the secret appears (in either case).
        let lower = text.to_lowercase();
        for window in 0..=(64 - 8) {
            assert!(
                !lower.contains(&secret[window..window + 8]),
                "Debug output leaks the secret: {text}"
            );
        }
    }
    assert!(format!("{key:?}").contains(&key.host_id().to_string()));
}

// ---------------------------------------------------------------------------
// SRS files
// ---------------------------------------------------------------------------

#[test]
fn dev_srs_is_deterministic_and_labelled_insecure() {
    let _guard = shared();
    let a = Srs::insecure_dev();
    let b = Srs::insecure_dev();
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(a.trust(), SrsTrust::InsecureDev);
    assert_eq!(a.trust().to_string(), "insecure-dev");
    assert_eq!(
        serde_json::to_string(&SrsTrust::InsecureDev).unwrap(),
        "\"insecure-dev\""
    );
    assert_eq!(
        serde_json::to_string(&SrsTrust::Ceremony).unwrap(),
        "\"ceremony\""
    );
    assert_eq!(a.source_sha256(), a.sha256());
    assert_eq!(a.to_bytes().len(), raw_len(K));
    assert_eq!(a.to_bytes()[..4], K.to_le_bytes());
    // It is not some other setup.
    assert_ne!(a.sha256(), other_srs().sha256());
    assert!(format!("{a:?}").contains("InsecureDev"));
}

#[test]
fn ceremony_file_with_the_dev_bytes_is_refused() {
    let _guard = shared();
    // The development parameters are public: offered as a ceremony file,
    // they are refused rather than relabelled as trusted.
    let bytes = dev_srs().to_bytes();
    match load_ceremony_bytes(&bytes) {
        Err(KeyError::Corrupt { reason, .. }) => {
            assert!(reason.contains("development SRS"), "{reason}")
        }
        other => panic!("expected the development SRS to be refused, got {other:?}"),
    }
}

/// The development setup regenerated at k = 8 from the public seed hashes
/// differently from the k = 7 one, but has the same secret (and, downsized,
/// the same keys and vk_id): it is refused by its `g[1]`, with its real pin,
/// and so is a copy rescaled to another generator.
#[test]
fn dev_srs_regenerated_at_another_size_is_refused() {
    let _guard = shared();
    let params = ParamsKZG::<Bn256>::setup(K + 1, dev_rng());
    let bytes = raw_params(&params);
    assert_ne!(Digest32::sha256(&bytes), dev_srs().source_sha256());
    // Same g[1] as the development SRS (bytes 4.. hold g[0], g[1], ...).
    assert_eq!(bytes[68..132], dev_srs().to_bytes()[68..132]);
    match load_ceremony_bytes(&bytes) {
        Err(KeyError::Corrupt { reason, .. }) => {
            assert!(reason.contains("development SRS"), "{reason}");
            assert!(reason.contains(&format!("k = {}", K + 1)), "{reason}");
        }
        other => panic!("expected the k = 8 development SRS to be refused, got {other:?}"),
    }
    // Generating keys from it is refused.
    let dir = TempDir::create("dev-k8");
    let path = dir.join("dev-k8.params");
    write_file(&path, &bytes, 0o444);
    let keys = TempDir::fresh("dev-k8-keys");
    let source = SrsSource::Ceremony {
        path,
        sha256: Digest32::sha256(&bytes),
    };
    let result = KeySet::generate(keys.path(), &source, ChaCha20Rng::seed_from_u64(12));
    expect_corrupt(result, "development SRS");
    assert!(!keys.join(files::PROVING_KEY).exists());

    // Every point doubled: another g[0] and g[1], the same (public) secret.
    let dev = ParamsKZG::<Bn256>::setup(K, dev_rng());
    let doubled: Vec<G1Affine> = dev
        .get_g()
        .iter()
        .map(|p| (p * Fr::from(2)).to_affine())
        .collect();
    let doubled = raw_params(&dev.from_parts(K, doubled, None, dev.g2(), dev.s_g2()));
    expect_corrupt(load_ceremony_bytes(&doubled), "development SRS");
    // Stored in a key directory, it may only be labelled insecure-dev.
    let path = dir.join("doubled.params");
    write_file(&path, &doubled, 0o444);
    let digest = Digest32::sha256(&doubled);
    expect_corrupt(
        Srs::load_stored(&path, &digest, SrsTrust::Ceremony, digest),
        "manifest labels it a ceremony SRS",
    );
    let srs = Srs::load_stored(&path, &digest, SrsTrust::InsecureDev, digest).unwrap();
    assert_eq!(srs.trust(), SrsTrust::InsecureDev);
}

/// An SRS whose `s·G2` belongs to another secret than its G1 points (both
/// halves valid setups) is refused wherever it is loaded; so is one whose
/// G1 points are not the powers of one secret. The intact setup loads.
#[test]
fn srs_file_that_is_not_one_kzg_setup_is_refused() {
    let _guard = shared();
    let a = ParamsKZG::<Bn256>::setup(K, ChaCha20Rng::seed_from_u64(41));
    let b = ParamsKZG::<Bn256>::setup(K, ChaCha20Rng::seed_from_u64(42));
    let srs = load_ceremony_bytes(&raw_params(&a)).unwrap();
    assert_eq!(srs.trust(), SrsTrust::Ceremony);

    let mixed_s_g2 = raw_params(&a.from_parts(K, a.get_g().to_vec(), None, a.g2(), b.s_g2()));
    let mut g = a.get_g().to_vec();
    g[5] = b.get_g()[5];
    let mixed_g1 = raw_params(&a.from_parts(K, g, None, a.g2(), a.s_g2()));
    let dir = TempDir::create("mixed-srs");
    for (bytes, needle) in [
        (mixed_s_g2, "s·G2 does not hold the secret of g[1]"),
        (mixed_g1, "not successive powers of one secret"),
    ] {
        expect_corrupt(load_ceremony_bytes(&bytes), needle);
        let path = dir.join("srs.params");
        let _ = fs::remove_file(&path);
        write_file(&path, &bytes, 0o444);
        let digest = Digest32::sha256(&bytes);
        for trust in [SrsTrust::Ceremony, SrsTrust::InsecureDev] {
            expect_corrupt(Srs::load_stored(&path, &digest, trust, digest), needle);
        }
    }
}

#[test]
fn ceremony_file_with_wrong_pin_is_refused() {
    let _guard = shared();
    let dir = TempDir::create("pin");
    let path = dir.join("srs.params");
    let bytes = dev_srs().to_bytes();
    write_file(&path, &bytes, 0o444);
    let mut pin = Digest32::sha256(&bytes);
    pin.0[31] ^= 1;
    match Srs::load_ceremony(&path, &pin) {
        Err(KeyError::SrsPin {
            path: p,
            expected,
            found,
        }) => {
            assert_eq!(p, path);
            assert_eq!(expected, pin.to_string());
            assert_eq!(found, sha256_hex(&bytes));
        }
        other => panic!("expected SrsPin, got {other:?}"),
    }
    // Generating keys from it is refused too, and writes no key file.
    let keys = TempDir::fresh("pin-keys");
    let source = SrsSource::Ceremony {
        path: path.clone(),
        sha256: pin,
    };
    let result = KeySet::generate(keys.path(), &source, ChaCha20Rng::seed_from_u64(8));
    assert!(matches!(result, Err(KeyError::SrsPin { .. })), "{result:?}");
    for name in ALL_FILES {
        assert!(!keys.join(name).exists(), "{name} was written");
    }
}

#[test]
fn srs_file_with_k_below_the_circuit_is_too_small() {
    let _guard = shared();
    for k in [0u32, 1, K - 1] {
        // Only the header ...
        match load_ceremony_bytes(&k.to_le_bytes()) {
            Err(KeyError::SrsTooSmall { found, needed }) => assert_eq!((found, needed), (k, K)),
            other => panic!("k = {k}: expected SrsTooSmall, got {other:?}"),
        }
    }
    // ... or a complete, valid file for k = 6.
    match load_ceremony_bytes(&params_bytes(K - 1, 6)) {
        Err(KeyError::SrsTooSmall { found, needed }) => assert_eq!((found, needed), (K - 1, K)),
        other => panic!("expected SrsTooSmall, got {other:?}"),
    }
}

#[test]
fn srs_file_with_huge_k_is_refused_without_allocating() {
    let _guard = shared();
    let start = Instant::now();
    for k in [MAX_SRS_K + 1, 29, 32, 60, 64, u32::MAX] {
        let mut bytes = k.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 1024]);
        expect_corrupt(load_ceremony_bytes(&bytes), &format!("declares k = {k}"));
    }
    // k = MAX_SRS_K is allowed, but the length is checked before anything is read.
    expect_corrupt(
        load_ceremony_bytes(&MAX_SRS_K.to_le_bytes()),
        &format!("for k = {MAX_SRS_K} are"),
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn srs_file_with_wrong_length_is_corrupt() {
    let _guard = shared();
    let bytes = dev_srs().to_bytes();
    for len in [bytes.len() - 1, bytes.len() - 128, 4, 100] {
        expect_corrupt(
            load_ceremony_bytes(&bytes[..len]),
            &format!("is {len} bytes"),
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    expect_corrupt(
        load_ceremony_bytes(&long),
        &format!("is {} bytes", bytes.len() + 1),
    );
    for len in [0, 1, 3] {
        expect_corrupt(load_ceremony_bytes(&bytes[..len]), "too short");
    }
    // A missing file is an I/O error.
    let dir = TempDir::create("srs-missing");
    assert!(matches!(
        Srs::load_ceremony(&dir.join("none"), &Digest32([0; 32])),
        Err(KeyError::Io { .. })
    ));
}

#[test]
fn srs_file_with_non_canonical_coordinate_is_corrupt() {
    let _guard = shared();
    let mut bytes = dev_srs().to_bytes();
    bytes[4..36].fill(0xff); // x of the first G1 point, above the base field modulus
    expect_corrupt(load_ceremony_bytes(&bytes), "invalid KZG parameters");
    let mut bytes = dev_srs().to_bytes();
    let n = bytes.len();
    bytes[n - 32..].fill(0xff); // a coordinate of s·G2
    expect_corrupt(load_ceremony_bytes(&bytes), "invalid KZG parameters");
}

/// `parse_params` says it validates points; a point that is not on the curve
/// (both coordinates canonical) must be refused.
#[test]
fn srs_file_with_point_off_the_curve_is_corrupt() {
    let _guard = shared();
    let bytes = dev_srs().to_bytes();
    let n = bytes.len();
    // g[1] (G1) with y := x; s·G2 (G2) with y := x (both coordinates canonical).
    let mut g1 = bytes.clone();
    let x: Vec<u8> = g1[68..100].to_vec();
    g1[100..132].copy_from_slice(&x);
    let mut g2 = bytes.clone();
    let x: Vec<u8> = g2[n - 128..n - 64].to_vec();
    g2[n - 64..].copy_from_slice(&x);
    let mut failures = Vec::new();
    for (what, bad) in [("G1 point g[1]", g1), ("G2 point s*G2", g2)] {
        let result = load_ceremony_bytes(&bad);
        if !matches!(result, Err(KeyError::Corrupt { .. })) {
            failures.push(format!("{what} off the curve: {result:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn ceremony_file_with_larger_k_is_downsized_and_makes_working_keys() {
    let _guard = shared();
    let files_dir = TempDir::create("ceremony-k8");
    let path = files_dir.join("ceremony-k8.params");
    let bytes = params_bytes(K + 1, 8);
    assert_eq!(bytes.len(), raw_len(K + 1));
    write_file(&path, &bytes, 0o444);
    let digest = Digest32::sha256(&bytes);

    let srs = Srs::load_ceremony(&path, &digest).unwrap();
    assert_eq!(srs.trust(), SrsTrust::Ceremony);
    assert_eq!(srs.source_sha256(), digest);
    let downsized = srs.to_bytes();
    assert_eq!(downsized.len(), raw_len(K));
    assert_eq!(downsized[..4], K.to_le_bytes());
    assert_ne!(srs.sha256(), digest);
    // Same toxic waste at k = 7: downsizing gives exactly that setup.
    assert_eq!(downsized, params_bytes(K, 8));

    let keys = TempDir::fresh("ceremony-keys");
    let source = SrsSource::Ceremony {
        path: path.clone(),
        sha256: digest,
    };
    let made = KeySet::generate(keys.path(), &source, ChaCha20Rng::seed_from_u64(9)).unwrap();
    assert_eq!(made.manifest.srs.trust, SrsTrust::Ceremony);
    assert_eq!(made.manifest.srs.source_sha256, digest);
    assert_eq!(
        made.manifest.srs.sha256,
        Digest32::sha256(&fs::read(keys.join(files::SRS)).unwrap())
    );
    assert_eq!(made.manifest.srs.sha256, srs.sha256());
    assert_ne!(made.manifest.vk_id, generated().vk_id);

    let loaded = KeySet::load(keys.path()).unwrap();
    assert_eq!(loaded.manifest, made.manifest);
    assert_eq!(loaded.srs.trust(), SrsTrust::Ceremony);
    assert_eq!(loaded.srs.source_sha256(), digest);
    let (vk, _) = load_verifier(keys.path()).unwrap();
    assert_eq!(vk.id(), made.manifest.vk_id);
    assert_eq!(vk.srs().trust(), SrsTrust::Ceremony);

    let result = sample_result();
    let statement = result.statement(loaded.host_key.host_id());
    let proof = ProofEnvelope::create(
        &loaded.proving_key,
        &statement,
        &loaded.host_key,
        rand::rngs::OsRng,
    )
    .unwrap();
    proof.verify(&vk, &statement.instance()).unwrap();
    // A dev-SRS verifier does not know this key.
    let dev_vk = common::proving_key().verifying_key();
    assert!(matches!(
        proof.verify(dev_vk, &statement.instance()),
        Err(VerifyError::UnknownVerifyingKey { .. })
    ));
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// Runs `body` in a child process of this test binary that runs only the
/// test `name` (`keys::<name>`): `MAX_DEGREE` is process-wide, and every
/// other test of this binary (other modules included) builds keys in
/// parallel, so a test that sets it must be alone in its process. In the
/// child (`FABSTIR_TEST_ALONE` names the test), `body` runs; in the parent,
/// the child must pass exactly one test.
fn alone_in_a_process(name: &str, body: impl FnOnce()) {
    let path = format!("keys::{name}");
    if std::env::var("FABSTIR_TEST_ALONE").as_deref() == Ok(path.as_str()) {
        body();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([path.as_str(), "--exact", "--test-threads=1"])
        .env("FABSTIR_TEST_ALONE", &path)
        .env_remove("MAX_DEGREE")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{path} alone in a process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sets `MAX_DEGREE` for the guard's lifetime and restores the previous value.
struct MaxDegree(Option<std::ffi::OsString>);

impl MaxDegree {
    fn set(value: &str) -> Self {
        let previous = std::env::var_os("MAX_DEGREE");
        std::env::set_var("MAX_DEGREE", value);
        Self(previous)
    }
}

impl Drop for MaxDegree {
    fn drop(&mut self) {
        match self.0.take() {
            Some(v) => std::env::set_var("MAX_DEGREE", v),
            None => std::env::remove_var("MAX_DEGREE"),
        }
    }
}

#[track_caller]
fn expect_environment<T: Debug>(result: Result<T, KeyError>, value: &str) {
    match result {
        Err(KeyError::Environment(v)) => assert_eq!(v, value),
        other => panic!("expected KeyError::Environment({value:?}), got {other:?}"),
    }
}

#[test]
fn unparsable_max_degree_is_an_environment_error() {
    alone_in_a_process("unparsable_max_degree_is_an_environment_error", || {
        let _guard = exclusive();
        let g = generated();
        let dir = g.materialize("env");
        let pk_bytes = g.bytes(files::PROVING_KEY).to_vec();
        {
            let _env = MaxDegree::set("abc");
            expect_environment(VerifyingKey::derive(dev_srs()), "abc");
            expect_environment(ProvingKey::build(dev_srs()), "abc");
            expect_environment(
                ProvingKey::from_file_bytes(Path::new("pk"), &pk_bytes, dev_srs()),
                "abc",
            );
            expect_environment(KeySet::load(dir.path()), "abc");
            let fresh = TempDir::fresh("env-generate");
            expect_environment(
                KeySet::generate(
                    fresh.path(),
                    &SrsSource::InsecureDev,
                    ChaCha20Rng::seed_from_u64(10),
                ),
                "abc",
            );
            assert!(!fresh.join(files::PROVING_KEY).exists());
        }
        // Unset again, everything works.
        assert_eq!(VerifyingKey::derive(dev_srs()).unwrap().id(), g.vk_id);
    });
}

#[test]
fn unparsable_max_degree_fails_verifier_loading_without_panic() {
    alone_in_a_process(
        "unparsable_max_degree_fails_verifier_loading_without_panic",
        || {
            let _guard = exclusive();
            let g = generated();
            let dir = g.materialize("env-verifier");
            let vk_bytes = g.bytes(files::VERIFYING_KEY).to_vec();
            let _env = MaxDegree::set("abc");
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                VerifyingKey::from_file_bytes(Path::new("vk"), &vk_bytes, dev_srs()).map(|k| k.id())
            }));
            match outcome {
                Ok(result) => expect_environment(result, "abc"),
                Err(_) => panic!("VerifyingKey::from_file_bytes panicked with MAX_DEGREE=abc"),
            }
            match catch_unwind(AssertUnwindSafe(|| {
                load_verifier(dir.path()).map(|(vk, _)| vk.id())
            })) {
                Ok(result) => expect_environment(result, "abc"),
                Err(_) => panic!("load_verifier panicked with MAX_DEGREE=abc"),
            }
        },
    );
}

/// The circuit pins its degree, so a numeric MAX_DEGREE changes nothing.
#[test]
fn numeric_max_degree_does_not_change_the_keys() {
    alone_in_a_process("numeric_max_degree_does_not_change_the_keys", || {
        let _guard = exclusive();
        let g = generated();
        for value in ["1", "2", "3", "9"] {
            let _env = MaxDegree::set(value);
            assert_eq!(
                VerifyingKey::derive(dev_srs()).unwrap().id(),
                g.vk_id,
                "MAX_DEGREE={value}"
            );
        }
    });
}
