//! Fault points for crash tests: with the `fault-injection` feature (never in
//! a release build), the submission worker aborts the process (as `kill -9`
//! would stop it) at the point [`FAULT_ENV`] names. Without the feature,
//! [`fault`] is a no-op the compiler removes.

/// Environment variable naming a fault point at which the node aborts:
/// `after_sign` (a transaction is signed, nothing recorded), `after_record`
/// (recorded as sent, not broadcast), `after_broadcast` (broadcast, no
/// receipt looked for yet), `awaiting_receipt` (a sent transaction has no
/// receipt at the depth yet).
#[cfg(feature = "fault-injection")]
pub const FAULT_ENV: &str = "FABSTIR_CHAIN_FAULT";

/// Aborts the process when [`FAULT_ENV`] names `point`.
#[cfg(feature = "fault-injection")]
pub(super) fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        eprintln!("{FAULT_ENV}={point}: aborting");
        std::process::abort();
    }
}

/// No fault points in this build (the `fault-injection` feature is off).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(super) fn fault(_point: &str) {}
