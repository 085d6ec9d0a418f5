//! Crash recovery with REAL proofs: the node is killed with SIGKILL while it
//! proves, settles and records checkpoints, then restarted on the same data
//! directory. Nothing accepted may be lost and nothing may happen twice.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{post_to, result, DataDir, Node};
use fabstir_zk::Digest32;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Polls `count` (a query on the database) until it reaches `at_least`.
fn wait_count(dir: &DataDir, sql: &str, at_least: i64) -> i64 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let n = dir.count(sql, []);
        if n >= at_least {
            return n;
        }
        assert!(Instant::now() < deadline, "{sql}: {n} < {at_least}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every stored proof matches its recorded SHA-256; returns job -> digest.
fn proof_digests(dir: &DataDir) -> HashMap<String, String> {
    let db = dir.db();
    let mut stmt = db
        .prepare("SELECT job_id, envelope, proof_sha256 FROM proofs")
        .unwrap();
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    rows.map(Result::unwrap)
        .map(|(job, envelope, sha)| {
            assert_eq!(Digest32::sha256(&envelope).to_string(), sha, "job {job}");
            (job, sha)
        })
        .collect()
}

#[test]
fn kill9_while_proving_and_while_settling_loses_and_repeats_nothing() {
    let dir = DataDir::new();
    let flags = ["--prover-threads", "1"];
    let node = Node::start(dir.path(), &flags);
    let jobs: Vec<String> = (1000..1040)
        .map(|n| {
            let (status, accepted) = node.post("/v1/results", &result(n));
            assert_eq!(status, 202, "{accepted}");
            accepted["job_id"].as_str().unwrap().to_string()
        })
        .collect();
    // Kill while the queue is being worked through.
    wait_count(
        &dir,
        "SELECT COUNT(*) FROM results WHERE state = 'proved'",
        2,
    );
    node.kill9();

    let proved_before = proof_digests(&dir);
    let unfinished = dir.count(
        "SELECT COUNT(*) FROM results WHERE state IN ('queued', 'proving')",
        [],
    );
    assert_eq!(dir.count("SELECT COUNT(*) FROM results", []), 40);
    assert!(
        unfinished > 0,
        "all 40 were proved before the kill; nothing to recover"
    );
    assert_eq!(proved_before.len() as i64 + unfinished, 40);
    eprintln!("proved at the kill: {}", proved_before.len());

    let node = Node::start(dir.path(), &flags);
    assert_eq!(node.startup["resumed_jobs"], unfinished, "{}", node.startup);
    let health = node.wait_idle(TIMEOUT);
    assert_eq!(health["stats"]["proved"], 40, "{health}");
    assert_eq!(health["stats"]["failed"], 0, "{health}");
    let proved_after = proof_digests(&dir);
    assert_eq!(proved_after.len(), 40);
    for (job, sha) in &proved_before {
        assert_eq!(&proved_after[job], sha, "job {job} was proved again");
    }
    for job in &jobs {
        let (_, proof) = node.get(&format!("/v1/proofs/{job}"));
        assert_eq!(proof["state"], "proved", "{proof}");
    }

    // Settle everything from several threads; kill the node mid-way.
    let received: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let base = node.base.clone();
    std::thread::scope(|s| {
        for chunk in jobs.chunks(10) {
            let (received, base) = (&received, &base);
            s.spawn(move || {
                for job in chunk {
                    // Paced a little so the kill lands in the middle.
                    std::thread::sleep(Duration::from_millis(10));
                    if let Ok(reply) = post_to(base, &format!("/v1/settlements/{job}"), &json!({}))
                    {
                        assert_eq!(reply.status, 200, "{}", reply.body);
                        assert_eq!(reply.body["outcome"], "settled", "{}", reply.body);
                        let id = reply.body["settlement_id"].as_str().unwrap().to_string();
                        received.lock().unwrap().insert(job.clone(), id);
                    }
                }
            });
        }
        wait_count(&dir, "SELECT COUNT(*) FROM settlements", 8);
        node.kill9();
    });
    let received = received.into_inner().unwrap();
    let settled_at_kill = dir.count("SELECT COUNT(*) FROM settlements", []);
    eprintln!(
        "settled at the kill: {settled_at_kill}, responses received: {}",
        received.len()
    );
    assert!(
        settled_at_kill < 40,
        "every job was settled before the kill; nothing to recover"
    );
    // Every settlement a client was told about is durable.
    assert!(settled_at_kill >= received.len() as i64);

    let node = Node::start(dir.path(), &flags);
    let base = node.base.clone();
    let after: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for chunk in jobs.chunks(10) {
            let (after, base) = (&after, &base);
            s.spawn(move || {
                for job in chunk {
                    let reply = post_to(base, &format!("/v1/settlements/{job}"), &json!({}))
                        .expect("request");
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    assert_eq!(reply.body["outcome"], "settled", "{}", reply.body);
                    let id = reply.body["settlement_id"].as_str().unwrap().to_string();
                    after.lock().unwrap().insert(job.clone(), id);
                }
            });
        }
    });
    let after = after.into_inner().unwrap();
    assert_eq!(after.len(), 40);
    for (job, id) in &received {
        assert_eq!(&after[job], id, "job {job} got a second settlement id");
    }
    assert_eq!(dir.count("SELECT COUNT(*) FROM settlements", []), 40);
    assert_eq!(
        dir.count("SELECT COUNT(DISTINCT job_id) FROM settlements", []),
        40
    );
    for (job, id) in &after {
        let stored: String = dir
            .db()
            .query_row(
                "SELECT settlement_id FROM settlements WHERE job_id = ?1",
                [job],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(&stored, id);
    }
    // Only the settlements made after the restart are paid by this process.
    assert_eq!(
        node.metric("fabstir_settlements_paid_total"),
        Some((40 - settled_at_kill) as f64)
    );
}

/// Checks the ledger against the outbox: every checkpoint submitted, exactly
/// one ledger row each with the checkpoint's proofHash, no proofHash twice.
fn assert_ledger_consistent(dir: &DataDir, checkpoints: i64) {
    assert_eq!(
        dir.count("SELECT COUNT(*) FROM checkpoints", []),
        checkpoints
    );
    assert_eq!(
        dir.count(
            "SELECT COUNT(*) FROM checkpoints WHERE status <> 'submitted'",
            []
        ),
        0
    );
    assert_eq!(dir.count("SELECT COUNT(*) FROM ledger", []), checkpoints);
    assert_eq!(
        dir.count(
            "SELECT COUNT(*) FROM checkpoints c JOIN ledger l ON l.checkpoint_id = c.id
             WHERE l.proof_hash = c.proof_hash AND l.job_id = c.job_id",
            []
        ),
        checkpoints
    );
    assert_eq!(
        dir.count("SELECT COUNT(DISTINCT proof_hash) FROM checkpoints", []),
        checkpoints
    );
    assert_eq!(
        dir.count("SELECT COUNT(DISTINCT proof_hash) FROM ledger", []),
        checkpoints
    );
}

#[test]
fn kill9_while_recording_checkpoints_is_reconciled() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let jobs: Vec<String> = (1100..1110)
        .map(|n| {
            let (status, accepted) = node.post("/v1/results", &result(n));
            assert_eq!(status, 202, "{accepted}");
            accepted["job_id"].as_str().unwrap().to_string()
        })
        .collect();
    node.wait_idle(TIMEOUT);
    // Two checkpoints per job (cumulative 40, then 80): the second needs a
    // fresh proof. A job's two stay in one client thread, in order.
    let wanted: Vec<(String, u64)> = jobs
        .iter()
        .flat_map(|job| [(job.clone(), 40), (job.clone(), 80)])
        .collect();
    let received: Mutex<HashMap<(String, u64), i64>> = Mutex::new(HashMap::new());
    let base = node.base.clone();
    std::thread::scope(|s| {
        for chunk in wanted.chunks(4) {
            let (received, base) = (&received, &base);
            s.spawn(move || {
                for (job, tokens) in chunk {
                    let body = json!({ "job_id": job, "tokens_processed": tokens });
                    if let Ok(reply) = post_to(base, "/v1/checkpoints", &body) {
                        assert_eq!(reply.status, 201, "{}", reply.body);
                        assert_eq!(reply.body["status"], "submitted", "{}", reply.body);
                        let id = reply.body["id"].as_i64().unwrap();
                        received.lock().unwrap().insert((job.clone(), *tokens), id);
                    }
                }
            });
        }
        wait_count(&dir, "SELECT COUNT(*) FROM ledger", 5);
        node.kill9();
    });
    let received = received.into_inner().unwrap();
    let recorded = dir.count("SELECT COUNT(*) FROM checkpoints", []);
    let pending = dir.count(
        "SELECT COUNT(*) FROM checkpoints WHERE status = 'pending'",
        [],
    );
    eprintln!(
        "checkpoints at the kill: {recorded} recorded, {pending} pending, {} responses",
        received.len()
    );
    assert!(
        recorded < 20,
        "all checkpoints were recorded before the kill"
    );
    assert!(recorded >= received.len() as i64);

    let node = Node::start(dir.path(), &[]);
    assert_eq!(
        node.startup["reconciled_checkpoints"], pending,
        "{}",
        node.startup
    );
    assert_ledger_consistent(&dir, recorded);

    // Submitting everything again: the recorded ones come back unchanged, the
    // rest are recorded now.
    for (job, tokens) in &wanted {
        let (status, checkpoint) = node.post(
            "/v1/checkpoints",
            &json!({ "job_id": job, "tokens_processed": tokens }),
        );
        assert!(status == 200 || status == 201, "{status} {checkpoint}");
        assert_eq!(checkpoint["status"], "submitted", "{checkpoint}");
        if let Some(id) = received.get(&(job.clone(), *tokens)) {
            assert_eq!(status, 200, "{checkpoint}");
            assert_eq!(checkpoint["id"], *id, "{checkpoint}");
        }
    }
    assert_ledger_consistent(&dir, 20);
    let (_, health) = node.get("/health");
    assert_eq!(health["stats"]["checkpoints_submitted"], 20, "{health}");
    assert_eq!(health["stats"]["checkpoints_pending"], 0, "{health}");
}

#[test]
fn crash_between_submit_and_record_is_reconciled_once() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let jobs: Vec<String> = (1200..1203)
        .map(|n| {
            let (status, accepted) = node.post("/v1/results", &result(n));
            assert_eq!(status, 202, "{accepted}");
            accepted["job_id"].as_str().unwrap().to_string()
        })
        .collect();
    node.wait_idle(TIMEOUT);
    let ids: Vec<i64> = jobs
        .iter()
        .map(|job| {
            let (status, checkpoint) = node.post(
                "/v1/checkpoints",
                &json!({ "job_id": job, "tokens_processed": 50 }),
            );
            assert_eq!(status, 201, "{checkpoint}");
            assert_eq!(checkpoint["status"], "submitted");
            checkpoint["id"].as_i64().unwrap()
        })
        .collect();
    node.kill9();
    let ledger_id = |checkpoint: i64| -> Option<i64> {
        dir.db()
            .query_row(
                "SELECT id FROM ledger WHERE checkpoint_id = ?1",
                [checkpoint],
                |row| row.get(0),
            )
            .ok()
    };
    let first_receipt = ledger_id(ids[0]).unwrap();
    // Checkpoint 0: the chain has it, the outbox does not know (crash after
    // submitting, before recording the receipt).
    dir.execute(
        "UPDATE checkpoints SET status = 'pending', submitted_at = NULL WHERE id = ?1",
        [ids[0]],
    );
    // Checkpoint 1: in the outbox only (crash before submitting).
    dir.execute("DELETE FROM ledger WHERE checkpoint_id = ?1", [ids[1]]);
    dir.execute(
        "UPDATE checkpoints SET status = 'pending', submitted_at = NULL WHERE id = ?1",
        [ids[1]],
    );

    let node = Node::start(dir.path(), &[]);
    assert_eq!(
        node.startup["reconciled_checkpoints"], 2,
        "{}",
        node.startup
    );
    assert_ledger_consistent(&dir, 3);
    assert_eq!(ledger_id(ids[0]), Some(first_receipt), "resubmitted");
    for (job, id) in jobs.iter().zip(&ids) {
        let (_, list) = node.get(&format!("/v1/checkpoints/{job}"));
        let checkpoints = list["checkpoints"].as_array().unwrap();
        assert_eq!(checkpoints.len(), 1, "{list}");
        assert_eq!(checkpoints[0]["id"], *id);
        assert_eq!(checkpoints[0]["status"], "submitted");
        assert_eq!(
            checkpoints[0]["payload"]["chain"],
            format!("ledger-{}", ledger_id(*id).unwrap()),
            "{list}"
        );
        // Asking again changes nothing.
        let (status, again) = node.post(
            "/v1/checkpoints",
            &json!({ "job_id": job, "tokens_processed": 50 }),
        );
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], *id);
    }
    assert_ledger_consistent(&dir, 3);
    drop(node);
    let node = Node::start(dir.path(), &[]);
    assert_eq!(
        node.startup["reconciled_checkpoints"], 0,
        "{}",
        node.startup
    );
    assert_ledger_consistent(&dir, 3);
}

#[test]
fn concurrent_checkpoints_of_one_job_get_distinct_proof_hashes() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let rounds = 6u64;
    let per_round = 8u64;
    let mut recorded = 0i64;
    for round in 0..rounds {
        let (status, accepted) = node.post("/v1/results", &result(1300 + round));
        assert_eq!(status, 202);
        let job = accepted["job_id"].as_str().unwrap().to_string();
        node.wait_proved(&job, TIMEOUT);
        // Checkpoints of one job for different cumulative counts, all at
        // once: each is recorded with its own proof, or refused because a
        // higher count got there first (nothing is signed then).
        let barrier = std::sync::Barrier::new(per_round as usize);
        let replies: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=per_round)
                .map(|i| {
                    let (node, job, barrier) = (&node, &job, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let reply = node
                            .try_post(
                                "/v1/checkpoints",
                                &json!({ "job_id": job, "tokens_processed": i * 10 }),
                            )
                            .expect("request");
                        (reply.status, reply.body)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut accepted: Vec<&serde_json::Value> = Vec::new();
        for (status, body) in &replies {
            match status {
                201 => {
                    assert_eq!(body["status"], "submitted", "{body}");
                    accepted.push(body);
                }
                409 => assert_eq!(body["error"]["code"], "tokens_not_increasing", "{body}"),
                other => panic!("checkpoint answered {other}: {body}"),
            }
        }
        assert!(!accepted.is_empty());
        recorded += accepted.len() as i64;
        let hashes: HashSet<&str> = accepted
            .iter()
            .map(|body| body["proof_hash"].as_str().unwrap())
            .collect();
        assert_eq!(hashes.len(), accepted.len());
        // In the order recorded, the counts increase and each claims the
        // increase: together exactly the highest count recorded.
        accepted.sort_by_key(|body| body["id"].as_i64());
        let mut last = 0;
        for body in &accepted {
            let processed = body["tokens_processed"].as_u64().unwrap();
            assert!(processed > last, "{body}");
            assert_eq!(body["tokens_claimed"].as_u64().unwrap(), processed - last);
            last = processed;
        }
        let claimed = dir.count(
            "SELECT SUM(l.tokens_claimed) FROM ledger l JOIN checkpoints c ON c.id = l.checkpoint_id WHERE c.job_id = ?1",
            [&job],
        );
        assert_eq!(claimed as u64, last);
    }
    assert_ledger_consistent(&dir, recorded);
}
