//! Criterion bench of batch proving (one proof for N checkpoints) and of
//! verifying such a proof natively, for several N (each size has its own
//! key and `k`).
//!
//! `cargo bench -p fabstir-zk --bench batch`; `FABSTIR_BATCH_SIZES=1,8,64`
//! picks the sizes (default 1, 8, 16, 29, 32, 58, 64).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use fabstir_zk::{
    BatchProof, BatchProvingKey, BatchSize, BatchStatement, Fr, HostKey, InferenceResult, JobId,
    Srs, Statement,
};

fn statement(host: &HostKey, job: u64) -> Statement {
    let mut result = InferenceResult::from_json(
        br#"{"job_id": "1", "chain_id": 84532, "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
             "model": "llama-3", "prompt": "What is the capital of France?",
             "response": "The capital of France is Paris.", "tokens_used": 42}"#,
    )
    .unwrap();
    result.job_id = JobId::from_u64(job);
    result.tokens_used = 40 + job;
    result.statement(host.host_id())
}

fn sizes() -> Vec<usize> {
    std::env::var("FABSTIR_BATCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 16, 29, 32, 58, 64])
}

fn benches(c: &mut Criterion) {
    let host = HostKey::from_secret(Fr::from(11));
    let mut group = c.benchmark_group("batch_prove");
    group.sample_size(10);
    let mut verify = Vec::new();
    for n in sizes() {
        let size = BatchSize::new(n).unwrap();
        let srs = Arc::new(Srs::insecure_dev_at(size.k()).unwrap());
        let pk = BatchProvingKey::build(srs, size).unwrap();
        let statements: Vec<Statement> = (0..n as u64).map(|j| statement(&host, j + 1)).collect();
        let batch = BatchStatement::from_statements(&statements).unwrap();
        group.bench_function(format!("{n}_entries_k{}", size.k()), |b| {
            b.iter(|| BatchProof::create(&pk, &batch, &host, rand::rngs::OsRng).unwrap())
        });
        let proof = BatchProof::create(&pk, &batch, &host, rand::rngs::OsRng).unwrap();
        let public = batch.public();
        verify.push((format!("{n}_entries_k{}", size.k()), pk, proof, public));
    }
    group.finish();
    let mut group = c.benchmark_group("batch_verify");
    for (name, pk, proof, public) in &verify {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| proof.verify(pk.verifying_key(), public).unwrap())
        });
    }
    group.finish();
}

criterion_group!(batch, benches);
criterion_main!(batch);
