//! `fabstir-node evm bench` end to end: the generated verifier compiled,
//! deployed on a local anvil and measured with real transactions.
//!
//! Needs Node.js and `npm ci --prefix contracts` (the README's test command).

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the node binary in `cwd` without `FABSTIR_CONTRACTS_DIR`.
fn node(cwd: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabstir-node"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FABSTIR_CONTRACTS_DIR")
        .output()
        .expect("fabstir-node runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn figure(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {report}"))
}

/// Run from a directory outside the repository, the binary finds
/// contracts/ above itself (target/debug/..).
#[test]
fn bench_measures_the_verifier_with_transactions() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let output = node(
        elsewhere.path(),
        &[
            "evm",
            "bench",
            "--json",
            "--batches",
            "1,3",
            "--batch-sizes",
            "1,4",
        ],
    );
    assert!(
        output.status.success(),
        "evm bench failed: {}",
        stderr(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON object on stdout: {stdout}"
    );
    let report: Value = serde_json::from_str(lines[0]).expect("valid JSON");

    let verify = figure(&report, "verify_gas");
    assert!(
        (150_000..=2_000_000).contains(&verify),
        "verify_gas {verify}"
    );
    let runtime = figure(&report, "runtime_bytes");
    assert!(runtime > 0 && runtime <= 24_576, "runtime_bytes {runtime}");
    assert_eq!(report["limits"]["runtime_bytes"], 24_576);
    assert!(figure(&report, "constants_runtime_bytes") > 0);
    assert!(
        figure(&report, "deploy_gas") > 1_000_000,
        "a deployment that creates two contracts: {report}"
    );

    let proof_bytes = figure(&report, "proof_bytes");
    let instances = figure(&report, "num_instances");
    assert!(proof_bytes > 0 && instances > 0);
    // selector, the instance words, the offset and length of `bytes`, the
    // proof padded to 32 bytes.
    assert_eq!(
        figure(&report, "calldata_bytes"),
        4 + 32 * instances + 64 + proof_bytes.div_ceil(32) * 32
    );

    let per_proof = &report["batch_gas_per_proof"];
    let one = per_proof["1"].as_u64().expect("batch of 1");
    let three = per_proof["3"].as_u64().expect("batch of 3");
    assert!(three < one, "batching saves gas per proof: {per_proof}");
    assert!(
        one >= verify,
        "a batch of one does at least what verify does: {one} < {verify}"
    );

    let invalid = figure(&report, "invalid_verify_gas");
    // Bounded: an invalid proof costs what a valid one does (the same
    // checks, a failing pairing), up to calldata differences of a few gas.
    assert!(
        invalid > 100_000 && invalid <= verify + 1_000,
        "an invalid proof costs no more than a valid one: {invalid} vs {verify}"
    );

    // A verified submission verifies a proof and then some.
    let submit = figure(&report, "marketplace_submit_gas");
    let first = figure(&report, "marketplace_first_submit_gas");
    assert!(
        submit > verify && submit < verify + 200_000,
        "marketplace_submit_gas {submit} vs verify_gas {verify}"
    );
    assert!(
        first >= submit,
        "the first submission creates storage: {first} < {submit}"
    );

    // A batch proof pays many checkpoints: per checkpoint, a batch of 4
    // costs far less than a lone submission, and a batch of 1 about one
    // verification.
    let per_checkpoint = |n: &str| {
        report["batch_checkpoint_gas"][n]
            .as_u64()
            .unwrap_or_else(|| panic!("batch_checkpoint_gas of {n}: {report}"))
    };
    let (one, four) = (per_checkpoint("1"), per_checkpoint("4"));
    assert!(
        four * 2 < one && one > verify && one < verify + 100_000,
        "batch of 1: {one}, of 4: {four} per checkpoint, verify {verify}"
    );
    for key in [
        "batch_calldata_per_checkpoint",
        "batch_prove_ms",
        "batch_gas",
    ] {
        assert!(
            report[key]["4"].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }

    // Registration verifies a registration proof and writes two slots.
    let register = figure(&report, "register_gas");
    assert!(
        register > verify && register < verify + 100_000,
        "register_gas {register} vs verify_gas {verify}"
    );

    let vk_id = report["vk_id"].as_str().expect("vk_id");
    assert!(vk_id.starts_with("0x") && vk_id.len() == 66, "{vk_id}");
    assert!(
        report["anvil_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("anvil")),
        "{report}"
    );
    assert!(report["hardfork"].is_string(), "{report}");
}

#[test]
fn a_wrong_contracts_directory_is_reported() {
    let empty = tempfile::tempdir().expect("temp dir");
    let dir = empty.path().to_str().expect("utf-8 path");
    let output = node(empty.path(), &["evm", "bench", "--contracts", dir]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("package.json") && message.contains("--contracts"),
        "{message}"
    );
}

#[test]
fn batch_sizes_must_be_positive() {
    let here = tempfile::tempdir().expect("temp dir");
    let output = node(here.path(), &["evm", "bench", "--batches", "1,0"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
