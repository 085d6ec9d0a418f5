//! `evm`: the Solidity verifier for a key set, calldata for a proof, and gas
//! figures measured on a local EVM (`evm bench`, in [`super::evm_bench`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use fabstir_zk::evm::{calldata, forge, solidity, Plan};
use fabstir_zk::{keystore, ProvingKey, Srs, VerifyingKey};
use serde_json::json;

use super::{io, Failure};

/// File name of the generated verifier.
pub const VERIFIER_FILE: &str = "FabstirVerifier.sol";

/// File name of the generated forge test.
pub const TEST_FILE: &str = "FabstirVerifier.t.sol";

/// Number of proofs in the forge test.
const TEST_VECTORS: usize = 2;

/// `evm` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvmCommand {
    /// Write the Solidity verifier for a key set (DIR/FabstirVerifier.sol).
    Verifier {
        /// Key directory (default: the development keys, which are insecure).
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: Option<PathBuf>,
        /// Directory to write FabstirVerifier.sol into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also write DIR/FabstirVerifier.t.sol, a forge test of the verifier,
        /// and DIR/vectors/FabstirVerifier.json, the proofs it reads (made by
        /// the development proving key: development keys only).
        #[arg(long, value_name = "DIR")]
        test_out: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Print the calldata of `verify(instances, proof)` for a proof envelope.
    Calldata {
        /// Proof envelope (JSON or binary).
        #[arg(long)]
        proof: PathBuf,
        /// Print a JSON object (signature, instances, proof, calldata) instead of hex.
        #[arg(long)]
        json: bool,
    },
    /// Measure the verifier on a local anvil: gas of verify and verifyBatch
    /// transactions, code sizes, deployment gas.
    ///
    /// Needs Node.js and the repository's contracts/ with its npm packages
    /// installed (`npm ci --prefix contracts`).
    Bench {
        /// Print exactly one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Key directory (default: the development keys, which are insecure).
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: Option<PathBuf>,
        /// Batch sizes of the verifyBatch transactions.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 50])]
        batches: Vec<usize>,
        /// The repository's contracts/ directory (default: the first
        /// contracts/package.json above the current directory, then above
        /// the executable).
        #[arg(long, env = "FABSTIR_CONTRACTS_DIR")]
        contracts: Option<PathBuf>,
    },
}

/// Runs an `evm` subcommand.
pub fn run(command: EvmCommand) -> Result<ExitCode, Failure> {
    match command {
        EvmCommand::Verifier {
            keys_dir,
            out,
            test_out,
            force,
        } => verifier(keys_dir.as_deref(), &out, test_out.as_deref(), force),
        EvmCommand::Calldata { proof, json } => calldata_cmd(&proof, json),
        EvmCommand::Bench {
            json,
            keys_dir,
            batches,
            contracts,
        } => super::evm_bench::run(super::evm_bench::BenchArgs {
            json,
            keys: keys_dir,
            batches,
            contracts,
        }),
    }
}

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

fn verifier(
    keys: Option<&Path>,
    out: &Path,
    test_out: Option<&Path>,
    force: bool,
) -> Result<ExitCode, Failure> {
    if keys.is_some() && test_out.is_some() {
        return Err(Failure::input(
            "bad_argument",
            "--test-out needs the development keys (its proofs are made with the development proving key); drop --keys-dir",
        ));
    }
    let vk = verifying_key(keys)?;
    let (plan, verifier) = verifier_source(&vk)?;
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
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn calldata_cmd(proof: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let envelope = io::read_proof(proof)?;
    let words = calldata::instance_words(&envelope.instance.to_field_elements());
    let data = calldata::verify(&words, &envelope.proof);
    if as_json {
        println!(
            "{}",
            json!({
                "vk_id": envelope.vk_id.to_string(),
                "function": calldata::verify_signature(words.len()),
                "instances": words.iter().map(|w| format!("0x{}", hex::encode(w))).collect::<Vec<_>>(),
                "proof": format!("0x{}", hex::encode(&envelope.proof)),
                "calldata": format!("0x{}", hex::encode(&data)),
                "calldata_bytes": data.len(),
            })
        );
    } else {
        println!("0x{}", hex::encode(&data));
    }
    Ok(ExitCode::SUCCESS)
}
