//! The repository's `contracts/` toolchain for the commands that deploy
//! (`chain deploy`, `chain demo`, `evm bench`): Solidity compiled by solcjs
//! through `contracts/tools/compile.js` (with foundry.toml's settings), a
//! local anvil started through alloy's launcher, and the one function that
//! deploys the verifier and the marketplace over an alloy provider.
//!
//! Everything comes from `contracts/`: the npm packages pinned in
//! `contracts/package.json` (anvil, forge, cast, solcjs; install them with
//! `npm ci --prefix contracts`) and the compile script. Node.js must be on
//! PATH. [`Toolchain::locate`] finds the directory; `FABSTIR_ANVIL`,
//! `FABSTIR_FORGE` and `FABSTIR_CAST` override the tools.
//!
//! The integration tests include this file as their own module (it depends
//! on nothing else of the node), so that they compile, launch and deploy
//! exactly as the commands do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy::network::TransactionBuilder as _;
use alloy::node_bindings::{Anvil, AnvilInstance, NodeError};
use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, PendingTransactionError, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolValue as _;
use alloy::transports::{RpcError, TransportErrorKind};
use serde_json::Value;

/// Environment variable naming the `contracts/` directory.
pub(crate) const CONTRACTS_DIR_ENV: &str = "FABSTIR_CONTRACTS_DIR";

const INSTALL_HINT: &str = "run `npm ci --prefix contracts` in the repository root";

/// How long anvil may take to say where it listens.
const ANVIL_START: Duration = Duration::from_secs(30);

/// How long a deployment may take to be mined.
pub(crate) const MINE_TIMEOUT: Duration = Duration::from_secs(120);

/// The verifier's and the marketplace's sources, relative to `contracts/`.
pub(crate) const VERIFIER_SOURCE: &str = "src/FabstirVerifier.sol";
/// See [`VERIFIER_SOURCE`].
pub(crate) const MARKETPLACE_SOURCE: &str = "src/FabstirMarketplace.sol";

/// Why the local toolchain could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolchainError {
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
        tool: &'static str,
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
        tool: &'static str,
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
    /// anvil could not be started or did not say where it listens.
    #[error("cannot start {} ({source}): see anvil's own message above, if any", path.display())]
    AnvilStart {
        /// The anvil binary.
        path: PathBuf,
        /// Why.
        source: NodeError,
    },
    /// anvil did not list its development keys.
    #[error(
        "anvil at {0} listed no development keys (was it started with a mnemonic of its own?)"
    )]
    NoDevKeys(String),
    /// A generated verifier could not be written where it is compiled.
    #[error("cannot write the generated verifier into {}: {source}", path.display())]
    Generated {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The batch key has a shape the Solidity generator does not support.
    #[error("cannot generate a verifier for the batch key of {size} entries: {reason}")]
    Unsupported {
        /// The batch size.
        size: usize,
        /// Why.
        reason: String,
    },
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// The node refused the transaction, or did not answer.
    #[error("deploy {contract}: {source}")]
    Send {
        /// The contract.
        contract: &'static str,
        /// alloy's error (a JSON-RPC error payload holds revert data).
        source: RpcError<TransportErrorKind>,
    },
    /// The transaction was sent but its receipt did not come in time.
    #[error("deploy {contract}: no receipt: {source}")]
    Receipt {
        /// The contract.
        contract: &'static str,
        /// Why.
        source: PendingTransactionError,
    },
    /// The creation was mined and failed (only with an explicit gas limit:
    /// otherwise the node refuses a creation that would fail).
    #[error(
        "deploy {contract}: the creation failed after {gas_used} gas (transaction {transaction})"
    )]
    Reverted {
        /// The contract.
        contract: &'static str,
        /// Gas the failed creation used.
        gas_used: u64,
        /// The transaction's hash.
        transaction: String,
    },
}

/// The Foundry tools pinned in `contracts/package.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// The local node.
    Anvil,
    /// The build and test tool (the integration tests run it).
    #[allow(dead_code)]
    Forge,
    /// The command-line client.
    #[allow(dead_code)]
    Cast,
}

impl Tool {
    /// The tool's name, as its binary is called.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Anvil => "anvil",
            Tool::Forge => "forge",
            Tool::Cast => "cast",
        }
    }

    /// The environment variable that overrides the pinned binary.
    pub(crate) fn variable(self) -> &'static str {
        match self {
            Tool::Anvil => "FABSTIR_ANVIL",
            Tool::Forge => "FABSTIR_FORGE",
            Tool::Cast => "FABSTIR_CAST",
        }
    }
}

/// A compiled contract.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// Creation code (append the ABI-encoded constructor arguments to deploy).
    pub(crate) bytecode: Vec<u8>,
    /// Runtime code, as the chain holds it after deployment (with
    /// immutables still zero).
    pub(crate) deployed: Vec<u8>,
    /// The contract's ABI (the integration tests read it).
    #[allow(dead_code)]
    pub(crate) abi: Value,
}

/// The repository's `contracts/` directory, where the toolchain lives.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    contracts: PathBuf,
}

impl Toolchain {
    /// Uses `dir` as the `contracts/` directory (it must hold `package.json`).
    pub(crate) fn at(dir: &Path) -> Result<Self, ToolchainError> {
        if !dir.join("package.json").is_file() {
            return Err(ToolchainError::NotContractsDir(dir.to_path_buf()));
        }
        Ok(Self {
            contracts: dir.to_path_buf(),
        })
    }

    /// Finds the `contracts/` directory: `explicit` (a `--contracts` flag),
    /// else `FABSTIR_CONTRACTS_DIR`, else the first `contracts/package.json`
    /// in the current directory or above, else above the executable (a
    /// binary in `target/release/` finds the repository it was built in).
    pub(crate) fn locate(explicit: Option<&Path>) -> Result<Self, ToolchainError> {
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
        Err(ToolchainError::ContractsNotFound { searched })
    }

    /// The path of a Foundry tool: its override variable's file, or the
    /// binary of the pinned npm package under `contracts/node_modules`.
    pub(crate) fn tool_path(&self, tool: Tool) -> Result<PathBuf, ToolchainError> {
        let (name, variable) = (tool.name(), tool.variable());
        if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ToolchainError::OverrideMissing {
                    tool: name,
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
            return Err(ToolchainError::ToolMissing {
                tool: name,
                variable,
                path,
            });
        }
        Ok(path)
    }

    /// Compiles `contract` of the Solidity file `sol` with
    /// `contracts/tools/compile.js`.
    pub(crate) fn compile(&self, sol: &Path, contract: &str) -> Result<Compiled, ToolchainError> {
        let solc = self.contracts.join("node_modules/solc");
        if !solc.is_dir() {
            return Err(ToolchainError::SolcMissing(solc));
        }
        // solcjs takes seconds per contract; its output depends only on the
        // sources and the compiler, so it is kept under contracts/cache (as
        // forge keeps its own), keyed by both.
        let cached = self.compile_cache_key(sol, contract).map(|key| {
            self.contracts
                .join("cache/fabstir-compile")
                .join(format!("{key}.json"))
        });
        if let Some(path) = &cached {
            if let Ok(bytes) = std::fs::read(path) {
                if let Ok(compiled) = Self::parse_compiled(&bytes, contract) {
                    return Ok(compiled);
                }
            }
        }
        let script = self.contracts.join("tools/compile.js");
        let output = Command::new("node")
            .arg(&script)
            .arg(sol)
            .arg(contract)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ToolchainError::Node {
                script: script.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(ToolchainError::Compile {
                sol: sol.to_path_buf(),
                contract: contract.into(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let compiled = Self::parse_compiled(&output.stdout, contract)?;
        if let Some(path) = &cached {
            // A cache that cannot be written only costs the next compile.
            let written = path
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::write(path, &output.stdout));
            if let Err(e) = written {
                tracing::debug!(error = %e, "compile cache not written");
            }
        }
        Ok(compiled)
    }

    /// The cache key of compiling `contract` from `sol`: SHA-256 over the
    /// contract's name, the compiler's package.json, the compile script, and
    /// every `.sol` file beside `sol` (the imports), by name; `None` when a
    /// file cannot be read (no caching then).
    fn compile_cache_key(&self, sol: &Path, contract: &str) -> Option<String> {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(contract.as_bytes());
        for fixed in ["node_modules/solc/package.json", "tools/compile.js"] {
            hasher.update(std::fs::read(self.contracts.join(fixed)).ok()?);
        }
        let dir = sol.parent()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sol"))
            .collect();
        files.sort();
        hasher.update(sol.file_name()?.as_encoded_bytes());
        for file in files {
            hasher.update(file.file_name()?.as_encoded_bytes());
            hasher.update(std::fs::read(&file).ok()?);
        }
        Some(hex::encode(hasher.finalize()))
    }

    /// The bytecode and ABI of `contract` in the compile script's output.
    fn parse_compiled(stdout: &[u8], contract: &str) -> Result<Compiled, ToolchainError> {
        let bad = |detail: String| ToolchainError::CompileOutput {
            contract: contract.into(),
            detail,
        };
        let all: Value =
            serde_json::from_slice(stdout).map_err(|e| bad(format!("not JSON ({e})")))?;
        let entry = &all[contract];
        let code = |field: &str| -> Result<Vec<u8>, ToolchainError> {
            let text = entry[field]
                .as_str()
                .ok_or_else(|| bad(format!("no {field} string")))?;
            alloy::primitives::hex::decode(text).map_err(|e| bad(format!("{field}: {e}")))
        };
        Ok(Compiled {
            bytecode: code("bytecode")?,
            deployed: code("deployedBytecode")?,
            abi: entry["abi"].clone(),
        })
    }

    /// The `contracts/` directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.contracts
    }

    /// Compiles `contracts/src/FabstirMarketplace.sol`.
    pub(crate) fn marketplace(&self) -> Result<Compiled, ToolchainError> {
        self.compile(
            &self.contracts.join(MARKETPLACE_SOURCE),
            "FabstirMarketplace",
        )
    }

    /// Compiles `contracts/src/FabstirVerifier.sol` (the development key's
    /// verifier, checked in).
    pub(crate) fn verifier(&self) -> Result<Compiled, ToolchainError> {
        self.compile(&self.contracts.join(VERIFIER_SOURCE), "FabstirVerifier")
    }

    /// The batch verifier of each key (`Mode::Loops`), generated and
    /// compiled in `dir` beside a copy of its interface, which it imports;
    /// by batch size.
    pub(crate) fn batch_verifiers(
        &self,
        keys: &[&fabstir_zk::BatchVerifyingKey],
        dir: &Path,
    ) -> Result<Vec<(usize, Compiled)>, ToolchainError> {
        let interface = "IFabstirBatchVerifier.sol";
        let source = self.dir().join("src").join(interface);
        keys.iter()
            .map(|vk| {
                let n = vk.size().get();
                // Each in its own directory: its compile depends on its own
                // source and the interface only.
                let dir = dir.join(n.to_string());
                let io = |path: &Path| {
                    let path = path.to_path_buf();
                    move |source| ToolchainError::Generated { path, source }
                };
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                std::fs::copy(&source, dir.join(interface)).map_err(io(&source))?;
                let plan = fabstir_zk::evm::Plan::for_batch(vk).map_err(|e| {
                    ToolchainError::Unsupported {
                        size: n,
                        reason: e.to_string(),
                    }
                })?;
                let verifier = fabstir_zk::evm::solidity::generate_with(
                    &plan,
                    fabstir_zk::evm::solidity::Mode::Loops,
                );
                let path = dir.join(format!("FabstirBatchVerifier{n}.sol"));
                std::fs::write(&path, verifier.source.as_bytes()).map_err(io(&path))?;
                Ok((n, self.compile(&path, "FabstirBatchVerifier")?))
            })
            .collect()
    }

    /// Starts the pinned anvil (see [`LocalAnvil`]) on a free loopback port
    /// with extra flags, for instance `--code-size-limit 49152`.
    pub(crate) fn anvil(&self, flags: &[&str]) -> Result<LocalAnvil, ToolchainError> {
        self.anvil_on(0, flags)
    }

    /// Starts the pinned anvil on `port` (0: a free one) with extra flags;
    /// a fixed port lets a test restart it at the same URL.
    pub(crate) fn anvil_on(&self, port: u16, flags: &[&str]) -> Result<LocalAnvil, ToolchainError> {
        LocalAnvil::start(&self.tool_path(Tool::Anvil)?, port, flags)
    }
}

/// A running anvil, started through alloy's launcher on the loopback
/// interface (its default hardfork; chain id 31337; automining; the default
/// 24,576-byte code size limit unless flags change it). Dropping it stops
/// anvil with SIGTERM (so that `--dump-state` writes its file), then kills it.
pub(crate) struct LocalAnvil {
    instance: AnvilInstance,
}

impl std::fmt::Debug for LocalAnvil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAnvil")
            .field("endpoint", &self.instance.endpoint())
            .finish_non_exhaustive()
    }
}

impl LocalAnvil {
    /// Starts the anvil binary at `path` on `port` (0: a free one) and
    /// waits until it says where it listens, at most 30 s.
    pub(crate) fn start(path: &Path, port: u16, flags: &[&str]) -> Result<Self, ToolchainError> {
        let mut instance = Anvil::at(path)
            .host("127.0.0.1")
            .port(port)
            .timeout(ANVIL_START.as_millis() as u64)
            .args(flags.iter().copied())
            .keep_stdout()
            .try_spawn()
            .map_err(|source| ToolchainError::AnvilStart {
                path: path.to_path_buf(),
                source,
            })?;
        // anvil logs every request and block on its standard output: read it
        // to its end, so that anvil never blocks on a full pipe.
        if let Some(mut stdout) = instance.child_mut().stdout.take() {
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        }
        Ok(Self { instance })
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        self.instance.endpoint()
    }

    /// The port anvil listens on (the integration tests restart anvil there).
    #[allow(dead_code)]
    pub(crate) fn port(&self) -> u16 {
        self.instance.port()
    }

    /// anvil's development accounts (the provider holds their keys).
    pub(crate) fn accounts(&self) -> &[Address] {
        self.instance.addresses()
    }

    /// A provider for anvil that signs with its development keys (the first
    /// is the default sender; a request's `from` picks another), filling in
    /// nonce, gas and fees.
    pub(crate) fn provider(&self) -> Result<DynProvider, ToolchainError> {
        let wallet = self
            .instance
            .wallet()
            .ok_or_else(|| ToolchainError::NoDevKeys(self.url()))?;
        Ok(ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(self.instance.endpoint_url())
            .erased())
    }
}

/// The verifier and the marketplace on a chain.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    /// The verifier's address.
    pub(crate) verifier: Address,
    /// The marketplace's address.
    pub(crate) marketplace: Address,
    /// The verifier's creation receipt.
    pub(crate) verifier_receipt: TransactionReceipt,
    /// The batch verifiers' addresses, by batch size.
    pub(crate) batch_verifiers: Vec<(usize, Address)>,
}

/// Deploys one contract from the provider's default sender: `code` is its
/// creation code followed by the ABI-encoded constructor arguments. With
/// `gas`, that limit (a creation that fails is mined and is
/// [`DeployError::Reverted`]); without, the node estimates it (and refuses
/// a creation that would fail).
pub(crate) async fn deploy_contract(
    provider: &impl Provider,
    contract: &'static str,
    code: Vec<u8>,
    gas: Option<u64>,
) -> Result<(Address, TransactionReceipt), DeployError> {
    let mut request = TransactionRequest::default().with_deploy_code(Bytes::from(code));
    if let Some(gas) = gas {
        request = request.with_gas_limit(gas);
    }
    let receipt = provider
        .send_transaction(request)
        .await
        .map_err(|source| DeployError::Send { contract, source })?
        .with_timeout(Some(MINE_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|source| DeployError::Receipt { contract, source })?;
    match receipt.contract_address {
        Some(address) if receipt.status() => Ok((address, receipt)),
        _ => Err(DeployError::Reverted {
            contract,
            gas_used: receipt.gas_used,
            transaction: format!("{:#x}", receipt.transaction_hash),
        }),
    }
}

/// Deploys `verifier`, each batch verifier of `batch_verifiers` (with its
/// batch size), and then `marketplace` over them (its constructor takes the
/// verifier, the batch verifiers and their sizes): what `chain deploy` and
/// `evm bench` both do. `gas` as for [`deploy_contract`].
pub(crate) async fn deploy_marketplace(
    provider: &impl Provider,
    verifier: &Compiled,
    batch_verifiers: &[(usize, &Compiled)],
    marketplace: &Compiled,
    gas: Option<u64>,
) -> Result<Deployment, DeployError> {
    let (verifier_address, verifier_receipt) =
        deploy_contract(provider, "FabstirVerifier", verifier.bytecode.clone(), gas).await?;
    let mut batch = Vec::new();
    for (size, compiled) in batch_verifiers {
        let (address, _) = deploy_contract(
            provider,
            "FabstirBatchVerifier",
            compiled.bytecode.clone(),
            gas,
        )
        .await?;
        batch.push((*size, address));
    }
    let addresses: Vec<Address> = batch.iter().map(|(_, a)| *a).collect();
    let sizes: Vec<alloy::primitives::U256> = batch
        .iter()
        .map(|(n, _)| alloy::primitives::U256::from(*n))
        .collect();
    let mut code = marketplace.bytecode.clone();
    code.extend_from_slice(&(verifier_address, addresses, sizes).abi_encode_params());
    let (marketplace_address, _) =
        deploy_contract(provider, "FabstirMarketplace", code, gas).await?;
    Ok(Deployment {
        verifier: verifier_address,
        marketplace: marketplace_address,
        verifier_receipt,
        batch_verifiers: batch,
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
        assert!(matches!(error, ToolchainError::SolcMissing(_)), "{error}");
    }
}
