//! `evm verifier`: the Solidity verifier (and its forge test) for a key set.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use fabstir_zk::evm::{forge, solidity, Plan};
use fabstir_zk::{keystore, ProvingKey, Srs, VerifyingKey};
use serde_json::json;

use crate::cli::{io, Failure};

/// File name of the generated verifier.
pub const VERIFIER_FILE: &str = "FabstirVerifier.sol";

/// File name of the generated forge test.
pub const TEST_FILE: &str = "FabstirVerifier.t.sol";

/// Number of proofs in the forge test.
const TEST_VECTORS: usize = 2;

/// The verifying key of `keys`, or the development key.
pub fn verifying_key(keys: Option<&Path>) -> Result<VerifyingKey, Failure> {
    match keys {
        Some(dir) => Ok(keystore::load_verifier(dir)?.0),
        None => Ok(VerifyingKey::derive(Arc::new(Srs::insecure_dev()))?),
    }
}

/// The verifier source for a verifying key.
pub fn verifier_source(vk: &VerifyingKey) -> Result<(Plan, solidity::Verifier), Failure> {
    let plan = Plan::new(vk).map_err(|e| Failure::other("evm_unsupported", e.to_string()))?;
    let verifier = solidity::generate(&plan);
    Ok((plan, verifier))
}

/// Writes `dir/name`, creating `dir`; an existing file is replaced only
/// with `force`.
fn write_file(dir: &Path, name: &str, bytes: &[u8], force: bool) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::other(
            "write_failed",
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let path = dir.join(name);
    if force && path.exists() {
        std::fs::remove_file(&path).map_err(|e| {
            Failure::other(
                "write_failed",
                format!("cannot replace {}: {e}", path.display()),
            )
        })?;
    }
    if path.exists() {
        return Err(Failure::other(
            "exists",
            format!("{} exists; pass --force to replace it", path.display()),
        ));
    }
    io::write_new(&path, bytes)?;
    Ok(path)
}

/// The forge test of the development key's verifier, and its test vectors
/// (JSON).
fn forge_test(plan: &Plan) -> Result<(String, String), Failure> {
    let pk = ProvingKey::build(Arc::new(Srs::insecure_dev()))?;
    let vectors = forge::vectors(&pk, TEST_VECTORS)
        .map_err(|e| Failure::other("prove_failed", format!("test vectors: {e}")))?;
    Ok((
        forge::test_source(plan),
        forge::vectors_json(plan, &vectors),
    ))
}

/// The interface the batch verifiers import (`./IFabstirBatchVerifier.sol`),
/// written beside them.
const BATCH_INTERFACE_FILE: &str = "IFabstirBatchVerifier.sol";

/// Its source: the repository's, built into the binary.
const BATCH_INTERFACE: &str =
    include_str!("../../../../../contracts/src/IFabstirBatchVerifier.sol");

/// What `evm verifier` was asked for.
pub(super) struct Args<'a> {
    /// Key directory (None: the development keys).
    pub keys: Option<&'a Path>,
    /// Directory the verifiers are written to.
    pub out: &'a Path,
    /// Directory of the forge test (development keys only).
    pub test_out: Option<&'a Path>,
    /// Replace existing files.
    pub force: bool,
    /// Sizes of the batch verifiers to write (none: only the single verifier).
    pub batch_sizes: Vec<usize>,
    /// The ceremony parameters file of a ceremony key directory, for batches.
    pub batch_srs: Option<PathBuf>,
}

/// Writes a batch verifier for each key, and their interface, into `out`;
/// for each: its size, path, key id and number of public inputs.
fn write_batch_verifiers(
    keys: &[fabstir_zk::BatchVerifyingKey],
    out: &Path,
    force: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let mut written = serde_json::Map::new();
    if keys.is_empty() {
        return Ok(written);
    }
    // Every source is generated before any file is written: a size the
    // generator refuses leaves nothing behind.
    let sources = keys
        .iter()
        .map(|vk| {
            let plan = Plan::for_batch(vk).map_err(|e| {
                Failure::other(
                    "evm_unsupported",
                    format!("batch verifier of {}: {e}", vk.size()),
                )
            })?;
            let verifier = solidity::generate_with(&plan, solidity::Mode::Loops);
            Ok((vk, plan, verifier))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    write_file(out, BATCH_INTERFACE_FILE, BATCH_INTERFACE.as_bytes(), force)?;
    for (vk, plan, verifier) in sources {
        let n = vk.size().get();
        let name = format!("FabstirBatchVerifier{n}.sol");
        let path = write_file(out, &name, verifier.source.as_bytes(), force)?;
        written.insert(
            n.to_string(),
            json!({
                "path": path.display().to_string(),
                "vk_id": plan.vk_id.to_string(),
                "num_instances": plan.num_instances(),
                "proof_length": plan.layout().len,
            }),
        );
    }
    Ok(written)
}

/// Runs `evm verifier`.
pub(super) fn run(args: Args<'_>) -> Result<ExitCode, Failure> {
    let Args {
        keys,
        out,
        test_out,
        force,
        batch_sizes,
        batch_srs,
    } = args;
    if keys.is_some() && test_out.is_some() {
        return Err(Failure::input(
            "bad_argument",
            "--test-out needs the development keys (its proofs are made with the development proving key); drop --keys-dir",
        ));
    }
    let vk = verifying_key(keys)?;
    let (plan, verifier) = verifier_source(&vk)?;
    // The batch keys first: a key directory whose parameters cannot give a
    // size is refused before anything is written.
    let batch_keys = crate::cli::batch_keys::batch_keys(&batch_sizes, keys, batch_srs)?;
    let test = test_out.map(|_| forge_test(&plan)).transpose()?;
    let path = write_file(out, VERIFIER_FILE, verifier.source.as_bytes(), force)?;
    let (test_path, vectors_path) = match (test_out, test) {
        (Some(dir), Some((source, vectors))) => {
            let vectors_file = dir.join(forge::VECTORS_FILE);
            let (vectors_dir, vectors_name) =
                match (vectors_file.parent(), vectors_file.file_name()) {
                    (Some(parent), Some(name)) => {
                        (parent.to_path_buf(), name.to_string_lossy().into_owned())
                    }
                    _ => (dir.to_path_buf(), forge::VECTORS_FILE.to_string()),
                };
            (
                Some(write_file(dir, TEST_FILE, source.as_bytes(), force)?),
                Some(write_file(
                    &vectors_dir,
                    &vectors_name,
                    vectors.as_bytes(),
                    force,
                )?),
            )
        }
        _ => (None, None),
    };
    let batch_verifiers = write_batch_verifiers(&batch_keys, out, force)?;
    println!(
        "{}",
        json!({
            "path": path.display().to_string(),
            "test_path": test_path.map(|p| p.display().to_string()),
            "vectors_path": vectors_path.map(|p| p.display().to_string()),
            "vk_id": plan.vk_id.to_string(),
            "circuit_version": plan.circuit_version,
            "num_instances": plan.num_instances(),
            "proof_length": plan.layout().len,
            "constants": verifier.constants,
            "development_keys": keys.is_none(),
            "batch_verifiers": batch_verifiers,
        })
    );
    Ok(ExitCode::SUCCESS)
}
