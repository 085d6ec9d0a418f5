//! `evm`: the Solidity verifier for a key set ([`verifier`]), calldata for
//! a proof, and gas figures measured on a local EVM ([`bench`]).

mod bench;
mod verifier;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use fabstir_zk::evm::calldata;
use serde_json::json;

use super::{io, Failure};

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
        /// Also write a batch verifier for each of these sizes, comma-separated
        /// (DIR/FabstirBatchVerifierN.sol, each contract FabstirBatchVerifier, and the interface
        /// they import, DIR/IFabstirBatchVerifier.sol), from the key directory's parameters.
        #[arg(long, value_parser = super::batch_keys::parse_batch_sizes)]
        batch_sizes: Option<super::batch_keys::BatchSizes>,
        /// With --keys-dir made from a ceremony SRS and --batch-sizes: that ceremony parameters
        /// file (checked against the directory's keys.json), with at least 2^13 rows for batches of 64.
        #[arg(
            long,
            value_name = "FILE",
            requires = "keys_dir",
            requires = "batch_sizes"
        )]
        batch_srs: Option<PathBuf>,
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
        /// Sizes of the batch proofs sent with submitVerifiedBatch (one proof for N checkpoints;
        /// development keys only). Empty to skip.
        #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
        batch_sizes: Vec<usize>,
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
            batch_sizes,
            batch_srs,
        } => verifier::run(verifier::Args {
            keys: keys_dir.as_deref(),
            out: &out,
            test_out: test_out.as_deref(),
            force,
            batch_sizes: batch_sizes.map(|s| s.0).unwrap_or_default(),
            batch_srs,
        }),
        EvmCommand::Calldata { proof, json } => calldata_cmd(&proof, json),
        EvmCommand::Bench {
            json,
            keys_dir,
            batches,
            batch_sizes,
            contracts,
        } => bench::run(bench::BenchArgs {
            json,
            keys: keys_dir,
            batches,
            batch_sizes,
            contracts,
        }),
    }
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
