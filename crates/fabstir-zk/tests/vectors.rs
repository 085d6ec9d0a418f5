//! Pinned artefacts: an accidental change of circuit, parameters, transcript
//! or proof format fails here.
//!
//! - `tests/data/vk_pinned.txt`: halo2's own `vk.pinned()` description of
//!   the development verifying key (every gate polynomial and coefficient);
//! - `tests/data/vk_description.txt`: the verifying key under the development
//!   SRS (constraint system shape, queries, gates, fixed commitments, and
//!   halo2's transcript representation, which hashes every gate polynomial),
//!   and `tests/data/vk_id.txt`;
//! - `tests/data/proof_v1.json`: a proof of a fixed statement, which must keep
//!   verifying. halo2-axiom draws the vanishing argument's random polynomial
//!   from `thread_rng`, so proofs are not reproducible byte for byte; the
//!   part that is (the advice commitments, from our seeded RNG and the
//!   witness layout) is compared exactly;
//! - `docs/test-vectors.json`: Poseidon and commitment vectors for clients,
//!   cross-checked here against `light-poseidon`.
//!
//! After an intended change, regenerate with
//! `FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --test vectors`
//! and bump `CIRCUIT_VERSION` if proofs or keys changed.

mod common;

use std::path::PathBuf;

use ark_ff::{BigInteger, PrimeField as ArkPrimeField};
use fabstir_zk::statement::{field_to_be, limbs};
use fabstir_zk::{poseidon, Fr, HostKey, InferenceResult, ProofEnvelope, VkId};
use light_poseidon::{Poseidon, PoseidonHasher};
use rand::SeedableRng;
use serde_json::{json, Value};

fn data(name: &str) -> PathBuf {
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
fn pinned(path: PathBuf, actual: &str) {
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
    pinned(data("vk_description.txt"), &vk.description());
    pinned(data("vk_pinned.txt"), &vk.pinned());
    pinned(data("vk_id.txt"), &format!("{}\n", vk.id()));
}

/// The fixed statement of the proof test vector.
fn vector_statement() -> (InferenceResult, HostKey) {
    let result = InferenceResult::from_json(
        br#"{"job_id": "0x00000000000000000000000000000000000000000000000000000000000004d2",
            "chain_id": 8453, "marketplace": "0x1234567890abcdef1234567890abcdef12345678",
            "model_hash": "0x2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "prompt": "Summarise the halo2 paper in one sentence.",
            "response": "Halo 2 is a PLONKish proving system."}"#,
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
        std::fs::write(data("proof_v1.json"), format!("{}\n", fresh.to_json())).unwrap();
    }
    let stored = ProofEnvelope::from_json(&std::fs::read(data("proof_v1.json")).unwrap()).unwrap();
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
    }
    let document = json!({
        "description": "fabstir-zk circuit version 1 test vectors. Poseidon is circomlib's (BN254, x^5, 8 full rounds; 56 partial rounds for 1 input, 60 for 11). host_id = Poseidon(host_secret); commitment = Poseidon(chain_id, marketplace, job.hi, job.lo, model.hi, model.lo, input.hi, input.lo, output.hi, output.lo, host_id), where each 32-byte value is split into 128-bit big-endian halves (hi, lo) and hashes are SHA-256 of the UTF-8 bytes (model_hash as given, or SHA-256 of the model name). Field elements are 0x + 64 big-endian hex digits.",
        "poseidon_1": poseidon1,
        "poseidon_11": poseidon11,
        "statements": statements,
    });
    pinned(
        docs("test-vectors.json"),
        &(serde_json::to_string_pretty(&document).unwrap() + "\n"),
    );
}
