//! `load`: a bounded load run against a node over HTTP.
//!
//! Submits `--results` distinct results from `--concurrency` client threads
//! (waiting out 503s as `Retry-After` asks, so the node's admission control
//! bounds the run), waits until all are proved, then validates them for
//! settlement in batches. Reports sustained results/s from first acceptance
//! to last proof, accept-to-proved latency percentiles (the node's own
//! timestamps), settlement validations/s, and the node's peak RSS.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Failure;

/// The HTTP client; it sends the admin token of `FABSTIR_ADMIN_TOKEN` as a
/// bearer token when set (a node in production mode requires one to accept
/// results).
fn client() -> Result<reqwest::blocking::Client, Failure> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var(crate::datadir::TOKEN_ENV) {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| {
                Failure::input(
                    "bad_argument",
                    format!(
                        "{} holds characters a header cannot carry",
                        crate::datadir::TOKEN_ENV
                    ),
                )
            })?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .default_headers(headers)
        .build()
        .map_err(|e| Failure::other("http_client", e.to_string()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    (sorted[index] * 100.0).round() / 100.0
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> Result<Value, Failure> {
    client
        .get(url)
        .send()
        .and_then(|r| r.json())
        .map_err(|e| Failure::other("http", format!("GET {url}: {e}")))
}

pub fn run(
    url: &str,
    results: usize,
    concurrency: usize,
    json_output: bool,
) -> Result<ExitCode, Failure> {
    if results == 0 || concurrency == 0 {
        return Err(Failure::input(
            "bad_argument",
            "--results and --concurrency must be at least 1",
        ));
    }
    let url = url.trim_end_matches('/').to_string();
    let http = client()?;
    let health = get_json(&http, &format!("{url}/health/ezkl"))?;
    // Job ids unique to this run.
    let base: u64 = rand::random::<u32>() as u64 * 1_000_000;
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..concurrency {
        let (next, refused, url, http) = (next.clone(), refused.clone(), url.clone(), http.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= results {
                    return Ok(());
                }
                let body = json!({
                    "job_id": (base + i as u64).to_string(),
                    "chain_id": 84532,
                    "marketplace": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "model": "load-test-model",
                    "prompt": format!("load test prompt {i}"),
                    "response": format!("load test response {i}"),
                    "tokens_used": 256,
                });
                loop {
                    let response = http
                        .post(format!("{url}/v1/results"))
                        .json(&body)
                        .send()
                        .map_err(|e| e.to_string())?;
                    match response.status().as_u16() {
                        202 => break,
                        503 => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            let wait = response
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            std::thread::sleep(Duration::from_millis((wait * 1000).min(1000) / 10));
                        }
                        status => return Err(format!("POST /v1/results answered {status}")),
                    }
                }
            }
        }));
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| Failure::other("load", "client thread panicked"))?
            .map_err(|e| Failure::other("load", e))?;
    }
    let submitted_s = started.elapsed().as_secs_f64();

    // Wait for every job to be proved (or failed).
    let mut latencies = Vec::with_capacity(results);
    let mut failed = 0usize;
    for i in 0..results {
        let job = base + i as u64;
        loop {
            let doc = get_json(&http, &format!("{url}/v1/proofs/{job}"))?;
            match doc["state"].as_str() {
                Some("proved") | Some("failed") => {
                    if doc["state"] == "failed" {
                        failed += 1;
                    }
                    let created = doc["created_at_ms"].as_f64().unwrap_or(0.0);
                    let updated = doc["updated_at_ms"].as_f64().unwrap_or(created);
                    latencies.push(updated - created);
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let proved_s = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));

    // Settlement validation in batches of 100 (batch verification on the node).
    let jobs: Vec<String> = (0..results)
        .map(|i| (base + i as u64).to_string())
        .collect();
    let validation_started = Instant::now();
    let mut passed = 0usize;
    for chunk in jobs.chunks(100) {
        let response: Value = http
            .post(format!("{url}/v1/settlements/validate"))
            .json(&json!({ "job_ids": chunk }))
            .send()
            .and_then(|r| r.json())
            .map_err(|e| Failure::other("http", format!("POST /v1/settlements/validate: {e}")))?;
        passed += response["passed"].as_u64().unwrap_or(0) as usize;
    }
    let validation_s = validation_started.elapsed().as_secs_f64();
    let after = get_json(&http, &format!("{url}/health"))?;

    let report = json!({
        "results": results,
        "concurrency": concurrency,
        "backend": health["backend"],
        "node_thread_layout": health["thread_layout"],
        "node_cores": health["cores"],
        "refused_503": refused.load(Ordering::SeqCst),
        "failed": failed,
        "submit_seconds": (submitted_s * 1000.0).round() / 1000.0,
        "results_per_s_to_proved": ((results as f64 / proved_s) * 100.0).round() / 100.0,
        "latency_ms": { "p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99) },
        "settlement_validations_per_s": ((results as f64 / validation_s) * 10.0).round() / 10.0,
        "settlement_validations_passed": passed,
        "node_peak_rss_kib": after["peak_rss_kib"],
    });
    if json_output {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if failed > 0 || passed != results {
        return Err(Failure::other(
            "load",
            format!("{failed} jobs failed, {passed}/{results} validations passed"),
        ));
    }
    Ok(ExitCode::SUCCESS)
}
