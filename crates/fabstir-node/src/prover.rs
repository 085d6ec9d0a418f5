//! ProofGenerator (real backend by default, mock only when configured), its
//! LRU proof cache, and the prover pool that turns queued results into proofs.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fabstir_zk::{Digest32, JobId, ProofEnvelope, ProveError, Statement};
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::config::Backend;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::mock::mock_proof;
use crate::store::{now_ms, Store, StoredProof};
use crate::threads::Pools;

/// A proof made for a statement.
#[derive(Debug, Clone)]
pub struct GeneratedProof {
    /// Binary envelope, or the mock record.
    pub bytes: Vec<u8>,
    pub mock: bool,
    pub vk_id: String,
    pub commitment: String,
    pub prove_ms: f64,
}

impl GeneratedProof {
    /// The proofs-table row for this proof of `statement`.
    pub fn into_stored(self, statement: &Statement) -> StoredProof {
        StoredProof {
            proof_sha256: Digest32::sha256(&self.bytes),
            envelope: self.bytes,
            mock: self.mock,
            vk_id: self.vk_id,
            commitment: self.commitment,
            model_hash: statement.model_hash,
            input_hash: statement.input_hash,
            output_hash: statement.output_hash,
            prove_ms: self.prove_ms,
            created_at_ms: now_ms(),
        }
    }
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Prove(#[from] ProveError),
    #[error("the proof is {0} bytes, more than EZKL_MAX_PROOF_SIZE ({1})")]
    TooLarge(usize, usize),
}

impl GenerateError {
    /// Every code [`GenerateError::code`] returns (for documentation checks).
    pub const CODES: [&'static str; 5] = [
        "timeout",
        "wrong_host_key",
        "reserved_job_id",
        "backend",
        "proof_too_large",
    ];

    /// Short reason label for metrics and the job's failure field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Prove(ProveError::Timeout(_)) => "timeout",
            Self::Prove(ProveError::WrongHostKey) => "wrong_host_key",
            Self::Prove(ProveError::ReservedJobId) => "reserved_job_id",
            Self::Prove(ProveError::Backend(_)) => "backend",
            Self::TooLarge(..) => "proof_too_large",
        }
    }
}

/// Cache key: what the proof is about and which key proves it.
type CacheKey = (Digest32, bool);

/// Makes proofs, with an LRU cache keyed by the statement.
pub struct ProofGenerator {
    backend: Backend,
    max_proof_size: usize,
    keys: Arc<KeyManager>,
    cache: Mutex<LruCache<CacheKey, GeneratedProof>>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

fn statement_key(statement: &Statement, vk_id: &str) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(vk_id.as_bytes());
    for element in statement.instance().to_field_elements() {
        hasher.update(fabstir_zk::statement::field_to_be(&element));
    }
    Digest32(hasher.finalize().into())
}

impl ProofGenerator {
    /// A generator with an LRU cache of `cache_size` proofs (at least one),
    /// refusing proofs larger than `max_proof_size` bytes.
    pub fn new(
        backend: Backend,
        keys: Arc<KeyManager>,
        cache_size: usize,
        max_proof_size: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let capacity = NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            backend,
            max_proof_size,
            keys,
            cache: Mutex::new(LruCache::new(capacity)),
            timeout,
            metrics,
        }
    }

    /// The current host's id.
    pub fn host_id(&self) -> fabstir_zk::HostId {
        self.keys.current().host_key.host_id()
    }

    /// The configured backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Cache entries held.
    pub fn cache_len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Proves `statement` with the current keys (blocking; call off the async
    /// runtime), from the cache when the same statement was proved before.
    /// The proof's parallel work runs on `pool`.
    pub fn prove(
        &self,
        statement: &Statement,
        pool: &rayon::ThreadPool,
    ) -> Result<GeneratedProof, GenerateError> {
        let keys = self.keys.current();
        let mock = self.backend == Backend::Mock;
        let key = (
            statement_key(statement, &keys.manifest.vk_id.to_string()),
            mock,
        );
        if let Some(hit) = self
            .cache
            .lock()
            .ok()
            .and_then(|mut c| c.get(&key).cloned())
        {
            self.metrics.cache_hits.inc();
            return Ok(hit);
        }
        self.metrics.cache_misses.inc();
        let proof = self.prove_fresh(statement, pool)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache
                .push(key, proof.clone())
                .is_some_and(|(evicted, _)| evicted != key)
            {
                self.metrics.cache_evictions.inc();
            }
        }
        Ok(proof)
    }

    /// Another proof of a statement already proved, with other bytes (for a
    /// job's later checkpoints, each of which needs its own `proofHash`). A
    /// real proof has fresh randomness; a mock proof gets a random suffix
    /// after its binding (it stays a mock, refused in production).
    pub fn prove_another(
        &self,
        statement: &Statement,
        pool: &rayon::ThreadPool,
    ) -> Result<GeneratedProof, GenerateError> {
        let mut proof = self.prove_fresh(statement, pool)?;
        if proof.mock {
            proof.bytes.extend_from_slice(&rand::random::<[u8; 16]>());
        }
        Ok(proof)
    }

    /// One proof of a batch of checkpoints ([`fabstir_zk::batch`]) with the
    /// current host key (blocking; call off the async runtime); its
    /// parallel work runs on `pool`. The statement's host id must be the
    /// current key's.
    pub fn prove_batch(
        &self,
        pk: &fabstir_zk::batch::BatchProvingKey,
        statement: &fabstir_zk::batch::BatchStatement,
        pool: &rayon::ThreadPool,
    ) -> Result<fabstir_zk::batch::BatchProof, fabstir_zk::BatchError> {
        let keys = self.keys.current();
        let started = Instant::now();
        let proof = pool.install(|| {
            fabstir_zk::batch::BatchProof::create(pk, statement, &keys.host_key, rand::rngs::OsRng)
        })?;
        self.metrics
            .chain_batch_prove_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(proof)
    }

    /// A new proof of `statement`, bypassing the cache (a fresh proof has
    /// fresh randomness, hence other bytes and another hash).
    pub fn prove_fresh(
        &self,
        statement: &Statement,
        pool: &rayon::ThreadPool,
    ) -> Result<GeneratedProof, GenerateError> {
        let keys = self.keys.current();
        let mock = self.backend == Backend::Mock;
        let started = Instant::now();
        let proof = if mock {
            GeneratedProof {
                bytes: mock_proof(statement),
                mock: true,
                vk_id: "mock".into(),
                commitment: statement.instance().commitment.to_string(),
                prove_ms: 0.0,
            }
        } else {
            let envelope = ProofEnvelope::create_in(
                pool,
                keys.proving_key.clone(),
                *statement,
                keys.host_key.clone(),
                self.timeout,
            )?;
            GeneratedProof {
                bytes: envelope.to_bytes(),
                mock: false,
                vk_id: envelope.vk_id.to_string(),
                commitment: envelope.instance.commitment.to_string(),
                prove_ms: started.elapsed().as_secs_f64() * 1e3,
            }
        };
        self.metrics
            .proof_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.proof_bytes.set(proof.bytes.len() as i64);
        if proof.bytes.len() > self.max_proof_size {
            return Err(GenerateError::TooLarge(
                proof.bytes.len(),
                self.max_proof_size,
            ));
        }
        Ok(proof)
    }
}

/// The bounded prover queue and its workers.
pub struct ProverPool {
    sender: Mutex<mpsc::Sender<JobId>>,
    pending: Arc<AtomicUsize>,
    capacity: usize,
    last_proof_ms: Arc<Mutex<Option<f64>>>,
}

/// The queue is full.
#[derive(Debug)]
pub struct QueueFull;

struct Worker {
    /// This worker's own thread pool (see `threads`).
    pool: Arc<rayon::ThreadPool>,
    store: Arc<Store>,
    generator: Arc<ProofGenerator>,
    metrics: Arc<Metrics>,
    pending: Arc<AtomicUsize>,
    last_proof_ms: Arc<Mutex<Option<f64>>>,
}

impl Worker {
    fn run(self, receiver: Arc<Mutex<mpsc::Receiver<JobId>>>) {
        loop {
            let job = match receiver.lock() {
                Ok(rx) => rx.recv(),
                Err(poisoned) => poisoned.into_inner().recv(),
            };
            let Ok(job) = job else { return };
            self.process(&job);
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.metrics
                .queue_depth
                .set(self.pending.load(Ordering::SeqCst) as i64);
        }
    }

    fn process(&self, job: &JobId) {
        let stored = match self.store.result(job) {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(job_id = %job.short(), error = %e, "cannot read result; left queued for the next start");
                return;
            }
        };
        if stored.state == crate::store::JobState::Proved {
            return;
        }
        if let Err(e) = self.store.mark_proving(job) {
            tracing::error!(job_id = %job.short(), error = %e, "cannot mark job proving");
            return;
        }
        // After a host key rotation, work accepted for the old host is proved
        // (and recorded) for the current one.
        let host_id = self.generator.host_id();
        if stored.host_id != host_id {
            if let Err(e) = self.store.reassign_host(job, host_id) {
                tracing::error!(job_id = %job.short(), error = %e, "cannot reassign job to the current host");
                return;
            }
        }
        let statement = stored.result.statement(host_id);
        match self.generator.prove(&statement, &self.pool) {
            Ok(proof) => {
                let record = proof.into_stored(&statement);
                match self.store.put_proof(job, &record) {
                    Ok(()) => {
                        self.metrics.proofs_generated.inc();
                        if let Ok(mut last) = self.last_proof_ms.lock() {
                            *last = Some(record.prove_ms);
                        }
                        tracing::info!(job_id = %job.short(), prove_ms = record.prove_ms, mock = record.mock, "proof generated");
                    }
                    Err(e) => {
                        tracing::error!(job_id = %job.short(), error = %e, "cannot store proof; job will be proved again")
                    }
                }
            }
            Err(e) => {
                self.metrics
                    .proof_failures
                    .with_label_values(&[e.code()])
                    .inc();
                tracing::warn!(job_id = %job.short(), reason = e.code(), error = %e, "proof generation failed");
                if let Err(store_error) = self.store.mark_failed(job, &format!("{}: {e}", e.code()))
                {
                    tracing::error!(job_id = %job.short(), error = %store_error, "cannot record failure");
                }
            }
        }
    }
}

impl ProverPool {
    /// Starts one worker per prover pool of `pools`.
    pub fn start(
        store: Arc<Store>,
        generator: Arc<ProofGenerator>,
        metrics: Arc<Metrics>,
        pools: &Pools,
        capacity: usize,
    ) -> Self {
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let pending = Arc::new(AtomicUsize::new(0));
        let last_proof_ms = Arc::new(Mutex::new(None));
        for i in 0..pools.layout().prover_workers {
            let worker = Worker {
                pool: pools.prover(i),
                store: store.clone(),
                generator: generator.clone(),
                metrics: metrics.clone(),
                pending: pending.clone(),
                last_proof_ms: last_proof_ms.clone(),
            };
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("prover-{i}"))
                .spawn(move || worker.run(receiver));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start prover thread");
            }
        }
        Self {
            sender: Mutex::new(sender),
            pending,
            capacity,
            last_proof_ms,
        }
    }

    /// Reserves a place for a new result, or refuses when the queue is full.
    /// The place is used by [`ProverPool::submit`] or returned with [`ProverPool::release`].
    pub fn reserve(&self) -> Result<(), QueueFull> {
        let mut current = self.pending.load(Ordering::SeqCst);
        loop {
            if current >= self.capacity {
                return Err(QueueFull);
            }
            match self.pending.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Returns a reserved place unused.
    pub fn release(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Queues a job for which a place was reserved.
    pub fn submit(&self, job: JobId) {
        if let Ok(sender) = self.sender.lock() {
            let _ = sender.send(job);
        }
    }

    /// Queues a job recovered at start-up (does not count against capacity
    /// at admission, so nothing accepted before a crash is dropped).
    pub fn resume(&self, job: JobId) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.submit(job);
    }

    /// Results waiting for or being proved.
    pub fn depth(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Capacity of the queue.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Latency of the last proof generated.
    pub fn last_proof_ms(&self) -> Option<f64> {
        self.last_proof_ms.lock().ok().and_then(|v| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generate_error_has_a_listed_code_and_every_listed_code_is_reached() {
        let errors = [
            GenerateError::Prove(ProveError::Timeout(Duration::from_secs(1))),
            GenerateError::Prove(ProveError::WrongHostKey),
            GenerateError::Prove(ProveError::ReservedJobId),
            GenerateError::Prove(ProveError::Backend("b".into())),
            GenerateError::TooLarge(2, 1),
        ];
        let reached: std::collections::BTreeSet<&str> =
            errors.iter().map(GenerateError::code).collect();
        let listed: std::collections::BTreeSet<&str> = GenerateError::CODES.into_iter().collect();
        assert_eq!(reached, listed);
        assert_eq!(listed.len(), GenerateError::CODES.len(), "a code twice");
    }
}
