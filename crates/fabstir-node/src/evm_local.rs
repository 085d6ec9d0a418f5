//! A local EVM toolchain: Solidity compiled by solcjs through
//! `contracts/tools/compile.js` (with foundry.toml's settings), and a local
//! anvil driven over JSON-RPC.
//!
//! Everything comes from the repository's `contracts/` directory: the npm
//! packages pinned in `contracts/package.json` (anvil, forge, cast, solcjs;
//! install them with `npm ci --prefix contracts`) and the compile script.
//! Node.js must be on PATH. [`Toolchain::locate`] finds the directory;
//! `FABSTIR_ANVIL`, `FABSTIR_FORGE` and `FABSTIR_CAST` override the tools.
//!
//! Used by `fabstir-node evm bench` and by the contract tests; every failure
//! is an [`Error`] that says what to do about it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// An account or contract address.
pub type Address = [u8; 20];

/// Environment variable naming the `contracts/` directory.
pub const CONTRACTS_DIR_ENV: &str = "FABSTIR_CONTRACTS_DIR";

const INSTALL_HINT: &str = "run `npm ci --prefix contracts` in the repository root";

/// How long anvil may take to start answering, and a transaction to be mined.
const WAIT: Duration = Duration::from_secs(30);

/// Why the local toolchain could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `contracts/` directory was found.
    #[error(
        "cannot find the repository's contracts/ directory (looked for contracts/package.json above {}): pass --contracts DIR or set {CONTRACTS_DIR_ENV}",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ")
    )]
    ContractsNotFound {
        /// Where the search started.
        searched: Vec<PathBuf>,
    },
    /// The given directory is not the repository's `contracts/` directory.
    #[error(
        "{} is not the repository's contracts/ directory (it has no package.json): pass --contracts DIR or set {CONTRACTS_DIR_ENV} to it",
        .0.display()
    )]
    NotContractsDir(PathBuf),
    /// A tool override names no file.
    #[error("{variable}={}: no such file (unset it to use the pinned {tool})", path.display())]
    OverrideMissing {
        /// The tool.
        tool: String,
        /// The environment variable.
        variable: &'static str,
        /// What it names.
        path: PathBuf,
    },
    /// A pinned tool is not installed.
    #[error(
        "{tool} not found at {}: {INSTALL_HINT} (or set {variable} to the path of the {tool} binary)",
        path.display()
    )]
    ToolMissing {
        /// The tool.
        tool: String,
        /// Its override variable.
        variable: &'static str,
        /// Where it should be.
        path: PathBuf,
    },
    /// solcjs is not installed.
    #[error("solcjs is not installed in {}: {INSTALL_HINT}", .0.display())]
    SolcMissing(PathBuf),
    /// Node.js could not run the compile script.
    #[error("cannot run `node {}`: {source} (Node.js 20+ must be on PATH)", script.display())]
    Node {
        /// The script.
        script: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The Solidity source did not compile.
    #[error("compiling {} ({contract}) failed: {message}", sol.display())]
    Compile {
        /// The source file.
        sol: PathBuf,
        /// The contract asked for.
        contract: String,
        /// The compiler's messages.
        message: String,
    },
    /// The compile script printed something unexpected.
    #[error("compile.js gave no usable output for {contract}: {detail}")]
    CompileOutput {
        /// The contract asked for.
        contract: String,
        /// What was wrong.
        detail: String,
    },
    /// anvil could not be started.
    #[error("cannot start {}: {source}", path.display())]
    AnvilSpawn {
        /// The anvil binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// anvil started but did not come up.
    #[error("anvil did not start: {reason}; its output:\n{output}")]
    AnvilStart {
        /// What went wrong.
        reason: String,
        /// What anvil printed.
        output: String,
    },
    /// The HTTP request to anvil failed.
    #[error("{method}: no answer from anvil at {url}: {message}")]
    Transport {
        /// The JSON-RPC method.
        method: String,
        /// The endpoint.
        url: String,
        /// The transport error.
        message: String,
    },
    /// anvil answered with a JSON-RPC error.
    #[error("{method}: {error}")]
    Rpc {
        /// The JSON-RPC method.
        method: String,
        /// The error.
        error: RpcError,
    },
    /// A call reverted (`eth_call`, `eth_estimateGas`).
    #[error("the call reverted (revert data 0x{})", hex::encode(.0))]
    Reverted(Vec<u8>),
    /// anvil answered something other than what the method returns.
    #[error("{what}: unexpected answer {value}")]
    Unexpected {
        /// What was expected.
        what: String,
        /// What came.
        value: Value,
    },
    /// A transaction was not mined in time.
    #[error("transaction {0} was not mined within 30 s")]
    NotMined(String),
    /// A contract creation failed.
    #[error("the deployment reverted after {gas_used} gas (receipt {receipt})")]
    DeployReverted {
        /// Gas the failed creation used.
        gas_used: u64,
        /// The receipt.
        receipt: Value,
    },
}

/// Result of the toolchain's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A JSON-RPC error answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}{}", data.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data (revert data for a revert).
    pub data: Option<Value>,
}

/// The Foundry tools pinned in `contracts/package.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The local node.
    Anvil,
    /// The build and test tool.
    Forge,
    /// The command-line client.
    Cast,
}

impl Tool {
    /// The tool's name, as its binary is called.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Anvil => "anvil",
            Tool::Forge => "forge",
            Tool::Cast => "cast",
        }
    }

    /// The environment variable that overrides the pinned binary.
    pub fn variable(self) -> &'static str {
        match self {
            Tool::Anvil => "FABSTIR_ANVIL",
            Tool::Forge => "FABSTIR_FORGE",
            Tool::Cast => "FABSTIR_CAST",
        }
    }

    /// The tool named `name` (`anvil`, `forge` or `cast`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Tool::Anvil, Tool::Forge, Tool::Cast]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// A compiled contract.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Creation code (append the ABI-encoded constructor arguments to deploy).
    pub bytecode: Vec<u8>,
    /// Runtime code, as `eth_getCode` returns it after deployment (with
    /// immutables still zero).
    pub deployed: Vec<u8>,
    /// The contract's ABI.
    pub abi: Value,
}

/// The repository's `contracts/` directory, where the toolchain lives.
#[derive(Debug, Clone)]
pub struct Toolchain {
    contracts: PathBuf,
}

impl Toolchain {
    /// Uses `dir` as the `contracts/` directory (it must hold `package.json`).
    pub fn at(dir: &Path) -> Result<Self> {
        if !dir.join("package.json").is_file() {
            return Err(Error::NotContractsDir(dir.to_path_buf()));
        }
        Ok(Self {
            contracts: dir.to_path_buf(),
        })
    }

    /// Finds the `contracts/` directory: `explicit` (a `--contracts` flag),
    /// else `FABSTIR_CONTRACTS_DIR`, else the first `contracts/package.json`
    /// in the current directory or above, else above the executable (a
    /// binary in `target/release/` finds the repository it was built in).
    pub fn locate(explicit: Option<&Path>) -> Result<Self> {
        if let Some(dir) = explicit {
            return Self::at(dir);
        }
        if let Some(dir) = std::env::var_os(CONTRACTS_DIR_ENV).filter(|d| !d.is_empty()) {
            return Self::at(Path::new(&dir));
        }
        let mut searched = Vec::new();
        let starts = [
            std::env::current_dir().ok(),
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_path_buf)),
        ];
        for start in starts.into_iter().flatten() {
            if let Some(dir) = start
                .ancestors()
                .map(|a| a.join("contracts"))
                .find(|c| c.join("package.json").is_file())
            {
                return Ok(Self { contracts: dir });
            }
            searched.push(start);
        }
        Err(Error::ContractsNotFound { searched })
    }

    /// The `contracts/` directory.
    pub fn contracts_dir(&self) -> &Path {
        &self.contracts
    }

    /// The path of a Foundry tool: its override variable's file, or the
    /// binary of the pinned npm package under `contracts/node_modules`.
    pub fn tool_path(&self, tool: Tool) -> Result<PathBuf> {
        let (name, variable) = (tool.name(), tool.variable());
        if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(Error::OverrideMissing {
                    tool: name.into(),
                    variable,
                    path,
                });
            }
            return Ok(path);
        }
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            "windows" => "win32",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let path = self
            .contracts
            .join("node_modules/@foundry-rs")
            .join(format!("{name}-{os}-{arch}/bin"))
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if !path.is_file() {
            return Err(Error::ToolMissing {
                tool: name.into(),
                variable,
                path,
            });
        }
        Ok(path)
    }

    /// Compiles `contract` of the Solidity file `sol` with
    /// `contracts/tools/compile.js`.
    pub fn compile(&self, sol: &Path, contract: &str) -> Result<Compiled> {
        let solc = self.contracts.join("node_modules/solc");
        if !solc.is_dir() {
            return Err(Error::SolcMissing(solc));
        }
        let script = self.contracts.join("tools/compile.js");
        let output = Command::new("node")
            .arg(&script)
            .arg(sol)
            .arg(contract)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Node {
                script: script.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Compile {
                sol: sol.to_path_buf(),
                contract: contract.into(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let bad = |detail: String| Error::CompileOutput {
            contract: contract.into(),
            detail,
        };
        let all: Value =
            serde_json::from_slice(&output.stdout).map_err(|e| bad(format!("not JSON ({e})")))?;
        let entry = &all[contract];
        let code = |field: &str| -> Result<Vec<u8>> {
            let text = entry[field]
                .as_str()
                .ok_or_else(|| bad(format!("no {field} string")))?;
            hex_bytes(text).ok_or_else(|| bad(format!("{field} is not hex")))
        };
        Ok(Compiled {
            bytecode: code("bytecode")?,
            deployed: code("deployedBytecode")?,
            abi: entry["abi"].clone(),
        })
    }

    /// Starts anvil (see [`Anvil::start`]) with extra flags, for instance
    /// `--code-size-limit 49152`.
    pub fn anvil(&self, flags: &[&str]) -> Result<Anvil> {
        Anvil::start(&self.tool_path(Tool::Anvil)?, flags)
    }
}

/// A mined transaction's receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// `true` when the transaction succeeded, `false` when it reverted.
    pub status: bool,
    /// Gas the whole transaction used.
    pub gas_used: u64,
    /// Set for a contract creation.
    pub contract_address: Option<Address>,
    /// The transaction's hash.
    pub transaction_hash: String,
    /// The whole receipt, as anvil returned it.
    pub raw: Value,
}

/// A running anvil on a free loopback port; killed on drop.
pub struct Anvil {
    child: Child,
    url: String,
    sender: String,
    client: reqwest::blocking::Client,
    output: Arc<Mutex<String>>,
}

impl std::fmt::Debug for Anvil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anvil")
            .field("url", &self.url)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
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
    /// Starts the anvil binary at `path` on a free loopback port (its
    /// default hardfork; chain id 31337; automining; the default 24,576-byte
    /// code size limit unless `flags` change it) and waits until it answers
    /// JSON-RPC, at most 30 s.
    pub fn start(path: &Path, flags: &[&str]) -> Result<Self> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .map_err(|e| Error::AnvilStart {
                reason: format!("no HTTP client: {e}"),
                output: String::new(),
            })?;
        let mut child = Command::new(path)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::AnvilSpawn {
                path: path.to_path_buf(),
                source,
            })?;
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            drain(stdout, output.clone(), tx.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            drain(stderr, output.clone(), tx);
        }
        // From here on, dropping `anvil` kills the child.
        let mut anvil = Anvil {
            child,
            url: String::new(),
            sender: String::new(),
            client,
            output,
        };
        let deadline = Instant::now() + WAIT;
        let address = rx
            .recv_timeout(WAIT)
            .map_err(|_| anvil.start_failed("it did not say where it listens".into()))?;
        anvil.url = format!("http://{address}");
        loop {
            match anvil.rpc("eth_chainId", json!([])) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(anvil.start_failed(format!("{} does not answer: {e}", anvil.url)))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let accounts = anvil.rpc("eth_accounts", json!([]))?;
        anvil.sender = accounts
            .get(0)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unexpected {
                what: "eth_accounts (a list of addresses)".into(),
                value: accounts.clone(),
            })?
            .to_string();
        Ok(anvil)
    }

    fn start_failed(&self, reason: String) -> Error {
        Error::AnvilStart {
            reason,
            output: self.output(),
        }
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first of anvil's unlocked dev accounts: the sender of every
    /// transaction and call.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// What anvil printed so far (its last 32-64 KiB).
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A JSON-RPC call: its result, [`Error::Rpc`] for a JSON-RPC error,
    /// [`Error::Transport`] when anvil did not answer.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let transport = |message: String| Error::Transport {
            method: method.into(),
            url: self.url.clone(),
            message,
        };
        let response: Value = self
            .client
            .post(&self.url)
            .json(&request)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| transport(e.to_string()))?;
        if let Some(error) = response.get("error") {
            return Err(Error::Rpc {
                method: method.into(),
                error: RpcError {
                    code: error["code"].as_i64().unwrap_or(0),
                    message: error["message"].as_str().unwrap_or_default().to_string(),
                    data: error.get("data").cloned(),
                },
            });
        }
        response
            .get("result")
            .cloned()
            .ok_or_else(|| transport(format!("neither result nor error: {response}")))
    }

    /// Deploys `code` (creation code followed by the ABI-encoded constructor
    /// arguments) with the gas limit `gas` (anvil estimates it when `None`,
    /// and refuses a creation that would fail). [`Error::DeployReverted`]
    /// unless the creation succeeds.
    pub fn deploy(&self, code: &[u8], gas: Option<u64>) -> Result<Receipt> {
        let mut tx = json!({"from": self.sender, "data": hex_string(code)});
        if let Some(gas) = gas {
            tx["gas"] = json!(format!("{gas:#x}"));
        }
        let receipt = self.transact(tx)?;
        if !receipt.status || receipt.contract_address.is_none() {
            return Err(Error::DeployReverted {
                gas_used: receipt.gas_used,
                receipt: receipt.raw,
            });
        }
        Ok(receipt)
    }

    /// Sends a transaction to `to` with calldata `data` and returns its
    /// receipt once mined (anvil mines each transaction at once). Without
    /// `gas`, anvil estimates it and refuses a transaction that would revert
    /// (an [`Error::Rpc`]); with `gas`, a reverting transaction is mined with
    /// `status == false`.
    pub fn send(&self, to: &Address, data: &[u8], gas: Option<u64>) -> Result<Receipt> {
        let mut tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        if let Some(gas) = gas {
            tx["gas"] = json!(format!("{gas:#x}"));
        }
        self.transact(tx)
    }

    /// [`Anvil::send`] with `value` wei attached.
    pub fn send_value(
        &self,
        to: &Address,
        data: &[u8],
        value: u128,
        gas: Option<u64>,
    ) -> Result<Receipt> {
        let mut tx = json!({
            "from": self.sender,
            "to": hex_string(to),
            "data": hex_string(data),
            "value": format!("{value:#x}"),
        });
        if let Some(gas) = gas {
            tx["gas"] = json!(format!("{gas:#x}"));
        }
        self.transact(tx)
    }

    fn transact(&self, tx: Value) -> Result<Receipt> {
        let hash = self.rpc("eth_sendTransaction", json!([tx]))?;
        let hash = hash
            .as_str()
            .ok_or_else(|| Error::Unexpected {
                what: "eth_sendTransaction (a transaction hash)".into(),
                value: hash.clone(),
            })?
            .to_string();
        let deadline = Instant::now() + WAIT;
        let raw = loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]))?;
            if !receipt.is_null() {
                break receipt;
            }
            if Instant::now() > deadline {
                return Err(Error::NotMined(hash));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let contract_address = match &raw["contractAddress"] {
            Value::Null => None,
            value => Some(address(value, "receipt contractAddress")?),
        };
        Ok(Receipt {
            status: quantity(&raw["status"], "receipt status")? == 1,
            gas_used: quantity(&raw["gasUsed"], "receipt gasUsed")?,
            contract_address,
            transaction_hash: hash,
            raw,
        })
    }

    /// `eth_call` at the latest block with an optional gas limit: the
    /// returned data, or [`Error::Reverted`] with the revert data.
    pub fn call(&self, to: &Address, data: &[u8], gas: Option<u64>) -> Result<Vec<u8>> {
        let mut tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        if let Some(gas) = gas {
            tx["gas"] = json!(format!("{gas:#x}"));
        }
        let result = self
            .rpc("eth_call", json!([tx, "latest"]))
            .map_err(revert)?;
        data_of(&result, "eth_call")
    }

    /// `eth_estimateGas` for a call to `to` with calldata `data`
    /// ([`Error::Reverted`] when it reverts). Not a measurement: anvil's
    /// estimate is an upper bound found by search.
    pub fn estimate_gas(&self, to: &Address, data: &[u8]) -> Result<u64> {
        let tx = json!({"from": self.sender, "to": hex_string(to), "data": hex_string(data)});
        let result = self.rpc("eth_estimateGas", json!([tx])).map_err(revert)?;
        quantity(&result, "eth_estimateGas")
    }

    /// The code at `address` (empty for an account without code).
    pub fn code(&self, address: &Address) -> Result<Vec<u8>> {
        let code = self.rpc("eth_getCode", json!([hex_string(address), "latest"]))?;
        data_of(&code, "eth_getCode")
    }

    /// The size of the code at `address` (0 for an account without code).
    pub fn code_size(&self, address: &Address) -> Result<usize> {
        Ok(self.code(address)?.len())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// anvil answers a revert with code 3 and the revert data in `data`.
fn revert(error: Error) -> Error {
    match error {
        Error::Rpc { error, .. } if error.code == 3 || error.message.contains("revert") => {
            Error::Reverted(
                error
                    .data
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(hex_bytes)
                    .unwrap_or_default(),
            )
        }
        other => other,
    }
}

/// `0x`-prefixed lower-case hex.
pub fn hex_string(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The bytes of `0x`-prefixed (or bare) hex; `None` for anything else.
pub fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).ok()
}

fn data_of(value: &Value, what: &str) -> Result<Vec<u8>> {
    value
        .as_str()
        .and_then(hex_bytes)
        .ok_or_else(|| Error::Unexpected {
            what: format!("{what} (hex data)"),
            value: value.clone(),
        })
}

fn address(value: &Value, what: &str) -> Result<Address> {
    data_of(value, what)?
        .try_into()
        .map_err(|_| Error::Unexpected {
            what: format!("{what} (a 20-byte address)"),
            value: value.clone(),
        })
}

/// A JSON-RPC quantity (`"0x…"`) as u64.
pub fn quantity(value: &Value, what: &str) -> Result<u64> {
    value
        .as_str()
        .and_then(|text| text.strip_prefix("0x"))
        .and_then(|digits| u64::from_str_radix(digits, 16).ok())
        .ok_or_else(|| Error::Unexpected {
            what: format!("{what} (a hex quantity)"),
            value: value.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_package_json_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = Toolchain::at(dir.path()).expect_err("an empty directory was accepted");
        assert!(error.to_string().contains("--contracts"), "{error}");
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("package.json"), "{}").expect("package.json");
        let toolchain = Toolchain::at(dir.path()).expect("a contracts directory");
        // `forge` because the tests do not set FABSTIR_FORGE.
        if std::env::var_os(Tool::Forge.variable()).is_none() {
            let error = toolchain.tool_path(Tool::Forge).expect_err("no forge here");
            let text = error.to_string();
            assert!(
                text.contains("forge not found at") && text.contains("npm ci --prefix contracts"),
                "{text}"
            );
        }
        let error = toolchain
            .compile(Path::new("x.sol"), "X")
            .expect_err("no solcjs here");
        assert!(matches!(error, Error::SolcMissing(_)), "{error}");
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(quantity(&json!("0x10"), "q").is_ok_and(|q| q == 16));
        assert!(quantity(&json!(16), "q").is_err());
        assert!(address(&json!("0x1234"), "a").is_err());
        assert!(data_of(&json!("0xzz"), "d").is_err());
        assert_eq!(hex_bytes("0x0102"), Some(vec![1, 2]));
    }
}
