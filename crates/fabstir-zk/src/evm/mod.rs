//! Verifying proofs on the EVM: a Solidity verifier generated for a
//! verifying key, its calldata, and the same algorithm in Rust.
//!
//! - [`plan`]: what the verifier computes, derived once from the key.
//! - [`native`]: the contract's algorithm in Rust (the reference for tests
//!   and client ports).
//! - [`solidity`]: the Solidity source of the verifier.
//! - [`calldata`]: `verify` / `verifyBatch` calldata for proofs.

pub mod calldata;
pub mod native;
pub mod plan;
pub mod solidity;
#[cfg(test)]
mod tests;

pub use plan::Plan;
