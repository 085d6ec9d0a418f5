//! `prove`: prove an inference result with a key directory.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fabstir_zk::{KeySet, ProofEnvelope, ProveError};
use serde_json::json;

use super::{io, Failure};

pub fn run(keys: &Path, result: &Path, out: &Path, timeout_ms: u64) -> Result<ExitCode, Failure> {
    let result = io::read_result(result)?;
    if out.exists() {
        return Err(Failure::input(
            "output_exists",
            format!("{} already exists; refusing to overwrite it", out.display()),
        ));
    }
    let keys = KeySet::load(keys)?;
    let statement = result.statement(keys.host_key.host_id());
    let started = Instant::now();
    let proof = ProofEnvelope::create_with_timeout(
        keys.proving_key.clone(),
        statement,
        keys.host_key.clone(),
        Duration::from_millis(timeout_ms),
    )
    .map_err(|e| match e {
        ProveError::Timeout(_) => Failure::other("prove_timeout", e.to_string()),
        _ => Failure::other("prove_failed", e.to_string()),
    })?;
    let prove_ms = started.elapsed().as_secs_f64() * 1e3;
    io::write_new(out, proof.to_json().as_bytes())?;
    println!(
        "{}",
        json!({
            "out": out.display().to_string(),
            "job_id": result.job_id.to_string(),
            "vk_id": proof.vk_id.to_string(),
            "host_id": proof.instance.host_id.to_string(),
            "commitment": proof.instance.commitment.to_string(),
            "proof_bytes": proof.proof.len(),
            "prove_ms": (prove_ms * 100.0).round() / 100.0,
            "srs_trust": keys.manifest.srs.trust.to_string(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
