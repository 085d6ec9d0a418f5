//! A forge test of the generated verifier, and its test vectors.
//!
//! [`vectors`] proves a few fixed statements with the development hosts;
//! [`vectors_json`] writes them, with the key's figures and the public
//! inputs' bounds, into `contracts/test/`[`VECTORS_FILE`]: JSON that the
//! forge test (`vm.readFile`, `vm.parseJson*`), the Rust tests
//! ([`read_vectors`]) and the JavaScript client's tests read.
//! [`test_source`] writes `FabstirVerifier.t.sol` from its template: on
//! those vectors, the verifier of [`super::solidity::generate`] accepts
//! them, alone and in batches, and tampered bytes, changed or out-of-bound
//! public inputs, wrong lengths and points off the curve give `false`.
//! Everything is derived from the [`Plan`] (number of public inputs and
//! their bounds, proof layout), so the test follows a statement change.
//!
//! Proofs are randomized (halo2-axiom draws the vanishing argument's random
//! polynomial from `thread_rng`, whatever RNG it is given), so regenerated
//! vectors differ in their proof bytes. A drift check compares the forge
//! test with [`test_source`], rewrites the checked-in vectors with
//! [`vectors_json`] and compares them byte for byte, and checks that they
//! still verify under the current key.

use alloy_primitives::{Bytes, B256};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use serde::{Deserialize, Serialize};

use super::calldata::instance_words;
use super::plan::Plan;
use super::template;
use crate::error::ProveError;
use crate::{HostKey, InferenceResult, ProofEnvelope, ProvingKey};

/// One proof with its public inputs, as the contract receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// Public inputs, 32-byte big-endian words.
    pub instances: Vec<[u8; 32]>,
    /// Proof bytes.
    pub proof: Vec<u8>,
}

/// The secret of development host `n` (the test hosts' convention).
fn host(n: u64) -> HostKey {
    HostKey::from_secret(Fr::from(0x5eed_0000 + n))
}

/// `count` proofs under `pk`: vector `i` is a job of development host
/// `i % 2 + 1` (random proofs of fixed statements). Job ids are above
/// 2^128, so that both of their limbs are non-zero.
pub fn vectors(pk: &ProvingKey, count: usize) -> Result<Vec<Vector>, ProveError> {
    (0..count as u64)
        .map(|i| {
            let job = i + 1;
            // Tokens large enough that the packed first input spans both halves.
            let tokens = (1u64 << 40) + job;
            let result = InferenceResult::from_json(
                format!(
                    r#"{{"job_id": "98765432109876543210987654321098765432{job:04}", "chain_id": 84532,
                    "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                    "model": "llama-3", "prompt": "test vector {job}",
                    "response": "response {job}", "tokens_used": {tokens}}}"#
                )
                .as_bytes(),
            )
            .map_err(|e| ProveError::Backend(format!("test vector result: {e}")))?;
            let host = host(i % 2 + 1);
            let statement = result.statement(host.host_id());
            let envelope = ProofEnvelope::create(pk, &statement, &host, rand::rngs::OsRng)?;
            Ok(Vector {
                instances: instance_words(&envelope.instance.to_field_elements()),
                proof: envelope.proof,
            })
        })
        .collect()
}

/// The bound of public input `bits`: `2^bits`, or the field modulus for an
/// unbounded input; the smallest value the contract must refuse.
fn limit(bits: u32) -> [u8; 32] {
    if bits >= 254 {
        // r - 1 ends in 0x00: adding 1 carries nowhere.
        let mut r = super::native::be(&-Fr::ONE);
        r[31] += 1;
        return r;
    }
    let mut out = [0u8; 32];
    out[31 - bits as usize / 8] = 1 << (bits % 8);
    out
}

/// The key's figures both forge test templates take: its identity and the
/// proof's layout.
fn key_figures(plan: &Plan) -> Vec<(&'static str, String)> {
    let layout = plan.layout();
    vec![
        ("VK_ID", format!("0x{}", hex::encode(plan.vk_id.0))),
        ("CIRCUIT_VERSION", plan.circuit_version.to_string()),
        ("N", plan.num_instances().to_string()),
        ("PROOF_LENGTH", layout.len.to_string()),
        ("FIRST_COMMITMENT", layout.advice.to_string()),
        ("FIRST_EVAL", layout.advice_evals.to_string()),
        ("W", layout.w.to_string()),
        ("W_PRIME", layout.w_prime.to_string()),
    ]
}

/// `template` filled with `values`.
fn fill(template: &str, values: &[(&'static str, String)]) -> String {
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    template::fill(template, &values)
}

/// The Solidity source of `FabstirVerifier.t.sol` for the verifier of
/// `plan` (the template `templates/FabstirVerifier.t.sol.tmpl`). It reads its proofs from
/// `test/`[`VECTORS_FILE`], written by [`vectors_json`].
pub fn test_source(plan: &Plan) -> String {
    fill(template::FORGE_TEST, &key_figures(plan))
}

/// The Solidity source of `FabstirBatchVerifier.t.sol`, the forge test of
/// the verifier of `plan` in [`super::solidity::Mode::Loops`] (the template
/// `templates/FabstirBatchVerifier.t.sol.tmpl`): valid proofs verify, alone
/// and in a batch; a tampered byte, a changed public input, a wrong number
/// of public inputs, a wrong length or a point off the curve gives false.
/// It reads its proofs from `test/<vectors>` (written by [`vectors_json`];
/// at least two vectors).
pub fn batch_test_source(plan: &Plan, vectors: &str) -> String {
    let mut values = key_figures(plan);
    values.push(("VECTORS", vectors.to_string()));
    fill(template::FORGE_BATCH_TEST, &values)
}

/// Path of the test vectors, relative to the forge test directory.
pub const VECTORS_FILE: &str = "vectors/FabstirVerifier.json";

/// What [`vectors_json`] writes: 32-byte words and byte strings as `0x` and
/// lowercase hex (alloy's `B256` and `Bytes` on the wire), which forge's
/// `vm.parseJson*`, serde and JavaScript's `BigInt` all read.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorsJson {
    description: String,
    vk_id: B256,
    circuit_version: u8,
    num_instances: usize,
    proof_length: usize,
    /// Per public input, the smallest value the contract must refuse.
    bounds: Vec<B256>,
    vectors: Vec<VectorJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorJson {
    instances: Vec<B256>,
    proof: Bytes,
}

const DESCRIPTION: &str = "Test vectors of the generated Solidity verifier (contracts/src/FabstirVerifier.sol), \
read by its forge test (contracts/test/FabstirVerifier.t.sol), by the Rust tests and by the JavaScript client's: \
proofs by the development proving key, each with its public inputs as the contract receives them (uint256 words). \
bounds: per public input, the smallest value the contract must refuse (2^bits, or the field modulus). \
Generated by `fabstir-node evm verifier --test-out`; do not edit.";

/// The test vectors file ([`VECTORS_FILE`]) for the verifier of `plan`:
/// the key's figures, the public inputs' bounds and `vectors`, as pretty
/// JSON with a final line break.
pub fn vectors_json(plan: &Plan, vectors: &[Vector]) -> String {
    let doc = VectorsJson {
        description: DESCRIPTION.to_string(),
        vk_id: B256::from(plan.vk_id.0),
        circuit_version: plan.circuit_version,
        num_instances: plan.num_instances(),
        proof_length: plan.layout().len,
        bounds: plan
            .instance_bits
            .iter()
            .map(|b| B256::from(limit(*b)))
            .collect(),
        vectors: vectors
            .iter()
            .map(|v| VectorJson {
                instances: v.instances.iter().copied().map(B256::from).collect(),
                proof: Bytes::copy_from_slice(&v.proof),
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// The vectors of a file written by [`vectors_json`], in order.
pub fn read_vectors(json: &str) -> Result<Vec<Vector>, serde_json::Error> {
    let doc: VectorsJson = serde_json::from_str(json)?;
    Ok(doc
        .vectors
        .into_iter()
        .map(|v| Vector {
            instances: v.instances.into_iter().map(|w| w.0).collect(),
            proof: v.proof.to_vec(),
        })
        .collect())
}
