//! The EVM chain client against a real anvil and the real contracts
//! (`contracts/src/FabstirVerifier.sol`, `FabstirMarketplace.sol`), deployed
//! by `fabstir-node chain deploy`: the whole flow, over-claims, crashes at
//! every step (an abort at a named point, and a real `kill -9`), an RPC
//! outage with anvil restarted from its dumped state, a reorg, and a burst
//! of 100 checkpoints. After each, every checkpoint is credited exactly once:
//! the contract's `tokensUsed` and the host's `earnings` are read back with
//! calls, and the wallet's nonce counts exactly one transaction per
//! confirmed submission. Every JSON-RPC call goes through alloy
//! ([`common::evm::Anvil`]); every transaction's receipt is awaited.
//!
//! Needs anvil and solcjs from `npm ci --prefix contracts` (and Node.js).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::sol_types::{SolCall, SolError as _};
use common::evm::{Anvil, CallError, Receipt};
use common::{binary, DataDir, Node};
use fabstir_node::chain::contract::IFabstirMarketplace;
use fabstir_node::chain::HostWallet;
use serde_json::{json, Value};

const PRICE: u64 = 1_000_000_000; // wei per token
const MODEL: &str = "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf";

/// A free loopback port (nothing listens there).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// anvil, restartable at the same URL (`stop`, then `spawn` on the same
/// port); stopped on drop.
struct Chain {
    anvil: Option<Anvil>,
    port: u16,
    url: String,
}

impl Chain {
    fn start(flags: &[&str]) -> Self {
        let anvil = Anvil::start_with(flags);
        Chain {
            port: anvil.port(),
            url: anvil.url.clone(),
            anvil: Some(anvil),
        }
    }

    /// Starts anvil again on the same port.
    fn spawn(&mut self, flags: &[&str]) {
        let anvil = Anvil::start_on(self.port, flags);
        assert_eq!(anvil.url, self.url, "anvil came back elsewhere");
        self.anvil = Some(anvil);
    }

    /// Stops anvil with SIGTERM (so it dumps its state) and waits.
    fn stop(&mut self) {
        drop(self.anvil.take());
    }

    /// The running anvil.
    fn evm(&self) -> &Anvil {
        self.anvil.as_ref().expect("anvil is running")
    }

    /// Sends a transaction from a development account and returns its
    /// receipt once mined.
    fn send(&self, from: Address, to: Address, data: Vec<u8>, value: U256) -> Receipt {
        self.evm().send_from(from, to, &data, value, None)
    }

    fn call<C: SolCall>(&self, to: Address, call: C) -> C::Return {
        self.evm().call_sol(to, call)
    }

    fn nonce(&self, address: Address) -> u64 {
        self.evm().nonce(address)
    }

    fn mine(&self, blocks: u64) {
        self.evm().mine(blocks);
    }
}

/// How checkpoints go to the marketplace in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No batch verifiers deployed: one `submitVerifiedProof` each.
    Single,
    /// Batch verifiers for 1 and 4 entries; the node batches up to 4,
    /// waiting at most 300 ms.
    Batches,
}

/// The contracts deployed, and a host (keys, wallet) registered.
struct Setup {
    mode: Mode,
    dir: DataDir,
    marketplace: Address,
    verifier: Address,
    host: Address,
    client: Address,
    keys: PathBuf,
    wallet_file: PathBuf,
}

fn run_cli(args: &[&str]) -> Value {
    let output = Command::new(binary())
        .args(args)
        .env("FABSTIR_LOG", "warn")
        .env_remove("HOST_PRIVATE_KEY")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// Runs the CLI; its exit code and the JSON object it printed last.
fn try_cli(args: &[&str]) -> (Option<i32>, Value) {
    let output = Command::new(binary())
        .args(args)
        .env("FABSTIR_LOG", "warn")
        .env_remove("HOST_PRIVATE_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| json!(String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), value)
}

/// The property names `docs/openapi.yaml` documents at `pointer` (a JSON
/// pointer into the file, e.g. `/components/schemas/Checkpoint`).
fn documented_properties(pointer: &str) -> Vec<String> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(&common::read_repo_file("docs/openapi.yaml")).unwrap();
    let spec = serde_json::to_value(yaml).unwrap();
    spec.pointer(&format!("{pointer}/properties"))
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("docs/openapi.yaml has no properties at {pointer}"))
        .keys()
        .cloned()
        .collect()
}

/// Every field of `value` is documented at `pointer` in docs/openapi.yaml.
fn assert_documented(value: &Value, pointer: &str) {
    let documented = documented_properties(pointer);
    for key in value
        .as_object()
        .unwrap_or_else(|| panic!("{value}"))
        .keys()
    {
        assert!(
            documented.contains(key),
            "`{key}` is not documented at {pointer} in docs/openapi.yaml ({documented:?})"
        );
    }
}

/// `chain deploy` (no batch verifiers), `keygen`, a funded wallet, `chain
/// register`.
fn setup(chain: &Chain) -> Setup {
    setup_for(chain, Mode::Single)
}

/// [`setup`] with the batch verifiers `mode` needs.
fn setup_for(chain: &Chain, mode: Mode) -> Setup {
    let contracts = common::repo_root().join("contracts");
    let sizes = match mode {
        Mode::Single => "none",
        Mode::Batches => "1,4",
    };
    let deployed = run_cli(&[
        "chain",
        "deploy",
        "--rpc-url",
        &chain.url,
        "--contracts",
        contracts.to_str().unwrap(),
        "--batch-sizes",
        sizes,
    ]);
    let marketplace: Address = deployed["marketplace"].as_str().unwrap().parse().unwrap();
    let verifier: Address = deployed["verifier"].as_str().unwrap().parse().unwrap();
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    run_cli(&["keygen", "--dir", keys.to_str().unwrap()]);
    let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
    let wallet_file = dir.path().join("wallet.key");
    wallet.write_new(&wallet_file).unwrap();
    let host = Address::from(wallet.address());
    // 100 ETH.
    chain.evm().set_balance(
        host,
        U256::from(100u64) * U256::from(10u64).pow(U256::from(18u64)),
    );
    let registered = run_cli(&[
        "chain",
        "register",
        "--rpc-url",
        &chain.url,
        "--marketplace",
        &format!("{marketplace:#x}"),
        "--keys",
        keys.to_str().unwrap(),
        "--wallet-key",
        wallet_file.to_str().unwrap(),
    ]);
    assert!(registered["transaction"]
        .as_str()
        .unwrap()
        .starts_with("0x"));
    let client = chain.evm().accounts()[1];
    Setup {
        mode,
        dir,
        marketplace,
        verifier,
        host,
        client,
        keys,
        wallet_file,
    }
}

impl Setup {
    /// `createSessionJob` from the client with a deposit of `tokens` tokens.
    fn open_job(&self, chain: &Chain, tokens: u64) -> u64 {
        let call = IFabstirMarketplace::createSessionJobCall {
            host: self.host,
            modelId: alloy::primitives::keccak256(MODEL.as_bytes()),
            pricePerToken: U256::from(PRICE),
        };
        let receipt = chain.send(
            self.client,
            self.marketplace,
            call.abi_encode(),
            U256::from(tokens * PRICE),
        );
        assert!(receipt.status(), "{receipt:?}");
        let created = receipt
            .decoded_log::<IFabstirMarketplace::SessionJobCreated>()
            .unwrap_or_else(|| panic!("no SessionJobCreated: {receipt:?}"));
        created.data.jobId.to::<u64>()
    }

    fn node_flags(&self, chain: &Chain, extra: &[&str]) -> Vec<String> {
        let mut flags: Vec<String> = [
            "--keys-dir",
            self.keys.to_str().unwrap(),
            "--wallet-key",
            self.wallet_file.to_str().unwrap(),
            "--rpc-url",
            &chain.url,
            "--marketplace",
            &format!("{:#x}", self.marketplace),
            "--chain-poll-ms",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.mode == Mode::Batches {
            flags.extend(["--max-batch", "4"].map(String::from));
            if !extra.contains(&"--batch-wait-ms") {
                flags.extend(["--batch-wait-ms", "300"].map(String::from));
            }
        }
        flags.extend(extra.iter().map(|s| s.to_string()));
        flags
    }

    fn start_node(&self, chain: &Chain, extra: &[&str], env: &[(&str, &str)]) -> Node {
        let flags = self.node_flags(chain, extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Node::try_start(self.dir.path(), &flags, env)
            .unwrap_or_else(|e| panic!("node did not start: {e}"))
    }

    fn result(&self, job: u64, tokens: u64) -> Value {
        json!({
            "job_id": job.to_string(), "chain_id": 31337,
            "marketplace": format!("{:#x}", self.marketplace),
            "model": MODEL, "prompt": format!("Question {job}: what is the capital of France?"),
            "response": "The capital of France is Paris.", "tokens_used": tokens,
        })
    }

    fn job(&self, chain: &Chain, job: u64) -> IFabstirMarketplace::Job {
        chain.call(
            self.marketplace,
            IFabstirMarketplace::getJobCall {
                jobId: U256::from(job),
            },
        )
    }

    /// The host id the marketplace has registered for the host wallet.
    fn registered_host_id(&self, chain: &Chain) -> U256 {
        chain.call(
            self.marketplace,
            IFabstirMarketplace::hostIdOfCall { host: self.host },
        )
    }

    fn earnings(&self, chain: &Chain) -> U256 {
        chain.call(
            self.marketplace,
            IFabstirMarketplace::earningsCall { account: self.host },
        )
    }

    /// Outbox rows by state.
    fn outbox(&self, state: &str) -> i64 {
        self.dir.count(
            "SELECT COUNT(*) FROM chain_outbox WHERE state = ?1",
            [state],
        )
    }

    /// Waits until nothing is pending or sent; panics with the outbox after
    /// `timeout`.
    fn wait_outbox_done(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self.dir.count(
                "SELECT COUNT(*) FROM chain_outbox WHERE state IN ('pending', 'batched', 'sent')",
                [],
            ) + self.dir.count(
                "SELECT COUNT(*) FROM chain_batches WHERE state IN ('pending', 'sent')",
                [],
            );
            let all = self.dir.count("SELECT COUNT(*) FROM chain_outbox", []);
            if open == 0 && all > 0 {
                return;
            }
            if Instant::now() > deadline {
                panic!("outbox not done: {}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn dump(&self) -> String {
        let db = self.dir.db();
        let mut stmt = db
            .prepare("SELECT id, checkpoint_id, cumulative_tokens, state, nonce, tx_hash, reason FROM chain_outbox ORDER BY id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok(format!(
                    "{}:{}:{}:{}:{:?}:{:?}:{:?}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let mut stmt = db
            .prepare("SELECT id, entries, state, nonce, tx_hash, bumps, reason FROM chain_batches ORDER BY id")
            .unwrap();
        let batches = stmt
            .query_map([], |r| {
                Ok(format!(
                    "batch {}:{}:{}:{:?}:{:?}:{}:{:?}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        format!("{}\n{}", rows.join("\n"), batches.join("\n"))
    }

    /// The table whose rows are this mode's transactions.
    fn tx_table(&self) -> &'static str {
        match self.mode {
            Mode::Single => "chain_outbox",
            Mode::Batches => "chain_batches",
        }
    }

    /// Transactions in state `sent`.
    fn sent(&self) -> i64 {
        self.dir.count(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE state = 'sent'",
                self.tx_table()
            ),
            [],
        )
    }

    /// Every transaction the node recorded (single submissions and
    /// batches) took one nonce of the wallet, after its registration's: the
    /// nonces are gapless and unique, and the wallet sent nothing else, so
    /// no submission was sent twice.
    fn assert_one_transaction_per_submission(&self, chain: &Chain) {
        let db = self.dir.db();
        let mut stmt = db
            .prepare(
                "SELECT nonce FROM chain_outbox WHERE nonce IS NOT NULL
                 UNION ALL SELECT nonce FROM chain_batches WHERE nonce IS NOT NULL ORDER BY nonce",
            )
            .unwrap();
        let nonces: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<i64> = (1..=nonces.len() as i64).collect();
        assert_eq!(
            nonces,
            expected,
            "nonces are gapless and unique:\n{}",
            self.dump()
        );
        assert_eq!(
            chain.nonce(self.host),
            1 + nonces.len() as u64,
            "wallet nonce vs recorded transactions:\n{}",
            self.dump()
        );
        if self.mode == Mode::Batches {
            assert_eq!(
                self.dir.count(
                    "SELECT COUNT(*) FROM chain_outbox WHERE nonce IS NOT NULL",
                    []
                ),
                0,
                "with batches, no checkpoint went out on its own:\n{}",
                self.dump()
            );
        }
    }
}

/// Posts a result and waits until it is proved.
fn prove(node: &Node, setup: &Setup, job: u64, tokens: u64) {
    let (status, body) = node.post("/v1/results", &setup.result(job, tokens));
    assert_eq!(status, 202, "{body}");
    node.wait_proved(&job.to_string(), Duration::from_secs(60));
}

fn checkpoint(node: &Node, job: u64, tokens: u64) -> (u16, Value) {
    node.post(
        "/v1/checkpoints",
        &json!({ "job_id": job.to_string(), "tokens_processed": tokens }),
    )
}

/// Waits for a node process (started with a fault point) to abort.
fn wait_exit(node: Node, timeout: Duration) {
    let pid = node.pid();
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < deadline, "the node did not abort");
        std::thread::sleep(Duration::from_millis(50));
    }
    node.kill9();
}

#[test]
fn the_whole_flow_credits_the_host_and_refunds_the_client() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 100);
    let node = setup.start_node(&chain, &[], &[]);
    assert_eq!(node.startup["chain"]["kind"], "evm");
    assert_eq!(node.startup["chain"]["chain_id"], 31337);
    let (_, health) = node.get("/health");
    assert_eq!(health["chain"]["kind"], "evm", "{health}");

    // Results for another chain or marketplace are refused when they
    // arrive: nothing is stored or proved for them.
    let mut other_chain = setup.result(job, 12);
    other_chain["chain_id"] = json!(84532);
    let (status, body) = node.post("/v1/results", &other_chain);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "wrong_chain", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chain 31337"),
        "{body}"
    );
    let mut other_market = setup.result(job, 12);
    other_market["marketplace"] = json!(format!("{:#x}", setup.verifier));
    let (status, body) = node.post("/v1/results", &other_market);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "wrong_marketplace", "{body}");
    assert_eq!(node.get(&format!("/v1/proofs/{job}")).0, 404);
    assert_eq!(
        node.metric("fabstir_results_rejected_total{reason=\"wrong_chain\"}"),
        Some(1.0)
    );

    prove(&node, &setup, job, 12);
    let mut commitments = Vec::new();
    for tokens in [4, 9, 12] {
        let (status, body) = checkpoint(&node, job, tokens);
        assert_eq!(status, 201, "{body}");
        commitments.push(body["commitment"].as_str().unwrap().to_string());
        setup.wait_outbox_done(Duration::from_secs(60));
        let on_chain = setup.job(&chain, job);
        assert_eq!(on_chain.tokensUsed, U256::from(tokens), "{}", setup.dump());
    }
    assert_eq!(setup.outbox("confirmed"), 3);
    // Each checkpoint shows its on-chain state, as documented.
    let (_, list) = node.get(&format!("/v1/checkpoints/{job}"));
    for checkpoint in list["checkpoints"].as_array().unwrap() {
        let onchain = &checkpoint["onchain"];
        assert_eq!(onchain["state"], "confirmed", "{list}");
        assert!(onchain["block_number"].as_u64().is_some(), "{onchain}");
        assert!(onchain["tx_hash"].as_str().unwrap().starts_with("0x"));
        assert_documented(onchain, "/components/schemas/Checkpoint/properties/onchain");
    }
    let (_, health) = node.get("/health");
    let outbox = &health["chain"]["outbox"];
    assert_eq!(outbox["confirmed"], 3, "{health}");
    assert_eq!(outbox["pending"], 0, "{health}");
    assert_eq!(outbox["oldest_open_age_ms"], Value::Null, "{health}");
    assert_documented(
        outbox,
        "/components/schemas/Health/properties/chain/properties/outbox",
    );
    assert_eq!(health["checks"]["chain_host_id"]["ok"], true, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    // The figure: gas of each verified submission.
    let db = setup.dir.db();
    let mut stmt = db
        .prepare("SELECT tx_hash FROM chain_outbox ORDER BY id")
        .unwrap();
    let hashes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for hash in hashes {
        let receipt = chain.evm().receipt(&hash);
        assert!(receipt.status(), "{receipt:?}");
        println!("submitVerifiedProof gas used: {}", receipt.gas_used);
    }
    assert_eq!(setup.earnings(&chain), U256::from(12 * PRICE));
    // The contract recorded each checkpoint's commitment.
    for (tokens, commitment) in [4u64, 9, 12].iter().zip(&commitments) {
        let recorded: U256 = chain.call(
            setup.marketplace,
            IFabstirMarketplace::commitmentOfCall {
                jobId: U256::from(job),
                cumulativeTokens: U256::from(*tokens),
            },
        );
        assert_eq!(format!("{recorded:#066x}"), *commitment);
    }
    // The gauges follow the outbox after each pass.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = node.metrics_text();
        if metrics.contains("fabstir_chain_outbox_depth{state=\"confirmed\"} 3")
            || Instant::now() > deadline
        {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains("fabstir_chain_outbox_depth{state=\"confirmed\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("fabstir_chain_submit_to_confirmed_seconds_count 3"));

    // The client completes the job: the host keeps its 12 tokens, the
    // client is credited the other 88 and withdraws them.
    let receipt = chain.send(
        setup.client,
        setup.marketplace,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(job),
        }
        .abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.status(), "{receipt:?}");
    assert!(setup.job(&chain, job).completed);
    let refund: U256 = chain.call(
        setup.marketplace,
        IFabstirMarketplace::earningsCall {
            account: setup.client,
        },
    );
    assert_eq!(refund, U256::from(88 * PRICE));
    let receipt = chain.send(
        setup.client,
        setup.marketplace,
        IFabstirMarketplace::withdrawCall {}.abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.status(), "{receipt:?}");
    assert_eq!(
        chain.evm().balance(setup.marketplace),
        U256::from(12 * PRICE)
    );
    assert_eq!(setup.earnings(&chain), U256::from(12 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}

#[test]
fn the_embedded_ledger_stays_the_default() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.startup["chain"]["kind"], "local_ledger");
    let (_, health) = node.get("/health");
    assert_eq!(health["chain"]["kind"], "local_ledger", "{health}");
}

#[test]
fn start_up_refuses_a_wrong_chain_an_unregistered_host_or_another_key() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let flags = setup.node_flags(&chain, &["--chain-id", "84532"]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refusal = common::serve_refused(setup.dir.path(), &flags, &[]);
    assert!(
        refusal.text().contains("serves chain 31337") && refusal.text().contains("84532"),
        "{}",
        refusal.text()
    );
    // Another wallet: not registered.
    let other = setup.dir.path().join("other.key");
    HostWallet::generate(&mut rand::rngs::OsRng)
        .write_new(&other)
        .unwrap();
    let mut flags = setup.node_flags(&chain, &[]);
    let at = flags.iter().position(|f| f == "--wallet-key").unwrap();
    flags[at + 1] = other.to_str().unwrap().to_string();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refusal = common::serve_refused(setup.dir.path(), &flags, &[]);
    assert!(
        refusal.text().contains("is not registered"),
        "{}",
        refusal.text()
    );
    // Other keys: the verifier checks the development key's vk_id only if the
    // node's keys are those; fresh keys have another vk_id.
    let keys2 = setup.dir.path().join("keys2");
    run_cli(&["keygen", "--dir", keys2.to_str().unwrap()]);
    let mut flags = setup.node_flags(&chain, &[]);
    let at = flags.iter().position(|f| f == "--keys-dir").unwrap();
    flags[at + 1] = keys2.to_str().unwrap().to_string();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refusal = common::serve_refused(setup.dir.path(), &flags, &[]);
    let text = refusal.text();
    assert!(text.contains("vk_id") || text.contains("host_id"), "{text}");

    // The verifier's address given as the marketplace: a contract, but not
    // a marketplace, and the message says where the right address is.
    let mut flags = setup.node_flags(&chain, &[]);
    let at = flags.iter().position(|f| f == "--marketplace").unwrap();
    flags[at + 1] = format!("{:#x}", setup.verifier);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refusal = common::serve_refused(setup.dir.path(), &flags, &[]);
    let text = refusal.text();
    assert!(
        text.contains("does not answer verifierVkId()")
            && text.contains("not a FabstirMarketplace")
            && text.contains("chain deploy"),
        "{text}"
    );
    assert!(!text.contains("data: \"0x\""), "{text}");
    // Nothing listens at the RPC URL: the root cause and what to check.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut flags = setup.node_flags(&chain, &[]);
    let at = flags.iter().position(|f| f == "--rpc-url").unwrap();
    flags[at + 1] = closed.clone();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refusal = common::serve_refused(setup.dir.path(), &flags, &[]);
    let text = refusal.text();
    assert!(
        text.contains(&closed)
            && text.to_lowercase().contains("connection refused")
            && text.contains("check that --rpc-url"),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fabstir-node/fault-injection (the README's test command)"
)]
fn over_claims_are_refused_before_sending_and_by_the_contract() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 10); // pays for 10 tokens
    let node = setup.start_node(&chain, &[], &[]);
    prove(&node, &setup, job, 12);
    // 12 tokens exceed the deposit: refused, nothing recorded or sent.
    let (status, body) = checkpoint(&node, job, 12);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "chain_refused");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("deposit"));
    assert_eq!(setup.dir.count("SELECT COUNT(*) FROM chain_outbox", []), 0);
    // 8 is fine.
    let (status, body) = checkpoint(&node, job, 8);
    assert_eq!(status, 201, "{body}");
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(8));
    // Not increasing: refused by the node.
    let (status, body) = checkpoint(&node, job, 7);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "tokens_not_increasing");

    // And by the contract, if sent anyway: the host's own call replaying the
    // confirmed submission reverts with TokensNotIncreasing.
    let proof: Vec<u8> = setup
        .dir
        .db()
        .query_row("SELECT proof FROM chain_outbox", [], |r| r.get(0))
        .unwrap();
    let commitment: String = setup
        .dir
        .db()
        .query_row("SELECT commitment FROM chain_outbox", [], |r| r.get(0))
        .unwrap();
    let replay = IFabstirMarketplace::submitVerifiedProofCall {
        jobId: U256::from(job),
        cumulativeTokens: U256::from(8),
        commitment: commitment.parse().unwrap(),
        proof: proof.into(),
    };
    let refused = chain
        .evm()
        .call_with(setup.host, setup.marketplace, &replay.abi_encode(), None);
    let Err(CallError::Reverted(data)) = refused else {
        panic!("the replay was not refused with a revert: {refused:?}");
    };
    let decoded = IFabstirMarketplace::TokensNotIncreasing::abi_decode(&data).unwrap();
    assert_eq!(decoded.recorded, U256::from(8));

    // A submission the contract refuses after it was recorded (the client
    // completed the job meanwhile) is simulated, decoded and recorded as
    // failed; nothing is sent. The node aborts right after signing it, the
    // job is completed, and the restarted node simulates it again.
    node.kill9();
    let node = setup.start_node(&chain, &[], &[("FABSTIR_CHAIN_FAULT", "after_sign")]);
    let nonce_before = chain.nonce(setup.host);
    let _ = node.try_post(
        "/v1/checkpoints",
        &json!({ "job_id": job.to_string(), "tokens_processed": 10 }),
    );
    wait_exit(node, Duration::from_secs(30));
    assert_eq!(setup.outbox("pending"), 1, "{}", setup.dump());
    chain.send(
        setup.client,
        setup.marketplace,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(job),
        }
        .abi_encode(),
        U256::ZERO,
    );
    let node = setup.start_node(&chain, &[], &[]);
    setup.wait_outbox_done(Duration::from_secs(60));
    let reason: String = setup
        .dir
        .db()
        .query_row(
            "SELECT reason FROM chain_outbox WHERE state = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reason.starts_with("JobAlreadyCompleted"), "{reason}");
    assert_eq!(chain.nonce(setup.host), nonce_before, "nothing was sent");
    let (_, list) = node.get(&format!("/v1/checkpoints/{job}"));
    assert_eq!(list["checkpoints"][1]["status"], "rejected", "{list}");
    assert_eq!(
        list["checkpoints"][1]["onchain"]["state"], "failed",
        "{list}"
    );
    assert!(
        list["checkpoints"][1]["onchain"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("JobAlreadyCompleted"),
        "{list}"
    );
    assert_eq!(
        list["checkpoints"][0]["onchain"]["state"], "confirmed",
        "{list}"
    );
    assert!(node
        .metrics_text()
        .contains("fabstir_chain_reverts_total{reason=\"JobAlreadyCompleted\"} 1"));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(8));
    node.kill9();
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fabstir-node/fault-injection (the README's test command)"
)]
fn crashes_at_every_step_credit_each_checkpoint_exactly_once() {
    crashes_at_every_step_credit_each_checkpoint_exactly_once_in(Mode::Single);
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fabstir-node/fault-injection (the README's test command)"
)]
fn crashes_at_every_step_credit_each_checkpoint_exactly_once_with_batches() {
    crashes_at_every_step_credit_each_checkpoint_exactly_once_in(Mode::Batches);
}

fn crashes_at_every_step_credit_each_checkpoint_exactly_once_in(mode: Mode) {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, mode);
    // Two confirmations, so that a mined transaction still waits for its
    // receipt's depth (the `awaiting_receipt` point, and the real kill).
    let depth = ["--confirmations", "2"];
    let points = [
        "after_sign",
        "after_record",
        "after_broadcast",
        "awaiting_receipt",
    ];
    let node = setup.start_node(&chain, &depth, &[]);
    let mut jobs = Vec::new();
    for _ in 0..=points.len() {
        let job = setup.open_job(&chain, 50);
        prove(&node, &setup, job, 20);
        jobs.push(job);
    }
    node.kill9();
    for (point, job) in points.iter().zip(&jobs) {
        let node = setup.start_node(&chain, &depth, &[("FABSTIR_CHAIN_FAULT", point)]);
        // The node may abort before it answers: the checkpoint was recorded
        // before anything was signed, which the restart shows.
        let _ = node.try_post(
            "/v1/checkpoints",
            &json!({ "job_id": job.to_string(), "tokens_processed": 20 }),
        );
        wait_exit(node, Duration::from_secs(30));
        let node = setup.start_node(&chain, &depth, &[]);
        // Blocks keep coming on a real chain; here they are mined.
        let deadline = Instant::now() + Duration::from_secs(60);
        while setup.outbox("confirmed") < jobs.iter().position(|j| j == job).unwrap() as i64 + 1 {
            assert!(Instant::now() < deadline, "{point}: {}", setup.dump());
            chain.mine(1);
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            setup.job(&chain, *job).tokensUsed,
            U256::from(20),
            "{point}"
        );
        node.kill9();
    }
    // A real kill -9 while the transaction waits for its depth.
    let job = *jobs.last().unwrap();
    let node = setup.start_node(&chain, &["--confirmations", "3"], &[]);
    let (status, body) = checkpoint(&node, job, 20);
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.sent() == 0 {
        assert!(Instant::now() < deadline, "{}", setup.dump());
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill9();
    chain.mine(3);
    let node = setup.start_node(&chain, &["--confirmations", "3"], &[]);
    setup.wait_outbox_done(Duration::from_secs(60));
    for job in &jobs {
        assert_eq!(setup.job(&chain, *job).tokensUsed, U256::from(20));
    }
    assert_eq!(setup.outbox("confirmed"), jobs.len() as i64);
    assert_eq!(
        setup.earnings(&chain),
        U256::from(20 * PRICE * jobs.len() as u64)
    );
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}

#[test]
fn an_rpc_outage_and_a_restarted_chain_lose_nothing() {
    an_rpc_outage_and_a_restarted_chain_lose_nothing_in(Mode::Single);
}

#[test]
fn an_rpc_outage_and_a_restarted_chain_lose_nothing_with_batches() {
    an_rpc_outage_and_a_restarted_chain_lose_nothing_in(Mode::Batches);
}

fn an_rpc_outage_and_a_restarted_chain_lose_nothing_in(mode: Mode) {
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("anvil.json");
    let state_arg = state_file.to_str().unwrap().to_string();
    let mut chain = Chain::start(&["--dump-state", &state_arg]);
    let setup = setup_for(&chain, mode);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(&chain, &[], &[]);
    prove(&node, &setup, job, 30);
    let (status, _) = checkpoint(&node, job, 10);
    assert_eq!(status, 201);
    setup.wait_outbox_done(Duration::from_secs(60));

    // The chain goes away (its state dumped) ...
    chain.stop();
    // ... a checkpoint arrives meanwhile: accepted, kept pending.
    let (status, body) = checkpoint(&node, job, 30);
    assert_eq!(status, 201, "{body}");
    // 30 s without the chain: many failed passes, the backoff growing to
    // its 30 s ceiling (250 ms, 500 ms, 1 s, ... 16 s).
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(setup.outbox("pending"), 1, "{}", setup.dump());
    assert!(
        node.metric("fabstir_chain_rpc_errors_total{method=\"eth_blockNumber\"}")
            .unwrap_or(0.0)
            >= 2.0,
        "{}",
        node.metrics_text()
    );
    // The chain comes back with its state.
    chain.spawn(&["--load-state", &state_arg]);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(30));
    assert_eq!(setup.earnings(&chain), U256::from(30 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}

#[test]
fn a_reorg_that_drops_a_confirmed_submission_sends_it_again() {
    a_reorg_that_drops_a_confirmed_submission_sends_it_again_in(Mode::Single);
}

#[test]
fn a_reorg_that_drops_a_confirmed_submission_sends_it_again_with_batches() {
    a_reorg_that_drops_a_confirmed_submission_sends_it_again_in(Mode::Batches);
}

fn a_reorg_that_drops_a_confirmed_submission_sends_it_again_in(mode: Mode) {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, mode);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(&chain, &[], &[]);
    prove(&node, &setup, job, 25);
    let snapshot = chain.evm().snapshot();
    let (status, _) = checkpoint(&node, job, 25);
    assert_eq!(status, 201);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(25));

    // The block with the submission is dropped: the chain forgets it.
    assert!(chain.evm().revert(snapshot));
    chain.mine(2);
    // The node notices (the reorg counter) and sends it again (it may well
    // be back before this test looks).
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.job(&chain, job).tokensUsed != U256::from(25) {
        assert!(Instant::now() < deadline, "{}", setup.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    setup.wait_outbox_done(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.metric("fabstir_chain_reorgs_total").unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the reorg was not noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(setup.earnings(&chain), U256::from(25 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}

#[test]
fn a_burst_of_100_checkpoints_from_one_wallet_confirms_gapless() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let node = setup.start_node(&chain, &[], &[]);
    let jobs: Vec<u64> = (0..100).map(|_| setup.open_job(&chain, 20)).collect();
    for job in &jobs {
        let (status, body) = node.post("/v1/results", &setup.result(*job, 7));
        assert_eq!(status, 202, "{body}");
    }
    for job in &jobs {
        node.wait_proved(&job.to_string(), Duration::from_secs(120));
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in jobs.chunks(13) {
            let node = &node;
            scope.spawn(move || {
                for job in chunk {
                    let (status, body) = checkpoint(node, *job, 7);
                    assert_eq!(status, 201, "{body}");
                }
            });
        }
    });
    setup.wait_outbox_done(Duration::from_secs(120));
    let elapsed = started.elapsed();
    assert_eq!(setup.outbox("confirmed"), 100, "{}", setup.dump());
    setup.assert_one_transaction_per_submission(&chain);
    assert_eq!(setup.earnings(&chain), U256::from(7 * PRICE * 100));
    println!(
        "100 verified submissions from one wallet confirmed in {:.1} s",
        elapsed.as_secs_f64()
    );
    node.kill9();
}

#[test]
fn a_stuck_transaction_gets_a_bounded_number_of_fee_bumps() {
    a_stuck_transaction_gets_a_bounded_number_of_fee_bumps_in(Mode::Single);
}

#[test]
fn a_stuck_transaction_gets_a_bounded_number_of_fee_bumps_with_batches() {
    a_stuck_transaction_gets_a_bounded_number_of_fee_bumps_in(Mode::Batches);
}

fn a_stuck_transaction_gets_a_bounded_number_of_fee_bumps_in(mode: Mode) {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, mode);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(
        &chain,
        &["--stuck-after-ms", "400", "--max-fee-bumps", "2"],
        &[],
    );
    prove(&node, &setup, job, 15);
    // Blocks stop: the submission waits in the mempool.
    chain.evm().set_automine(false);
    let (status, body) = checkpoint(&node, job, 15);
    assert_eq!(status, 201, "{body}");
    let bumps = || {
        setup.dir.count(
            &format!("SELECT COALESCE(MAX(bumps), 0) FROM {}", setup.tx_table()),
            [],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while bumps() < 2 {
        assert!(Instant::now() < deadline, "{}", setup.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Bounded: no third bump however long it waits (watched for 1.5 s,
    // three times the stuck period).
    let watch = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch {
        assert_eq!(bumps(), 2, "{}", setup.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    let hashes: String = setup
        .dir
        .db()
        .query_row(
            &format!("SELECT tx_hashes FROM {}", setup.tx_table()),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&hashes).unwrap().len(),
        3
    );
    assert_eq!(node.metric("fabstir_chain_fee_bumps_total"), Some(2.0));
    // Blocks resume: exactly one of the three transactions (one nonce) is
    // mined, and the submission is credited once.
    chain.evm().set_automine(true);
    chain.mine(1);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.outbox("confirmed"), 1, "{}", setup.dump());
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(15));
    assert_eq!(setup.earnings(&chain), U256::from(15 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}

#[test]
fn checkpoints_go_out_in_batches_each_credited_once_and_a_skip_says_why() {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, Mode::Batches);
    let [a, b, c, d, e] = [0; 5].map(|_| setup.open_job(&chain, 50));
    // A batch goes out when 4 checkpoints wait, or after 5 s.
    let node = setup.start_node(&chain, &["--batch-wait-ms", "5000"], &[]);
    for (job, tokens) in [(a, 40), (b, 20), (c, 20), (d, 20), (e, 20)] {
        prove(&node, &setup, job, tokens);
    }
    let (_, health) = node.get("/health");
    assert_eq!(
        health["chain"]["batches"]["sizes"],
        json!([1, 4]),
        "{health}"
    );
    for (job, tokens) in [(a, 10), (b, 20)] {
        let (status, body) = checkpoint(&node, job, tokens);
        assert_eq!(status, 201, "{body}");
    }
    // Job b is completed by its client while its checkpoint waits for a batch.
    let receipt = chain.send(
        setup.client,
        setup.marketplace,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(b),
        }
        .abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.status());
    assert_eq!(setup.outbox("pending"), 2, "{}", setup.dump());
    // Two more fill the batch: [a at 10, b at 20, c at 20, a at 40].
    for (job, tokens) in [(c, 20), (a, 40)] {
        let (status, body) = checkpoint(&node, job, tokens);
        assert_eq!(status, 201, "{body}");
    }
    // A batch that does not fill goes out after the wait, padded: [d, e].
    for job in [d, e] {
        let (status, body) = checkpoint(&node, job, 20);
        assert_eq!(status, 201, "{body}");
    }
    setup.wait_outbox_done(Duration::from_secs(90));
    let count = |sql: &str| setup.dir.count(sql, []);
    assert_eq!(
        count("SELECT COUNT(*) FROM chain_batches WHERE state = 'confirmed'"),
        2,
        "{}",
        setup.dump()
    );
    assert_eq!(
        count("SELECT CAST(GROUP_CONCAT(entries, '') AS INTEGER) FROM (SELECT entries FROM chain_batches ORDER BY id)"),
        42,
        "4 then 2 entries: {}",
        setup.dump()
    );
    for (job, tokens) in [(a, 40), (b, 0), (c, 20), (d, 20), (e, 20)] {
        assert_eq!(
            setup.job(&chain, job).tokensUsed,
            U256::from(tokens),
            "job {job}"
        );
    }
    assert_eq!(setup.earnings(&chain), U256::from(100 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);

    // The skipped checkpoint says why, and claims nothing.
    let (status, listed) = node.get(&format!("/v1/checkpoints/{b}"));
    assert_eq!(status, 200, "{listed}");
    let skipped = &listed["checkpoints"][0];
    assert_eq!(skipped["status"], "rejected", "{skipped}");
    assert_eq!(skipped["onchain"]["state"], "failed", "{skipped}");
    assert_eq!(
        skipped["onchain"]["reason"], "skipped by the marketplace: JobCompleted",
        "{skipped}"
    );
    assert_eq!(skipped["onchain"]["batch"]["index"], 1, "{skipped}");
    assert_documented(
        &skipped["onchain"],
        "/components/schemas/Checkpoint/properties/onchain",
    );
    // A credited one points at its batch, whose proof a client can fetch.
    let (_, listed) = node.get(&format!("/v1/checkpoints/{a}"));
    let credited = &listed["checkpoints"][1];
    assert_eq!(credited["onchain"]["state"], "confirmed", "{credited}");
    let batch_id = credited["onchain"]["batch"]["id"].as_i64().unwrap();
    let (status, batch) = node.get(&format!("/v1/batches/{batch_id}"));
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["size"], 4, "{batch}");
    assert_eq!(batch["checkpoints"].as_array().unwrap().len(), 4, "{batch}");
    assert_eq!(batch["checkpoints"][3]["cumulative_tokens"], 40, "{batch}");
    let proof = batch["proof"].as_str().unwrap();
    assert!(
        proof.starts_with(&format!("0x{}", hex::encode(b"FZK-BP1"))),
        "{proof}"
    );
    assert_documented(&batch, "/components/schemas/Batch");
    // The client of job a checks its checkpoint at 40 inside that batch.
    let check = |tokens: u64| {
        node.post(
            "/v1/verify",
            &json!({ "result": setup.result(a, 40), "batch": proof, "tokens": tokens }),
        )
    };
    let (status, verdict) = check(40);
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["entry"], 3, "{verdict}");
    let (_, verdict) = check(30);
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["reason_code"], "not_in_batch", "{verdict}");
    let (status, missing) = node.get("/v1/batches/99");
    assert_eq!(status, 404, "{missing}");

    // Metrics: two batches of 6 checkpoints, the gas each cost.
    assert_eq!(node.metric("fabstir_chain_batches_total"), Some(2.0));
    assert_eq!(
        node.metric("fabstir_chain_batch_checkpoints_total"),
        Some(6.0)
    );
    let gas = node.metric("fabstir_chain_batch_gas_total").unwrap();
    let per = node
        .metric("fabstir_chain_batch_gas_per_checkpoint")
        .unwrap();
    assert!(per > 0.0 && per < gas, "{per} of {gas}");
    let (_, health) = node.get("/health");
    assert_eq!(
        health["chain"]["outbox"]["batches"]["confirmed"], 2,
        "{health}"
    );
    node.kill9();
}

/// A job with a proved result whose checkpoint at 20 tokens went into a
/// batch; the node aborted at the fault point `point` of that batch's
/// sending (and is gone). Returns the job.
fn batch_left_at(chain: &Chain, setup: &Setup, point: &str) -> u64 {
    let job = setup.open_job(chain, 50);
    let node = setup.start_node(chain, &[], &[]);
    prove(&node, setup, job, 20);
    node.kill9();
    let node = setup.start_node(chain, &[], &[("FABSTIR_CHAIN_FAULT", point)]);
    let _ = node.try_post(
        "/v1/checkpoints",
        &json!({ "job_id": job.to_string(), "tokens_processed": 20 }),
    );
    wait_exit(node, Duration::from_secs(30));
    job
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fabstir-node/fault-injection (the README's test command)"
)]
fn a_batch_whose_nonce_another_transaction_took_goes_into_a_new_batch() {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, Mode::Batches);
    // The batch is proved, signed and recorded; the node dies before it
    // broadcasts it.
    let job = batch_left_at(&chain, &setup, "after_record");
    assert_eq!(setup.sent(), 1, "{}", setup.dump());
    // Something else sends from the host wallet with that nonce.
    let wallet = HostWallet::load(&setup.wallet_file).unwrap();
    assert!(chain.evm().send_self_transfer(wallet.signer()).status());
    // The node finds the nonce used and its transaction nowhere: the job's
    // count is not paid, so the checkpoint goes into a new batch.
    let node = setup.start_node(&chain, &[], &[]);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(20));
    assert_eq!(setup.earnings(&chain), U256::from(20 * PRICE));
    let states = setup.dir.count(
        "SELECT COUNT(*) FROM chain_batches WHERE (id = 1 AND state = 'failed' AND reason LIKE 'nonce used%')
            OR (id = 2 AND state = 'confirmed')",
        [],
    );
    assert_eq!(states, 2, "{}", setup.dump());
    assert_eq!(setup.outbox("confirmed"), 1, "{}", setup.dump());
    let (_, listed) = node.get(&format!("/v1/checkpoints/{job}"));
    assert_eq!(
        listed["checkpoints"][0]["onchain"]["batch"]["id"], 2,
        "{listed}"
    );
    // Its own transactions took nonces 1 and 2 (nonce 1 went to the other
    // transaction, which the node did not record).
    assert_eq!(chain.nonce(setup.host), 3);
    node.kill9();
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fabstir-node/fault-injection (the README's test command)"
)]
fn a_batch_proved_under_the_previous_host_key_is_proved_again_after_rotate_host() {
    let chain = Chain::start(&[]);
    let setup = setup_for(&chain, Mode::Batches);
    // The batch is proved under the old key and signed; the node dies
    // before recording the transaction (the batch stays pending).
    let job = batch_left_at(&chain, &setup, "after_sign");
    let pending = |state: &str| {
        setup.dir.count(
            "SELECT COUNT(*) FROM chain_batches WHERE state = ?1",
            [state],
        )
    };
    assert_eq!(pending("pending"), 1, "{}", setup.dump());
    // Meanwhile the host key is rotated, on-chain too (rotateHost).
    let keys = setup.keys.to_str().unwrap();
    let (code, rotated) = try_cli(&[
        "keys",
        "rotate",
        "--dir",
        keys,
        "--new-host-key",
        "--rpc-url",
        &chain.url,
        "--wallet-key",
        setup.wallet_file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{rotated}");
    // Restarted with the new key: the old batch would revert
    // (InvalidBatchProof), so its checkpoint is proved again under the new
    // key and credited once.
    let node = setup.start_node(&chain, &[], &[]);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(20));
    assert_eq!(setup.earnings(&chain), U256::from(20 * PRICE));
    let first = setup.dir.count(
        "SELECT COUNT(*) FROM chain_batches WHERE id = 1 AND state = 'failed' AND nonce IS NULL
            AND reason LIKE 'proved under a previous host key%'",
        [],
    );
    assert_eq!(first, 1, "{}", setup.dump());
    assert_eq!(pending("confirmed"), 1, "{}", setup.dump());
    assert_eq!(
        node.metric("fabstir_chain_reverts_total{reason=\"InvalidBatchProof\"}"),
        None
    );
    node.kill9();
}

#[test]
fn chain_deploy_generates_batch_verifiers_from_a_ceremony_key_directory() {
    let chain = Chain::start(&[]);
    let dir = DataDir::new();
    // A ceremony file with 2^9 rows (batches of 1 to 4 need 2^7 to 2^9),
    // and keys made from it (the key directory stores 2^7 of them).
    let (srs, pin) = common::ceremony_srs_at(dir.path(), 9);
    let keys = dir.path().join("keys");
    let keys = keys.to_str().unwrap();
    run_cli(&[
        "keygen",
        "--keys-dir",
        keys,
        "--srs",
        &srs,
        "--srs-sha256",
        &pin,
    ]);
    let contracts = common::repo_root().join("contracts");
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "chain",
            "deploy",
            "--rpc-url",
            &chain.url,
            "--contracts",
            contracts.to_str().unwrap(),
            "--batch-sizes",
            "1,4",
            "--keys-dir",
            keys,
        ];
        args.extend(extra);
        try_cli(&args)
    };
    // Without the ceremony file the larger parameters are not at hand.
    let (code, refused) = deploy(&[]);
    assert_eq!(code, Some(2), "{refused}");
    assert_eq!(refused["code"], "batch_srs", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("--batch-srs"),
        "{refused}"
    );
    // With it, each batch verifier checks the key the node builds from the
    // same file (what its start-up check compares).
    let (code, deployed) = deploy(&["--batch-srs", &srs]);
    assert_eq!(code, Some(0), "{deployed}");
    let pin = fabstir_zk::Digest32::parse("pin", &pin).unwrap();
    let parameters =
        std::sync::Arc::new(fabstir_zk::Srs::load_ceremony_at(Path::new(&srs), &pin, 9).unwrap());
    for n in [1usize, 4] {
        let address: Address = deployed["batch_verifiers"][n.to_string()]
            .as_str()
            .unwrap_or_else(|| panic!("{deployed}"))
            .parse()
            .unwrap();
        let on_chain = chain.call(
            address,
            fabstir_node::chain::contract::IFabstirBatchVerifier::VK_IDCall {},
        );
        let size = fabstir_zk::BatchSize::new(n).unwrap();
        let expected = fabstir_zk::BatchVerifyingKey::derive(parameters.clone(), size).unwrap();
        assert_eq!(on_chain.0, expected.id().0, "batch of {n}");
        let development = fabstir_zk::BatchVerifyingKey::derive(
            std::sync::Arc::new(fabstir_zk::Srs::insecure_dev_at(size.k()).unwrap()),
            size,
        )
        .unwrap();
        assert_ne!(on_chain.0, development.id().0, "batch of {n}");
    }
}

/// Polls `/health` until `accept` holds; panics with the last answer.
fn wait_health(node: &Node, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = node.get("/health");
        if accept(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_host_key_rotates_on_chain_and_the_node_follows() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(&chain, &["--health-interval-ms", "200"], &[]);
    prove(&node, &setup, job, 50);
    let old_host = node.startup["host_id"].as_str().unwrap().to_string();
    let health = wait_health(&node, "chain_host_id ok", |h| {
        h["checks"]["chain_host_id"]["ok"] == true
    });
    assert_eq!(health["status"], "ok", "{health}");
    assert_documented(
        &health["checks"],
        "/components/schemas/Health/properties/checks",
    );
    let keys = setup.keys.to_str().unwrap();
    let manifest_host = || {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(setup.keys.join("keys.json")).unwrap()).unwrap();
        manifest["host_id"].as_str().unwrap().to_string()
    };
    let registered = || {
        let id = setup.registered_host_id(&chain);
        format!("0x{}", hex::encode(id.to_be_bytes::<32>()))
    };

    // `keys rotate --new-host-key` knows (from the registration `serve` and
    // `chain register` recorded) that a marketplace has this host_id:
    // without --rpc-url it refuses, says how, and changes nothing.
    let (code, refused) = try_cli(&["keys", "rotate", "--dir", keys, "--new-host-key"]);
    assert_eq!(code, Some(2), "{refused}");
    assert_eq!(refused["code"], "registered_on_chain", "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("give --rpc-url") && message.contains("Nothing was changed"),
        "{message}"
    );
    assert_eq!(manifest_host(), old_host);

    // Forced, the directory gets a new host_id that the chain does not
    // know: /health names the problem before any reload.
    let (code, rotated) = try_cli(&["keys", "rotate", "--dir", keys, "--new-host-key", "--force"]);
    assert_eq!(code, Some(0), "{rotated}");
    let new_host = rotated["host_id"].as_str().unwrap().to_string();
    assert_ne!(new_host, old_host);
    let health = wait_health(&node, "chain_host_id fails", |h| {
        h["checks"]["chain_host_id"]["ok"] == false
    });
    assert_eq!(health["status"], "degraded", "{health}");
    let detail = health["checks"]["chain_host_id"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains(&new_host)
            && detail.contains(&old_host)
            && detail.contains("chain register"),
        "{detail}"
    );
    assert!(node
        .metrics_text()
        .contains("fabstir_health_ok{check=\"chain_host_id\"} 0"));
    // A reload is refused with what to do; the old keys stay in use, and a
    // checkpoint is still credited under them.
    let (status, body) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "key_reload_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("chain register") && message.contains(&new_host),
        "{message}"
    );
    let (status, body) = checkpoint(&node, job, 20);
    assert_eq!(status, 201, "{body}");
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(20));

    // `chain register` with the new keys and the registered wallet moves the
    // wallet on-chain (rotateHost, with a proof of the new key).
    let market = format!("{:#x}", setup.marketplace);
    let wallet = setup.wallet_file.to_str().unwrap();
    let register = |keys: &str, wallet: &str| {
        try_cli(&[
            "chain",
            "register",
            "--rpc-url",
            &chain.url,
            "--marketplace",
            &market,
            "--keys",
            keys,
            "--wallet-key",
            wallet,
        ])
    };
    let (code, moved) = register(keys, wallet);
    assert_eq!(code, Some(0), "{moved}");
    assert_eq!(moved["rotated_from"], old_host.as_str(), "{moved}");
    assert_eq!(registered(), new_host);
    // The node follows: /health says to reload, the reload installs the new
    // key and clears the check.
    let health = wait_health(&node, "chain_host_id says reload", |h| {
        h["checks"]["chain_host_id"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("until the node reloads its keys"))
    });
    assert_eq!(health["status"], "degraded", "{health}");
    let (status, body) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    wait_health(&node, "chain_host_id ok after the rotation", |h| {
        h["checks"]["chain_host_id"]["ok"] == true && h["status"] == "ok"
    });
    let (_, ezkl) = node.get("/health/ezkl");
    assert_eq!(ezkl["host_id"], new_host.as_str(), "{ezkl}");
    // The next checkpoint is proved under the new key and credited.
    let (status, body) = checkpoint(&node, job, 30);
    assert_eq!(status, 201, "{body}");
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(30));

    // The retired host_id cannot be registered by anyone: HostIdTaken,
    // decoded from the revert.
    let retired = std::fs::read_dir(setup.keys.join("retired"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let other = setup.dir.path().join("other.key");
    let other_wallet = HostWallet::generate(&mut rand::rngs::OsRng);
    other_wallet.write_new(&other).unwrap();
    // 1 ETH.
    chain.evm().set_balance(
        Address::from(other_wallet.address()),
        U256::from(10u64).pow(U256::from(18u64)),
    );
    let (code, refused) = register(retired.to_str().unwrap(), other.to_str().unwrap());
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["code"], "reverted", "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("HostIdTaken") && message.contains("retired"),
        "{message}"
    );

    // In one step: `keys rotate --new-host-key --rpc-url` rotates the
    // directory and moves the wallet; the node follows on reload.
    let (code, rotated) = try_cli(&[
        "keys",
        "rotate",
        "--dir",
        keys,
        "--new-host-key",
        "--rpc-url",
        &chain.url,
        "--wallet-key",
        wallet,
    ]);
    assert_eq!(code, Some(0), "{rotated}");
    let third_host = rotated["host_id"].as_str().unwrap().to_string();
    assert_eq!(
        rotated["on_chain_transactions"].as_array().map(Vec::len),
        Some(1),
        "{rotated}"
    );
    assert_eq!(registered(), third_host);
    let (status, body) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    let (_, ezkl) = node.get("/health/ezkl");
    assert_eq!(ezkl["host_id"], third_host.as_str(), "{ezkl}");
    let (status, body) = checkpoint(&node, job, 40);
    assert_eq!(status, 201, "{body}");
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(40));
    assert_eq!(setup.earnings(&chain), U256::from(40 * PRICE));
    node.kill9();
}

#[test]
fn a_submission_waiting_for_its_confirmations_is_logged_and_shown() {
    // A chain that mines a block a second, as the README's.
    let chain = Chain::start(&["--block-time", "1"]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 50);
    // Four blocks deep: the submission waits about three seconds.
    let mut node = setup.start_node(
        &chain,
        &["--confirmations", "4"],
        &[("FABSTIR_LOG", "info")],
    );
    prove(&node, &setup, job, 10);
    let (status, body) = checkpoint(&node, job, 10);
    assert_eq!(status, 201, "{body}");
    assert!(
        matches!(body["onchain"]["state"].as_str(), Some("pending" | "sent")),
        "{body}"
    );
    // While it waits: `sent` with its transaction, and /health counts it
    // with the age of the oldest open entry.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut seen_sent, mut open_outbox) = (None, None);
    let confirmed = loop {
        let (_, list) = node.get(&format!("/v1/checkpoints/{job}"));
        let onchain = list["checkpoints"][0]["onchain"].clone();
        if onchain["state"] == "sent" && seen_sent.is_none() {
            seen_sent = Some(onchain.clone());
        }
        if open_outbox.is_none() {
            let (_, health) = node.get("/health");
            let outbox = health["chain"]["outbox"].clone();
            if outbox["sent"] == 1 {
                open_outbox = Some(outbox);
            }
        }
        if onchain["state"] == "confirmed" {
            break onchain;
        }
        assert!(Instant::now() < deadline, "{list}\n{}", setup.dump());
        std::thread::sleep(Duration::from_millis(50));
    };
    let sent = seen_sent.expect("the submission was seen waiting as sent");
    assert!(
        sent["tx_hash"].as_str().unwrap().starts_with("0x"),
        "{sent}"
    );
    assert_eq!(sent["block_number"], Value::Null, "{sent}");
    let outbox = open_outbox.expect("/health counted the submission as sent");
    assert!(outbox["oldest_open_age_ms"].as_i64().is_some(), "{outbox}");
    assert_eq!(outbox["confirmed"], 0, "{outbox}");
    // Confirmed four blocks deep: its block and three more exist.
    let block = confirmed["block_number"].as_u64().unwrap();
    let head = chain.evm().block_number();
    assert!(head >= block + 3, "block {block}, head {head}");
    assert_eq!(confirmed["tx_hash"], sent["tx_hash"]);
    assert!(confirmed["confirmed_at_ms"].as_i64().is_some());
    // The log said what it waited for, once.
    let stderr = node.stderr_text();
    let waits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("waiting for its confirmation depth"))
        .collect();
    assert_eq!(waits.len(), 1, "{stderr}");
    assert!(
        waits[0].contains(&format!("block={block}"))
            && waits[0].contains("confirmations=4")
            && waits[0].contains(&format!("confirmed_at_block={}", block + 3)),
        "{}",
        waits[0]
    );
    node.kill9();
}
