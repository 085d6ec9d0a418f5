//! The marketplace's and verifier's interfaces, bound with alloy's `sol!`
//! from their one source, `contracts/src/IFabstirMarketplace.sol` and
//! `contracts/src/IFabstirVerifier.sol` (the contracts implement them, the
//! JavaScript package's ABI is generated from them): calldata encoding,
//! return decoding, events, and the custom errors a reverted call is decoded
//! into ([`decode_revert`]).

use alloy::primitives::{Bytes, U256};
use alloy::sol;
use alloy::sol_types::SolInterface as _;

sol!(
    #[sol(rpc, all_derives)]
    "../../contracts/src/IFabstirMarketplace.sol"
);

sol!(
    #[sol(rpc, all_derives)]
    "../../contracts/src/IFabstirVerifier.sol"
);

sol!(
    #[sol(rpc, all_derives)]
    "../../contracts/src/IFabstirBatchVerifier.sol"
);

use IFabstirMarketplace::IFabstirMarketplaceErrors as MarketplaceError;
use IFabstirVerifier::IFabstirVerifierErrors as VerifierError;

/// A reverted call's data, decoded through the interfaces' error types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Revert {
    /// One of the marketplace's custom errors.
    #[error("{}", describe(self))]
    Marketplace(MarketplaceError),
    /// The verifier's custom error (the marketplace passes it through).
    #[error("{}", describe(self))]
    Verifier(VerifierError),
    /// `revert()` without data.
    #[error("the contract reverted without an error")]
    Empty,
    /// Data that is no error of either interface.
    #[error("the contract reverted with data no interface declares: {0}")]
    Unknown(Bytes),
}

/// A reverted call's data decoded into the marketplace's or the verifier's
/// custom error ([`Revert::Empty`] for no data, [`Revert::Unknown`] for
/// anything else).
pub fn decode_revert(data: &[u8]) -> Revert {
    if data.is_empty() {
        return Revert::Empty;
    }
    if let Ok(error) = MarketplaceError::abi_decode(data) {
        return Revert::Marketplace(error);
    }
    if let Ok(error) = VerifierError::abi_decode(data) {
        return Revert::Verifier(error);
    }
    Revert::Unknown(Bytes::copy_from_slice(data))
}

impl Revert {
    /// The error's name, as the interface declares it (`"TokensNotIncreasing"`),
    /// or `"empty"` / `"unknown"`: a metric label.
    pub fn name(&self) -> &'static str {
        let name = match self {
            Self::Marketplace(e) => MarketplaceError::name_by_selector(e.selector()),
            Self::Verifier(e) => VerifierError::name_by_selector(e.selector()),
            Self::Empty => return "empty",
            Self::Unknown(_) => return "unknown",
        };
        // Every decoded error's selector is one of its enum's.
        name.unwrap_or("unknown")
    }

    /// The error's arguments as `name: value` pairs (`"jobId: 3, recorded: 8,
    /// claimed: 5"`), empty when it has none; the data in hex for
    /// [`Revert::Unknown`].
    pub fn detail(&self) -> String {
        let debug = match self {
            Self::Marketplace(e) => format!("{e:?}"),
            Self::Verifier(e) => format!("{e:?}"),
            Self::Empty => return String::new(),
            Self::Unknown(data) => return data.to_string(),
        };
        // The derived Debug is `Variant(Variant { a: 1, b: 2 })`, or
        // `Variant(Variant)` for an error without arguments.
        match (debug.find('{'), debug.rfind('}')) {
            (Some(open), Some(close)) if open < close => debug[open + 1..close].trim().to_string(),
            _ => String::new(),
        }
    }

    /// What the error means, for an operator.
    pub fn meaning(&self) -> &'static str {
        use MarketplaceError as M;
        match self {
            Self::Marketplace(e) => match e {
                M::UnknownJob(_) => "no job has this id on this marketplace",
                M::NotJobHost(_) => "only the job's host may submit work for it",
                M::NotJobParty(_) => "only the job's client or host may complete it",
                M::JobAlreadyCompleted(_) => "the job is completed: nothing more is paid for it",
                M::HostNotRegistered(_) => "the sender has no host id: register the host first",
                M::InvalidHostId(_) => {
                    "a host id is a non-zero BN254 scalar (below the field modulus)"
                }
                M::HostAlreadyRegistered(_) => "the wallet already has a host id",
                M::HostIdTaken(_) => "another wallet registered this host id, or a rotation retired it",
                M::InvalidKeyProof(_) => {
                    "the registration proof does not show that the sender holds the host id's secret"
                }
                M::TokensNotIncreasing(_) => {
                    "the claimed cumulative count does not increase the recorded one"
                }
                M::ExceedsDeposit(_) => {
                    "paying for the claimed tokens would exceed the job's deposit"
                }
                M::TokensOutOfRange(_) => "a token count must be below 2^64 (and a delta non-zero)",
                M::InvalidProof(_) => {
                    "the proof does not verify for the public inputs the marketplace derives"
                }
                M::InvalidSignature(_) => "the signature is malformed or not the job host's",
                M::ProofAlreadySubmitted(_) => "this proof hash was already paid for",
                M::ZeroDeposit(_) => "a job needs a deposit",
                M::ZeroPrice(_) => "a job needs a non-zero price per token",
                M::PriceOutOfRange(_) => "a price per token must be below 2^128 wei",
                M::UnsupportedBatchSize(_) => {
                    "no batch verifier of this size: pad the batch to a size the marketplace knows"
                }
                M::InvalidBatchProof(_) => {
                    "the batch proof does not verify for the public inputs the marketplace derives"
                }
                M::ZeroHost(_) => "a job needs a host",
                M::NothingToWithdraw(_) => "the account has nothing to withdraw",
                M::TransferFailed(_) => {
                    "sending ETH to the account failed; its balance is unchanged"
                }
            },
            Self::Verifier(VerifierError::PrecompileFailed(_)) => {
                "a precompile failed in the verifier (out of gas)"
            }
            Self::Empty => "the contract reverted without an error",
            Self::Unknown(_) => "the revert data is no error of the marketplace or the verifier",
        }
    }
}

/// The entries of a `submitVerifiedBatch` call for a batch's public inputs
/// (its entries, padding included, in proof order).
pub fn batch_entries(public: &fabstir_zk::BatchPublic) -> Vec<IFabstirMarketplace::BatchEntry> {
    public
        .entries
        .iter()
        .map(|e| IFabstirMarketplace::BatchEntry {
            jobId: U256::from_be_bytes(e.job_id.0),
            tokens: U256::from(e.tokens),
            commitment: U256::from_be_bytes(fabstir_zk::statement::field_to_be(&e.commitment.0)),
        })
        .collect()
}

/// `Name(args): meaning`, e.g. `TokensNotIncreasing(jobId: 3, recorded: 8,
/// claimed: 5): the claimed cumulative count does not increase the recorded one`.
fn describe(revert: &Revert) -> String {
    format!(
        "{}({}): {}",
        revert.name(),
        revert.detail(),
        revert.meaning()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError as _;

    #[test]
    fn reverts_decode_into_typed_errors() {
        let data = IFabstirMarketplace::TokensNotIncreasing {
            jobId: U256::from(3),
            recorded: U256::from(8),
            claimed: U256::from(5),
        }
        .abi_encode();
        let revert = decode_revert(&data);
        assert!(matches!(
            &revert,
            Revert::Marketplace(MarketplaceError::TokensNotIncreasing(e)) if e.claimed == U256::from(5)
        ));
        assert_eq!(revert.name(), "TokensNotIncreasing");
        assert_eq!(revert.detail(), "jobId: 3, recorded: 8, claimed: 5");
        assert_eq!(
            revert.to_string(),
            "TokensNotIncreasing(jobId: 3, recorded: 8, claimed: 5): \
             the claimed cumulative count does not increase the recorded one"
        );

        let revert = decode_revert(&IFabstirMarketplace::ZeroPrice {}.abi_encode());
        assert_eq!(
            (revert.name(), revert.detail()),
            ("ZeroPrice", String::new())
        );
        assert_eq!(
            revert.to_string(),
            "ZeroPrice(): a job needs a non-zero price per token"
        );

        let revert = decode_revert(&IFabstirVerifier::PrecompileFailed {}.abi_encode());
        assert_eq!(revert.name(), "PrecompileFailed");
        assert!(matches!(revert, Revert::Verifier(_)));

        assert_eq!(decode_revert(&[]), Revert::Empty);
        assert_eq!(decode_revert(&[]).name(), "empty");
        let revert = decode_revert(&[1, 2, 3, 4]);
        assert_eq!(
            (revert.name(), revert.detail()),
            ("unknown", "0x01020304".to_string())
        );
        // A known selector with malformed arguments is no error of the interface.
        let mut short = IFabstirMarketplace::UnknownJob {
            jobId: U256::from(1),
        }
        .abi_encode();
        short.truncate(20);
        assert_eq!(decode_revert(&short).name(), "unknown");
    }

    #[test]
    fn every_declared_error_has_its_name() {
        for (selector, name) in MarketplaceError::SELECTORS
            .iter()
            .zip(MarketplaceError::VARIANT_NAMES)
        {
            // Each error's data with zeroed arguments decodes back to it.
            let signature = MarketplaceError::signature_by_selector(*selector).unwrap();
            let args = signature.matches(',').count() + usize::from(!signature.ends_with("()"));
            let mut data = selector.to_vec();
            data.resize(4 + 32 * args, 0);
            let revert = decode_revert(&data);
            assert_eq!(revert.name(), *name, "{signature}");
            assert!(!revert.meaning().is_empty());
        }
    }
}
