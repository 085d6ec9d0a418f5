//! How the node shares its cores: each prover worker proves on a rayon pool
//! of its own (`threads_per_prover` threads), and verification runs on one
//! separate pool (`verify_threads`).
//!
//! halo2 splits a proof into many small parallel steps. When every proof in
//! flight shares one global pool, they contend for its queues and throughput
//! stops growing with cores (measured: 8x the cores gave 2.5-3x the proofs).
//! With one pool per worker, proofs do not interfere; with a separate
//! verification pool, a burst of settlement validations cannot take the
//! provers' threads (the OS shares the cores between the two pools' threads).

use std::sync::Arc;

use rayon::{ThreadPool, ThreadPoolBuilder};
use serde::Serialize;

/// The thread layout: what `bench`, `load` and `/health/ezkl` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThreadLayout {
    /// Proofs generated in parallel.
    pub prover_workers: usize,
    /// Threads of each worker's pool.
    pub threads_per_prover: usize,
    /// Threads of the verification pool.
    pub verify_threads: usize,
}

impl ThreadLayout {
    /// The cores this process may use.
    pub fn cores() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }

    /// The default: one single-threaded prover per core, and a verification
    /// pool as wide as the machine.
    pub fn default_for(cores: usize) -> Self {
        Self {
            prover_workers: cores.max(1),
            threads_per_prover: 1,
            verify_threads: cores.max(1),
        }
    }
}

/// The pools of a [`ThreadLayout`].
pub struct Pools {
    layout: ThreadLayout,
    provers: Vec<Arc<ThreadPool>>,
    verify: Arc<ThreadPool>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// A pool could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start a thread pool: {0}")]
pub struct PoolError(String);

fn pool(threads: usize, name: String) -> Result<Arc<ThreadPool>, PoolError> {
    ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| PoolError(e.to_string()))
}

impl Pools {
    /// Starts the pools of `layout`.
    pub fn new(layout: ThreadLayout) -> Result<Self, PoolError> {
        let provers = (0..layout.prover_workers.max(1))
            .map(|i| pool(layout.threads_per_prover, format!("prover{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            layout,
            provers,
            verify: pool(layout.verify_threads, "verify".into())?,
        })
    }

    /// The layout.
    pub fn layout(&self) -> ThreadLayout {
        self.layout
    }

    /// The pool of prover worker `i` (wrapping around).
    pub fn prover(&self, i: usize) -> Arc<ThreadPool> {
        self.provers[i % self.provers.len()].clone()
    }

    /// The verification pool.
    pub fn verify(&self) -> Arc<ThreadPool> {
        self.verify.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_has_its_own_pool_of_the_given_width() {
        let pools = Pools::new(ThreadLayout {
            prover_workers: 3,
            threads_per_prover: 2,
            verify_threads: 1,
        })
        .unwrap();
        for i in 0..3 {
            assert_eq!(pools.prover(i).current_num_threads(), 2);
            assert!(!Arc::ptr_eq(&pools.prover(i), &pools.prover(i + 1)));
        }
        assert!(Arc::ptr_eq(&pools.prover(0), &pools.prover(3)));
        assert_eq!(pools.verify().current_num_threads(), 1);
        // Work installed in a pool runs on that pool's threads.
        let name = pools
            .prover(1)
            .install(|| std::thread::current().name().map(str::to_string));
        assert!(name.unwrap().starts_with("prover1-"));
    }
}
