//! `chain`: the marketplace on an EVM chain. `deploy` deploys the verifier
//! and the marketplace (compiled from `contracts/src` by the local toolchain),
//! `wallet` creates a host wallet key file (or shows its address),
//! `register` registers the host wallet with the node's `host_id` (with a
//! proof that the wallet's owner holds the host secret; a wallet registered
//! with another `host_id` moves to this one),
//! `open-job` opens a job with a deposit as a client, and `demo` runs the
//! whole flow on a local anvil: deploy, a funded job, the host registered,
//! one result proved and submitted, the host credited.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider as _, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use fabstir_zk::{KeySet, SrsSource};
use serde_json::{json, Value};

use super::batch_keys::{batch_keys, parse_batch_sizes, BatchSizes};
use super::contracts::{deploy_marketplace, DeployError, Toolchain};
use super::Failure;
use crate::chain::contract::{decode_revert, IFabstirMarketplace, IFabstirVerifier};
use crate::chain::HostWallet;

/// anvil's first development account's key: publicly known, for local
/// development chains only (`chain deploy` uses it only on chain 31337).
pub const ANVIL_DEV_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's second development account's key (the demo's client).
const ANVIL_CLIENT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// anvil's chain id.
const ANVIL_CHAIN_ID: u64 = 31337;
/// The model `open-job` names by default (the README's).
const DEFAULT_MODEL: &str = "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf";

/// Host wallet key files.
#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// Create a new host wallet key file (0400, never overwritten) and print its address.
    New {
        /// The key file to create (the --wallet-key of serve and chain register).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the address of a host wallet key file.
    Show {
        /// The key file.
        #[arg(long)]
        wallet_key: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Deploy the verifier and the marketplace (compiled from contracts/src) and print their addresses.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long)]
        rpc_url: String,
        /// Deployer key file (0400; 0x + 64 hex digits) [default: anvil's first dev key, chain 31337 only].
        #[arg(long)]
        private_key_file: Option<PathBuf>,
        /// The repository's contracts/ directory [default: found above the current directory].
        #[arg(long)]
        contracts: Option<PathBuf>,
        /// Batch sizes to deploy batch verifiers for, comma-separated; "none" for none (each
        /// checkpoint then goes out in its own submitVerifiedProof).
        #[arg(long, default_value = "1,16,64", value_parser = parse_batch_sizes)]
        batch_sizes: BatchSizes,
        /// Key directory whose parameters the batch verifiers are generated from (the node's)
        /// [default: the development SRS].
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: Option<PathBuf>,
        /// With --keys-dir made from a ceremony SRS: that ceremony parameters file (checked against
        /// the directory's keys.json), with at least 2^13 rows for batches of 64.
        #[arg(long, value_name = "FILE", requires = "keys_dir")]
        batch_srs: Option<PathBuf>,
    },
    /// Register the host wallet with the marketplace under the key directory's host_id, with a proof
    /// that the wallet's owner holds the host secret (a wallet registered with another host_id, as after
    /// keys rotate --new-host-key, moves to this one with rotateHost).
    Register {
        /// JSON-RPC endpoint.
        #[arg(long)]
        rpc_url: String,
        /// The marketplace's address.
        #[arg(long)]
        marketplace: String,
        /// Key directory whose host_id is registered.
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: PathBuf,
        /// Host wallet key file (0400; made by chain wallet new, not the key directory's host.key)
        /// [default: HOST_PRIVATE_KEY].
        #[arg(long)]
        wallet_key: Option<PathBuf>,
    },
    /// Create a host wallet key file, or show a key file's address.
    Wallet {
        #[command(subcommand)]
        command: WalletCommand,
    },
    /// Open a job as a client: createSessionJob for a host wallet, with a deposit; prints the job id.
    OpenJob {
        /// JSON-RPC endpoint.
        #[arg(long)]
        rpc_url: String,
        /// The marketplace's address.
        #[arg(long)]
        marketplace: String,
        /// The host wallet's address (chain wallet show, or host_address in serve's first line).
        #[arg(long)]
        host: String,
        /// Price per token, in wei.
        #[arg(long, default_value_t = 1_000_000_000)]
        price_per_token: u128,
        /// Tokens the deposit pays for: the deposit is tokens x price_per_token.
        #[arg(long, default_value_t = 100)]
        tokens: u64,
        /// The model's name; the job's modelId is its keccak256 (what checkpoints sign by default).
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: String,
        /// The client's key file (0400; 0x + 64 hex digits) [default: anvil's second dev key, chain 31337 only].
        #[arg(long)]
        private_key_file: Option<PathBuf>,
    },
    /// Start anvil, deploy, open a funded job, register a host and run one result to an on-chain credit.
    Demo {
        /// The repository's contracts/ directory [default: found above the current directory].
        #[arg(long)]
        contracts: Option<PathBuf>,
    },
}

pub fn run(command: ChainCommand) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", e.to_string()))?;
    match command {
        ChainCommand::Deploy {
            rpc_url,
            private_key_file,
            contracts,
            batch_sizes,
            keys_dir,
            batch_srs,
        } => {
            let toolchain = toolchain(contracts.as_deref())?;
            let batch_keys = batch_keys(&batch_sizes.0, keys_dir.as_deref(), batch_srs)?;
            let deployed = runtime.block_on(async {
                let key = match &private_key_file {
                    Some(path) => HostWallet::load(path)
                        .map_err(|e| Failure::input("private_key_file", e.to_string()))?
                        .signer(),
                    None => dev_signer(ANVIL_DEV_KEY)?,
                };
                let provider = provider(&rpc_url, key.clone())?;
                let chain_id = provider
                    .get_chain_id()
                    .await
                    .map_err(|e| Failure::other("rpc", format!("{rpc_url}: {e}")))?;
                if private_key_file.is_none() && chain_id != ANVIL_CHAIN_ID {
                    return Err(Failure::input(
                        "private_key_file",
                        format!("chain {chain_id} is not a local anvil (31337): give the deployer's key with --private-key-file"),
                    ));
                }
                deploy(&provider, &toolchain, &batch_keys).await
            })?;
            println!("{deployed}");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Register {
            rpc_url,
            marketplace,
            keys_dir,
            wallet_key,
        } => {
            let wallet = load_wallet(wallet_key.as_deref())?;
            let keyset =
                KeySet::load(&keys_dir).map_err(|e| Failure::input("keys", e.to_string()))?;
            let marketplace = parse_address("marketplace", &marketplace)?;
            let (chain_id, outcome) = runtime.block_on(async {
                let provider = provider(&rpc_url, wallet.signer())?;
                let chain_id = provider
                    .get_chain_id()
                    .await
                    .map_err(|e| rpc_failure(&format!("--rpc-url {rpc_url}"), e))?;
                let host = Address::from(wallet.address());
                let outcome = bind_wallet(&provider, chain_id, marketplace, host, &keyset).await?;
                Ok::<_, Failure>((chain_id, outcome))
            })?;
            record(&keys_dir, chain_id, marketplace, &wallet, &keyset);
            println!(
                "{}",
                json!({
                    "host": wallet.address_checksummed(),
                    "host_id": keyset.manifest.host_id.to_string(),
                    "already_registered": outcome.is_none(),
                    "transaction": outcome.as_ref().map(|(tx, _)| tx),
                    "rotated_from": outcome.and_then(|(_, binding)| match binding {
                        Binding::Rotate { previous } => Some(format!("{previous:#066x}")),
                        Binding::Register => None,
                    }),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Wallet { command } => {
            let (wallet, file) = match command {
                WalletCommand::New { out } => {
                    let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
                    wallet
                        .write_new(&out)
                        .map_err(|e| Failure::input("wallet", e.to_string()))?;
                    eprintln!(
                        "created {} (0400): the host wallet's private key; keep it secret and out of version control. \
                         It pays the gas of submissions: fund it before chain register.",
                        out.display()
                    );
                    (wallet, out)
                }
                WalletCommand::Show { wallet_key } => (
                    HostWallet::load(&wallet_key)
                        .map_err(|e| Failure::input("wallet", e.to_string()))?,
                    wallet_key,
                ),
            };
            println!(
                "{}",
                json!({ "address": wallet.address_checksummed(), "wallet_key": file.display().to_string() })
            );
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::OpenJob {
            rpc_url,
            marketplace,
            host,
            price_per_token,
            tokens,
            model,
            private_key_file,
        } => {
            let marketplace = parse_address("marketplace", &marketplace)?;
            let host = parse_address("host", &host)?;
            let opened = runtime.block_on(async {
                let key = match &private_key_file {
                    Some(path) => HostWallet::load(path)
                        .map_err(|e| Failure::input("private_key_file", e.to_string()))?
                        .signer(),
                    None => dev_signer(ANVIL_CLIENT_KEY)?,
                };
                let client = key.address();
                let provider = provider(&rpc_url, key)?;
                let chain_id = provider
                    .get_chain_id()
                    .await
                    .map_err(|e| rpc_failure(&format!("--rpc-url {rpc_url}"), e))?;
                if private_key_file.is_none() && chain_id != ANVIL_CHAIN_ID {
                    return Err(Failure::input(
                        "private_key_file",
                        format!("chain {chain_id} is not a local anvil (31337): give the client's key with --private-key-file"),
                    ));
                }
                let price = U256::from(price_per_token);
                let deposit = price.saturating_mul(U256::from(tokens));
                let job_id = open_job(&provider, marketplace, host, &model, price, deposit).await?;
                Ok(json!({
                    "job_id": job_id.to_string(),
                    "chain_id": chain_id,
                    "marketplace": marketplace.to_checksum(None),
                    "client": client.to_checksum(None),
                    "host": host.to_checksum(None),
                    "price_per_token_wei": price.to_string(),
                    "deposit_wei": deposit.to_string(),
                }))
            })?;
            println!("{opened}");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Demo { contracts } => {
            let toolchain = toolchain(contracts.as_deref())?;
            let anvil = toolchain.anvil(&[])?;
            let outcome = runtime.block_on(demo(&toolchain, &anvil.url()));
            // Stops anvil (SIGTERM, waiting for it to exit).
            drop(anvil);
            outcome?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The host wallet from `--wallet-key FILE`, else from `HOST_PRIVATE_KEY`.
pub(super) fn load_wallet(wallet_key: Option<&Path>) -> Result<HostWallet, Failure> {
    match wallet_key {
        Some(path) => HostWallet::load(path),
        None => HostWallet::from_env().and_then(|w| {
            w.ok_or_else(|| crate::chain::WalletError::Io {
                action: "read",
                path: PathBuf::from("$HOST_PRIVATE_KEY"),
                source: std::io::Error::other("give --wallet-key FILE or set HOST_PRIVATE_KEY"),
            })
        }),
    }
    .map_err(|e| Failure::input("wallet", e.to_string()))
}

/// Moves `wallet` on every marketplace of `registrations` (all on the chain
/// at `rpc_url`) to `keyset`'s host id with `rotateHost`, recording each
/// new registration in `keys_dir`; the transaction hashes. Stops at the
/// first failure, which says how to finish.
pub(super) fn rotate_on_chain(
    rpc_url: &str,
    wallet: &HostWallet,
    keys_dir: &Path,
    keyset: &KeySet,
    registrations: &[crate::chain::Registration],
) -> Result<Vec<String>, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", e.to_string()))?;
    runtime.block_on(async {
        let provider = provider(rpc_url, wallet.signer())?;
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_failure(&format!("--rpc-url {rpc_url}"), e))?;
        let host = Address::from(wallet.address());
        let mut transactions = Vec::new();
        for registration in registrations {
            let marketplace = parse_address("marketplace", &registration.marketplace)?;
            if let Some((tx, _)) =
                bind_wallet(&provider, chain_id, marketplace, host, keyset).await?
            {
                transactions.push(tx);
            }
            record(keys_dir, chain_id, marketplace, wallet, keyset);
        }
        Ok(transactions)
    })
}

fn toolchain(dir: Option<&Path>) -> Result<Toolchain, Failure> {
    Ok(Toolchain::locate(dir)?)
}

fn dev_signer(key: &str) -> Result<PrivateKeySigner, Failure> {
    key.parse()
        .map_err(|e| Failure::other("demo_failed", format!("{e}")))
}

fn parse_address(what: &'static str, text: &str) -> Result<Address, Failure> {
    fabstir_zk::parse_address(text)
        .map_err(|e| Failure::input("bad_argument", format!("{what} {text:?}: {e}")))
}

/// A provider that signs with `key` (nonce, gas and fees filled in).
fn provider(rpc_url: &str, key: PrivateKeySigner) -> Result<DynProvider, Failure> {
    let url = rpc_url
        .parse()
        .map_err(|e| Failure::input("bad_argument", format!("--rpc-url {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(url)
        .erased())
}

fn rpc_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::other("rpc", format!("{what}: {e}"))
}

/// Why the contract refuses a transaction, from the revert data of its
/// gas estimate: the custom error, decoded and explained.
fn refused(what: &str, data: &[u8]) -> Failure {
    let revert = decode_revert(data);
    let (name, detail) = (revert.name(), revert.detail());
    let why = match name {
        "HostAlreadyRegistered" => "the wallet is already registered (a wallet registers once)",
        "HostIdTaken" => "another wallet is registered with this host_id, or a rotation retired it (a host_id belongs to one wallet, once): use that wallet, or other keys",
        "InvalidKeyProof" => "the registration proof does not verify: the marketplace's verifier checks another key (its vk_id differs from the key directory's), or the key files are damaged (fabstir-node keys verify)",
        "HostNotRegistered" => "the wallet is not registered: nothing to rotate",
        "InvalidHostId" => "the host_id is 0 or not below the BN254 field modulus",
        "UnknownJob" => "no such job on this marketplace",
        "ZeroDeposit" => "the deposit is zero: give --tokens and --price-per-token above zero",
        "ZeroPrice" => "the price per token is zero",
        "ZeroHost" => "the host is the zero address",
        _ => "see TROUBLESHOOTING.md, On a chain",
    };
    Failure::other(
        "reverted",
        format!("{what}: the contract refuses it with {name}({detail}): {why}"),
    )
}

/// A transaction the node refused (decoded when the contract says why), or
/// a node that did not answer.
fn send_failure(what: &str, e: &alloy::transports::TransportError) -> Failure {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return refused(what, &data);
    }
    let text = e.to_string();
    if text.contains("insufficient funds") {
        return Failure::other(
            "rpc",
            format!("{what}: {text}: the sending wallet cannot pay for the gas; fund it first (on anvil: anvil_setBalance)"),
        );
    }
    rpc_failure(what, crate::chain::evm::error_chain(e))
}

/// Sends a transaction and waits for its receipt; a revert is a failure
/// (decoded when the contract says why).
async fn send(
    provider: &DynProvider,
    what: &str,
    request: TransactionRequest,
) -> Result<alloy::rpc::types::TransactionReceipt, Failure> {
    let receipt = provider
        .send_transaction(request)
        .await
        .map_err(|e| send_failure(what, &e))?
        .with_timeout(Some(Duration::from_secs(120)))
        .get_receipt()
        .await
        .map_err(|e| rpc_failure(what, e))?;
    if !receipt.status() {
        return Err(Failure::other(
            "reverted",
            format!("{what}: transaction {} reverted", receipt.transaction_hash),
        ));
    }
    Ok(receipt)
}

/// The demo's batch verifiers: one checkpoint goes out as a batch of 1.
const DEMO_BATCH_SIZES: &[usize] = &[1];

/// Deploys the verifier, a batch verifier for each of `batch_keys`
/// (generated and compiled here) and the marketplace (compiled from
/// `contracts/src`); their addresses as JSON.
pub async fn deploy(
    provider: &DynProvider,
    toolchain: &Toolchain,
    batch_keys: &[fabstir_zk::BatchVerifyingKey],
) -> Result<Value, Failure> {
    let verifier_code = toolchain.verifier()?;
    let market_code = toolchain.marketplace()?;
    let dir = tempfile::tempdir().map_err(|e| Failure::other("evm_toolchain", e.to_string()))?;
    let keys: Vec<&fabstir_zk::BatchVerifyingKey> = batch_keys.iter().collect();
    let compiled = toolchain.batch_verifiers(&keys, dir.path())?;
    let batch_verifiers: Vec<(usize, &super::contracts::Compiled)> =
        compiled.iter().map(|(n, c)| (*n, c)).collect();
    let deployed = deploy_marketplace(
        provider,
        &verifier_code,
        &batch_verifiers,
        &market_code,
        None,
    )
    .await
    .map_err(|e| match e {
        DeployError::Send { contract, source } => {
            send_failure(&format!("deploy {contract}"), &source)
        }
        DeployError::Receipt { contract, source } => {
            rpc_failure(&format!("deploy {contract}"), source)
        }
        DeployError::Reverted {
            contract,
            transaction,
            ..
        } => Failure::other(
            "reverted",
            format!("deploy {contract}: transaction {transaction} reverted"),
        ),
    })?;
    let vk_id = IFabstirVerifier::new(deployed.verifier, provider)
        .VK_ID()
        .call()
        .await
        .map_err(|e| rpc_failure("VK_ID()", e))?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| rpc_failure("chain id", e))?;
    let batch_verifiers: serde_json::Map<String, Value> = deployed
        .batch_verifiers
        .iter()
        .map(|(n, address)| (n.to_string(), address.to_checksum(None).into()))
        .collect();
    Ok(json!({
        "chain_id": chain_id,
        "verifier": deployed.verifier.to_checksum(None),
        "marketplace": deployed.marketplace.to_checksum(None),
        "vk_id": format!("{vk_id:#x}"),
        "batch_verifiers": batch_verifiers,
    }))
}

/// Binds `wallet` on `marketplace` to `keyset`'s host id: nothing when the
/// contract has that id for it already (`None`), else `registerHost` (a
/// wallet without an id) or `rotateHost` (a wallet with another one, after
/// `keys rotate --new-host-key`); the transaction and how it bound.
async fn bind_wallet(
    provider: &DynProvider,
    chain_id: u64,
    marketplace: Address,
    wallet: Address,
    keyset: &KeySet,
) -> Result<Option<(String, Binding)>, Failure> {
    let registered = IFabstirMarketplace::new(marketplace, provider)
        .hostIdOf(wallet)
        .call()
        .await
        .map_err(|e| rpc_failure("hostIdOf", e))?;
    if registered == U256::from_be_bytes(keyset.manifest.host_id.to_bytes()) {
        return Ok(None);
    }
    let binding = if registered.is_zero() {
        Binding::Register
    } else {
        Binding::Rotate {
            previous: registered,
        }
    };
    let tx = register(provider, chain_id, marketplace, wallet, keyset, binding).await?;
    Ok(Some((tx, binding)))
}

/// Records in `keys_dir` that `wallet` is registered with `keyset`'s host id
/// on `marketplace` (what `keys rotate` reads); a failure is only noted.
fn record(
    keys_dir: &Path,
    chain_id: u64,
    marketplace: Address,
    wallet: &HostWallet,
    keyset: &KeySet,
) {
    let registration = crate::chain::Registration {
        chain_id,
        marketplace: marketplace.to_checksum(None),
        wallet: wallet.address_checksummed(),
        host_id: keyset.manifest.host_id.to_string(),
    };
    if let Err(e) = crate::chain::record_registration(keys_dir, &registration) {
        eprintln!(
            "note: cannot record the registration in {} ({e}); keys rotate will not know about it",
            keys_dir.display()
        );
    }
}

/// How [`register`] binds a wallet to a key set's host id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `registerHost`: the wallet has no host id yet.
    Register,
    /// `rotateHost`: the wallet moves from host id `previous` (retired).
    Rotate { previous: U256 },
}

/// `registerHost` or `rotateHost` (see [`Binding`]) from the provider's
/// wallet `wallet`, with the registration proof `keyset` makes for that
/// wallet on `marketplace` (chain `chain_id`): the proof that the wallet's
/// owner holds the host secret, without which the contract refuses (so
/// nobody can register another host's id). The transaction hash.
pub async fn register(
    provider: &DynProvider,
    chain_id: u64,
    marketplace: Address,
    wallet: Address,
    keyset: &KeySet,
    binding: Binding,
) -> Result<String, Failure> {
    let proof = fabstir_zk::ProofEnvelope::create_registration(
        &keyset.proving_key,
        chain_id,
        marketplace,
        wallet,
        &keyset.host_key,
        rand::rngs::OsRng,
    )
    .map_err(|e| Failure::other("prove_failed", format!("registration proof: {e}")))?;
    let host_id = U256::from_be_bytes(keyset.manifest.host_id.to_bytes());
    let commitment = U256::from_be_bytes(fabstir_zk::statement::field_to_be(
        &proof.instance.commitment.0,
    ));
    let (name, request) = match binding {
        Binding::Register => (
            "registerHost",
            TransactionRequest::default().with_call(&IFabstirMarketplace::registerHostCall {
                hostId: host_id,
                commitment,
                proof: proof.proof.into(),
            }),
        ),
        Binding::Rotate { .. } => (
            "rotateHost",
            TransactionRequest::default().with_call(&IFabstirMarketplace::rotateHostCall {
                newHostId: host_id,
                commitment,
                proof: proof.proof.into(),
            }),
        ),
    };
    let receipt = send(provider, name, request.with_to(marketplace)).await?;
    Ok(format!("{:#x}", receipt.transaction_hash))
}

/// `createSessionJob(host, keccak256(model), price)` with `deposit` from
/// the provider's wallet; the new job's id (from its `SessionJobCreated`).
pub async fn open_job(
    provider: &DynProvider,
    marketplace: Address,
    host: Address,
    model: &str,
    price: U256,
    deposit: U256,
) -> Result<U256, Failure> {
    let create = IFabstirMarketplace::createSessionJobCall {
        host,
        modelId: alloy::primitives::keccak256(model.as_bytes()),
        pricePerToken: price,
    };
    let receipt = send(
        provider,
        "createSessionJob",
        TransactionRequest::default()
            .with_to(marketplace)
            .with_call(&create)
            .with_value(deposit),
    )
    .await?;
    receipt
        .decoded_log::<IFabstirMarketplace::SessionJobCreated>()
        .map(|log| log.data.jobId)
        .ok_or_else(|| {
            Failure::other(
                "reverted",
                format!(
                    "createSessionJob: transaction {} has no SessionJobCreated event: is {marketplace} a FabstirMarketplace?",
                    receipt.transaction_hash
                ),
            )
        })
}

/// Prints one step of the demo (on standard error: standard output gets
/// the one JSON summary every command prints).
fn step(n: u32, text: &str, detail: Value) {
    eprintln!("{n}. {text}");
    eprintln!("   {detail}");
}

/// The demo: see the module documentation.
async fn demo(toolchain: &Toolchain, url: &str) -> Result<(), Failure> {
    let url = url.to_string();
    step(1, "anvil started (chain 31337)", json!({ "rpc_url": url }));

    let deployer = provider(&url, dev_signer(ANVIL_DEV_KEY)?)?;
    let deployed = deploy(
        &deployer,
        toolchain,
        &batch_keys(DEMO_BATCH_SIZES, None, None)?,
    )
    .await?;
    step(
        2,
        "verifier, batch verifier (batches of 1) and marketplace deployed",
        deployed.clone(),
    );
    let marketplace = parse_address(
        "marketplace",
        deployed["marketplace"].as_str().unwrap_or_default(),
    )?;

    let dir = tempfile::tempdir().map_err(|e| Failure::other("demo_failed", e.to_string()))?;
    let keys_dir = dir.path().join("keys");
    let keyset = KeySet::generate(&keys_dir, &SrsSource::InsecureDev, rand::rngs::OsRng)?;
    let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
    let wallet_file = dir.path().join("wallet.key");
    wallet
        .write_new(&wallet_file)
        .map_err(|e| Failure::input("wallet", e.to_string()))?;
    let host = Address::from(wallet.address());
    send(
        &deployer,
        "fund the host wallet",
        TransactionRequest::default()
            .with_to(host)
            .with_value(U256::from(10u64).pow(U256::from(18u64))),
    )
    .await?;
    let host_provider = provider(&url, wallet.signer())?;
    let tx = register(
        &host_provider,
        ANVIL_CHAIN_ID,
        marketplace,
        host,
        &keyset,
        Binding::Register,
    )
    .await?;
    step(
        3,
        "host keys created, wallet funded with 1 ETH and registered",
        json!({ "host": host.to_checksum(None), "host_id": keyset.manifest.host_id.to_string(), "vk_id": keyset.manifest.vk_id.to_string(), "transaction": tx }),
    );

    let client = provider(&url, dev_signer(ANVIL_CLIENT_KEY)?)?;
    let model = "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf";
    let model_id = alloy::primitives::keccak256(model.as_bytes());
    let price = U256::from(1_000_000_000_000u64); // 10^12 wei per token
    let deposit = U256::from(100u64) * price;
    let create = IFabstirMarketplace::createSessionJobCall {
        host,
        modelId: model_id,
        pricePerToken: price,
    };
    send(
        &client,
        "createSessionJob",
        TransactionRequest::default()
            .with_to(marketplace)
            .with_call(&create)
            .with_value(deposit),
    )
    .await?;
    let market = IFabstirMarketplace::new(marketplace, &client);
    let job_id = U256::from(1u64);
    let job = market
        .getJob(job_id)
        .call()
        .await
        .map_err(|e| rpc_failure("getJob", e))?;
    step(
        4,
        "client opened job 1 with a deposit of 100 tokens' price",
        json!({ "client": job.client.to_checksum(None), "deposit_wei": job.deposit.to_string(), "price_per_token_wei": job.pricePerToken.to_string() }),
    );

    let exe = std::env::current_exe().map_err(|e| Failure::other("demo_failed", e.to_string()))?;
    let mut node = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--chain-poll-ms", "100"])
        // One checkpoint: its batch (of 1) goes out after half a second.
        .args(["--batch-wait-ms", "500"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--keys-dir")
        .arg(&keys_dir)
        .arg("--wallet-key")
        .arg(&wallet_file)
        .args(["--rpc-url", &url, "--marketplace"])
        .arg(marketplace.to_checksum(None))
        .env_remove("HOST_PRIVATE_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::other("demo_failed", e.to_string()))?;
    let result = run_node(&mut node, &url, marketplace, model).await;
    let _ = node.kill();
    let _ = node.wait();
    result?;

    let job = market
        .getJob(job_id)
        .call()
        .await
        .map_err(|e| rpc_failure("getJob", e))?;
    let earned = market
        .earnings(host)
        .call()
        .await
        .map_err(|e| rpc_failure("earnings", e))?;
    step(
        7,
        "the contract verified the proof and credited the host",
        json!({ "tokens_used": job.tokensUsed.to_string(), "host_earnings_wei": earned.to_string() }),
    );
    let complete = IFabstirMarketplace::completeJobCall { jobId: job_id };
    send(
        &client,
        "completeJob",
        TransactionRequest::default()
            .with_to(marketplace)
            .with_call(&complete),
    )
    .await?;
    let earned = market
        .earnings(host)
        .call()
        .await
        .map_err(|e| rpc_failure("earnings", e))?;
    let refund = market
        .earnings(job.client)
        .call()
        .await
        .map_err(|e| rpc_failure("earnings", e))?;
    step(
        8,
        "client completed the job: the rest of the deposit is credited back to the client (withdraw() sends it)",
        json!({ "host_earnings_wei": earned.to_string(), "client_refund_wei": refund.to_string() }),
    );
    println!(
        "{}",
        json!({
            "chain_id": ANVIL_CHAIN_ID,
            "marketplace": marketplace.to_checksum(None),
            "job_id": 1,
            "tokens_used": job.tokensUsed.to_string(),
            "price_per_token_wei": price.to_string(),
            "host_earnings_wei": earned.to_string(),
            "client_refund_wei": refund.to_string(),
        })
    );
    Ok(())
}

/// Drives the demo's node: its address once it listens, after one result
/// was proved and checkpointed and the submission confirmed.
async fn run_node(
    node: &mut std::process::Child,
    rpc_url: &str,
    marketplace: Address,
    model: &str,
) -> Result<String, Failure> {
    let stdout = node
        .stdout
        .take()
        .ok_or_else(|| Failure::other("demo_failed", "no standard output"))?;
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| Failure::other("demo_failed", e.to_string()))?;
    let started: Value = serde_json::from_str(&first).map_err(|_| {
        Failure::other(
            "demo_failed",
            format!("the node did not start (it printed {first:?}); run `fabstir-node serve --rpc-url {rpc_url} --marketplace {marketplace}` to see why"),
        )
    })?;
    let base = format!(
        "http://{}",
        started["listening"].as_str().unwrap_or_default()
    );
    step(
        5,
        "node started against the marketplace (chain id, vk_id and host registration checked)",
        json!({ "node": base, "chain": started["chain"] }),
    );
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .json(&body);
        async move {
            let reply = request.send().await.map_err(|e| rpc_failure("node", e))?;
            let status = reply.status();
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(Failure::other("demo_failed", format!("{status}: {body}")));
            }
            Ok(body)
        }
    };
    let result = json!({
        "job_id": "1", "chain_id": ANVIL_CHAIN_ID, "marketplace": marketplace.to_checksum(None),
        "model": model, "prompt": "What is the capital of France?",
        "response": "The capital of France is Paris.", "tokens_used": 12,
    });
    post("/v1/results", result).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let proof: Value = http
            .get(format!("{base}/v1/proofs/1"))
            .send()
            .await
            .map_err(|e| rpc_failure("node", e))?
            .json()
            .await
            .unwrap_or(Value::Null);
        if proof["state"] == "proved" {
            break;
        }
        if Instant::now() > deadline {
            return Err(Failure::other(
                "demo_failed",
                "the result was not proved within 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let checkpoint = post(
        "/v1/checkpoints",
        json!({ "job_id": "1", "tokens_processed": 12 }),
    )
    .await?;
    step(
        6,
        "result proved; checkpoint at 12 tokens queued for a batch (submitVerifiedBatch)",
        json!({ "checkpoint": checkpoint["id"], "status": checkpoint["status"], "commitment": checkpoint["commitment"] }),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .map_err(|e| rpc_failure("node", e))?
            .text()
            .await
            .unwrap_or_default();
        if metrics.contains("fabstir_chain_outbox_depth{state=\"confirmed\"} 1") {
            return Ok(base);
        }
        if metrics.contains("fabstir_chain_outbox_depth{state=\"failed\"} 1") {
            return Err(Failure::other(
                "demo_failed",
                "the marketplace refused the submission; see the node's log",
            ));
        }
        if Instant::now() > deadline {
            return Err(Failure::other(
                "demo_failed",
                "the submission was not confirmed within 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
