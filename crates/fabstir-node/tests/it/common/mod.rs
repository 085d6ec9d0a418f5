//! A real node on loopback for the service tests: `fabstir-node serve` in a
//! temporary data directory on a free port, driven over HTTP. [`evm`]: Solidity
//! compiled with solcjs and a local anvil, for the contract tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod evm;

/// A running node.
pub struct Node {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub startup: Value,
    /// What the node wrote to standard error after its first line on
    /// standard output (at most [`STDERR_KEPT`] bytes).
    stderr: Arc<Mutex<String>>,
    /// The thread that reads standard error until the node closes it.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// The most standard error kept per node; the rest is read and dropped.
const STDERR_KEPT: usize = 4 << 20;

/// Sends `signal` to the process `pid` with kill(2); false if it could not
/// (no such process, or a pid that is not a single process: 0 and 1 are
/// refused, as are pids beyond `pid_t`).
///
/// Tests signal processes here, never through the `kill` program: procps-ng
/// 4.0.2's `kill -9 -PGID` takes only the group's first digit, so a group
/// 1xxxx became kill(-1, SIGKILL), every process on the machine (CI and all).
pub fn send_signal(pid: u32, signal: libc::c_int) -> bool {
    match libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a positive pid signals that one process.
        Ok(pid) if pid > 1 => unsafe { libc::kill(pid, signal) == 0 },
        _ => false,
    }
}

/// Sends SIGKILL to every process of the process group `pgid` (a child
/// spawned with `process_group(0)` leads the group of its own pid); false if
/// there is no such group. Group 0 (the caller's) and 1 are refused: a
/// negative pid of -1 would mean every process.
pub fn kill_process_group(pgid: u32) -> bool {
    match libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with -pgid, pgid > 1, signals that group only.
        Ok(pgid) if pgid > 1 => unsafe { libc::kill(-pgid, libc::SIGKILL) == 0 },
        _ => false,
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A file of the repository (path relative to its root), as text.
pub fn read_repo_file(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The node binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_fabstir-node")
}

impl Node {
    /// Starts a node on `data_dir` with extra flags; panics if it does not start.
    pub fn start(data_dir: &Path, flags: &[&str]) -> Self {
        Self::try_start(data_dir, flags, &[]).unwrap_or_else(|e| panic!("node did not start: {e}"))
    }

    /// Starts a node; on failure returns its stderr.
    pub fn try_start(
        data_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::try_start_binary(Path::new(binary()), data_dir, flags, env)
    }

    /// Starts the node binary at `binary` (another release's, say); on
    /// failure returns its stderr.
    pub fn try_start_binary(
        binary: &Path,
        data_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .env("FABSTIR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "exit {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let startup: Value =
            serde_json::from_str(line.trim()).map_err(|e| format!("{e}: {line}"))?;
        if startup.get("listening").is_none() {
            let _ = child.kill();
            return Err(format!("unexpected first line: {line}"));
        }
        // Drain stderr so the node never blocks on a full pipe, keeping it
        // for `stderr_text`.
        let kept = Arc::new(Mutex::new(String::new()));
        let stderr_reader = child.stderr.take().map(|stderr| {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() + line.len() <= STDERR_KEPT {
                        kept.push_str(&line);
                    }
                    line.clear();
                }
            })
        });
        let base = format!(
            "http://{}",
            startup["listening"].as_str().unwrap_or_default()
        );
        Ok(Self {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            startup,
            stderr: kept,
            stderr_reader,
        })
    }

    /// Sends SIGTERM (a graceful stop) and waits up to `timeout` for the
    /// node to exit; panics (after SIGKILL) if it does not.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        assert!(
            send_signal(self.pid(), libc::SIGTERM),
            "SIGTERM to {}: {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the node") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the node did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Standard error so far; all of it once the node has exited.
    pub fn stderr_text(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(reader) = self.stderr_reader.take() {
                let _ = reader.join();
            }
        }
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no shutdown.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = client().get(self.url(path)).send().expect("request");
        decode(response)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = client()
            .post(self.url(path))
            .json(body)
            .send()
            .expect("request");
        decode(response)
    }

    /// The admin bearer token the node created in its data directory.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin.token in the data directory")
            .trim()
            .to_string()
    }

    /// Posts JSON with the admin bearer token.
    pub fn post_with_token(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = client()
            .post(self.url(path))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .expect("request");
        decode(response)
    }

    /// Posts raw bytes as JSON.
    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = client()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("request");
        decode(response)
    }

    /// Waits until the job is proved (or failed), returning its proof document.
    pub fn wait_proved(&self, job: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(&format!("/v1/proofs/{job}"));
            if status == 200 && matches!(body["state"].as_str(), Some("proved") | Some("failed")) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} not proved in {timeout:?}: {body}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Submits `result`, waits until its job is proved, and returns the job id.
    pub fn submit_and_prove(&self, result: &Value) -> String {
        let (status, accepted) = self.post("/v1/results", result);
        assert_eq!(status, 202, "{accepted}");
        let job = accepted["job_id"].as_str().expect("job_id").to_string();
        let proved = self.wait_proved(&job, Duration::from_secs(60));
        assert_eq!(proved["state"], "proved", "{proved}");
        job
    }

    /// Records the checkpoint of `job` at cumulative count `tokens` (201).
    pub fn checkpoint(&self, job: &str, tokens: u64) -> Value {
        let (status, checkpoint) = self.post(
            "/v1/checkpoints",
            &json!({ "job_id": job, "tokens_processed": tokens }),
        );
        assert_eq!(status, 201, "{checkpoint}");
        checkpoint
    }

    /// Peak resident set size of the node, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn decode(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A sample result for job `job`.
pub fn result(job: u64) -> Value {
    json!({
        "job_id": job.to_string(),
        "chain_id": 84532,
        "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "model": "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf",
        "prompt": format!("Question number {job}: what is the capital of France?"),
        "response": "The capital of France is Paris.",
        "tokens_used": 100 + job,
    })
}

/// A temporary data directory, removed on drop.
pub struct DataDir(pub tempfile::TempDir);

impl DataDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The node's SQLite database.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.path().join("node.db")).expect("open db");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }
}

// ---------------------------------------------------------------------------
// Helpers for the disputes, recovery, crash and load suites.
// ---------------------------------------------------------------------------

/// A response, or the lack of one, from a request that may hit a dead node.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: Value,
}

/// Posts JSON to `base` + `path` without panicking on connection errors
/// (the node may be killed while requests are in flight).
pub fn post_to(base: &str, path: &str, body: &Value) -> Result<Reply, String> {
    let response = client()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .map_err(|e| e.to_string())?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, body) = decode(response);
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

/// `0x` and 64 hex digits: how the node names job `n` (in URLs, responses
/// and the database).
pub fn job_hex(n: u64) -> String {
    format!("0x{n:064x}")
}

impl Node {
    /// Posts JSON, keeping the `Retry-After` header; connection errors are `Err`.
    pub fn try_post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        post_to(&self.base, path, body)
    }

    /// The text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .expect("metrics request")
            .text()
            .expect("metrics body")
    }

    /// The value of one sample in `/metrics`; `series` is the metric name
    /// with its labels exactly as exported, e.g.
    /// `fabstir_settlement_validations_total{outcome="passed"}`.
    /// `None` when the series is absent.
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics_text().lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    /// Waits until no result is queued or being proved (per `/health`) and
    /// the prover queue is empty (per `/health/ezkl`).
    pub fn wait_idle(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, health) = self.get("/health");
            let (_, ezkl) = self.get("/health/ezkl");
            if health["stats"]["queued"] == 0
                && health["stats"]["proving"] == 0
                && ezkl["queue_depth"] == 0
            {
                return health;
            }
            assert!(
                Instant::now() < deadline,
                "node not idle after {timeout:?}: {health} {ezkl}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How a `serve` that was expected to refuse to start ended.
#[derive(Debug)]
pub struct Refusal {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Refusal {
    /// Standard output and standard error together, for message checks.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `serve` on `data_dir` expecting it to refuse to start. Panics (after
/// killing it) if the node starts listening instead.
pub fn serve_refused(data_dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Refusal {
    let mut command = Command::new(binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .env("FABSTIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn fabstir-node serve");
    // A node that neither starts nor exits would hang the test: kill it
    // (by its pid, only while it has not been reaped) after two minutes.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        let pid = child.id();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            send_signal(pid, libc::SIGKILL);
        })
    };
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    let _ = stdout.read_line(&mut first);
    if first.contains("\"listening\"") {
        let _ = child.kill();
        let _ = child.wait();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        panic!("the node started although it should have refused: {first}");
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let output = child.wait_with_output().expect("wait for fabstir-node");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    Refusal {
        code: output.status.code(),
        stdout: first + &rest,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs a `fabstir-node` command to completion.
pub fn cli(args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .env("FABSTIR_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run fabstir-node")
}

impl DataDir {
    /// Runs one SQL statement on the node's database; returns the rows changed.
    pub fn execute(&self, sql: &str, params: impl rusqlite::Params) -> usize {
        self.db()
            .execute(sql, params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The single integer a query returns (e.g. a `COUNT(*)`).
    pub fn count(&self, sql: &str, params: impl rusqlite::Params) -> i64 {
        self.db()
            .query_row(sql, params, |row| row.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A ceremony-style SRS file (halo2 raw format) that is not the development one.
pub fn ceremony_srs(dir: &Path) -> (String, String) {
    ceremony_srs_at(dir, 7)
}

/// [`ceremony_srs`] with `2^k` rows (batch keys need more than 2^7).
pub fn ceremony_srs_at(dir: &Path, k: u32) -> (String, String) {
    let params = halo2_axiom::poly::kzg::commitment::ParamsKZG::<
        halo2_axiom::halo2curves::bn256::Bn256,
    >::setup(
        k,
        <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(4242),
    );
    let mut bytes = Vec::new();
    params
        .write_custom(&mut bytes, halo2_axiom::SerdeFormat::RawBytes)
        .unwrap();
    let path = dir.join("ceremony.params");
    std::fs::write(&path, &bytes).unwrap();
    let pin = format!(
        "0x{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    (path.to_str().unwrap().to_string(), pin)
}

/// A wallet key for production nodes in tests (`HOST_PRIVATE_KEY`).
pub const TEST_WALLET: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

/// `keygen` with a ceremony-style SRS into `data_dir/keys` (keys a
/// production node accepts); returns `keygen`'s output.
pub fn ceremony_keygen(data_dir: &Path) -> std::process::Output {
    let keys = data_dir.join("keys");
    let (srs, pin) = ceremony_srs(data_dir);
    let output = cli(&[
        "keygen",
        "--keys-dir",
        keys.to_str().expect("utf-8 path"),
        "--srs",
        &srs,
        "--srs-sha256",
        &pin,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A production node on `data_dir` (ceremony keys made by
/// [`ceremony_keygen`]) with the [`TEST_WALLET`].
pub fn start_production(data_dir: &Path) -> Node {
    Node::try_start(
        data_dir,
        &["--production"],
        &[("HOST_PRIVATE_KEY", TEST_WALLET)],
    )
    .unwrap_or_else(|e| panic!("production node did not start: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};

    /// The pids of the live processes in process group `pgid` (zombies,
    /// already dead, are left out), from /proc/PID/stat.
    fn group_members(pgid: u32) -> Vec<u32> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid pgrp …": comm may hold spaces and ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
                members.push(pid);
            }
        }
        members
    }

    #[test]
    fn a_process_group_is_killed_whole_and_groups_0_and_1_are_refused() {
        assert!(!kill_process_group(0), "group 0 (the caller's) is refused");
        assert!(
            !kill_process_group(1),
            "group 1 (kill(-1): everything) is refused"
        );
        assert!(!send_signal(0, 0) && !send_signal(1, 0));

        // A shell that starts two children in the background, in a group of
        // its own; it says when both run.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 60 & sleep 60 & echo started; wait"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read sh's line");
        assert_eq!(line.trim(), "started");
        let pgid = child.id();
        assert_eq!(group_members(pgid).len(), 3, "sh and its two sleeps");
        assert!(send_signal(pgid, 0), "the group's leader exists");

        assert!(kill_process_group(pgid));
        let status = child.wait().expect("wait for sh");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        // The sleeps (children of sh, now of init) die with the group.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !group_members(pgid).is_empty() {
            assert!(
                Instant::now() < deadline,
                "group {pgid} still has {:?}",
                group_members(pgid)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tests signal processes with [`send_signal`] and
    /// [`kill_process_group`], never with the `kill` program (whose group
    /// syntax procps-ng 4.0.2 misreads as kill(-1) for groups 1…).
    #[test]
    fn tests_never_run_the_kill_program() {
        // Written in pieces, so that this file does not name them whole.
        let needles = ["\"kill\")", "\"/bin/kill\")", "\"/usr/bin/kill\")"]
            .map(|program| ["Command::new(", program].concat());
        let dir = repo_root().join("crates/fabstir-node/tests/it");
        let mut stack = vec![dir];
        let mut offenders = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read tests/it").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read a test file");
                    if needles.iter().any(|needle| text.contains(needle)) {
                        offenders.push(path);
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "{needles:?} in {offenders:?}");
    }
}
