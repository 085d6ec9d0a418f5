//! Retention: a settled job's prompt and response text is kept for
//! `result_retention` after its settlement, then deleted; their SHA-256
//! hashes stay, which is all the statement, verification, settlement and
//! the money records need. Freed space is given back to the file system
//! (incremental vacuum). With a retention of zero the settlement itself
//! deletes the text (see `settlement`); this worker catches up on jobs
//! settled before that.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::{now_ms, Store, StoreError};

/// Jobs pruned per transaction (short write transactions, so results and
/// proofs keep flowing while a backlog is pruned).
const BATCH: usize = 200;

/// How often the worker looks for jobs due: a tenth of the retention, at
/// least every second, at most every minute.
pub fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// One pass: prunes every job settled at least `retention` ago, gives the
/// space back, and updates the metrics. Returns the jobs pruned.
pub fn run_once(store: &Store, retention: Duration, metrics: &Metrics) -> Result<u64, StoreError> {
    let cutoff = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let mut total = 0;
    let mut bytes = 0;
    loop {
        let (jobs, freed) = store.prune_settled(cutoff, BATCH)?;
        total += jobs;
        bytes += freed;
        if jobs < BATCH as u64 {
            break;
        }
    }
    if total > 0 {
        metrics.results_pruned.inc_by(total);
        tracing::info!(
            jobs = total,
            text_bytes = bytes,
            "retention deleted the prompt and response text of settled jobs (hashes kept)"
        );
    }
    // Also the space of text deleted at settlement (retention 0).
    store.reclaim()?;
    metrics
        .database_bytes
        .set(i64::try_from(store.size_bytes()).unwrap_or(i64::MAX));
    Ok(total)
}

/// Runs [`run_once`] every [`interval`] on a thread of its own.
pub fn spawn(store: Arc<Store>, retention: Duration, metrics: Arc<Metrics>) {
    let every = interval(retention);
    let spawned = std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            if let Err(e) = run_once(&store, retention, &metrics) {
                tracing::error!(error = %e, "retention pass failed; retrying at the next interval");
            }
            std::thread::sleep(every);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the retention worker; settled jobs keep their text");
    }
}
