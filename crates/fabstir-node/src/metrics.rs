//! Prometheus metrics, exported in text format at `/metrics`.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    pub results_accepted: IntCounter,
    pub results_rejected: IntCounterVec,
    pub proofs_generated: IntCounter,
    pub proof_failures: IntCounterVec,
    pub proof_seconds: Histogram,
    pub proof_bytes: IntGauge,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_evictions: IntCounter,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub queue_full: IntCounter,
    pub verifications: IntCounterVec,
    pub verify_seconds: Histogram,
    pub settlement_validations: IntCounterVec,
    pub settlement_seconds: Histogram,
    pub settlement_validations_total: IntCounter,
    pub settlement_validations_passed: IntCounter,
    pub settlement_success_ratio: Gauge,
    pub settlements_paid: IntCounter,
    pub checkpoints_submitted: IntCounter,
    pub key_load_failures: IntCounter,
    pub keys_loaded: IntGauge,
    pub health_ok: IntGaugeVec,
}

fn seconds_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ]
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(seconds_buckets()))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let metrics = Self {
            results_accepted: counter(
                "fabstir_results_accepted_total",
                "Inference results accepted and queued for proving",
            ),
            results_rejected: counter_vec(
                "fabstir_results_rejected_total",
                "Inference results refused, by reason",
                &["reason"],
            ),
            proofs_generated: counter("fabstir_proofs_generated_total", "Proofs generated"),
            proof_failures: counter_vec(
                "fabstir_proof_generation_failures_total",
                "Proof generation failures, by reason",
                &["reason"],
            ),
            proof_seconds: histogram(
                "fabstir_proof_generation_seconds",
                "Time to generate one proof",
            ),
            proof_bytes: gauge(
                "fabstir_proof_size_bytes",
                "Size of the last proof envelope",
            ),
            cache_hits: counter("fabstir_proof_cache_hits_total", "Proof cache hits"),
            cache_misses: counter("fabstir_proof_cache_misses_total", "Proof cache misses"),
            cache_evictions: counter(
                "fabstir_proof_cache_evictions_total",
                "Proof cache evictions",
            ),
            queue_depth: gauge(
                "fabstir_prover_queue_depth",
                "Results waiting for or being proved",
            ),
            queue_capacity: gauge(
                "fabstir_prover_queue_capacity",
                "Results the prover queue holds before new ones are refused with 503",
            ),
            queue_full: counter(
                "fabstir_prover_queue_full_total",
                "Results refused because the prover queue was full",
            ),
            verifications: counter_vec(
                "fabstir_proof_verifications_total",
                "Proof verifications, by outcome",
                &["outcome"],
            ),
            verify_seconds: histogram(
                "fabstir_proof_verification_seconds",
                "Time to verify one proof",
            ),
            settlement_validations: counter_vec(
                "fabstir_settlement_validations_total",
                "Settlement validations, by outcome (passed or the rejection reason)",
                &["outcome"],
            ),
            settlement_seconds: histogram(
                "fabstir_settlement_validation_seconds",
                "Time to validate one settlement",
            ),
            settlement_validations_total: counter(
                "fabstir_settlement_validations_all_total",
                "Settlement validations, all outcomes",
            ),
            settlement_validations_passed: counter(
                "fabstir_settlement_validations_passed_total",
                "Settlement validations that passed",
            ),
            settlement_success_ratio: {
                let g = Gauge::new(
                    "fabstir_settlement_success_ratio",
                    "Share of settlement validations that passed since start",
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            settlements_paid: counter(
                "fabstir_settlements_paid_total",
                "Settlements recorded as paid",
            ),
            checkpoints_submitted: counter(
                "fabstir_checkpoints_submitted_total",
                "Proof-of-work submissions handed to the chain client",
            ),
            key_load_failures: counter(
                "fabstir_key_load_failures_total",
                "Failed key loads or reloads",
            ),
            keys_loaded: gauge(
                "fabstir_keys_loaded",
                "1 when the node holds usable keys that still load from disk and the last reload did not fail",
            ),
            health_ok: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "fabstir_health_ok",
                        "1 when the health check passes, 0 when it fails (database, keys, key_reload, prover_queue)",
                    ),
                    &["check"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            registry,
        };
        metrics.register_label_values();
        metrics
    }

    /// Creates every labelled series at zero, so that dashboards and alerts
    /// see each series from the start rather than after its first event.
    fn register_label_values(&self) {
        for reason in ["queue_full", "conflict"] {
            self.results_rejected.with_label_values(&[reason]);
        }
        for reason in ["timeout", "wrong_host_key", "backend", "proof_too_large"] {
            self.proof_failures.with_label_values(&[reason]);
        }
        for outcome in std::iter::once("valid").chain(crate::reasons::VERIFY_REASON_CODES) {
            self.verifications.with_label_values(&[outcome]);
        }
        for check in ["database", "keys", "key_reload", "prover_queue"] {
            self.health_ok.with_label_values(&[check]).set(1);
        }
        for outcome in
            std::iter::once("passed").chain(crate::reasons::Reason::ALL.iter().map(|r| r.code()))
        {
            self.settlement_validations.with_label_values(&[outcome]);
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
