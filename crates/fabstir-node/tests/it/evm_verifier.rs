//! The generated Solidity verifier (contracts/src/FabstirVerifier.sol) against
//! the Rust prover and verifiers:
//! - drift: the checked-in verifier and forge test are what the generator
//!   writes for the development keys;
//! - end to end on anvil: proofs made by this node verify, alone and in
//!   batches; bad batches give false; running out of gas reverts;
//! - differential: on valid proofs and hundreds of mutations, the contract,
//!   `fabstir_zk::evm::native` and halo2's own verifier give the same verdict.
//!
//! Everything is derived from the verifying key's plan (number of public
//! inputs and their bounds, proof layout), never hard-coded.
//!
//! Needs Node.js and `npm ci --prefix contracts` (the README's test command).

use crate::common;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use common::evm::{compile, Address, Anvil, CallError, Compiled};
use common::{cli, read_repo_file, repo_root, DataDir, Node};
use fabstir_zk::evm::native::{self, Item};
use fabstir_zk::evm::{calldata, forge, halo2_verdict, Plan};
use fabstir_zk::{Fr, HostKey, InferenceResult, ProofEnvelope, ProvingKey, Srs};
use halo2_axiom::halo2curves::bn256::{Fq, G1Affine};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::halo2curves::CurveAffine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::U256;

/// EIP-170's limit on runtime code, anvil's default.
const CODE_SIZE_LIMIT: usize = 24_576;

const REGENERATE: &str =
    "cargo run -p fabstir-node -- evm verifier --out contracts/src --test-out contracts/test --force";

type Word = [u8; 32];

fn pk() -> &'static ProvingKey {
    static PK: OnceLock<ProvingKey> = OnceLock::new();
    PK.get_or_init(|| ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen"))
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| Plan::new(pk().verifying_key()).expect("plan of the development key"))
}

/// The checked-in verifier, compiled once per test binary.
fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        compile(
            &repo_root().join("contracts/src/FabstirVerifier.sol"),
            "FabstirVerifier",
        )
    })
}

/// A proof by development host `host` for job `job`: its public inputs as
/// contract words, and the proof bytes. Job ids are above 2^128, so that
/// both of their limbs are non-zero.
fn prove(job: u64, host: u64) -> (Vec<Word>, Vec<u8>) {
    // Tokens large enough that the packed first input spans both halves.
    let tokens = (1u64 << 40) + job;
    let result = InferenceResult::from_json(
        format!(
            r#"{{"job_id": "98765432109876543210987654321098765432{job:04}", "chain_id": 84532,
            "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "model": "llama-3", "prompt": "prompt {job}", "response": "response {job}", "tokens_used": {tokens}}}"#
        )
        .as_bytes(),
    )
    .expect("result");
    let host = HostKey::from_secret(Fr::from(0x5eed_0000 + host));
    let statement = result.statement(host.host_id());
    let envelope =
        ProofEnvelope::create(pk(), &statement, &host, rand::rngs::OsRng).expect("prove");
    (
        calldata::instance_words(&envelope.instance.to_field_elements()),
        envelope.proof,
    )
}

/// The checked-in verifier on a fresh anvil (default code-size limit).
struct Deployed {
    anvil: Anvil,
    address: Address,
}

fn deploy() -> Deployed {
    let anvil = Anvil::start();
    let receipt = anvil.deploy_receipt(&compiled().bytecode);
    let address = receipt.contract_address.expect("contract address");
    let size = anvil.code_size(&address);
    assert!(
        size > 0 && size <= CODE_SIZE_LIMIT,
        "runtime code is {size} bytes; the limit is {CODE_SIZE_LIMIT}"
    );
    Deployed { anvil, address }
}

impl Deployed {
    /// A `view` function's 32-byte answer; panics on a revert.
    fn word(&self, data: &[u8], what: &str) -> Vec<u8> {
        let out = self
            .anvil
            .call(&self.address, data)
            .unwrap_or_else(|e| panic!("{what} reverted or failed: {e:?}"));
        assert_eq!(out.len(), 32, "{what}: expected one word, got {out:?}");
        out
    }

    fn bool_call(&self, data: &[u8], what: &str) -> bool {
        let out = self.word(data, what);
        assert!(
            out[..31].iter().all(|b| *b == 0) && out[31] <= 1,
            "{what}: not an ABI bool: {}",
            hex::encode(&out)
        );
        out[31] == 1
    }

    /// `verify(instances, proof)` by eth_call.
    fn verify(&self, words: &[Word], proof: &[u8]) -> bool {
        self.bool_call(&calldata::verify(words, proof), "verify")
    }

    fn uint(&self, signature: &str) -> u64 {
        let out = self.word(&calldata::selector(signature), signature);
        assert!(out[..24].iter().all(|b| *b == 0), "{signature}: too large");
        u64::from_be_bytes(out[24..].try_into().expect("8 bytes"))
    }

    /// A call with a gas limit: the answer, or why there is none.
    fn call_with_gas(&self, data: &[u8], gas: u64) -> Result<Vec<u8>, CallError> {
        self.anvil
            .call_with(self.anvil.sender, self.address, data, Some(gas))
    }
}

/// `verifyBatch(instances, proofs)` calldata with independent lengths (the
/// ABI allows them to differ; the contract must answer false), by alloy's
/// dynamic ABI encoder.
fn batch_calldata(n: usize, instances: &[Vec<Word>], proofs: &[Vec<u8>]) -> Vec<u8> {
    let words = |words: &Vec<Word>| {
        assert_eq!(words.len(), n);
        DynSolValue::FixedArray(
            words
                .iter()
                .map(|w| DynSolValue::Uint(U256::from_be_bytes(*w), 256))
                .collect(),
        )
    };
    let args = DynSolValue::Tuple(vec![
        DynSolValue::Array(instances.iter().map(words).collect()),
        DynSolValue::Array(
            proofs
                .iter()
                .map(|p| DynSolValue::Bytes(p.clone()))
                .collect(),
        ),
    ]);
    let mut out = calldata::selector(&calldata::verify_batch_signature(n)).to_vec();
    out.extend(args.abi_encode_params());
    out
}

// ---------------------------------------------------------------- drift

#[test]
fn checked_in_verifier_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8 path");
    let output = cli(&["evm", "verifier", "--out", out]);
    assert!(
        output.status.success(),
        "`fabstir-node evm verifier --out {out}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = std::fs::read(dir.path().join("FabstirVerifier.sol")).expect("generated");
    let checked_in =
        std::fs::read(repo_root().join("contracts/src/FabstirVerifier.sol")).expect("checked in");
    if generated != checked_in {
        let line = generated
            .split(|b| *b == b'\n')
            .zip(checked_in.split(|b| *b == b'\n'))
            .position(|(a, b)| a != b)
            .map_or("the end".to_string(), |l| format!("line {}", l + 1));
        panic!(
            "contracts/src/FabstirVerifier.sol is not what the generator writes for the \
             development keys (first difference at {line}; {} vs {} bytes checked in). \
             Regenerate it (and its forge test) with:\n    {REGENERATE}",
            generated.len(),
            checked_in.len()
        );
    }
}

/// The first line at which `a` and `b` differ, for messages.
fn first_difference(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .position(|(a, b)| a != b)
        .map_or("the end".to_string(), |l| format!("line {}", l + 1))
}

#[test]
fn checked_in_forge_test_and_vectors_are_what_the_generator_writes_and_the_proofs_verify() {
    let plan = plan();
    let path = "contracts/test/FabstirVerifier.t.sol";
    let checked_in = read_repo_file(path);
    let generated = forge::test_source(plan);
    if generated != checked_in {
        panic!(
            "{path} is not what the generator writes (first difference at {}). Regenerate it \
             with:\n    {REGENERATE}",
            first_difference(&generated, &checked_in)
        );
    }
    let path = format!("contracts/test/{}", forge::VECTORS_FILE);
    let checked_in = read_repo_file(&path);
    let vectors = forge::read_vectors(&checked_in)
        .unwrap_or_else(|e| panic!("{path}: {e}. Regenerate it with:\n    {REGENERATE}"));
    assert!(
        vectors.len() >= 2,
        "{path}: the forge test needs two vectors"
    );
    for (i, v) in vectors.iter().enumerate() {
        assert!(
            halo2_verdict(pk().verifying_key(), plan, &v.instances, &v.proof),
            "{path}: test vector {i} does not verify under the current development key \
             {} (the key or the statement changed). Regenerate it with:\n    {REGENERATE}",
            plan.vk_id
        );
    }
    let generated = forge::vectors_json(plan, &vectors);
    if generated != checked_in {
        panic!(
            "{path} is not what the generator writes for its own vectors (first difference \
             at {}). Regenerate it with:\n    {REGENERATE}",
            first_difference(&generated, &checked_in)
        );
    }
}

// ---------------------------------------------------------------- end to end

/// A proof made by a running node (HTTP API, its own host key).
fn proof_from_node() -> (Vec<Word>, Vec<u8>) {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let job = node.submit_and_prove(&common::result(77));
    let (status, proved) = node.get(&format!("/v1/proofs/{job}"));
    assert_eq!(status, 200, "{proved}");
    let envelope = ProofEnvelope::from_json(proved["proof"].to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the node's proof does not parse: {e}: {proved}"));
    assert_eq!(
        envelope.vk_id,
        plan().vk_id,
        "the node proves under another key than the development key"
    );
    (
        calldata::instance_words(&envelope.instance.to_field_elements()),
        envelope.proof,
    )
}

#[test]
fn end_to_end_on_anvil() {
    let plan = plan();
    let n = plan.num_instances();
    let d = deploy();
    println!(
        "runtime code {} bytes (limit {CODE_SIZE_LIMIT})",
        d.anvil.code_size(&d.address)
    );

    let vk_id = d.word(&calldata::selector("VK_ID()"), "VK_ID()");
    assert_eq!(
        vk_id,
        plan.vk_id.0.to_vec(),
        "VK_ID() is not the development key's id"
    );
    assert_eq!(d.uint("NUM_INSTANCES()"), n as u64, "NUM_INSTANCES()");
    assert_eq!(
        d.uint("PROOF_LENGTH()"),
        plan.layout().len as u64,
        "PROOF_LENGTH()"
    );
    let constants = d.word(&calldata::selector("CONSTANTS()"), "CONSTANTS()");
    let constants = Address::from_slice(&constants[12..]);
    assert!(d.anvil.code_size(&constants) > 0, "CONSTANTS() has no code");

    // Five proofs: four by the prover library, one by a running node.
    let mut proofs: Vec<(Vec<Word>, Vec<u8>)> = (0..4).map(|j| prove(500 + j, j % 2)).collect();
    proofs.push(proof_from_node());
    for (k, (words, proof)) in proofs.iter().enumerate() {
        assert_eq!(words.len(), n);
        assert!(d.verify(words, proof), "proof {k} does not verify on chain");
        assert!(native::verify(plan, words, proof), "proof {k}: native");
    }
    // A transaction with anvil's estimate succeeds.
    let (words, proof) = &proofs[4];
    let data = calldata::verify(words, proof);
    let estimate = d
        .anvil
        .estimate_gas(&d.address, &data)
        .expect("estimate verify");
    let receipt = d.anvil.send(&d.address, &data, Some(estimate));
    assert!(receipt.status(), "verify with the estimated gas reverted");
    println!(
        "verify: estimate {estimate}, transaction {} gas",
        receipt.gas_used
    );

    let all_words: Vec<Vec<Word>> = proofs.iter().map(|(w, _)| w.clone()).collect();
    let all_proofs: Vec<Vec<u8>> = proofs.iter().map(|(_, p)| p.clone()).collect();
    let items: Vec<(&[Word], &[u8])> = proofs
        .iter()
        .map(|(w, p)| (w.as_slice(), p.as_slice()))
        .collect();
    let batch = calldata::verify_batch(n, &items);
    assert_eq!(
        batch,
        batch_calldata(n, &all_words, &all_proofs),
        "the test's batch encoder differs from calldata::verify_batch"
    );
    assert!(
        d.bool_call(&batch, "verifyBatch(5)"),
        "a batch of 5 valid proofs is refused"
    );
    let native_items: Vec<Item<'_>> = proofs
        .iter()
        .map(|(w, p)| Item {
            instances: w,
            proof: p,
        })
        .collect();
    assert!(native::verify_batch(plan, &native_items));
    let receipt = d.anvil.send(&d.address, &batch, Some(10_000_000));
    assert!(receipt.status(), "verifyBatch(5) transaction reverted");
    println!("verifyBatch(5): transaction {} gas", receipt.gas_used);

    // One bad proof (one bit of an evaluation), in every position.
    let eval = plan.layout().advice_evals + 31;
    for bad in 0..proofs.len() {
        let mut tampered = all_proofs.clone();
        tampered[bad][eval] ^= 1;
        let data = batch_calldata(n, &all_words, &tampered);
        assert!(
            !d.bool_call(&data, "verifyBatch(one bad)"),
            "a batch with bad proof {bad} verifies"
        );
    }
    // Two proofs' public inputs swapped.
    let mut swapped = all_words.clone();
    swapped.swap(0, 1);
    assert!(!d.bool_call(
        &batch_calldata(n, &swapped, &all_proofs),
        "verifyBatch(swapped)"
    ));
    assert!(
        !d.bool_call(&batch_calldata(n, &[], &[]), "verifyBatch(empty)"),
        "an empty batch verifies"
    );
    assert!(
        !d.bool_call(
            &batch_calldata(n, &all_words, &all_proofs[..4]),
            "verifyBatch(5 instances, 4 proofs)"
        ),
        "5 public-input arrays with 4 proofs verify"
    );
    assert!(
        !d.bool_call(
            &batch_calldata(n, &all_words[..4], &all_proofs),
            "verifyBatch(4 instances, 5 proofs)"
        ),
        "4 public-input arrays with 5 proofs verify"
    );

    out_of_gas_reverts(&d, &calldata::verify(&proofs[0].0, &proofs[0].1));
}

/// Below the gas a valid proof needs, the contract runs a precompile out of
/// gas: it must revert with PrecompileFailed(), never return false.
fn out_of_gas_reverts(d: &Deployed, data: &[u8]) {
    let precompile_failed = calldata::selector("PrecompileFailed()").to_vec();
    let needed = d.anvil.estimate_gas(&d.address, data).expect("estimate");
    let mut reverted_at = None;
    let mut out_of_gas = 0;
    let mut gas = needed;
    while gas > needed.saturating_sub(200_000) && gas > 22_000 {
        gas -= 1_000;
        match d.call_with_gas(data, gas) {
            Ok(out) => {
                assert_ne!(
                    out,
                    [0u8; 32].to_vec(),
                    "with {gas} gas (valid proof, {needed} estimated) verify returned false \
                     instead of reverting"
                );
            }
            Err(e) => {
                let revert = match e {
                    CallError::Reverted(bytes) => Some(bytes),
                    CallError::Rpc(_) => None,
                };
                match revert {
                    Some(bytes) if bytes == precompile_failed => {
                        reverted_at.get_or_insert(gas);
                    }
                    _ => out_of_gas += 1,
                }
            }
        }
    }
    let gas = reverted_at.unwrap_or_else(|| {
        panic!(
            "no gas limit below {needed} made verify revert with PrecompileFailed() \
             ({out_of_gas} plain out-of-gas errors)"
        )
    });
    let receipt = d.anvil.send(&d.address, data, Some(gas));
    assert!(
        !receipt.status(),
        "a verify transaction with {gas} gas (PrecompileFailed by eth_call) did not revert"
    );
    println!(
        "out of gas: PrecompileFailed() first at {gas} gas (needed {needed}); \
         transaction reverted after {} gas",
        receipt.gas_used
    );
}

// ---------------------------------------------------------------- differential

/// 256-bit big-endian addition, wrapping.
fn add(a: &Word, b: &Word) -> Word {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = a[i] as u16 + b[i] as u16 + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

fn small(v: u64) -> Word {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&v.to_be_bytes());
    out
}

fn pow2(bits: u32) -> Word {
    let mut out = [0u8; 32];
    out[31 - bits as usize / 8] = 1 << (bits % 8);
    out
}

/// The scalar field's modulus r.
fn r_modulus() -> Word {
    let mut minus_one = (-Fr::ONE).to_repr();
    minus_one.reverse();
    add(&minus_one, &small(1))
}

/// The base field's modulus p.
fn p_modulus() -> Word {
    let mut minus_one = (-Fq::ONE).to_repr();
    minus_one.as_mut().reverse();
    add(minus_one.as_ref().try_into().expect("32 bytes"), &small(1))
}

fn fq(w: &[u8]) -> Option<Fq> {
    let mut repr = [0u8; 32];
    repr.copy_from_slice(w);
    repr.reverse();
    Option::from(Fq::from_repr(repr))
}

fn fq_be(f: Fq) -> Word {
    let mut out = [0u8; 32];
    out.copy_from_slice(f.to_repr().as_ref());
    out.reverse();
    out
}

/// One input to the three verifiers.
struct Case {
    name: String,
    words: Vec<Word>,
    proof: Vec<u8>,
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    batches_valid: usize,
    batches_invalid: usize,
    disagreements: Vec<String>,
    words_flipped: std::collections::BTreeSet<usize>,
}

/// Keeps a disagreeing input (proofs are randomized, so the seed alone does
/// not reproduce it) and describes it.
fn disagreement(tally: &mut Tally, what: String, data: &[u8]) {
    let file = std::env::temp_dir().join(format!(
        "fabstir-differential-{}-{}.calldata",
        std::process::id(),
        tally.disagreements.len()
    ));
    let _ = std::fs::write(&file, hex::encode(data));
    tally
        .disagreements
        .push(format!("{what} (calldata in {})", file.display()));
}

/// An ABI bool answer, or `None` for a revert or anything else.
fn as_bool(answer: Result<Vec<u8>, CallError>) -> Option<bool> {
    match answer {
        Ok(out) if out.len() == 32 && out[..31].iter().all(|b| *b == 0) && out[31] <= 1 => {
            Some(out[31] == 1)
        }
        _ => None,
    }
}

/// The case in the middle of a batch of valid proofs: the batch is valid
/// exactly when halo2 accepts the case.
fn check_batch(
    d: &Deployed,
    case: &Case,
    halo2: bool,
    others: [&(Vec<Word>, Vec<u8>); 2],
    tally: &mut Tally,
) {
    let items = [
        (others[0].0.as_slice(), others[0].1.as_slice()),
        (case.words.as_slice(), case.proof.as_slice()),
        (others[1].0.as_slice(), others[1].1.as_slice()),
    ];
    let native_items: Vec<Item<'_>> = items
        .iter()
        .map(|(instances, proof)| Item { instances, proof })
        .collect();
    let reference = native::verify_batch(plan(), &native_items);
    let data = calldata::verify_batch(plan().num_instances(), &items);
    let contract = as_bool(d.anvil.call(&d.address, &data));
    if contract == Some(halo2) && reference == halo2 {
        if halo2 {
            tally.batches_valid += 1;
        } else {
            tally.batches_invalid += 1;
        }
        return;
    }
    disagreement(
        tally,
        format!(
            "batch [valid, {}, valid]: halo2 {halo2}, native {reference}, contract {contract:?}",
            case.name
        ),
        &data,
    );
}

/// Runs one case through halo2, the native reference and the contract;
/// halo2's verdict.
fn check(d: &Deployed, case: &Case, tally: &mut Tally) -> bool {
    let plan = plan();
    let halo2 = halo2_verdict(pk().verifying_key(), plan, &case.words, &case.proof);
    let reference = native::verify(plan, &case.words, &case.proof);
    let data = calldata::verify(&case.words, &case.proof);
    let contract = as_bool(d.anvil.call(&d.address, &data));
    if contract == Some(halo2) && reference == halo2 {
        if halo2 {
            tally.valid += 1;
        } else {
            tally.invalid += 1;
        }
    } else {
        disagreement(
            tally,
            format!(
                "{}: halo2 {halo2}, native {reference}, contract {contract:?}",
                case.name
            ),
            &data,
        );
    }
    halo2
}

/// Every mutation of one valid proof (`other`: another proof's public
/// inputs; `other_host`: the same job proved by another host).
fn mutations(
    rng: &mut ChaCha8Rng,
    label: &str,
    words: &[Word],
    proof: &[u8],
    other: &[Word],
    other_host: &(Vec<Word>, Vec<u8>),
    tally: &mut Tally,
) -> Vec<Case> {
    let plan = plan();
    let layout = plan.layout();
    let r = r_modulus();
    let p = p_modulus();
    let mut cases = Vec::new();
    let mut push = |name: String, words: Vec<Word>, proof: Vec<u8>| {
        cases.push(Case {
            name: format!("{label}: {name}"),
            words,
            proof,
        })
    };
    push("valid".into(), words.to_vec(), proof.to_vec());

    // Public inputs.
    for (i, bits) in plan.instance_bits.iter().enumerate() {
        let mut values: Vec<(String, Word)> = vec![
            ("+1".into(), add(&words[i], &small(1))),
            ("0".into(), [0; 32]),
            ("2^64".into(), pow2(64)),
            ("2^255".into(), pow2(255)),
            ("2^256 - 1".into(), [0xff; 32]),
            ("r".into(), r),
            ("r - 1".into(), add(&r, &[0xff; 32])),
            ("+ r (same value mod r)".into(), add(&words[i], &r)),
        ];
        if *bits < 254 {
            values.push(("2^bits".into(), pow2(*bits)));
            values.push(("2^bits - 1".into(), add(&pow2(*bits), &[0xff; 32])));
            values.push(("+ 2^bits".into(), add(&words[i], &pow2(*bits))));
        }
        for (what, value) in values {
            if value == words[i] {
                continue;
            }
            let mut m = words.to_vec();
            m[i] = value;
            push(
                format!("public input {i} ({bits} bits) set to {what}"),
                m,
                proof.to_vec(),
            );
        }
    }

    // A random bit in every 32-byte word.
    for word in 0..proof.len().div_ceil(32) {
        let bit = rng.gen_range(0..256usize);
        let at = word * 32 + bit / 8;
        if at >= proof.len() {
            continue;
        }
        let mut m = proof.to_vec();
        m[at] ^= 1 << (bit % 8);
        tally.words_flipped.insert(word);
        push(
            format!("bit {} of byte {at} flipped", bit % 8),
            words.to_vec(),
            m,
        );
    }

    // Points: non-canonical coordinates, off the curve, (0, 0), negated.
    let mut points: Vec<(String, usize)> = (0..plan.num_advice)
        .map(|c| (format!("advice commitment {c}"), layout.advice + 64 * c))
        .collect();
    points.push(("random commitment".into(), layout.random));
    for q in 0..plan.quotient_pieces {
        points.push((format!("quotient piece {q}"), layout.quotient + 64 * q));
    }
    points.push(("W".into(), layout.w));
    points.push(("W'".into(), layout.w_prime));
    for (name, at) in &points {
        let at = *at;
        let x: Word = proof[at..at + 32].try_into().expect("32");
        let y: Word = proof[at + 32..at + 64].try_into().expect("32");
        let with = |nx: Word, ny: Word| {
            let mut m = proof.to_vec();
            m[at..at + 32].copy_from_slice(&nx);
            m[at + 32..at + 64].copy_from_slice(&ny);
            m
        };
        push(
            format!("{name}: x + p"),
            words.to_vec(),
            with(add(&x, &p), y),
        );
        push(
            format!("{name}: y + p"),
            words.to_vec(),
            with(x, add(&y, &p)),
        );
        let (fx, fy) = (fq(&x).expect("canonical x"), fq(&y).expect("canonical y"));
        let off = fy + Fq::ONE;
        assert!(
            bool::from(G1Affine::from_xy(fx, off).is_none()),
            "(x, y + 1) is on the curve"
        );
        push(
            format!("{name}: (x, y + 1), off the curve"),
            words.to_vec(),
            with(x, fq_be(off)),
        );
        push(
            format!("{name}: (1, 3), off the curve"),
            words.to_vec(),
            with(small(1), small(3)),
        );
        push(
            format!("{name}: (0, 0)"),
            words.to_vec(),
            with([0; 32], [0; 32]),
        );
        push(
            format!("{name}: negated"),
            words.to_vec(),
            with(x, fq_be(-fy)),
        );
    }

    // Scalars: non-canonical (+ r), r, 0.
    let scalars = (layout.w - layout.advice_evals) / 32;
    for s in 0..scalars {
        let at = layout.advice_evals + 32 * s;
        let v: Word = proof[at..at + 32].try_into().expect("32");
        for (what, nv) in [("+ r", add(&v, &r)), ("r", r), ("0", [0; 32])] {
            let mut m = proof.to_vec();
            m[at..at + 32].copy_from_slice(&nv);
            push(format!("evaluation {s} set to {what}"), words.to_vec(), m);
        }
    }

    // Swaps.
    let swap = |a: usize, b: usize, len: usize| {
        let mut m = proof.to_vec();
        for i in 0..len {
            m.swap(a + i, b + i);
        }
        m
    };
    let mut commitment_swaps = vec![
        (
            "random commitment <-> quotient piece 0",
            layout.random,
            layout.quotient,
        ),
        ("W <-> W'", layout.w, layout.w_prime),
        ("advice commitment 0 <-> W", layout.advice, layout.w),
    ];
    if plan.num_advice >= 2 {
        commitment_swaps.push((
            "advice commitments 0 <-> 1",
            layout.advice,
            layout.advice + 64,
        ));
    }
    for (name, a, b) in commitment_swaps {
        push(name.into(), words.to_vec(), swap(a, b, 64));
    }
    let last_eval = layout.advice_evals + 32 * (scalars - 1);
    for (name, a, b) in [
        (
            "evaluations 0 <-> 1",
            layout.advice_evals,
            layout.advice_evals + 32,
        ),
        (
            "first advice <-> first fixed evaluation",
            layout.advice_evals,
            layout.fixed_evals,
        ),
        ("first <-> last evaluation", layout.advice_evals, last_eval),
    ] {
        push(name.into(), words.to_vec(), swap(a, b, 32));
    }

    // Lengths.
    let len = proof.len();
    for cut in [0, 1, 31, 32, 64, len / 2, len - 64, len - 32, len - 1] {
        push(
            format!("truncated to {cut} bytes"),
            words.to_vec(),
            proof[..cut].to_vec(),
        );
    }
    for (what, extra) in [
        ("a zero byte", vec![0u8]),
        ("a 0xff byte", vec![0xff]),
        ("a zero word", vec![0; 32]),
        ("a copy of its last word", proof[len - 32..].to_vec()),
    ] {
        let mut m = proof.to_vec();
        m.extend_from_slice(&extra);
        push(format!("extended by {what}"), words.to_vec(), m);
    }

    // Another proof's public inputs; another host's proof of the same job.
    push(
        "another proof's public inputs".into(),
        other.to_vec(),
        proof.to_vec(),
    );
    push(
        "the same job's proof by another host".into(),
        words.to_vec(),
        other_host.1.clone(),
    );
    push(
        "another host's public inputs for the same job".into(),
        other_host.0.clone(),
        proof.to_vec(),
    );
    push(
        "another host's proof with its own public inputs".into(),
        other_host.0.clone(),
        other_host.1.clone(),
    );
    cases
}

#[test]
fn differential_contract_native_and_halo2_agree_on_valid_and_mutated_proofs() {
    let seed: u64 = std::env::var("FABSTIR_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xd1ff);
    println!("differential: seed {seed} (FABSTIR_DIFFERENTIAL_SEED to change it)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = plan();
    let d = deploy();
    let started = Instant::now();

    const BASES: u64 = 3;
    let bases: Vec<(Vec<Word>, Vec<u8>)> = (0..BASES).map(|j| prove(900 + j, j)).collect();
    let other_hosts: Vec<(Vec<Word>, Vec<u8>)> =
        (0..BASES).map(|j| prove(900 + j, j + 10)).collect();
    let proving = started.elapsed();

    let mut tally = Tally::default();
    for (k, (words, proof)) in bases.iter().enumerate() {
        let other = &bases[(k + 1) % bases.len()].0;
        let cases = mutations(
            &mut rng,
            &format!("proof {k}"),
            words,
            proof,
            other,
            &other_hosts[k],
            &mut tally,
        );
        let others = [&bases[(k + 1) % bases.len()], &bases[(k + 2) % bases.len()]];
        for case in cases {
            let halo2 = check(&d, &case, &mut tally);
            // Valid cases and one in 8 of the others again, inside a batch of
            // valid proofs.
            if halo2 || rng.gen_ratio(1, 8) {
                check_batch(&d, &case, halo2, others, &mut tally);
            }
        }
    }
    for (k, (words, proof)) in other_hosts.iter().enumerate() {
        let case = Case {
            name: format!("other-host proof {k}"),
            words: words.clone(),
            proof: proof.clone(),
        };
        check(&d, &case, &mut tally);
    }
    let elapsed = started.elapsed();
    let words = plan.layout().len.div_ceil(32);
    println!(
        "differential: {} cases ({} valid, {} invalid), {} in batches of 3 ({} valid, {} \
         invalid), {} disagreements; {}/{words} proof words bit-flipped; proving \
         {proving:.1?}, total {elapsed:.1?}",
        tally.valid + tally.invalid,
        tally.valid,
        tally.invalid,
        tally.batches_valid + tally.batches_invalid,
        tally.batches_valid,
        tally.batches_invalid,
        tally.disagreements.len(),
        tally.words_flipped.len(),
    );
    assert!(
        tally.disagreements.is_empty(),
        "the contract, native::verify and halo2 disagree (seed {seed}):\n{}",
        tally.disagreements.join("\n")
    );
    assert!(
        tally.valid + tally.invalid >= 200,
        "only {} cases",
        tally.valid + tally.invalid
    );
    assert_eq!(
        tally.words_flipped.len(),
        words,
        "not every proof word had a bit flipped"
    );
    assert!(
        tally.valid >= 2 * BASES as usize,
        "{} valid cases",
        tally.valid
    );

    // Rejected malformed proofs cost bounded gas in a real transaction.
    let (words, proof) = &bases[0];
    let layout = plan.layout();
    let mut off_curve = proof.clone();
    off_curve[layout.w + 32..layout.w + 64].copy_from_slice(&small(3));
    off_curve[layout.w..layout.w + 32].copy_from_slice(&small(1));
    let mut off_curve_first = proof.clone();
    off_curve_first[32..64].copy_from_slice(&small(3));
    off_curve_first[..32].copy_from_slice(&small(1));
    for (what, bad) in [
        ("W off the curve", off_curve),
        ("first commitment off the curve", off_curve_first),
        ("one byte short", proof[..proof.len() - 1].to_vec()),
        ("one word long", [proof.as_slice(), &[0u8; 32]].concat()),
    ] {
        assert!(!d.verify(words, &bad), "{what}: verified");
        let receipt = d
            .anvil
            .send(&d.address, &calldata::verify(words, &bad), Some(10_000_000));
        assert!(receipt.status(), "{what}: the transaction reverted");
        assert!(
            receipt.gas_used < 200_000,
            "{what}: the rejection used {} gas of 10,000,000",
            receipt.gas_used
        );
        println!("{what}: rejected for {} gas", receipt.gas_used);
    }
}

// ---------------------------------------------------------------- other statements

/// The generators follow the number of public inputs (the statement grows
/// with new fields): for the development plan with one more public input,
/// the verifier and its forge test compile with forge, and the verifier,
/// deployed, answers false (never reverts) to well-formed calls, as the
/// reference does.
#[test]
fn generators_follow_the_number_of_public_inputs() {
    let mut wider = plan().clone();
    wider.instance_bits.push(64);
    let n = wider.num_instances();
    let verifier = fabstir_zk::evm::solidity::generate(&wider).source;
    assert!(
        verifier.contains(&format!("uint256 public constant NUM_INSTANCES = {n};")),
        "the verifier does not declare {n} public inputs"
    );
    let path = format!("contracts/test/{}", forge::VECTORS_FILE);
    let checked_in = forge::read_vectors(&read_repo_file(&path)).expect("checked-in test vectors");
    let vectors: Vec<forge::Vector> = checked_in
        .into_iter()
        .map(|mut v| {
            v.instances.push(small(5));
            v
        })
        .collect();
    let test = forge::test_source(&wider);
    let vectors_json = forge::vectors_json(&wider, &vectors);
    assert_eq!(
        forge::read_vectors(&vectors_json).expect("vectors JSON"),
        vectors,
        "read_vectors does not read back what vectors_json writes"
    );

    // A copy of the Foundry project with the generated files.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let contracts = repo_root().join("contracts");
    std::fs::copy(contracts.join("foundry.toml"), root.join("foundry.toml")).expect("foundry.toml");
    std::os::unix::fs::symlink(contracts.join("tools"), root.join("tools")).expect("tools");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::create_dir_all(root.join("test/utils")).expect("test/utils");
    std::fs::write(root.join("src/FabstirVerifier.sol"), &verifier).expect("verifier");
    std::fs::write(root.join("test/FabstirVerifier.t.sol"), &test).expect("test");
    let vectors_path = root.join("test").join(forge::VECTORS_FILE);
    std::fs::create_dir_all(vectors_path.parent().expect("vectors dir")).expect("vectors dir");
    std::fs::write(&vectors_path, &vectors_json).expect("vectors");
    for utility in ["Test.sol", "Vm.sol"] {
        std::fs::copy(
            contracts.join("test/utils").join(utility),
            root.join("test/utils").join(utility),
        )
        .expect(utility);
    }
    let output = std::process::Command::new(common::evm::tool_path("forge"))
        .arg("build")
        .current_dir(root)
        .output()
        .expect("run forge build");
    assert!(
        output.status.success(),
        "forge build of the verifier and forge test for {n} public inputs failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let artifact: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("out/FabstirVerifier.sol/FabstirVerifier.json"))
            .expect("forge artifact"),
    )
    .expect("artifact JSON");
    let bytecode = common::evm::hex_bytes(
        artifact["bytecode"]["object"]
            .as_str()
            .expect("artifact bytecode"),
    );
    let anvil = Anvil::start();
    let address = anvil.deploy(&bytecode);
    let d = Deployed { anvil, address };
    assert_eq!(d.uint("NUM_INSTANCES()"), n as u64, "NUM_INSTANCES()");
    let v = &vectors[0];
    assert!(!native::verify(&wider, &v.instances, &v.proof));
    assert!(
        !d.verify(&v.instances, &v.proof),
        "a proof of the {}-input statement verifies with {n} public inputs",
        n - 1
    );
    let items: Vec<(&[Word], &[u8])> = vectors
        .iter()
        .map(|v| (v.instances.as_slice(), v.proof.as_slice()))
        .collect();
    assert!(!d.bool_call(&calldata::verify_batch(n, &items), "verifyBatch"));
}
