//! Zero-knowledge commitment proofs for LLM inference results.
//!
//! A proof shows that the holder of a host's secret key bound an inference
//! result (model, prompt, response) to its on-chain job, chain and
//! marketplace. It does not show that the model was run; see
//! `docs/CIRCUIT_SPEC.md` (what a proof guarantees and what it does not).
//!
//! ```no_run
//! use std::sync::Arc;
//! use fabstir_zk::{HostKey, InferenceResult, ProofEnvelope, ProvingKey, Srs};
//!
//! let srs = Arc::new(Srs::insecure_dev());
//! let pk = ProvingKey::build(srs).unwrap();
//! let host = HostKey::generate(rand::rngs::OsRng);
//! let result = InferenceResult::from_json(br#"{"job_id": "42", "chain_id": 84532,
//!     "marketplace": "0x1111111111111111111111111111111111111111",
//!     "model": "llama-3", "prompt": "hi", "response": "hello", "tokens_used": 2}"#).unwrap();
//! let statement = result.statement(host.host_id());
//! let proof = ProofEnvelope::create(&pk, &statement, &host, rand::rngs::OsRng).unwrap();
//! // A verifier recomputes the public inputs from the result it holds.
//! proof.verify(pk.verifying_key(), &result.statement(host.host_id()).instance()).unwrap();
//! ```

pub mod batch;
pub mod cell;
pub mod circuit;
pub mod envelope;
pub mod error;
pub mod evm;
pub mod export;
pub mod fsutil;
pub mod host;
pub mod json;
pub mod keys;
pub mod keystore;
pub mod poseidon;
pub mod proof;
pub mod registration;
pub mod srs;
pub mod statement;
pub mod version;

pub use batch::check::{check_entry, check_result, check_result_bytes, EntryFound};
pub use batch::{
    BatchEntry, BatchProof, BatchProvingKey, BatchPublic, BatchPublicEntry, BatchSize,
    BatchStatement, BatchVerifyingKey,
};
pub use envelope::{ProofEnvelope, ProofLayout};
pub use error::{
    BatchError, EntryError, EnvelopeError, EvmError, InputError, KeyError, ProveError,
    UniquenessError, VerifyError,
};
pub use halo2_axiom::halo2curves::bn256::Fr;
pub use host::HostKey;
pub use keys::{ProvingKey, VerifyingKey, VkId};
pub use keystore::{KeySet, Manifest, SrsSource};
pub use proof::{verify_batch, DEFAULT_PROVE_TIMEOUT};
pub use srs::{Srs, SrsTrust};
pub use statement::{
    parse_address, Address, Digest32, HostId, InferenceResult, Instance, JobId, ModelRef,
    ShortJobId, Statement,
};
pub use version::CircuitVersion;

/// Version of the statement and circuit new keys and proofs are made for
/// ([`CircuitVersion::CURRENT`]). Bumped on any change that alters proofs or
/// keys; carried in key files and proof envelopes. Version 1 proofs still
/// verify (see [`CircuitVersion`]).
pub const CIRCUIT_VERSION: u8 = CircuitVersion::CURRENT.as_u8();
