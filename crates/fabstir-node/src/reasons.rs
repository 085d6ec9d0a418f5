//! Stable reason codes shared by the API, the command line and the metrics:
//! why a settlement is refused ([`Reason`]) and why a proof does not verify
//! ([`verify_reason_code`]). A leaf module: it depends on nothing in the node.

use fabstir_zk::VerifyError;
use serde::Serialize;

/// Why a job is not paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No result is stored for the job.
    MissingResult,
    /// The job has no proof (yet, or it failed).
    MissingProof,
    /// The stored response differs from the one proved.
    OutputTampered,
    /// The stored prompt differs from the one proved.
    InputTampered,
    /// The stored model differs from the one proved.
    ModelMismatch,
    /// The stored result differs from the one accepted in a field the proof
    /// does not cover (such as `tokens_used`).
    ResultTampered,
    /// The proof is for another host.
    WrongHost,
    /// The proof is for another chain.
    WrongChain,
    /// The proof is for another marketplace contract.
    WrongMarketplace,
    /// The proof was made for another job, or is already used by another job.
    ReplayedProof,
    /// The proof bytes are damaged or not a proof envelope.
    CorruptProof,
    /// The proof was made with a verifying key this node does not hold.
    UnknownVerifyingKey,
    /// A mock proof, refused in production.
    MockProof,
    /// The public inputs match but the proof does not verify.
    InvalidProof,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 14] = [
        Reason::MissingResult,
        Reason::MissingProof,
        Reason::OutputTampered,
        Reason::InputTampered,
        Reason::ModelMismatch,
        Reason::ResultTampered,
        Reason::WrongHost,
        Reason::WrongChain,
        Reason::WrongMarketplace,
        Reason::ReplayedProof,
        Reason::CorruptProof,
        Reason::UnknownVerifyingKey,
        Reason::MockProof,
        Reason::InvalidProof,
    ];

    /// The reason's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingResult => "missing_result",
            Self::MissingProof => "missing_proof",
            Self::OutputTampered => "output_tampered",
            Self::InputTampered => "input_tampered",
            Self::ModelMismatch => "model_mismatch",
            Self::ResultTampered => "result_tampered",
            Self::WrongHost => "wrong_host",
            Self::WrongChain => "wrong_chain",
            Self::WrongMarketplace => "wrong_marketplace",
            Self::ReplayedProof => "replayed_proof",
            Self::CorruptProof => "corrupt_proof",
            Self::UnknownVerifyingKey => "unknown_verifying_key",
            Self::MockProof => "mock_proof",
            Self::InvalidProof => "invalid_proof",
        }
    }
}

/// Every code [`verify_reason_code`] returns.
pub const VERIFY_REASON_CODES: [&str; 8] = [
    "commitment_mismatch",
    "wrong_host",
    "wrong_chain",
    "wrong_marketplace",
    "wrong_job",
    "unknown_verifying_key",
    "invalid_proof",
    "malformed_proof",
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
        VerifyError::InstanceMismatch { .. } => "commitment_mismatch",
        VerifyError::Invalid => "invalid_proof",
    }
}
