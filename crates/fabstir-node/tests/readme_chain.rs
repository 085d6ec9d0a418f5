//! The README's "On a chain" section, run as written: `fabstir-node chain
//! demo` deploys the contracts on a fresh anvil, runs one result through a
//! node to an on-chain credit, completes the job, and reports what the
//! contract says.
//!
//! Needs anvil and solcjs from `npm ci --prefix contracts` (and Node.js).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{read_repo_file, repo_root};

/// The first `sh` block after the heading `## On a chain`.
fn section_script() -> String {
    let readme = read_repo_file("README.md");
    let start = readme
        .find("## On a chain")
        .expect("README.md has an \"On a chain\" section");
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("the section has a sh block") + 6;
    let close = rest[open..].find("```").expect("the sh block is closed");
    rest[open..open + close].to_string()
}

#[test]
fn readme_on_a_chain_section_runs_as_written() {
    let script = section_script();
    assert!(script.contains("fabstir-node chain demo"), "{script}");
    let bin_dir = PathBuf::from(common::binary())
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
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
