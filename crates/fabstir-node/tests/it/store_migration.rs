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
use fabstir_node::chain::LocalLedger;
use fabstir_node::checkpoint::{CheckpointError, Checkpoints};
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

/// `tests/data/node-v3.db` was written by `fabstir-node serve` at commit
/// 604f332 (schema version 3, the release before retention): jobs 1, 2, 3
/// with `tokens_used` 20, 50, 7 proved with that node's development keys;
/// checkpoints at 10 for job 1 and at 30 for job 2; job 3 settled for 7.
const FIXTURE_V3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/node-v3.db");

/// What a database holds, table by table, for comparing two of them.
fn contents(path: &Path) -> Vec<(String, Vec<String>)> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |row| {
                    Ok((0..columns)
                        .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (table, rows)
        })
        .collect()
}

/// DEPLOYMENT.md's rollback, step by step on the data directory: the
/// migrated database (and its write-ahead log) moved aside, the copy kept
/// before the migration put in its place.
fn roll_back(data: &Path, backup: &Path) {
    let aside = data.join("rolled-back");
    std::fs::create_dir(&aside).unwrap();
    for name in ["node.db", "node.db-wal", "node.db-shm"] {
        if data.join(name).exists() {
            std::fs::rename(data.join(name), aside.join(name)).unwrap();
        }
    }
    std::fs::copy(backup, data.join("node.db")).unwrap();
}

/// Upgrading keeps a consistent copy of the old database (SQLite's online
/// backup, 0600, named after its schema version) before migrating, and says
/// where; the copy is the database as the previous release left it, and the
/// rollback gives it back.
#[test]
fn an_upgrade_keeps_a_copy_of_the_old_database_and_rolls_back_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    std::fs::copy(FIXTURE_V3, &path).unwrap();
    assert_eq!(version_of(&path), 3);
    let before = contents(&path);

    let store = Store::open(&path).unwrap();
    assert_eq!(version_of(&path), SCHEMA_VERSION);
    let backup = store
        .upgrade_backup()
        .expect("a copy before migrating")
        .clone();
    assert_eq!(backup.from_version, 3);
    let name = backup.path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("node.db.schema3-") && name.ends_with(".bak"),
        "{name}"
    );
    assert_eq!(backup.path.parent(), Some(dir.path()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    assert_eq!(version_of(&backup.path), 3);
    assert_eq!(
        contents(&backup.path),
        before,
        "the copy is not the old database"
    );
    // The node keeps working on the migrated database meanwhile.
    assert_eq!(store.result(&job(1)).unwrap().unwrap().tokens_used, 20);
    drop(store);
    // A second start migrates nothing and copies nothing.
    assert!(Store::open(&path).unwrap().upgrade_backup().is_none());

    roll_back(dir.path(), &backup.path);
    assert_eq!(version_of(&path), 3);
    assert_eq!(contents(&path), before);
    // A database from before versioning is copied too.
    let (_v1dir, v1) = fixture_copy();
    let store = Store::open(&v1).unwrap();
    assert_eq!(store.upgrade_backup().map(|b| b.from_version), Some(0));
    // A new database has nothing to copy.
    let fresh = tempfile::tempdir().unwrap();
    assert!(Store::open(&fresh.path().join("node.db"))
        .unwrap()
        .upgrade_backup()
        .is_none());
}

/// The whole rollback with the real binaries: a database written by the
/// previous release is upgraded by this node (which says where it kept the
/// copy), rolled back by DEPLOYMENT.md's procedure, and the previous
/// release's binary starts on it and serves its jobs, checkpoints and
/// settlements. `.ci/run` builds that binary (commit 604f332) and names it in
/// `FABSTIR_PREVIOUS_BINARY`.
#[test]
#[ignore = "needs the previous release's binary in FABSTIR_PREVIOUS_BINARY; .ci/run builds it"]
fn the_previous_release_starts_on_a_rolled_back_database() {
    use crate::common;
    let previous = std::env::var("FABSTIR_PREVIOUS_BINARY")
        .expect("FABSTIR_PREVIOUS_BINARY names the previous release's fabstir-node");
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE_V3, data.path().join("node.db")).unwrap();

    let node = common::Node::start(data.path(), &[]);
    let backup = std::path::PathBuf::from(
        node.startup["database_backup"]
            .as_str()
            .unwrap_or_else(|| panic!("no database_backup in {}", node.startup)),
    );
    assert!(backup.exists(), "{}", backup.display());
    let (status, proof) = node.get("/v1/proofs/1");
    assert_eq!(
        (status, &proof["state"]),
        (200, &serde_json::json!("proved"))
    );
    node.kill9();

    roll_back(data.path(), &backup);
    let old = common::Node::try_start_binary(Path::new(&previous), data.path(), &[], &[])
        .unwrap_or_else(|e| {
            panic!("the previous release does not start on the rolled-back database: {e}")
        });
    for n in 1..=3 {
        let (status, proof) = old.get(&format!("/v1/proofs/{n}"));
        assert_eq!(
            (status, &proof["state"]),
            (200, &serde_json::json!("proved")),
            "{proof}"
        );
    }
    let (_, checkpoints) = old.get("/v1/checkpoints/1");
    assert_eq!(
        checkpoints["checkpoints"][0]["tokens_claimed"], 10,
        "{checkpoints}"
    );
    let (_, settlement) = old.get("/v1/settlements/3");
    assert_eq!(
        (&settlement["outcome"], &settlement["tokens"]),
        (&serde_json::json!("settled"), &serde_json::json!(7))
    );
    let (status, _) = old.post("/v1/results", &common::result(4));
    assert_eq!(status, 202);
}
