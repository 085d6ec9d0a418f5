//! The README's "On a chain" section, run as written: `fabstir-node chain
//! demo` deploys the contracts on a fresh anvil, runs one result through a
//! node to an on-chain credit, completes the job, and reports what the
//! contract says; the same by hand (its second `sh` block) starts anvil on a
//! free port, deploys, makes keys and a wallet, registers it, serves, opens a
//! job, and sees a checkpoint confirmed three blocks deep.
//!
//! Needs anvil and solcjs from `npm ci --prefix contracts` (and Node.js).

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_repo_file, repo_root};

/// The `sh` blocks of the section `## On a chain`, in order.
fn section_scripts() -> Vec<String> {
    let readme = read_repo_file("README.md");
    let start = readme
        .find("## On a chain")
        .expect("README.md has an \"On a chain\" section");
    let rest = &readme[start + 1..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut scripts = Vec::new();
    let mut text = section;
    while let Some(open) = text.find("```sh\n") {
        let body = &text[open + 6..];
        let close = body.find("```").expect("the sh block is closed");
        scripts.push(body[..close].to_string());
        text = &body[close + 3..];
    }
    scripts
}

/// The first `sh` block of the section.
fn section_script() -> String {
    section_scripts()
        .into_iter()
        .next()
        .expect("the section has a sh block")
}

/// PATH with the node binary's directory first.
fn path_with_binary() -> String {
    let bin_dir = PathBuf::from(common::binary())
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn readme_on_a_chain_section_runs_as_written() {
    let script = section_script();
    assert!(script.contains("fabstir-node chain demo"), "{script}");
    let path = path_with_binary();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(repo_root())
        .env("PATH", path)
        .env("FABSTIR_LOG", "warn")
        .env_remove("HOST_PRIVATE_KEY")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README section failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object expected ({e}):\n{stdout}"));
    let number = |key: &str| -> u128 {
        summary[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {summary}"))
            .parse()
            .unwrap()
    };
    // The contract credited the 12 tokens of the result and refunded the
    // other 88 of the 100 the client paid for.
    let price = number("price_per_token_wei");
    assert_eq!(number("tokens_used"), 12, "{summary}");
    assert_eq!(number("host_earnings_wei"), 12 * price, "{summary}");
    assert_eq!(number("client_refund_wei"), 88 * price, "{summary}");
    for step in 1..=8 {
        assert!(
            stderr.contains(&format!("{step}. ")),
            "step {step}:\n{stderr}"
        );
    }
}

#[test]
fn readme_on_a_chain_by_hand_runs_as_written() {
    let scripts = section_scripts();
    let script = scripts
        .get(1)
        .unwrap_or_else(|| panic!("the section has a second sh block (by hand): {scripts:?}"));
    for step in [
        "--block-time 1",
        "chain deploy",
        "chain wallet new",
        "chain register",
        "chain open-job",
        "--confirmations 3",
    ] {
        assert!(script.contains(step), "the by-hand block lacks {step}");
    }
    let data = tempfile::tempdir().unwrap();
    let rpc = format!("http://127.0.0.1:{}", free_port());
    let node = format!("127.0.0.1:{}", free_port());
    let out = data.path().join("script.out");
    let err = data.path().join("script.err");
    // Its own process group, so that whatever it started in the
    // background (anvil, the node) is stopped even when it fails.
    let mut child = {
        use std::os::unix::process::CommandExt as _;
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(repo_root())
            .env("PATH", path_with_binary())
            .env("RPC", &rpc)
            .env("NODE", &node)
            .env("DATA", data.path().join("data"))
            .env_remove("HOST_PRIVATE_KEY")
            .env_remove("FABSTIR_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .process_group(0)
            .spawn()
            .expect("bash runs")
    };
    let group = child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Stop the group (the script's background jobs, if it did not).
    common::kill_process_group(group);
    let _ = child.wait();
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let stdout = read(out);
    let report = || {
        format!(
            "stdout:\n{stdout}\nstderr:\n{}\nnode.log:\n{}",
            read(err.clone()),
            read(data.path().join("data/node.log"))
        )
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the README's by-hand block failed ({status:?}, or not within 300 s):\n{}",
        report()
    );
    // Its last two lines: the outbox in /health, then the job's checkpoints.
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let checkpoints: serde_json::Value = serde_json::from_str(lines.last().unwrap_or(&""))
        .unwrap_or_else(|e| panic!("the checkpoints expected last ({e}):\n{}", report()));
    let onchain = &checkpoints["checkpoints"][0]["onchain"];
    assert_eq!(onchain["state"], "confirmed", "{}", report());
    assert!(onchain["block_number"].as_u64().is_some(), "{onchain}");
    assert!(
        onchain["tx_hash"].as_str().is_some_and(|h| h.len() == 66),
        "{onchain}"
    );
    // It went out in a batch (the default): entry 0 of batch 1.
    assert_eq!(
        onchain["batch"],
        serde_json::json!({"id": 1, "index": 0}),
        "{onchain}"
    );
    let outbox = lines[lines.len() - 2];
    assert!(
        outbox.contains("'confirmed': 1") && outbox.contains("'oldest_open_age_ms': None"),
        "{outbox}"
    );
    // The batch transactions by state (in whatever order the keys come).
    let batches = outbox
        .split_once("'batches': {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(inner, _)| inner)
        .unwrap_or_else(|| panic!("no batches in {outbox}"));
    let mut counts: Vec<&str> = batches.split(", ").collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        ["'confirmed': 1", "'failed': 0", "'pending': 0", "'sent': 0"],
        "{outbox}"
    );
    // The node said what it waited for: three blocks on a chain that mines
    // one a second.
    let log = read(data.path().join("data/node.log"));
    assert!(
        log.contains("waiting for its confirmation depth") && log.contains("confirmations=3"),
        "{log}"
    );
    // The wallet key is a 0400 file in the data directory, not in the
    // repository.
    let wallet = data.path().join("data/wallet.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&wallet).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o400);
}
