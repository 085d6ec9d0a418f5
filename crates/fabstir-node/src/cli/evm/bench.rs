//! `evm bench`: the generated verifier's gas and size, measured with real
//! transactions on a local anvil.
//!
//! Every figure is a mined transaction's `gasUsed` (the whole transaction:
//! 21,000 base, calldata, execution), sent with an explicit gas limit after
//! a call of the same transaction has returned the expected answer. Gas
//! estimation is not used: its search is not a measurement.
//!
//! The contracts are deployed by the same function as `chain deploy`'s, on
//! an anvil started by alloy's launcher, over an alloy provider that signs
//! with anvil's first development key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::ext::AnvilApi as _;
use alloy::providers::{DynProvider, Provider as _};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall as _;
use fabstir_zk::evm::{calldata, Plan};
use fabstir_zk::{
    BatchProof, BatchProvingKey, BatchSize, BatchStatement, HostKey, JobId, KeySet, ProofEnvelope,
    ProvingKey, Srs,
};

use crate::chain::contract::IFabstirMarketplace;
use serde_json::{json, Map, Value};

use super::verifier::{verifier_source, VERIFIER_FILE};
use crate::cli::contracts::{deploy_marketplace, DeployError, LocalAnvil, Toolchain, MINE_TIMEOUT};
use crate::cli::demo::sample_result;
use crate::cli::{io, Failure};

/// The EVM's limit on a contract's runtime code (EIP-170), which anvil
/// enforces by default.
pub const RUNTIME_LIMIT: usize = 24_576;

/// The EVM's limit on a contract's creation code (EIP-3860).
pub const INITCODE_LIMIT: usize = 2 * RUNTIME_LIMIT;

/// The gas limit of every measured transaction: generous, so that the
/// figure is what the transaction used, never what a limit allowed.
pub const GAS_LIMIT: u64 = 25_000_000;

/// Different proofs whose `verify` gas gives the median.
const VERIFY_SAMPLES: usize = 3;

/// What `evm bench` measures.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Print one JSON object instead of a table.
    pub json: bool,
    /// Key directory (default: the development keys).
    pub keys: Option<PathBuf>,
    /// Batch sizes of the `verifyBatch` transactions.
    pub batches: Vec<usize>,
    /// Sizes of the batch proofs sent with `submitVerifiedBatch`.
    pub batch_sizes: Vec<usize>,
    /// The repository's `contracts/` directory (default: searched for).
    pub contracts: Option<PathBuf>,
}

/// The proving key and host key to make proofs with.
fn prover(keys: Option<&Path>) -> Result<(Arc<ProvingKey>, Arc<HostKey>), Failure> {
    match keys {
        Some(dir) => {
            let keys = KeySet::load(dir)?;
            Ok((keys.proving_key, keys.host_key))
        }
        None => Ok((
            Arc::new(ProvingKey::build(Arc::new(Srs::insecure_dev()))?),
            Arc::new(HostKey::generate(rand::rngs::OsRng)),
        )),
    }
}

/// A proof as the contract takes it: public inputs and proof bytes.
struct Item {
    words: Vec<[u8; 32]>,
    proof: Vec<u8>,
}

fn make_proofs(pk: &ProvingKey, host: &HostKey, count: usize) -> Result<Vec<Item>, Failure> {
    (0..count)
        .map(|i| {
            let mut result = sample_result();
            result.job_id = JobId::from_u64(2_000_000 + i as u64);
            let statement = result.statement(host.host_id());
            let envelope = ProofEnvelope::create(pk, &statement, host, rand::rngs::OsRng)
                .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
            Ok(Item {
                words: calldata::instance_words(&envelope.instance.to_field_elements()),
                proof: envelope.proof,
            })
        })
        .collect()
}

/// The verifier and the marketplace deployed on a local anvil.
struct Deployed {
    /// Kept running until the measurements are done.
    _anvil: LocalAnvil,
    provider: DynProvider,
    /// anvil's first development account: the sender of every transaction.
    sender: Address,
    verifier: Address,
    marketplace: Address,
}

/// A transaction (or call) from the sender to `to` with `data`, `value`
/// wei and the measurement's gas limit.
fn request(from: Address, to: Address, data: &[u8], value: u128) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(Bytes::copy_from_slice(data))
        .with_value(U256::from(value))
        .with_gas_limit(GAS_LIMIT)
}

impl Deployed {
    /// The chain's id.
    async fn chain_id(&self) -> Result<u64, Failure> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|e| Failure::other("evm_call_failed", format!("chain id: {e}")))
    }

    /// A call of `data` to `to`: the returned data.
    async fn call(&self, to: Address, data: &[u8]) -> Result<Vec<u8>, String> {
        self.provider
            .call(request(self.sender, to, data, 0))
            .await
            .map(|out| out.to_vec())
            .map_err(
                |e| match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                    Some(data) => {
                        format!("the call reverted (revert data 0x{})", hex::encode(&data))
                    }
                    None => e.to_string(),
                },
            )
    }

    /// A call of a view function of the verifier without arguments: its
    /// one return word.
    async fn word(&self, signature: &str) -> Result<[u8; 32], Failure> {
        let data = self
            .call(self.verifier, &calldata::selector(signature))
            .await
            .map_err(|e| Failure::other("evm_call_failed", format!("{signature}: {e}")))?;
        data.as_slice().try_into().map_err(|_| {
            Failure::other(
                "evm_wrong_answer",
                format!(
                    "{signature} returned 0x{} (expected one word)",
                    hex::encode(&data)
                ),
            )
        })
    }

    /// The size of the code at `address` (0 for an account without code).
    async fn code_size(&self, address: Address) -> Result<usize, Failure> {
        self.provider
            .get_code_at(address)
            .await
            .map(|code| code.len())
            .map_err(|e| Failure::other("evm_call_failed", format!("code at {address}: {e}")))
    }

    /// Sends `data` to `to` (with `value` wei) and requires success; the
    /// gas used.
    async fn transact(
        &self,
        to: Address,
        data: &[u8],
        value: u128,
        what: &str,
    ) -> Result<u64, Failure> {
        let failed = |e: String| Failure::other("evm_transaction_failed", format!("{what}: {e}"));
        let receipt = self
            .provider
            .send_transaction(request(self.sender, to, data, value))
            .await
            .map_err(|e| failed(e.to_string()))?
            .with_timeout(Some(MINE_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !receipt.status() {
            return Err(failed(format!(
                "the transaction reverted after {} gas (limit {GAS_LIMIT})",
                receipt.gas_used
            )));
        }
        Ok(receipt.gas_used)
    }

    /// Calls `data` (`what`) on the verifier, checks that it answers
    /// `expected`, then sends it as a transaction and returns the
    /// transaction's gasUsed.
    async fn measure(&self, what: &str, data: &[u8], expected: bool) -> Result<u64, Failure> {
        let answer = self
            .call(self.verifier, data)
            .await
            .map_err(|e| Failure::other("evm_call_failed", format!("{what}: {e}")))?;
        let mut want = [0u8; 32];
        want[31] = u8::from(expected);
        if answer != want {
            return Err(Failure::other(
                "evm_wrong_answer",
                format!(
                    "{what}: the verifier answered 0x{}, expected {expected}",
                    hex::encode(&answer)
                ),
            ));
        }
        self.transact(self.verifier, data, 0, what).await
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Compiles the verifier and the marketplace, starts anvil and deploys
/// both; returns them with the verifier's deployment gas and its compiled
/// runtime size.
async fn deploy(
    toolchain: &Toolchain,
    source: &str,
    batch_keys: &[BatchProvingKey],
    dir: &Path,
) -> Result<(Deployed, u64, usize), Failure> {
    let path = dir.join(VERIFIER_FILE);
    io::write_new(&path, source.as_bytes())?;
    let compiled = toolchain.compile(&path, "FabstirVerifier")?;
    let batch_vks: Vec<&fabstir_zk::BatchVerifyingKey> =
        batch_keys.iter().map(|pk| pk.verifying_key()).collect();
    let batch_compiled = toolchain.batch_verifiers(&batch_vks, dir)?;
    let batch_verifiers: Vec<(usize, &crate::cli::contracts::Compiled)> = batch_compiled
        .iter()
        .map(|(n, compiled)| (*n, compiled))
        .collect();
    let marketplace = toolchain.marketplace()?;
    let anvil = toolchain.anvil(&[])?;
    let provider = anvil.provider()?;
    let sender =
        anvil.accounts().first().copied().ok_or_else(|| {
            Failure::other("evm_toolchain", "anvil listed no development accounts")
        })?;
    let size = compiled.deployed.len();
    let deployment = deploy_marketplace(
        &provider,
        &compiled,
        &batch_verifiers,
        &marketplace,
        Some(GAS_LIMIT),
    )
    .await
    .map_err(|e| {
        let contract = match &e {
            DeployError::Send { contract, .. }
            | DeployError::Receipt { contract, .. }
            | DeployError::Reverted { contract, .. } => *contract,
        };
        if contract != "FabstirVerifier" {
            return Failure::other("evm_deploy_failed", format!("{contract}: {e}"));
        }
        let creation = compiled.bytecode.len();
        let why = if size > RUNTIME_LIMIT {
            format!(
                "its runtime code is {size} bytes, over the EVM's {RUNTIME_LIMIT}-byte limit \
                     (EIP-170): the verifier must be made smaller to deploy"
            )
        } else if creation > INITCODE_LIMIT {
            format!(
                "its creation code is {creation} bytes, over the EVM's {INITCODE_LIMIT}-byte \
                     limit (EIP-3860): the verifier must be made smaller to deploy"
            )
        } else {
            format!(
                "runtime code {size} bytes, creation code {creation} bytes (limits \
                     {RUNTIME_LIMIT} and {INITCODE_LIMIT}; the constants contract the \
                     constructor creates is also subject to the runtime limit)"
            )
        };
        let what = match e {
            DeployError::Reverted { gas_used, .. } => {
                format!("the creation failed after {gas_used} gas")
            }
            other => other.to_string(),
        };
        Failure::other(
            "evm_deploy_failed",
            format!("deploying FabstirVerifier failed ({what}): {why}"),
        )
    })?;
    let deploy_gas = deployment.verifier_receipt.gas_used;
    let deployed = Deployed {
        _anvil: anvil,
        provider,
        sender,
        verifier: deployment.verifier,
        marketplace: deployment.marketplace,
    };
    Ok((deployed, deploy_gas, size))
}

/// What `submitVerifiedBatch` costs for a batch of one size.
struct BatchFigures {
    size: usize,
    /// The whole transaction's gasUsed.
    gas: u64,
    /// Its calldata length.
    calldata: usize,
    /// Proving time, median of the runs, in ms.
    prove_ms: f64,
}

/// Proof runs whose median is `batch_prove_ms`.
const BATCH_PROVE_RUNS: usize = 3;

/// For each batch key: opens as many jobs as it has entries (one checkpoint
/// each, 1,000 tokens: every entry reads and writes its own cold job), makes
/// the batch proof (timed) and pays it with `submitVerifiedBatch`. The host
/// must be registered (`measure_submissions` does it); `next_job` is the
/// marketplace's next job id.
async fn measure_batches(
    deployed: &Deployed,
    keys: &[BatchProvingKey],
    host: &HostKey,
    mut next_job: u64,
) -> Result<Vec<BatchFigures>, Failure> {
    let market = deployed.marketplace;
    let chain_id = deployed.chain_id().await?;
    let price: u128 = 1_000_000_000;
    let mut figures = Vec::new();
    for pk in keys {
        let n = pk.size().get();
        let mut statements = Vec::new();
        for _ in 0..n {
            let open = IFabstirMarketplace::createSessionJobCall {
                host: deployed.sender,
                modelId: [0x11; 32].into(),
                pricePerToken: U256::from(price),
            };
            deployed
                .transact(
                    market,
                    &open.abi_encode(),
                    price * 1_000_000,
                    "createSessionJob",
                )
                .await?;
            let mut result = sample_result();
            result.job_id = JobId::from_u64(next_job);
            result.chain_id = chain_id;
            result.marketplace = market;
            result.tokens_used = 1_000;
            statements.push(result.statement(host.host_id()));
            next_job += 1;
        }
        let batch = BatchStatement::from_statements(&statements)
            .and_then(|b| b.padded(pk.size()))
            .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
        let mut times = Vec::new();
        let mut proof = None;
        for _ in 0..BATCH_PROVE_RUNS {
            let started = std::time::Instant::now();
            let made = BatchProof::create(pk, &batch, host, rand::rngs::OsRng)
                .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            proof = Some(made);
        }
        times.sort_by(f64::total_cmp);
        let Some(proof) = proof else { continue };
        let entries = crate::chain::contract::batch_entries(&batch.public());
        let data = IFabstirMarketplace::submitVerifiedBatchCall {
            entries,
            proof: proof.proof.into(),
        }
        .abi_encode();
        let gas = deployed
            .transact(market, &data, 0, &format!("submitVerifiedBatch of {n}"))
            .await?;
        figures.push(BatchFigures {
            size: n,
            gas,
            calldata: data.len(),
            prove_ms: times[times.len() / 2],
        });
    }
    Ok(figures)
}

/// Checks the deployed constants against the plan; returns the size of the
/// constants contract's code.
async fn check_constants(deployed: &Deployed, plan: &Plan) -> Result<usize, Failure> {
    let number = |word: [u8; 32]| {
        word[..24]
            .iter()
            .all(|b| *b == 0)
            .then(|| u64::from_be_bytes(word[24..].try_into().unwrap_or_default()))
    };
    let checks = [
        ("VK_ID()", deployed.word("VK_ID()").await? == plan.vk_id.0),
        (
            "NUM_INSTANCES()",
            number(deployed.word("NUM_INSTANCES()").await?) == Some(plan.num_instances() as u64),
        ),
        (
            "PROOF_LENGTH()",
            number(deployed.word("PROOF_LENGTH()").await?) == Some(plan.layout().len as u64),
        ),
    ];
    if let Some((name, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(Failure::other(
            "evm_wrong_answer",
            format!("the deployed verifier's {name} does not match the key"),
        ));
    }
    let word = deployed.word("CONSTANTS()").await?;
    let size = deployed.code_size(Address::from_word(word.into())).await?;
    if word[..12].iter().any(|b| *b != 0) || size == 0 {
        return Err(Failure::other(
            "evm_wrong_answer",
            format!(
                "CONSTANTS() is 0x{}, not a contract with code",
                hex::encode(word)
            ),
        ));
    }
    Ok(size)
}

/// One ABI word holding `v`.
fn word_of(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

/// Gas of the marketplace's transactions, whole transactions.
struct SubmissionGas {
    /// `registerHost` with its registration proof.
    register: u64,
    /// The host's first `submitVerifiedProof` (it creates the earnings slot).
    first: u64,
    /// A later `submitVerifiedProof`.
    later: u64,
}

/// Registers anvil's sender as the host on `deployed`'s marketplace (with a
/// registration proof), opens a job and pays for two checkpoints with
/// `submitVerifiedProof`.
async fn measure_submissions(
    deployed: &Deployed,
    pk: &ProvingKey,
    host: &HostKey,
) -> Result<SubmissionGas, Failure> {
    let market = deployed.marketplace;
    let chain_id = deployed.chain_id().await?;

    let registration = ProofEnvelope::create_registration(
        pk,
        chain_id,
        market,
        deployed.sender,
        host,
        rand::rngs::OsRng,
    )
    .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
    let words = calldata::instance_words(&registration.instance.to_field_elements());
    let register = IFabstirMarketplace::registerHostCall {
        hostId: alloy::primitives::U256::from_be_bytes(
            calldata::instance_words(&[host.host_id().0])[0],
        ),
        commitment: alloy::primitives::U256::from_be_bytes(
            words[fabstir_zk::circuit::layout::instance::COMMITMENT],
        ),
        proof: registration.proof.into(),
    };
    let register_gas = deployed
        .transact(
            market,
            &alloy::sol_types::SolCall::abi_encode(&register),
            0,
            "registerHost",
        )
        .await?;

    let price: u128 = 1_000_000_000;
    let mut data = calldata::selector("createSessionJob(address,bytes32,uint256)").to_vec();
    data.extend_from_slice(deployed.sender.into_word().as_slice());
    data.extend_from_slice(&[0x11; 32]);
    data.extend_from_slice(&word_of(price));
    deployed
        .transact(market, &data, price * 1_000_000, "createSessionJob")
        .await?;

    let mut gas = [0u64; 2];
    for (i, tokens) in [1_000u64, 2_000].into_iter().enumerate() {
        let mut result = sample_result();
        result.job_id = JobId::from_u64(1);
        result.chain_id = chain_id;
        result.marketplace = market;
        result.tokens_used = tokens;
        let statement = result.statement(host.host_id());
        let envelope = ProofEnvelope::create(pk, &statement, host, rand::rngs::OsRng)
            .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
        let words = calldata::instance_words(&envelope.instance.to_field_elements());
        let mut data =
            calldata::selector("submitVerifiedProof(uint256,uint256,uint256,bytes)").to_vec();
        data.extend_from_slice(&word_of(1));
        data.extend_from_slice(&word_of(u128::from(tokens)));
        data.extend_from_slice(&words[fabstir_zk::circuit::layout::instance::COMMITMENT]);
        data.extend_from_slice(&word_of(0x80));
        data.extend_from_slice(&word_of(envelope.proof.len() as u128));
        data.extend_from_slice(&envelope.proof);
        // The bytes argument is padded to a whole word.
        data.resize(4 + (data.len() - 4).div_ceil(32) * 32, 0);
        gas[i] = deployed
            .transact(market, &data, 0, "submitVerifiedProof")
            .await?;
    }
    Ok(SubmissionGas {
        register: register_gas,
        first: gas[0],
        later: gas[1],
    })
}

/// Runs `evm bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode, Failure> {
    if args.batches.is_empty() || args.batches.contains(&0) {
        return Err(Failure::input(
            "bad_argument",
            "--batches must list batch sizes of at least 1, e.g. 1,10,50",
        ));
    }
    if args.batch_sizes.contains(&0) {
        return Err(Failure::input(
            "bad_argument",
            "--batch-sizes must list sizes of at least 1, e.g. 16,64",
        ));
    }
    let toolchain = Toolchain::locate(args.contracts.as_deref())?;
    let (pk, host) = prover(args.keys.as_deref())?;
    let (plan, verifier) = verifier_source(pk.verifying_key())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", e.to_string()))?;
    runtime.block_on(bench(
        &args,
        &toolchain,
        &pk,
        &host,
        &plan,
        &verifier.source,
    ))
}

/// Deploys, measures and prints the report.
async fn bench(
    args: &BenchArgs,
    toolchain: &Toolchain,
    pk: &ProvingKey,
    host: &HostKey,
    plan: &Plan,
    source: &str,
) -> Result<ExitCode, Failure> {
    // Batch keys: development parameters at each batch's size (a key
    // directory's parameters are the single circuit's, too small).
    let batch_keys: Vec<BatchProvingKey> = if args.keys.is_some() {
        Vec::new()
    } else {
        args.batch_sizes
            .iter()
            .map(|n| -> Result<BatchProvingKey, Failure> {
                let size = BatchSize::new(*n)
                    .map_err(|e| Failure::input("bad_argument", format!("--batch-sizes: {e}")))?;
                let srs = Arc::new(Srs::insecure_dev_at(size.k())?);
                Ok(BatchProvingKey::build(srs, size)?)
            })
            .collect::<Result<_, _>>()?
    };
    // Deployment first: a verifier that does not deploy fails before proving.
    let dir = tempfile::tempdir().map_err(|e| Failure::other("tempdir", e.to_string()))?;
    let (deployed, deploy_gas, compiled_size) =
        deploy(toolchain, source, &batch_keys, dir.path()).await?;
    let runtime_bytes = deployed.code_size(deployed.verifier).await?;
    if runtime_bytes != compiled_size {
        return Err(Failure::other(
            "evm_wrong_answer",
            format!("the deployed verifier has {runtime_bytes} bytes of code, solc made {compiled_size}"),
        ));
    }
    let constants_runtime_bytes = check_constants(&deployed, plan).await?;

    let largest = args.batches.iter().copied().max().unwrap_or(1);
    let items = make_proofs(pk, host, largest.max(VERIFY_SAMPLES))?;

    let verify_data = |item: &Item| calldata::verify(&item.words, &item.proof);
    let mut samples = Vec::with_capacity(VERIFY_SAMPLES);
    for (i, item) in items.iter().take(VERIFY_SAMPLES).enumerate() {
        samples.push(
            deployed
                .measure(&format!("verify (proof {i})"), &verify_data(item), true)
                .await?,
        );
    }
    let verify_gas = median(samples);

    // One flipped bit in the first advice evaluation: a canonical scalar
    // (with overwhelming probability), so every check runs and the final
    // pairing fails.
    let mut tampered = items[0].proof.clone();
    tampered[plan.layout().advice_evals + 31] ^= 1;
    let invalid_verify_gas = deployed
        .measure(
            "verify (a proof with one flipped bit in an evaluation)",
            &calldata::verify(&items[0].words, &tampered),
            false,
        )
        .await?;

    let mut per_proof = Map::new();
    let mut totals = Map::new();
    for &n in &args.batches {
        let batch: Vec<(&[[u8; 32]], &[u8])> = items
            .iter()
            .take(n)
            .map(|item| (item.words.as_slice(), item.proof.as_slice()))
            .collect();
        let data = calldata::verify_batch(plan.num_instances(), &batch);
        let gas = deployed
            .measure(&format!("verifyBatch of {n}"), &data, true)
            .await?;
        per_proof.insert(n.to_string(), json!((gas as f64 / n as f64).round() as u64));
        totals.insert(n.to_string(), json!(gas));
    }

    let submissions = measure_submissions(&deployed, pk, host).await?;
    // measure_submissions opened job 1.
    let batches = measure_batches(&deployed, &batch_keys, host, 2).await?;
    let by_size = |f: &dyn Fn(&BatchFigures) -> Value| -> Map<String, Value> {
        batches.iter().map(|b| (b.size.to_string(), f(b))).collect()
    };

    let anvil_version = deployed.provider.get_client_version().await.ok();
    let hardfork = deployed
        .provider
        .anvil_node_info()
        .await
        .ok()
        .map(|info| info.hard_fork);
    let report = json!({
        "vk_id": plan.vk_id.to_string(),
        "development_keys": args.keys.is_none(),
        "num_instances": plan.num_instances(),
        "proof_bytes": items[0].proof.len(),
        "calldata_bytes": verify_data(&items[0]).len(),
        "runtime_bytes": runtime_bytes,
        "constants_runtime_bytes": constants_runtime_bytes,
        "deploy_gas": deploy_gas,
        "verify_gas": verify_gas,
        "verify_samples": VERIFY_SAMPLES,
        "invalid_verify_gas": invalid_verify_gas,
        "batch_gas_per_proof": per_proof,
        "batch_gas": totals,
        "marketplace_submit_gas": submissions.later,
        "marketplace_first_submit_gas": submissions.first,
        "register_gas": submissions.register,
        "batch_checkpoint_gas": by_size(&|b| json!(b.gas / b.size as u64)),
        "batch_gas": by_size(&|b| json!(b.gas)),
        "batch_calldata_per_checkpoint": by_size(&|b| json!(b.calldata / b.size)),
        "batch_prove_ms": by_size(&|b| json!((b.prove_ms * 10.0).round() / 10.0)),
        "batch_prove_runs": BATCH_PROVE_RUNS,
        "gas_limit": GAS_LIMIT,
        "limits": {"runtime_bytes": RUNTIME_LIMIT},
        "anvil_version": anvil_version,
        "hardfork": hardfork,
    });
    if args.json {
        println!("{report}");
    } else {
        print_table(&report, &args.batches);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(report: &Value, batches: &[usize]) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "fabstir-node evm bench: FabstirVerifier on {} (hardfork {}), gasUsed of mined transactions",
        text(&report["anvil_version"]),
        text(&report["hardfork"])
    );
    let rows = [
        ("vk_id", text(&report["vk_id"])),
        ("public inputs", text(&report["num_instances"])),
        ("proof bytes", text(&report["proof_bytes"])),
        ("verify calldata bytes", text(&report["calldata_bytes"])),
        (
            "runtime bytes",
            format!("{} (limit {RUNTIME_LIMIT})", text(&report["runtime_bytes"])),
        ),
        (
            "constants runtime bytes",
            text(&report["constants_runtime_bytes"]),
        ),
        ("deploy gas", text(&report["deploy_gas"])),
        (
            "verify gas",
            format!(
                "{} (median of {VERIFY_SAMPLES} proofs)",
                text(&report["verify_gas"])
            ),
        ),
        (
            "invalid proof verify gas",
            format!("{} (returns false)", text(&report["invalid_verify_gas"])),
        ),
    ];
    for (name, value) in rows {
        println!("  {name:<26} {value}");
    }
    for n in batches {
        let key = n.to_string();
        println!(
            "  {:<26} {} per proof ({} in all)",
            format!("verifyBatch of {n}"),
            text(&report["batch_gas_per_proof"][&key]),
            text(&report["batch_gas"][&key])
        );
    }
    println!(
        "  {:<26} {} (a later checkpoint; the first: {})",
        "marketplace submit gas",
        text(&report["marketplace_submit_gas"]),
        text(&report["marketplace_first_submit_gas"])
    );
    println!(
        "  {:<26} {} (registerHost with its registration proof)",
        "register gas",
        text(&report["register_gas"])
    );
    if let Some(sizes) = report["batch_checkpoint_gas"].as_object() {
        for n in sizes.keys() {
            println!(
                "  {:<26} {} per checkpoint ({} in all, {} calldata bytes per checkpoint, proved in {} ms, median of {})",
                format!("submitVerifiedBatch of {n}"),
                text(&report["batch_checkpoint_gas"][n]),
                text(&report["batch_gas"][n]),
                text(&report["batch_calldata_per_checkpoint"][n]),
                text(&report["batch_prove_ms"][n]),
                text(&report["batch_prove_runs"])
            );
        }
    }
    if report["development_keys"] == json!(true) {
        println!("  (development keys: insecure, for measurement only)");
    }
}
