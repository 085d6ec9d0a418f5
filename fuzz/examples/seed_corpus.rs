//! Writes a seed corpus for the `envelope` fuzz target: one real proof (made
//! under the insecure development SRS with a fixed RNG seed) in binary and
//! JSON form, and a few near misses. Without valid seeds libFuzzer would
//! almost never get past the header and the curve-point checks.
//!
//! Usage (from `fuzz/`): `cargo run --release --example seed_corpus [DIR]`
//! (DIR defaults to `corpus/envelope`).

use std::path::PathBuf;
use std::sync::Arc;

use fabstir_zk::{Fr, HostKey, InferenceResult, ProofEnvelope, ProvingKey, Srs};
use rand_chacha::rand_core::SeedableRng;

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "corpus/envelope".into()),
    );
    std::fs::create_dir_all(&dir).expect("create corpus directory");

    let pk = ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen");
    let host = HostKey::from_secret(Fr::from(0x5eed_0007u64));
    let result = InferenceResult::from_json(
        br#"{"job_id": "123456789012345678901234567890", "chain_id": 84532,
            "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "model": "llama-3", "prompt": "What is the capital of France?",
            "response": "The capital of France is Paris.", "tokens_used": 42}"#,
    )
    .expect("sample result");
    let statement = result.statement(host.host_id());
    let rng = rand_chacha::ChaCha20Rng::seed_from_u64(0xf2_7a11);
    let envelope = ProofEnvelope::create(&pk, &statement, &host, rng).expect("prove");
    envelope
        .verify(pk.verifying_key(), &statement.instance())
        .expect("seed proof verifies");

    let binary = envelope.to_bytes();
    let json = envelope.to_json();
    // The seeds must be accepted by the parsers being fuzzed (regenerate them
    // whenever the circuit, and so the proof layout, changes).
    assert_eq!(ProofEnvelope::from_bytes(&binary).as_ref(), Ok(&envelope));
    assert_eq!(
        ProofEnvelope::from_json(json.as_bytes()).as_ref(),
        Ok(&envelope)
    );
    let compact: String = json.split_whitespace().collect::<Vec<_>>().join("");
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![
        ("valid.bin", binary.clone()),
        ("valid.json", json.clone().into_bytes()),
        ("valid-compact.json", compact.into_bytes()),
        (
            "header-only.bin",
            binary[..fabstir_zk::envelope::HEADER_LEN].to_vec(),
        ),
        ("trailing.bin", [binary.as_slice(), &[0]].concat()),
    ];
    let mut bad_flags = binary.clone();
    bad_flags[6] = 1;
    seeds.push(("flags.bin", bad_flags));
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
    println!("wrote {} seeds to {}", seeds.len(), dir.display());
}
