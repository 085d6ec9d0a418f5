//! `keys export-vk`: write the verifying key for client verifiers.
//!
//! A client (the JavaScript package in `clients/js`) checks proofs offline
//! with nothing to trust but a `vk_id`: the export holds the data that id is
//! computed from, so the client recomputes it and refuses any other key
//! (format: `fabstir_zk::export`). Only public data is read and written.
//! With `--batch-size N`, the batch verifying key of that size.

use std::path::PathBuf;
use std::process::ExitCode;

use fabstir_zk::{keystore, BatchSize};
use serde_json::json;

use super::{io, Failure};

/// Arguments of `keys export-vk`.
#[derive(Debug, clap::Args)]
pub struct ExportVkArgs {
    /// Key directory (only the manifest, SRS and verifying key are read).
    #[arg(
        long = "keys-dir",
        alias = "keys",
        value_name = "DIR",
        default_value = "data/keys"
    )]
    keys_dir: PathBuf,
    /// File to write (JSON; must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Export the batch verifying key of batches of N entries instead (derived from the
    /// directory's SRS, as `verify --batch` derives it).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// With --batch-size and keys made from a ceremony SRS: the ceremony parameters file they
    /// were made from (checked against keys.json), for sizes larger than the directory's SRS gives.
    #[arg(long, value_name = "FILE", requires = "batch_size")]
    batch_srs: Option<PathBuf>,
}

/// Loads the directory's verifying key, writes its export and prints a JSON
/// line naming the file and the key's `vk_id`.
pub fn run(args: &ExportVkArgs) -> Result<ExitCode, Failure> {
    let (vk, manifest) = keystore::load_verifier(&args.keys_dir)?;
    if let Some(n) = args.batch_size {
        let size = BatchSize::new(n)
            .map_err(|e| Failure::input("unsupported_batch_size", format!("--batch-size: {e}")))?;
        let batch = super::batch_keys::batch_key(&vk, &manifest, args.batch_srs.as_deref(), size)?;
        let export = batch.export_json()?;
        io::write_new(&args.out, export.as_bytes())?;
        println!(
            "{}",
            json!({
                "out": args.out.display().to_string(),
                "vk_id": batch.id().to_string(),
                "entries": n,
                "bytes": export.len(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let export = vk.export_json()?;
    io::write_new(&args.out, export.as_bytes())?;
    println!(
        "{}",
        json!({
            "out": args.out.display().to_string(),
            "vk_id": vk.id().to_string(),
            "circuit_version": vk.version().as_u8(),
            "bytes": export.len(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
