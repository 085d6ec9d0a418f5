//! Shared fixtures: keys under the development SRS (built once per test
//! binary) and a sample result.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use fabstir_zk::{Fr, HostKey, InferenceResult, ProvingKey, Srs};

/// Proving key for the development SRS, built once.
pub fn proving_key() -> &'static ProvingKey {
    static PK: OnceLock<ProvingKey> = OnceLock::new();
    PK.get_or_init(|| ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen"))
}

/// The fixed secret of test host `n`.
pub fn host_secret(n: u64) -> Fr {
    Fr::from(0x5eed_0000 + n)
}

/// A host key with a fixed secret.
pub fn host(n: u64) -> HostKey {
    HostKey::from_secret(host_secret(n))
}

/// A sample inference result.
pub fn sample_result() -> InferenceResult {
    InferenceResult::from_json(
        br#"{"job_id": "123456789012345678901234567890", "chain_id": 84532,
            "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "model_hash": "0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "prompt": "What is the capital of France?",
            "response": "The capital of France is Paris.", "tokens_used": 42}"#,
    )
    .expect("sample result parses")
}
