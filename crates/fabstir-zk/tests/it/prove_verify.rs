//! End to end: real proofs under the development SRS, verified single and in
//! batches, and rejected for every other statement.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{host, proving_key, sample_result};
use fabstir_zk::{
    verify_batch, Address, Digest32, JobId, ModelRef, ProofEnvelope, ProveError, VerifyError,
};

#[test]
fn honest_proof_verifies() {
    let pk = proving_key();
    let host = host(1);
    let result = sample_result();
    let statement = result.statement(host.host_id());
    let proof = ProofEnvelope::create(pk, &statement, &host, rand::rngs::OsRng).unwrap();
    assert_eq!(
        proof.proof.len(),
        fabstir_zk::ProofLayout::get().proof_len()
    );
    proof
        .verify(pk.verifying_key(), &statement.instance())
        .unwrap();
    // Round trips through both wire forms still verify.
    let binary = ProofEnvelope::from_bytes(&proof.to_bytes()).unwrap();
    binary
        .verify(pk.verifying_key(), &statement.instance())
        .unwrap();
    let json = ProofEnvelope::from_json(proof.to_json().as_bytes()).unwrap();
    json.verify(pk.verifying_key(), &statement.instance())
        .unwrap();
}

/// Every way the verifier's own view of the result can differ from what was
/// proved: the proof must not verify for it, whether or not the envelope's
/// public inputs were rewritten to match.
#[test]
fn proof_does_not_verify_for_any_other_statement() {
    let pk = proving_key();
    let vk = pk.verifying_key();
    let host_a = host(1);
    let result = sample_result();
    let proof = ProofEnvelope::create(
        pk,
        &result.statement(host_a.host_id()),
        &host_a,
        rand::rngs::OsRng,
    )
    .unwrap();

    let mut variants = Vec::new();
    let mut r = result.clone();
    r.response.push('!');
    variants.push(("output", r));
    let mut r = result.clone();
    r.prompt = r.prompt.replace("France", "Spain");
    variants.push(("input", r));
    let mut r = result.clone();
    r.model = ModelRef::Hash(Digest32::sha256(b"another model"));
    variants.push(("model", r));
    let mut r = result.clone();
    r.job_id = JobId::from_u64(7);
    variants.push(("job", r));
    let mut r = result.clone();
    r.chain_id = 1;
    variants.push(("chain", r));
    let mut r = result.clone();
    r.marketplace = Address::new([0x22; 20]);
    variants.push(("marketplace", r));

    for (what, tampered) in variants {
        let expected = tampered.statement(host_a.host_id()).instance();
        let err = proof.verify(vk, &expected).unwrap_err();
        assert!(
            matches!(err, VerifyError::InstanceMismatch { .. }),
            "{what}: {err:?}"
        );
        // A forger who also rewrites the envelope's public inputs gets no further.
        let mut forged = proof.clone();
        forged.instance = expected;
        assert_eq!(
            forged.verify(vk, &expected),
            Err(VerifyError::Invalid),
            "{what}"
        );
    }

    // Another host claiming the work: its id in the envelope and expected.
    let host_b = host(2);
    let expected = result.statement(host_b.host_id()).instance();
    let mut forged = proof.clone();
    forged.instance = expected;
    assert_eq!(forged.verify(vk, &expected), Err(VerifyError::Invalid));
}

#[test]
fn wrong_host_key_is_refused_before_proving() {
    let pk = proving_key();
    let statement = sample_result().statement(host(1).host_id());
    let err = ProofEnvelope::create(pk, &statement, &host(2), rand::rngs::OsRng).unwrap_err();
    assert_eq!(err, ProveError::WrongHostKey);
}

#[test]
fn every_flipped_proof_byte_is_rejected() {
    let pk = proving_key();
    let vk = pk.verifying_key();
    let h = host(3);
    let statement = sample_result().statement(h.host_id());
    let instance = statement.instance();
    let proof = ProofEnvelope::create(pk, &statement, &h, rand::rngs::OsRng).unwrap();
    for i in 0..proof.proof.len() {
        let mut bad = proof.clone();
        bad.proof[i] ^= 1 << (i % 8);
        let err = bad
            .verify(vk, &instance)
            .expect_err("a flipped proof byte must be rejected");
        assert!(
            matches!(err, VerifyError::Invalid | VerifyError::Malformed(_)),
            "byte {i}: {err:?}"
        );
    }
}

#[test]
fn batch_verification_accepts_valid_and_pinpoints_invalid() {
    let pk = proving_key();
    let vk = pk.verifying_key();
    let mut proofs = Vec::new();
    let mut instances = Vec::new();
    for n in 0..6u64 {
        let h = host(10 + n);
        let mut result = sample_result();
        result.job_id = JobId::from_u64(1000 + n);
        let statement = result.statement(h.host_id());
        proofs.push(ProofEnvelope::create(pk, &statement, &h, rand::rngs::OsRng).unwrap());
        instances.push(statement.instance());
    }
    let items: Vec<_> = proofs.iter().zip(&instances).collect();
    assert!(verify_batch(vk, &items).iter().all(|r| r.is_ok()));

    // Swap two proofs' public inputs (each a consistent forgery) and corrupt a third.
    let mut forged = proofs.clone();
    forged[1].instance = instances[2];
    forged[2].instance = instances[1];
    forged[4].proof[100] ^= 0x40;
    let expected = [
        instances[0],
        instances[2],
        instances[1],
        instances[3],
        instances[4],
        instances[5],
    ];
    let items: Vec<_> = forged.iter().zip(expected.iter()).collect();
    let results = verify_batch(vk, &items);
    assert!(results[0].is_ok() && results[3].is_ok() && results[5].is_ok());
    assert_eq!(results[1], Err(VerifyError::Invalid));
    assert_eq!(results[2], Err(VerifyError::Invalid));
    assert!(results[4].is_err());
}

#[test]
fn timeout_is_reported() {
    let pk =
        Arc::new(fabstir_zk::ProvingKey::build(Arc::new(fabstir_zk::Srs::insecure_dev())).unwrap());
    let h = Arc::new(host(1));
    let statement = sample_result().statement(h.host_id());
    let err = ProofEnvelope::create_with_timeout(pk.clone(), statement, h.clone(), Duration::ZERO)
        .unwrap_err();
    assert_eq!(err, ProveError::Timeout(Duration::ZERO));
    let proof =
        ProofEnvelope::create_with_timeout(pk.clone(), statement, h, Duration::from_secs(30))
            .unwrap();
    proof
        .verify(pk.verifying_key(), &statement.instance())
        .unwrap();
}
