//! The CLI end to end, as an operator runs it: exit codes and JSON output.

use crate::common;

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
        let output = node(&["keygen", "--keys-dir", s(&self.path("keys"))]);
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
        "--keys-dir",
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
        "--keys-dir",
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
        "--keys-dir",
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
            "--keys-dir",
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
        "--keys-dir",
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
        "--keys-dir",
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
        "--keys-dir",
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
            "--keys-dir",
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
        "--keys-dir",
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
    let out = node(&["keygen", "--keys-dir", s(&w.path("keys"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    let srs = w.path("keys").join("srs.params");
    let wrong = "0x0000000000000000000000000000000000000000000000000000000000000000";
    let out = node(&[
        "keygen",
        "--keys-dir",
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
    let out = node(&["demo", "--keys-dir", s(&w.path("demo-keys"))]);
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

/// Runs a command in `dir` with extra environment variables.
fn node_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fabstir-node"));
    command.current_dir(dir).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("fabstir-node runs")
}

/// The names listed under `Commands:` in `fabstir-node <words> --help`.
fn subcommands(words: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.push("--help");
    let out = node(&args);
    assert!(out.status.success(), "{args:?} --help failed");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(start) = help.find("Commands:\n") else {
        return Vec::new();
    };
    help[start + "Commands:\n".len()..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command that runs (`keys backup`, not `keys`), from the binary's help.
fn leaf_commands() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut stack = vec![Vec::new()];
    while let Some(words) = stack.pop() {
        let subs = subcommands(&words);
        if subs.is_empty() && !words.is_empty() {
            leaves.push(words);
            continue;
        }
        for sub in subs {
            let mut next = words.clone();
            next.push(sub);
            stack.push(next);
        }
    }
    leaves.sort();
    assert!(leaves.len() >= 15, "commands parsed badly: {leaves:?}");
    leaves
}

/// A usage error: exit 2, exactly one JSON object with code `usage`, and
/// clap's text with the usage on standard error.
#[track_caller]
fn assert_usage_error(args: &[&str], message_has: &str) {
    let out = node(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let report = json(&out);
    assert_eq!(report["code"], "usage", "{args:?}: {report}");
    let message = report["error"].as_str().unwrap();
    assert!(
        message.contains(message_has),
        "{args:?}: {message:?} lacks {message_has:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error:") || stderr.contains("Usage:"),
        "{args:?}: {stderr}"
    );
}

#[test]
fn usage_errors_print_one_json_object_with_code_usage_and_help_and_version_print_text() {
    for command in leaf_commands() {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--no-such-flag");
        assert_usage_error(&args, "'--no-such-flag'");
    }
    assert_usage_error(&[], "a subcommand is required");
    assert_usage_error(&["keys"], "usage: fabstir-node keys <COMMAND>");
    assert_usage_error(&["keys", "frobnicate"], "'frobnicate'");
    assert_usage_error(
        &["prove", "--keys-dir", "k"],
        "the following required arguments were not provided: --result <RESULT>, --out <OUT>",
    );
    assert_usage_error(
        &["prove", "--reslt", "x"],
        "a similar argument exists: '--result'",
    );
    assert_usage_error(
        &["bench", "--iterations", "many"],
        "'--iterations <ITERATIONS>'",
    );
    // --help and --version: text on standard output, exit 0.
    for args in [
        &["--help"][..],
        &["--version"],
        &["keys", "backup", "--help"],
    ] {
        let out = node(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("fabstir-node") || text.contains("Usage:"),
            "{args:?}: {text}"
        );
        assert!(
            serde_json::from_str::<Value>(text.trim()).is_err(),
            "{text}"
        );
    }
}

/// The key directory flag is `--keys-dir` for every command; the old names
/// still parse but are not shown.
#[test]
fn key_directory_flag_is_keys_dir_everywhere_with_hidden_old_names() {
    let w = Workspace::new();
    let missing = w.path("no-such-keys");
    let missing = s(&missing);
    let result = w.write("result.json", RESULT);
    let result = s(&result);
    let out = w.path("out");
    let out = s(&out);
    // (command, old flag, other arguments)
    let cases: [(&[&str], &str, &[&str]); 11] = [
        (
            &["keygen"],
            "--dir",
            &["--srs", "x", "--srs-sha256", "0x00"],
        ),
        (&["demo"], "--dir", &["--no-such-flag"]),
        (&["prove"], "--keys", &["--result", result, "--out", out]),
        (
            &["verify"],
            "--keys",
            &["--result", result, "--proof", result],
        ),
        (&["keys", "verify"], "--dir", &[]),
        (
            &["keys", "backup"],
            "--dir",
            &["--out", out, "--passphrase-file", result],
        ),
        (
            &["keys", "restore"],
            "--dir",
            &["--in", out, "--passphrase-file", result],
        ),
        (&["keys", "rotate"], "--dir", &["--new-host-key"]),
        (&["keys", "export-vk"], "--keys", &["--out", out]),
        (&["evm", "verifier"], "--keys", &["--out", out]),
        (
            &["chain", "register"],
            "--keys",
            &["--rpc-url", "http://127.0.0.1:1", "--marketplace", "0x01"],
        ),
    ];
    let mut with_key_dir: Vec<Vec<String>> = cases
        .iter()
        .map(|(c, _, _)| c.iter().map(|w| w.to_string()).collect())
        .collect();
    with_key_dir.push(vec!["evm".into(), "bench".into()]);
    with_key_dir.push(vec!["chain".into(), "deploy".into()]);
    with_key_dir.push(vec!["serve".into()]);
    for command in leaf_commands() {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let help = String::from_utf8_lossy(&node(&args).stdout).into_owned();
        let listed = help.contains("--keys-dir <DIR>");
        assert_eq!(
            listed,
            with_key_dir.contains(&command),
            "{command:?}: --keys-dir listed: {listed}"
        );
        assert!(
            !help.contains("--dir ") && !help.contains("--keys "),
            "{command:?} shows an old flag name:\n{help}"
        );
    }
    for (command, old, rest) in cases {
        for flag in ["--keys-dir", old] {
            let mut args = command.to_vec();
            args.extend([flag, missing]);
            args.extend(rest);
            let output = node(&args);
            let report = json(&output);
            // The flag was accepted: whatever failed, it was not the command line
            // (except demo's deliberate unknown flag, after the key directory).
            let code = report["code"].as_str().unwrap_or("");
            if command == ["demo"] {
                assert_eq!(
                    report["error"]
                        .as_str()
                        .map(|m| m.contains("'--no-such-flag'")),
                    Some(true),
                    "{args:?}: {report}"
                );
            } else {
                assert_ne!(code, "usage", "{args:?}: {report}");
            }
        }
    }
}

/// What a command prints when it fails at run time.
enum Failure {
    /// `{"error": …, "code": CODE}`.
    Error(&'static str),
    /// A report of its own (`keys verify`: `{"ok": false, …}`, exit 1).
    Report,
}

/// Every command, with input that succeeds and input that fails (not a usage
/// error), prints exactly one JSON object on standard output.
#[test]
fn every_command_prints_exactly_one_json_object_on_success_and_on_failure() {
    let w = Workspace::new();
    let p = |name: &str| w.path(name).to_str().unwrap().to_string();
    let (keys, missing, empty) = (p("keys"), p("missing"), p("empty"));
    std::fs::create_dir(w.path("empty")).unwrap();
    let result = w.write("result.json", RESULT);
    let result = s(&result).to_string();
    let pass = w.write("pass.txt", "correct horse battery staple\n");
    let pass = s(&pass).to_string();
    let wrong_pass = w.write("wrong.txt", "wrong horse battery staple\n");
    let wrong_pass = s(&wrong_pass).to_string();
    let garbage = w.write("garbage.json", "{not json");
    let garbage = s(&garbage).to_string();
    let (proof, backup) = (p("proof.json"), p("keys.bak"));
    // Good runs in order (keygen first; later ones use its keys). None: the
    // success needs anvil or a running node and is checked by the test named.
    type Case<'a> = (&'a str, Option<Vec<String>>, Vec<String>, Failure);
    let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let cases: Vec<Case> = vec![
        (
            "keygen",
            Some(v(&["keygen", "--keys-dir", &keys])),
            v(&["keygen", "--keys-dir", &keys]),
            Failure::Error("keys"),
        ),
        (
            "keys verify",
            Some(v(&["keys", "verify", "--keys-dir", &keys])),
            v(&["keys", "verify", "--keys-dir", &empty]),
            Failure::Report,
        ),
        (
            "keys export-vk",
            Some(v(&[
                "keys",
                "export-vk",
                "--keys-dir",
                &keys,
                "--out",
                &p("vk.json"),
            ])),
            v(&[
                "keys",
                "export-vk",
                "--keys-dir",
                &missing,
                "--out",
                &p("vk2.json"),
            ]),
            Failure::Error("keys"),
        ),
        (
            "prove",
            Some(v(&[
                "prove",
                "--keys-dir",
                &keys,
                "--result",
                &result,
                "--out",
                &proof,
            ])),
            v(&[
                "prove",
                "--keys-dir",
                &keys,
                "--result",
                &garbage,
                "--out",
                &p("p2.json"),
            ]),
            Failure::Error("malformed_result"),
        ),
        (
            "verify",
            Some(v(&[
                "verify",
                "--keys-dir",
                &keys,
                "--result",
                &result,
                "--proof",
                &proof,
            ])),
            v(&[
                "verify",
                "--keys-dir",
                &keys,
                "--result",
                &result,
                "--proof",
                &garbage,
            ]),
            Failure::Error("malformed_proof"),
        ),
        (
            "evm verifier",
            Some(v(&[
                "evm",
                "verifier",
                "--keys-dir",
                &keys,
                "--out",
                &p("sol"),
            ])),
            v(&[
                "evm",
                "verifier",
                "--keys-dir",
                &missing,
                "--out",
                &p("sol2"),
            ]),
            Failure::Error("keys"),
        ),
        (
            "evm calldata",
            Some(v(&["evm", "calldata", "--proof", &proof, "--json"])),
            v(&["evm", "calldata", "--proof", &garbage, "--json"]),
            Failure::Error("malformed_proof"),
        ),
        (
            "keys backup",
            Some(v(&[
                "keys",
                "backup",
                "--keys-dir",
                &keys,
                "--out",
                &backup,
                "--passphrase-file",
                &pass,
            ])),
            v(&[
                "keys",
                "backup",
                "--keys-dir",
                &keys,
                "--out",
                &backup,
                "--passphrase-file",
                &pass,
            ]),
            Failure::Error("io"),
        ),
        (
            "keys restore",
            Some(v(&[
                "keys",
                "restore",
                "--in",
                &backup,
                "--keys-dir",
                &p("restored"),
                "--passphrase-file",
                &pass,
            ])),
            v(&[
                "keys",
                "restore",
                "--in",
                &backup,
                "--keys-dir",
                &p("restored2"),
                "--passphrase-file",
                &wrong_pass,
            ]),
            Failure::Error("backup_authentication"),
        ),
        (
            "keys rotate",
            Some(v(&[
                "keys",
                "rotate",
                "--keys-dir",
                &keys,
                "--new-host-key",
            ])),
            v(&["keys", "rotate", "--keys-dir", &keys]),
            Failure::Error("bad_argument"),
        ),
        // Successes: demo_runs_end_to_end, bench_json_prints_one_object_with_every_figure.
        (
            "demo",
            None,
            v(&["demo", "--keys-dir", &keys]),
            Failure::Error("keys"),
        ),
        (
            "bench",
            None,
            v(&["bench", "--json", "--iterations", "0"]),
            Failure::Error("bad_argument"),
        ),
        // serve: below. Successes of these: tests/it/evm_bench.rs, chain_anvil.rs, readme_chain.rs, service_load.rs.
        (
            "serve",
            None,
            v(&["serve", "--keys-dir", &missing, "--data-dir", &p("data")]),
            Failure::Error("keys"),
        ),
        (
            "evm bench",
            None,
            v(&["evm", "bench", "--json", "--contracts", &empty]),
            Failure::Error("evm_toolchain"),
        ),
        (
            "chain deploy",
            None,
            v(&[
                "chain",
                "deploy",
                "--rpc-url",
                "http://127.0.0.1:1",
                "--contracts",
                &empty,
            ]),
            Failure::Error("evm_toolchain"),
        ),
        (
            "chain register",
            None,
            v(&[
                "chain",
                "register",
                "--rpc-url",
                "http://127.0.0.1:1",
                "--marketplace",
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "--keys-dir",
                &keys,
                "--wallet-key",
                &missing,
            ]),
            Failure::Error("wallet"),
        ),
        (
            "chain wallet new",
            Some(v(&["chain", "wallet", "new", "--out", &p("wallet.key")])),
            // The file exists now: never overwritten.
            v(&["chain", "wallet", "new", "--out", &p("wallet.key")]),
            Failure::Error("wallet"),
        ),
        (
            "chain wallet show",
            Some(v(&[
                "chain",
                "wallet",
                "show",
                "--wallet-key",
                &p("wallet.key"),
            ])),
            v(&["chain", "wallet", "show", "--wallet-key", &missing]),
            Failure::Error("wallet"),
        ),
        (
            "chain open-job",
            None,
            v(&[
                "chain",
                "open-job",
                "--rpc-url",
                "http://127.0.0.1:1",
                "--marketplace",
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "--host",
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "--private-key-file",
                &missing,
            ]),
            Failure::Error("private_key_file"),
        ),
        (
            "soak",
            // Runs for minutes: .ci/run runs two of them.
            None,
            v(&["soak", "--duration", "0s", "--json"]),
            Failure::Error("bad_argument"),
        ),
        (
            "chain demo",
            None,
            v(&["chain", "demo", "--contracts", &empty]),
            Failure::Error("evm_toolchain"),
        ),
        (
            "load",
            None,
            v(&[
                "load",
                "--url",
                "http://127.0.0.1:1",
                "--results",
                "1",
                "--json",
            ]),
            Failure::Error("http"),
        ),
    ];
    let names: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    let leaves: Vec<String> = leaf_commands().iter().map(|c| c.join(" ")).collect();
    assert_eq!(sorted, leaves, "every command needs a case here");
    for (name, good, bad, failure) in cases {
        if let Some(good) = good {
            let args: Vec<&str> = good.iter().map(String::as_str).collect();
            let out = node_in(w.dir.path(), &args, &[]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report = json(&out);
            assert!(report.get("error").is_none(), "{name}: {report}");
        }
        let args: Vec<&str> = bad.iter().map(String::as_str).collect();
        let out = node_in(w.dir.path(), &args, &[]);
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "{name}: {:?}",
            out.status
        );
        let report = json(&out);
        match failure {
            Failure::Error(code) => {
                assert_eq!(report["code"], code, "{name}: {report}");
                assert!(report["error"].is_string(), "{name}: {report}");
            }
            Failure::Report => assert_eq!(report["ok"], false, "{name}: {report}"),
        }
    }

    // serve: one JSON line when it listens, nothing more on stdout until it stops.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabstir-node"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &p("serve-data"),
        ])
        .env("FABSTIR_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let startup: Value = serde_json::from_str(first.trim()).expect("the start-up line is JSON");
    assert!(startup["listening"].is_string(), "{startup}");
    assert!(common::send_signal(child.id(), libc::SIGTERM));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest.trim(), "", "serve printed more than its start-up line");
}

#[test]
fn a_bad_environment_variable_is_named_as_such() {
    let w = Workspace::new();
    let data = w.path("data");
    let data = s(&data);
    // The variables `serve --help` names.
    let help = String::from_utf8_lossy(&node(&["serve", "--help"]).stdout).into_owned();
    let variables: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .collect();
    assert!(variables.len() >= 25, "{variables:?}");
    // Settings that take any text: nothing to refuse at parse time (a
    // backstop, `--queue-capacity 0`, stops serve before it starts).
    let free_text = [
        "FABSTIR_DATA_DIR",
        "FABSTIR_KEYS_DIR",
        "FABSTIR_WALLET_KEY",
        "FABSTIR_ALLOWED_HOSTS",
        "FABSTIR_ADMIN_TOKEN_FILE",
        "FABSTIR_BATCH_SRS",
    ];
    for variable in variables {
        // The backstop's flag would hide its own variable.
        let backstop = if variable == "FABSTIR_QUEUE_CAPACITY" {
            ["--health-interval-ms", "5"]
        } else {
            ["--queue-capacity", "0"]
        };
        let mut args = vec!["serve", "--data-dir", data];
        args.extend(backstop);
        let out = node_in(w.dir.path(), &args, &[(variable, "abc")]);
        assert_eq!(out.status.code(), Some(2), "{variable}");
        let report = json(&out);
        assert_eq!(report["code"], "config", "{variable}: {report}");
        let message = report["error"].as_str().unwrap();
        if free_text.contains(&variable) {
            assert_eq!(
                message, "--queue-capacity 0: must be at least 1",
                "{variable}"
            );
        } else {
            assert!(
                message.contains(&format!("environment variable {variable}")),
                "{variable}: {message}"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("for '--"),
            "{variable}: reported as a flag: {stderr}"
        );
    }
    assert!(
        !w.path("data").exists(),
        "a refused start touched the data directory"
    );

    // The issue's example, exactly; the same value as a flag names the flag.
    let report = json(&node_in(
        w.dir.path(),
        &["serve"],
        &[("FABSTIR_QUEUE_CAPACITY", "abc")],
    ));
    assert_eq!(
        report["error"],
        "environment variable FABSTIR_QUEUE_CAPACITY=\"abc\": expected a non-negative integer"
    );
    let out = node_in(w.dir.path(), &["serve", "--queue-capacity", "abc"], &[]);
    let report = json(&out);
    assert_eq!(report["code"], "usage");
    assert!(
        report["error"].as_str().unwrap().starts_with(
            "invalid value 'abc' for '--queue-capacity <N>': expected a non-negative integer"
        ),
        "{report}"
    );
    // The flag wins over a bad variable, which is then not read.
    let out = node_in(
        w.dir.path(),
        &["serve", "--queue-capacity", "0", "--data-dir", data],
        &[("FABSTIR_QUEUE_CAPACITY", "abc")],
    );
    assert_eq!(
        json(&out)["error"],
        "--queue-capacity 0: must be at least 1"
    );
    // A value out of range, from a variable or a legacy variable, or a file key.
    for (env, expected) in [
        (
            ("FABSTIR_QUEUE_CAPACITY", "0"),
            "environment variable FABSTIR_QUEUE_CAPACITY=\"0\": must be at least 1",
        ),
        (
            ("FABSTIR_HEALTH_INTERVAL_MS", "5"),
            "environment variable FABSTIR_HEALTH_INTERVAL_MS=\"5\": must be at least 100",
        ),
        (
            ("EZKL_MAX_PROOF_SIZE", "10"),
            "environment variable EZKL_MAX_PROOF_SIZE=\"10\": smaller than a proof envelope",
        ),
        (
            ("PROOF_CACHE_SIZE", "x"),
            "environment variable PROOF_CACHE_SIZE=\"x\": expected a non-negative integer",
        ),
        (
            ("FABSTIR_CONFIG", "/no/such.toml"),
            "cannot read config file /no/such.toml (named by environment variable FABSTIR_CONFIG)",
        ),
    ] {
        let report = json(&node_in(
            w.dir.path(),
            &["serve", "--data-dir", data],
            &[env],
        ));
        assert!(
            report["error"].as_str().unwrap().starts_with(expected),
            "{env:?}: {report}"
        );
    }
    let file = w.write("node.toml", "prove_timeout_ms = \"soon\"\n");
    let report = json(&node_in(
        w.dir.path(),
        &["serve", "--config", s(&file)],
        &[],
    ));
    assert_eq!(
        report["error"],
        format!(
            "config file {}: prove_timeout_ms = \"soon\": expected a non-negative integer",
            file.display()
        )
    );
}
