//! Settlement disputes against a real node with REAL proofs: each job is
//! proved, then its stored data is tampered with directly in SQLite (the node
//! re-reads it on every validation), and the settlement must be recorded as
//! rejected with the specific reason.

use crate::common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{result, DataDir, Node};
use fabstir_zk::envelope::HEADER_LEN;
use fabstir_zk::{Digest32, ProofLayout};
use serde_json::{json, Value};

const PROVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Offsets in the binary envelope (see `fabstir_zk::envelope`).
const VERSION_AT: usize = 4;
const CIRCUIT_AT: usize = 5;
const VK_ID_AT: usize = 8;
const INSTANCE_AT: usize = 40;
/// Last (least significant) byte of public input `i`.
fn instance_low_byte(i: usize) -> usize {
    INSTANCE_AT + 32 * i + 31
}
const CHAIN_ID: usize = 0;
const JOB_LO: usize = 3;
const HOST_ID: usize = 4;
const COMMITMENT: usize = 5;

/// Submits a result and waits for its real proof; returns the job id as the
/// node names it.
fn submit_proved(node: &Node, result: &Value) -> String {
    let (status, accepted) = node.post("/v1/results", result);
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    let proved = node.wait_proved(&job, PROVE_TIMEOUT);
    assert_eq!(proved["state"], "proved", "{proved}");
    assert_eq!(proved["mock"], false, "{proved}");
    job
}

/// Settles a job; the settlement document.
fn settle(node: &Node, job: &str) -> Value {
    let (status, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(status, 200, "settling {job}: {settlement}");
    assert_eq!(settlement["job_id"], job, "{settlement}");
    settlement
}

/// Settles a job and checks it is rejected for `reason`, with nothing paid,
/// in the response and in the settlements table.
fn assert_rejected(node: &Node, dir: &DataDir, job: &str, reason: &str) {
    let settlement = settle(node, job);
    assert_eq!(settlement["outcome"], "rejected", "{job}: {settlement}");
    assert_eq!(settlement["reason"], reason, "{job}: {settlement}");
    assert_eq!(settlement["tokens"], 0, "{job}: {settlement}");
    let (outcome, stored_reason, tokens): (String, Option<String>, i64) = dir
        .db()
        .query_row(
            "SELECT outcome, reason, tokens FROM settlements WHERE job_id = ?1",
            [job],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (outcome.as_str(), stored_reason.as_deref(), tokens),
        ("rejected", Some(reason), 0),
        "{job}"
    );
}

fn assert_settled(node: &Node, job: &str, tokens: u64) {
    let settlement = settle(node, job);
    assert_eq!(settlement["outcome"], "settled", "{job}: {settlement}");
    assert_eq!(settlement["reason"], Value::Null, "{job}: {settlement}");
    assert_eq!(settlement["tokens"], tokens, "{job}: {settlement}");
}

/// The stored envelope of a job.
fn envelope(dir: &DataDir, job: &str) -> Vec<u8> {
    dir.db()
        .query_row(
            "SELECT envelope FROM proofs WHERE job_id = ?1",
            [job],
            |row| row.get(0),
        )
        .unwrap()
}

/// Replaces a job's stored envelope; with `update_sha` its recorded SHA-256
/// follows, so the change is not caught as a mismatch of the two.
fn set_envelope(dir: &DataDir, job: &str, bytes: &[u8], update_sha: bool) {
    let changed = if update_sha {
        dir.execute(
            "UPDATE proofs SET envelope = ?2, proof_sha256 = ?3 WHERE job_id = ?1",
            rusqlite::params![job, bytes, Digest32::sha256(bytes).to_string()],
        )
    } else {
        dir.execute(
            "UPDATE proofs SET envelope = ?2 WHERE job_id = ?1",
            rusqlite::params![job, bytes],
        )
    };
    assert_eq!(changed, 1);
}

/// Flips the low bit of byte `at` of a job's envelope.
fn flip(dir: &DataDir, job: &str, at: usize, update_sha: bool) {
    let mut bytes = envelope(dir, job);
    bytes[at] ^= 0x01;
    set_envelope(dir, job, &bytes, update_sha);
}

/// A result whose content (prompt, response, model) is the same for every
/// job: only the job id tells two of them apart.
fn same_content(job: u64) -> Value {
    let mut r = result(job);
    r["prompt"] = json!("What is the capital of France?");
    r["tokens_used"] = json!(100);
    r
}

#[test]
fn tampered_results_are_rejected_with_their_reason() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.startup["backend"], "real");
    let jobs: Vec<String> = (101..=108)
        .map(|n| submit_proved(&node, &result(n)))
        .collect();
    let [good, response, prompt, model, chain, market, host, both] =
        <[String; 8]>::try_from(jobs).unwrap();

    let set = |job: &str, column: &str, value: &dyn rusqlite::ToSql| {
        let sql = format!("UPDATE results SET {column} = ?2 WHERE job_id = ?1");
        assert_eq!(dir.execute(&sql, rusqlite::params![job, value]), 1);
    };
    set(&response, "response", &"The capital of France is Lyon.");
    set(
        &prompt,
        "prompt",
        &"Question number 103: what is the capital of Spain?",
    );
    set(
        &model,
        "model_name",
        &"TheBloke/Llama-2-70B-Chat-GGUF/llama-2-70b-chat.Q4_K_M.gguf",
    );
    // The settlement-relevant hashes (model, input, output) are unchanged by a
    // new chain id, so the hash comparisons pass; the check of the envelope's
    // public inputs then finds chain_id differs (job_id and host_id still
    // match, and they are checked first): wrong_chain.
    set(&chain, "chain_id", &8453i64);
    set(
        &market,
        "marketplace",
        &"0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    );
    // The job attributed to another host: the proof names this one.
    set(&host, "host_id", &format!("0x{}01", "00".repeat(31)));
    // Tampering consistently (the response and the proved output hash) gets
    // past the hash comparison, but not the commitment the proof binds.
    let lyon = "The capital of France is Lyon.";
    set(&both, "response", &lyon);
    assert_eq!(
        dir.execute(
            "UPDATE proofs SET output_hash = ?2 WHERE job_id = ?1",
            rusqlite::params![both, Digest32::sha256(lyon.as_bytes()).to_string()],
        ),
        1
    );

    assert_rejected(&node, &dir, &response, "output_tampered");
    assert_rejected(&node, &dir, &prompt, "input_tampered");
    assert_rejected(&node, &dir, &model, "model_mismatch");
    assert_rejected(&node, &dir, &chain, "wrong_chain");
    assert_rejected(&node, &dir, &market, "wrong_marketplace");
    assert_rejected(&node, &dir, &host, "wrong_host");
    assert_rejected(&node, &dir, &both, "invalid_proof");
    assert_settled(&node, &good, 201);

    // The rejections are final: undoing the tampering changes nothing.
    set(&response, "response", &"The capital of France is Paris.");
    assert_rejected(&node, &dir, &response, "output_tampered");

    let (_, health) = node.get("/health");
    assert_eq!(health["stats"]["settlements_settled"], 1, "{health}");
    assert_eq!(health["stats"]["settlements_rejected"], 7, "{health}");
    assert_eq!(node.metric("fabstir_settlements_paid_total"), Some(1.0));
    assert_eq!(
        node.metric(r#"fabstir_settlement_validations_total{outcome="output_tampered"}"#),
        Some(1.0)
    );
}

#[test]
fn tampered_tokens_used_is_rejected() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let job = submit_proved(&node, &result(151));
    assert_eq!(
        dir.execute(
            "UPDATE results SET tokens_used = 1000000 WHERE job_id = ?1",
            [&job],
        ),
        1
    );
    let settlement = settle(&node, &job);
    // The proof binds the tokens_used it was made for (circuit version 2),
    // and the result's content hash covers it too: nothing may be paid for
    // the inflated amount, and the proof's public `tokens` names why.
    assert_ne!(settlement["tokens"], 1_000_000, "{settlement}");
    assert_eq!(settlement["outcome"], "rejected", "{settlement}");
    assert_eq!(settlement["reason"], "wrong_tokens", "{settlement}");
}

#[test]
fn a_proof_reused_for_another_job_is_a_replay() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    // Same content, different job ids: the proofs rows differ only by the
    // envelope (whose public inputs name the job) and its SHA-256.
    let a = submit_proved(&node, &same_content(201));
    let b = submit_proved(&node, &same_content(202));
    let c = submit_proved(&node, &same_content(203));
    let d = submit_proved(&node, &same_content(204));
    let hashes = |job: &str| -> (String, String, String) {
        dir.db()
            .query_row(
                "SELECT model_hash, input_hash, output_hash FROM proofs WHERE job_id = ?1",
                [job],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap()
    };
    assert_eq!(hashes(&a), hashes(&b));

    // 1. A's whole proofs row copied onto B.
    let copied = dir.execute(
        "UPDATE proofs SET (envelope, mock, vk_id, commitment, proof_sha256, model_hash, input_hash, output_hash)
           = (SELECT envelope, mock, vk_id, commitment, proof_sha256, model_hash, input_hash, output_hash
              FROM proofs WHERE job_id = ?1)
         WHERE job_id = ?2",
        [&a, &b],
    );
    assert_eq!(copied, 1);
    // Both jobs now hold the same proof bytes; the validator's lookup of the
    // proof's SHA-256 in other jobs flags both of them (it does not try to
    // tell the original from the copy), before looking at the envelope.
    let (status, report) = node.post("/v1/settlements/validate", &json!({ "job_ids": [a, b] }));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], 0, "{report}");
    for (validation, other) in report["validations"]
        .as_array()
        .unwrap()
        .iter()
        .zip([&b, &a])
    {
        assert_eq!(validation["passed"], false, "{validation}");
        assert_eq!(validation["reason"], "replayed_proof", "{validation}");
        assert_eq!(
            validation["detail"],
            format!(
                "the same proof is stored for job {}",
                fabstir_zk::JobId::parse(other).unwrap().short()
            ),
            "{validation}"
        );
    }
    assert_rejected(&node, &dir, &b, "replayed_proof");
    assert_rejected(&node, &dir, &a, "replayed_proof");

    // 2. C's proof moved to D (C's row removed, so no other job holds the
    // same bytes): the envelope itself names job C.
    let moved = dir.execute(
        "UPDATE proofs SET (envelope, proof_sha256) = (SELECT envelope, proof_sha256 FROM proofs WHERE job_id = ?1)
         WHERE job_id = ?2",
        [&c, &d],
    );
    assert_eq!(moved, 1);
    assert_eq!(dir.execute("DELETE FROM proofs WHERE job_id = ?1", [&c]), 1);
    let (_, report) = node.post("/v1/settlements/validate", &json!({ "job_ids": [d] }));
    let validation = &report["validations"][0];
    assert_eq!(validation["reason"], "replayed_proof", "{report}");
    assert_eq!(
        validation["detail"], "the proof was made for another job",
        "{report}"
    );
    assert_rejected(&node, &dir, &d, "replayed_proof");
    // C still says proved but has no proof any more.
    assert_rejected(&node, &dir, &c, "missing_proof");
    assert_eq!(node.metric("fabstir_settlements_paid_total"), Some(0.0));
}

#[test]
fn another_hosts_proof_is_wrong_host() {
    let dir = DataDir::new();
    let other_dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let other = Node::start(other_dir.path(), &[]);
    assert_ne!(node.startup["host_id"], other.startup["host_id"]);
    // The development SRS is deterministic, so both hosts have the same
    // verifying key: only the host differs.
    assert_eq!(node.startup["vk_id"], other.startup["vk_id"]);

    // The very same result, proved by both hosts.
    let job = submit_proved(&node, &result(301));
    assert_eq!(submit_proved(&other, &result(301)), job);
    let foreign = envelope(&other_dir, &job);
    assert_ne!(foreign, envelope(&dir, &job));

    // Stateless check first: the other host's proof, presented as this
    // host's, is not accepted.
    let (_, proved) = other.get(&format!("/v1/proofs/{job}"));
    let client_result = result(301);
    let (status, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": client_result, "proof": proved["proof"] }),
    );
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["reason_code"], "wrong_host", "{verdict}");
    // With the right host, the proof verifies for the result's tokens_used
    // only: it binds the count (circuit version 2).
    let host = &proved["host_id"];
    let (_, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": client_result, "proof": proved["proof"], "host_id": host }),
    );
    assert_eq!(verdict["valid"], true, "{verdict}");
    let mut more_tokens = client_result.clone();
    more_tokens["tokens_used"] = json!(client_result["tokens_used"].as_u64().unwrap() + 1);
    let (_, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": more_tokens, "proof": proved["proof"], "host_id": host }),
    );
    assert_eq!(verdict["reason_code"], "wrong_tokens", "{verdict}");

    // The other host's envelope (with a matching SHA-256, so it is not merely
    // corrupt) in this node's proofs row: same job, chain, marketplace and
    // content, but the public input host_id is the other host's.
    set_envelope(&dir, &job, &foreign, true);
    assert_rejected(&node, &dir, &job, "wrong_host");
}

#[test]
fn corrupt_proof_bytes_by_position() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let layout = ProofLayout::get();
    let first_point = HEADER_LEN;
    let first_scalar = HEADER_LEN + 64 * layout.leading_points;
    assert_eq!(
        envelope(&dir, &submit_proved(&node, &result(400))).len(),
        layout.envelope_len()
    );

    // (byte flipped, SHA-256 updated, expected reason)
    let cases: &[(usize, bool, &str)] = &[
        // Header damage: the envelope no longer parses.
        (0, true, "corrupt_proof"),
        (VERSION_AT, true, "corrupt_proof"),
        (CIRCUIT_AT, true, "corrupt_proof"),
        // Another vk_id: a key this node does not hold.
        (VK_ID_AT, true, "unknown_verifying_key"),
        // Public inputs: each is compared with the statement.
        (instance_low_byte(CHAIN_ID), true, "wrong_chain"),
        (instance_low_byte(JOB_LO), true, "replayed_proof"),
        (instance_low_byte(HOST_ID), true, "wrong_host"),
        (instance_low_byte(COMMITMENT), true, "invalid_proof"),
        // A proof point's y coordinate: off the curve, refused when parsed.
        (first_point + 63, true, "corrupt_proof"),
        // A scalar's low byte: still canonical, so the envelope parses and
        // the pairing check fails.
        (first_scalar + 31, true, "invalid_proof"),
        // The last byte, SHA-256 not updated: caught by the digest.
        (layout.envelope_len() - 1, false, "corrupt_proof"),
        // The same scalar flip with the stale digest: the digest comes first.
        (first_scalar + 31, false, "corrupt_proof"),
    ];
    let jobs: Vec<String> = (0..cases.len() as u64)
        .map(|i| submit_proved(&node, &result(401 + i)))
        .collect();
    for (job, (at, update_sha, _)) in jobs.iter().zip(cases) {
        flip(&dir, job, *at, *update_sha);
    }
    // Truncated by one byte (digest updated) and trailing garbage.
    let truncated = submit_proved(&node, &result(450));
    let mut bytes = envelope(&dir, &truncated);
    bytes.pop();
    set_envelope(&dir, &truncated, &bytes, true);
    let extended = submit_proved(&node, &result(451));
    let mut bytes = envelope(&dir, &extended);
    bytes.push(0);
    set_envelope(&dir, &extended, &bytes, true);

    for (job, (at, update_sha, reason)) in jobs.iter().zip(cases) {
        let settlement = settle(&node, job);
        assert_eq!(
            (
                settlement["outcome"].as_str(),
                settlement["reason"].as_str()
            ),
            (Some("rejected"), Some(*reason)),
            "byte {at} flipped (digest updated: {update_sha}): {settlement}"
        );
    }
    assert_rejected(&node, &dir, &truncated, "corrupt_proof");
    assert_rejected(&node, &dir, &extended, "corrupt_proof");
    assert_eq!(node.metric("fabstir_settlements_paid_total"), Some(0.0));
}

#[test]
fn batch_validation_gives_each_job_its_reason() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let jobs: Vec<String> = (501..=508)
        .map(|n| submit_proved(&node, &result(n)))
        .collect();
    let first_scalar = HEADER_LEN + 64 * ProofLayout::get().leading_points;
    // 501, 503, 505, 507 stay good.
    assert_eq!(
        dir.execute(
            "UPDATE results SET response = 'tampered' WHERE job_id = ?1",
            [&jobs[1]],
        ),
        1
    );
    // Parses, fails the pairing check: only batch verification catches it.
    flip(&dir, &jobs[3], first_scalar + 31, true);
    flip(&dir, &jobs[5], 100, false);
    assert_eq!(
        dir.execute(
            "UPDATE results SET prompt = 'tampered' WHERE job_id = ?1",
            [&jobs[7]],
        ),
        1
    );
    let unknown = common::job_hex(599);
    let expected: Vec<(&str, Option<&str>)> = vec![
        (&jobs[0], None),
        (&jobs[1], Some("output_tampered")),
        (&jobs[2], None),
        (&jobs[3], Some("invalid_proof")),
        (&jobs[4], None),
        (&jobs[5], Some("corrupt_proof")),
        (&jobs[6], None),
        (&jobs[7], Some("input_tampered")),
        (&unknown, Some("missing_result")),
    ];
    let ids: Vec<&str> = expected.iter().map(|(job, _)| *job).collect();
    let (status, report) = node.post("/v1/settlements/validate", &json!({ "job_ids": ids }));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], 4, "{report}");
    assert_eq!(report["failed"], 5, "{report}");
    let validations = report["validations"].as_array().unwrap();
    assert_eq!(validations.len(), expected.len());
    for (validation, (job, reason)) in validations.iter().zip(&expected) {
        assert_eq!(validation["job_id"], *job, "{validation}");
        assert_eq!(validation["passed"], reason.is_none(), "{validation}");
        assert_eq!(validation["reason"].as_str(), *reason, "{validation}");
    }
    // Validation records nothing.
    assert_eq!(dir.count("SELECT COUNT(*) FROM settlements", []), 0);

    // The same good jobs again with only the invalid proof among them (the
    // batch that fails is re-verified proof by proof).
    let mixed = [&jobs[0], &jobs[2], &jobs[3], &jobs[4], &jobs[6]];
    let (_, report) = node.post("/v1/settlements/validate", &json!({ "job_ids": mixed }));
    assert_eq!(report["passed"], 4, "{report}");
    assert_eq!(
        report["validations"][2]["reason"], "invalid_proof",
        "{report}"
    );

    // Settling one by one agrees with the batch.
    for (job, reason) in expected.iter().take(8) {
        match reason {
            None => {
                let settlement = settle(&node, job);
                assert_eq!(settlement["outcome"], "settled", "{settlement}");
            }
            Some(reason) => assert_rejected(&node, &dir, job, reason),
        }
    }
    let (status, body) = node.post(&format!("/v1/settlements/{unknown}"), &json!({}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_job");
}

#[test]
fn concurrent_settlement_happens_exactly_once() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let job = submit_proved(&node, &result(601));
    let threads = 30;
    let barrier = Arc::new(Barrier::new(threads));
    let path = format!("/v1/settlements/{job}");
    let replies: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = barrier.clone();
                let (node, path) = (&node, &path);
                s.spawn(move || {
                    barrier.wait();
                    let reply = node.try_post(path, &json!({})).expect("request");
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    reply.body
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = &replies[0];
    assert_eq!(first["outcome"], "settled", "{first}");
    assert_eq!(first["tokens"], 701, "{first}");
    assert!(first["settlement_id"].as_str().unwrap().starts_with("stl_"));
    for reply in &replies {
        assert_eq!(reply["settlement_id"], first["settlement_id"], "{reply}");
        assert_eq!(reply["created_at_ms"], first["created_at_ms"], "{reply}");
    }
    assert_eq!(
        dir.count("SELECT COUNT(*) FROM settlements WHERE job_id = ?1", [&job]),
        1
    );
    let stored: String = dir
        .db()
        .query_row(
            "SELECT settlement_id FROM settlements WHERE job_id = ?1",
            [&job],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(first["settlement_id"], stored);
    assert_eq!(node.metric("fabstir_settlements_paid_total"), Some(1.0));
    // Validated once: the other 29 found the settlement already recorded.
    assert_eq!(
        node.metric(r#"fabstir_settlement_validations_total{outcome="passed"}"#),
        Some(1.0)
    );
}

#[test]
fn a_failed_proof_settles_as_missing_proof() {
    let dir = DataDir::new();
    // Every proof times out: the job ends failed.
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "prove_timeout_ms = 1\n").unwrap();
    let node = Node::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let (status, accepted) = node.post("/v1/results", &result(901));
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    let failed = node.wait_proved(&job, PROVE_TIMEOUT);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["failure"].as_str().unwrap().starts_with("timeout"),
        "{failed}"
    );
    assert_rejected(&node, &dir, &job, "missing_proof");
    // Final: re-posting does not re-prove it, and the settlement stays.
    let (status, again) = node.post("/v1/results", &result(901));
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["state"], "failed");
    assert_rejected(&node, &dir, &job, "missing_proof");
    assert_eq!(dir.count("SELECT COUNT(*) FROM settlements", []), 1);
}

/// A checkpoint request that the payment gate refuses: 409
/// `checkpoint_refused` naming settlement's reason, and nothing recorded,
/// signed or put on the ledger for the job.
fn assert_checkpoint_refused(node: &Node, dir: &DataDir, job: &str, tokens: u64, reason: &str) {
    let (status, body) = node.post(
        "/v1/checkpoints",
        &json!({ "job_id": job, "tokens_processed": tokens }),
    );
    assert_eq!(status, 409, "{job} at {tokens}: {body}");
    assert_eq!(body["error"]["code"], "checkpoint_refused", "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{message}");
    assert!(message.contains("nothing was signed"), "{message}");
    let count = |table: &str| -> i64 {
        dir.db()
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE job_id = ?1"),
                [job],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert_eq!(count("checkpoints"), 0, "{job}: a checkpoint was recorded");
    assert_eq!(count("ledger"), 0, "{job}: the ledger holds a claim");
}

/// The reproductions of "checkpoints skip the checks settlement applies":
/// with the node stopped, the database edited and the node restarted, a
/// checkpoint was signed for an inflated `tokens_used`, an edited response
/// and a corrupted proof. Each is now refused with the reason settlement
/// gives, and settlement still rejects it; an untouched job still pays.
#[test]
fn checkpoints_pay_only_what_settlement_would() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let mut inflated = result(161);
    inflated["tokens_used"] = json!(120);
    let inflated = submit_proved(&node, &inflated);
    let edited = submit_proved(&node, &result(162));
    let corrupt = submit_proved(&node, &result(163));
    let resigned = submit_proved(&node, &result(164));
    let untouched = submit_proved(&node, &result(165));
    node.kill9();

    assert_eq!(
        dir.execute(
            "UPDATE results SET tokens_used = 120000 WHERE job_id = ?1",
            [&inflated],
        ),
        1
    );
    assert_eq!(
        dir.execute(
            "UPDATE results SET response = 'An edited answer.' WHERE job_id = ?1",
            [&edited],
        ),
        1
    );
    // A corrupted proof that keeps the old digest, and one whose digest was
    // recomputed (its public commitment no longer matches).
    flip(&dir, &corrupt, instance_low_byte(6) + 40, false);
    flip(&dir, &resigned, instance_low_byte(COMMITMENT), true);

    let node = Node::start(dir.path(), &[]);
    assert_checkpoint_refused(&node, &dir, &inflated, 1000, "wrong_tokens");
    assert_checkpoint_refused(&node, &dir, &inflated, 120_000, "wrong_tokens");
    assert_checkpoint_refused(&node, &dir, &edited, 10, "output_tampered");
    assert_checkpoint_refused(&node, &dir, &corrupt, 10, "corrupt_proof");
    assert_checkpoint_refused(&node, &dir, &resigned, 10, "invalid_proof");
    assert_eq!(
        node.metric("fabstir_checkpoints_refused_total{reason=\"wrong_tokens\"}"),
        Some(2.0)
    );
    // The same jobs, settled: the same reasons.
    assert_rejected(&node, &dir, &inflated, "wrong_tokens");
    assert_rejected(&node, &dir, &edited, "output_tampered");
    assert_rejected(&node, &dir, &corrupt, "corrupt_proof");
    assert_rejected(&node, &dir, &resigned, "invalid_proof");
    // An untouched job: checkpointed twice (the second with a fresh proof),
    // then settled for the rest.
    assert_eq!(node.checkpoint(&untouched, 10)["tokens_claimed"], 10);
    assert_eq!(node.checkpoint(&untouched, 100)["tokens_claimed"], 90);
    assert_settled(&node, &untouched, (100 + 165) - 100);
}

/// A job proved with mock proofs, then served in production: its
/// checkpoint was signed (201, ledger 10 tokens) while settlement refused
/// it as `mock_proof`. Now both refuse it.
#[test]
fn a_mock_proof_pays_nothing_in_production() {
    let dir = DataDir::new();
    common::ceremony_keygen(dir.path());
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let (status, accepted) = node.post("/v1/results", &result(171));
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    let proved = node.wait_proved(&job, PROVE_TIMEOUT);
    assert_eq!(proved["mock"], true, "{proved}");
    node.kill9();

    let node = common::start_production(dir.path());
    let (status, body) = node.post_with_token(
        "/v1/checkpoints",
        &json!({ "job_id": job, "tokens_processed": 10 }),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "checkpoint_refused", "{body}");
    assert_eq!(body["error"]["reason"], "mock_proof", "{body}");
    let ledger: i64 = dir
        .db()
        .query_row("SELECT COUNT(*) FROM ledger", [], |row| row.get(0))
        .unwrap();
    assert_eq!(ledger, 0);
    let (_, settlement) = node.post_with_token(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(settlement["outcome"], "rejected", "{settlement}");
    assert_eq!(settlement["reason"], "mock_proof", "{settlement}");
}
