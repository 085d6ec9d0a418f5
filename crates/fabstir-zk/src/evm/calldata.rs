//! ABI calldata for the generated verifier's `verify` and `verifyBatch`.
//!
//! `verify(uint256[N] instances, bytes proof)` and
//! `verifyBatch(uint256[N][] instances, bytes[] proofs)`, where `N` is the
//! number of public inputs: standard Solidity ABI encoding, so any client
//! library produces the same bytes from the contract's ABI.

use halo2_axiom::halo2curves::bn256::Fr;
use sha3::{Digest, Keccak256};

use super::native::be;

/// The function signature of `verify` for `n` public inputs.
pub fn verify_signature(n: usize) -> String {
    format!("verify(uint256[{n}],bytes)")
}

/// The function signature of `verifyBatch` for `n` public inputs.
pub fn verify_batch_signature(n: usize) -> String {
    format!("verifyBatch(uint256[{n}][],bytes[])")
}

/// The 4-byte selector of a function signature.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = Keccak256::digest(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Public inputs as the 32-byte big-endian words the contract receives.
pub fn instance_words(instances: &[Fr]) -> Vec<[u8; 32]> {
    instances.iter().map(be).collect()
}

fn word(v: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&(v as u64).to_be_bytes());
    out
}

/// `bytes` tail: length, then the data padded to 32 bytes.
fn bytes_tail(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&word(data.len()));
    out.extend_from_slice(data);
    out.resize(out.len() + (32 - data.len() % 32) % 32, 0);
}

/// Calldata of `verify(instances, proof)`.
pub fn verify(instances: &[[u8; 32]], proof: &[u8]) -> Vec<u8> {
    let mut out = selector(&verify_signature(instances.len())).to_vec();
    for w in instances {
        out.extend_from_slice(w);
    }
    // Head: the offset of `bytes`, after the static array and itself.
    out.extend_from_slice(&word(32 * instances.len() + 32));
    bytes_tail(&mut out, proof);
    out
}

/// Calldata of `verifyBatch(instances, proofs)`. All items must have the
/// same number of public inputs (`n`).
pub fn verify_batch(n: usize, items: &[(&[[u8; 32]], &[u8])]) -> Vec<u8> {
    let mut out = selector(&verify_batch_signature(n)).to_vec();
    let mut args = Vec::new();
    // Two dynamic arguments: heads are their offsets.
    let instances_len = 32 + items.len() * 32 * n;
    args.extend_from_slice(&word(64));
    args.extend_from_slice(&word(64 + instances_len));
    args.extend_from_slice(&word(items.len()));
    for (instances, _) in items {
        for w in instances.iter() {
            args.extend_from_slice(w);
        }
    }
    // bytes[]: length, one offset per element (from the start of the
    // offsets), then each element's tail.
    args.extend_from_slice(&word(items.len()));
    let mut tails = Vec::new();
    let mut offsets = Vec::new();
    for (_, proof) in items {
        offsets.push(32 * items.len() + tails.len());
        bytes_tail(&mut tails, proof);
    }
    for o in offsets {
        args.extend_from_slice(&word(o));
    }
    args.extend_from_slice(&tails);
    out.extend_from_slice(&args);
    out
}
