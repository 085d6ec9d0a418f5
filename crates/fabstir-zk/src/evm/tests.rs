//! The reference algorithm against halo2: same verdict on valid proofs and
//! on every kind of mutation, singly and in batches.

use std::sync::{Arc, OnceLock};

use halo2_axiom::halo2curves::bn256::Fr;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::native::{self, Item};
use super::plan::Plan;
use crate::{HostKey, InferenceResult, ProofEnvelope, ProvingKey, Srs};

fn pk() -> &'static ProvingKey {
    static PK: OnceLock<ProvingKey> = OnceLock::new();
    PK.get_or_init(|| ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen"))
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| Plan::new(pk().verifying_key()).expect("plan"))
}

/// A proof for job `job` by host `host`, with its instance words.
pub(crate) fn proof(job: u64, host: u64) -> (Vec<Fr>, Vec<u8>) {
    // Tokens large enough that the packed first input spans both halves.
    let tokens = (1u64 << 40) + job;
    let result = InferenceResult::from_json(
        format!(
            r#"{{"job_id": "{job}", "chain_id": 84532,
            "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "model": "llama-3", "prompt": "p{job}", "response": "r{job}", "tokens_used": {tokens}}}"#
        )
        .as_bytes(),
    )
    .expect("result");
    let host = HostKey::from_secret(Fr::from(0x5eed_0000 + host));
    let statement = result.statement(host.host_id());
    let envelope =
        ProofEnvelope::create(pk(), &statement, &host, rand::rngs::OsRng).expect("prove");
    (
        envelope.instance.to_field_elements().to_vec(),
        envelope.proof,
    )
}

fn words(instances: &[Fr]) -> Vec<[u8; 32]> {
    super::calldata::instance_words(instances)
}

fn reference(words: &[[u8; 32]], proof: &[u8]) -> bool {
    super::halo2_verdict(pk().verifying_key(), plan(), words, proof)
}

#[test]
fn plan_describes_the_proof_layout() {
    let plan = plan();
    assert_eq!(plan.layout().len, crate::ProofLayout::get().proof_len());
    // Version 2: seven public inputs; tokens (row 6) is read from the
    // round-0 anchor (row 2) at rotation +4.
    assert_eq!(plan.num_instances(), 7);
    assert_eq!(plan.circuit_version, 2);
    let mut rotations = plan.instance_rotations.clone();
    rotations.sort();
    assert_eq!(rotations, vec![-2, -1, 0, 1, 2, 4]);
    // Every commitment is in exactly one set.
    let count: usize = plan.sets.iter().map(|s| s.commitments.len()).sum();
    assert_eq!(count, plan.num_advice + plan.fixed_commitments.len() + 2);
}

#[test]
fn reference_accepts_valid_proofs_and_agrees_with_halo2_on_mutations() {
    let plan = plan();
    let (instances, proof) = proof(7, 1);
    let w = words(&instances);
    assert!(native::verify(plan, &w, &proof));
    assert!(reference(&w, &proof));

    let mut rng = StdRng::seed_from_u64(9);
    let mut checked = 0;
    // Each public input changed.
    for i in 0..w.len() {
        let mut m = w.clone();
        m[i][31] ^= 1;
        assert_eq!(
            native::verify(plan, &m, &proof),
            reference(&m, &proof),
            "instance {i}"
        );
        assert!(!native::verify(plan, &m, &proof));
        checked += 1;
    }
    // Random single bytes of the proof, every 32-byte word once.
    for word in 0..proof.len() / 32 {
        let mut p = proof.clone();
        let at = word * 32 + rng.gen_range(0..32);
        p[at] ^= 1 << rng.gen_range(0..8);
        let expect = reference(&w, &p);
        assert_eq!(native::verify(plan, &w, &p), expect, "byte {at}");
        checked += 1;
    }
    // Truncated and extended.
    for len in [0, 32, proof.len() - 1] {
        assert!(!native::verify(plan, &w, &proof[..len]));
    }
    let mut long = proof.clone();
    long.push(0);
    assert!(!native::verify(plan, &w, &long));
    assert!(checked > 70);
}

#[test]
fn batches_accept_valid_proofs_and_refuse_one_bad_one() {
    let plan = plan();
    let proofs: Vec<(Vec<[u8; 32]>, Vec<u8>)> = (0..3)
        .map(|j| {
            let (i, p) = proof(100 + j, j);
            (words(&i), p)
        })
        .collect();
    let items: Vec<Item<'_>> = proofs
        .iter()
        .map(|(i, p)| Item {
            instances: i,
            proof: p,
        })
        .collect();
    assert!(native::verify_batch(plan, &items));
    assert!(!native::verify_batch(plan, &[]));
    // Swap two proofs' public inputs: both invalid, the batch too.
    let mut swapped = items.clone();
    swapped[0].instances = &proofs[1].0;
    swapped[1].instances = &proofs[0].0;
    assert!(!native::verify_batch(plan, &swapped));
    // One proof altered.
    let mut bad = proofs[2].1.clone();
    let at = 3000 % bad.len();
    bad[at] ^= 4;
    let mut one_bad = items.clone();
    one_bad[2].proof = &bad;
    assert!(!native::verify_batch(plan, &one_bad));
}

#[test]
fn write_generated_verifier_for_inspection() {
    if let Ok(path) = std::env::var("FABSTIR_WRITE_VERIFIER") {
        let v = super::solidity::generate(plan());
        std::fs::write(&path, v.source).expect("write");
        let (instances, one) = proof(7, 1);
        let data = super::calldata::verify(&words(&instances), &one);
        std::fs::write(format!("{path}.calldata"), hex::encode(data)).expect("write");
        for n in [2usize, 10] {
            let proofs: Vec<(Vec<[u8; 32]>, Vec<u8>)> = (0..n as u64)
                .map(|j| {
                    let (i, p) = proof(200 + j, j);
                    (words(&i), p)
                })
                .collect();
            let items: Vec<(&[[u8; 32]], &[u8])> = proofs
                .iter()
                .map(|(i, p)| (i.as_slice(), p.as_slice()))
                .collect();
            let data = super::calldata::verify_batch(plan().num_instances(), &items);
            std::fs::write(format!("{path}.batch{n}"), hex::encode(data)).expect("write");
        }
    }
}
