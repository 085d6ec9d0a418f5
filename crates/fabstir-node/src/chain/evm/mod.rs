//! The EVM chain client (`serve --rpc-url`): verified submissions
//! (`submitVerifiedProof`) sent from the host wallet to the marketplace
//! contract over JSON-RPC (alloy).
//!
//! A checkpoint's submission goes into **the outbox table**
//! (`store::outbox`, `chain_outbox` in `node.db`: one row per submission
//! with its state `pending`, `sent`, `confirmed` or `failed`); **the
//! submission worker** ([`sender`]) is the state machine that drives those
//! rows to the chain. One file per responsibility:
//!
//! - [`connection`]: settings, connecting, and the start-up checks (chain id,
//!   contract, verifier key, wallet registration);
//! - [`batch`]: batches (many checkpoints, one proof, one
//!   `submitVerifiedBatch`): forming, proving, and what a receipt says of
//!   each entry;
//! - [`client`]: [`EvmClient`], the [`ChainClient`](super::ChainClient) the
//!   checkpoint flow talks to: checks a checkpoint against the contract and
//!   records its submission in the outbox table;
//! - [`sender`]: the submission worker, one pass at a time;
//! - [`tx`]: transaction building, fees, signing and broadcasting;
//! - [`reorg`]: confirmed submissions checked again inside the reorg window;
//! - [`rpc`]: RPC failures sorted into reverts (decoded) and the rest;
//! - [`keys`]: what the marketplace knows about the node's keys (reloads,
//!   the `chain_host_id` health check).
//!
//! Exactly once, through crashes, RPC outages and reorgs:
//!
//! - every step is recorded before the next is taken: an entry is `pending`
//!   until a transaction is signed for it; the signed transaction (its raw
//!   bytes, hash and nonce) is recorded, with the wallet's next nonce, in one
//!   database transaction *before* it is broadcast, so a crash anywhere
//!   leaves either nothing sent (signed again, with the same nonce) or a
//!   recorded transaction (broadcast again: the same bytes, the same hash);
//! - one worker owns the wallet's nonces: they are handed out in order and
//!   advanced with the record, so there are no gaps and no reuse; a fee bump
//!   re-signs the same nonce, so at most one of an entry's transactions can
//!   be mined;
//! - nothing that would revert is sent: each entry is simulated with
//!   `eth_call` first; a revert is decoded into the contract's custom error
//!   and recorded as a final failure (its checkpoint is rejected, so it
//!   claims nothing);
//! - receipts count only at the configured depth; confirmed entries inside
//!   the reorg window are checked again, and one whose transaction is no
//!   longer in the chain goes back to `sent` and is broadcast again;
//! - transient RPC errors are retried with exponential backoff.
//!
//! The contract is the last guard: `submitVerifiedProof` only credits a
//! cumulative count above the job's recorded one, so a transaction that
//! slipped through twice could not credit twice.

pub mod batch;
pub mod client;
pub mod connection;
mod fault;
pub mod keys;
pub mod reorg;
pub mod rpc;
pub mod sender;
pub mod tx;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;

use crate::metrics::Metrics;
use crate::store::outbox::TxTable;
use crate::store::Store;

pub use batch::{BatchProver, BatchSettings};
pub use client::EvmClient;
pub use connection::{EvmError, EvmSettings};
#[cfg(feature = "fault-injection")]
pub use fault::FAULT_ENV;
pub use keys::ChainKeys;
pub use rpc::error_chain;

/// The client: the host wallet on one marketplace over one RPC endpoint,
/// with the outbox table it sends from. Built by [`EvmChain::connect`];
/// [`EvmChain::run`] is its submission worker.
pub struct EvmChain {
    provider: DynProvider,
    settings: EvmSettings,
    chain_id: u64,
    signer: PrivateKeySigner,
    wallet: Address,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// Wakes the submission worker when an entry is recorded.
    wake: tokio::sync::Notify,
    /// Rows whose wait for the confirmation depth was logged, with the
    /// block their receipt was in (logged again if a reorg moves it).
    depth_logged: std::sync::Mutex<std::collections::HashMap<(TxTable, i64), u64>>,
    /// The batch sizes and keys, once batches are on
    /// ([`EvmChain::enable_batches`]).
    batches: std::sync::OnceLock<batch::Batches>,
}

impl EvmChain {
    /// The host wallet's address.
    pub fn wallet(&self) -> Address {
        self.wallet
    }

    /// The chain's id (`eth_chainId`).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The marketplace contract.
    pub fn marketplace(&self) -> Address {
        self.settings.marketplace
    }

    /// The RPC endpoint (for `/health`).
    pub fn rpc_url(&self) -> &str {
        &self.settings.rpc_url
    }

    /// The confirmation depth.
    pub fn confirmations(&self) -> u64 {
        self.settings.confirmations
    }
}

/// `0x` + 64 hex digits.
fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}
