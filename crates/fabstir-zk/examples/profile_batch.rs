//! Profiling aid: builds 100 proofs, then verifies them in batches in a loop.
//! Run under `perf record` to see where batch verification spends its time.

use std::sync::Arc;
use std::time::Instant;

use fabstir_zk::{
    verify_batch, Fr, HostKey, InferenceResult, JobId, ProofEnvelope, ProvingKey, Srs,
};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let pk = ProvingKey::build(Arc::new(Srs::insecure_dev())).unwrap();
    let host = HostKey::from_secret(Fr::from(7));
    let base = InferenceResult::from_json(
        br#"{"job_id": "1", "chain_id": 1, "marketplace": "0x0000000000000000000000000000000000000001",
             "model": "m", "prompt": "p", "response": "r", "tokens_used": 1}"#,
    )
    .unwrap();
    let items: Vec<_> = (0..100u64)
        .map(|i| {
            let mut r = base.clone();
            r.job_id = JobId::from_u64(i);
            let s = r.statement(host.host_id());
            (
                ProofEnvelope::create(&pk, &s, &host, rand::rngs::OsRng).unwrap(),
                s.instance(),
            )
        })
        .collect();
    let refs: Vec<_> = items.iter().map(|(p, i)| (p, i)).collect();
    let start = Instant::now();
    for _ in 0..rounds {
        assert!(verify_batch(pk.verifying_key(), &refs)
            .iter()
            .all(|r| r.is_ok()));
    }
    let per_proof = start.elapsed().as_secs_f64() * 1e3 / (rounds * refs.len()) as f64;
    println!("batch verify: {per_proof:.3} ms per proof");
}
