//! `evm`: the Solidity verifier for a key set, calldata for a proof, and gas
//! figures measured on a local EVM (`evm bench`, in [`super::evm_bench`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use fabstir_zk::evm::{calldata, solidity, Plan};
use fabstir_zk::{keystore, Srs, VerifyingKey};
use serde_json::json;

use super::{io, Failure};

/// File name of the generated verifier.
pub const VERIFIER_FILE: &str = "FabstirVerifier.sol";

/// `evm` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvmCommand {
    /// Write the Solidity verifier for a key set (DIR/FabstirVerifier.sol).
    Verifier {
        /// Key directory (default: the development keys, which are insecure).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Directory to write FabstirVerifier.sol into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing FabstirVerifier.sol.
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
        #[arg(long)]
        keys: Option<PathBuf>,
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
        EvmCommand::Verifier { keys, out, force } => verifier(keys.as_deref(), &out, force),
        EvmCommand::Calldata { proof, json } => calldata_cmd(&proof, json),
        EvmCommand::Bench {
            json,
            keys,
            batches,
            contracts,
        } => super::evm_bench::run(super::evm_bench::BenchArgs {
            json,
            keys,
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

fn verifier(keys: Option<&Path>, out: &Path, force: bool) -> Result<ExitCode, Failure> {
    let vk = verifying_key(keys)?;
    let (plan, verifier) = verifier_source(&vk)?;
    std::fs::create_dir_all(out).map_err(|e| {
        Failure::other(
            "write_failed",
            format!("cannot create {}: {e}", out.display()),
        )
    })?;
    let path = out.join(VERIFIER_FILE);
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
    io::write_new(&path, verifier.source.as_bytes())?;
    println!(
        "{}",
        json!({
            "path": path.display().to_string(),
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
