//! The money invariant, as a property over the real stores (SQLite files,
//! the real `Checkpoints`, `LocalLedger` and `SettlementValidator`; mock
//! proofs so that many sequences run quickly).
//!
//! For every job, whatever the order of checkpoints, settlements, repeated
//! requests, concurrent calls and restarts:
//! - tokens claimed on the ledger + tokens paid by settlement <= `tokens_used`;
//! - checkpoints claim disjoint ranges: each claims its cumulative count
//!   minus the previous one's, so no token is claimed twice;
//! - a settled job is paid exactly what its checkpoints left unclaimed, and
//!   no checkpoint claims anything after it;
//! - each answer is the one the rules give (checked against a model when
//!   the requests run one at a time).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fabstir_node::chain::HostWallet;
use fabstir_node::chain::{
    ChainClient, ChainError, LocalLedger, Receipt, RpcError, Submission, SubmissionKind,
};
use fabstir_node::checkpoint::{CheckpointError, Checkpoints};
use fabstir_node::config::Backend;
use fabstir_node::gate::Gate;
use fabstir_node::keys::KeyManager;
use fabstir_node::metrics::Metrics;
use fabstir_node::prover::ProofGenerator;
use fabstir_node::settlement::SettlementValidator;
use fabstir_node::store::{Store, MAX_TOKENS};
use fabstir_node::threads::{Pools, ThreadLayout};
use fabstir_zk::{InferenceResult, JobId, ModelRef};
use proptest::prelude::*;
use rand::SeedableRng;

/// Development keys shared by every case (generating and loading keys takes
/// a while; what is under test is the database and the rules).
fn keys() -> Arc<KeyManager> {
    static KEYS: OnceLock<(tempfile::TempDir, Arc<KeyManager>)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (keys, _) = KeyManager::open(&dir.path().join("keys"), false).expect("dev keys");
        (dir, Arc::new(keys))
    })
    .1
    .clone()
}

/// The node's stores and money-moving components on one database.
struct Node {
    store: Arc<Store>,
    checkpoints: Checkpoints,
    validator: SettlementValidator,
}

fn wallet() -> HostWallet {
    HostWallet::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7))
}

impl Node {
    /// Opens (or reopens, after a "restart") the node on `db`.
    fn open(db: &Path) -> Self {
        let store = Arc::new(Store::open(db).expect("open store"));
        let metrics = Arc::new(Metrics::new());
        let keys = keys();
        let generator = Arc::new(ProofGenerator::new(
            Backend::Mock,
            keys.clone(),
            16,
            1 << 16,
            Duration::from_secs(5),
            metrics.clone(),
        ));
        let pools = Pools::new(ThreadLayout::default_for(1)).expect("pools");
        let gate = Arc::new(Gate::new(keys, pools.verify(), false));
        let checkpoints = Checkpoints::new(
            store.clone(),
            generator,
            pools.prover(0),
            wallet(),
            Arc::new(LocalLedger::new(store.clone())),
            gate.clone(),
            metrics.clone(),
        );
        checkpoints.reconcile().expect("reconcile");
        let validator = SettlementValidator::new(store.clone(), gate, metrics);
        Self {
            store,
            checkpoints,
            validator,
        }
    }
}

fn job_id(index: usize) -> JobId {
    JobId::parse(&(1000 + index).to_string()).expect("job id")
}

/// Stores job `index` with `tokens_used` and its (mock) proof.
fn add_job(node: &Node, generator: &ProofGenerator, index: usize, tokens_used: u64) {
    let result = InferenceResult {
        job_id: job_id(index),
        chain_id: 84532,
        marketplace: fabstir_zk::parse_address("0x5fbdb2315678afecb367f032d93f642f64180aa3")
            .unwrap(),
        model: ModelRef::Name("llama".into()),
        prompt: format!("prompt {index}"),
        response: format!("response {index}"),
        tokens_used,
    };
    let host_id = generator.host_id();
    node.store
        .insert_result(&result, host_id)
        .expect("insert result");
    let statement = result.statement(host_id);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let proof = generator.prove(&statement, &pool).expect("mock proof");
    node.store
        .put_proof(&result.job_id, &proof.into_stored(&statement))
        .expect("store proof");
}

#[derive(Debug, Clone)]
enum Op {
    Checkpoint {
        job: usize,
        tokens: u64,
    },
    Settle {
        job: usize,
    },
    /// The previous request again (a client retry).
    Repeat,
    /// Close everything and open the database again.
    Restart,
    /// Several requests at once, from threads.
    Concurrent(Vec<Op>),
}

/// What a checkpoint request answered: the claimed delta and whether it was
/// new, or the error's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Recorded { claimed: u64, new: bool },
    NotIncreasing,
    ExceedsUsed,
    Settled,
    Other(String),
}

fn checkpoint(node: &Node, job: usize, tokens: u64) -> Answer {
    match node.checkpoints.submit(&job_id(job), tokens, None, "") {
        Ok((checkpoint, new)) => {
            assert_eq!(checkpoint.tokens_processed, tokens);
            Answer::Recorded {
                claimed: checkpoint.tokens_claimed,
                new,
            }
        }
        Err(CheckpointError::NotIncreasing { .. }) => Answer::NotIncreasing,
        Err(CheckpointError::ExceedsUsed { .. }) => Answer::ExceedsUsed,
        Err(CheckpointError::Settled(_)) => Answer::Settled,
        Err(e) => Answer::Other(e.to_string()),
    }
}

/// The rules, for requests that run one at a time.
#[derive(Debug, Clone, Default)]
struct Model {
    used: Vec<u64>,
    /// Cumulative counts checkpointed, per job, with the delta each claimed.
    checkpoints: Vec<Vec<(u64, u64)>>,
    /// What each job's settlement paid.
    settled: Vec<Option<u64>>,
}

impl Model {
    fn checkpoint(&mut self, job: usize, tokens: u64) -> Answer {
        if let Some((_, claimed)) = self.checkpoints[job].iter().find(|(t, _)| *t == tokens) {
            return Answer::Recorded {
                claimed: *claimed,
                new: false,
            };
        }
        let last = self.checkpoints[job].last().map_or(0, |(t, _)| *t);
        if self.settled[job].is_some() {
            Answer::Settled
        } else if tokens > self.used[job] {
            Answer::ExceedsUsed
        } else if tokens <= last {
            Answer::NotIncreasing
        } else {
            self.checkpoints[job].push((tokens, tokens - last));
            Answer::Recorded {
                claimed: tokens - last,
                new: true,
            }
        }
    }

    fn settle(&mut self, job: usize) -> u64 {
        let claimed: u64 = self.checkpoints[job].iter().map(|(_, c)| c).sum();
        *self.settled[job].get_or_insert(self.used[job] - claimed)
    }

    /// Re-reads the state after concurrent requests (their order is not known).
    fn sync(&mut self, db: &rusqlite::Connection) {
        for job in 0..self.used.len() {
            let key = job_id(job).to_string();
            let mut stmt = db
                .prepare(
                    "SELECT tokens_processed, tokens_claimed FROM checkpoints
                     WHERE job_id = ?1 AND status <> 'rejected' ORDER BY id",
                )
                .unwrap();
            self.checkpoints[job] = stmt
                .query_map([&key], |row| {
                    Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            self.settled[job] = db
                .query_row(
                    "SELECT tokens FROM settlements WHERE job_id = ?1",
                    [&key],
                    |row| row.get::<_, i64>(0),
                )
                .ok()
                .map(|t| t as u64);
        }
    }
}

/// The invariant, read straight from the database.
fn check_invariant(db: &rusqlite::Connection, used: &[u64]) -> Result<(), TestCaseError> {
    for (job, &tokens_used) in used.iter().enumerate() {
        let key = job_id(job).to_string();
        let mut stmt = db
            .prepare(
                "SELECT id, tokens_processed, tokens_claimed, status FROM checkpoints
                 WHERE job_id = ?1 ORDER BY id",
            )
            .unwrap();
        let rows: Vec<(i64, i64, i64, String)> = stmt
            .query_map([&key], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut previous = 0i64;
        let mut claimed_total = 0i64;
        for (id, processed, claimed, status) in &rows {
            prop_assert_ne!(status.as_str(), "rejected", "checkpoint {} rejected", id);
            prop_assert!(
                *processed > previous,
                "job {job}: checkpoint {id} at {processed} after {previous}"
            );
            prop_assert_eq!(
                *claimed,
                processed - previous,
                "job {}: checkpoint {}",
                job,
                id
            );
            previous = *processed;
            claimed_total += claimed;
        }
        let ledger: i64 = db
            .query_row(
                "SELECT COALESCE(SUM(l.tokens_claimed), 0) FROM ledger l
                 JOIN checkpoints c ON c.id = l.checkpoint_id WHERE c.job_id = ?1",
                [&key],
                |row| row.get(0),
            )
            .unwrap();
        let mismatched: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM ledger l JOIN checkpoints c ON c.id = l.checkpoint_id
                 WHERE c.job_id = ?1 AND l.tokens_claimed <> c.tokens_claimed",
                [&key],
                |row| row.get(0),
            )
            .unwrap();
        prop_assert_eq!(mismatched, 0, "job {}: ledger and outbox disagree", job);
        let settlement: Option<(i64, i64, String)> = db
            .query_row(
                "SELECT tokens, checkpoint_tokens, outcome FROM settlements WHERE job_id = ?1",
                [&key],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .ok();
        let paid = settlement.as_ref().map_or(0, |(t, _, _)| *t);
        let used = tokens_used as i64;
        prop_assert!(
            ledger + paid <= used,
            "job {job}: ledger {ledger} + settlement {paid} > tokens_used {used}"
        );
        prop_assert!(
            claimed_total <= used,
            "job {job}: checkpoints claim {claimed_total} > {used}"
        );
        if let Some((paid, at_settlement, outcome)) = settlement {
            prop_assert_eq!(outcome.as_str(), "settled");
            prop_assert_eq!(
                at_settlement,
                claimed_total,
                "job {}: a checkpoint claimed tokens after the settlement",
                job
            );
            prop_assert_eq!(
                paid + at_settlement,
                used,
                "job {}: remainder not paid",
                job
            );
        }
    }
    Ok(())
}

fn run_op(node: &Node, op: &Op) -> Option<Answer> {
    match op {
        Op::Checkpoint { job, tokens } => Some(checkpoint(node, *job, *tokens)),
        Op::Settle { job } => {
            node.validator.settle(&job_id(*job)).expect("settle");
            None
        }
        Op::Concurrent(ops) => {
            std::thread::scope(|scope| {
                for op in ops {
                    scope.spawn(move || run_op(node, op));
                }
            });
            None
        }
        Op::Repeat | Op::Restart => None,
    }
}

fn op_strategy(jobs: usize, max_used: u64) -> impl Strategy<Value = Op> {
    let tokens = prop_oneof![
        0..=max_used + 3,
        Just(0u64),
        Just(max_used),
        Just(u64::MAX),
        Just(MAX_TOKENS),
    ];
    let single = prop_oneof![
        6 => (0..jobs, tokens).prop_map(|(job, tokens)| Op::Checkpoint { job, tokens }),
        2 => (0..jobs).prop_map(|job| Op::Settle { job }),
    ];
    prop_oneof![
        8 => single.clone(),
        2 => Just(Op::Repeat),
        1 => Just(Op::Restart),
        2 => prop::collection::vec(single, 2..6).prop_map(Op::Concurrent),
    ]
}

fn case_strategy() -> impl Strategy<Value = (Vec<u64>, Vec<Op>)> {
    prop::collection::vec(0u64..40, 1..4).prop_flat_map(|used| {
        let jobs = used.len();
        let max = used.iter().copied().max().unwrap_or(0);
        (
            Just(used),
            prop::collection::vec(op_strategy(jobs, max), 1..24),
        )
    })
}

fn run_case(used: Vec<u64>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("node.db");
    let mut node = Node::open(&db_path);
    {
        let metrics = Arc::new(Metrics::new());
        let generator = ProofGenerator::new(
            Backend::Mock,
            keys(),
            16,
            1 << 16,
            Duration::from_secs(5),
            metrics,
        );
        for (job, tokens_used) in used.iter().enumerate() {
            add_job(&node, &generator, job, *tokens_used);
        }
    }
    let db = rusqlite::Connection::open(&db_path).unwrap();
    let mut model = Model {
        used: used.clone(),
        checkpoints: vec![Vec::new(); used.len()],
        settled: vec![None; used.len()],
    };
    let mut previous: Option<Op> = None;
    for op in &ops {
        let op = match op {
            Op::Repeat => match &previous {
                Some(previous) => previous.clone(),
                None => continue,
            },
            other => other.clone(),
        };
        match &op {
            Op::Restart => {
                drop(node);
                node = Node::open(&db_path);
            }
            Op::Checkpoint { job, tokens } => {
                let answer = run_op(&node, &op);
                let expected = model.checkpoint(*job, *tokens);
                prop_assert_eq!(
                    answer,
                    Some(expected),
                    "checkpoint {} of job {}",
                    tokens,
                    job
                );
            }
            Op::Settle { job } => {
                run_op(&node, &op);
                let expected = model.settle(*job);
                let settlement = node.validator.settlement(&job_id(*job)).unwrap().unwrap();
                prop_assert_eq!(settlement.tokens, expected, "settlement of job {}", job);
            }
            Op::Concurrent(_) => {
                run_op(&node, &op);
                model.sync(&db);
            }
            Op::Repeat => unreachable!(),
        }
        check_invariant(&db, &used)?;
        previous = Some(op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        .. ProptestConfig::default()
    })]

    #[test]
    fn tokens_are_never_claimed_twice_or_beyond_tokens_used((used, ops) in case_strategy()) {
        run_case(used, ops)?;
    }
}

/// The reproduction, on the stores: 10 then 20 of a 20-token job
/// claims 10 + 10, not 30; settlement then pays nothing more.
#[test]
fn cumulative_checkpoints_claim_deltas() {
    run_case(
        vec![20],
        vec![
            Op::Checkpoint { job: 0, tokens: 10 },
            Op::Checkpoint { job: 0, tokens: 20 },
            Op::Repeat,
            Op::Checkpoint { job: 0, tokens: 15 },
            Op::Checkpoint { job: 0, tokens: 21 },
            Op::Settle { job: 0 },
            Op::Restart,
            Op::Checkpoint { job: 0, tokens: 20 },
        ],
    )
    .unwrap();
}

/// A chain client for verified submissions that records what reaches it.
#[derive(Default)]
struct VerifiedChain {
    submitted: std::sync::Mutex<Vec<(i64, Vec<u8>)>>,
}

impl ChainClient for VerifiedChain {
    fn kind(&self) -> &'static str {
        "test_verified"
    }

    fn takes(&self) -> SubmissionKind {
        SubmissionKind::VerifiedProof
    }

    fn submit(
        &self,
        checkpoint: &fabstir_node::store::Checkpoint,
        submission: Submission<'_>,
    ) -> Result<Receipt, ChainError> {
        let Submission::VerifiedProof { envelope } = submission else {
            panic!("a verified client was given {submission:?}");
        };
        assert!(
            checkpoint.payload.get("submission").is_none(),
            "a signed payload was recorded for a verified submission: {}",
            checkpoint.payload
        );
        self.submitted
            .lock()
            .unwrap()
            .push((checkpoint.id, envelope.to_vec()));
        Ok(Receipt {
            id: format!("test-{}", checkpoint.id),
            recorded_at_ms: 0,
        })
    }

    fn receipt(&self, _checkpoint_id: i64) -> Result<Option<Receipt>, ChainError> {
        Ok(None)
    }
}

/// The verified on-chain path passes the same gate: a tampered job reaches
/// the chain client with nothing, an intact one with a real proof of the
/// checkpoint's own count (which verifies against the checkpoint's public
/// inputs), and a pending checkpoint whose job was tampered with before a
/// restart is refused at reconciliation instead of being sent.
#[test]
fn verified_submissions_pass_the_payment_gate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let store = Arc::new(Store::open(&db).unwrap());
    let metrics = Arc::new(Metrics::new());
    let keys = keys();
    let generator = Arc::new(ProofGenerator::new(
        Backend::Real,
        keys.clone(),
        16,
        1 << 16,
        Duration::from_secs(30),
        metrics.clone(),
    ));
    let pools = Pools::new(ThreadLayout::default_for(1)).unwrap();
    let gate = Arc::new(Gate::new(keys.clone(), pools.verify(), false));
    let chain = Arc::new(VerifiedChain::default());
    let open = |chain: Arc<VerifiedChain>| {
        Checkpoints::new(
            store.clone(),
            generator.clone(),
            pools.prover(0),
            wallet(),
            chain,
            gate.clone(),
            metrics.clone(),
        )
    };
    let checkpoints = open(chain.clone());
    let node = Node {
        store: store.clone(),
        checkpoints: open(chain.clone()),
        validator: SettlementValidator::new(store.clone(), gate.clone(), metrics.clone()),
    };
    for index in 0..3 {
        add_job(&node, &generator, index, 120);
    }
    let edit = |sql: &str, index: usize| {
        let changed = store
            .durable(|tx| Ok(tx.execute(sql, [job_id(index).to_string()])?))
            .unwrap();
        assert_eq!(changed, 1, "{sql}");
    };
    edit(
        "UPDATE results SET tokens_used = 120000 WHERE job_id = ?1",
        0,
    );
    for tokens in [1000, 120_000] {
        match checkpoints.submit(&job_id(0), tokens, None, "") {
            Err(CheckpointError::Refused(rejection)) => {
                assert_eq!(rejection.reason.code(), "wrong_tokens")
            }
            other => panic!("an inflated job was not refused: {other:?}"),
        }
    }
    assert!(chain.submitted.lock().unwrap().is_empty());

    // An intact job: each submission carries a proof of its own count.
    let (first, _) = checkpoints.submit(&job_id(1), 50, None, "").unwrap();
    let (second, _) = checkpoints.submit(&job_id(1), 120, None, "").unwrap();
    let submitted = chain.submitted.lock().unwrap().clone();
    assert_eq!(
        submitted.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    let stored = store.result(&job_id(1)).unwrap().unwrap();
    for ((_, proof), tokens) in submitted.iter().zip([50, 120]) {
        let envelope = fabstir_zk::ProofEnvelope::from_bytes(proof).unwrap();
        let mut statement = stored.statement();
        statement.tokens = tokens;
        let vk = keys.verifier(&envelope.vk_id).unwrap();
        envelope.verify(&vk, &statement.instance()).unwrap();
    }

    // A checkpoint recorded but not yet sent when the node stopped (its
    // chain client was unreachable), then its job's response edited: at
    // start-up it is refused, not sent.
    struct Unreachable;
    impl ChainClient for Unreachable {
        fn kind(&self) -> &'static str {
            "unreachable"
        }
        fn takes(&self) -> SubmissionKind {
            SubmissionKind::VerifiedProof
        }
        fn submit(
            &self,
            _: &fabstir_node::store::Checkpoint,
            _: Submission<'_>,
        ) -> Result<Receipt, ChainError> {
            Err(ChainError::Unavailable(RpcError {
                call: "eth_call",
                source: alloy::transports::TransportErrorKind::custom_str("down"),
            }))
        }
        fn receipt(&self, _: i64) -> Result<Option<Receipt>, ChainError> {
            Ok(None)
        }
    }
    let offline = Checkpoints::new(
        store.clone(),
        generator.clone(),
        pools.prover(0),
        wallet(),
        Arc::new(Unreachable),
        gate.clone(),
        metrics.clone(),
    );
    let (pending, _) = offline.submit(&job_id(2), 60, None, "").unwrap();
    assert_eq!(pending.status.name(), "pending");
    edit(
        "UPDATE results SET response = 'edited' WHERE job_id = ?1",
        2,
    );
    let restarted = open(chain.clone());
    assert_eq!(restarted.reconcile().unwrap(), 1);
    assert_eq!(
        chain.submitted.lock().unwrap().len(),
        2,
        "the tampered job was sent"
    );
    let after = store
        .durable(|tx| fabstir_node::store::checkpoints::by_id(tx, pending.id))
        .unwrap();
    assert_eq!(after.status.name(), "rejected", "{after:?}");
    assert!(
        after.payload["chain"]
            .as_str()
            .unwrap()
            .contains("output_tampered"),
        "{}",
        after.payload
    );
}
