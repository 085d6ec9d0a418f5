//! The registration statement: the holder of a host key binds its
//! `host_id` to one wallet on one marketplace.
//!
//! A marketplace registers (or rotates) a `host_id` for a wallet only with a
//! proof that the wallet's owner holds the secret behind it, so nobody can
//! register another host's id first (host ids are public: every proof
//! carries one). The proof is an ordinary proof of the current circuit
//! version (same keys, same verifier contract) of a statement in a reserved
//! domain of job ids:
//!
//! - `job_id` = the 12 bytes `"fabstir:host"` followed by the wallet's 20
//!   bytes, so the proof names the wallet (the contract builds the job id
//!   from `msg.sender`: a copied proof is useless to any other sender);
//! - `chain_id` and `marketplace` as for a checkpoint (it is valid on that
//!   marketplace only);
//! - `tokens` = 0 and the model, prompt and response hashes all zero.
//!
//! No marketplace job has such an id (job ids count up from 1), and no
//! result the node proves can have one: [`ProofEnvelope::create`] refuses
//! the domain, and the node refuses such results at its API. So a checkpoint
//! proof is never a registration, and a client that posts a result for a
//! job id in the domain to a host's node gets an error, not a registration
//! proof for its own wallet.

use rand::{CryptoRng, RngCore};

use crate::envelope::ProofEnvelope;
use crate::error::ProveError;
use crate::host::HostKey;
use crate::keys::ProvingKey;
use crate::statement::{Address, Digest32, JobId, Statement};

pub use crate::statement::REGISTRATION_DOMAIN;

/// The job id of `wallet`'s registration: [`REGISTRATION_DOMAIN`] followed
/// by the wallet's address.
pub fn registration_job_id(wallet: Address) -> JobId {
    let mut id = [0u8; 32];
    id[..12].copy_from_slice(&REGISTRATION_DOMAIN);
    id[12..].copy_from_slice(wallet.as_slice());
    JobId(id)
}

impl Statement {
    /// The registration statement binding `host_id` to `wallet` on the
    /// marketplace at `marketplace` on chain `chain_id`.
    pub fn registration(
        chain_id: u64,
        marketplace: Address,
        wallet: Address,
        host_id: crate::HostId,
    ) -> Self {
        let zero = Digest32([0; 32]);
        Self {
            chain_id,
            marketplace,
            job_id: registration_job_id(wallet),
            model_hash: zero,
            input_hash: zero,
            output_hash: zero,
            host_id,
            tokens: 0,
        }
    }
}

impl ProofEnvelope {
    /// Proves that the holder of `host_key` registers its `host_id` for
    /// `wallet` on `marketplace` (chain `chain_id`): what the marketplace's
    /// `registerHost` and `rotateHost` verify, with the envelope's
    /// commitment and proof bytes.
    pub fn create_registration<R: RngCore + CryptoRng>(
        pk: &ProvingKey,
        chain_id: u64,
        marketplace: Address,
        wallet: Address,
        host_key: &HostKey,
        rng: R,
    ) -> Result<Self, ProveError> {
        let statement = Statement::registration(chain_id, marketplace, wallet, host_key.host_id());
        Self::create_any(pk, &statement, host_key, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::test_proving_key;
    use crate::statement::parse_address;
    use crate::{Fr, InferenceResult};

    fn wallet() -> Address {
        parse_address("0x70997970c51812dc3a010c7d01b50e0d17dc79c8").unwrap()
    }

    fn marketplace() -> Address {
        parse_address("0x1111111111111111111111111111111111111111").unwrap()
    }

    #[test]
    fn the_job_id_is_the_domain_then_the_wallet() {
        let id = registration_job_id(wallet());
        assert_eq!(&id.0[..12], b"fabstir:host");
        assert_eq!(&id.0[12..], wallet().as_slice());
        assert!(id.is_reserved());
        assert!(!JobId::from_u64(42).is_reserved());
        // One byte of the domain changed: an ordinary job id.
        let mut other = id;
        other.0[0] ^= 1;
        assert!(!other.is_reserved());
    }

    #[test]
    fn a_registration_proof_verifies_for_its_wallet_only() {
        let pk = test_proving_key();
        let host = HostKey::from_secret(Fr::from(0x5eed_0001));
        let proof = ProofEnvelope::create_registration(
            pk,
            31337,
            marketplace(),
            wallet(),
            &host,
            rand::rngs::OsRng,
        )
        .unwrap();
        let statement = Statement::registration(31337, marketplace(), wallet(), host.host_id());
        assert!(statement.is_registration());
        proof
            .verify(pk.verifying_key(), &statement.instance())
            .unwrap();
        assert_eq!(proof.instance.tokens, Some(0));

        // Another wallet, chain, marketplace or host: refused.
        let squatter = parse_address("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc").unwrap();
        let others = [
            Statement::registration(31337, marketplace(), squatter, host.host_id()),
            Statement::registration(1, marketplace(), wallet(), host.host_id()),
            Statement::registration(31337, squatter, wallet(), host.host_id()),
            Statement::registration(
                31337,
                marketplace(),
                wallet(),
                HostKey::from_secret(Fr::from(0x5eed_0002)).host_id(),
            ),
        ];
        for other in others {
            assert!(
                proof.verify(pk.verifying_key(), &other.instance()).is_err(),
                "{other:?} verified"
            );
        }
    }

    #[test]
    fn results_in_the_reserved_domain_are_never_proved() {
        let host = HostKey::from_secret(Fr::from(0x5eed_0001));
        let job = registration_job_id(wallet());
        // The library's funnel refuses a statement in the domain ...
        let statement = Statement::registration(31337, marketplace(), wallet(), host.host_id());
        let refused =
            ProofEnvelope::create(test_proving_key(), &statement, &host, rand::rngs::OsRng);
        assert!(
            matches!(refused, Err(ProveError::ReservedJobId)),
            "{refused:?}"
        );
        // ... and so does the result parser.
        let json = format!(
            r#"{{"job_id": "0x{}", "chain_id": 31337, "marketplace": "{}", "model": "m",
                "prompt": "", "response": "", "tokens_used": 0}}"#,
            hex::encode(job.0),
            marketplace()
        );
        let error = InferenceResult::from_json(json.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("reserved"), "{error}");
    }
}
