//! `bench`: latency percentiles of prove, verify, batch verify and key load.
//!
//! Timed on this machine with whatever else it is running; compare figures
//! only between runs on an otherwise idle machine.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use fabstir_zk::keystore::files;
use fabstir_zk::{verify_batch, Instance, JobId, KeySet, ProofEnvelope, ProvingKey, SrsSource};
use serde_json::{json, Value};

use super::{demo::sample_result, Failure};
use crate::metrics::peak_rss_kib;
use crate::threads::{Pools, ThreadLayout};

/// p50/p95/p99 of `samples` (nearest rank), in milliseconds.
fn percentiles(mut samples: Vec<f64>) -> Value {
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| {
        let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        (samples[index] * 1000.0).round() / 1000.0
    };
    json!({ "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99) })
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// How `bench` measures parallel proving.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Proofs in parallel (default: cores / threads per worker).
    pub workers: Option<usize>,
    /// Threads of each worker's pool (default 1).
    pub threads_per_worker: usize,
    /// Prove through the one global pool instead, as nodes before the
    /// per-worker pools did (to compare).
    pub shared_pool: bool,
}

pub fn run(
    json_output: bool,
    iterations: usize,
    batch: usize,
    layout: Layout,
) -> Result<ExitCode, Failure> {
    if iterations == 0 || batch == 0 || layout.threads_per_worker == 0 || layout.workers == Some(0)
    {
        return Err(Failure::input(
            "bad_argument",
            "--iterations, --batch, --workers and --threads-per-worker must be at least 1",
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| Failure::other("tempdir", e.to_string()))?;
    let keys = KeySet::generate(
        &dir.path().join("keys"),
        &SrsSource::InsecureDev,
        rand::rngs::OsRng,
    )?;
    let host = keys.host_key.clone();
    let statement_for = |i: usize| {
        let mut result = sample_result();
        result.job_id = JobId::from_u64(1_000_000 + i as u64);
        result.statement(host.host_id())
    };
    let prove = |i: usize| -> Result<(ProofEnvelope, Instance), Failure> {
        let statement = statement_for(i);
        let proof = ProofEnvelope::create(&keys.proving_key, &statement, &host, rand::rngs::OsRng)
            .map_err(|e| Failure::other("prove_failed", e.to_string()))?;
        Ok((proof, statement.instance()))
    };
    for i in 0..3 {
        prove(i)?; // warm-up
    }

    let mut prove_ms = Vec::with_capacity(iterations);
    let mut proofs = Vec::with_capacity(iterations.max(batch));
    for i in 0..iterations {
        let start = Instant::now();
        let item = prove(i)?;
        prove_ms.push(ms_since(start));
        proofs.push(item);
    }
    let mut verify_ms = Vec::with_capacity(iterations);
    for (proof, instance) in &proofs {
        let start = Instant::now();
        proof
            .verify(keys.verifying_key(), instance)
            .map_err(|e| Failure::other("verify_failed", e.to_string()))?;
        verify_ms.push(ms_since(start));
    }
    for i in proofs.len()..batch {
        proofs.push(prove(i)?);
    }
    let items: Vec<(&ProofEnvelope, &Instance)> =
        proofs.iter().take(batch).map(|(p, i)| (p, i)).collect();
    let rounds = (iterations / 5).clamp(3, 20);
    let mut batch_ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let results = verify_batch(keys.verifying_key(), &items);
        batch_ms.push(ms_since(start) / items.len() as f64);
        if results.iter().any(|r| r.is_err()) {
            return Err(Failure::other(
                "verify_failed",
                "a valid proof failed batch verification",
            ));
        }
    }
    // Raw prover throughput with the node's thread layout: one worker per
    // pool, each proving on its own pool (or all through the global pool,
    // with --shared-pool): the ceiling for the node's sustained rate.
    let cores = ThreadLayout::cores();
    let thread_layout = ThreadLayout {
        prover_workers: layout
            .workers
            .unwrap_or((cores / layout.threads_per_worker).max(1)),
        threads_per_prover: layout.threads_per_worker,
        verify_threads: cores,
    };
    let workers = thread_layout.prover_workers;
    let per_worker = iterations.div_ceil(workers).max(2);
    let pools = (!layout.shared_pool)
        .then(|| Pools::new(thread_layout))
        .transpose()
        .map_err(|e| Failure::other("threads", e.to_string()))?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..workers {
            let (prove, pools) = (&prove, &pools);
            scope.spawn(move || {
                for i in 0..per_worker {
                    let job = 10_000 + t * per_worker + i;
                    let _ = match pools {
                        Some(pools) => pools.prover(t).install(|| prove(job)),
                        None => prove(job),
                    };
                }
            });
        }
    });
    let parallel_proofs_per_s = (workers * per_worker) as f64 / started.elapsed().as_secs_f64();

    let pk_path = dir.path().join("keys").join(files::PROVING_KEY);
    let mut load_ms = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let pk = ProvingKey::load(&pk_path, Arc::clone(&keys.srs))?;
        load_ms.push(ms_since(start));
        drop(pk);
    }
    let proof_bytes = proofs[0].0.proof.len();
    let report = json!({
        "prove_ms": percentiles(prove_ms),
        "verify_ms": percentiles(verify_ms),
        "batch_verify_ms_per_proof": percentiles(batch_ms),
        "key_load_ms": percentiles(load_ms),
        "proof_bytes": proof_bytes,
        "envelope_bytes": proofs[0].0.to_bytes().len(),
        "batch_size": items.len(),
        "iterations": iterations,
        "peak_rss_kib": peak_rss_kib(),
        "cores": cores,
        "thread_layout": thread_layout,
        "shared_pool": layout.shared_pool,
        "parallel_proofs_per_s": (parallel_proofs_per_s * 100.0).round() / 100.0,
    });
    if json_output {
        println!("{report}");
    } else {
        println!(
            "fabstir-node bench ({iterations} samples, batches of {}):",
            items.len()
        );
        for key in [
            "prove_ms",
            "verify_ms",
            "batch_verify_ms_per_proof",
            "key_load_ms",
        ] {
            let p = &report[key];
            println!(
                "  {key:<27} p50 {:>8}  p95 {:>8}  p99 {:>8}",
                p["p50"], p["p95"], p["p99"]
            );
        }
        println!("  proof_bytes                 {proof_bytes}");
        println!(
            "  parallel proofs/s           {parallel_proofs_per_s:.1} ({workers} workers x {} threads{}, {cores} cores)",
            thread_layout.threads_per_prover,
            if layout.shared_pool { ", one shared pool" } else { ", a pool each" }
        );
        if let Some(rss) = peak_rss_kib() {
            println!(
                "  peak RSS                    {:.1} MiB",
                rss as f64 / 1024.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
