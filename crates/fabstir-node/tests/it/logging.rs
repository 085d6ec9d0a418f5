//! Structured logs: one JSON event per proof generated, verified, rejected
//! (with its reason) and settled, and never a secret or the prompt or
//! response text. Job ids in log lines and messages read as given (`42`).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{binary, DataDir};
use serde_json::{json, Value};

const PROMPT: &str = "PROMPT-CANARY-7f3a what is in the vault?";
const RESPONSE: &str = "RESPONSE-CANARY-91bc the vault holds gold";

#[test]
fn json_logs_have_one_event_per_step_and_no_secrets_or_text() {
    let dir = DataDir::new();
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-json",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("FABSTIR_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let startup: Value = serde_json::from_str(first.trim()).unwrap();
    let base = format!("http://{}", startup["listening"].as_str().unwrap());
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (stderr, pipe) = (stderr.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                stderr.lock().unwrap().push_str(&(line + "\n"));
            }
        })
    };

    let client = reqwest::blocking::Client::new();
    // A job the node does not know: the message names it as people write it.
    let unknown = client.get(format!("{base}/v1/proofs/42")).send().unwrap();
    assert_eq!(unknown.status(), 404);
    let unknown: Value = unknown.json().unwrap();
    assert_eq!(
        unknown["error"]["message"], "no result for job 42",
        "{unknown}"
    );
    let result = json!({
        "job_id": "42", "chain_id": 84532, "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "model": "llama", "prompt": PROMPT, "response": RESPONSE, "tokens_used": 9,
    });
    assert_eq!(
        client
            .post(format!("{base}/v1/results"))
            .json(&result)
            .send()
            .unwrap()
            .status(),
        202
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let proof = loop {
        let doc: Value = client
            .get(format!("{base}/v1/proofs/42"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if doc["state"] == "proved" {
            // JSON fields keep the canonical form.
            assert_eq!(doc["job_id"], format!("0x{:064x}", 42));
            break doc["proof"].clone();
        }
        assert!(Instant::now() < deadline, "job 42 not proved: {doc}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let client_result = result.clone();
    let verdict: Value = client
        .post(format!("{base}/v1/verify"))
        .json(&json!({ "result": client_result, "proof": proof }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(verdict["valid"], true);
    let mut tampered = client_result.clone();
    tampered["response"] = json!("something else");
    let verdict: Value = client
        .post(format!("{base}/v1/verify"))
        .json(&json!({ "result": tampered, "proof": proof }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(verdict["valid"], false);
    let settled: Value = client
        .post(format!("{base}/v1/settlements/42"))
        .json(&json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(settled["outcome"], "settled");
    // The admin token travels in a request (and a wrong one is refused):
    // neither may reach the logs.
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let token = token.trim().to_string();
    let reloaded = client
        .post(format!("{base}/v1/admin/keys/reload"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let wrong = client
        .post(format!("{base}/v1/admin/keys/reload"))
        .bearer_auth("wrong-token-0123456789-CANARY")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Wait (with a deadline) for the last events to reach the log.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stderr.lock().unwrap().contains("keys reloaded") {
        assert!(Instant::now() < deadline, "no reload event logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();

    let logs = stderr.lock().unwrap().clone();
    let events: Vec<Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let with_message = |message: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["fields"]["message"] == message)
            .collect()
    };
    assert_eq!(with_message("proof generated").len(), 1, "{logs}");
    assert_eq!(with_message("proof verified").len(), 1, "{logs}");
    let rejected = with_message("proof rejected");
    assert_eq!(rejected.len(), 1, "{logs}");
    assert_eq!(rejected[0]["fields"]["reason"], "commitment_mismatch");
    assert_eq!(with_message("job settled").len(), 1, "{logs}");
    // Job ids in log lines read as given: 42, not 0x000…02a.
    for message in [
        "result accepted",
        "proof generated",
        "proof verified",
        "proof rejected",
    ] {
        let events = with_message(message);
        assert_eq!(events.len(), 1, "{message}: {logs}");
        assert_eq!(events[0]["fields"]["job_id"], "42", "{message}: {logs}");
    }
    for event in &events {
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{event}"
        );
    }

    // No prompt or response text, and no secret, anywhere in the logs.
    for needle in ["PROMPT-CANARY", "RESPONSE-CANARY", "vault"] {
        assert!(!logs.contains(needle), "logs contain {needle:?}");
    }
    let wallet = std::fs::read_to_string(dir.path().join("wallet.key")).unwrap();
    let wallet_hex = wallet.trim().trim_start_matches("0x");
    assert!(
        wallet_hex.len() == 64 && !logs.contains(wallet_hex),
        "logs contain the wallet key"
    );
    let host_key = std::fs::read(dir.path().join("keys").join("host.key")).unwrap();
    let sk_hex = hex::encode(&host_key[8..40]);
    assert!(!logs.contains(&sk_hex), "logs contain the host secret");
    assert_eq!(token.len(), 64);
    assert!(
        !logs.contains(&token) && !first.contains(&token),
        "logs or the start-up line contain the admin token"
    );
    assert!(!logs.contains("CANARY"), "logs contain a presented token");
}
