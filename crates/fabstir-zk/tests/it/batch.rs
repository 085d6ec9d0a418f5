//! Batch proofs through the public API: create and verify, padding, every
//! public field, flipped proof bytes, another size's key, typed errors, and
//! the pinned verifying key of the smallest tested size.

use crate::common::{host, sample_result};
use crate::vectors::{data, pinned};

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use fabstir_zk::statement::FieldHex;
use fabstir_zk::{
    Address, BatchEntry, BatchError, BatchProof, BatchProvingKey, BatchPublic, BatchSize,
    BatchStatement, Fr, JobId, Srs, Statement, VkId,
};

/// The development proving key for batches of `n`, built once.
fn key(n: usize) -> &'static BatchProvingKey {
    static KEYS: OnceLock<Mutex<Vec<&'static BatchProvingKey>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(pk) = keys.iter().find(|pk| pk.size().get() == n) {
        return pk;
    }
    let size = BatchSize::new(n).unwrap();
    let srs = Arc::new(Srs::insecure_dev_at(size.k()).unwrap());
    let pk: &'static BatchProvingKey =
        Box::leak(Box::new(BatchProvingKey::build(srs, size).unwrap()));
    keys.push(pk);
    pk
}

/// The sample result's statement as job `job` with `tokens`, for host 1.
fn single(job: u64, tokens: u64) -> Statement {
    let mut result = sample_result();
    result.job_id = JobId::from_u64(job);
    result.tokens_used = tokens;
    result.response = format!("response {job}");
    result.statement(host(1).host_id())
}

/// Two real checkpoints.
fn statements() -> Vec<Statement> {
    vec![single(11, 120), single(12, 7)]
}

/// Host 1's proof of [`statements`] under the key for 2 entries, checked
/// to verify, with its public inputs.
fn verified_proof() -> (BatchProof, BatchPublic) {
    let pk = key(2);
    let batch = BatchStatement::from_statements(&statements()).unwrap();
    let proof = BatchProof::create(pk, &batch, &host(1), rand::rngs::OsRng).unwrap();
    let public = batch.public();
    proof.verify(pk.verifying_key(), &public).unwrap();
    (proof, public)
}

#[test]
fn batch_proof_verifies_and_each_entry_is_the_single_commitment() {
    let pk = key(2);
    let batch = BatchStatement::from_statements(&statements()).unwrap();
    let proof = BatchProof::create(pk, &batch, &host(1), rand::rngs::OsRng).unwrap();
    assert_eq!(proof.proof.len(), pk.verifying_key().proof_len());
    // The verifier computes the public inputs from the single instances.
    let instances: Vec<_> = statements().iter().map(Statement::instance).collect();
    let expected = BatchPublic::from_instances(&instances).unwrap();
    proof.verify(pk.verifying_key(), &expected).unwrap();
    for (i, s) in statements().iter().enumerate() {
        assert_eq!(expected.entries[i].commitment.0, s.commitment());
    }
    assert_eq!(
        BatchPublic::from_field_elements(pk.size(), &expected.to_field_elements()),
        Ok(expected)
    );
}

#[test]
fn a_padded_batch_verifies() {
    let pk = key(2);
    let size = pk.size();
    let batch = BatchStatement::from_statements(&statements()[..1])
        .unwrap()
        .padded(size)
        .unwrap();
    assert!(batch.entries[1].is_padding());
    assert_eq!(batch.entries[1], BatchEntry::padding());
    let proof = BatchProof::create(pk, &batch, &host(1), rand::rngs::OsRng).unwrap();
    let expected = BatchPublic::from_instances(&[statements()[0].instance()])
        .unwrap()
        .padded(size)
        .unwrap();
    assert_eq!(expected, batch.public());
    proof.verify(pk.verifying_key(), &expected).unwrap();
    // A full batch does not fit one more entry.
    let three = BatchStatement::from_statements(&[single(1, 1), single(2, 2), single(3, 3)]);
    assert_eq!(
        three.unwrap().padded(size),
        Err(BatchError::EntryCount {
            expected: 2,
            found: 3
        })
    );
}

/// Every public field changed, in the verifier's expectation and in the
/// proof alike (a forger rewriting what the proof claims): the proof bytes
/// do not verify. Changed in the expectation only: named before halo2 runs.
#[test]
fn every_public_field_is_bound() {
    let vk = key(2).verifying_key();
    let (proof, public) = verified_proof();
    type Edit = fn(&mut BatchPublic);
    let edits: Vec<(&str, Edit)> = vec![
        ("chain_id", |p| p.chain_id += 1),
        ("marketplace", |p| {
            p.marketplace = Address::repeat_byte(0x22)
        }),
        ("host_id", |p| p.host_id.0 += Fr::from(1)),
        ("entries[0].job_id", |p| p.entries[0].job_id.0[31] ^= 1),
        ("entries[1].job_id", |p| p.entries[1].job_id.0[0] ^= 1),
        ("entries[0].tokens", |p| p.entries[0].tokens += 1),
        ("entries[1].tokens", |p| p.entries[1].tokens -= 1),
        ("entries[0].commitment", |p| {
            p.entries[0].commitment = FieldHex(p.entries[0].commitment.0 + Fr::from(1))
        }),
        ("entries[1].commitment", |p| {
            p.entries[1].commitment = p.entries[0].commitment
        }),
        ("entries[0].job_id", |p| p.entries.swap(0, 1)),
    ];
    for (field, edit) in edits {
        let mut changed = public.clone();
        edit(&mut changed);
        assert_eq!(
            proof.verify(vk, &changed),
            Err(BatchError::PublicMismatch {
                field: field.to_string()
            })
        );
        let mut forged = proof.clone();
        forged.public = changed.clone();
        assert_eq!(
            forged.verify(vk, &changed),
            Err(BatchError::Invalid),
            "{field}"
        );
    }
}

/// Every byte of the proof flipped (one bit each) is refused.
#[test]
fn every_flipped_proof_byte_is_rejected() {
    let vk = key(2).verifying_key();
    let (proof, public) = verified_proof();
    for i in 0..proof.proof.len() {
        let mut bad = proof.clone();
        bad.proof[i] ^= 1 << (i % 8);
        let err = bad
            .verify(vk, &public)
            .expect_err("a flipped proof byte must be rejected");
        assert!(
            matches!(err, BatchError::Invalid | BatchError::Malformed(_)),
            "byte {i}: {err:?}"
        );
    }
    let mut short = proof.clone();
    short.proof.pop();
    assert!(matches!(
        short.verify(vk, &public),
        Err(BatchError::Malformed(_))
    ));
}

#[test]
fn a_proof_does_not_verify_under_another_sizes_key() {
    let (two, three) = (key(2), key(3));
    assert_ne!(two.vk_id(), three.vk_id());
    let batch = BatchStatement::from_statements(&statements()).unwrap();
    let proof = BatchProof::create(two, &batch, &host(1), rand::rngs::OsRng).unwrap();
    let padded = batch.clone().padded(three.size()).unwrap().public();
    assert_eq!(
        proof.verify(three.verifying_key(), &padded),
        Err(BatchError::KeySize { key: 3, proof: 2 })
    );
    // Relabelled as a proof of three entries, it is refused by halo2.
    let mut relabelled = proof.clone();
    relabelled.size = three.size();
    relabelled.vk_id = three.vk_id();
    relabelled.public = padded.clone();
    let err = relabelled
        .verify(three.verifying_key(), &padded)
        .unwrap_err();
    assert!(
        matches!(err, BatchError::Invalid | BatchError::Malformed(_)),
        "{err:?}"
    );
    // A proof of three entries is not one of two.
    let proof3 = BatchProof::create(
        three,
        &batch.padded(three.size()).unwrap(),
        &host(1),
        rand::rngs::OsRng,
    )
    .unwrap();
    proof3.verify(three.verifying_key(), &padded).unwrap();
    assert!(proof3.verify(two.verifying_key(), &padded).is_err());
}

#[test]
fn outside_input_is_refused_with_typed_errors() {
    let pk = key(2);
    let batch = BatchStatement::from_statements(&statements()).unwrap();
    assert_eq!(
        BatchProof::create(pk, &batch, &host(2), rand::rngs::OsRng).unwrap_err(),
        BatchError::WrongHostKey
    );
    let mut one = batch.clone();
    one.entries.pop();
    assert_eq!(
        BatchProof::create(pk, &one, &host(1), rand::rngs::OsRng).unwrap_err(),
        BatchError::EntryCount {
            expected: 2,
            found: 1
        }
    );
    assert_eq!(BatchStatement::from_statements(&[]), Err(BatchError::Empty));
    let mut other_chain = single(13, 1);
    other_chain.chain_id += 1;
    assert_eq!(
        BatchStatement::from_statements(&[single(12, 1), other_chain]),
        Err(BatchError::Shared {
            entry: 1,
            field: "chain_id"
        })
    );
    assert_eq!(
        BatchSize::new(0).unwrap_err().to_string(),
        "a batch of 0 entries is not supported: a batch has 1 to 236 entries"
    );
    // Instance columns: wrong length, a range, a shared copy.
    let size = pk.size();
    let elements = batch.public().to_field_elements();
    assert!(matches!(
        BatchPublic::from_field_elements(size, &elements[1..]),
        Err(BatchError::InstanceCount {
            expected: 14,
            found: 13,
            ..
        })
    ));
    let two_64 = Fr::from(u64::MAX) + Fr::from(1);
    let mut bad = elements.clone();
    bad[13] = two_64; // tokens of entry 1
    let err = BatchPublic::from_field_elements(size, &bad).unwrap_err();
    assert_eq!(
        err,
        BatchError::InstanceRange {
            index: 13,
            entry: 1,
            field: "tokens"
        }
    );
    assert_eq!(
        err.to_string(),
        "public input 13 (entry 1's tokens) is out of range"
    );
    let mut bad = elements.clone();
    bad[11] += Fr::from(1); // host_id copy of entry 1
    assert_eq!(
        BatchPublic::from_field_elements(size, &bad),
        Err(BatchError::InstanceShared {
            index: 11,
            entry: 1,
            field: "host_id"
        })
    );
    // A key needs parameters of its size.
    let small = Arc::new(Srs::insecure_dev());
    assert!(BatchProvingKey::build(small, BatchSize::new(2).unwrap()).is_err());
}

/// The verifying key of the smallest tested size under the development SRS:
/// its description, halo2's `vk.pinned()` (every gate polynomial and
/// coefficient) and its id (regenerate with FABSTIR_REGENERATE_VECTORS=1
/// after an intended change).
#[test]
fn batch_verifying_key_is_pinned() {
    let vk = key(2).verifying_key();
    pinned(data("batch_vk_description_2.txt"), &vk.description());
    pinned(data("batch_vk_pinned_2.txt"), &vk.pinned());
    pinned(data("batch_vk_id_2.txt"), &format!("{}\n", vk.id()));
    let id = std::fs::read_to_string(data("batch_vk_id_2.txt")).unwrap();
    assert_eq!(VkId::parse(id.trim()).unwrap(), vk.id());
    assert!(vk
        .description()
        .starts_with("fabstir-zk batch verifying key, 2 entries\n"));
}
