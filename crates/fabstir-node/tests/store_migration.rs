//! Start-up migrations, from a database written by the previous release.
//!
//! `tests/data/node-v1.db` was written by `fabstir-node serve` at commit
//! a767469 (schema version 1, `user_version` 0): three results (jobs 1, 2, 3
//! with `tokens_used` 20, 50, 7) proved with the development keys;
//! checkpoints at 10 and 20 for job 1 and at 30 for job 2, signed as given
//! (that release claimed 10 + 20 = 30 tokens for the 20-token job 1); and
//! job 3 settled for its 7 tokens. Its proofs are circuit version 1 proofs
//! (no tokens bound): they must still verify and settle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fabstir_node::chain::HostWallet;
use fabstir_node::checkpoint::{CheckpointError, Checkpoints, LocalLedger};
use fabstir_node::config::Backend;
use fabstir_node::gate::Gate;
use fabstir_node::keys::KeyManager;
use fabstir_node::metrics::Metrics;
use fabstir_node::prover::ProofGenerator;
use fabstir_node::settlement::SettlementValidator;
use fabstir_node::store::{checkpoints, schema, Store, StoreError, SCHEMA_VERSION};
use fabstir_node::threads::{Pools, ThreadLayout};
use fabstir_zk::JobId;
use rand::SeedableRng;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/node-v1.db");

fn job(n: u64) -> JobId {
    JobId::parse(&n.to_string()).unwrap()
}

/// A copy of the fixture in a temporary directory.
fn fixture_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    (dir, path)
}

fn version_of(path: &Path) -> i64 {
    schema::version(&rusqlite::Connection::open(path).unwrap()).unwrap()
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_every_row() {
    let (dir, path) = fixture_copy();
    assert_eq!(version_of(&path), 0, "the fixture predates versioning");
    let store = Arc::new(Store::open(&path).unwrap());
    assert_eq!(version_of(&path), SCHEMA_VERSION);

    // Results and proofs read back.
    for (n, used) in [(1, 20), (2, 50), (3, 7)] {
        let stored = store.result(&job(n)).unwrap().unwrap();
        assert_eq!(stored.tokens_used, used);
        assert!(store.proof(&job(n)).unwrap().is_some());
    }
    // Old checkpoints claimed what they signed: their tokens_processed.
    let claims = store
        .durable(|tx| checkpoints::claims(tx, &job(1)))
        .unwrap();
    assert_eq!((claims.claimed, claims.last_cumulative), (30, 20));
    let listed = store.durable(|tx| checkpoints::list(tx, &job(1))).unwrap();
    let claimed: Vec<u64> = listed.iter().map(|c| c.tokens_claimed).collect();
    assert_eq!(claimed, [10, 20]);

    // The node works on the migrated database: its proofs are version 1
    // proofs, made with the version 1 key of the development SRS, which the
    // node derives next to its (version 2) development keys, so they verify.
    let metrics = Arc::new(Metrics::new());
    let (keys, _) = KeyManager::open(&dir.path().join("keys"), false).unwrap();
    let keys = Arc::new(keys);
    for n in [1, 2, 3] {
        let stored = store.proof(&job(n)).unwrap().unwrap();
        let envelope = fabstir_zk::ProofEnvelope::from_bytes(&stored.envelope).unwrap();
        assert_eq!(envelope.version(), fabstir_zk::CircuitVersion::V1);
        assert_ne!(envelope.vk_id, keys.current().manifest.vk_id);
        let vk = keys.verifier(&envelope.vk_id).expect("the v1 key is held");
        assert_eq!(vk.version(), fabstir_zk::CircuitVersion::V1);
    }
    let pools = Pools::new(ThreadLayout::default_for(1)).unwrap();
    let gate = Arc::new(Gate::new(keys.clone(), pools.verify(), false));
    let validator = SettlementValidator::new(store.clone(), gate.clone(), metrics.clone());
    // Every stored version 1 proof verifies (one by one and in a batch).
    for n in [1, 2, 3] {
        let validation = validator.validate(&job(n)).unwrap();
        assert!(validation.passed, "{validation:?}");
    }
    let batch = validator.validate_many(&[job(1), job(2), job(3)]).unwrap();
    assert!(batch.iter().all(|v| v.passed), "{batch:?}");
    // Job 1 was over-claimed by the old release: nothing more is paid.
    let settled = validator.settle(&job(1)).unwrap();
    assert_eq!(settled.outcome, "settled", "{settled:?}");
    assert_eq!((settled.tokens, settled.checkpoint_tokens), (0, 30));
    // Job 3's settlement from before reads back (no checkpoints then).
    let old = validator.settlement(&job(3)).unwrap().unwrap();
    assert_eq!((old.tokens, old.checkpoint_tokens), (7, 0));

    // Job 2: 30 claimed before; a checkpoint at 40 claims 10, above 50 is refused.
    let generator = Arc::new(ProofGenerator::new(
        Backend::Mock,
        keys,
        4,
        1 << 16,
        Duration::from_secs(5),
        metrics.clone(),
    ));
    let wallet = HostWallet::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(3));
    let checkpoints = Checkpoints::new(
        store.clone(),
        generator,
        pools.prover(0),
        wallet,
        Arc::new(LocalLedger::new(store.clone())),
        gate,
        metrics,
    );
    let (recorded, new) = checkpoints.submit(&job(2), 40, None, "").unwrap();
    assert!(new);
    assert_eq!(recorded.tokens_claimed, 10);
    assert!(matches!(
        checkpoints.submit(&job(2), 51, None, ""),
        Err(CheckpointError::ExceedsUsed { .. })
    ));
    let settled = validator.settle(&job(2)).unwrap();
    assert_eq!((settled.tokens, settled.checkpoint_tokens), (10, 40));

    // Opening again changes nothing.
    drop((checkpoints, validator, store));
    Store::open(&path).unwrap();
    assert_eq!(version_of(&path), SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_node_is_refused() {
    let (_dir, path) = fixture_copy();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(e @ StoreError::NewerSchema { .. }) => {
            assert!(e.to_string().contains("newer"), "{e}")
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(version_of(&path), SCHEMA_VERSION + 1, "nothing was changed");
}

#[test]
fn a_new_database_starts_at_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    Store::open(&path).unwrap();
    assert_eq!(version_of(&path), SCHEMA_VERSION);
}
