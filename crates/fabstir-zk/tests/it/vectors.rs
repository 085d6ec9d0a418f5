//! Pinned artefacts: an accidental change of circuit, parameters, transcript
//! or proof format fails here.
//!
//! - `tests/data/vk_pinned.txt`: halo2's own `vk.pinned()` description of
//!   the development verifying key (every gate polynomial and coefficient);
//! - `tests/data/vk_description.txt`: the verifying key under the development
//!   SRS (constraint system shape, queries, gates, fixed commitments, and
//!   halo2's transcript representation, which hashes every gate polynomial),
//!   and `tests/data/vk_id.txt`;
//! - the same three for circuit version 1 (`*_v1.txt`), which still
//!   verifies: they were written by the version 1 release and are never
//!   regenerated, so they show the version 1 key is derived unchanged;
//! - `tests/data/proof_v2.json`: a proof of a fixed statement, which must keep
//!   verifying. halo2-axiom draws the vanishing argument's random polynomial
//!   from `thread_rng`, so proofs are not reproducible byte for byte; the
//!   part that is (the advice commitments, from our seeded RNG and the
//!   witness layout) is compared exactly;
//! - `tests/data/proof_v1.json`: a version 1 proof written by the version 1
//!   release (never regenerated), which must keep verifying against the
//!   version 1 key and be refused as a version 2 proof;
//! - `docs/test-vectors.json`: Poseidon and commitment vectors for clients,
//!   cross-checked here against `light-poseidon`.
//!
//! After an intended change, regenerate with
//! `FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --test it -- vectors::`
//! and bump `CIRCUIT_VERSION` if proofs or keys changed.

use crate::common;

use std::path::PathBuf;

use ark_ff::{BigInteger, PrimeField as ArkPrimeField};
use fabstir_zk::statement::{field_to_be, limbs};
use fabstir_zk::{
    poseidon, CircuitVersion, Fr, HostKey, InferenceResult, ProofEnvelope, VerifyError,
    VerifyingKey, VkId,
};
use light_poseidon::{Poseidon, PoseidonHasher};
use rand::SeedableRng;
use serde_json::{json, Value};

pub(crate) fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

fn regenerate() -> bool {
    std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some()
}

/// Compares `actual` with the checked-in file, or rewrites it when regenerating.
pub(crate) fn pinned(path: PathBuf, actual: &str) {
    if regenerate() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with FABSTIR_REGENERATE_VECTORS=1)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} changed. If the change is intended, regenerate with FABSTIR_REGENERATE_VECTORS=1 and bump CIRCUIT_VERSION.\n{}",
            path.display(),
            line_diff(&expected, actual)
        );
    }
}

/// The lines that differ (at most 40), as `-` expected / `+` actual with
/// their line numbers: enough to see which coefficient or query changed.
fn line_diff(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = Vec::new();
    for i in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(i), new.get(i));
        if a != b {
            if let Some(a) = a {
                out.push(format!("{:>6} - {a}", i + 1));
            }
            if let Some(b) = b {
                out.push(format!("{:>6} + {b}", i + 1));
            }
        }
        if out.len() >= 40 {
            out.push("       ...".into());
            break;
        }
    }
    out.join("\n")
}

#[test]
fn line_diff_names_the_changed_lines() {
    let diff = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
    assert_eq!(diff, "     2 - b\n     2 + B\n     4 + d");
}

fn hex32(x: &Fr) -> String {
    format!("0x{}", hex::encode(field_to_be(x)))
}

#[test]
fn verifying_key_is_pinned() {
    let vk = common::proving_key().verifying_key();
    assert_eq!(vk.version(), CircuitVersion::V2);
    pinned(data("vk_description.txt"), &vk.description());
    pinned(data("vk_pinned.txt"), &vk.pinned());
    pinned(data("vk_id.txt"), &format!("{}\n", vk.id()));
}

/// The version 1 key, derived from the same SRS.
fn v1_verifying_key() -> VerifyingKey {
    let srs = common::proving_key().verifying_key().srs().clone();
    VerifyingKey::derive_version(srs, CircuitVersion::V1).unwrap()
}

/// The version 1 key derived today is the one version 1 pinned: same
/// description, same `vk.pinned()`, same id (files never regenerated).
#[test]
fn version_1_verifying_key_is_unchanged() {
    let vk = v1_verifying_key();
    let read = |name: &str| std::fs::read_to_string(data(name)).unwrap();
    let expected = read("vk_description_v1.txt");
    assert!(
        expected == vk.description(),
        "{}",
        line_diff(&expected, &vk.description())
    );
    let expected = read("vk_pinned_v1.txt");
    assert!(
        expected == vk.pinned(),
        "{}",
        line_diff(&expected, &vk.pinned())
    );
    assert_eq!(read("vk_id_v1.txt"), format!("{}\n", vk.id()));
    assert_eq!(
        common::proving_key()
            .verifying_key()
            .older_versions()
            .unwrap()[0]
            .id(),
        vk.id()
    );
}

/// The version 1 proof written by the version 1 release verifies against
/// the version 1 key (selected by its vk_id) and the version 1 public inputs
/// of its result, and is refused as a version 2 proof.
#[test]
fn version_1_proof_still_verifies_and_is_refused_as_version_2() {
    let (result, host) = vector_statement();
    let statement = result.statement(host.host_id());
    let stored = ProofEnvelope::from_json(&std::fs::read(data("proof_v1.json")).unwrap()).unwrap();
    assert_eq!(stored.version(), CircuitVersion::V1);
    assert_eq!(stored.instance.tokens, None);
    // The binary form is a version 1 envelope (6 public inputs) and round trips.
    let bytes = stored.to_bytes();
    assert_eq!(bytes[5], 1);
    assert_eq!(ProofEnvelope::from_bytes(&bytes).unwrap(), stored);
    let v1 = v1_verifying_key();
    assert_eq!(stored.vk_id, v1.id());
    let v1_instance = statement.instance_for(CircuitVersion::V1);
    assert_eq!(stored.instance, v1_instance);
    stored.verify(&v1, &v1_instance).unwrap();
    let batch = fabstir_zk::verify_batch(&v1, &[(&stored, &v1_instance)]);
    assert_eq!(batch, [Ok(())]);
    // As a version 2 proof: the version 2 key has another id, and the
    // version 2 public inputs (with tokens) are not the proof's.
    let v2 = common::proving_key().verifying_key();
    assert!(matches!(
        stored.verify(v2, &statement.instance()),
        Err(VerifyError::UnknownVerifyingKey { .. })
    ));
    assert_eq!(
        stored.verify(&v1, &statement.instance()),
        Err(VerifyError::InstanceMismatch { field: "tokens" })
    );
    // Relabelled as version 2 (the v2 key's id and the v2 public inputs),
    // the version 1 proof bytes do not verify.
    let relabelled = ProofEnvelope {
        vk_id: v2.id(),
        instance: statement.instance(),
        proof: stored.proof.clone(),
    };
    assert_eq!(
        relabelled.verify(v2, &statement.instance()),
        Err(VerifyError::Invalid)
    );
    // A version 1 envelope claiming the version 2 key is refused before the
    // pairing check.
    let mislabelled = ProofEnvelope {
        vk_id: v2.id(),
        ..stored.clone()
    };
    assert_eq!(
        mislabelled.verify(v2, &v1_instance),
        Err(VerifyError::CircuitVersion { key: 2, proof: 1 })
    );
}

/// A fresh version 1 proof (made with the version 1 circuit) verifies with
/// the version 1 key and is refused by the version 2 key.
#[test]
fn a_fresh_version_1_proof_verifies_with_the_version_1_key_only() {
    let srs = common::proving_key().verifying_key().srs().clone();
    let pk = fabstir_zk::ProvingKey::build_version(srs, CircuitVersion::V1).unwrap();
    let (result, host) = vector_statement();
    let statement = result.statement(host.host_id());
    let rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let proof = ProofEnvelope::create(&pk, &statement, &host, rng).unwrap();
    assert_eq!(proof.version(), CircuitVersion::V1);
    assert_eq!(proof.vk_id, v1_verifying_key().id());
    proof
        .verify(
            &v1_verifying_key(),
            &statement.instance_for(CircuitVersion::V1),
        )
        .unwrap();
    assert!(proof
        .verify(common::proving_key().verifying_key(), &statement.instance())
        .is_err());
}

/// The fixed statement of the proof test vector.
fn vector_statement() -> (InferenceResult, HostKey) {
    let result = InferenceResult::from_json(
        br#"{"job_id": "0x00000000000000000000000000000000000000000000000000000000000004d2",
            "chain_id": 8453, "marketplace": "0x1234567890abcdef1234567890abcdef12345678",
            "model_hash": "0x2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "prompt": "Summarise the halo2 paper in one sentence.",
            "response": "Halo 2 is a PLONKish proving system.", "tokens_used": 1234}"#,
    )
    .unwrap();
    (result, HostKey::from_secret(Fr::from(VECTOR_SECRET)))
}

/// Host secret of the proof test vector.
const VECTOR_SECRET: u64 = 0x0123_4567_89ab_cdef;

#[test]
fn proof_test_vector_still_verifies() {
    let pk = common::proving_key();
    let (result, host) = vector_statement();
    let statement = result.statement(host.host_id());
    let rng = rand_chacha::ChaCha20Rng::seed_from_u64(20261125);
    let fresh = ProofEnvelope::create(pk, &statement, &host, rng).unwrap();
    if regenerate() {
        std::fs::write(data("proof_v2.json"), format!("{}\n", fresh.to_json())).unwrap();
    }
    let stored = ProofEnvelope::from_json(&std::fs::read(data("proof_v2.json")).unwrap()).unwrap();
    assert_eq!(stored.version(), CircuitVersion::V2);
    assert_eq!(
        stored.vk_id,
        VkId::parse(std::fs::read_to_string(data("vk_id.txt")).unwrap().trim()).unwrap()
    );
    assert_eq!(stored.instance, statement.instance());
    stored
        .verify(pk.verifying_key(), &statement.instance())
        .unwrap();
    // The advice commitments depend only on the witness and our seeded RNG.
    let advice = 8 * 64;
    assert_eq!(
        fresh.proof[..advice],
        stored.proof[..advice],
        "advice commitments changed"
    );
    if !regenerate() {
        assert_ne!(
            fresh.proof, stored.proof,
            "halo2's vanishing blinding is expected to differ between runs"
        );
    }
}

fn to_ark(x: &Fr) -> ark_bn254::Fr {
    use halo2_axiom::halo2curves::ff::PrimeField;
    ark_bn254::Fr::from_le_bytes_mod_order(&x.to_repr())
}

fn from_ark(x: &ark_bn254::Fr) -> String {
    let mut be = x.into_bigint().to_bytes_be();
    while be.len() < 32 {
        be.insert(0, 0);
    }
    format!("0x{}", hex::encode(be))
}

/// Client test vectors: Poseidon with 1 and 11 inputs, and whole statements
/// from result to commitment. Every hash is recomputed with light-poseidon.
#[test]
fn client_test_vectors_are_pinned_and_independently_checked() {
    let mut h1 = Poseidon::<ark_bn254::Fr>::new_circom(1).unwrap();
    let mut h11 = Poseidon::<ark_bn254::Fr>::new_circom(11).unwrap();
    let mut poseidon1 = Vec::new();
    for x in [
        Fr::from(0),
        Fr::from(1),
        Fr::from(0x0123_4567_89ab_cdefu64),
        -Fr::from(1),
    ] {
        let ours = hex32(&poseidon::hash1(x));
        assert_eq!(ours, from_ark(&h1.hash(&[to_ark(&x)]).unwrap()));
        poseidon1.push(json!({ "input": hex32(&x), "output": ours }));
    }
    let mut poseidon11 = Vec::new();
    for seed in [0u64, 1, 42] {
        let inputs: [Fr; 11] = std::array::from_fn(|i| Fr::from(seed * 100 + i as u64));
        let ours = hex32(&poseidon::hash11(&inputs));
        let ark: Vec<_> = inputs.iter().map(to_ark).collect();
        assert_eq!(ours, from_ark(&h11.hash(&ark).unwrap()));
        poseidon11.push(
            json!({ "inputs": inputs.iter().map(hex32).collect::<Vec<_>>(), "output": ours }),
        );
    }

    let mut statements = Vec::new();
    let mut statements_v1 = Vec::new();
    let (vector_result, vector_host) = vector_statement();
    let sample = common::sample_result();
    let mut named = sample.clone();
    named.model = fabstir_zk::ModelRef::Name("llama-3-8b-instruct.Q4_K_M.gguf".into());
    let cases = [
        (vector_result, vector_host, Fr::from(VECTOR_SECRET)),
        (sample, common::host(7), common::host_secret(7)),
        (named, common::host(8), common::host_secret(8)),
    ];
    for (result, host, secret) in cases {
        assert_eq!(host.host_id(), HostKey::from_secret(secret).host_id());
        let statement = result.statement(host.host_id());
        let inputs = statement.commitment_inputs();
        let ark: Vec<_> = inputs.iter().map(to_ark).collect();
        let commitment = hex32(&statement.commitment());
        assert_eq!(commitment, from_ark(&h11.hash(&ark).unwrap()));
        let (input_hi, input_lo) = limbs(&statement.input_hash.0);
        statements.push(json!({
            "result": serde_json::from_str::<Value>(&result.to_json()).unwrap(),
            "host_secret": hex32(&secret),
            "host_id": statement.host_id.to_string(),
            "model_hash": statement.model_hash.to_string(),
            "input_hash": statement.input_hash.to_string(),
            "input_limbs": [hex32(&input_hi), hex32(&input_lo)],
            "output_hash": statement.output_hash.to_string(),
            "commitment_inputs": inputs.iter().map(hex32).collect::<Vec<_>>(),
            "commitment": commitment,
            "instances": statement.instance().to_field_elements().iter().map(hex32).collect::<Vec<_>>(),
        }));
        // Version 1: the same result without tokens_used; chain_id alone.
        let v1 = CircuitVersion::V1;
        let inputs = statement.commitment_inputs_for(v1);
        let ark: Vec<_> = inputs.iter().map(to_ark).collect();
        let commitment = hex32(&statement.commitment_for(v1));
        assert_eq!(commitment, from_ark(&h11.hash(&ark).unwrap()));
        let mut result_json = serde_json::from_str::<Value>(&result.to_json()).unwrap();
        result_json.as_object_mut().unwrap().remove("tokens_used");
        statements_v1.push(json!({
            "result": result_json,
            "host_secret": hex32(&secret),
            "host_id": statement.host_id.to_string(),
            "model_hash": statement.model_hash.to_string(),
            "input_hash": statement.input_hash.to_string(),
            "input_limbs": [hex32(&input_hi), hex32(&input_lo)],
            "output_hash": statement.output_hash.to_string(),
            "commitment_inputs": inputs.iter().map(hex32).collect::<Vec<_>>(),
            "commitment": commitment,
            "instances": statement.instance_for(v1).to_field_elements().iter().map(hex32).collect::<Vec<_>>(),
        }));
    }
    let document = json!({
        "description": "fabstir-zk test vectors: circuit version 2 (statements) and version 1 (statements_v1, still verified). Poseidon is circomlib's (BN254, x^5, 8 full rounds; 56 partial rounds for 1 input, 60 for 11). host_id = Poseidon(host_secret). Version 2: commitment = Poseidon(chain_id + 2^64 * tokens, marketplace, job.hi, job.lo, model.hi, model.lo, input.hi, input.lo, output.hi, output.lo, host_id), tokens being the result's tokens_used (both below 2^64), and the instances are chain_id, marketplace, job.hi, job.lo, host_id, commitment, tokens. Version 1: the first input is chain_id alone, and the instances are the first six. Each 32-byte value is split into 128-bit big-endian halves (hi, lo) and hashes are SHA-256 of the UTF-8 bytes (model_hash as given, or SHA-256 of the model name). Field elements are 0x + 64 big-endian hex digits.",
        "poseidon_1": poseidon1,
        "poseidon_11": poseidon11,
        "statements": statements,
        "statements_v1": statements_v1,
    });
    pinned(
        docs("test-vectors.json"),
        &(serde_json::to_string_pretty(&document).unwrap() + "\n"),
    );
}
