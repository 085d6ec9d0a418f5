//! Stable reason codes shared by the API, the command line and the metrics:
//! why a settlement is refused ([`Reason`]) and why a proof does not verify
//! ([`verify_reason_code`]). A leaf module: it depends on nothing in the node.

use fabstir_zk::{EntryError, VerifyError};
use serde::Serialize;

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// Why a job is not paid.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
        }

        impl Reason {
            /// Every reason (generated with the enum, so none can be missing).
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The reason's code.
            pub fn code(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)*
                }
            }
        }
    };
}

reasons! {
    /// No result is stored for the job.
    MissingResult = "missing_result",
    /// The job has no proof (yet, or it failed).
    MissingProof = "missing_proof",
    /// The stored response differs from the one proved.
    OutputTampered = "output_tampered",
    /// The stored prompt differs from the one proved.
    InputTampered = "input_tampered",
    /// The stored model differs from the one proved.
    ModelMismatch = "model_mismatch",
    /// The stored result differs from the one accepted in a field the proof
    /// does not cover (such as `tokens_used`).
    ResultTampered = "result_tampered",
    /// The proof is for another host.
    WrongHost = "wrong_host",
    /// The proof is for another chain.
    WrongChain = "wrong_chain",
    /// The proof is for another marketplace contract.
    WrongMarketplace = "wrong_marketplace",
    /// The proof binds another token count than the stored result's
    /// `tokens_used` (circuit version 2).
    WrongTokens = "wrong_tokens",
    /// The proof was made for another job, or is already used by another job.
    ReplayedProof = "replayed_proof",
    /// The proof bytes are damaged or not a proof envelope.
    CorruptProof = "corrupt_proof",
    /// The proof was made with a verifying key this node does not hold.
    UnknownVerifyingKey = "unknown_verifying_key",
    /// A mock proof, refused in production.
    MockProof = "mock_proof",
    /// The public inputs match but the proof does not verify.
    InvalidProof = "invalid_proof",
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// Every code [`verify_reason_code`] returns.
pub const VERIFY_REASON_CODES: [&str; 11] = [
    "commitment_mismatch",
    "wrong_host",
    "wrong_chain",
    "wrong_marketplace",
    "wrong_job",
    "wrong_tokens",
    "unknown_verifying_key",
    "invalid_proof",
    "malformed_proof",
    "not_in_batch",
    "unsupported_batch_size",
];

/// The stable code of a verification failure.
pub fn verify_reason_code(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Malformed(_) => "malformed_proof",
        VerifyError::UnknownVerifyingKey { .. } => "unknown_verifying_key",
        VerifyError::InstanceMismatch { field: "host_id" } => "wrong_host",
        VerifyError::InstanceMismatch { field: "chain_id" } => "wrong_chain",
        VerifyError::InstanceMismatch {
            field: "marketplace",
        } => "wrong_marketplace",
        VerifyError::InstanceMismatch { field: "job_id" } => "wrong_job",
        VerifyError::InstanceMismatch { field: "tokens" } => "wrong_tokens",
        VerifyError::InstanceMismatch { .. } => "commitment_mismatch",
        VerifyError::Invalid => "invalid_proof",
        // Public inputs of another circuit version than the envelope's key.
        VerifyError::CircuitVersion { .. } => "malformed_proof",
    }
}

/// The stable code of a failed check of a checkpoint inside a batch
/// (`fabstir_zk::batch::check`): the single proof's codes where they mean
/// the same, and `not_in_batch`, `unsupported_batch_size`.
pub fn batch_reason_code(e: &EntryError) -> &'static str {
    match e {
        EntryError::Malformed(_) => "malformed_proof",
        EntryError::UnsupportedSize { .. } => "unsupported_batch_size",
        EntryError::UnknownVerifyingKey { .. } => "unknown_verifying_key",
        EntryError::WrongChain { .. } => "wrong_chain",
        EntryError::WrongMarketplace { .. } => "wrong_marketplace",
        EntryError::WrongHost { .. } => "wrong_host",
        EntryError::PaddingJob | EntryError::NotInBatch { .. } => "not_in_batch",
        EntryError::CommitmentDiffers { .. } => "commitment_mismatch",
        EntryError::Invalid(_) => "invalid_proof",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_error_has_a_listed_code() {
        let e = || fabstir_zk::BatchError::Invalid;
        let s = String::new;
        let errors = [
            EntryError::Malformed(e()),
            EntryError::UnsupportedSize { proof: 2, key: 4 },
            EntryError::UnknownVerifyingKey {
                expected: s(),
                found: s(),
            },
            EntryError::WrongChain {
                expected: 1,
                found: 2,
            },
            EntryError::WrongMarketplace {
                expected: s(),
                found: s(),
            },
            EntryError::WrongHost {
                expected: s(),
                found: s(),
            },
            EntryError::PaddingJob,
            EntryError::NotInBatch {
                job_id: s(),
                tokens: 1,
                seen: s(),
            },
            EntryError::CommitmentDiffers {
                entry: 0,
                expected: s(),
                found: s(),
            },
            EntryError::Invalid(e()),
        ];
        let reached: std::collections::BTreeSet<&str> =
            errors.iter().map(batch_reason_code).collect();
        for code in &reached {
            assert!(VERIFY_REASON_CODES.contains(code), "{code} is not listed");
        }
        assert!(reached.contains("not_in_batch") && reached.contains("unsupported_batch_size"));
    }

    #[test]
    fn every_verify_error_has_a_listed_code_and_every_listed_code_is_reached() {
        let errors = [
            VerifyError::Malformed(fabstir_zk::EnvelopeError::Empty),
            VerifyError::UnknownVerifyingKey {
                expected: "a".into(),
                found: "b".into(),
            },
            VerifyError::InstanceMismatch { field: "host_id" },
            VerifyError::InstanceMismatch { field: "chain_id" },
            VerifyError::InstanceMismatch {
                field: "marketplace",
            },
            VerifyError::InstanceMismatch { field: "job_id" },
            VerifyError::InstanceMismatch { field: "tokens" },
            VerifyError::InstanceMismatch {
                field: "commitment",
            },
            VerifyError::Invalid,
            VerifyError::CircuitVersion { key: 2, proof: 1 },
        ];
        let mut reached: std::collections::BTreeSet<&str> =
            errors.iter().map(verify_reason_code).collect();
        // The two codes only a batch check gives.
        reached.extend(["not_in_batch", "unsupported_batch_size"]);
        let listed: std::collections::BTreeSet<&str> =
            VERIFY_REASON_CODES.iter().copied().collect();
        assert_eq!(reached, listed);
    }

    #[test]
    fn reasons_serialise_as_their_codes() {
        for reason in Reason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(reason.code())
            );
        }
    }
}
