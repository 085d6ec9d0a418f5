//! An EVM for integration tests: Solidity compiled by `contracts/tools/compile.js`
//! (solcjs, with foundry.toml's settings) and a local anvil driven over JSON-RPC.
//!
//! anvil, forge and cast come from the npm packages pinned in
//! `contracts/package.json`: run `npm ci --prefix contracts` once (the README's
//! test command does). Node.js must be on PATH.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::repo_root;

/// An account or contract address.
pub type Address = [u8; 20];

const INSTALL_HINT: &str = "run `npm ci --prefix contracts` in the repository root";

/// The path of a Foundry tool (`anvil`, `forge` or `cast`): the binary of the
/// pinned npm package under `contracts/node_modules`, or the path in
/// `FABSTIR_ANVIL` / `FABSTIR_FORGE` / `FABSTIR_CAST`. Panics when it is missing.
pub fn tool_path(name: &str) -> PathBuf {
    let variable = match name {
        "anvil" => "FABSTIR_ANVIL",
        "forge" => "FABSTIR_FORGE",
        "cast" => "FABSTIR_CAST",
        _ => panic!("unknown Foundry tool {name:?} (anvil, forge or cast)"),
    };
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{variable}={}: no such file",
            path.display()
        );
        return path;
    }
    let path = repo_root()
        .join("contracts/node_modules/@foundry-rs")
        .join(format!("{name}-linux-amd64/bin/{name}"));
    assert!(
        path.is_file(),
        "{name} not found at {}: {INSTALL_HINT} (or set {variable} to a {name} binary)",
        path.display()
    );
    path
}

/// A compiled contract.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Creation code (append the ABI-encoded constructor arguments to deploy).
    pub bytecode: Vec<u8>,
    /// Runtime code, as `eth_getCode` returns it after deployment.
    pub deployed: Vec<u8>,
    pub abi: Value,
}

/// Compiles `contract` of the Solidity file `sol`; panics with solc's messages
/// when it does not compile.
pub fn compile(sol: &Path, contract: &str) -> Compiled {
    try_compile(sol, contract).unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles `contract` of the Solidity file `sol`; on failure, the compiler's
/// messages.
pub fn try_compile(sol: &Path, contract: &str) -> Result<Compiled, String> {
    let root = repo_root();
    assert!(
        root.join("contracts/node_modules/solc").is_dir(),
        "solcjs is not installed: {INSTALL_HINT}"
    );
    let script = root.join("contracts/tools/compile.js");
    let output = Command::new("node")
        .arg(&script)
        .arg(sol)
        .arg(contract)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `node {}`: {e} (Node.js 20+ is needed)",
                script.display()
            )
        });
    if !output.status.success() {
        return Err(format!(
            "compiling {} ({contract}) failed: {}",
            sol.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let all: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("compile.js printed no JSON ({e})"));
    let entry = &all[contract];
    let code = |field: &str| {
        let text = entry[field]
            .as_str()
            .unwrap_or_else(|| panic!("compile.js: no {field} string for {contract}: {entry}"));
        hex_bytes(text)
    };
    Ok(Compiled {
        bytecode: code("bytecode"),
        deployed: code("deployedBytecode"),
        abi: entry["abi"].clone(),
    })
}

/// A JSON-RPC error answer.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

/// Why an `eth_call` or `eth_estimateGas` gave no result.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The call reverted, with this revert data (empty for a bare `revert()`).
    Reverted(Vec<u8>),
    /// Any other error (out of gas, invalid opcode, ...).
    Rpc(RpcError),
}

/// A mined transaction's receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// `true` when the transaction succeeded, `false` when it reverted.
    pub status: bool,
    pub gas_used: u64,
    /// Set for a contract creation.
    pub contract_address: Option<Address>,
    pub transaction_hash: String,
    /// The whole receipt, as anvil returned it.
    pub raw: Value,
}

/// A running anvil on a free loopback port; killed on drop.
pub struct Anvil {
    child: Child,
    /// JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The first of anvil's unlocked dev accounts: the sender of every transaction.
    pub sender: String,
    client: reqwest::blocking::Client,
    output: Arc<Mutex<String>>,
}

/// Reads `from` to its end in a thread (so that the child never blocks on a
/// full pipe), keeping the last 64 KiB in `sink`; lines starting with
/// `Listening on ` are sent on `listening`.
fn drain(
    from: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    listening: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(address) = line.strip_prefix("Listening on ") {
                let _ = listening.send(address.trim().to_string());
            }
            let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
            text.push_str(&line);
            text.push('\n');
            if text.len() > 64 * 1024 {
                let cut = text.len() - 32 * 1024;
                let cut = (cut..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.drain(..cut);
            }
        }
    });
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
        let anvil = tool_path("anvil");
        let mut child = Command::new(&anvil)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", anvil.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("anvil stdout"),
            output.clone(),
            tx.clone(),
        );
        drain(
            child.stderr.take().expect("anvil stderr"),
            output.clone(),
            tx,
        );
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .expect("HTTP client");
        let mut anvil = Anvil {
            child,
            url: String::new(),
            sender: String::new(),
            client,
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("anvil did not say where it listens:\n{}", anvil.output()));
        anvil.url = format!("http://{address}");
        loop {
            match anvil.try_rpc("eth_chainId", json!([])) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "anvil at {} does not answer: {e:?}\n{}",
                        anvil.url,
                        anvil.output()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let accounts = anvil.rpc("eth_accounts", json!([]));
        anvil.sender = accounts[0]
            .as_str()
            .unwrap_or_else(|| panic!("eth_accounts: expected a list of addresses, got {accounts}"))
            .to_string();
        anvil
    }

    /// What anvil printed so far (its last 32-64 KiB).
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A JSON-RPC call; panics on a transport or JSON-RPC error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    /// A JSON-RPC call: its result, or the JSON-RPC error (a transport error
    /// is code 0).
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let transport = |message: String| RpcError {
            code: 0,
            message,
            data: None,
        };
        let response: Value = self
            .client
            .post(&self.url)
            .json(&request)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| transport(e.to_string()))?;
        if let Some(error) = response.get("error") {
            return Err(RpcError {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or_default().to_string(),
                data: error.get("data").cloned(),
            });
        }
        response
            .get("result")
            .cloned()
            .ok_or_else(|| transport(format!("neither result nor error: {response}")))
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
        let receipt = self.transact(json!({"from": self.sender, "data": hex_string(code)}));
        assert!(receipt.status, "deployment reverted: {}", receipt.raw);
        assert!(
            receipt.contract_address.is_some(),
            "deployment receipt without contractAddress: {}",
            receipt.raw
        );
        receipt
    }

    /// Sends a transaction to `to` with calldata `data` and returns its
    /// receipt once mined (anvil mines each transaction at once). Without
    /// `gas`, anvil estimates it and refuses a transaction that would revert
    /// (this panics); with `gas`, a reverting transaction is mined with
    /// `status == false`.
    pub fn send(&self, to: &Address, data: &[u8], gas: Option<u64>) -> Receipt {
        let mut tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        if let Some(gas) = gas {
            tx["gas"] = json!(format!("{gas:#x}"));
        }
        self.transact(tx)
    }

    fn transact(&self, tx: Value) -> Receipt {
        let hash = self.rpc("eth_sendTransaction", json!([tx]));
        let hash = hash
            .as_str()
            .unwrap_or_else(|| {
                panic!("eth_sendTransaction: expected a transaction hash, got {hash}")
            })
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let raw = loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                break receipt;
            }
            assert!(
                Instant::now() < deadline,
                "transaction {hash} not mined in 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = quantity(&raw["status"], "receipt status");
        Receipt {
            status: status == 1,
            gas_used: quantity(&raw["gasUsed"], "receipt gasUsed"),
            contract_address: raw["contractAddress"].as_str().map(address),
            transaction_hash: hash,
            raw,
        }
    }

    /// `eth_call` at the latest block: the returned data, or the revert data.
    pub fn call(&self, to: &Address, data: &[u8]) -> Result<Vec<u8>, CallError> {
        let tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        let result = self
            .try_rpc("eth_call", json!([tx, "latest"]))
            .map_err(call_error)?;
        let text = result
            .as_str()
            .unwrap_or_else(|| panic!("eth_call: expected hex data, got {result}"));
        Ok(hex_bytes(text))
    }

    /// `eth_estimateGas` for a call to `to` with calldata `data`.
    pub fn estimate_gas(&self, to: &Address, data: &[u8]) -> Result<u64, CallError> {
        let tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        let result = self
            .try_rpc("eth_estimateGas", json!([tx]))
            .map_err(call_error)?;
        Ok(quantity(&result, "eth_estimateGas"))
    }

    /// The size of the code at `address` (0 for an account without code).
    pub fn code_size(&self, address: &Address) -> usize {
        self.code(address).len()
    }

    /// The code at `address`.
    pub fn code(&self, address: &Address) -> Vec<u8> {
        let code = self.rpc("eth_getCode", json!([hex_string(address), "latest"]));
        hex_bytes(
            code.as_str()
                .unwrap_or_else(|| panic!("eth_getCode: expected hex data, got {code}")),
        )
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// anvil answers a revert with code 3 and the revert data in `data`.
fn call_error(error: RpcError) -> CallError {
    if error.code == 3 || error.message.contains("revert") {
        let data = error
            .data
            .as_ref()
            .and_then(Value::as_str)
            .map(hex_bytes)
            .unwrap_or_default();
        CallError::Reverted(data)
    } else {
        CallError::Rpc(error)
    }
}

/// `0x`-prefixed lower-case hex.
pub fn hex_string(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The bytes of `0x`-prefixed (or bare) hex; panics on anything else.
pub fn hex_bytes(text: &str) -> Vec<u8> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).unwrap_or_else(|e| panic!("expected hex data, got {text:?}: {e}"))
}

fn address(text: &str) -> Address {
    hex_bytes(text)
        .try_into()
        .unwrap_or_else(|_| panic!("expected a 20-byte address, got {text:?}"))
}

/// A JSON-RPC quantity (`"0x…"`) as u64.
fn quantity(value: &Value, what: &str) -> u64 {
    value
        .as_str()
        .and_then(|text| text.strip_prefix("0x"))
        .and_then(|digits| u64::from_str_radix(digits, 16).ok())
        .unwrap_or_else(|| panic!("{what}: expected a hex quantity, got {value}"))
}
