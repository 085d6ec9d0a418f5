//! Criterion benches of the figures the targets name: prove, verify, batch
//! verification per proof (batches of 100), proving key load.
//!
//! `cargo bench -p fabstir-zk`; `fabstir-node bench` prints the same figures
//! as percentiles.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fabstir_zk::keystore::files;
use fabstir_zk::{
    verify_batch, Fr, HostKey, InferenceResult, Instance, JobId, KeySet, ProofEnvelope, ProvingKey,
    SrsSource, Statement,
};

fn statement(host: &HostKey, job: u64) -> Statement {
    let mut result = InferenceResult::from_json(
        br#"{"job_id": "1", "chain_id": 84532, "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
             "model": "llama-3", "prompt": "What is the capital of France?",
             "response": "The capital of France is Paris.", "tokens_used": 42}"#,
    )
    .unwrap();
    result.job_id = JobId::from_u64(job);
    result.statement(host.host_id())
}

fn benches(c: &mut Criterion) {
    let dir = tempfile_dir();
    let keys = KeySet::generate(&dir, &SrsSource::InsecureDev, rand::rngs::OsRng).unwrap();
    let host = HostKey::from_secret(Fr::from(11));
    let pk = ProvingKey::build(Arc::clone(&keys.srs)).unwrap();
    let vk = pk.verifying_key();

    let s = statement(&host, 1);
    c.bench_function("prove", |b| {
        b.iter(|| ProofEnvelope::create(&pk, &s, &host, rand::rngs::OsRng).unwrap())
    });

    let proof = ProofEnvelope::create(&pk, &s, &host, rand::rngs::OsRng).unwrap();
    let instance = s.instance();
    c.bench_function("verify", |b| {
        b.iter(|| proof.verify(vk, &instance).unwrap())
    });

    let proofs: Vec<(ProofEnvelope, Instance)> = (0..100)
        .map(|i| {
            let s = statement(&host, 1000 + i);
            (
                ProofEnvelope::create(&pk, &s, &host, rand::rngs::OsRng).unwrap(),
                s.instance(),
            )
        })
        .collect();
    let items: Vec<_> = proofs.iter().map(|(p, i)| (p, i)).collect();
    let mut group = c.benchmark_group("batch_verify");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.sample_size(20);
    group.bench_function("100_proofs", |b| {
        b.iter(|| assert!(verify_batch(vk, &items).iter().all(|r| r.is_ok())))
    });
    group.finish();

    let path = dir.join(files::PROVING_KEY);
    c.bench_function("proving_key_load", |b| {
        b.iter_batched(
            || Arc::clone(&keys.srs),
            |srs| ProvingKey::load(&path, srs).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fabstir-zk-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

criterion_group!(proofs, benches);
criterion_main!(proofs);
