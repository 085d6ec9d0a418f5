//! The submission worker's state machine against a mocked transport: a fake
//! chain that answers the JSON-RPC calls the worker makes, from state the
//! test controls (the head, the mined nonce, receipts, the mempool, outages,
//! what a simulation reverts with). Each test drives single passes and
//! checks the outbox table after each. The same behaviour on a real chain
//! (anvil) is in the `chain_anvil` integration tests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::eip2718::Decodable2718 as _;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{Provider as _, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::sol_types::{SolCall as _, SolError as _};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use alloy_json_rpc::{
    ErrorPayload, RequestPacket, Response, ResponsePacket, ResponsePayload, SerializedRequest,
};
use fabstir_zk::JobId;
use serde_json::{json, Value};

use super::connection::{EvmError, EvmSettings, NodeKeys};
use super::EvmChain;
use crate::chain::contract::IFabstirMarketplace;
use crate::chain::HostWallet;
use crate::metrics::Metrics;
use crate::store::checkpoints::{self, CheckpointStatus, NewCheckpoint};
use crate::store::outbox::{self, NewEntry, OutboxEntry, OutboxState};
use crate::store::Store;

const VK_ID: [u8; 32] = [7; 32];
const HOST_ID: [u8; 32] = [9; 32];
const CHAIN_ID: u64 = 31337;
const COMMITMENT: &str = "0x00000000000000000000000000000000000000000000000000000000000000aa";

/// A mined transaction as the fake chain serves its receipt.
#[derive(Clone)]
struct Mined {
    block: u64,
    block_hash: B256,
    success: bool,
}

/// The fake chain's state.
struct State {
    head: u64,
    /// The wallet's mined nonce (`eth_getTransactionCount`, latest).
    mined_nonce: u64,
    receipts: HashMap<B256, Mined>,
    /// Transactions in the mempool (`eth_getTransactionByHash`), raw.
    mempool: HashMap<B256, Vec<u8>>,
    /// Every raw transaction broadcast, in order.
    broadcasts: Vec<Vec<u8>>,
    /// What simulating `submitVerifiedProof` reverts with (none: succeeds).
    revert: Option<Vec<u8>>,
    /// What `commitmentOf` answers.
    commitment_of: U256,
    /// Methods that fail with a transport error (no answer) while listed.
    down: HashSet<&'static str>,
    /// Every method called, in order.
    calls: Vec<String>,
}

/// The fake chain, as an alloy transport.
#[derive(Clone)]
struct FakeChain(Arc<Mutex<State>>);

impl FakeChain {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(State {
            head: 1,
            mined_nonce: 0,
            receipts: HashMap::new(),
            mempool: HashMap::new(),
            broadcasts: Vec::new(),
            revert: None,
            commitment_of: U256::ZERO,
            down: HashSet::new(),
            calls: Vec::new(),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    /// Mines the transaction `raw` in a new block, with `success`.
    fn mine(&self, raw: &[u8], success: bool) -> B256 {
        let mut state = self.state();
        let hash = keccak256(raw);
        state.head += 1;
        let block = state.head;
        let block_hash = keccak256(format!("block {block} {}", state.broadcasts.len()));
        state.receipts.insert(
            hash,
            Mined {
                block,
                block_hash,
                success,
            },
        );
        state.mempool.remove(&hash);
        state.mined_nonce += 1;
        hash
    }

    /// Adds `n` empty blocks.
    fn advance(&self, n: u64) {
        self.state().head += n;
    }

    fn broadcasts(&self) -> Vec<Vec<u8>> {
        self.state().broadcasts.clone()
    }

    fn answer(&self, request: &SerializedRequest) -> Result<Result<Value, ErrorPayload>, ()> {
        let params: Value = request
            .params()
            .map(|p| serde_json::from_str(p.get()).unwrap())
            .unwrap_or(Value::Null);
        let mut state = self.state();
        let method = request.method().to_string();
        state.calls.push(method.clone());
        if state.down.contains(method.as_str()) {
            return Err(());
        }
        let hash_param = || params[0].as_str().unwrap().parse::<B256>().unwrap();
        Ok(Ok(match method.as_str() {
            "eth_chainId" => json!(format!("{CHAIN_ID:#x}")),
            "eth_getCode" => json!("0x6000"),
            "eth_blockNumber" => json!(format!("{:#x}", state.head)),
            "eth_getTransactionCount" => json!(format!("{:#x}", state.mined_nonce)),
            "eth_estimateGas" => json!("0x30000"),
            "eth_feeHistory" => json!({
                "oldestBlock": "0x1",
                "baseFeePerGas": ["0x3b9aca00", "0x3b9aca00"],
                "gasUsedRatio": [0.5],
                "reward": [["0x3b9aca00"]],
            }),
            "eth_sendRawTransaction" => {
                let raw: Bytes = params[0].as_str().unwrap().parse().unwrap();
                let hash = keccak256(&raw);
                state.broadcasts.push(raw.to_vec());
                state.mempool.insert(hash, raw.to_vec());
                json!(hash)
            }
            "eth_getTransactionByHash" => match state.mempool.get(&hash_param()) {
                None => Value::Null,
                Some(raw) => pending_transaction(raw),
            },
            "eth_getTransactionReceipt" => match state.receipts.get(&hash_param()) {
                None => Value::Null,
                Some(mined) => receipt(hash_param(), mined),
            },
            "eth_call" => {
                let input = params[0]["input"]
                    .as_str()
                    .or(params[0]["data"].as_str())
                    .unwrap();
                let input: Bytes = input.parse().unwrap();
                let selector: [u8; 4] = input[..4].try_into().unwrap();
                let word = |bytes: [u8; 32]| json!(B256::from(bytes));
                if selector == IFabstirMarketplace::verifierVkIdCall::SELECTOR {
                    word(VK_ID)
                } else if selector == IFabstirMarketplace::hostIdOfCall::SELECTOR {
                    word(HOST_ID)
                } else if selector == IFabstirMarketplace::commitmentOfCall::SELECTOR {
                    word(state.commitment_of.to_be_bytes())
                } else if selector == IFabstirMarketplace::submitVerifiedProofCall::SELECTOR {
                    match &state.revert {
                        None => json!("0x"),
                        Some(data) => {
                            return Ok(Err(ErrorPayload {
                                code: 3,
                                message: "execution reverted".into(),
                                data: Some(
                                    serde_json::value::to_raw_value(&Bytes::from(data.clone()))
                                        .unwrap(),
                                ),
                            }))
                        }
                    }
                } else {
                    panic!("unexpected eth_call selector {selector:?}")
                }
            }
            other => panic!("the fake chain does not answer {other}"),
        }))
    }
}

/// A transaction in the mempool as a node serves it (the worker reads
/// nothing of it: the sender is left zero).
fn pending_transaction(raw: &[u8]) -> Value {
    let envelope = alloy::consensus::TxEnvelope::decode_2718(&mut &raw[..]).unwrap();
    json!(alloy::rpc::types::Transaction {
        inner: alloy::consensus::transaction::Recovered::new_unchecked(envelope, Address::ZERO),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
    })
}

/// A receipt as a node serves it.
fn receipt(hash: B256, mined: &Mined) -> Value {
    json!({
        "type": "0x2",
        "status": if mined.success { "0x1" } else { "0x0" },
        "cumulativeGasUsed": "0x5208",
        "logs": [],
        "logsBloom": format!("0x{}", "00".repeat(256)),
        "transactionHash": hash,
        "transactionIndex": "0x0",
        "blockHash": mined.block_hash,
        "blockNumber": format!("{:#x}", mined.block),
        "gasUsed": "0x5208",
        "effectiveGasPrice": "0x3b9aca00",
        "from": Address::ZERO,
        "to": Address::ZERO,
        "contractAddress": null,
    })
}

impl tower_service::Service<RequestPacket> for FakeChain {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, packet: RequestPacket) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let requests = match packet {
                RequestPacket::Single(request) => vec![request],
                RequestPacket::Batch(requests) => requests,
            };
            let mut responses = Vec::new();
            for request in &requests {
                let payload = match this.answer(request) {
                    Err(()) => {
                        return Err(TransportErrorKind::custom_str(
                            "error sending request: Connection refused",
                        ))
                    }
                    Ok(Ok(value)) => {
                        ResponsePayload::Success(serde_json::value::to_raw_value(&value).unwrap())
                    }
                    Ok(Err(error)) => ResponsePayload::Failure(error),
                };
                responses.push(Response {
                    id: request.id().clone(),
                    payload,
                });
            }
            Ok(if responses.len() == 1 {
                ResponsePacket::Single(responses.remove(0))
            } else {
                ResponsePacket::Batch(responses)
            })
        })
    }
}

/// A client on the fake chain, with one checkpoint and its outbox row.
struct Setup {
    fake: FakeChain,
    chain: Arc<EvmChain>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    checkpoint_id: i64,
    _dir: tempfile::TempDir,
}

async fn start(fake: &FakeChain, settings: EvmSettings) -> Result<Arc<EvmChain>, EvmError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("node.db")).unwrap());
    start_on(fake, settings, store).await
}

async fn start_on(
    fake: &FakeChain,
    settings: EvmSettings,
    store: Arc<Store>,
) -> Result<Arc<EvmChain>, EvmError> {
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(RpcClient::new(fake.clone(), true))
        .erased();
    let wallet = HostWallet::from_hex(&format!("0x{}", "42".repeat(32))).unwrap();
    EvmChain::start(
        provider,
        settings,
        &wallet,
        NodeKeys {
            vk_id: VK_ID,
            host_id: HOST_ID,
        },
        store,
        Arc::new(Metrics::new()),
    )
    .await
}

fn settings(confirmations: u64) -> EvmSettings {
    EvmSettings {
        confirmations,
        // Long: a test decides when a transaction is stuck.
        stuck_after: Duration::from_secs(3600),
        ..EvmSettings::new("http://fake.invalid", Address::repeat_byte(0x11))
    }
}

async fn setup(confirmations: u64) -> Setup {
    setup_with(settings(confirmations)).await
}

async fn setup_with(settings: EvmSettings) -> Setup {
    let fake = FakeChain::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("node.db")).unwrap());
    let chain = start_on(&fake, settings, store.clone()).await.unwrap();
    let metrics = chain.metrics.clone();
    let job = JobId([3; 32]);
    let checkpoint_id = store
        .durable(|tx| {
            let checkpoint = checkpoints::insert(
                tx,
                &NewCheckpoint {
                    job_id: &job,
                    tokens_processed: 50,
                    tokens_claimed: 50,
                    commitment: COMMITMENT,
                    proof_hash: &format!("0x{}", "00".repeat(32)),
                    proof_cid: "bafkrei",
                    payload: &json!({}),
                },
            )?;
            outbox::insert(
                tx,
                &NewEntry {
                    checkpoint_id: checkpoint.id,
                    job_id: &job.to_string(),
                    cumulative_tokens: 50,
                    commitment: COMMITMENT,
                    proof: b"halo2 proof bytes",
                },
            )?;
            Ok(checkpoint.id)
        })
        .unwrap();
    Setup {
        fake,
        chain,
        store,
        metrics,
        checkpoint_id,
        _dir: dir,
    }
}

/// Runs a test's body on a runtime of its own (plain `#[test]`s, so that
/// docs/SECURITY.md can cite them).
fn run<F: std::future::Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(body)
}

impl Setup {
    fn entry(&self) -> OutboxEntry {
        self.store
            .durable(|tx| outbox::by_checkpoint(tx, self.checkpoint_id))
            .unwrap()
            .unwrap()
    }

    async fn pass(&self) {
        self.chain.pass().await.unwrap();
    }
}

#[test]
fn a_submission_is_confirmed_only_at_its_depth() {
    run(async {
        let s = setup(2).await;
        assert_eq!(s.entry().tx.state, OutboxState::Pending);
        s.pass().await;
        let sent = s.entry();
        assert_eq!(sent.tx.state, OutboxState::Sent);
        assert_eq!(sent.tx.nonce, Some(0));
        let broadcasts = s.fake.broadcasts();
        assert_eq!(broadcasts.len(), 1);
        assert_eq!(
            sent.tx.raw_tx.as_deref(),
            Some(broadcasts[0].as_slice()),
            "recorded before broadcast"
        );
        // What was signed: submitVerifiedProof of the row, to the marketplace.
        let tx = alloy::consensus::TxEnvelope::decode_2718(&mut broadcasts[0].as_slice()).unwrap();
        let call = IFabstirMarketplace::submitVerifiedProofCall::abi_decode(tx.input()).unwrap();
        assert_eq!(call.cumulativeTokens, U256::from(50));
        assert_eq!(call.proof.as_ref(), b"halo2 proof bytes");

        let hash = s.fake.mine(&broadcasts[0], true);
        s.pass().await;
        assert_eq!(
            s.entry().tx.state,
            OutboxState::Sent,
            "one block deep of two"
        );
        s.fake.advance(1);
        s.pass().await;
        let confirmed = s.entry();
        assert_eq!(confirmed.tx.state, OutboxState::Confirmed);
        assert_eq!(confirmed.tx.tx_hash, Some(format!("{hash:#x}")));
        assert_eq!(confirmed.tx.block_number, Some(2));
        // Nothing more is sent.
        s.pass().await;
        assert_eq!(s.fake.broadcasts().len(), 1);
    })
}

#[test]
fn a_dropped_transaction_is_broadcast_again_with_the_same_bytes() {
    run(async {
        let s = setup(1).await;
        s.pass().await;
        let first = s.fake.broadcasts()[0].clone();
        // The node loses it from its mempool (a restart, an eviction).
        s.fake.state().mempool.clear();
        s.pass().await;
        let broadcasts = s.fake.broadcasts();
        assert_eq!(broadcasts, vec![first.clone(), first.clone()]);
        assert_eq!(s.entry().tx.nonce, Some(0));
        // Known again: not broadcast a third time.
        s.pass().await;
        assert_eq!(s.fake.broadcasts().len(), 2);
        s.fake.mine(&first, true);
        s.pass().await;
        assert_eq!(s.entry().tx.state, OutboxState::Confirmed);
    })
}

#[test]
fn a_stuck_transaction_is_replaced_with_the_same_nonce_and_either_confirms() {
    run(async {
        let mut settings = settings(1);
        settings.stuck_after = Duration::ZERO;
        let s = setup_with(settings).await;
        s.pass().await;
        s.pass().await;
        let entry = s.entry();
        assert_eq!(entry.tx.bumps, 1);
        assert_eq!(entry.tx.tx_hashes.len(), 2);
        let broadcasts = s.fake.broadcasts();
        assert_eq!(broadcasts.len(), 2);
        assert_ne!(broadcasts[0], broadcasts[1], "a new transaction");
        let nonces: Vec<u64> = broadcasts
            .iter()
            .map(|raw| {
                alloy::consensus::TxEnvelope::decode_2718(&mut raw.as_slice())
                    .unwrap()
                    .nonce()
            })
            .collect();
        assert_eq!(nonces, vec![0, 0], "the replacement reuses the nonce");
        assert_eq!(s.metrics.chain_fee_bumps.get(), 1);
        // The original is the one mined: still this entry's confirmation.
        let hash = s.fake.mine(&broadcasts[0], true);
        s.pass().await;
        let confirmed = s.entry();
        assert_eq!(confirmed.tx.state, OutboxState::Confirmed);
        assert_eq!(confirmed.tx.tx_hash, Some(format!("{hash:#x}")));
    })
}

#[test]
fn a_revert_is_recorded_as_failed_with_its_decoded_reason() {
    run(async {
        let s = setup(1).await;
        s.fake.state().revert = Some(
            IFabstirMarketplace::InvalidProof {
                jobId: U256::from(3),
            }
            .abi_encode(),
        );
        s.pass().await;
        let failed = s.entry();
        assert_eq!(failed.tx.state, OutboxState::Failed);
        let reason = failed.tx.reason.unwrap();
        assert!(reason.starts_with("InvalidProof("), "{reason}");
        assert!(
            s.fake.broadcasts().is_empty(),
            "nothing that reverts is sent"
        );
        assert_eq!(
            s.metrics
                .chain_reverts
                .with_label_values(&["InvalidProof"])
                .get(),
            1
        );
        let checkpoint = s
            .store
            .durable(|tx| checkpoints::by_id(tx, s.checkpoint_id))
            .unwrap();
        assert_eq!(checkpoint.status, CheckpointStatus::Rejected);
        assert!(
            checkpoint.payload["chain"]
                .as_str()
                .unwrap()
                .contains("refused by the marketplace: InvalidProof"),
            "{}",
            checkpoint.payload
        );
    })
}

#[test]
fn a_mined_revert_is_decoded_from_a_replay() {
    run(async {
        let s = setup(1).await;
        s.pass().await;
        let raw = s.fake.broadcasts()[0].clone();
        s.fake.mine(&raw, false);
        s.fake.state().revert = Some(
            IFabstirMarketplace::ExceedsDeposit {
                jobId: U256::from(3),
                cost: U256::from(2000),
                deposit: U256::from(1000),
            }
            .abi_encode(),
        );
        s.pass().await;
        let failed = s.entry();
        assert_eq!(failed.tx.state, OutboxState::Failed);
        assert!(
            failed
                .tx
                .reason
                .as_deref()
                .unwrap()
                .starts_with("ExceedsDeposit("),
            "{failed:?}"
        );
    })
}

#[test]
fn a_revert_of_an_already_credited_submission_confirms_it() {
    run(async {
        let s = setup(1).await;
        {
            let mut state = s.fake.state();
            state.revert = Some(
                IFabstirMarketplace::TokensNotIncreasing {
                    jobId: U256::from(3),
                    recorded: U256::from(50),
                    claimed: U256::from(50),
                }
                .abi_encode(),
            );
            // The contract holds this entry's commitment for its count.
            state.commitment_of = U256::from(0xaa);
        }
        s.pass().await;
        let entry = s.entry();
        assert_eq!(entry.tx.state, OutboxState::Confirmed);
        assert_eq!(entry.tx.tx_hash.as_deref(), Some("credited"));
        assert!(s.fake.broadcasts().is_empty());
    })
}

#[test]
fn an_rpc_outage_is_retried_and_loses_nothing() {
    run(async {
        let s = setup(1).await;
        s.fake.state().down.insert("eth_blockNumber");
        match s.chain.pass().await {
            Err(super::rpc::PassError::Rpc(e)) => assert_eq!(e.call, "eth_blockNumber"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.entry().tx.state, OutboxState::Pending);
        assert_eq!(
            s.metrics
                .chain_rpc_errors
                .with_label_values(&["eth_blockNumber"])
                .get(),
            1
        );
        // Down between recording and broadcasting: the recorded transaction
        // is broadcast once the endpoint is back, the same bytes.
        {
            let mut state = s.fake.state();
            state.down.clear();
            state.down.insert("eth_sendRawTransaction");
        }
        assert!(s.chain.pass().await.is_err());
        let recorded = s.entry();
        assert_eq!(recorded.tx.state, OutboxState::Sent);
        assert!(s.fake.broadcasts().is_empty());
        s.fake.state().down.clear();
        s.pass().await;
        assert_eq!(
            s.fake.broadcasts(),
            vec![recorded.tx.raw_tx.clone().unwrap()],
            "the recorded transaction, not a new one"
        );
        s.fake.mine(&recorded.tx.raw_tx.unwrap(), true);
        s.pass().await;
        assert_eq!(s.entry().tx.state, OutboxState::Confirmed);
    })
}

#[test]
fn a_reorg_that_removes_the_receipt_sends_it_again() {
    run(async {
        let s = setup(1).await;
        s.pass().await;
        let raw = s.fake.broadcasts()[0].clone();
        let hash = s.fake.mine(&raw, true);
        s.pass().await;
        let confirmed = s.entry();
        assert_eq!(confirmed.tx.state, OutboxState::Confirmed);
        // A reorg: the block is gone, the nonce is free again.
        {
            let mut state = s.fake.state();
            state.receipts.remove(&hash);
            state.mined_nonce = 0;
        }
        s.pass().await;
        let back = s.entry();
        assert_eq!(back.tx.state, OutboxState::Sent);
        assert_eq!(back.tx.block_number, None);
        assert_eq!(s.metrics.chain_reorgs.get(), 1);
        assert_eq!(
            s.fake.broadcasts(),
            vec![raw.clone(), raw.clone()],
            "broadcast again: the same transaction, the same nonce"
        );
        s.fake.mine(&raw, true);
        s.pass().await;
        let again = s.entry();
        assert_eq!(again.tx.state, OutboxState::Confirmed);
        assert_ne!(again.tx.block_hash, confirmed.tx.block_hash);
    })
}

#[test]
fn start_up_checks_refuse_a_wrong_chain() {
    run(async {
        let fake = FakeChain::new();
        let mut wrong = settings(1);
        wrong.chain_id = Some(1);
        match start(&fake, wrong).await {
            Err(EvmError::WrongChain {
                configured: 1,
                actual: CHAIN_ID,
            }) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("started on the wrong chain"),
        }
        fake.state().down.insert("eth_chainId");
        let error = start(&fake, settings(1)).await.err().unwrap();
        assert!(error.to_string().contains("Connection refused"), "{error}");
    })
}
