//! An EVM for integration tests: the node's own `contracts/` toolchain
//! (`src/cli/contracts.rs`, included here as a module: Solidity compiled by
//! `contracts/tools/compile.js`, anvil started by alloy's launcher, the
//! deployment of the verifier and the marketplace) and an alloy provider that
//! signs with anvil's development keys. Every call goes through alloy; every
//! transaction's receipt is awaited with a deadline. Failures panic with the
//! toolchain's message, so that a test reads as a list of steps.
//!
//! anvil, forge and cast come from the npm packages pinned in
//! `contracts/package.json`: run `npm ci --prefix contracts` once (the README's
//! test command does). Node.js must be on PATH.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Bytes, U256};
use alloy::providers::ext::AnvilApi as _;
use alloy::providers::{DynProvider, Provider as _};
use alloy::rpc::types::TransactionRequest;

#[allow(dead_code)]
#[path = "../../../src/cli/contracts.rs"]
mod contracts;

pub use alloy::primitives::Address;
pub use alloy::rpc::types::TransactionReceipt as Receipt;
pub(crate) use contracts::{Compiled, Deployment};
use contracts::{LocalAnvil, Tool, Toolchain, ToolchainError};

use super::repo_root;

/// How long a transaction may take to be mined.
const MINED_WITHIN: Duration = Duration::from_secs(60);

/// Runs `future` to completion on the tests' shared tokio runtime (the
/// tests are synchronous; alloy is async).
pub fn block_on<F: IntoFuture>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime for the EVM tests")
        })
        .block_on(future.into_future())
}

/// This repository's toolchain.
fn toolchain() -> Toolchain {
    Toolchain::at(&repo_root().join("contracts")).unwrap_or_else(|e| panic!("{e}"))
}

/// The path of a Foundry tool (`anvil`, `forge` or `cast`): the binary of the
/// pinned npm package under `contracts/node_modules`, or the path in
/// `FABSTIR_ANVIL` / `FABSTIR_FORGE` / `FABSTIR_CAST`. Panics when it is missing.
pub fn tool_path(name: &str) -> PathBuf {
    let tool = [Tool::Anvil, Tool::Forge, Tool::Cast]
        .into_iter()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("unknown Foundry tool {name:?} (anvil, forge or cast)"));
    toolchain()
        .tool_path(tool)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles `contract` of the Solidity file `sol`; panics with solc's messages
/// when it does not compile.
pub fn compile(sol: &Path, contract: &str) -> Compiled {
    try_compile(sol, contract).unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles `contract` of the Solidity file `sol`; on failure, the compiler's
/// messages. Panics when the toolchain itself is missing.
pub fn try_compile(sol: &Path, contract: &str) -> Result<Compiled, String> {
    match toolchain().compile(sol, contract) {
        Ok(compiled) => Ok(compiled),
        Err(e @ (ToolchainError::Compile { .. } | ToolchainError::CompileOutput { .. })) => {
            Err(e.to_string())
        }
        Err(e) => panic!("{e}"),
    }
}

/// Why a call or a gas estimate gave no result.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The call reverted, with this revert data (empty for a bare `revert()`).
    Reverted(Vec<u8>),
    /// Any other error (out of gas, invalid opcode, ...): the node's message.
    Rpc(String),
}

fn call_error(error: alloy::transports::TransportError) -> CallError {
    match error.as_error_resp() {
        Some(payload) => match payload.as_revert_data() {
            Some(data) => CallError::Reverted(data.to_vec()),
            // A bare `revert()` has no data; anvil says "execution reverted".
            None if payload.code == 3 || payload.message.contains("reverted") => {
                CallError::Reverted(Vec::new())
            }
            None => CallError::Rpc(payload.to_string()),
        },
        None => panic!("no answer from anvil: {error}"),
    }
}

/// A running anvil on a loopback port, with a provider; stopped on drop
/// (SIGTERM, so that `--dump-state` writes its file).
pub struct Anvil {
    inner: LocalAnvil,
    provider: DynProvider,
    /// JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The first of anvil's development accounts: the default sender.
    pub sender: Address,
}

impl Anvil {
    /// Starts anvil (its default hardfork, which runs Osaka rules; chain id
    /// 31337; automining); panics with alloy's error if it does not say
    /// where it listens within 30 s.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts anvil like [`Anvil::start`], with extra flags (for instance
    /// `--code-size-limit 49152` for a verifier over the 24 KiB code limit).
    pub fn start_with(flags: &[&str]) -> Self {
        Self::start_on(0, flags)
    }

    /// Starts anvil on `port` (0: a free one) with extra flags: a fixed port
    /// lets a test stop anvil and start it again at the same URL.
    pub fn start_on(port: u16, flags: &[&str]) -> Self {
        let inner = toolchain()
            .anvil_on(port, flags)
            .unwrap_or_else(|e| panic!("{e}"));
        let provider = inner.provider().unwrap_or_else(|e| panic!("{e}"));
        let sender = *inner.accounts().first().expect("anvil's dev accounts");
        Anvil {
            url: inner.url(),
            sender,
            provider,
            inner,
        }
    }

    /// The provider: signs with anvil's development keys (a request's
    /// `from` picks the key), fills in nonce, gas and fees.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// anvil's development accounts (the provider holds their keys).
    pub fn accounts(&self) -> Vec<Address> {
        self.inner.accounts().to_vec()
    }

    /// Deploys `code` (creation code followed by the ABI-encoded constructor
    /// arguments); panics unless the creation succeeds.
    pub fn deploy(&self, code: &[u8]) -> Address {
        self.deploy_receipt(code)
            .contract_address
            .expect("checked by deploy_receipt")
    }

    /// Deploys `code` like [`Anvil::deploy`] and returns the receipt (gas used,
    /// contract address).
    pub fn deploy_receipt(&self, code: &[u8]) -> Receipt {
        block_on(contracts::deploy_contract(
            &self.provider,
            "the contract",
            code.to_vec(),
            None,
        ))
        .map(|(_, receipt)| receipt)
        .unwrap_or_else(|e| panic!("deployment failed: {e}"))
    }

    /// Deploys `verifier` and the marketplace over it, as `chain deploy` does.
    pub fn deploy_marketplace(&self, verifier: &Compiled, marketplace: &Compiled) -> Deployment {
        self.deploy_marketplace_with_batches(verifier, &[], marketplace)
    }

    /// Deploys `verifier`, the batch verifiers (with their sizes) and the
    /// marketplace over them.
    pub fn deploy_marketplace_with_batches(
        &self,
        verifier: &Compiled,
        batch_verifiers: &[(usize, &Compiled)],
        marketplace: &Compiled,
    ) -> Deployment {
        block_on(contracts::deploy_marketplace(
            &self.provider,
            verifier,
            batch_verifiers,
            marketplace,
            None,
        ))
        .unwrap_or_else(|e| panic!("deployment failed: {e}"))
    }

    /// Sends a transaction from the default sender to `to` with calldata
    /// `data` and returns its receipt once mined. Without `gas`, anvil
    /// estimates it and refuses a transaction that would revert (this
    /// panics); with `gas`, a reverting transaction is mined with a failed
    /// status.
    pub fn send(&self, to: &Address, data: &[u8], gas: Option<u64>) -> Receipt {
        self.send_from(self.sender, *to, data, U256::ZERO, gas)
    }

    /// [`Anvil::send`] from another development account, with `value` wei.
    pub fn send_from(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        value: U256,
        gas: Option<u64>,
    ) -> Receipt {
        self.try_send_from(from, to, data, value, gas)
            .unwrap_or_else(|e| panic!("transaction failed: {e:?}"))
    }

    /// [`Anvil::send_from`], the refusal (a revert found by the gas
    /// estimate) as an error.
    pub fn try_send_from(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        value: U256,
        gas: Option<u64>,
    ) -> Result<Receipt, CallError> {
        let request = transaction(from, to, data, value, gas);
        let pending = block_on(self.provider.send_transaction(request)).map_err(call_error)?;
        Ok(
            block_on(pending.with_timeout(Some(MINED_WITHIN)).get_receipt())
                .unwrap_or_else(|e| panic!("no receipt within {MINED_WITHIN:?}: {e}")),
        )
    }

    /// A call at the latest block from the default sender: the returned
    /// data, or the revert data.
    pub fn call(&self, to: &Address, data: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_with(self.sender, *to, data, None)
    }

    /// A call at the latest block from `from`, with an optional gas limit.
    pub fn call_with(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        gas: Option<u64>,
    ) -> Result<Vec<u8>, CallError> {
        self.try_call(from, to, data, U256::ZERO, gas)
    }

    /// A call at the latest block from `from` with `value` wei attached.
    pub fn call_with_value(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        value: U256,
    ) -> Result<Vec<u8>, CallError> {
        self.try_call(from, to, data, value, None)
    }

    fn try_call(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        value: U256,
        gas: Option<u64>,
    ) -> Result<Vec<u8>, CallError> {
        let request = transaction(from, to, data, value, gas);
        block_on(self.provider.call(request))
            .map(|out| out.to_vec())
            .map_err(call_error)
    }

    /// A typed call of a contract function (alloy `sol!` bindings).
    pub fn call_sol<C: alloy::sol_types::SolCall>(&self, to: Address, call: C) -> C::Return {
        let out = self
            .call(&to, &call.abi_encode())
            .unwrap_or_else(|e| panic!("{}: {e:?}", C::SIGNATURE));
        C::abi_decode_returns(&out).unwrap_or_else(|e| panic!("{}: {e}", C::SIGNATURE))
    }

    /// The gas estimate for a call to `to` with calldata `data`.
    pub fn estimate_gas(&self, to: &Address, data: &[u8]) -> Result<u64, CallError> {
        let request = TransactionRequest::default()
            .with_from(self.sender)
            .with_to(*to)
            .with_input(Bytes::copy_from_slice(data));
        block_on(self.provider.estimate_gas(request)).map_err(call_error)
    }

    /// The size of the code at `address` (0 for an account without code).
    pub fn code_size(&self, address: &Address) -> usize {
        self.code(address).len()
    }

    /// The code at `address`.
    pub fn code(&self, address: &Address) -> Vec<u8> {
        block_on(self.provider.get_code_at(*address))
            .unwrap_or_else(|e| panic!("code at {address}: {e}"))
            .to_vec()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        block_on(self.provider.get_chain_id()).unwrap_or_else(|e| panic!("chain id: {e}"))
    }

    /// The latest block's number.
    pub fn block_number(&self) -> u64 {
        block_on(self.provider.get_block_number()).unwrap_or_else(|e| panic!("block number: {e}"))
    }

    /// The balance of `who`, in wei.
    pub fn balance(&self, who: Address) -> U256 {
        block_on(self.provider.get_balance(who).latest()).unwrap_or_else(|e| panic!("balance: {e}"))
    }

    /// The number of transactions `who` sent (its next nonce).
    pub fn nonce(&self, who: Address) -> u64 {
        block_on(self.provider.get_transaction_count(who).latest())
            .unwrap_or_else(|e| panic!("nonce of {who}: {e}"))
    }

    /// The receipt of a mined transaction (it must be mined).
    pub fn receipt(&self, hash: &str) -> Receipt {
        let hash = hash.parse().unwrap_or_else(|e| panic!("{hash:?}: {e}"));
        block_on(self.provider.get_transaction_receipt(hash))
            .unwrap_or_else(|e| panic!("receipt of {hash}: {e}"))
            .unwrap_or_else(|| panic!("transaction {hash} is not mined"))
    }

    /// Mines `blocks` blocks.
    pub fn mine(&self, blocks: u64) {
        block_on(self.provider.anvil_mine(Some(blocks), None))
            .unwrap_or_else(|e| panic!("mine: {e}"));
    }

    /// Sets the balance of `who`.
    pub fn set_balance(&self, who: Address, wei: U256) {
        block_on(self.provider.anvil_set_balance(who, wei))
            .unwrap_or_else(|e| panic!("set balance: {e}"));
    }

    /// Sends 0 wei from `signer`'s account to itself, signed with its own
    /// key (not a development account): a transaction that takes the
    /// account's next nonce.
    pub fn send_self_transfer(&self, signer: alloy::signers::local::PrivateKeySigner) -> Receipt {
        let from = signer.address();
        let provider = alloy::providers::ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(signer))
            .connect_http(self.url.parse().expect("anvil's URL"));
        let request = TransactionRequest::default()
            .with_from(from)
            .with_to(from)
            .with_value(U256::ZERO);
        let pending = block_on(provider.send_transaction(request))
            .unwrap_or_else(|e| panic!("transaction failed: {e}"));
        block_on(pending.with_timeout(Some(MINED_WITHIN)).get_receipt())
            .unwrap_or_else(|e| panic!("no receipt within {MINED_WITHIN:?}: {e}"))
    }
    /// Mines each transaction at once (`true`) or not until told.
    pub fn set_automine(&self, on: bool) {
        block_on(self.provider.anvil_set_auto_mine(on))
            .unwrap_or_else(|e| panic!("set automine: {e}"));
    }

    /// Takes a snapshot of the chain: its id, for [`Anvil::revert`].
    pub fn snapshot(&self) -> U256 {
        block_on(self.provider.anvil_snapshot()).unwrap_or_else(|e| panic!("snapshot: {e}"))
    }

    /// Reverts the chain to a snapshot (dropping the blocks since); whether
    /// anvil did.
    pub fn revert(&self, snapshot: U256) -> bool {
        block_on(self.provider.anvil_revert(snapshot)).unwrap_or_else(|e| panic!("revert: {e}"))
    }
}

/// The bytes of `0x`-prefixed (or bare) hex; panics on anything else.
pub fn hex_bytes(text: &str) -> Vec<u8> {
    alloy::primitives::hex::decode(text)
        .unwrap_or_else(|e| panic!("expected hex data, got {text:?}: {e}"))
}

/// A transaction request from `from` to `to`, with an optional gas limit
/// (without one, anvil estimates it).
fn transaction(
    from: Address,
    to: Address,
    data: &[u8],
    value: U256,
    gas: Option<u64>,
) -> TransactionRequest {
    let request = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(Bytes::copy_from_slice(data))
        .with_value(value);
    match gas {
        Some(gas) => request.with_gas_limit(gas),
        None => request,
    }
}
