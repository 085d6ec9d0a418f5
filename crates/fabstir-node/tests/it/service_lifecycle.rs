//! End-to-end lifecycle against a real node: result -> proof -> verify ->
//! checkpoint -> settlement, with idempotency and input validation; a
//! graceful stop that says what it leaves unfinished.

use crate::common;

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

/// Retention: with `--result-retention 0` a settled job's prompt and
/// response text is deleted in the settling transaction and only their
/// hashes stay; the proof, its verification, validation by job, the
/// settlement record and idempotent resubmission keep working from the
/// hashes, and the space is given back. Unsettled jobs keep their text,
/// and with the default retention (7 days) a settled job keeps it too.
#[test]
fn retention_deletes_settled_text_and_keeps_what_money_needs() {
    let text = |dir: &DataDir, job: &str| -> (String, String, Option<i64>) {
        dir.db()
            .query_row(
                "SELECT prompt, response, pruned_at FROM results WHERE job_id = ?1",
                [job],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap()
    };
    let big = |job: u64| {
        let mut r = result(job);
        r["prompt"] = json!(format!("{job}: {}", "a long prompt ".repeat(20_000)));
        r["response"] = json!(format!("{job}: {}", "a long answer ".repeat(20_000)));
        r
    };

    // The default: a week after settlement.
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let job = node.submit_and_prove(&result(301));
    let (_, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(settlement["outcome"], "settled", "{settlement}");
    assert!(text(&dir, &job).2.is_none(), "pruned before its retention");
    drop(node);

    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--result-retention", "0"]);
    let jobs: Vec<String> = (310..330).map(|n| node.submit_and_prove(&big(n))).collect();
    let unsettled = node.submit_and_prove(&big(330));
    let before = std::fs::metadata(dir.path().join("node.db")).unwrap().len();
    for job in &jobs[..10] {
        node.checkpoint(job, 100);
    }
    for job in &jobs {
        let (status, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
        assert_eq!(status, 200, "{settlement}");
        assert_eq!(settlement["outcome"], "settled", "{settlement}");
        let (prompt, response, pruned) = text(&dir, job);
        assert_eq!((prompt.as_str(), response.as_str()), ("", ""), "{job}");
        assert!(pruned.is_some(), "{job}");
    }
    assert_eq!(
        text(&dir, &unsettled).2,
        None,
        "an unsettled job lost its text"
    );
    assert!(text(&dir, &unsettled).0.len() > 200_000);

    // What money and disputes need still works from the hashes.
    let (status, validations) = node.post(
        "/v1/settlements/validate",
        &json!({ "job_ids": jobs.clone() }),
    );
    assert_eq!(status, 200, "{validations}");
    for validation in validations["validations"].as_array().unwrap() {
        assert_eq!(validation["passed"], true, "{validation}");
    }
    let (status, proof) = node.get(&format!("/v1/proofs/{}", jobs[0]));
    assert_eq!(
        (status, &proof["state"]),
        (200, &json!("proved")),
        "{proof}"
    );
    let (status, verdict) = node.post(
        "/v1/verify",
        &json!({ "result": big(310), "proof": proof["proof"] }),
    );
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], true, "{verdict}");
    let (status, again) = node.post("/v1/results", &big(310));
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    let (status, changed) = node.post("/v1/results", &result(310));
    assert_eq!(status, 409, "{changed}");
    let (_, settled) = node.get(&format!("/v1/settlements/{}", jobs[0]));
    assert_eq!(settled["tokens"], 410 - 100, "{settled}");
    assert!(node.metric("fabstir_results_pruned_total").is_some());

    // The text's pages are given back: the file shrinks once the worker ran.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = std::fs::metadata(dir.path().join("node.db")).unwrap().len();
        if now < before / 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node.db still {now} bytes (was {before} with the text)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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

/// The README's curl session (the first `sh` block of "The node: from result
/// to settlement"), run as written with `NODE` naming the test's node: each
/// response on a line of its own, and the session's outcome (proved,
/// verified, 8 tokens checkpointed, 4 settled). Without a node it says so at
/// once, and its wait is bounded.
#[test]
fn readme_curl_session_runs_as_written() {
    let readme = common::read_repo_file("README.md");
    let section = &readme[readme
        .find("## The node: from result to settlement")
        .expect("the README's session section")..];
    let open = section.find("```sh\n").expect("a sh block") + 6;
    let script = &section[open..open + section[open..].find("```").unwrap()];
    assert!(
        script.contains("for i in $(seq"),
        "the wait is unbounded: {script}"
    );

    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let address = node.base.trim_start_matches("http://").to_string();
    let output = std::process::Command::new("bash")
        .args(["-c", script])
        .env("NODE", &address)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("no node answers"), "{stdout}");
    let documents: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let find = |what: &str, test: &dyn Fn(&serde_json::Value) -> bool| {
        documents
            .iter()
            .find(|d| test(d))
            .unwrap_or_else(|| panic!("no {what} in the session's output:\n{stdout}"))
            .clone()
    };
    find("accepted result", &|d| d["state"] == "queued");
    find("proof", &|d| {
        d["state"] == "proved" && d["proof"].is_object()
    });
    find("verdict", &|d| d["valid"] == true);
    find("checkpoint", &|d| d["tokens_claimed"] == 8);
    let settled = find("settlement", &|d| d["outcome"] == "settled");
    assert_eq!(settled["tokens"], 4, "{settled}");
    find("health", &|d| d["backend"] == "real");
    assert!(
        stdout.lines().any(|l| l.starts_with("fabstir_")),
        "{stdout}"
    );

    // No node: the first check says so at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let preamble: String = script.lines().take(2).collect::<Vec<_>>().join("\n");
    let output = std::process::Command::new("bash")
        .args(["-c", &preamble])
        .env("NODE", format!("127.0.0.1:{port}"))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("no node answers at 127.0.0.1:{port}")),
        "{stdout}"
    );
}
