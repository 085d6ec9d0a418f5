//! Everything between a signed checkpoint and money. The checkpoint flow
//! (`checkpoint`) decides *what* a checkpoint claims; this module takes it to
//! whatever credits it, through one interface, [`ChainClient`]. A client
//! says which [`Submission`] it takes ([`SubmissionKind`]), and that decides
//! what the checkpoint's proof binds. There are two ways to money:
//!
//! 1. **The local ledger** ([`LocalLedger`], `serve` without `--rpc-url`):
//!    the checkpoint's signed `submitProofOfWork` payload
//!    ([`ProofOfWorkSubmission`], [`Submission::SignedPayload`]; its proof
//!    proves the result, the signature claims the delta) is recorded in the
//!    ledger table, once per checkpoint and once per `proofHash`. An
//!    operator can also send its calldata with any Ethereum client.
//! 2. **The EVM chain** ([`evm`], `serve --rpc-url`): the checkpoint is
//!    checked against the marketplace before anything is proved
//!    ([`ChainClient::precheck`]); its proof of its own cumulative count
//!    ([`Submission::VerifiedProof`]) is recorded as a row of **the outbox
//!    table** (`store::outbox`); **the submission worker**
//!    ([`evm::sender`], [`EvmChain::run`]) simulates, signs, records and
//!    broadcasts a `submitVerifiedProof` transaction for it, and follows it
//!    to a receipt at the confirmation depth, through fee bumps, lost
//!    transactions, reverts (decoded, final) and reorgs. The contract
//!    verifies the proof and credits the count.
//!
//! The files:
//!
//! - [`client`]: the interface ([`ChainClient`], [`Submission`],
//!   [`Receipt`], the typed errors [`ChainError`], [`Refusal`], [`RpcError`]);
//! - [`ledger`]: the local ledger;
//! - [`evm`]: the EVM chain client (connection and start-up checks, the
//!   submission worker, transactions and fees, reorg checks);
//! - [`proof_of_work`]: the signed `submitProofOfWork` payload;
//! - [`abi`]: its pure encodings (the signed message, the calldata, the
//!   proof CID);
//! - [`wallet`]: the host's secp256k1 key and its EIP-191 signatures;
//! - [`contract`]: the marketplace's and verifier's interfaces (alloy `sol!`);
//! - [`registrations`]: the key directory's record of the marketplaces its
//!   `host_id` is registered with.

pub mod abi;
pub mod client;
pub mod contract;
pub mod evm;
pub mod ledger;
pub mod proof_of_work;
pub mod registrations;
pub mod wallet;

pub use abi::{
    eip191_digest, encode_submit_proof_of_work, keccak256, proof_cid, proof_cid_from_sha256,
    proof_of_work_message, proof_of_work_packed, sha256, u256_from_u64, u64_from_u256,
    PROOF_OF_WORK_PACKED_LEN, SUBMIT_PROOF_OF_WORK_SELECTOR, SUBMIT_PROOF_OF_WORK_SIGNATURE,
};
pub use client::{
    ChainClient, ChainError, Receipt, Refusal, Revert, RpcError, Shortfall, Submission,
    SubmissionKind,
};
pub use evm::{ChainKeys, EvmChain, EvmClient, EvmError, EvmSettings};
pub use ledger::LocalLedger;
pub use proof_of_work::{recover_personal_signer, ProofOfWorkSubmission, SubmissionError};
pub use registrations::{record_registration, registrations, Registration};
pub use wallet::{
    to_checksum_address, HostWallet, KeyFormatError, WalletError, HOST_KEY_ENV, MAX_KEY_FILE_LEN,
};
