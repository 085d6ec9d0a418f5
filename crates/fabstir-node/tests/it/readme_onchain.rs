//! The README's "Verify on-chain" section, run as written: against a node
//! that proved job 42 and a local anvil, the deployed verifier names the
//! node's vk_id and says the proof is valid.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::evm::Anvil;
use common::{read_repo_file, repo_root, DataDir, Node};

/// The first `sh` block after the heading `## Verify on-chain`.
fn section_script() -> String {
    let readme = read_repo_file("README.md");
    let start = readme
        .find("## Verify on-chain")
        .expect("README.md has a \"Verify on-chain\" section");
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("the section has a sh block") + 6;
    let close = rest[open..].find("```").expect("the sh block is closed");
    rest[open..open + close].to_string()
}

#[test]
fn readme_verify_on_chain_section_runs_as_written() {
    let script = section_script();
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let (status, _) = node.post(
        "/v1/results",
        &serde_json::json!({
            "job_id": "42", "chain_id": 84532,
            "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "model": "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf",
            "prompt": "What is the capital of France?",
            "response": "The capital of France is Paris.", "tokens_used": 12
        }),
    );
    assert_eq!(status, 202);
    node.wait_proved("42", std::time::Duration::from_secs(30));
    let anvil = Anvil::start();

    let bin_dir = PathBuf::from(common::binary())
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let base = node.url("");
    let node_addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(repo_root())
        .env("PATH", path)
        .env("RPC", &anvil.url)
        .env("NODE", &node_addr)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README section failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 3, "three lines expected:\n{stdout}\n{stderr}");
    assert_eq!(
        lines[0], lines[1],
        "the verifier's VK_ID and the node's vk_id differ"
    );
    assert_eq!(
        lines[2],
        format!("0x{:064x}", 1),
        "the proof does not verify on-chain"
    );
}
