//! `demo`: keygen, prove and verify end to end on a sample result.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use fabstir_zk::{verify_batch, HostKey, InferenceResult, JobId, KeySet, ProofEnvelope, SrsSource};
use serde_json::json;

use super::Failure;
use crate::metrics::peak_rss_kib;

/// The sample result the demo and the benchmark prove.
pub const SAMPLE_RESULT: &str = r#"{
  "job_id": "42",
  "chain_id": 84532,
  "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  "model": "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf",
  "prompt": "What is the capital of France?",
  "response": "The capital of France is Paris.",
  "tokens_used": 42
}"#;

/// The sample result, parsed.
pub fn sample_result() -> InferenceResult {
    InferenceResult::from_json(SAMPLE_RESULT.as_bytes())
        .expect("the embedded sample result is valid")
}

fn ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

pub fn run(dir: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let temp = tempfile::tempdir().map_err(|e| Failure::other("tempdir", e.to_string()))?;
    let dir = dir.unwrap_or_else(|| temp.path().join("keys"));
    let fail =
        |code: &'static str| move |e: fabstir_zk::ProveError| Failure::other(code, e.to_string());

    eprintln!("1. keygen: SRS (insecure development parameters), proving and verifying keys, host key -> {}", dir.display());
    let start = Instant::now();
    let keys = KeySet::generate(&dir, &SrsSource::InsecureDev, rand::rngs::OsRng)?;
    let keygen_ms = ms(start);
    eprintln!("   vk_id   {}\n   host_id {}\n   ({keygen_ms} ms; WARNING: the development SRS is insecure, proofs under it can be forged)", keys.manifest.vk_id, keys.manifest.host_id);

    let result = sample_result();
    eprintln!(
        "2. prove job {} (model {:?}, {} prompt bytes, {} response bytes)",
        result.job_id.short(),
        model_name(&result),
        result.prompt.len(),
        result.response.len()
    );
    let statement = result.statement(keys.host_key.host_id());
    let start = Instant::now();
    let proof = ProofEnvelope::create(
        &keys.proving_key,
        &statement,
        &keys.host_key,
        rand::rngs::OsRng,
    )
    .map_err(fail("prove_failed"))?;
    let prove_ms = ms(start);
    eprintln!(
        "   commitment {}\n   proof {} bytes (envelope {} bytes) in {prove_ms} ms",
        proof.instance.commitment,
        proof.proof.len(),
        proof.to_bytes().len()
    );

    eprintln!("3. verify: recompute the public inputs from the result and check the proof");
    let vk = keys.verifying_key();
    let start = Instant::now();
    let verified = proof.verify(vk, &result.statement(keys.host_key.host_id()).instance());
    let verify_ms = ms(start);
    eprintln!("   valid: {} ({verify_ms} ms)", verified.is_ok());

    eprintln!("4. tampering is caught:");
    let mut tampered = result.clone();
    tampered.response.push_str(" Also Berlin.");
    let tampered_output = proof.verify(vk, &tampered.statement(keys.host_key.host_id()).instance());
    eprintln!(
        "   changed response        -> {}",
        describe(&tampered_output)
    );
    let other_host = HostKey::generate(rand::rngs::OsRng);
    let other_expected = result.statement(other_host.host_id()).instance();
    let mut stolen = proof.clone();
    stolen.instance = other_expected;
    let stolen_outcome = stolen.verify(vk, &other_expected);
    eprintln!(
        "   claimed by another host -> {}",
        describe(&stolen_outcome)
    );

    eprintln!("5. batch: prove 10 jobs, verify them with one pairing check");
    let mut batch = Vec::new();
    for i in 0..10u64 {
        let mut r = result.clone();
        r.job_id = JobId::from_u64(100 + i);
        let s = r.statement(keys.host_key.host_id());
        let p = ProofEnvelope::create(&keys.proving_key, &s, &keys.host_key, rand::rngs::OsRng)
            .map_err(fail("prove_failed"))?;
        batch.push((p, s.instance()));
    }
    let items: Vec<_> = batch.iter().map(|(p, i)| (p, i)).collect();
    let start = Instant::now();
    let batch_ok = verify_batch(vk, &items).iter().all(|r| r.is_ok());
    let batch_ms = ms(start);
    eprintln!(
        "   all valid: {batch_ok} ({batch_ms} ms for 10, {:.2} ms per proof)",
        batch_ms / 10.0
    );

    let ok = verified.is_ok() && tampered_output.is_err() && stolen_outcome.is_err() && batch_ok;
    println!(
        "{}",
        json!({
            "ok": ok,
            "vk_id": keys.manifest.vk_id.to_string(),
            "host_id": keys.manifest.host_id.to_string(),
            "srs_trust": keys.manifest.srs.trust.to_string(),
            "commitment": proof.instance.commitment.to_string(),
            "proof_bytes": proof.proof.len(),
            "keygen_ms": keygen_ms,
            "prove_ms": prove_ms,
            "verify_ms": verify_ms,
            "batch_verify_ms_per_proof": (batch_ms * 10.0).round() / 100.0,
            "tampered_response_rejected": tampered_output.is_err(),
            "other_host_rejected": stolen_outcome.is_err(),
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::other(
            "demo_failed",
            "the demo did not behave as expected",
        ))
    }
}

fn model_name(result: &InferenceResult) -> String {
    match &result.model {
        fabstir_zk::ModelRef::Name(name) => name.clone(),
        fabstir_zk::ModelRef::Hash(hash) => hash.to_string(),
    }
}

fn describe(outcome: &Result<(), fabstir_zk::VerifyError>) -> String {
    match outcome {
        Ok(()) => "ACCEPTED (unexpected)".into(),
        Err(e) => format!("rejected: {e}"),
    }
}
