//! `verify`: check a proof against a result (exit 0 valid, 1 invalid, 2 malformed).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use fabstir_zk::{keystore, HostId, VerifyError};
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
