//! The interface between the checkpoint flow and whatever credits a
//! checkpoint: [`ChainClient`], what it takes ([`SubmissionKind`],
//! [`Submission`]) and what it answers ([`Receipt`], [`ChainError`]).

use alloy::primitives::{Address, U256};
use alloy::transports::TransportError;
use fabstir_zk::{Digest32, InferenceResult};
use serde_json::json;
use thiserror::Error;

use super::ProofOfWorkSubmission;
use crate::store::{Checkpoint, StoreError};

/// What a chain client takes for each checkpoint. It decides what the
/// checkpoint's proof binds and what is recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionKind {
    /// The host wallet's signed `submitProofOfWork` payload: the claim (the
    /// delta over the job's last checkpoint) is signed, and the proof it
    /// carries proves the result (its `tokens_used`). The local ledger.
    SignedPayload,
    /// `submitVerifiedProof`: a proof of the checkpoint's own cumulative
    /// count, which the contract verifies and credits. Nothing is signed
    /// but the transaction; mock proofs cannot be verified. The EVM chain.
    VerifiedProof,
}

impl SubmissionKind {
    /// The token count the checkpoint's proof binds: the result's
    /// `tokens_used` for a signed payload, the checkpoint's cumulative count
    /// for a verified proof.
    pub fn proved_tokens(self, tokens_used: u64, checkpoint_tokens: u64) -> u64 {
        match self {
            Self::SignedPayload => tokens_used,
            Self::VerifiedProof => checkpoint_tokens,
        }
    }

    /// Refuses a mock proof where a contract would verify it.
    pub fn admits(self, mock: bool) -> Result<(), Refusal> {
        match self {
            Self::VerifiedProof if mock => Err(Refusal::MockProof),
            _ => Ok(()),
        }
    }
}

/// A recorded checkpoint's submission, in the form its client takes (see
/// [`ChainClient::takes`]).
#[derive(Debug, Clone, Copy)]
pub enum Submission<'a> {
    /// The signed `submitProofOfWork` payload.
    SignedPayload(&'a ProofOfWorkSubmission),
    /// The proof envelope (bytes) of the checkpoint's own cumulative count;
    /// its public inputs say what is claimed.
    VerifiedProof {
        /// The envelope's bytes, as stored with the checkpoint.
        envelope: &'a [u8],
    },
}

impl Submission<'_> {
    /// The kind of this submission.
    pub fn kind(&self) -> SubmissionKind {
        match self {
            Self::SignedPayload(_) => SubmissionKind::SignedPayload,
            Self::VerifiedProof { .. } => SubmissionKind::VerifiedProof,
        }
    }
}

/// What the chain says about a submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// Ledger entry (`ledger-N`) or outbox entry (`outbox-N`) identifier.
    pub id: String,
    pub recorded_at_ms: i64,
}

/// A submission the chain refuses, or a failure to reach it.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The ledger already holds this `proofHash` for another checkpoint.
    #[error("proofHash {0} was already submitted for another checkpoint")]
    ProofHashReused(Digest32),
    /// The chain refuses the submission; it claims nothing.
    #[error("the submission is refused: {0}")]
    Refused(#[from] Refusal),
    /// The chain cannot be asked now; the checkpoint stays pending.
    #[error("the chain cannot be reached: {0}")]
    Unavailable(#[from] RpcError),
    /// The node's database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A JSON-RPC call that failed without an answer the node can act on (the
/// endpoint is down, rate-limited, or answered something unreadable).
#[derive(Debug, Error)]
#[error("{call}: {}", super::evm::rpc::error_chain(.source))]
pub struct RpcError {
    /// The call (a JSON-RPC method or a contract function).
    pub call: &'static str,
    /// alloy's transport error.
    #[source]
    pub source: TransportError,
}

/// A contract's revert, decoded into its custom error: the name (a metric
/// label) and the error with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    /// The custom error's name: `unknown` when the data decodes into none of
    /// the marketplace's errors, `empty` when there is none (`revert()`).
    pub name: String,
    /// Its arguments (`jobId: 3, recorded: 8, claimed: 5`) or the raw data.
    pub detail: String,
}

impl Revert {
    /// `data` decoded through the marketplace's generated error types.
    pub fn decode(data: &[u8]) -> Self {
        let revert = super::contract::decode_revert(data);
        Self {
            name: revert.name().to_string(),
            detail: revert.detail(),
        }
    }
}

impl std::fmt::Display for Revert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}({})", self.name, self.detail)
        }
    }
}

/// Why the chain refuses a checkpoint (before anything is signed, or when
/// it is submitted). Each says what is wrong with the checkpoint, its proof
/// or its job; none is retried.
#[derive(Debug, Clone, Error)]
pub enum Refusal {
    /// The claim is larger than the ledger records.
    #[error("tokensClaimed does not fit in 64 bits")]
    ClaimTooLarge,
    /// A mock proof: the contract's verifier would refuse it.
    #[error("mock proofs cannot be verified on-chain")]
    MockProof,
    /// The checkpoint's record carries no proof.
    #[error("the checkpoint's payload has no proof")]
    NoProof,
    /// The stored proof is not a proof envelope.
    #[error("the checkpoint's proof is not an envelope: {0}")]
    NotAnEnvelope(#[source] fabstir_zk::EnvelopeError),
    /// A circuit version 1 proof: it does not bind the count.
    #[error("the checkpoint's proof is a circuit version 1 proof, which does not bind the token count the contract credits")]
    TokensNotBound,
    /// The client takes another kind of submission than it was given.
    #[error("the chain client takes {expected:?} submissions, not {given:?}")]
    WrongKind {
        expected: SubmissionKind,
        given: SubmissionKind,
    },
    /// The result names another chain.
    #[error("the result's chain_id {result} is not the chain's {chain}")]
    WrongChain { result: u64, chain: u64 },
    /// The result names another marketplace.
    #[error("the result's marketplace {result} is not the configured marketplace {configured}")]
    WrongMarketplace {
        result: Address,
        configured: Address,
    },
    /// The contract reverts the job's lookup.
    #[error("the marketplace refuses job {job}: {revert}")]
    JobReverted { job: U256, revert: Revert },
    /// No such job on the marketplace.
    #[error("job {job} does not exist on the marketplace")]
    NoSuchJob { job: U256 },
    /// The job is another host's.
    #[error("job {job}'s host is {host}, not this node's wallet {wallet}")]
    NotJobHost {
        job: U256,
        host: Address,
        wallet: Address,
    },
    /// The job is completed on-chain.
    #[error("job {job} is completed on-chain")]
    JobCompleted { job: U256 },
    /// The count is not above what the contract recorded.
    #[error("tokens_processed {tokens} is not above the {recorded} tokens the contract recorded for job {job}")]
    NotAboveRecorded {
        job: U256,
        tokens: u64,
        recorded: U256,
    },
    /// The job's deposit cannot pay for the count.
    #[error("tokens_processed {} at {} wei per token costs {} wei, above job {}'s deposit of {} wei", .0.tokens, .0.price, .0.cost, .0.job, .0.deposit)]
    ExceedsDeposit(Box<Shortfall>),
}

/// A count a job's deposit cannot pay for (boxed in [`Refusal`]: five words).
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub job: U256,
    pub tokens: u64,
    /// Wei per token.
    pub price: U256,
    /// `tokens * price`, in wei.
    pub cost: U256,
    /// The job's deposit, in wei.
    pub deposit: U256,
}

/// Receives checkpoints and takes them to money: see the [module
/// documentation](super) for the clients.
pub trait ChainClient: Send + Sync {
    /// What the client is, for `/health`: `local_ledger` or `evm`.
    fn kind(&self) -> &'static str;
    /// What `/health` shows about the client.
    fn describe(&self) -> serde_json::Value {
        json!({ "kind": self.kind() })
    }
    /// The form of submission the client takes for each checkpoint.
    fn takes(&self) -> SubmissionKind;
    /// The chain id and marketplace every result must name, when the
    /// client submits to one marketplace (so that a result for another is
    /// refused when it arrives, not at its first checkpoint).
    fn target(&self) -> Option<(u64, [u8; 20])> {
        None
    }
    /// Checks a checkpoint at cumulative count `tokens` before anything is
    /// proved or signed for it.
    fn precheck(&self, _result: &InferenceResult, _tokens: u64) -> Result<(), ChainError> {
        Ok(())
    }
    /// Submits a recorded checkpoint. Submitting the same checkpoint again
    /// returns the first receipt.
    fn submit(
        &self,
        checkpoint: &Checkpoint,
        submission: Submission<'_>,
    ) -> Result<Receipt, ChainError>;
    /// The receipt of a checkpoint already recorded, if any.
    fn receipt(&self, checkpoint_id: i64) -> Result<Option<Receipt>, ChainError>;
}
