//! `verify`: check a proof against a result, or the result's checkpoint
//! inside a batch proof (exit 0 valid, 1 invalid, 2 malformed).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use fabstir_zk::statement::FieldHex;
use fabstir_zk::{check_result, keystore, EntryError, HostId, VerifyError};
use serde_json::json;

use super::{io, Failure};

pub fn run(
    keys: &Path,
    result: &Path,
    proof: &Path,
    host_id: Option<&str>,
) -> Result<ExitCode, Failure> {
    let result = io::read_result(result)?;
    let envelope = io::read_proof(proof)?;
    let host_id = host_id
        .map(HostId::parse)
        .transpose()
        .map_err(|e| Failure::input("bad_argument", format!("--host-id: {e}")))?;
    let (current, manifest) = keystore::load_verifier(keys)?;
    // The key the proof names: the directory's, or one of an older circuit
    // version derived from its SRS (a version 1 proof made before the
    // upgrade). Any other id is reported by `verify` as unknown.
    let vk = if envelope.vk_id == current.id() {
        current
    } else {
        current
            .older_versions()?
            .into_iter()
            .find(|vk| vk.id() == envelope.vk_id)
            .unwrap_or(current)
    };
    let host_id = host_id.unwrap_or(manifest.host_id);
    // The public inputs of the proof's own circuit version.
    let expected = result.statement(host_id).instance_for(envelope.version());
    let started = Instant::now();
    let outcome = envelope.verify(&vk, &expected);
    let verify_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut report = json!({
        "job_id": result.job_id.to_string(),
        "host_id": host_id.to_string(),
        "vk_id": vk.id().to_string(),
        "commitment": expected.commitment.to_string(),
        "verify_ms": (verify_ms * 100.0).round() / 100.0,
        "srs_trust": manifest.srs.trust.to_string(),
    });
    match outcome {
        Ok(()) => {
            report["valid"] = json!(true);
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(VerifyError::Malformed(e)) => Err(Failure::input("malformed_proof", e.to_string())),
        Err(e) => {
            report["valid"] = json!(false);
            report["reason"] = json!(e.to_string());
            report["reason_code"] = json!(crate::reasons::verify_reason_code(&e));
            println!("{report}");
            Ok(ExitCode::from(1))
        }
    }
}

/// What `verify --batch` was given.
pub struct BatchArgs<'a> {
    /// Key directory.
    pub keys: &'a Path,
    /// The inference result file.
    pub result: &'a Path,
    /// The batch proof file.
    pub batch: &'a Path,
    /// The checkpoint's cumulative tokens (default: the result's tokens_used).
    pub tokens: Option<u64>,
    /// Host the work is attributed to (default: the key directory's).
    pub host_id: Option<&'a str>,
    /// The ceremony parameters file the keys were made from.
    pub batch_srs: Option<&'a Path>,
}

/// `verify --batch`: checks the result's checkpoint at `tokens` (default:
/// its `tokens_used`) inside a batch proof, under the batch verifying key of
/// the proof's size ([`batch_key`](super::batch_keys::batch_key)).
pub fn run_batch(args: BatchArgs<'_>) -> Result<ExitCode, Failure> {
    let BatchArgs {
        keys,
        result,
        batch,
        tokens,
        host_id,
        batch_srs,
    } = args;
    let result = io::read_result(result)?;
    let proof = io::read_batch(batch)?;
    let host_id = host_id
        .map(HostId::parse)
        .transpose()
        .map_err(|e| Failure::input("bad_argument", format!("--host-id: {e}")))?;
    let (current, manifest) = keystore::load_verifier(keys)?;
    let host_id = host_id.unwrap_or(manifest.host_id);
    let tokens = tokens.unwrap_or(result.tokens_used);
    let vk = super::batch_keys::batch_key(&current, &manifest, batch_srs, proof.size)?;
    let started = Instant::now();
    let outcome = check_result(&proof, &vk, &result, host_id, tokens);
    let verify_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut statement = result.statement(host_id);
    statement.tokens = tokens;
    let mut report = json!({
        "job_id": result.job_id.to_string(),
        "host_id": host_id.to_string(),
        "tokens": tokens,
        "batch_size": proof.size.get(),
        "vk_id": vk.id().to_string(),
        "commitment": FieldHex(statement.commitment()).to_string(),
        "verify_ms": (verify_ms * 100.0).round() / 100.0,
        "srs_trust": manifest.srs.trust.to_string(),
    });
    match outcome {
        Ok(found) => {
            report["valid"] = json!(true);
            report["entry"] = json!(found.entry);
            report["entries"] = json!(found.entries);
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(EntryError::Malformed(e)) => Err(Failure::input("malformed_proof", e.to_string())),
        Err(e) => {
            report["valid"] = json!(false);
            report["reason"] = json!(e.to_string());
            report["reason_code"] = json!(crate::reasons::batch_reason_code(&e));
            println!("{report}");
            Ok(ExitCode::from(1))
        }
    }
}
