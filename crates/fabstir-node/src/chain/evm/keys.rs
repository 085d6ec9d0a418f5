//! What the marketplace knows about the node's keys: key reloads that would
//! change the registered `host_id` or the `vk_id` the verifier checks are
//! refused, and `/health`'s `chain_host_id` check reads the registration.

use std::sync::Arc;
use std::time::Duration;

use super::{hex32, EvmChain};

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
                "the new keys have host_id {}, but {who} is registered with host_id {} \
                 (the marketplace would refuse every submission with InvalidProof, and the node would not start again). \
                 Either move the wallet to host_id {} first (the chain register command with the new key directory: rotateHost, \
                 with a proof of the new key; or keys rotate --new-host-key --rpc-url, which does both) and reload again; \
                 or keep the old host key: move the previous key set back from the key directory's retired/ (the newest one) \
                 or restore a backup, and reload",
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
            Ok(result) => result.map_err(|e| e.to_string())?,
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
