//! "Is my checkpoint in this batch?": a client holding one result checks
//! its own checkpoint inside a batch proof.
//!
//! The client recomputes its entry's public inputs from what it holds (the
//! version 2 commitment of its result, host, chain, marketplace and
//! cumulative tokens), finds the entry of the batch with its job and token
//! count, compares the commitment, and verifies the proof for the batch's
//! public inputs: the other entries are taken as the batch states them (they
//! are other clients' business), the shared values (chain, marketplace,
//! host) must be the client's. Padding entries (job 0) never match.
//!
//! A client gets the batch from the transaction that submitted it
//! (`submitVerifiedBatch` calldata: the entries and the raw proof) or from
//! the node's API (the binary form of [`super::encoding`]); see
//! `docs/API.md`, "Check a checkpoint inside a batch".
//!
//! ```no_run
//! use fabstir_zk::batch::check::check_result;
//! use fabstir_zk::{BatchProof, BatchVerifyingKey, HostId, InferenceResult};
//! # fn inputs() -> (Vec<u8>, BatchVerifyingKey, InferenceResult, HostId) { unimplemented!() }
//! let (bytes, vk, result, host_id) = inputs();
//! let proof = BatchProof::from_bytes(&bytes).unwrap();
//! // The checkpoint after 120 cumulative tokens of the client's job.
//! let found = check_result(&proof, &vk, &result, host_id, 120).unwrap();
//! println!("entry {} of {}", found.entry, found.size);
//! ```

use super::{BatchProof, BatchVerifyingKey};
use crate::error::{BatchError, EntryError};
use crate::statement::{FieldHex, HostId, InferenceResult, Statement};

/// Where a client's checkpoint sits in a verified batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFound {
    /// Index of the first entry holding the checkpoint.
    pub entry: usize,
    /// Every index holding it (more than one when the batch repeats the
    /// checkpoint; the marketplace pays a checkpoint once).
    pub entries: Vec<usize>,
    /// The batch size.
    pub size: usize,
    /// The entry's commitment (the client's own).
    pub commitment: FieldHex,
}

/// Checks the checkpoint of `result` at `tokens` cumulative tokens, proved
/// by the host `host_id`, in `proof` ([`check_entry`] of the result's
/// statement with `tokens`).
pub fn check_result(
    proof: &BatchProof,
    vk: &BatchVerifyingKey,
    result: &InferenceResult,
    host_id: HostId,
    tokens: u64,
) -> Result<EntryFound, EntryError> {
    let mut statement = result.statement(host_id);
    statement.tokens = tokens;
    check_entry(proof, vk, &statement)
}

/// [`check_result`] on the binary form of a batch proof
/// ([`BatchProof::from_bytes`]); bytes that do not parse are
/// [`EntryError::Malformed`].
pub fn check_result_bytes(
    bytes: &[u8],
    vk: &BatchVerifyingKey,
    result: &InferenceResult,
    host_id: HostId,
    tokens: u64,
) -> Result<EntryFound, EntryError> {
    let proof = BatchProof::from_bytes(bytes).map_err(|e| match e {
        BatchError::Size { found, .. } => EntryError::UnsupportedSize {
            proof: found,
            key: vk.size().get(),
        },
        other => EntryError::Malformed(other),
    })?;
    check_result(&proof, vk, result, host_id, tokens)
}

/// Checks that `statement` (the client's own checkpoint: its `tokens` are
/// the checkpoint's cumulative tokens) is an entry of `proof` and that the
/// proof verifies under `vk`. The errors say which check failed, in this
/// order: size and key, chain, marketplace, host, job 0, the entry, the
/// commitment, the proof.
pub fn check_entry(
    proof: &BatchProof,
    vk: &BatchVerifyingKey,
    statement: &Statement,
) -> Result<EntryFound, EntryError> {
    if proof.size != vk.size() {
        return Err(EntryError::UnsupportedSize {
            proof: proof.size.get(),
            key: vk.size().get(),
        });
    }
    if proof.vk_id != vk.id() {
        return Err(EntryError::UnknownVerifyingKey {
            expected: vk.id().to_string(),
            found: proof.vk_id.to_string(),
        });
    }
    let public = &proof.public;
    if public.entries.len() != proof.size.get() {
        return Err(EntryError::Malformed(BatchError::EntryCount {
            expected: proof.size.get(),
            found: public.entries.len(),
        }));
    }
    if public.chain_id != statement.chain_id {
        return Err(EntryError::WrongChain {
            expected: statement.chain_id,
            found: public.chain_id,
        });
    }
    if public.marketplace != statement.marketplace {
        return Err(EntryError::WrongMarketplace {
            expected: statement.marketplace.to_checksum(None),
            found: public.marketplace.to_checksum(None),
        });
    }
    if public.host_id != statement.host_id {
        return Err(EntryError::WrongHost {
            expected: statement.host_id.to_string(),
            found: public.host_id.to_string(),
        });
    }
    if statement.job_id.0 == [0; 32] {
        return Err(EntryError::PaddingJob);
    }
    let commitment = FieldHex(statement.commitment());
    let of_job: Vec<(usize, &super::BatchPublicEntry)> = public
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.job_id == statement.job_id)
        .collect();
    let at_tokens: Vec<(usize, &super::BatchPublicEntry)> = of_job
        .iter()
        .copied()
        .filter(|(_, e)| e.tokens == statement.tokens)
        .collect();
    if at_tokens.is_empty() {
        let seen: Vec<String> = of_job.iter().map(|(_, e)| e.tokens.to_string()).collect();
        return Err(EntryError::NotInBatch {
            job_id: statement.job_id.to_string(),
            tokens: statement.tokens,
            seen: if seen.is_empty() {
                "the job is in no entry".into()
            } else {
                format!("the job's entries have tokens {}", seen.join(", "))
            },
        });
    }
    let entries: Vec<usize> = at_tokens
        .iter()
        .filter(|(_, e)| e.commitment == commitment)
        .map(|(i, _)| *i)
        .collect();
    let Some(&entry) = entries.first() else {
        let (index, e) = at_tokens[0];
        return Err(EntryError::CommitmentDiffers {
            entry: index,
            expected: commitment.to_string(),
            found: e.commitment.to_string(),
        });
    };
    proof.verify(vk, public).map_err(|e| match e {
        BatchError::Malformed(m) => EntryError::Malformed(BatchError::Malformed(m)),
        other => EntryError::Invalid(other),
    })?;
    Ok(EntryFound {
        entry,
        entries,
        size: proof.size.get(),
        commitment,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::batch::tests::dev_key;
    use crate::batch::{BatchEntry, BatchSize, BatchStatement};
    use crate::{Fr, HostKey, JobId, KeyError, Srs};

    fn host(seed: u64) -> HostKey {
        HostKey::from_secret(Fr::from(seed) * Fr::from(0x51ed_u64) + Fr::from(7))
    }

    /// Client `i`'s result (job `100 + i`).
    fn result(i: u64) -> InferenceResult {
        InferenceResult::from_json(
            format!(
                r#"{{"job_id": "{}", "chain_id": 84532,
                "marketplace": "0x1111111111111111111111111111111111111111",
                "model": "m", "prompt": "p{i}", "response": "r{i}", "tokens_used": 1}}"#,
                100 + i
            )
            .as_bytes(),
        )
        .unwrap()
    }

    /// A batch of 4 of host 1: clients 0 and 1 at 40 and 50 tokens, client 0
    /// again at 60, one padding entry.
    fn batch() -> (BatchProof, BatchStatement) {
        let h = host(1).host_id();
        let at = |i: u64, tokens: u64| {
            let mut s = result(i).statement(h);
            s.tokens = tokens;
            s
        };
        let statement = BatchStatement::from_statements(&[at(0, 40), at(1, 50), at(0, 60)])
            .unwrap()
            .padded(BatchSize::new(4).unwrap())
            .unwrap();
        let proof =
            BatchProof::create(dev_key(4), &statement, &host(1), rand::rngs::OsRng).unwrap();
        (proof, statement)
    }

    fn vk() -> &'static BatchVerifyingKey {
        dev_key(4).verifying_key()
    }

    #[test]
    fn a_client_finds_its_checkpoint_and_others_theirs() {
        let (proof, _) = batch();
        let h = host(1).host_id();
        let found = check_result(&proof, vk(), &result(0), h, 40).unwrap();
        assert_eq!(
            (found.entry, found.entries.clone(), found.size),
            (0, vec![0], 4)
        );
        assert_eq!(
            check_result(&proof, vk(), &result(1), h, 50).unwrap().entry,
            1
        );
        assert_eq!(
            check_result(&proof, vk(), &result(0), h, 60).unwrap().entry,
            2
        );
        // The same from the binary form.
        let bytes = proof.to_bytes();
        assert_eq!(
            check_result_bytes(&bytes, vk(), &result(1), h, 50)
                .unwrap()
                .entry,
            1
        );
    }

    #[test]
    fn each_wrong_input_is_named() {
        let (proof, _) = batch();
        let h = host(1).host_id();
        let check =
            |r: &InferenceResult, host: HostId, tokens| check_result(&proof, vk(), r, host, tokens);
        // Not in the batch: another job, another token count.
        assert!(
            matches!(check(&result(5), h, 40), Err(EntryError::NotInBatch { seen, .. }) if seen.contains("no entry"))
        );
        assert!(
            matches!(check(&result(0), h, 41), Err(EntryError::NotInBatch { seen, .. }) if seen.contains("40, 60"))
        );
        // Present with another response: the commitment differs.
        let mut changed = result(1);
        changed.response.push('!');
        assert!(matches!(
            check(&changed, h, 50),
            Err(EntryError::CommitmentDiffers { entry: 1, .. })
        ));
        // Shared values.
        let mut other_chain = result(0);
        other_chain.chain_id = 1;
        assert!(matches!(
            check(&other_chain, h, 40),
            Err(EntryError::WrongChain {
                expected: 1,
                found: 84532
            })
        ));
        let mut other_market = result(0);
        other_market.marketplace =
            crate::parse_address("0x2222222222222222222222222222222222222222").unwrap();
        assert!(matches!(
            check(&other_market, h, 40),
            Err(EntryError::WrongMarketplace { .. })
        ));
        assert!(matches!(
            check(&result(0), host(2).host_id(), 40),
            Err(EntryError::WrongHost { .. })
        ));
        // Job 0 is padding: never an entry, even though the batch has one.
        let mut padding = result(0);
        padding.job_id = JobId([0; 32]);
        assert_eq!(check(&padding, h, 0), Err(EntryError::PaddingJob));
        // Another size's key, and unparsable bytes.
        assert!(matches!(
            check_entry(&proof, dev_key(2).verifying_key(), &result(0).statement(h)),
            Err(EntryError::UnsupportedSize { proof: 4, key: 2 })
        ));
        let mut bytes = proof.to_bytes();
        bytes.pop();
        assert!(matches!(
            check_result_bytes(&bytes, vk(), &result(0), h, 40),
            Err(EntryError::Malformed(_))
        ));
    }

    #[test]
    fn a_forged_batch_is_refused_even_when_the_clients_entry_is_right() {
        let (proof, statement) = batch();
        let h = host(1).host_id();
        // Another entry's tokens changed in the public inputs: client 0's
        // entry is intact, but the proof no longer verifies.
        let mut forged = proof.clone();
        forged.public.entries[1].tokens += 1;
        assert!(matches!(
            check_result(&forged, vk(), &result(0), h, 40),
            Err(EntryError::Invalid(_))
        ));
        // The padding entry given a real job.
        let mut forged = proof.clone();
        forged.public.entries[3].job_id = JobId::from_u64(999);
        assert!(matches!(
            check_result(&forged, vk(), &result(0), h, 40),
            Err(EntryError::Invalid(_))
        ));
        // A client's entry copied over the padding: found twice, then refused.
        let mut forged = proof.clone();
        forged.public.entries[3] = forged.public.entries[1];
        assert!(matches!(
            check_result(&forged, vk(), &result(1), h, 50),
            Err(EntryError::Invalid(_))
        ));
        // A proof byte flipped.
        let mut forged = proof.clone();
        forged.proof[100] ^= 1;
        assert!(check_result(&forged, vk(), &result(0), h, 40).is_err());
        // An honest batch that repeats a checkpoint: both indexes reported.
        let mut twice = statement.clone();
        twice.entries[3] = twice.entries[1];
        let proof = BatchProof::create(dev_key(4), &twice, &host(1), rand::rngs::OsRng).unwrap();
        let found = check_result(&proof, vk(), &result(1), h, 50).unwrap();
        assert_eq!(found.entries, vec![1, 3]);
        assert!(!BatchEntry::padding().job_id.0.iter().any(|b| *b != 0));
    }

    #[test]
    fn batch_keys_come_from_the_development_srs_or_are_refused() {
        let size = BatchSize::new(2).unwrap();
        let dev = Arc::new(Srs::insecure_dev());
        let vk = BatchVerifyingKey::for_key_srs(&dev, size).unwrap();
        assert_eq!(vk.id(), dev_key(2).vk_id());
        // Sizes of the same rows share one copy of the larger setup.
        let three = BatchVerifyingKey::for_key_srs(&dev, BatchSize::new(3).unwrap()).unwrap();
        assert_eq!(three.srs().k(), vk.srs().k());
        assert!(Arc::ptr_eq(three.srs(), vk.srs()));
        // A batch of 1 fits the stored rows of any SRS.
        let one = BatchSize::new(1).unwrap();
        assert_eq!(
            BatchVerifyingKey::for_key_srs(&dev, one).unwrap().size(),
            one
        );
        // Other parameters of 2^7 rows: refused for a larger batch.
        let other = Arc::new(other_srs());
        let refused = BatchVerifyingKey::for_key_srs(&other, size).unwrap_err();
        assert!(
            matches!(refused, KeyError::BatchSrs { entries: 2, needed, found: 7 } if needed == size.k()),
            "{refused}"
        );
        assert!(refused.to_string().contains("2^7"));
        assert_eq!(
            BatchVerifyingKey::for_key_srs(&other, one).unwrap().size(),
            one
        );
    }

    /// A ceremony-style SRS of another secret at 2^7 rows.
    fn other_srs() -> Srs {
        use halo2_axiom::halo2curves::bn256::Bn256;
        use halo2_axiom::poly::kzg::commitment::ParamsKZG;
        use rand::SeedableRng;
        let params = ParamsKZG::<Bn256>::setup(7, rand_chacha::ChaCha20Rng::from_seed([9; 32]));
        let mut bytes = Vec::new();
        params
            .write_custom(&mut bytes, halo2_axiom::SerdeFormat::RawBytes)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.params");
        std::fs::write(&path, &bytes).unwrap();
        Srs::load_ceremony(&path, &crate::Digest32::sha256(&bytes)).unwrap()
    }
}
