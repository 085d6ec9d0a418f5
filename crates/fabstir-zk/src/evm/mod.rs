//! Verifying proofs on the EVM: a Solidity verifier generated for a
//! verifying key, its calldata, and the same algorithm in Rust.
//!
//! - [`plan`]: what the verifier computes, derived once from the key.
//! - [`native`]: the contract's algorithm in Rust (the reference for tests
//!   and client ports).
//! - [`solidity`]: the Solidity source of the verifier, from the template
//!   `templates/FabstirVerifier.sol.tmpl` and the Yul generated from the plan;
//!   for keys with many public inputs, `FabstirBatchVerifier` (template
//!   `templates/FabstirBatchVerifier.sol.tmpl`, dynamic ABI, loops over the
//!   public inputs; see [`solidity::Mode`]).
//! - [`calldata`]: `verify` / `verifyBatch` calldata for proofs (alloy's ABI
//!   encoder), for both ABIs.
//! - [`forge`]: a forge test of the verifier (`templates/FabstirVerifier.t.sol.tmpl`),
//!   and its test vectors as JSON.
//! - [`poseidon`]: the Solidity Poseidon library.

pub mod calldata;
pub mod forge;
#[cfg(test)]
mod loops_tests;
pub mod native;
pub mod plan;
pub mod poseidon;
pub mod solidity;
mod template;
#[cfg(test)]
mod tests;

pub use plan::Plan;

use crate::keys::VerifyingKey;

/// halo2's own verdict on contract inputs: the public inputs as 32-byte
/// big-endian words (each within its bound, as the contract requires) and
/// the proof bytes (exactly the key's proof length). Differential tests
/// compare the contract's answer with this one.
pub fn halo2_verdict(vk: &VerifyingKey, plan: &Plan, words: &[[u8; 32]], proof: &[u8]) -> bool {
    if words.len() != plan.num_instances() {
        return false;
    }
    let Some(instances) = words
        .iter()
        .zip(&plan.instance_bits)
        .map(|(word, bits)| native::instance(word, *bits))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    crate::proof::halo2_verify(vk, &instances, proof)
}
