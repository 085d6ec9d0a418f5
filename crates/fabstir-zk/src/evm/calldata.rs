//! ABI calldata for the generated verifier's `verify` and `verifyBatch`.
//!
//! `verify(uint256[N] instances, bytes proof)` and
//! `verifyBatch(uint256[N][] instances, bytes[] proofs)`, where `N` is the
//! number of public inputs ([`super::solidity::Mode::Unrolled`]); with
//! [`super::solidity::Mode::Loops`], `verify(uint256[], bytes)` and
//! `verifyBatch(uint256[][], bytes[])` (the `_dynamic` functions). `N` is known only at run time (it is the key's),
//! so the calls are encoded with alloy's dynamic ABI encoder: standard
//! Solidity ABI encoding, the bytes any client library produces from the
//! contract's ABI.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{keccak256, U256};
use halo2_axiom::halo2curves::bn256::Fr;

use super::native::be;

/// The function signature of `verify` for `n` public inputs.
pub fn verify_signature(n: usize) -> String {
    format!("verify(uint256[{n}],bytes)")
}

/// The function signature of `verifyBatch` for `n` public inputs.
pub fn verify_batch_signature(n: usize) -> String {
    format!("verifyBatch(uint256[{n}][],bytes[])")
}

/// The function signature of `verify` with the dynamic ABI.
pub const VERIFY_DYNAMIC_SIGNATURE: &str = "verify(uint256[],bytes)";

/// The function signature of `verifyBatch` with the dynamic ABI.
pub const VERIFY_BATCH_DYNAMIC_SIGNATURE: &str = "verifyBatch(uint256[][],bytes[])";

/// The 4-byte selector of a function signature: the first bytes of its
/// Keccak-256.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Public inputs as the 32-byte big-endian words the contract receives.
pub fn instance_words(instances: &[Fr]) -> Vec<[u8; 32]> {
    instances.iter().map(be).collect()
}

/// `uint256[N]` of the words.
fn words(instances: &[[u8; 32]]) -> DynSolValue {
    DynSolValue::FixedArray(
        instances
            .iter()
            .map(|w| DynSolValue::Uint(U256::from_be_bytes(*w), 256))
            .collect(),
    )
}

/// The selector of `signature` followed by the ABI encoding of `args`.
fn call(signature: &str, args: Vec<DynSolValue>) -> Vec<u8> {
    let mut out = selector(signature).to_vec();
    out.extend(DynSolValue::Tuple(args).abi_encode_params());
    out
}

/// Calldata of `verify(instances, proof)`.
pub fn verify(instances: &[[u8; 32]], proof: &[u8]) -> Vec<u8> {
    call(
        &verify_signature(instances.len()),
        vec![words(instances), DynSolValue::Bytes(proof.to_vec())],
    )
}

/// Calldata of `verifyBatch(instances, proofs)`. All items must have the
/// same number of public inputs (`n`).
pub fn verify_batch(n: usize, items: &[(&[[u8; 32]], &[u8])]) -> Vec<u8> {
    let instances = items.iter().map(|(w, _)| words(w)).collect();
    let proofs = items
        .iter()
        .map(|(_, p)| DynSolValue::Bytes(p.to_vec()))
        .collect();
    call(
        &verify_batch_signature(n),
        vec![DynSolValue::Array(instances), DynSolValue::Array(proofs)],
    )
}

/// `uint256[]` of the words.
fn dynamic_words(instances: &[[u8; 32]]) -> DynSolValue {
    DynSolValue::Array(
        instances
            .iter()
            .map(|w| DynSolValue::Uint(U256::from_be_bytes(*w), 256))
            .collect(),
    )
}

/// Calldata of `verify(instances, proof)` with the dynamic ABI
/// (`uint256[]`).
pub fn verify_dynamic(instances: &[[u8; 32]], proof: &[u8]) -> Vec<u8> {
    call(
        VERIFY_DYNAMIC_SIGNATURE,
        vec![dynamic_words(instances), DynSolValue::Bytes(proof.to_vec())],
    )
}

/// Calldata of `verifyBatch(instances, proofs)` with the dynamic ABI
/// (`uint256[][]`).
pub fn verify_batch_dynamic(items: &[(&[[u8; 32]], &[u8])]) -> Vec<u8> {
    let instances = items.iter().map(|(w, _)| dynamic_words(w)).collect();
    let proofs = items
        .iter()
        .map(|(_, p)| DynSolValue::Bytes(p.to_vec()))
        .collect();
    call(
        VERIFY_BATCH_DYNAMIC_SIGNATURE,
        vec![DynSolValue::Array(instances), DynSolValue::Array(proofs)],
    )
}
