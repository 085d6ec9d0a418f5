//! The EVM chain client (`serve --rpc-url`): verified submissions (`submitVerifiedProof`) sent
//! from the host wallet to the marketplace contract over JSON-RPC, through
//! the durable outbox in `store::outbox`.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718 as _;
use alloy::eips::BlockId;
use alloy::network::TxSignerSync as _;
use alloy::primitives::{Address, Bytes, TxKind, B256, U256};
use alloy::providers::{DynProvider, Provider as _, ProviderBuilder};
use alloy::rpc::types::{TransactionInput, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall as _;
use alloy::transports::TransportError;
use fabstir_zk::{InferenceResult, JobId, ProofEnvelope};
use thiserror::Error;

use crate::chain::contract::{decode_revert, IFabstirMarketplace, IFabstirVerifier};
use crate::chain::HostWallet;
use crate::metrics::Metrics;
use crate::store::checkpoints::{self, CheckpointStatus};
use crate::store::outbox::{self, NewEntry, OutboxEntry, OutboxState, SignedTx};
use crate::store::{Store, StoreError};

/// Environment variable naming a fault point at which the node aborts (as
/// `kill -9` would stop it), for crash tests: `after_sign` (a transaction is
/// signed, nothing recorded), `after_record` (recorded as sent, not
/// broadcast), `after_broadcast` (broadcast, no receipt looked for yet),
/// `awaiting_receipt` (a sent transaction has no receipt at the depth yet).
pub const FAULT_ENV: &str = "FABSTIR_CHAIN_FAULT";

/// How the client talks to the chain.
#[derive(Debug, Clone)]
pub struct EvmSettings {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The marketplace contract.
    pub marketplace: Address,
    /// The chain id the node is configured for (checked against
    /// `eth_chainId` at start-up), if any.
    pub chain_id: Option<u64>,
    /// Blocks a receipt must be deep (1: the block that includes it).
    pub confirmations: u64,
    /// How often the outbox is worked on when nothing wakes it.
    pub poll_interval: Duration,
    /// A transaction without a receipt for this long gets a fee bump.
    pub stuck_after: Duration,
    /// At most this many fee bumps per transaction.
    pub max_fee_bumps: u32,
    /// Fee cap (`maxFeePerGas`) no transaction exceeds, in wei.
    pub max_fee_per_gas: Option<u128>,
    /// Confirmed entries mined in the last this many blocks are checked
    /// against reorgs.
    pub reorg_window: u64,
}

impl EvmSettings {
    /// Settings with the defaults for everything but the endpoint and contract.
    pub fn new(rpc_url: &str, marketplace: Address) -> Self {
        Self {
            rpc_url: rpc_url.to_string(),
            marketplace,
            chain_id: None,
            confirmations: 1,
            poll_interval: Duration::from_millis(500),
            stuck_after: Duration::from_secs(30),
            max_fee_bumps: 5,
            max_fee_per_gas: None,
            reorg_window: 64,
        }
    }
}

/// Why the client cannot start or a call failed.
#[derive(Debug, Error)]
pub enum EvmError {
    /// `rpc_url` is not a URL.
    #[error("rpc_url {url:?} is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    /// The endpoint does not answer (or answers garbage): the error with
    /// its causes down to the root (e.g. "Connection refused"), and what to
    /// check.
    #[error("RPC {url}: {detail}; {hint}")]
    Rpc {
        url: String,
        detail: String,
        hint: &'static str,
    },
    /// `eth_chainId` is not the configured chain.
    #[error("chain_id: the RPC endpoint serves chain {actual}, but the node is configured for chain {configured}")]
    WrongChain { configured: u64, actual: u64 },
    /// No contract at the marketplace address.
    #[error("marketplace: no contract at {address} on chain {chain_id}")]
    NoContract { address: Address, chain_id: u64 },
    /// The contract at the marketplace address is something else (the
    /// verifier, say): it does not answer `verifierVkId()`.
    #[error("marketplace: the contract at {address} on chain {chain_id} does not answer verifierVkId() ({detail}), so it is not a FabstirMarketplace; check --marketplace: it must be the \"marketplace\" address the chain deploy command printed, not the \"verifier\"")]
    NotMarketplace {
        address: Address,
        chain_id: u64,
        detail: String,
    },
    /// The marketplace's verifier checks another key.
    #[error("marketplace: its verifier checks vk_id {contract}, but this node proves with vk_id {node}; deploy a verifier for this node's keys (the evm verifier command) or use the node's matching keys")]
    VkMismatch { contract: String, node: String },
    /// The wallet is not registered as a host.
    #[error("host_id: wallet {wallet} is not registered with the marketplace; register host_id {host_id} first (the chain register command)")]
    NotRegistered { wallet: Address, host_id: String },
    /// The wallet is registered with another host id.
    #[error("host_id: wallet {wallet} is registered with host_id {registered}, but this node's key has host_id {node}; a wallet registers once and rotating a host_id on-chain is not supported yet: start with the key set whose host_id is {registered} (after keys rotate --new-host-key it is the newest one under the key directory's retired/), or register a new wallet for host_id {node} and start with it")]
    HostIdMismatch {
        wallet: Address,
        registered: String,
        node: String,
    },
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checkpoint the chain refuses before anything is signed, or a failure to
/// reach the chain.
#[derive(Debug, Error)]
pub enum Precheck {
    /// The chain refuses it, with the reason.
    #[error("{0}")]
    Refused(String),
    /// The chain cannot be asked now.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
}

/// The client: the host wallet on one marketplace over one RPC endpoint.
pub struct EvmChain {
    provider: DynProvider,
    settings: EvmSettings,
    chain_id: u64,
    signer: PrivateKeySigner,
    wallet: Address,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    wake: tokio::sync::Notify,
    /// Entries whose wait for the confirmation depth was logged, with the
    /// block their receipt was in (logged again if a reorg moves it).
    depth_logged: std::sync::Mutex<std::collections::HashMap<i64, u64>>,
}

/// An RPC failure sorted by what to do about it.
enum RpcFailure {
    /// The call reverted, with this revert data.
    Revert(Vec<u8>),
    /// Anything else: retried.
    Transient(String),
}

fn classify(e: &TransportError) -> RpcFailure {
    if let Some(payload) = e.as_error_resp() {
        if let Some(data) = payload.as_revert_data() {
            return RpcFailure::Revert(data.to_vec());
        }
        if payload.message.contains("revert") {
            return RpcFailure::Revert(Vec::new());
        }
    }
    RpcFailure::Transient(e.to_string())
}

/// An error and its causes, down to the root one, without repeats: a
/// failed HTTP request says "error sending request for url (…)" and only its
/// innermost cause says "Connection refused".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

/// What to check when an RPC call fails: the endpoint itself (no answer)
/// or what it answered.
fn rpc_hint(e: &TransportError) -> &'static str {
    if e.is_error_resp() {
        "the endpoint answered with an error: check that --rpc-url (and any API key in it) is right and the provider is up"
    } else {
        "check that --rpc-url names a running JSON-RPC endpoint (scheme, host and port) that this machine can reach"
    }
}

/// Aborts the process when [`FAULT_ENV`] names `point` (crash tests).
fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        eprintln!("{FAULT_ENV}={point}: aborting");
        std::process::abort();
    }
}

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl EvmChain {
    /// Connects and checks, before the node serves anything: the chain id,
    /// that a contract is at the marketplace address, that its verifier
    /// checks this node's `vk_id`, and that the wallet is registered with
    /// this node's `host_id`.
    pub async fn connect(
        settings: EvmSettings,
        wallet: &HostWallet,
        vk_id: [u8; 32],
        host_id: [u8; 32],
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, EvmError> {
        let url = alloy::transports::http::reqwest::Url::parse(&settings.rpc_url).map_err(|e| {
            EvmError::BadUrl {
                url: settings.rpc_url.clone(),
                reason: e.to_string(),
            }
        })?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        let rpc = |source: TransportError| EvmError::Rpc {
            url: settings.rpc_url.clone(),
            detail: error_chain(&source),
            hint: rpc_hint(&source),
        };
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if let Some(configured) = settings.chain_id {
            if configured != chain_id {
                return Err(EvmError::WrongChain {
                    configured,
                    actual: chain_id,
                });
            }
        }
        let code = provider
            .get_code_at(settings.marketplace)
            .await
            .map_err(rpc)?;
        if code.is_empty() {
            return Err(EvmError::NoContract {
                address: settings.marketplace,
                chain_id,
            });
        }
        let market = IFabstirMarketplace::new(settings.marketplace, &provider);
        let not_marketplace = |detail: String| EvmError::NotMarketplace {
            address: settings.marketplace,
            chain_id,
            detail,
        };
        let contract_vk = market.verifierVkId().call().await.map_err(|e| match e {
            // A revert (a contract without that function) or an answer
            // that is not a bytes32: another contract.
            alloy::contract::Error::TransportError(source) => match classify(&source) {
                RpcFailure::Revert(data) if data.is_empty() => {
                    not_marketplace("the call reverted without data".into())
                }
                RpcFailure::Revert(data) => {
                    not_marketplace(format!("the call reverted with 0x{}", hex::encode(data)))
                }
                RpcFailure::Transient(_) => rpc(source),
            },
            other => not_marketplace(other.to_string()),
        })?;
        if contract_vk.0 != vk_id {
            return Err(EvmError::VkMismatch {
                contract: hex32(&contract_vk.0),
                node: hex32(&vk_id),
            });
        }
        let signer = wallet.signer();
        let address = signer.address();
        let registered = market.hostIdOf(address).call().await.map_err(|e| match e {
            alloy::contract::Error::TransportError(source) => rpc(source),
            other => rpc(TransportError::local_usage_str(&other.to_string())),
        })?;
        let node_host = U256::from_be_bytes(host_id);
        if registered.is_zero() {
            return Err(EvmError::NotRegistered {
                wallet: address,
                host_id: hex32(&host_id),
            });
        }
        if registered != node_host {
            return Err(EvmError::HostIdMismatch {
                wallet: address,
                registered: hex32(&registered.to_be_bytes()),
                node: hex32(&host_id),
            });
        }
        Ok(Arc::new(Self {
            provider,
            settings,
            chain_id,
            signer,
            wallet: address,
            store,
            metrics,
            wake: tokio::sync::Notify::new(),
            depth_logged: Default::default(),
        }))
    }

    /// The host wallet's address.
    pub fn wallet(&self) -> Address {
        self.wallet
    }

    /// The `host_id` the marketplace has registered for the host wallet
    /// (`hostIdOf`; zero when none), or why it cannot be asked now.
    pub async fn registered_host_id(&self) -> Result<[u8; 32], String> {
        IFabstirMarketplace::new(self.settings.marketplace, &self.provider)
            .hostIdOf(self.wallet)
            .call()
            .await
            .map(|id| id.to_be_bytes())
            .map_err(|e| {
                self.metrics
                    .chain_rpc_errors
                    .with_label_values(&["hostIdOf"])
                    .inc();
                format!("hostIdOf: {}", error_chain(&e))
            })
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

    /// Checks a checkpoint against the contract before anything is proved or
    /// signed: the result names this chain and marketplace, and the job
    /// exists, is this host's, is open, and can pay for `tokens` cumulative
    /// tokens above the count the contract recorded.
    pub async fn precheck(&self, result: &InferenceResult, tokens: u64) -> Result<(), Precheck> {
        if result.chain_id != self.chain_id {
            return Err(Precheck::Refused(format!(
                "the result's chain_id {} is not the chain's {}",
                result.chain_id, self.chain_id
            )));
        }
        if result.marketplace.0 != self.settings.marketplace.0 .0 {
            return Err(Precheck::Refused(format!(
                "the result's marketplace {} is not the configured marketplace {}",
                result.marketplace.to_checksummed(),
                self.settings.marketplace
            )));
        }
        let job_id = U256::from_be_bytes(result.job_id.0);
        let job = IFabstirMarketplace::new(self.settings.marketplace, &self.provider)
            .getJob(job_id)
            .call()
            .await
            .map_err(|e| match e.as_revert_data() {
                Some(data) => {
                    let (name, detail) = decode_revert(&data);
                    Precheck::Refused(format!(
                        "the marketplace refuses job {job_id}: {name}({detail})"
                    ))
                }
                None => {
                    self.metrics
                        .chain_rpc_errors
                        .with_label_values(&["getJob"])
                        .inc();
                    Precheck::Unavailable(e.to_string())
                }
            })?;
        if job.client == Address::ZERO {
            return Err(Precheck::Refused(format!(
                "job {job_id} does not exist on the marketplace"
            )));
        }
        if job.host != self.wallet {
            return Err(Precheck::Refused(format!(
                "job {job_id}'s host is {}, not this node's wallet {}",
                job.host, self.wallet
            )));
        }
        if job.completed {
            return Err(Precheck::Refused(format!(
                "job {job_id} is completed on-chain"
            )));
        }
        let claimed = U256::from(tokens);
        if claimed <= job.tokensUsed {
            return Err(Precheck::Refused(format!(
                "tokens_processed {tokens} is not above the {} tokens the contract recorded for job {job_id}",
                job.tokensUsed
            )));
        }
        let cost = claimed.saturating_mul(job.pricePerToken);
        if cost > job.deposit {
            return Err(Precheck::Refused(format!(
                "tokens_processed {tokens} at {} wei per token costs {cost} wei, above job {job_id}'s deposit of {} wei",
                job.pricePerToken, job.deposit
            )));
        }
        Ok(())
    }

    /// Records a checkpoint's verified submission in the outbox (once per
    /// checkpoint) and wakes the worker. `envelope` is the proof envelope
    /// whose public inputs say what is claimed.
    pub fn enqueue(
        &self,
        checkpoint_id: i64,
        envelope: &[u8],
    ) -> Result<Result<OutboxEntry, String>, StoreError> {
        let envelope = match ProofEnvelope::from_bytes(envelope) {
            Ok(envelope) => envelope,
            Err(e) => {
                return Ok(Err(format!(
                    "the checkpoint's proof is not an envelope: {e}"
                )))
            }
        };
        let Some(tokens) = envelope.instance.tokens else {
            return Ok(Err(
                "the checkpoint's proof is a circuit version 1 proof, which does not bind the token count the contract credits".into(),
            ));
        };
        let entry = self.store.durable(|tx| {
            outbox::insert(
                tx,
                &NewEntry {
                    checkpoint_id,
                    job_id: &envelope.instance.job_id.to_string(),
                    cumulative_tokens: tokens,
                    commitment: &hex32(&fabstir_zk::statement::field_to_be(
                        &envelope.instance.commitment.0,
                    )),
                    proof: &envelope.proof,
                },
            )
        })?;
        self.wake.notify_one();
        Ok(Ok(entry))
    }

    /// The outbox entry of a checkpoint, if any.
    pub fn entry(&self, checkpoint_id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        self.store
            .durable(|tx| outbox::by_checkpoint(tx, checkpoint_id))
    }

    /// Runs the outbox until the process ends: every poll interval (or when
    /// woken by a new entry) one pass over it; transient RPC errors back off
    /// exponentially up to 30 s.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Duration::ZERO;
        loop {
            match self.pass().await {
                Ok(()) => backoff = Duration::ZERO,
                Err(PassError::Rpc(message)) => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
                    tracing::warn!(error = %message, retry_in_ms = backoff.as_millis() as u64, "chain RPC error; retrying");
                }
                Err(PassError::Store(e)) => {
                    backoff = Duration::from_secs(5);
                    tracing::error!(error = %e, "chain outbox: storage error");
                }
            }
            self.update_depth();
            let wait = backoff.max(self.settings.poll_interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified(), if backoff.is_zero() => {}
            }
        }
    }

    fn update_depth(&self) {
        if let Ok(counts) = self.store.durable(|tx| outbox::count_by_state(tx)) {
            for (state, n) in counts {
                self.metrics
                    .chain_outbox_depth
                    .with_label_values(&[state.name()])
                    .set(n as i64);
            }
        }
        if let Ok(Some(oldest)) = self.store.durable(|tx| {
            Ok(outbox::in_state(tx, OutboxState::Pending)?
                .into_iter()
                .chain(outbox::in_state(tx, OutboxState::Sent)?)
                .map(|e| e.created_at_ms)
                .min())
        }) {
            let age = (crate::store::now_ms() - oldest).max(0) as f64 / 1000.0;
            self.metrics.chain_outbox_oldest_seconds.set(age);
        } else {
            self.metrics.chain_outbox_oldest_seconds.set(0.0);
        }
    }

    fn rpc_error(&self, method: &str, e: &TransportError) -> PassError {
        self.metrics
            .chain_rpc_errors
            .with_label_values(&[method])
            .inc();
        PassError::Rpc(format!("{method}: {e}"))
    }

    /// One pass: reorg checks, receipts of sent entries, then pending
    /// entries signed and sent in order.
    async fn pass(&self) -> Result<(), PassError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| self.rpc_error("eth_blockNumber", &e))?;
        let mined_nonce = self
            .provider
            .get_transaction_count(self.wallet)
            .latest()
            .await
            .map_err(|e| self.rpc_error("eth_getTransactionCount", &e))?;
        self.check_reorgs(head).await?;
        self.check_sent(head, mined_nonce).await?;
        self.send_pending(mined_nonce).await
    }

    /// Confirmed entries in the reorg window whose transaction left the
    /// chain go back to `sent`.
    async fn check_reorgs(&self, head: u64) -> Result<(), PassError> {
        let from = head.saturating_sub(self.settings.reorg_window);
        let confirmed = self.store.durable(|tx| outbox::confirmed_since(tx, from))?;
        for entry in confirmed {
            let Some(hash) = entry.tx_hash.as_deref().and_then(parse_hash) else {
                continue;
            };
            let receipt = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(|e| self.rpc_error("eth_getTransactionReceipt", &e))?;
            let still_there = receipt
                .as_ref()
                .is_some_and(|r| r.block_hash.map(|h| format!("{h:#x}")) == entry.block_hash);
            if !still_there {
                tracing::warn!(checkpoint = entry.checkpoint_id, tx = ?entry.tx_hash, block = ?entry.block_number, "a reorg dropped a confirmed submission; sending it again");
                self.metrics.chain_reorgs.inc();
                self.store
                    .durable(|tx| outbox::mark_reorged(tx, entry.id))?;
            }
        }
        Ok(())
    }

    /// Receipts for `sent` entries; broadcasts again what the node no
    /// longer knows about; bumps fees of what is stuck.
    async fn check_sent(&self, head: u64, mined_nonce: u64) -> Result<(), PassError> {
        let sent = self
            .store
            .durable(|tx| outbox::in_state(tx, OutboxState::Sent))?;
        for entry in sent {
            let mut found = None;
            for hash in entry.tx_hashes.iter().rev().filter_map(|h| parse_hash(h)) {
                if let Some(receipt) = self
                    .provider
                    .get_transaction_receipt(hash)
                    .await
                    .map_err(|e| self.rpc_error("eth_getTransactionReceipt", &e))?
                {
                    found = Some(receipt);
                    break;
                }
            }
            let nonce = entry.nonce.unwrap_or(u64::MAX);
            let Some(receipt) = found else {
                // An endpoint can count a mined nonce before it serves the
                // receipt and the new state: wait a little before deciding.
                let sent_at = entry.sent_at_ms.unwrap_or(entry.created_at_ms);
                let grace = (self.settings.poll_interval * 5).max(Duration::from_secs(2));
                let settled = crate::store::now_ms() - sent_at > grace.as_millis() as i64;
                if nonce < mined_nonce && !settled {
                    continue;
                }
                if nonce < mined_nonce {
                    // The nonce is used, but no receipt of this entry's
                    // transactions is found (an endpoint that lost them, or
                    // another transaction of this wallet). The contract
                    // decides: its recorded commitment for this count.
                    if self.credited(&entry).await? {
                        self.store.durable(|tx| {
                            outbox::mark_confirmed(tx, entry.id, CREDITED, head, "")
                        })?;
                        tracing::info!(
                            checkpoint = entry.checkpoint_id,
                            "verified submission found credited by the contract"
                        );
                        continue;
                    }
                    tracing::warn!(checkpoint = entry.checkpoint_id, nonce, "nonce taken by another transaction; the submission is checked and signed again");
                    self.store.durable(|tx| {
                        outbox::requeue(tx, entry.id, "nonce taken by another transaction")
                    })?;
                    continue;
                }
                fault("awaiting_receipt");
                self.nudge(&entry).await?;
                continue;
            };
            let block = receipt.block_number.unwrap_or(u64::MAX);
            if head.saturating_add(1) < block.saturating_add(self.settings.confirmations) {
                self.log_depth_wait(&entry, &receipt.transaction_hash, block, head);
                fault("awaiting_receipt");
                continue;
            }
            self.forget_depth_wait(entry.id);
            let tx_hash = format!("{:#x}", receipt.transaction_hash);
            let block_hash = receipt
                .block_hash
                .map(|h| format!("{h:#x}"))
                .unwrap_or_default();
            if receipt.status() {
                self.store.durable(|tx| {
                    outbox::mark_confirmed(tx, entry.id, &tx_hash, block, &block_hash)
                })?;
                let latency = (crate::store::now_ms() - entry.created_at_ms).max(0) as f64 / 1000.0;
                self.metrics.chain_confirm_seconds.observe(latency);
                tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, tx = %tx_hash, block, "verified submission confirmed");
            } else {
                let (name, detail) = self.revert_reason(&entry, block).await;
                self.fail(&entry, &name, &detail)?;
            }
        }
        Ok(())
    }

    /// Says once per entry (and block) that a mined submission waits for
    /// its confirmation depth: which block holds it, the head, and the block
    /// at which it counts. On a chain that mines only when a transaction
    /// arrives (anvil without `--block-time`) that block may never come.
    fn log_depth_wait(&self, entry: &OutboxEntry, tx: &B256, block: u64, head: u64) {
        let mut logged = self.depth_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.insert(entry.id, block) == Some(block) {
            return;
        }
        let confirmed_at = block.saturating_add(self.settings.confirmations.saturating_sub(1));
        tracing::info!(
            checkpoint = entry.checkpoint_id,
            job_id = %crate::store::job_for_people(&entry.job_id),
            tx = %format!("{tx:#x}"),
            block,
            head,
            confirmations = self.settings.confirmations,
            confirmed_at_block = confirmed_at,
            "verified submission mined; waiting for its confirmation depth (it counts once block {confirmed_at} exists; the chain must keep mining)"
        );
    }

    fn forget_depth_wait(&self, id: i64) {
        self.depth_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// A sent transaction without a receipt: broadcast again if the node
    /// does not know it (lost from the mempool, a crash before the first
    /// broadcast, a restarted node, a reorg), bump its fees if stuck.
    async fn nudge(&self, entry: &OutboxEntry) -> Result<(), PassError> {
        let Some(hash) = entry.tx_hash.as_deref().and_then(parse_hash) else {
            return Ok(());
        };
        let known = self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| self.rpc_error("eth_getTransactionByHash", &e))?
            .is_some();
        let sent_at = entry.sent_at_ms.unwrap_or(entry.created_at_ms);
        let waited = Duration::from_millis((crate::store::now_ms() - sent_at).max(0) as u64);
        if waited >= self.settings.stuck_after && entry.bumps < self.settings.max_fee_bumps {
            return self.bump(entry).await;
        }
        if !known {
            if let Some(raw) = &entry.raw_tx {
                tracing::info!(checkpoint = entry.checkpoint_id, tx = %hash, "broadcasting a recorded transaction again");
                self.broadcast(raw).await?;
            }
        }
        Ok(())
    }

    /// Replaces a stuck transaction: same nonce and calldata, fees raised by
    /// 25% (above the 10% nodes require), within the fee cap.
    async fn bump(&self, entry: &OutboxEntry) -> Result<(), PassError> {
        let (Some(nonce), Some(old_max), Some(old_tip)) = (
            entry.nonce,
            entry
                .max_fee
                .as_deref()
                .and_then(|v| v.parse::<u128>().ok()),
            entry
                .priority_fee
                .as_deref()
                .and_then(|v| v.parse::<u128>().ok()),
        ) else {
            return Ok(());
        };
        let fees = self.fees().await?;
        let mut max_fee = (old_max + old_max / 4 + 1).max(fees.0);
        let tip = (old_tip + old_tip / 4 + 1).max(fees.1);
        if let Some(cap) = self.settings.max_fee_per_gas {
            if old_max >= cap {
                return Ok(());
            }
            max_fee = max_fee.min(cap);
        }
        let tip = tip.min(max_fee);
        let input = self.calldata(entry);
        let gas = self.gas_for(&input).await?;
        let (hash, raw) = self.sign(nonce, gas, max_fee, tip, input);
        self.store.durable(|tx| {
            outbox::record_bump(
                tx,
                entry.id,
                &SignedTx {
                    nonce,
                    tx_hash: &hash,
                    raw_tx: &raw,
                    max_fee,
                    priority_fee: tip,
                },
            )
        })?;
        self.metrics.chain_fee_bumps.inc();
        tracing::warn!(checkpoint = entry.checkpoint_id, nonce, tx = %hash, max_fee, "transaction stuck; replaced with higher fees");
        self.broadcast(&raw).await
    }

    /// Pending entries, oldest first: simulated, signed with the next nonce,
    /// recorded, broadcast.
    async fn send_pending(&self, mined_nonce: u64) -> Result<(), PassError> {
        let pending = self
            .store
            .durable(|tx| outbox::in_state(tx, OutboxState::Pending))?;
        if pending.is_empty() {
            return Ok(());
        }
        let wallet = format!("{:#x}", self.wallet);
        for entry in pending {
            let input = self.calldata(&entry);
            // Never send what would revert.
            let request = self.request(input.clone());
            match self.provider.call(request).await {
                Ok(_) => {}
                Err(e) => match classify(&e) {
                    RpcFailure::Revert(data) => {
                        let (name, detail) = decode_revert(&data);
                        // Already credited (sent before a crash or an
                        // endpoint switch, by this very submission)?
                        if name == "TokensNotIncreasing" && self.credited(&entry).await? {
                            self.store.durable(|tx| {
                                outbox::mark_confirmed(tx, entry.id, CREDITED, 0, "")
                            })?;
                            continue;
                        }
                        self.fail(&entry, &name, &detail)?;
                        continue;
                    }
                    RpcFailure::Transient(_) => return Err(self.rpc_error("eth_call", &e)),
                },
            }
            let gas = self.gas_for(&input).await?;
            let (max_fee, tip) = self.fees().await?;
            let recorded = self.store.durable(|tx| outbox::next_nonce(tx, &wallet))?;
            let nonce = recorded.unwrap_or(0).max(mined_nonce);
            let (hash, raw) = self.sign(nonce, gas, max_fee, tip, input);
            fault("after_sign");
            self.store.durable(|tx| {
                outbox::record_sent(
                    tx,
                    entry.id,
                    &SignedTx {
                        nonce,
                        tx_hash: &hash,
                        raw_tx: &raw,
                        max_fee,
                        priority_fee: tip,
                    },
                )?;
                outbox::set_next_nonce(tx, &wallet, nonce + 1)
            })?;
            fault("after_record");
            tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, nonce, tx = %hash, "verified submission sent");
            self.broadcast(&raw).await?;
            fault("after_broadcast");
        }
        Ok(())
    }

    /// Whether the contract recorded this entry's commitment for its count
    /// (`commitmentOf(jobId, cumulativeTokens)`): the submission was credited.
    async fn credited(&self, entry: &OutboxEntry) -> Result<bool, PassError> {
        let recorded = IFabstirMarketplace::new(self.settings.marketplace, &self.provider)
            .commitmentOf(
                parse_u256(&entry.job_id),
                U256::from(entry.cumulative_tokens),
            )
            .call()
            .await
            .map_err(|e| {
                self.metrics
                    .chain_rpc_errors
                    .with_label_values(&["commitmentOf"])
                    .inc();
                PassError::Rpc(format!("commitmentOf: {e}"))
            })?;
        Ok(!recorded.is_zero() && recorded == parse_u256(&entry.commitment))
    }

    /// `submitVerifiedProof(jobId, cumulativeTokens, commitment, proof)`.
    fn calldata(&self, entry: &OutboxEntry) -> Bytes {
        let job = parse_u256(&entry.job_id);
        let commitment = parse_u256(&entry.commitment);
        IFabstirMarketplace::submitVerifiedProofCall {
            jobId: job,
            cumulativeTokens: U256::from(entry.cumulative_tokens),
            commitment,
            proof: Bytes::from(entry.proof.clone()),
        }
        .abi_encode()
        .into()
    }

    fn request(&self, input: Bytes) -> TransactionRequest {
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
    async fn gas_for(&self, input: &Bytes) -> Result<u64, PassError> {
        let estimate = self
            .provider
            .estimate_gas(self.request(input.clone()))
            .block(BlockId::latest())
            .await
            .map_err(|e| self.rpc_error("eth_estimateGas", &e))?;
        Ok(estimate + estimate / 5)
    }

    /// EIP-1559 fees: the provider's estimate, capped.
    async fn fees(&self) -> Result<(u128, u128), PassError> {
        let estimate = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| self.rpc_error("eth_feeHistory", &e))?;
        let mut max_fee = estimate.max_fee_per_gas;
        if let Some(cap) = self.settings.max_fee_per_gas {
            max_fee = max_fee.min(cap);
        }
        Ok((max_fee, estimate.max_priority_fee_per_gas.min(max_fee)))
    }

    /// Signs an EIP-1559 transaction to the marketplace: its hash and raw
    /// (EIP-2718) bytes.
    fn sign(
        &self,
        nonce: u64,
        gas: u64,
        max_fee: u128,
        tip: u128,
        input: Bytes,
    ) -> (String, Vec<u8>) {
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
        let hash = format!("{:#x}", envelope.tx_hash());
        (hash, envelope.encoded_2718())
    }

    /// `eth_sendRawTransaction`; a node that already has it, or that has
    /// mined its nonce, is fine (the receipt decides).
    async fn broadcast(&self, raw: &[u8]) -> Result<(), PassError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string().to_lowercase();
                if text.contains("already known")
                    || text.contains("already imported")
                    || text.contains("nonce too low")
                    || text.contains("known transaction")
                {
                    Ok(())
                } else {
                    Err(self.rpc_error("eth_sendRawTransaction", &e))
                }
            }
        }
    }

    /// Why a mined transaction reverted: the call replayed on the state
    /// before its block.
    async fn revert_reason(&self, entry: &OutboxEntry, block: u64) -> (String, String) {
        let request = self.request(self.calldata(entry));
        match self
            .provider
            .call(request)
            .block(BlockId::number(block.saturating_sub(1)))
            .await
        {
            Err(e) => match classify(&e) {
                RpcFailure::Revert(data) => decode_revert(&data),
                RpcFailure::Transient(t) => ("unknown".into(), t),
            },
            Ok(_) => ("unknown".into(), "reverted in its block".into()),
        }
    }

    /// Records a final failure: the entry, its checkpoint (rejected, so it
    /// claims nothing), the metric.
    fn fail(&self, entry: &OutboxEntry, name: &str, detail: &str) -> Result<(), StoreError> {
        let reason = if detail.is_empty() {
            name.to_string()
        } else {
            format!("{name}({detail})")
        };
        tracing::warn!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), reason = %reason, "verified submission refused by the contract");
        self.metrics.chain_reverts.with_label_values(&[name]).inc();
        self.store.durable(|tx| {
            outbox::mark_failed(tx, entry.id, &reason)?;
            checkpoints::mark(
                tx,
                entry.checkpoint_id,
                CheckpointStatus::Rejected,
                &format!("refused by the marketplace: {reason}"),
            )?;
            Ok(())
        })
    }

    /// Waits until no entry is `pending` or `sent` (tests, the demo), at
    /// most `timeout`; returns whether it got there.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self.store.durable(|tx| {
                Ok(outbox::in_state(tx, OutboxState::Pending)?.len()
                    + outbox::in_state(tx, OutboxState::Sent)?.len())
            });
            if matches!(open, Ok(0)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The job's id as the contract sees it.
    pub fn job_word(job: &JobId) -> U256 {
        U256::from_be_bytes(job.0)
    }

    /// The verifier's `vk_id` at `verifier` (for `chain deploy`).
    pub async fn verifier_vk_id(
        provider: &DynProvider,
        verifier: Address,
    ) -> Result<B256, TransportError> {
        IFabstirVerifier::new(verifier, provider)
            .VK_ID()
            .call()
            .await
            .map_err(|e| TransportError::local_usage_str(&e.to_string()))
    }
}

/// The file in a key directory that lists the marketplaces its `host_id`
/// is registered with (written by `chain register` and by `serve` once its
/// start-up checks passed), so that `keys rotate --new-host-key` can tell
/// that a new host key would lock the node out of them.
pub const REGISTRATIONS_FILE: &str = "chain-registrations.json";

/// One registration of a key directory's `host_id` on a marketplace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    pub chain_id: u64,
    /// EIP-55 checksummed.
    pub marketplace: String,
    /// The host wallet, EIP-55 checksummed.
    pub wallet: String,
    /// `0x` + 64 hex digits.
    pub host_id: String,
}

/// The registrations recorded in `keys_dir` (none when the file is missing
/// or unreadable).
pub fn registrations(keys_dir: &std::path::Path) -> Vec<Registration> {
    std::fs::read(keys_dir.join(REGISTRATIONS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds `registration` to `keys_dir`'s list (once), replacing the file
/// atomically (mode 0600: it holds no secret, but lives among secrets).
pub fn record_registration(
    keys_dir: &std::path::Path,
    registration: &Registration,
) -> std::io::Result<()> {
    let mut list = registrations(keys_dir);
    if list.contains(registration) {
        return Ok(());
    }
    list.push(registration.clone());
    let path = keys_dir.join(REGISTRATIONS_FILE);
    let staging = keys_dir.join(format!(".{REGISTRATIONS_FILE}.tmp"));
    let _ = std::fs::remove_file(&staging);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&staging)?;
    std::io::Write::write_all(
        &mut file,
        serde_json::to_string_pretty(&list)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    file.sync_all()?;
    std::fs::rename(&staging, &path)
}

/// What the marketplace knows about the node's keys, for key reloads and
/// the `chain_host_id` health check: the `host_id` registered for the host
/// wallet (read from the contract) and the `vk_id` its verifier checks
/// (checked at start-up). The contract cannot rotate a host's id yet, so a
/// reload that would change either is refused.
pub struct ChainKeys {
    chain: Arc<EvmChain>,
    runtime: tokio::runtime::Handle,
    verifier_vk_id: [u8; 32],
    /// The last `host_id` read from the contract.
    registered: std::sync::Mutex<[u8; 32]>,
}

/// How long a key reload or a health check waits for the contract.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

impl ChainKeys {
    /// `chain` (checked at start-up: its verifier checks `verifier_vk_id`,
    /// the wallet is registered with `registered`), whose calls run on
    /// `runtime` (from blocking threads only).
    pub fn new(
        chain: Arc<EvmChain>,
        runtime: tokio::runtime::Handle,
        verifier_vk_id: [u8; 32],
        registered: [u8; 32],
    ) -> Self {
        Self {
            chain,
            runtime,
            verifier_vk_id,
            registered: std::sync::Mutex::new(registered),
        }
    }

    /// The registered `host_id`, read now (the last one read, with a
    /// warning, when the contract cannot be asked).
    fn current_registration(&self) -> [u8; 32] {
        match crate::health::RegisteredHost::registered_host_id(self) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the host_id registered on-chain; comparing with the last one read");
                *self.registered.lock().unwrap_or_else(|p| p.into_inner())
            }
        }
    }

    /// Whether a reload may install `keys`: the same `host_id` as the
    /// wallet's registration and the `vk_id` the verifier checks; else what
    /// to do instead.
    pub fn check_reload(&self, keys: &fabstir_zk::KeySet) -> Result<(), String> {
        let host_id = keys.manifest.host_id.to_bytes();
        let registered = self.current_registration();
        let who = crate::health::RegisteredHost::describe(self);
        if host_id != registered {
            return Err(format!(
                "the new keys have host_id {}, but {who} is registered with host_id {}, and rotating a host_id on-chain is not supported yet \
                 (the marketplace would refuse every submission with InvalidProof, and the node would not start again). \
                 Either keep the old host key: move the previous key set back from the key directory's retired/ (the newest one) \
                 or restore a backup, and reload; or register a new wallet for host_id {} (fabstir-node chain register --wallet-key NEW.key) \
                 and restart the node with --wallet-key NEW.key",
                hex32(&host_id),
                hex32(&registered),
                hex32(&host_id)
            ));
        }
        let vk_id = keys.manifest.vk_id.0;
        if vk_id != self.verifier_vk_id {
            return Err(format!(
                "the new keys have vk_id {}, but the verifier of marketplace {} checks vk_id {} \
                 (the marketplace would refuse every submission with InvalidProof, and the node would not start again). \
                 Keep the current keys (move the previous set back from the key directory's retired/), \
                 or deploy a verifier and marketplace for the new keys and restart the node with that --marketplace",
                hex32(&vk_id),
                self.chain.marketplace(),
                hex32(&self.verifier_vk_id)
            ));
        }
        Ok(())
    }
}

impl crate::health::RegisteredHost for ChainKeys {
    fn registered_host_id(&self) -> Result<[u8; 32], String> {
        let chain = self.chain.clone();
        let read = self.runtime.block_on(async move {
            tokio::time::timeout(REGISTRY_TIMEOUT, chain.registered_host_id()).await
        });
        let id = match read {
            Ok(result) => result?,
            Err(_) => {
                return Err(format!(
                    "hostIdOf: no answer within {} s",
                    REGISTRY_TIMEOUT.as_secs()
                ))
            }
        };
        *self.registered.lock().unwrap_or_else(|p| p.into_inner()) = id;
        Ok(id)
    }

    fn describe(&self) -> String {
        format!(
            "wallet {} (marketplace {}, chain {})",
            self.chain.wallet(),
            self.chain.marketplace(),
            self.chain.chain_id()
        )
    }
}

/// The `tx_hash` recorded for a submission found credited by the contract
/// without a receipt of its own transaction at hand.
const CREDITED: &str = "credited";

/// Why a pass over the outbox stopped early.
enum PassError {
    Rpc(String),
    Store(StoreError),
}

impl From<StoreError> for PassError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn parse_hash(text: &str) -> Option<B256> {
    text.parse().ok()
}

/// A `0x` hex word as stored by the node (job ids, commitments); zero when
/// unreadable (the contract then refuses it, which the simulation records).
fn parse_u256(text: &str) -> U256 {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    U256::from_str_radix(digits, 16).unwrap_or(U256::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_reaches_the_root_cause_without_repeats() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let transport = alloy::transports::TransportErrorKind::custom(root);
        let text = error_chain(&transport);
        assert!(text.ends_with("Connection refused"), "{text}");
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        assert!(rpc_hint(&transport).contains("check that --rpc-url"));
    }

    #[test]
    fn registrations_are_recorded_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(registrations(dir.path()).is_empty());
        let registration = Registration {
            chain_id: 31337,
            marketplace: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512".into(),
            wallet: "0xDe72E1Ac5C5100cc1108B933e99295075F558877".into(),
            host_id: format!("0x{}", "11".repeat(32)),
        };
        record_registration(dir.path(), &registration).unwrap();
        record_registration(dir.path(), &registration).unwrap();
        assert_eq!(registrations(dir.path()), vec![registration]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(REGISTRATIONS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
