//! Settings, connecting, and the start-up checks: before the node serves
//! anything, the endpoint serves the configured chain, a marketplace is at
//! the configured address, its verifier checks this node's `vk_id`, and the
//! host wallet is registered with this node's `host_id`.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider as _, ProviderBuilder};
use alloy::transports::TransportError;
use thiserror::Error;

use super::rpc::{self, error_chain, rpc_hint, Failure};
use super::EvmChain;
use crate::chain::client::{Revert, RpcError};
use crate::chain::contract::IFabstirMarketplace;
use crate::chain::HostWallet;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

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
    /// How often the submission worker makes a pass when nothing wakes it.
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

/// What the contract at the marketplace address answered to
/// `verifierVkId()`, when that shows it is no marketplace.
#[derive(Debug, Error)]
pub enum NotMarketplace {
    /// The call reverted (a contract without that function).
    #[error("the call reverted: {0}")]
    Reverted(Revert),
    /// The answer is not a `bytes32`.
    #[error("the answer does not decode: {0}")]
    Undecodable(#[source] alloy::contract::Error),
}

/// Why the client cannot start.
#[derive(Debug, Error)]
pub enum EvmError {
    /// `rpc_url` is not a URL.
    #[error("rpc_url {url:?} is not a valid URL: {source}")]
    BadUrl {
        url: String,
        source: url_parse::ParseError,
    },
    /// The endpoint does not answer (or answers garbage): the error with
    /// its causes down to the root (e.g. "Connection refused"), and what to
    /// check.
    #[error("RPC {url}: {}; {}", error_chain(.cause), rpc_hint(.cause))]
    Rpc { url: String, cause: TransportError },
    /// `eth_chainId` is not the configured chain.
    #[error("chain_id: the RPC endpoint serves chain {actual}, but the node is configured for chain {configured}")]
    WrongChain { configured: u64, actual: u64 },
    /// No contract at the marketplace address.
    #[error("marketplace: no contract at {address} on chain {chain_id}")]
    NoContract { address: Address, chain_id: u64 },
    /// The contract at the marketplace address is something else (the
    /// verifier, say): it does not answer `verifierVkId()`.
    #[error("marketplace: the contract at {address} on chain {chain_id} does not answer verifierVkId() ({answer}), so it is not a FabstirMarketplace; check --marketplace: it must be the \"marketplace\" address the chain deploy command printed, not the \"verifier\"")]
    NotMarketplace {
        address: Address,
        chain_id: u64,
        answer: NotMarketplace,
    },
    /// The marketplace's verifier checks another key.
    #[error("marketplace: its verifier checks vk_id {contract}, but this node proves with vk_id {node}; deploy a verifier for this node's keys (the evm verifier command) or use the node's matching keys")]
    VkMismatch { contract: B256, node: B256 },
    /// The wallet is not registered as a host.
    #[error("host_id: wallet {wallet} is not registered with the marketplace; register host_id {host_id} first (the chain register command)")]
    NotRegistered { wallet: Address, host_id: B256 },
    /// The wallet is registered with another host id.
    #[error("host_id: wallet {wallet} is registered with host_id {registered}, but this node's key has host_id {node}; move the wallet to host_id {node} (the chain register command with this key directory: rotateHost, with a proof of the key), or start with the key set whose host_id is {registered} (after keys rotate --new-host-key it is the newest one under the key directory's retired/)")]
    HostIdMismatch {
        wallet: Address,
        registered: B256,
        node: B256,
    },
    /// The batch keys cannot be built (parameters too small, or missing).
    #[error("batches: cannot build the batch proving keys: {0}; with keys made from a ceremony SRS give its parameters file (--batch-srs), or turn batches off (--max-batch 0)")]
    BatchKeys(#[source] fabstir_zk::KeyError),
    /// The marketplace's batch verifier checks another key.
    #[error("batches: the marketplace's verifier for batches of {size} checks vk_id {contract}, but this node's batch key of that size has vk_id {node}; deploy batch verifiers for this node's keys, or turn batches off (--max-batch 0)")]
    BatchVkMismatch {
        size: usize,
        contract: B256,
        node: B256,
    },
    /// The outbox table could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The URL parser alloy's HTTP transport uses.
mod url_parse {
    pub use alloy::transports::http::reqwest::Url;
    pub type ParseError = <Url as std::str::FromStr>::Err;
}

/// This node's identity on the marketplace, as its key set states it.
#[derive(Debug, Clone, Copy)]
pub struct NodeKeys {
    /// The verifying key's id the marketplace's verifier must check.
    pub vk_id: [u8; 32],
    /// The `host_id` the wallet must be registered with.
    pub host_id: [u8; 32],
}

impl EvmChain {
    /// Connects over HTTP and runs the start-up checks (see
    /// [`EvmChain::start`]).
    pub async fn connect(
        settings: EvmSettings,
        wallet: &HostWallet,
        keys: NodeKeys,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, EvmError> {
        let url: url_parse::Url = settings
            .rpc_url
            .parse()
            .map_err(|source| EvmError::BadUrl {
                url: settings.rpc_url.clone(),
                source,
            })?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        Self::start(provider, settings, wallet, keys, store, metrics).await
    }

    /// The client over `provider`, once the checks pass: the chain id, that
    /// a contract is at the marketplace address, that its verifier checks
    /// this node's `vk_id`, and that the wallet is registered with this
    /// node's `host_id`.
    pub async fn start(
        provider: DynProvider,
        settings: EvmSettings,
        wallet: &HostWallet,
        keys: NodeKeys,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, EvmError> {
        let rpc = |cause: TransportError| EvmError::Rpc {
            url: settings.rpc_url.clone(),
            cause,
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
        let not_marketplace = |answer: NotMarketplace| EvmError::NotMarketplace {
            address: settings.marketplace,
            chain_id,
            answer,
        };
        let contract_vk = market.verifierVkId().call().await.map_err(|e| match e {
            // A revert (a contract without that function) or an answer
            // that is not a bytes32: another contract.
            alloy::contract::Error::TransportError(source) => {
                match rpc::classify("verifierVkId", source) {
                    Failure::Revert(revert) => not_marketplace(NotMarketplace::Reverted(revert)),
                    Failure::Transient(RpcError { source, .. }) => rpc(source),
                }
            }
            other => not_marketplace(NotMarketplace::Undecodable(other)),
        })?;
        if contract_vk.0 != keys.vk_id {
            return Err(EvmError::VkMismatch {
                contract: contract_vk,
                node: B256::from(keys.vk_id),
            });
        }
        let signer = wallet.signer();
        let address = signer.address();
        let registered = market
            .hostIdOf(address)
            .call()
            .await
            .map_err(|e| rpc(rpc::transport(e)))?;
        if registered.is_zero() {
            return Err(EvmError::NotRegistered {
                wallet: address,
                host_id: B256::from(keys.host_id),
            });
        }
        if registered != U256::from_be_bytes(keys.host_id) {
            return Err(EvmError::HostIdMismatch {
                wallet: address,
                registered: B256::from(registered.to_be_bytes()),
                node: B256::from(keys.host_id),
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
            batches: std::sync::OnceLock::new(),
        }))
    }

    /// The `host_id` the marketplace has registered for the host wallet
    /// (`hostIdOf`; zero when none), or why it cannot be asked now.
    pub async fn registered_host_id(&self) -> Result<[u8; 32], RpcError> {
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
                RpcError {
                    call: "hostIdOf",
                    source: rpc::transport(e),
                }
            })
    }
}
