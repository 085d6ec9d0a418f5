//! Transaction building, fees, signing and broadcasting for the submission
//! worker: `submitVerifiedProof` calldata from an outbox row, gas and
//! EIP-1559 fees (capped), the signed EIP-2718 bytes the outbox table
//! records before anything is broadcast.

use alloy::consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718 as _;
use alloy::eips::BlockId;
use alloy::network::TxSignerSync as _;
use alloy::primitives::{Bytes, TxKind, B256, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::{TransactionInput, TransactionRequest};
use alloy::sol_types::SolCall as _;
use alloy::transports::TransportError;

use super::rpc::PassError;
use super::EvmChain;
use crate::chain::client::RpcError;
use crate::chain::contract::IFabstirMarketplace;
use crate::store::outbox::OutboxEntry;
use crate::store::outbox::SignedTx;

/// A transaction signed for an outbox entry.
pub(super) struct Signed {
    /// Its hash, `0x` + 64 hex digits.
    pub hash: String,
    /// Its EIP-2718 encoding (what `eth_sendRawTransaction` takes).
    pub raw: Vec<u8>,
    /// Its nonce and fees, as the outbox table records them.
    nonce: u64,
    max_fee: u128,
    priority_fee: u128,
}

impl Signed {
    /// The row the outbox table records for it before it is broadcast.
    pub(super) fn record(&self) -> SignedTx<'_> {
        SignedTx {
            nonce: self.nonce,
            tx_hash: &self.hash,
            raw_tx: &self.raw,
            max_fee: self.max_fee,
            priority_fee: self.priority_fee,
        }
    }
}

impl EvmChain {
    /// Counts a failed call in the metrics and wraps it for the worker.
    pub(super) fn rpc_error(&self, call: &'static str, source: TransportError) -> PassError {
        self.metrics
            .chain_rpc_errors
            .with_label_values(&[call])
            .inc();
        PassError::Rpc(RpcError { call, source })
    }

    /// `submitVerifiedProof(jobId, cumulativeTokens, commitment, proof)`.
    pub(super) fn calldata(&self, entry: &OutboxEntry) -> Bytes {
        IFabstirMarketplace::submitVerifiedProofCall {
            jobId: parse_u256(&entry.job_id),
            cumulativeTokens: U256::from(entry.cumulative_tokens),
            commitment: parse_u256(&entry.commitment),
            proof: Bytes::from(entry.proof.clone()),
        }
        .abi_encode()
        .into()
    }

    /// A call from the host wallet to the marketplace.
    pub(super) fn request(&self, input: Bytes) -> TransactionRequest {
        TransactionRequest {
            from: Some(self.wallet),
            to: Some(TxKind::Call(self.settings.marketplace)),
            input: TransactionInput::new(input),
            ..Default::default()
        }
    }

    /// Gas for the call: the estimate plus 20%, on the latest block (the
    /// pending state may already hold this very submission, which would then
    /// revert as not increasing).
    pub(super) async fn gas_for(&self, input: &Bytes) -> Result<u64, PassError> {
        let estimate = self
            .provider
            .estimate_gas(self.request(input.clone()))
            .block(BlockId::latest())
            .await
            .map_err(|e| self.rpc_error("eth_estimateGas", e))?;
        Ok(estimate + estimate / 5)
    }

    /// EIP-1559 fees `(maxFeePerGas, maxPriorityFeePerGas)`: the provider's
    /// estimate, capped.
    pub(super) async fn fees(&self) -> Result<(u128, u128), PassError> {
        let estimate = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| self.rpc_error("eth_feeHistory", e))?;
        let mut max_fee = estimate.max_fee_per_gas;
        if let Some(cap) = self.settings.max_fee_per_gas {
            max_fee = max_fee.min(cap);
        }
        Ok((max_fee, estimate.max_priority_fee_per_gas.min(max_fee)))
    }

    /// Signs an EIP-1559 transaction to the marketplace.
    pub(super) fn sign(
        &self,
        nonce: u64,
        gas: u64,
        max_fee: u128,
        tip: u128,
        input: Bytes,
    ) -> Signed {
        let mut tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(self.settings.marketplace),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let signature = self
            .signer
            .sign_transaction_sync(&mut tx)
            .expect("signing a transaction with a local key cannot fail");
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        Signed {
            hash: format!("{:#x}", envelope.tx_hash()),
            raw: envelope.encoded_2718(),
            nonce,
            max_fee,
            priority_fee: tip,
        }
    }

    /// `eth_sendRawTransaction`; a node that already has the transaction,
    /// or that has mined its nonce, is fine (the receipt decides).
    pub(super) async fn broadcast(&self, raw: &[u8]) -> Result<(), PassError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) if already_there(&e) => Ok(()),
            Err(e) => Err(self.rpc_error("eth_sendRawTransaction", e)),
        }
    }
}

/// Whether a refused broadcast means the transaction (or another with its
/// nonce) is already in the node's pool or the chain. JSON-RPC has no error
/// code for it, so the wording of geth, anvil, reth and erigon decides.
fn already_there(e: &TransportError) -> bool {
    let Some(payload) = e.as_error_resp() else {
        return false;
    };
    let message = payload.message.to_lowercase();
    [
        "already known",
        "already imported",
        "nonce too low",
        "known transaction",
    ]
    .iter()
    .any(|known| message.contains(known))
}

/// A transaction hash as the outbox table stores it.
pub(super) fn parse_hash(text: &str) -> Option<B256> {
    text.parse().ok()
}

/// A `0x` hex word as stored by the node (job ids, commitments); zero when
/// unreadable (the contract then refuses it, which the simulation records).
pub(super) fn parse_u256(text: &str) -> U256 {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    U256::from_str_radix(digits, 16).unwrap_or(U256::ZERO)
}
