//! Start-up refusals (clear message, non-zero exit, before the node listens),
//! damaged state found at runtime, and back-pressure when the prover queue
//! is full.

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{cli, result, serve_refused, DataDir, Node, Refusal};
use fabstir_zk::keystore::files;
use fabstir_zk::Digest32;
use serde_json::{json, Value};

/// Creates development keys in `dir/keys` with `fabstir-node keygen`.
fn keygen(dir: &Path) {
    let keys = dir.join("keys");
    let output = cli(&["keygen", "--dir", keys.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The refusal's JSON line on standard output: `{"error": ..., "code": ...}`.
fn refusal_json(refusal: &Refusal) -> Value {
    let line = refusal.stdout.lines().next().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {refusal:?}"))
}

/// Checks the refusal: exit code, error code, and a message containing each
/// of `needles` on standard error and in the JSON line.
fn assert_refused(refusal: &Refusal, exit: i32, code: &str, needles: &[&str]) {
    assert_eq!(refusal.code, Some(exit), "{refusal:?}");
    let line = refusal_json(refusal);
    assert_eq!(line["code"], code, "{refusal:?}");
    let message = line["error"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        assert!(
            refusal.stderr.contains(needle),
            "{needle:?} not on stderr: {}",
            refusal.stderr
        );
    }
}

#[test]
fn production_refuses_a_data_dir_without_keys() {
    let dir = DataDir::new();
    let refusal = serve_refused(dir.path(), &["--production"], &[]);
    assert_refused(
        &refusal,
        2,
        "keys",
        &["production mode needs existing keys in", "keygen"],
    );
    // Nothing was generated on the way out.
    assert!(!dir.path().join("keys").join(files::MANIFEST).exists());
    assert!(!dir.path().join("keys").join(files::PROVING_KEY).exists());
}

#[test]
fn production_refuses_development_keys() {
    let dir = DataDir::new();
    keygen(dir.path());
    let refusal = serve_refused(dir.path(), &["--production"], &[]);
    assert_refused(
        &refusal,
        2,
        "keys",
        &["refuses the insecure development SRS"],
    );
}

#[test]
fn production_refuses_mock_proofs() {
    let dir = DataDir::new();
    let refusal = serve_refused(dir.path(), &["--production", "--mock-proofs"], &[]);
    assert_refused(
        &refusal,
        2,
        "config",
        &["production mode refuses mock proofs"],
    );
    let refusal = serve_refused(
        dir.path(),
        &["--production"],
        &[("ENABLE_REAL_EZKL", "false")],
    );
    assert_refused(
        &refusal,
        2,
        "config",
        &["production mode refuses mock proofs"],
    );
}

#[test]
fn keygen_and_serve_agree_on_the_development_srs_given_as_a_ceremony_file() {
    // The development parameters in the raw format, offered as a ceremony
    // file with their SHA-256 as the pin.
    let scratch = DataDir::new();
    keygen(scratch.path());
    let srs = scratch.path().join("keys").join(files::SRS);
    let pin = Digest32::sha256(&std::fs::read(&srs).unwrap()).to_string();
    let dir = DataDir::new();
    let keys = dir.path().join("keys");
    let output = cli(&[
        "keygen",
        "--dir",
        keys.to_str().unwrap(),
        "--srs",
        srs.to_str().unwrap(),
        "--srs-sha256",
        &pin,
    ]);
    if output.status.success() {
        // keygen made the keys: the node must be able to use them.
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        let node = Node::try_start(dir.path(), &[], &[]).unwrap_or_else(|e| {
            panic!("keygen printed {created} but serve refuses its key directory: {e}")
        });
        assert_eq!(node.startup["srs_trust"], created["srs_trust"]);
    } else {
        // Or keygen refuses up front, writing nothing.
        assert!(!keys.join(files::MANIFEST).exists());
    }
}

#[test]
fn interrupted_key_generation_is_refused_not_overwritten() {
    // keygen that died before writing its manifest leaves key files behind.
    let dir = DataDir::new();
    keygen(dir.path());
    let keys = dir.path().join("keys");
    std::fs::remove_file(keys.join(files::MANIFEST)).unwrap();
    let proving_key = std::fs::read(keys.join(files::PROVING_KEY)).unwrap();
    let refusal = serve_refused(dir.path(), &[], &[]);
    assert_refused(
        &refusal,
        2,
        "keys",
        &["already exists; refusing to overwrite key material"],
    );
    assert!(!keys.join(files::MANIFEST).exists());
    assert_eq!(
        std::fs::read(keys.join(files::PROVING_KEY)).unwrap(),
        proving_key
    );
}

#[test]
fn corrupt_proving_key_is_refused_naming_the_file() {
    let dir = DataDir::new();
    keygen(dir.path());
    let path = dir.path().join("keys").join(files::PROVING_KEY);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    // Back to 0400, so the refusal is about the content, not the mode.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    let refusal = serve_refused(dir.path(), &[], &[]);
    assert_refused(&refusal, 2, "keys", &[path.to_str().unwrap()]);
    // Nothing was overwritten or regenerated.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn corrupt_database_is_refused() {
    // Not a database at all.
    let dir = DataDir::new();
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let db = dir.path().join("node.db");
    std::fs::write(&db, &garbage).unwrap();
    let refusal = serve_refused(dir.path(), &[], &[]);
    assert_refused(&refusal, 1, "database", &[]);
    let message = refusal_json(&refusal)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("not a database"), "{message}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "the file was changed");
    // The database is opened before the keys: none were created.
    assert!(!dir.path().join("keys").exists());

    // A real SQLite database with a damaged page.
    let dir = DataDir::new();
    let db = dir.path().join("node.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096;
             CREATE TABLE filler (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
             CREATE INDEX filler_data ON filler (data);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..2000 {
            tx.execute(
                "INSERT INTO filler (data) VALUES (?1)",
                [format!("row {i} {}", "x".repeat(100))],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 40 * 4096);
    // Overwrite the middle of page 20 (a b-tree page) with garbage.
    for b in &mut bytes[20 * 4096..20 * 4096 + 2048] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let refusal = serve_refused(dir.path(), &[], &[]);
    assert_refused(&refusal, 1, "database", &[]);
    let message = refusal_json(&refusal)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("integrity") || message.contains("malformed"),
        "{message}"
    );
}

#[test]
fn invalid_enable_real_ezkl_is_a_config_error() {
    let dir = DataDir::new();
    let refusal = serve_refused(dir.path(), &[], &[("ENABLE_REAL_EZKL", "maybe")]);
    assert_refused(
        &refusal,
        2,
        "config",
        &["ENABLE_REAL_EZKL", "\"maybe\"", "expected true or false"],
    );
    let refusal = serve_refused(dir.path(), &[], &[("PROOF_CACHE_SIZE", "lots")]);
    assert_refused(&refusal, 2, "config", &["PROOF_CACHE_SIZE", "\"lots\""]);
    // A configuration error is found before anything is written.
    assert!(!dir.path().join("node.db").exists());
    assert!(!dir.path().join("keys").exists());

    // The variable is read: "false" selects mock proofs.
    let node = Node::try_start(dir.path(), &[], &[("ENABLE_REAL_EZKL", "false")]).unwrap();
    assert_eq!(node.startup["backend"], "mock");
}

/// Submits a result and waits for its proof.
fn submit_proved(node: &Node, result: &Value) -> String {
    let (status, accepted) = node.post("/v1/results", result);
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    let proved = node.wait_proved(&job, Duration::from_secs(60));
    assert_eq!(proved["state"], "proved", "{proved}");
    job
}

#[test]
fn corrupt_proof_row_at_runtime_is_rejected_and_the_node_keeps_serving() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let bad = submit_proved(&node, &result(701));
    let good = submit_proved(&node, &result(702));
    // Damaged storage: bytes that are not an envelope, recorded consistently.
    let junk = b"\x00\x01 this is not a proof envelope".to_vec();
    assert_eq!(
        dir.execute(
            "UPDATE proofs SET envelope = ?2, proof_sha256 = ?3 WHERE job_id = ?1",
            rusqlite::params![bad, junk, Digest32::sha256(&junk).to_string()],
        ),
        1
    );
    let (status, settlement) = node.post(&format!("/v1/settlements/{bad}"), &json!({}));
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["outcome"], "rejected", "{settlement}");
    assert_eq!(settlement["reason"], "corrupt_proof", "{settlement}");
    // Reading the proof fails cleanly, with the API's error format.
    let (status, body) = node.get(&format!("/v1/proofs/{bad}"));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal_error", "{body}");
    // Everything else still works.
    let (status, health) = node.get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let (_, settlement) = node.post(&format!("/v1/settlements/{good}"), &json!({}));
    assert_eq!(settlement["outcome"], "settled", "{settlement}");
    let fresh = submit_proved(&node, &result(703));
    let (_, settlement) = node.post(&format!("/v1/settlements/{fresh}"), &json!({}));
    assert_eq!(settlement["outcome"], "settled", "{settlement}");
}

#[test]
fn unreadable_proof_row_is_rejected_not_an_internal_error() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let bad = submit_proved(&node, &result(711));
    let good = submit_proved(&node, &result(712));
    assert_eq!(
        dir.execute(
            "UPDATE proofs SET proof_sha256 = 'not a digest' WHERE job_id = ?1",
            [&bad],
        ),
        1
    );
    // One damaged row must not fail the validation of the others.
    let (status, report) = node.post(
        "/v1/settlements/validate",
        &json!({ "job_ids": [good, bad] }),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["validations"][0]["passed"], true, "{report}");
    assert_eq!(
        report["validations"][1]["reason"], "corrupt_proof",
        "{report}"
    );
    let (status, settlement) = node.post(&format!("/v1/settlements/{bad}"), &json!({}));
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["outcome"], "rejected", "{settlement}");
    assert_eq!(settlement["reason"], "corrupt_proof", "{settlement}");
}

#[test]
fn full_queue_refuses_with_503_and_retry_after() {
    let dir = DataDir::new();
    let node = Node::start(
        dir.path(),
        &["--queue-capacity", "2", "--prover-threads", "1"],
    );
    assert_eq!(node.startup["backend"], "real");
    let threads = 6;
    let per_thread = 5;
    let barrier = Arc::new(Barrier::new(threads));
    let replies: Vec<(u64, common::Reply)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (barrier, node) = (barrier.clone(), &node);
                s.spawn(move || {
                    barrier.wait();
                    (0..per_thread as u64)
                        .map(|i| {
                            let n = 800 + t * 10 + i;
                            let reply = node.try_post("/v1/results", &result(n)).expect("request");
                            (n, reply)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(replies.len(), threads * per_thread);
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (n, reply) in &replies {
        match reply.status {
            202 => {
                assert_eq!(reply.body["duplicate"], false, "{}", reply.body);
                accepted.push(*n);
            }
            503 => {
                assert_eq!(reply.body["error"]["code"], "queue_full", "{}", reply.body);
                assert_eq!(reply.retry_after.as_deref(), Some("1"), "{}", reply.body);
                refused.push(*n);
            }
            other => panic!("result {n}: unexpected status {other}: {}", reply.body),
        }
    }
    assert!(
        !refused.is_empty(),
        "a burst of 30 never filled a queue of 2"
    );
    assert!(accepted.len() >= 2, "accepted: {accepted:?}");

    node.wait_idle(Duration::from_secs(60));
    // The refused results were never stored; every accepted one is proved.
    let stored: HashSet<String> = {
        let db = dir.db();
        let mut stmt = db.prepare("SELECT job_id FROM results").unwrap();
        let rows = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    for n in &refused {
        assert!(
            !stored.contains(&common::job_hex(*n)),
            "refused job {n} is stored"
        );
    }
    assert_eq!(stored.len(), accepted.len());
    for n in &accepted {
        let (_, proof) = node.get(&format!("/v1/proofs/{}", common::job_hex(*n)));
        assert_eq!(proof["state"], "proved", "{proof}");
    }
    assert_eq!(
        node.metric("fabstir_prover_queue_full_total"),
        Some(refused.len() as f64)
    );
    assert_eq!(node.metric("fabstir_prover_queue_depth"), Some(0.0));

    // Retrying later (as Retry-After says) gets each refused result in.
    for n in &refused {
        loop {
            let reply = node.try_post("/v1/results", &result(*n)).expect("request");
            match reply.status {
                202 => break,
                503 => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("retry of {n}: status {other}: {}", reply.body),
            }
        }
    }
    let health = node.wait_idle(Duration::from_secs(60));
    assert_eq!(health["stats"]["proved"], replies.len(), "{health}");
}
