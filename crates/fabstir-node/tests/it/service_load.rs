//! Bounded concurrency and memory under load: a burst larger than the queue
//! gets 202 or 503 and nothing else; a paced stream of real proofs is proved
//! in full within a memory bound.

use crate::common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{result, DataDir, Node, Reply};

/// Peak resident set size allowed for the node.
const MAX_RSS_KIB: u64 = 150 * 1024;

fn stored_jobs(dir: &DataDir) -> HashSet<String> {
    let db = dir.db();
    let mut stmt = db.prepare("SELECT job_id FROM results").unwrap();
    let rows = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn assert_memory_bounded(node: &Node) {
    let peak = node.peak_rss_kib().expect("VmHWM of the node");
    eprintln!("peak RSS of the node: {peak} KiB");
    assert!(
        peak < MAX_RSS_KIB,
        "peak RSS {peak} KiB exceeds {MAX_RSS_KIB} KiB"
    );
}

#[test]
fn burst_of_mock_results_gets_only_202_or_503() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--mock-proofs", "--queue-capacity", "64"]);
    let total = 300u64;
    let threads = 8u64;
    let barrier = Arc::new(Barrier::new(threads as usize));
    let replies: Vec<(u64, Result<Reply, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, node) = (barrier.clone(), &node);
                s.spawn(move || {
                    barrier.wait();
                    (0..total)
                        .filter(|n| n % threads == t)
                        .map(|n| (n, node.try_post("/v1/results", &result(2000 + n))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(replies.len(), total as usize);
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (n, reply) in &replies {
        let reply = reply
            .as_ref()
            .unwrap_or_else(|e| panic!("result {n}: connection error: {e}"));
        match reply.status {
            202 => accepted.push(2000 + n),
            503 => {
                assert_eq!(reply.body["error"]["code"], "queue_full", "{}", reply.body);
                assert_eq!(reply.retry_after.as_deref(), Some("1"));
                refused.push(2000 + n);
            }
            other => panic!("result {n}: status {other}: {}", reply.body),
        }
    }
    eprintln!(
        "burst: {} accepted, {} refused",
        accepted.len(),
        refused.len()
    );
    assert!(accepted.len() >= 64, "only {} accepted", accepted.len());

    let health = node.wait_idle(Duration::from_secs(60));
    assert_eq!(health["stats"]["proved"], accepted.len(), "{health}");
    assert_eq!(health["stats"]["failed"], 0, "{health}");
    let stored = stored_jobs(&dir);
    assert_eq!(stored.len(), accepted.len());
    for n in &accepted {
        assert!(stored.contains(&common::job_hex(*n)), "{n} not stored");
    }
    for n in &refused {
        assert!(!stored.contains(&common::job_hex(*n)), "refused {n} stored");
    }
    assert_eq!(
        node.metric("fabstir_prover_queue_full_total"),
        Some(refused.len() as f64)
    );
    assert_eq!(
        node.metric("fabstir_results_accepted_total"),
        Some(accepted.len() as f64)
    );
    assert_eq!(node.metric("fabstir_prover_queue_depth"), Some(0.0));
    assert_memory_bounded(&node);
}

#[test]
fn paced_real_proofs_are_all_proved_within_memory() {
    let dir = DataDir::new();
    let capacity = 64;
    let node = Node::start(dir.path(), &["--queue-capacity", "64"]);
    assert_eq!(node.startup["backend"], "real");
    let total = 200u64;
    let mut jobs = Vec::new();
    for n in 0..total {
        // Stay well under capacity: wait while the queue is half full.
        loop {
            let (_, ezkl) = node.get("/health/ezkl");
            assert_eq!(ezkl["queue_capacity"], capacity);
            if ezkl["queue_depth"].as_u64().unwrap() < capacity / 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (status, accepted) = node.post("/v1/results", &result(3000 + n));
        assert_eq!(status, 202, "result {n}: {accepted}");
        jobs.push(accepted["job_id"].as_str().unwrap().to_string());
    }
    let health = node.wait_idle(Duration::from_secs(120));
    assert_eq!(health["stats"]["proved"], total, "{health}");
    assert_eq!(health["stats"]["failed"], 0, "{health}");
    assert_eq!(stored_jobs(&dir).len(), total as usize);
    for job in jobs.iter().step_by(20) {
        let (_, proof) = node.get(&format!("/v1/proofs/{job}"));
        assert_eq!(proof["state"], "proved", "{proof}");
        assert_eq!(proof["mock"], false, "{proof}");
    }
    assert_eq!(
        node.metric("fabstir_proofs_generated_total"),
        Some(total as f64)
    );
    assert_eq!(node.metric("fabstir_prover_queue_full_total"), Some(0.0));
    assert_eq!(node.metric("fabstir_prover_queue_depth"), Some(0.0));
    assert_memory_bounded(&node);
}
