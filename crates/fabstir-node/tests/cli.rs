//! The CLI end to end, as an operator runs it: exit codes and JSON output.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabstir-node"))
        .args(args)
        .output()
        .expect("fabstir-node runs")
}

/// The single JSON object a command prints.
fn json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let value = serde_json::from_str(lines.next().expect("one JSON line")).expect("valid JSON");
    assert!(
        lines.next().is_none(),
        "exactly one JSON object on stdout, got: {stdout}"
    );
    value
}

const RESULT: &str = r#"{"job_id": "77", "chain_id": 84532,
  "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
  "model": "llama-3", "prompt": "2+2?", "response": "4", "tokens_used": 3}"#;

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn keygen(&self) -> Value {
        let output = node(&["keygen", "--dir", s(&self.path("keys"))]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json(&output)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_prove_verify_round_trip() {
    let w = Workspace::new();
    let keys = w.keygen();
    assert_eq!(keys["srs_trust"], "insecure-dev");
    let result = w.write("result.json", RESULT);
    let proof = w.path("proof.json");
    let out = node(&[
        "prove",
        "--keys",
        s(&w.path("keys")),
        "--result",
        s(&result),
        "--out",
        s(&proof),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proved = json(&out);
    assert_eq!(proved["host_id"], keys["host_id"]);
    assert_eq!(proved["vk_id"], keys["vk_id"]);

    let out = node(&[
        "verify",
        "--keys",
        s(&w.path("keys")),
        "--result",
        s(&result),
        "--proof",
        s(&proof),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = json(&out);
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["commitment"], proved["commitment"]);

    // The proof file is never overwritten.
    let again = node(&[
        "prove",
        "--keys",
        s(&w.path("keys")),
        "--result",
        s(&result),
        "--out",
        s(&proof),
    ]);
    assert_eq!(again.status.code(), Some(2));
}

/// A circuit version 1 proof (the pinned one, under the development SRS)
/// verifies with a version 2 key directory made from the same SRS: the
/// command derives the version 1 key. The same proof claimed for another
/// host does not.
#[test]
fn verify_accepts_a_version_1_proof_under_the_same_srs() {
    let w = Workspace::new();
    w.keygen();
    let vectors: Value =
        serde_json::from_str(&common::read_repo_file("docs/test-vectors.json")).unwrap();
    let statement = &vectors["statements_v1"][0];
    let mut result = statement["result"].clone();
    result["tokens_used"] = json!(1234);
    let result = w.write("result.json", &result.to_string());
    let proof = common::repo_root().join("crates/fabstir-zk/tests/data/proof_v1.json");
    let host = statement["host_id"].as_str().unwrap();
    let verify = |host: &str| {
        node(&[
            "verify",
            "--keys",
            s(&w.path("keys")),
            "--result",
            s(&result),
            "--proof",
            s(&proof),
            "--host-id",
            host,
        ])
    };
    let out = verify(host);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["vk_id"].as_str().unwrap(),
        common::read_repo_file("crates/fabstir-zk/tests/data/vk_id_v1.txt").trim()
    );
    let other = vectors["statements"][1]["host_id"].as_str().unwrap();
    let out = verify(other);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["reason_code"], "wrong_host");
}

#[test]
fn verify_exit_codes_distinguish_invalid_from_malformed() {
    let w = Workspace::new();
    w.keygen();
    let keys = w.path("keys");
    let result = w.write("result.json", RESULT);
    let proof = w.path("proof.json");
    assert!(node(&[
        "prove",
        "--keys",
        s(&keys),
        "--result",
        s(&result),
        "--out",
        s(&proof)
    ])
    .status
    .success());

    // A different response: the proof does not verify (exit 1, a reason).
    let tampered = w.write(
        "tampered.json",
        &RESULT.replace(r#""response": "4""#, r#""response": "5""#),
    );
    let out = node(&[
        "verify",
        "--keys",
        s(&keys),
        "--result",
        s(&tampered),
        "--proof",
        s(&proof),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let verdict = json(&out);
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["reason_code"], "commitment_mismatch");

    // Another host id: exit 1, wrong_host.
    let other = "0x0000000000000000000000000000000000000000000000000000000000000001";
    let out = node(&[
        "verify",
        "--keys",
        s(&keys),
        "--result",
        s(&result),
        "--proof",
        s(&proof),
        "--host-id",
        other,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["reason_code"], "wrong_host");

    // Malformed inputs: exit 2 with an error object.
    let garbage = w.write("garbage.json", "{not json");
    for (result, proof) in [
        (&garbage, &proof),
        (&result, &garbage),
        (&result, &w.path("missing.json")),
    ] {
        let out = node(&[
            "verify",
            "--keys",
            s(&keys),
            "--result",
            s(result),
            "--proof",
            s(proof),
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(json(&out)["error"].is_string());
    }
    // A flipped byte in the proof hex: malformed (not a curve point) or invalid.
    let text = std::fs::read_to_string(&proof).unwrap();
    let at = text.find("\"proof\": \"0x").unwrap() + 20;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let flipped = w.path("flipped.json");
    std::fs::write(&flipped, bytes).unwrap();
    let out = node(&[
        "verify",
        "--keys",
        s(&keys),
        "--result",
        s(&result),
        "--proof",
        s(&flipped),
    ]);
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "{:?}",
        out.status
    );
}

#[test]
fn keygen_refuses_existing_keys_and_bad_pins() {
    let w = Workspace::new();
    w.keygen();
    let out = node(&["keygen", "--dir", s(&w.path("keys"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    let srs = w.path("keys").join("srs.params");
    let wrong = "0x0000000000000000000000000000000000000000000000000000000000000000";
    let out = node(&[
        "keygen",
        "--dir",
        s(&w.path("other")),
        "--srs",
        s(&srs),
        "--srs-sha256",
        wrong,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["error"].as_str().unwrap().contains("pinned"));
}

#[test]
fn bench_json_prints_one_object_with_every_figure() {
    let out = node(&["bench", "--json", "--iterations", "3", "--batch", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    for key in [
        "prove_ms",
        "verify_ms",
        "batch_verify_ms_per_proof",
        "key_load_ms",
    ] {
        for p in ["p50", "p95", "p99"] {
            assert!(report[key][p].as_f64().unwrap() > 0.0, "{key}.{p}");
        }
    }
    assert!(report["proof_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn demo_runs_end_to_end() {
    let w = Workspace::new();
    let out = node(&["demo", "--dir", s(&w.path("demo-keys"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["tampered_response_rejected"], true);
    assert_eq!(report["other_host_rejected"], true);
    assert!(w.path("demo-keys").join("keys.json").exists());
}
