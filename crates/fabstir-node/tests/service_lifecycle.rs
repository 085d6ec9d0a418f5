//! End-to-end lifecycle against a real node: result -> proof -> verify ->
//! checkpoint -> settlement, with idempotency and input validation; a
//! graceful stop that says what it leaves unfinished.

mod common;

use std::time::Duration;

use common::{result, DataDir, Node};
use serde_json::json;

#[test]
fn result_to_settlement() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.startup["srs_trust"], "insecure-dev");
    assert_eq!(node.startup["backend"], "real");

    let (status, accepted) = node.post("/v1/results", &result(42));
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["state"], "queued");
    let job = accepted["job_id"].as_str().unwrap().to_string();

    let proved = node.wait_proved(&job, Duration::from_secs(30));
    assert_eq!(proved["state"], "proved", "{proved}");
    assert_eq!(proved["mock"], false);
    assert_eq!(proved["public_inputs"]["host_id"], node.startup["host_id"]);

    // The client checks the proof statelessly against the result it holds.
    let client_result = result(42);
    let (status, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": client_result, "proof": proved["proof"] }),
    );
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], true, "{verdict}");
    let mut tampered = client_result.clone();
    tampered["response"] = json!("The capital of France is Lyon.");
    let (_, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": tampered, "proof": proved["proof"] }),
    );
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["reason_code"], "commitment_mismatch");

    // Checkpoint: recorded once, the payload carries the signed submission and calldata.
    let (status, checkpoint) = node.post(
        "/v1/checkpoints",
        &json!({ "job_id": job, "tokens_processed": 50 }),
    );
    assert_eq!(status, 201, "{checkpoint}");
    assert_eq!(checkpoint["status"], "submitted");
    let calldata = checkpoint["payload"]["submission"]["calldata"]
        .as_str()
        .unwrap();
    assert!(calldata.starts_with("0x"));
    let (status, again) = node.post(
        "/v1/checkpoints",
        &json!({ "job_id": job, "tokens_processed": 50 }),
    );
    assert_eq!(status, 200);
    assert_eq!(again["id"], checkpoint["id"]);

    // Settlement: once, same id on every call.
    let (status, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["outcome"], "settled");
    // 142 used, 50 already claimed by the checkpoint: the settlement pays the rest.
    assert_eq!(settlement["checkpoint_tokens"], 50);
    assert_eq!(settlement["tokens"], 92);
    for _ in 0..3 {
        let (_, repeat) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
        assert_eq!(repeat["settlement_id"], settlement["settlement_id"]);
    }
    let (status, stored) = node.get(&format!("/v1/settlements/{job}"));
    assert_eq!(status, 200);
    assert_eq!(stored["settlement_id"], settlement["settlement_id"]);

    let (status, health) = node.get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["stats"]["settlements_settled"], 1);
    let (_, ezkl) = node.get("/health/ezkl");
    assert_eq!(ezkl["srs_insecure"], true);
    assert_eq!(ezkl["vk_id"], node.startup["vk_id"]);
}

#[test]
fn same_job_is_idempotent_and_different_content_conflicts() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let (status, first) = node.post("/v1/results", &result(7));
    assert_eq!(status, 202);
    let (status, second) = node.post("/v1/results", &result(7));
    assert_eq!(status, 202);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["job_id"], first["job_id"]);
    let mut other = result(7);
    other["response"] = json!("something else");
    let (status, conflict) = node.post("/v1/results", &other);
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "job_conflict");
    // Nothing changed: the stored response is the first one.
    let response: String = dir
        .db()
        .query_row("SELECT response FROM results", [], |row| row.get(0))
        .unwrap();
    assert_eq!(response, result(7)["response"].as_str().unwrap());
}

#[test]
fn bad_requests_get_json_errors() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let (status, body) = node.post_raw("/v1/results", b"{not json".to_vec());
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    let mut unknown = result(1);
    unknown["surprise"] = json!(1);
    let (status, body) = node.post("/v1/results", &unknown);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    let mut both = result(1);
    both["model_hash"] = json!(format!("0x{}", "ab".repeat(32)));
    let (status, body) = node.post("/v1/results", &both);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_result");
    let (status, body) = node.post_raw("/v1/results", vec![b' '; 5 << 20]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "body_too_large");
    let (status, body) = node.get("/v1/proofs/not-a-number");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_job_id");
    let (status, body) = node.get("/v1/proofs/999");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_job");
    let (status, body) = node.get("/v1/nowhere");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[test]
fn sigterm_logs_the_unfinished_jobs_which_resume_at_the_next_start() {
    let dir = DataDir::new();
    // Real proofs, one at a time: most of the jobs are still queued when
    // the node is stopped.
    let flags = ["--prover-threads", "1"];
    let mut node = Node::try_start(dir.path(), &flags, &[("FABSTIR_LOG", "info")])
        .unwrap_or_else(|e| panic!("node did not start: {e}"));
    let submitted = 12;
    for n in 0..submitted {
        let (status, accepted) = node.post("/v1/results", &result(600 + n));
        assert_eq!(status, 202, "{accepted}");
    }
    let status = node.terminate(Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let stderr = node.stderr_text();
    let line = stderr
        .lines()
        .find(|l| l.contains("shutting down"))
        .unwrap_or_else(|| panic!("no shutdown line in:\n{stderr}"));
    let logged: i64 = line
        .split("shutting down: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no job count in {line:?}"));
    assert!(
        line.contains(" queued or proving; they are kept and resume when the node starts again"),
        "{line}"
    );
    // The count is taken when the signal arrives; a proof may still finish
    // before the process exits, never the other way round.
    let left = dir.count(
        "SELECT COUNT(*) FROM results WHERE state IN ('queued', 'proving')",
        [],
    );
    assert!(left > 0, "every job was proved before the stop: {line}");
    assert!(
        (left..=submitted as i64).contains(&logged),
        "logged {logged}, {left} left in the database: {line}"
    );
    drop(node);

    let again = Node::start(dir.path(), &flags);
    assert_eq!(again.startup["resumed_jobs"], left, "{}", again.startup);
}
