//! The EVM chain client against a real anvil and the real contracts
//! (`contracts/src/FabstirVerifier.sol`, `FabstirMarketplace.sol`), deployed
//! by `fabstir-node chain deploy`: the whole flow, over-claims, crashes at
//! every step (an abort at a named point, and a real `kill -9`), an RPC
//! outage with anvil restarted from its dumped state, a reorg, and a burst
//! of 100 checkpoints. After each, every checkpoint is credited exactly once:
//! the contract's `tokensUsed` and the host's `earnings` are read back with
//! `eth_call`, and the wallet's nonce counts exactly one transaction per
//! confirmed submission.
//!
//! Needs anvil and solcjs from `npm ci --prefix contracts` (and Node.js).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::sol_types::{SolCall, SolError as _};
use common::{binary, DataDir, Node};
use fabstir_node::chain::contract::IFabstirMarketplace;
use fabstir_node::chain::HostWallet;
use serde_json::{json, Value};

const PRICE: u64 = 1_000_000_000; // wei per token
const MODEL: &str = "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf";

/// JSON-RPC over HTTP; the result or the error object.
fn try_rpc(url: &str, method: &str, params: Value) -> Result<Value, Value> {
    let reply: Value = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .map_err(|e| json!(e.to_string()))?
        .json()
        .map_err(|e| json!(e.to_string()))?;
    match reply.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(reply["result"].clone()),
    }
}

fn rpc(url: &str, method: &str, params: Value) -> Value {
    try_rpc(url, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn quantity(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// anvil on a fixed port (so it can be restarted at the same URL), with
/// extra flags; killed on drop.
struct Chain {
    child: Option<Child>,
    port: u16,
    url: String,
}

impl Chain {
    fn start(flags: &[&str]) -> Self {
        let port = free_port();
        let mut chain = Chain {
            child: None,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        chain.spawn(flags);
        chain
    }

    fn spawn(&mut self, flags: &[&str]) {
        let child = Command::new(common::evm::tool_path("anvil"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn anvil");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while try_rpc(&self.url, "eth_chainId", json!([])).is_err() {
            assert!(Instant::now() < deadline, "anvil did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops anvil with SIGTERM (so it dumps its state) and waits.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = child.wait();
        }
    }

    fn accounts(&self) -> Vec<String> {
        rpc(&self.url, "eth_accounts", json!([]))
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// Sends a transaction from an unlocked account and returns its receipt,
    /// polled until the transaction is mined (anvil automines, but may answer
    /// `eth_sendTransaction` before the block holding it is sealed).
    fn send(&self, from: &str, to: Address, data: Vec<u8>, value: U256) -> Value {
        let hash = rpc(
            &self.url,
            "eth_sendTransaction",
            json!([{ "from": from, "to": format!("{to:#x}"), "data": format!("0x{}", hex::encode(data)), "value": format!("{value:#x}") }]),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let receipt = rpc(&self.url, "eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(
                Instant::now() < deadline,
                "no receipt for {hash} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn call<C: SolCall>(&self, to: Address, call: C) -> C::Return {
        let out = rpc(
            &self.url,
            "eth_call",
            json!([{ "to": format!("{to:#x}"), "data": format!("0x{}", hex::encode(call.abi_encode())) }, "latest"]),
        );
        let bytes = hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap();
        C::abi_decode_returns(&bytes).unwrap()
    }

    fn nonce(&self, address: Address) -> u64 {
        quantity(&rpc(
            &self.url,
            "eth_getTransactionCount",
            json!([format!("{address:#x}"), "latest"]),
        ))
    }

    fn mine(&self, blocks: u64) {
        rpc(&self.url, "anvil_mine", json!([format!("{blocks:#x}")]));
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The contracts deployed, and a host (keys, wallet) registered.
struct Setup {
    dir: DataDir,
    marketplace: Address,
    host: Address,
    client: String,
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

/// `chain deploy`, `keygen`, a funded wallet, `chain register`.
fn setup(chain: &Chain) -> Setup {
    let contracts = common::repo_root().join("contracts");
    let deployed = run_cli(&[
        "chain",
        "deploy",
        "--rpc-url",
        &chain.url,
        "--contracts",
        contracts.to_str().unwrap(),
    ]);
    let marketplace: Address = deployed["marketplace"].as_str().unwrap().parse().unwrap();
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    run_cli(&["keygen", "--dir", keys.to_str().unwrap()]);
    let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
    let wallet_file = dir.path().join("wallet.key");
    wallet.write_new(&wallet_file).unwrap();
    let host = Address::from(wallet.address());
    rpc(
        &chain.url,
        "anvil_setBalance",
        json!([format!("{host:#x}"), "0x56bc75e2d63100000"]),
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
    let client = chain.accounts()[1].clone();
    Setup {
        dir,
        marketplace,
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
            &self.client,
            self.marketplace,
            call.abi_encode(),
            U256::from(tokens * PRICE),
        );
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        // jobIds count up from 1: the job is the latest SessionJobCreated.
        let topic = &receipt["logs"][0]["topics"][1];
        quantity(topic)
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

    fn earnings(&self, chain: &Chain) -> U256 {
        chain.call(
            self.marketplace,
            IFabstirMarketplace::earningsCall { host: self.host },
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
                "SELECT COUNT(*) FROM chain_outbox WHERE state IN ('pending', 'sent')",
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
        rows.join("\n")
    }

    /// Every confirmed submission's transaction took one nonce of the wallet
    /// (after its registration): no submission was sent twice.
    fn assert_one_transaction_per_submission(&self, chain: &Chain) {
        let confirmed = self.outbox("confirmed") as u64;
        let failed_mined = self.dir.count(
            "SELECT COUNT(*) FROM chain_outbox WHERE state = 'failed' AND nonce IS NOT NULL",
            [],
        ) as u64;
        assert_eq!(
            chain.nonce(self.host),
            1 + confirmed + failed_mined,
            "wallet nonce vs submissions:\n{}",
            self.dump()
        );
        let db = self.dir.db();
        let mut stmt = db
            .prepare("SELECT nonce FROM chain_outbox WHERE nonce IS NOT NULL ORDER BY nonce")
            .unwrap();
        let nonces: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<i64> = (1..=nonces.len() as i64).collect();
        assert_eq!(nonces, expected, "nonces are gapless and unique");
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
        let receipt = rpc(&chain.url, "eth_getTransactionReceipt", json!([hash]));
        assert_eq!(receipt["status"], "0x1");
        println!(
            "submitVerifiedProof gas used: {}",
            quantity(&receipt["gasUsed"])
        );
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
    let balance = |who: &str| {
        U256::from_str_radix(
            rpc(&chain.url, "eth_getBalance", json!([who, "latest"]))
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    };
    let market = format!("{:#x}", setup.marketplace);
    let receipt = chain.send(
        &setup.client,
        setup.marketplace,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(job),
        }
        .abi_encode(),
        U256::ZERO,
    );
    assert_eq!(receipt["status"], "0x1");
    assert!(setup.job(&chain, job).completed);
    let client: Address = setup.client.parse().unwrap();
    let refund: U256 = chain.call(
        setup.marketplace,
        IFabstirMarketplace::earningsCall { host: client },
    );
    assert_eq!(refund, U256::from(88 * PRICE));
    let receipt = chain.send(
        &setup.client,
        setup.marketplace,
        IFabstirMarketplace::withdrawCall {}.abi_encode(),
        U256::ZERO,
    );
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(balance(&market), U256::from(12 * PRICE));
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
}

#[test]
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
    let error = try_rpc(
        &chain.url,
        "eth_call",
        json!([{ "from": format!("{:#x}", setup.host), "to": format!("{:#x}", setup.marketplace), "data": format!("0x{}", hex::encode(replay.abi_encode())) }, "latest"]),
    )
    .unwrap_err();
    let data = hex::decode(error["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
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
        &setup.client,
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
    assert!(node
        .metrics_text()
        .contains("fabstir_chain_reverts_total{reason=\"JobAlreadyCompleted\"} 1"));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(8));
    node.kill9();
}

#[test]
fn crashes_at_every_step_credit_each_checkpoint_exactly_once() {
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
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
    while setup.outbox("sent") == 0 {
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
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("anvil.json");
    let state_arg = state_file.to_str().unwrap().to_string();
    let mut chain = Chain::start(&["--dump-state", &state_arg]);
    let setup = setup(&chain);
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
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(&chain, &[], &[]);
    prove(&node, &setup, job, 25);
    let snapshot = rpc(&chain.url, "evm_snapshot", json!([]));
    let (status, _) = checkpoint(&node, job, 25);
    assert_eq!(status, 201);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(25));

    // The block with the submission is dropped: the chain forgets it.
    assert_eq!(rpc(&chain.url, "evm_revert", json!([snapshot])), true);
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
    let chain = Chain::start(&[]);
    let setup = setup(&chain);
    let job = setup.open_job(&chain, 50);
    let node = setup.start_node(
        &chain,
        &["--stuck-after-ms", "400", "--max-fee-bumps", "2"],
        &[],
    );
    prove(&node, &setup, job, 15);
    // Blocks stop: the submission waits in the mempool.
    rpc(&chain.url, "evm_setAutomine", json!([false]));
    let (status, body) = checkpoint(&node, job, 15);
    assert_eq!(status, 201, "{body}");
    let bumps = || {
        setup
            .dir
            .count("SELECT COALESCE(MAX(bumps), 0) FROM chain_outbox", [])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while bumps() < 2 {
        assert!(Instant::now() < deadline, "{}", setup.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Bounded: no third bump however long it waits.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(bumps(), 2, "{}", setup.dump());
    let hashes: String = setup
        .dir
        .db()
        .query_row("SELECT tx_hashes FROM chain_outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&hashes).unwrap().len(),
        3
    );
    assert_eq!(node.metric("fabstir_chain_fee_bumps_total"), Some(2.0));
    // Blocks resume: exactly one of the three transactions (one nonce) is
    // mined, and the submission is credited once.
    rpc(&chain.url, "evm_setAutomine", json!([true]));
    chain.mine(1);
    setup.wait_outbox_done(Duration::from_secs(60));
    assert_eq!(setup.outbox("confirmed"), 1, "{}", setup.dump());
    assert_eq!(setup.job(&chain, job).tokensUsed, U256::from(15));
    assert_eq!(setup.earnings(&chain), U256::from(15 * PRICE));
    setup.assert_one_transaction_per_submission(&chain);
    node.kill9();
}
