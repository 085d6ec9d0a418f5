//! Prometheus metrics, exported in text format at `/metrics`.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// A metric type the [`metrics!`] table can declare.
trait Declare: Collector + Clone + 'static {
    fn declare(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Self>;
}

impl Declare for IntCounter {
    fn declare(name: &str, help: &str, _: &[&str]) -> prometheus::Result<Self> {
        IntCounter::new(name, help)
    }
}

impl Declare for IntCounterVec {
    fn declare(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Self> {
        IntCounterVec::new(Opts::new(name, help), labels)
    }
}

impl Declare for IntGauge {
    fn declare(name: &str, help: &str, _: &[&str]) -> prometheus::Result<Self> {
        IntGauge::new(name, help)
    }
}

impl Declare for IntGaugeVec {
    fn declare(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Self> {
        IntGaugeVec::new(Opts::new(name, help), labels)
    }
}

impl Declare for Gauge {
    fn declare(name: &str, help: &str, _: &[&str]) -> prometheus::Result<Self> {
        Gauge::new(name, help)
    }
}

/// Histograms are latencies in seconds, from 1 ms to 10 minutes (the upper
/// buckets are for chain confirmations, which take blocks).
impl Declare for Histogram {
    fn declare(name: &str, help: &str, _: &[&str]) -> prometheus::Result<Self> {
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0, 120.0, 300.0, 600.0,
        ]))
    }
}

/// Creates and registers one metric (names and labels are fixed in the
/// table below, so a failure is a programming error caught by every test).
fn register<M: Declare>(registry: &Registry, name: &str, help: &[&str], labels: &[&str]) -> M {
    let help = help
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let metric = M::declare(name, &help, labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

/// Declares [`Metrics`]: each field's documentation is its help text.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])+ $field:ident: $ty:ty = $name:literal $([$($label:literal),+])?;)*) => {
        /// Every metric the node exports; each field's documentation is the
        /// metric's help text.
        pub struct Metrics {
            registry: Registry,
            $($(#[doc = $doc])+ pub $field: $ty,)*
        }

        impl Metrics {
            /// Creates and registers every metric.
            pub fn new() -> Self {
                let registry = Registry::new();
                $(let $field: $ty = register(&registry, $name, &[$($doc),+], &[$($($label),+)?]);)*
                let metrics = Self { registry, $($field,)* };
                metrics.register_label_values();
                metrics
            }
        }
    };
}

metrics! {
    /// Inference results accepted and queued for proving
    results_accepted: IntCounter = "fabstir_results_accepted_total";
    /// Inference results refused, by reason
    results_rejected: IntCounterVec = "fabstir_results_rejected_total" ["reason"];
    /// Proofs generated
    proofs_generated: IntCounter = "fabstir_proofs_generated_total";
    /// Proof generation failures, by reason
    proof_failures: IntCounterVec = "fabstir_proof_generation_failures_total" ["reason"];
    /// Time to generate one proof
    proof_seconds: Histogram = "fabstir_proof_generation_seconds";
    /// Size of the last proof envelope
    proof_bytes: IntGauge = "fabstir_proof_size_bytes";
    /// Proof cache hits
    cache_hits: IntCounter = "fabstir_proof_cache_hits_total";
    /// Proof cache misses
    cache_misses: IntCounter = "fabstir_proof_cache_misses_total";
    /// Proof cache evictions
    cache_evictions: IntCounter = "fabstir_proof_cache_evictions_total";
    /// Results waiting for or being proved
    queue_depth: IntGauge = "fabstir_prover_queue_depth";
    /// Results the prover queue holds before new ones are refused with 503
    queue_capacity: IntGauge = "fabstir_prover_queue_capacity";
    /// Results refused because the prover queue was full
    queue_full: IntCounter = "fabstir_prover_queue_full_total";
    /// Proof verifications, by outcome
    verifications: IntCounterVec = "fabstir_proof_verifications_total" ["outcome"];
    /// Time to verify one proof
    verify_seconds: Histogram = "fabstir_proof_verification_seconds";
    /// Settlement validations, by outcome (passed or the rejection reason)
    settlement_validations: IntCounterVec = "fabstir_settlement_validations_total" ["outcome"];
    /// Time to validate one settlement
    settlement_seconds: Histogram = "fabstir_settlement_validation_seconds";
    /// Settlement validations, all outcomes
    settlement_validations_total: IntCounter = "fabstir_settlement_validations_all_total";
    /// Settlement validations that passed
    settlement_validations_passed: IntCounter = "fabstir_settlement_validations_passed_total";
    /// Share of settlement validations that passed since start
    settlement_success_ratio: Gauge = "fabstir_settlement_success_ratio";
    /// Settlements recorded as paid
    settlements_paid: IntCounter = "fabstir_settlements_paid_total";
    /// Proof-of-work submissions handed to the chain client
    checkpoints_submitted: IntCounter = "fabstir_checkpoints_submitted_total";
    /// Checkpoints the payment gate refused before anything was signed, by
    /// reason (the settlement reason codes: a tampered row, a mock proof in
    /// production, a proof that does not verify, ...)
    checkpoints_refused: IntCounterVec = "fabstir_checkpoints_refused_total" ["reason"];
    /// Verified submissions in the chain outbox, by state (pending, sent,
    /// confirmed, failed)
    chain_outbox_depth: IntGaugeVec = "fabstir_chain_outbox_depth" ["state"];
    /// Age of the oldest pending or sent verified submission (0 when none)
    chain_outbox_oldest_seconds: Gauge = "fabstir_chain_outbox_oldest_seconds";
    /// Time from a verified submission's recording to its confirmation
    chain_confirm_seconds: Histogram = "fabstir_chain_submit_to_confirmed_seconds";
    /// Verified submissions the contract refused (in simulation or mined), by
    /// the contract's custom error
    chain_reverts: IntCounterVec = "fabstir_chain_reverts_total" ["reason"];
    /// Failed chain RPC calls, by method (retried with backoff)
    chain_rpc_errors: IntCounterVec = "fabstir_chain_rpc_errors_total" ["method"];
    /// Stuck transactions replaced with higher fees
    chain_fee_bumps: IntCounter = "fabstir_chain_fee_bumps_total";
    /// Confirmed submissions a reorg dropped (sent again)
    chain_reorgs: IntCounter = "fabstir_chain_reorgs_total";
    /// Batches proved and recorded (each becomes one submitVerifiedBatch
    /// transaction)
    chain_batches: IntCounter = "fabstir_chain_batches_total";
    /// Checkpoints put into batches; divided by fabstir_chain_batches_total,
    /// the mean batch size
    chain_batch_checkpoints: IntCounter = "fabstir_chain_batch_checkpoints_total";
    /// Checkpoints in the last batch formed
    chain_batch_size: IntGauge = "fabstir_chain_batch_last_size";
    /// How long a batch's oldest checkpoint waited for the batch to form
    chain_batch_wait_seconds: Histogram = "fabstir_chain_batch_wait_seconds";
    /// Time to prove one batch
    chain_batch_prove_seconds: Histogram = "fabstir_chain_batch_prove_seconds";
    /// Gas used by confirmed batch transactions
    chain_batch_gas: IntCounter = "fabstir_chain_batch_gas_total";
    /// Checkpoints in confirmed batch transactions; fabstir_chain_batch_gas_total
    /// divided by it is the gas per checkpoint
    chain_batch_confirmed_checkpoints: IntCounter = "fabstir_chain_batch_confirmed_checkpoints_total";
    /// Gas per checkpoint of the last confirmed batch (the transaction's gas
    /// divided by its checkpoints)
    chain_batch_gas_per_checkpoint: IntGauge = "fabstir_chain_batch_gas_per_checkpoint";
    /// Settled jobs whose prompt and response text retention deleted
    /// (their hashes stay)
    results_pruned: IntCounter = "fabstir_results_pruned_total";
    /// Size of the database on disk (the file and its write-ahead log), in bytes
    database_bytes: IntGauge = "fabstir_database_bytes";
    /// Failed key loads or reloads
    key_load_failures: IntCounter = "fabstir_key_load_failures_total";
    /// 1 when the node holds usable keys that still load from disk and the
    /// last reload did not fail
    keys_loaded: IntGauge = "fabstir_keys_loaded";
    /// 1 when the health check passes, 0 when it fails (database, keys,
    /// key_reload, prover_queue)
    health_ok: IntGaugeVec = "fabstir_health_ok" ["check"];
}

impl Metrics {
    /// Creates every labelled series at zero, so that dashboards and alerts
    /// see each series from the start rather than after its first event.
    fn register_label_values(&self) {
        for reason in ["queue_full", "conflict", "wrong_chain", "wrong_marketplace"] {
            self.results_rejected.with_label_values(&[reason]);
        }
        for reason in ["timeout", "wrong_host_key", "backend", "proof_too_large"] {
            self.proof_failures.with_label_values(&[reason]);
        }
        for outcome in std::iter::once("valid").chain(crate::reasons::VERIFY_REASON_CODES) {
            self.verifications.with_label_values(&[outcome]);
        }
        for state in crate::store::outbox::OutboxState::ALL {
            self.chain_outbox_depth.with_label_values(&[state.name()]);
        }
        for reason in ["TokensNotIncreasing", "ExceedsDeposit", "InvalidProof"] {
            self.chain_reverts.with_label_values(&[reason]);
        }
        for method in [
            "eth_blockNumber",
            "eth_call",
            "eth_getTransactionReceipt",
            "eth_sendRawTransaction",
        ] {
            self.chain_rpc_errors.with_label_values(&[method]);
        }
        for check in ["database", "keys", "key_reload", "prover_queue"] {
            self.health_ok.with_label_values(&[check]).set(1);
        }
        for outcome in
            std::iter::once("passed").chain(crate::reasons::Reason::ALL.iter().map(|r| r.code()))
        {
            self.settlement_validations.with_label_values(&[outcome]);
        }
        for reason in crate::reasons::Reason::ALL {
            self.checkpoints_refused.with_label_values(&[reason.code()]);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Peak resident set size of this process in KiB (Linux), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
