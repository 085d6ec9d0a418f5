//! `soak`: a bounded soak run. Starts a node, drives a steady mix of
//! requests at it for `--duration`, kills it (SIGKILL, every third restart
//! from the second SIGTERM) and restarts it on the same data directory
//! every `--restart-every`, samples its RSS, open descriptors and database
//! size, and at the end checks on the database that nothing the API
//! acknowledged was lost and that no job was paid more than its
//! `tokens_used` (see [`check`]). Prints one JSON object; exits 1 when an
//! invariant or check fails.
//!
//! Each job, started at `--rate` per second: `POST /v1/results`, wait for its
//! proof, then by a seeded draw: `POST /v1/verify` of the proof, zero to two
//! checkpoints below `tokens_used`, the settlement, and now and then a
//! repeated result, checkpoint or settlement (which must return the stored
//! record), a checkpoint above `tokens_used` or after the settlement (which
//! must be refused). Requests that fail because the node is being restarted,
//! or that it refuses with 503, are retried; both are counted as expected
//! errors. Anything else is an unexpected error and fails the run.

mod check;
mod node;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::Failure;
use check::{AckedJob, CheckpointAck, SettlementAck, Tally, Verdict};
use node::{Launch, Node, NodeError, Stop};
use stats::Sample;

/// How long one job may take from its submission to its last request.
const JOB_DEADLINE: Duration = Duration::from_secs(300);

/// How long the final pass waits for accepted jobs to be proved or failed.
const FINAL_WAIT: Duration = Duration::from_secs(300);

/// Points in the report's timeline.
const TIMELINE_POINTS: usize = 30;

/// The result-retention flag, passed when `serve --help` lists it.
const RETENTION_FLAG: &str = "--result-retention";

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (`90s`, `30m`);
/// a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// A job's prompt or response: `what index:` and filler, half to one and a
/// half times `mean` bytes long (by the job's index).
fn text(what: &str, index: u64, mean: usize) -> String {
    let len = mean / 2 + (index as usize * 7919) % (mean + 1);
    let mut text = format!("{what} {index}: ");
    while text.len() < len {
        text.push_str("lorem ipsum dolor sit amet ");
    }
    text.truncate(len.max(what.len()));
    text
}

/// The `soak` command's flags.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to drive load (e.g. 30m, 90s, 1h); the final checks follow.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// Jobs started per second (each: a result, its proof, and a mix of verify, checkpoints, settlement).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Client threads.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Restart the node this often on the same data directory (SIGKILL; the 2nd, 5th, … restart SIGTERM); 0 = never.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    restart_every: Duration,
    /// Sample the node's RSS, descriptors and database size this often.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    sample_every: Duration,
    /// Samples younger than this (per node process) do not count for first-after-warm-up and growth.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    warmup: Duration,
    /// Data directory (default: a new temporary one, removed after a passing run).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The fabstir-node binary to soak (default: this one).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// An extra argument for `serve`; repeat it (e.g. --serve-arg=--prover-threads --serve-arg=1).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Seed of the request mix (default: random; the report gives it).
    #[arg(long)]
    seed: Option<u64>,
    /// Size of each prompt and of each response, in bytes (each job's varies from half to one and a
    /// half times this): what retention deletes.
    #[arg(long, default_value_t = 2048)]
    text_bytes: usize,
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    json: bool,
}

/// Where the node is: its URL while it serves, and a counter that moves on
/// every stop and start (a request sent before a move that fails was cut by
/// the restart).
#[derive(Debug, Default)]
struct Endpoint {
    url: Option<String>,
    epoch: u64,
    pid: Option<u32>,
    run: usize,
    started: Option<Instant>,
}

/// Requests of one kind.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Requests {
    /// Sent (retries included).
    sent: u64,
    /// Answered with 2xx.
    ok: u64,
}

#[derive(Debug, Default)]
struct Tallies {
    requests: BTreeMap<&'static str, Requests>,
    expected: BTreeMap<String, u64>,
    unexpected: BTreeMap<String, u64>,
    jobs: BTreeMap<&'static str, u64>,
    /// Repeats that did not return the stored record, refusals that did
    /// not happen, settlements that do not add up, proofs that do not verify.
    api: Tally,
}

/// State shared by the client threads, the sampler and the supervisor.
struct Ctx {
    http: reqwest::blocking::Client,
    /// Job ids of this run: `base + index`.
    base: u64,
    seed: u64,
    /// Mean size of a prompt and of a response.
    text_bytes: usize,
    rate: f64,
    started: Instant,
    load_until: Instant,
    next: AtomicU64,
    aborted: AtomicBool,
    endpoint: RwLock<Endpoint>,
    tallies: Mutex<Tallies>,
    acked: Mutex<BTreeMap<u64, AckedJob>>,
    /// Accept-to-final milliseconds, from the node's own timestamps.
    latencies: Mutex<Vec<f64>>,
    max_lag_ms: AtomicU64,
    samples: Mutex<Vec<Sample>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The draw for one job.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    tokens_used: u64,
    /// Cumulative `tokens_processed` of its checkpoints, increasing, below `tokens_used`.
    checkpoints: Vec<u64>,
    verify: bool,
    settle: bool,
    resubmit: bool,
    repeat_checkpoint: bool,
    repeat_settlement: bool,
    over_claim: bool,
    late_checkpoint: bool,
}

impl Plan {
    fn draw(seed: u64, index: u64) -> Self {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let tokens_used: u64 = rng.gen_range(64..=1024);
        let first = rng.gen_range(1..=tokens_used / 2);
        let second = rng.gen_range(first + 1..tokens_used);
        let checkpoints = match rng.gen_range(0..10) {
            0..=3 => vec![],
            4..=7 => vec![first],
            _ => vec![first, second],
        };
        Self {
            tokens_used,
            checkpoints,
            verify: rng.gen_bool(0.3),
            settle: rng.gen_bool(0.9),
            resubmit: rng.gen_bool(0.05),
            repeat_checkpoint: rng.gen_bool(0.1),
            repeat_settlement: rng.gen_bool(0.05),
            over_claim: rng.gen_bool(0.02),
            late_checkpoint: rng.gen_bool(0.02),
        }
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("-")
}

impl Ctx {
    fn expected(&self, kind: &str, what: &str) {
        *lock(&self.tallies)
            .expected
            .entry(format!("{kind}: {what}"))
            .or_default() += 1;
    }

    fn unexpected(&self, kind: &str, what: &str) {
        *lock(&self.tallies)
            .unexpected
            .entry(format!("{kind}: {what}"))
            .or_default() += 1;
    }

    fn count(&self, what: &'static str) {
        *lock(&self.tallies).jobs.entry(what).or_default() += 1;
    }

    fn api_violation(&self, what: String) {
        lock(&self.tallies).api.violation(what);
    }

    fn api_checked(&self) {
        lock(&self.tallies).api.checked(1);
    }

    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Sends a request until the node answers something other than 503, the
    /// deadline passes or the run is aborted (`None`; the deadline counts as
    /// an unexpected error).
    fn call(
        &self,
        kind: &'static str,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Option<(u16, Value)> {
        let mut pause = Duration::from_millis(25);
        loop {
            if self.aborted() {
                return None;
            }
            if Instant::now() >= deadline {
                self.unexpected(kind, "no answer before the job's deadline");
                return None;
            }
            let (url, epoch) = {
                let endpoint = self.endpoint.read().unwrap_or_else(|p| p.into_inner());
                (endpoint.url.clone(), endpoint.epoch)
            };
            let Some(url) = url else {
                std::thread::sleep(Duration::from_millis(25));
                continue;
            };
            lock(&self.tallies).requests.entry(kind).or_default().sent += 1;
            let request = match body {
                Some(body) => self.http.post(format!("{url}{path}")).json(body),
                None => self.http.get(format!("{url}{path}")),
            };
            let answer = request
                .send()
                .and_then(|response| Ok((response.status().as_u16(), response.bytes()?)));
            match answer {
                Err(e) => {
                    let moved = self
                        .endpoint
                        .read()
                        .map(|now| now.epoch != epoch)
                        .unwrap_or(true);
                    if moved {
                        self.expected(kind, "connection cut by a restart");
                    } else if e.is_timeout() {
                        self.unexpected(kind, "timeout");
                    } else {
                        self.unexpected(kind, "connection failed while the node was up");
                    }
                }
                Ok((status, bytes)) => {
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status == 503 {
                        self.expected(kind, &format!("503 {}", error_code(&value)));
                    } else {
                        if (200..300).contains(&status) {
                            lock(&self.tallies).requests.entry(kind).or_default().ok += 1;
                        }
                        return Some((status, value));
                    }
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Calls and expects one of `statuses`; anything else is an unexpected error.
    fn expect(
        &self,
        kind: &'static str,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
        statuses: &[u16],
    ) -> Option<(u16, Value)> {
        let (status, value) = self.call(kind, path, body, deadline)?;
        if statuses.contains(&status) {
            Some((status, value))
        } else {
            self.unexpected(kind, &format!("{status} {}", error_code(&value)));
            None
        }
    }

    /// One job, start to end.
    fn run_job(&self, index: u64) {
        let plan = Plan::draw(self.seed, index);
        let job = self.base + index;
        let deadline = Instant::now() + JOB_DEADLINE;
        let result = json!({
            "job_id": job.to_string(),
            "chain_id": 84532,
            "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "model": "soak-model",
            "prompt": text("soak prompt", index, self.text_bytes),
            "response": text("soak response", index, self.text_bytes),
            "tokens_used": plan.tokens_used,
        });
        if self
            .expect("results", "/v1/results", Some(&result), deadline, &[202])
            .is_none()
        {
            return;
        }
        lock(&self.acked).insert(
            job,
            AckedJob {
                tokens_used: plan.tokens_used,
                ..AckedJob::default()
            },
        );
        self.count("accepted");
        if plan.resubmit {
            if let Some((_, body)) =
                self.expect("results", "/v1/results", Some(&result), deadline, &[202])
            {
                self.api_checked();
                self.count("results_resubmitted");
                if body["duplicate"] != json!(true) {
                    self.api_violation(format!(
                        "job {job}: a resubmitted result is not a duplicate"
                    ));
                }
            }
        }
        let Some(proof) = self.wait_final(job, deadline) else {
            return;
        };
        let state = proof["state"].as_str().unwrap_or_default().to_string();
        if let Some(seen) = lock(&self.acked).get_mut(&job) {
            seen.state = Some(state.clone());
        }
        self.count(if state == "proved" {
            "proved"
        } else {
            "failed"
        });
        if state == "proved" {
            if plan.verify {
                self.verify(job, &result, &proof, deadline);
            }
            if !self.checkpoints(job, &plan, deadline) {
                return;
            }
        }
        if plan.settle {
            self.settle(job, &plan, state == "proved", deadline);
        }
    }

    /// Polls the job until it is proved or failed.
    fn wait_final(&self, job: u64, deadline: Instant) -> Option<Value> {
        let mut pause = Duration::from_millis(20);
        loop {
            let (_, doc) = self.expect(
                "proofs",
                &format!("/v1/proofs/{job}"),
                None,
                deadline,
                &[200],
            )?;
            if matches!(doc["state"].as_str(), Some("proved" | "failed")) {
                let created = doc["created_at_ms"].as_f64().unwrap_or(0.0);
                let updated = doc["updated_at_ms"].as_f64().unwrap_or(created);
                lock(&self.latencies).push(updated - created);
                return Some(doc);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    fn verify(&self, job: u64, result: &Value, proof: &Value, deadline: Instant) {
        let body = json!({ "result": result, "proof": proof["proof"] });
        if let Some((_, answer)) =
            self.expect("verify", "/v1/verify", Some(&body), deadline, &[200])
        {
            self.api_checked();
            self.count("verified");
            if answer["valid"] != json!(true) {
                self.api_violation(format!(
                    "job {job}: POST /v1/verify finds the node's own proof invalid ({})",
                    answer["reason_code"]
                ));
            }
        }
    }

    /// Posts a checkpoint; the stored record on 201/200.
    fn checkpoint(&self, job: u64, tokens: u64, deadline: Instant) -> Option<CheckpointAck> {
        let body = json!({ "job_id": job.to_string(), "tokens_processed": tokens });
        let (_, record) = self.expect(
            "checkpoints",
            "/v1/checkpoints",
            Some(&body),
            deadline,
            &[200, 201],
        )?;
        Some(CheckpointAck {
            id: record["id"].as_i64().unwrap_or(-1),
            tokens_processed: record["tokens_processed"].as_u64().unwrap_or(0),
            tokens_claimed: record["tokens_claimed"].as_u64().unwrap_or(0),
            status: record["status"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// The plan's checkpoints, its over-claim and repeat; false when the job
    /// cannot go on.
    fn checkpoints(&self, job: u64, plan: &Plan, deadline: Instant) -> bool {
        let mut last: Option<CheckpointAck> = None;
        for &tokens in &plan.checkpoints {
            let Some(ack) = self.checkpoint(job, tokens, deadline) else {
                return false;
            };
            self.count("checkpoints");
            self.api_checked();
            if ack.tokens_processed != tokens || ack.id < 0 {
                self.api_violation(format!(
                    "job {job}: checkpoint at {tokens} tokens answered as id {} at {}",
                    ack.id, ack.tokens_processed
                ));
            }
            if let Some(seen) = lock(&self.acked).get_mut(&job) {
                seen.checkpoints.push(ack.clone());
            }
            last = Some(ack);
        }
        if plan.over_claim {
            let body =
                json!({ "job_id": job.to_string(), "tokens_processed": plan.tokens_used + 1 });
            if let Some((status, answer)) =
                self.call("checkpoints", "/v1/checkpoints", Some(&body), deadline)
            {
                self.api_checked();
                self.count("over_claims_refused");
                if status != 409 || error_code(&answer) != "tokens_exceed_used" {
                    self.api_violation(format!(
                        "job {job}: a checkpoint above tokens_used was answered {status} {}",
                        error_code(&answer)
                    ));
                }
            }
        }
        if let (true, Some(last)) = (plan.repeat_checkpoint, &last) {
            if let Some(again) = self.checkpoint(job, last.tokens_processed, deadline) {
                self.api_checked();
                self.count("checkpoints_repeated");
                if again.id != last.id || again.tokens_claimed != last.tokens_claimed {
                    self.api_violation(format!(
                        "job {job}: a repeated checkpoint at {} tokens returned id {} (first {})",
                        last.tokens_processed, again.id, last.id
                    ));
                }
            }
        }
        true
    }

    fn settlement(&self, job: u64, deadline: Instant) -> Option<SettlementAck> {
        let (_, record) = self.expect(
            "settlements",
            &format!("/v1/settlements/{job}"),
            Some(&json!({})),
            deadline,
            &[200],
        )?;
        Some(SettlementAck {
            settlement_id: record["settlement_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            outcome: record["outcome"].as_str().unwrap_or_default().to_string(),
            tokens: record["tokens"].as_u64().unwrap_or(0),
            checkpoint_tokens: record["checkpoint_tokens"].as_u64().unwrap_or(0),
        })
    }

    /// Settles the job; repeats the settlement and, for a proved job, tries
    /// a checkpoint after it, as the plan says.
    fn settle(&self, job: u64, plan: &Plan, proved: bool, deadline: Instant) {
        let Some(ack) = self.settlement(job, deadline) else {
            return;
        };
        self.api_checked();
        self.count(if ack.outcome == "settled" {
            "settled"
        } else {
            "settlements_rejected"
        });
        let claimed: u64 = lock(&self.acked)
            .get(&job)
            .map(|seen| {
                seen.checkpoints
                    .iter()
                    .filter(|c| c.status != "rejected")
                    .map(|c| c.tokens_claimed)
                    .sum()
            })
            .unwrap_or(0);
        let adds_up = match ack.outcome.as_str() {
            "settled" => {
                ack.checkpoint_tokens == claimed && ack.tokens + claimed == plan.tokens_used
            }
            "rejected" => ack.tokens == 0,
            _ => false,
        };
        if !adds_up {
            self.api_violation(format!(
                "job {job}: settlement {} ({}) pays {} with {} claimed by checkpoints ({claimed} acknowledged) of tokens_used {}",
                ack.settlement_id, ack.outcome, ack.tokens, ack.checkpoint_tokens, plan.tokens_used
            ));
        }
        if let Some(seen) = lock(&self.acked).get_mut(&job) {
            seen.settlement = Some(ack.clone());
        }
        if plan.repeat_settlement {
            if let Some(again) = self.settlement(job, deadline) {
                self.api_checked();
                self.count("settlements_repeated");
                if again != ack {
                    self.api_violation(format!(
                        "job {job}: a repeated settlement returned {} (first {})",
                        again.settlement_id, ack.settlement_id
                    ));
                }
            }
        }
        // (A failed job refuses any checkpoint as `not_proved`.)
        if plan.late_checkpoint && proved {
            let body = json!({ "job_id": job.to_string(), "tokens_processed": plan.tokens_used });
            if let Some((status, answer)) =
                self.call("checkpoints", "/v1/checkpoints", Some(&body), deadline)
            {
                self.api_checked();
                self.count("late_checkpoints_refused");
                if status != 409 || error_code(&answer) != "job_settled" {
                    self.api_violation(format!(
                        "job {job}: a checkpoint after the settlement was answered {status} {}",
                        error_code(&answer)
                    ));
                }
            }
        }
    }

    /// A client thread: takes the next job slot, waits for its time, runs it.
    fn client(&self) {
        loop {
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            let slot = self.started + Duration::from_secs_f64(index as f64 / self.rate);
            if slot >= self.load_until || self.aborted() {
                return;
            }
            let now = Instant::now();
            if slot > now {
                std::thread::sleep(slot - now);
            } else {
                self.max_lag_ms
                    .fetch_max((now - slot).as_millis() as u64, Ordering::SeqCst);
            }
            if self.aborted() {
                return;
            }
            self.run_job(index);
        }
    }

    /// Publishes a started node.
    fn up(&self, node: &Node, run: usize) {
        let mut endpoint = self.endpoint.write().unwrap_or_else(|p| p.into_inner());
        endpoint.url = Some(node.url.clone());
        endpoint.epoch += 1;
        endpoint.pid = Some(node.pid);
        endpoint.run = run;
        endpoint.started = Some(node.started);
    }

    /// Withdraws the node before it is stopped.
    fn down(&self) {
        let mut endpoint = self.endpoint.write().unwrap_or_else(|p| p.into_inner());
        endpoint.url = None;
        endpoint.epoch += 1;
        endpoint.pid = None;
    }

    /// Waits for accepted jobs no client saw final (a client gave up on
    /// them) until they are proved or failed.
    fn final_wait(&self) {
        let deadline = Instant::now() + FINAL_WAIT;
        let pending: Vec<u64> = lock(&self.acked)
            .iter()
            .filter(|(_, seen)| seen.state.is_none())
            .map(|(job, _)| *job)
            .collect();
        for job in pending {
            if let Some(doc) = self.wait_final(job, deadline) {
                if let Some(seen) = lock(&self.acked).get_mut(&job) {
                    seen.state = doc["state"].as_str().map(String::from);
                }
            }
        }
    }

    /// Samples until `done`.
    fn sampler(&self, every: Duration, db: &std::path::Path, done: &AtomicBool) {
        let wal = db.with_extension("db-wal");
        let mut next = Instant::now();
        while !done.load(Ordering::SeqCst) {
            if Instant::now() >= next {
                next += every;
                let (pid, run, started) = {
                    let e = self.endpoint.read().unwrap_or_else(|p| p.into_inner());
                    (e.pid, e.run, e.started)
                };
                let Some(pid) = pid else { continue };
                let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let wal_bytes = size(&wal);
                lock(&self.samples).push(Sample {
                    t_s: round3(self.started.elapsed().as_secs_f64()),
                    run,
                    age_s: round3(started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0)),
                    rss_kib: stats::rss_kib(pid),
                    fds: stats::open_fds(pid),
                    db_bytes: size(db) + wal_bytes,
                    wal_bytes,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One node process of the run.
#[derive(Debug, serde::Serialize)]
struct Run {
    started_s: f64,
    ready_ms: u64,
    /// Jobs the node queued again at start-up (accepted, not yet proved when the previous one stopped).
    resumed_jobs: Value,
    reconciled_checkpoints: Value,
    ended_s: Option<f64>,
    /// `SIGKILL`, `SIGTERM`, `SIGTERM (end of run)`, or `exited on its own`.
    ended_by: Option<String>,
    exit: Option<String>,
    stop_ms: Option<u64>,
}

impl Run {
    fn new(node: &Node, started_s: f64) -> Self {
        Self {
            started_s: round3(started_s),
            ready_ms: node.ready_ms,
            resumed_jobs: node.start_line["resumed_jobs"].clone(),
            reconciled_checkpoints: node.start_line["reconciled_checkpoints"].clone(),
            ended_s: None,
            ended_by: None,
            exit: None,
            stop_ms: None,
        }
    }
}

/// Stops a node; a SIGTERM that does not end it cleanly in time is a violation.
fn stop_node(node: Node, how: Stop, term: &mut Tally) -> node::Stopped {
    let stopped = node.stop(how);
    if how == Stop::Term {
        term.checked(1);
        if stopped.term_timed_out {
            term.violation(format!(
                "the node did not stop within {} s of SIGTERM and was killed",
                node::TERM_TIMEOUT.as_secs()
            ));
        } else if !stopped.clean {
            term.violation(format!(
                "the node exited with {} after SIGTERM",
                stopped.status
            ));
        }
    }
    stopped
}

/// Opens the node's database read-only (after the node stopped).
fn open_read_only(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Creates a directory (and its parents) only its owner can enter.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn node_failure(e: NodeError) -> Failure {
    Failure::other("soak_node", e.to_string())
}

/// Runs the soak.
pub fn run(args: SoakArgs) -> Result<ExitCode, Failure> {
    if !(args.rate > 0.0 && args.rate.is_finite()) || args.clients == 0 {
        return Err(Failure::input(
            "bad_argument",
            "--rate must be above 0 and --clients at least 1",
        ));
    }
    if args.duration.is_zero() || args.sample_every.is_zero() {
        return Err(Failure::input(
            "bad_argument",
            "--duration and --sample-every must be above 0",
        ));
    }
    let binary = match &args.node_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| Failure::other("soak_node", format!("cannot find this binary: {e}")))?,
    };
    // The data directory: the given one, or a temporary one kept only when the run fails.
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("fabstir-soak-")
                .tempdir()
                .map_err(|e| Failure::other("tempdir", e.to_string()))?,
        ),
    };
    let (data_dir, log) = match (&args.data_dir, &temp) {
        (Some(dir), _) => (dir.clone(), dir.join("soak-node.log")),
        (None, Some(temp)) => (temp.path().join("data"), temp.path().join("node.log")),
        (None, None) => unreachable!("a temporary directory exists without --data-dir"),
    };
    create_private_dir(&data_dir).map_err(|e| {
        Failure::other(
            "soak_node",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let mut serve_args = args.serve_args.clone();
    let retention = if serve_args.iter().any(|a| a.starts_with(RETENTION_FLAG)) {
        Some("given")
    } else if node::serve_has_flag(&binary, RETENTION_FLAG) {
        serve_args.extend([RETENTION_FLAG.to_string(), "0".to_string()]);
        Some("0")
    } else {
        None
    };
    let launch = Launch {
        binary: binary.clone(),
        data_dir: data_dir.clone(),
        serve_args,
        log: log.clone(),
    };
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Failure::other("http_client", e.to_string()))?;
    let seed = args.seed.unwrap_or_else(rand::random);

    let first = Node::start(&launch).map_err(node_failure)?;
    let backend = first.start_line["backend"].clone();
    let started = Instant::now();
    let ctx = Ctx {
        http,
        base: u64::from(rand::random::<u32>()) * 1_000_000_000,
        seed,
        text_bytes: args.text_bytes,
        rate: args.rate,
        started,
        load_until: started + args.duration,
        next: AtomicU64::new(0),
        aborted: AtomicBool::new(false),
        endpoint: RwLock::new(Endpoint::default()),
        tallies: Mutex::new(Tallies::default()),
        acked: Mutex::new(BTreeMap::new()),
        latencies: Mutex::new(Vec::new()),
        max_lag_ms: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
    };
    let mut runs = vec![Run::new(&first, 0.0)];
    ctx.up(&first, 0);
    let mut node = Some(first);
    let sampling_done = AtomicBool::new(false);
    let db = data_dir.join("node.db");
    let mut term_tally = Tally::default();
    let mut fatal: Option<String> = None;

    let (load_s, drain_s) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..args.clients)
            .map(|_| scope.spawn(|| ctx.client()))
            .collect();
        let sampler = scope.spawn(|| ctx.sampler(args.sample_every, &db, &sampling_done));

        // Supervise: restarts on schedule, and after a node that exits on its own.
        let mut restarts = 0u32;
        while let Some(running) = node.as_mut() {
            let now = Instant::now();
            if now >= ctx.load_until {
                break;
            }
            let due = !args.restart_every.is_zero()
                && now >= started + args.restart_every * (restarts + 1);
            let crashed = running.exited();
            if !due && crashed.is_none() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            ctx.down();
            let run = runs.last_mut().expect("a run");
            run.ended_s = Some(round3(started.elapsed().as_secs_f64()));
            let stopping = node.take().expect("a running node");
            if let Some(status) = crashed {
                ctx.unexpected("node", &format!("exited on its own ({status})"));
                run.ended_by = Some("exited on its own".into());
                run.exit = Some(status.to_string());
            } else {
                restarts += 1;
                let how = if restarts % 3 == 2 {
                    Stop::Term
                } else {
                    Stop::Kill
                };
                let stopped = stop_node(stopping, how, &mut term_tally);
                run.ended_by = Some(how.name().into());
                run.exit = Some(stopped.status);
                run.stop_ms = Some(stopped.stop_ms);
            }
            match Node::start(&launch) {
                Ok(restarted) => {
                    runs.push(Run::new(&restarted, started.elapsed().as_secs_f64()));
                    ctx.up(&restarted, runs.len() - 1);
                    node = Some(restarted);
                }
                Err(e) => {
                    fatal = Some(format!("the node could not be restarted: {e}"));
                    ctx.aborted.store(true, Ordering::SeqCst);
                }
            }
        }
        let load_s = started.elapsed().as_secs_f64();
        for client in clients {
            if client.join().is_err() {
                ctx.unexpected("client", "a client thread panicked");
            }
        }
        // Jobs a client gave up on must still end proved or failed.
        if fatal.is_none() {
            ctx.final_wait();
        }
        let drain_s = started.elapsed().as_secs_f64() - load_s;
        sampling_done.store(true, Ordering::SeqCst);
        let _ = sampler.join();
        (load_s, drain_s)
    });

    // The final stop: SIGTERM, as a service manager would.
    if let Some(last) = node.take() {
        ctx.down();
        let at = started.elapsed().as_secs_f64();
        let stopped = stop_node(last, Stop::Term, &mut term_tally);
        if let Some(run) = runs.last_mut() {
            run.ended_s = Some(round3(at));
            run.ended_by = Some("SIGTERM (end of run)".into());
            run.exit = Some(stopped.status);
            run.stop_ms = Some(stopped.stop_ms);
        }
    }

    let acked = std::mem::take(&mut *lock(&ctx.acked));
    let invariants = open_read_only(&db)
        .and_then(|conn| check::check_database(&conn, &acked))
        .map_err(|e| Failure::other("database", format!("{}: {e}", db.display())))?;

    let tallies = std::mem::take(&mut *lock(&ctx.tallies));
    let samples = std::mem::take(&mut *lock(&ctx.samples));
    let mut latencies = std::mem::take(&mut *lock(&ctx.latencies));
    latencies.sort_by(|a, b| a.total_cmp(b));

    let mut checks: BTreeMap<&'static str, Verdict> = BTreeMap::new();
    let mut unexpected = Tally::default();
    unexpected.checked(tallies.requests.values().map(|r| r.sent).sum());
    for (what, n) in &tallies.unexpected {
        for _ in 0..*n {
            unexpected.violation(what.clone());
        }
    }
    if let Some(fatal) = &fatal {
        unexpected.violation(fatal.clone());
    }
    checks.insert("no_unexpected_errors", unexpected.verdict());
    checks.insert("api_answers_consistent", tallies.api.verdict());
    checks.insert("node_stops_on_sigterm", term_tally.verdict());

    let pass = invariants.values().chain(checks.values()).all(|v| v.pass);
    let accepted = acked.len() as f64;
    let warmup_s = args.warmup.as_secs_f64();
    let db_summary = stats::over_run(&samples, warmup_s);
    let requests_total: u64 = tallies.requests.values().map(|r| r.sent).sum();
    let report = json!({
        "pass": pass,
        "duration_s": round1(load_s),
        "drain_s": round1(drain_s),
        "rate_per_s": args.rate,
        "clients": args.clients,
        "seed": seed,
        "text_bytes": args.text_bytes,
        "node": {
            "binary": binary.display().to_string(),
            "data_dir": data_dir.display().to_string(),
            "log": log.display().to_string(),
            "serve_args": launch.serve_args,
            "result_retention": retention,
            "malloc_arena_max_env": std::env::var(crate::malloc::ARENA_MAX_ENV).ok(),
            "backend": backend,
        },
        "jobs": tallies.jobs,
        "requests": tallies.requests,
        "throughput": {
            "jobs_accepted_per_s": round1(accepted / load_s.max(1e-9)),
            "requests_per_s": round1(requests_total as f64 / (load_s + drain_s).max(1e-9)),
            "accept_to_final_ms": {
                "p50": stats::percentile(&latencies, 0.5),
                "p99": stats::percentile(&latencies, 0.99),
                "max": latencies.last().map(|v| round1(*v)),
            },
            "max_start_lag_ms": ctx.max_lag_ms.load(Ordering::SeqCst),
        },
        "restarts": {
            "count": runs.len() - 1,
            "sigkill": runs.iter().filter(|r| r.ended_by.as_deref() == Some("SIGKILL")).count(),
            "sigterm": runs.iter().filter(|r| r.ended_by.as_deref() == Some("SIGTERM")).count(),
            "max_ready_ms": runs.iter().skip(1).map(|r| r.ready_ms).max(),
            "runs": runs,
        },
        "errors": {
            "expected": tallies.expected,
            "unexpected": tallies.unexpected,
        },
        "resources": {
            "samples": samples.len(),
            "sample_every_s": args.sample_every.as_secs_f64(),
            "warmup_s": warmup_s,
            "rss_kib": stats::per_process(&samples, warmup_s, |s| s.rss_kib),
            "fds": stats::per_process(&samples, warmup_s, |s| s.fds),
            "db_bytes": db_summary,
            "db_bytes_per_accepted_job": db_summary.last.map(|b| round1(b as f64 / accepted.max(1.0))),
            "wal_bytes_max": samples.iter().map(|s| s.wal_bytes).max(),
            "timeline": stats::timeline(&samples, TIMELINE_POINTS).iter().map(|s| json!({
                "t_s": round1(s.t_s), "run": s.run, "rss_kib": s.rss_kib, "fds": s.fds, "db_bytes": s.db_bytes,
            })).collect::<Vec<_>>(),
        },
        "invariants": invariants,
        "checks": checks,
        "fatal": fatal,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if pass {
        drop(temp);
        Ok(ExitCode::SUCCESS)
    } else {
        if let Some(temp) = temp {
            // Kept for a post-mortem: the report names it.
            let _ = temp.keep();
        }
        let failed: Vec<&str> = invariants
            .iter()
            .chain(checks.iter())
            .filter(|(_, v)| !v.pass)
            .map(|(name, _)| *name)
            .collect();
        eprintln!(
            "error: the soak run failed: {}; the data directory {} and the node's log {} are kept",
            failed.join(", "),
            data_dir.display(),
            log.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "m", "ten minutes", "5d", "-1s", "1e999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn plans_claim_below_tokens_used_and_are_reproducible() {
        let mut kinds = [0usize; 3];
        let (mut verify, mut settle) = (0, 0);
        for index in 0..2000 {
            let plan = Plan::draw(7, index);
            assert_eq!(
                plan,
                Plan::draw(7, index),
                "the draw depends on seed and index only"
            );
            assert!((64..=1024).contains(&plan.tokens_used));
            assert!(plan.checkpoints.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
            assert!(
                plan.checkpoints
                    .iter()
                    .all(|&t| t >= 1 && t < plan.tokens_used),
                "{plan:?}"
            );
            kinds[plan.checkpoints.len()] += 1;
            verify += usize::from(plan.verify);
            settle += usize::from(plan.settle);
        }
        // The mix: 40 % without checkpoints, 40 % with one, 20 % with two; 30 % verified, 90 % settled.
        assert!(
            kinds
                .iter()
                .zip([800, 800, 400])
                .all(|(n, e)| n.abs_diff(e) < 120),
            "{kinds:?}"
        );
        assert!(
            verify.abs_diff(600) < 100 && settle.abs_diff(1800) < 60,
            "{verify} {settle}"
        );
        assert_ne!(Plan::draw(7, 1), Plan::draw(8, 1));
    }
}
