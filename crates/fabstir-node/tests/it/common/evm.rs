//! An EVM for integration tests: a thin wrapper over the node's
//! [`fabstir_node::evm_local`] (Solidity compiled by
//! `contracts/tools/compile.js`, a local anvil over JSON-RPC) that uses this
//! repository's `contracts/` and panics with the toolchain's message on any
//! failure, so that a test reads as a list of steps.
//!
//! anvil, forge and cast come from the npm packages pinned in
//! `contracts/package.json`: run `npm ci --prefix contracts` once (the README's
//! test command does). Node.js must be on PATH.

use std::path::{Path, PathBuf};

use fabstir_node::evm_local::{self, Error, Tool, Toolchain};
use serde_json::Value;

pub use fabstir_node::evm_local::{Address, Compiled, Receipt, RpcError};

use super::repo_root;

/// This repository's toolchain.
pub fn toolchain() -> Toolchain {
    Toolchain::at(&repo_root().join("contracts")).unwrap_or_else(|e| panic!("{e}"))
}

/// The path of a Foundry tool (`anvil`, `forge` or `cast`): the binary of the
/// pinned npm package under `contracts/node_modules`, or the path in
/// `FABSTIR_ANVIL` / `FABSTIR_FORGE` / `FABSTIR_CAST`. Panics when it is missing.
pub fn tool_path(name: &str) -> PathBuf {
    let tool = Tool::from_name(name)
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
        Err(e @ (Error::Compile { .. } | Error::CompileOutput { .. })) => Err(e.to_string()),
        Err(e) => panic!("{e}"),
    }
}

/// Why an `eth_call` or `eth_estimateGas` gave no result.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The call reverted, with this revert data (empty for a bare `revert()`).
    Reverted(Vec<u8>),
    /// Any other error (out of gas, invalid opcode, ...).
    Rpc(RpcError),
}

fn call_error(error: Error) -> CallError {
    match error {
        Error::Reverted(data) => CallError::Reverted(data),
        Error::Rpc { error, .. } => CallError::Rpc(error),
        other => panic!("{other}"),
    }
}

/// A running anvil on a free loopback port; killed on drop.
pub struct Anvil {
    inner: evm_local::Anvil,
    /// JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The first of anvil's unlocked dev accounts: the sender of every transaction.
    pub sender: String,
}

impl Anvil {
    /// Starts anvil (its default hardfork, which runs Osaka rules; chain id
    /// 31337; automining) and waits until it answers JSON-RPC; panics with its
    /// output if it does not within 30 s.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts anvil like [`Anvil::start`], with extra flags (for instance
    /// `--code-size-limit 49152` for a verifier over the 24 KiB code limit).
    pub fn start_with(flags: &[&str]) -> Self {
        let inner = toolchain().anvil(flags).unwrap_or_else(|e| panic!("{e}"));
        Anvil {
            url: inner.url().to_string(),
            sender: inner.sender().to_string(),
            inner,
        }
    }

    /// The toolchain's anvil.
    pub fn inner(&self) -> &evm_local::Anvil {
        &self.inner
    }

    /// What anvil printed so far (its last 32-64 KiB).
    pub fn output(&self) -> String {
        self.inner.output()
    }

    /// A JSON-RPC call; panics on a transport or JSON-RPC error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.inner
            .rpc(method, params)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A JSON-RPC call: its result, or the JSON-RPC error (a transport error
    /// is code 0).
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.inner.rpc(method, params).map_err(|e| match e {
            Error::Rpc { error, .. } => error,
            other => RpcError {
                code: 0,
                message: other.to_string(),
                data: None,
            },
        })
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
        self.inner
            .deploy(code, None)
            .unwrap_or_else(|e| panic!("deployment failed: {e}"))
    }

    /// Sends a transaction to `to` with calldata `data` and returns its
    /// receipt once mined (anvil mines each transaction at once). Without
    /// `gas`, anvil estimates it and refuses a transaction that would revert
    /// (this panics); with `gas`, a reverting transaction is mined with
    /// `status == false`.
    pub fn send(&self, to: &Address, data: &[u8], gas: Option<u64>) -> Receipt {
        self.inner
            .send(to, data, gas)
            .unwrap_or_else(|e| panic!("transaction failed: {e}"))
    }

    /// `eth_call` at the latest block: the returned data, or the revert data.
    pub fn call(&self, to: &Address, data: &[u8]) -> Result<Vec<u8>, CallError> {
        self.inner.call(to, data, None).map_err(call_error)
    }

    /// `eth_estimateGas` for a call to `to` with calldata `data`.
    pub fn estimate_gas(&self, to: &Address, data: &[u8]) -> Result<u64, CallError> {
        self.inner.estimate_gas(to, data).map_err(call_error)
    }

    /// The size of the code at `address` (0 for an account without code).
    pub fn code_size(&self, address: &Address) -> usize {
        self.code(address).len()
    }

    /// The code at `address`.
    pub fn code(&self, address: &Address) -> Vec<u8> {
        self.inner.code(address).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// `0x`-prefixed lower-case hex.
pub fn hex_string(bytes: &[u8]) -> String {
    evm_local::hex_string(bytes)
}

/// The bytes of `0x`-prefixed (or bare) hex; panics on anything else.
pub fn hex_bytes(text: &str) -> Vec<u8> {
    evm_local::hex_bytes(text).unwrap_or_else(|| panic!("expected hex data, got {text:?}"))
}
