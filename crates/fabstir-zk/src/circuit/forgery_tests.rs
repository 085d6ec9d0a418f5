//! Forgery battery: witnesses that each break exactly one constraint, with
//! everything else recomputed to fit, proved with the real prover (which
//! does not check constraints) and checked with the real verifier, which
//! must reject every one. If any constraint of the circuit were missing, the
//! forgeries that only it catches would verify:
//! [`each_forgery_breaks_exactly_one_constraint_and_all_are_covered`] checks
//! with MockProver that every gate polynomial is the only one broken by some
//! forgery.
//!
//! The forgeries: for every S-box of both permutations (but those whose
//! output is a free input: the six limbs and the secret), its output set to
//! `x^5 + 1`; the auxiliary square set to `x^2 + 1` for one S-box of each
//! square constraint (round 0's public inputs, every S-box of full round 1
//! and of the first partial-round group); for every state element, the state
//! after one partial-round group changed; the commitment cell and the
//! commitment instance changed; the tokens instance changed (it enters the
//! commitment's first input with the chain id); a commitment for another
//! host's `host_id`
//! over our secret's host_id permutation; and the auditor's attack, another
//! host's `host_id` from the width-2 permutation run backwards.

use halo2_axiom::dev::{MockProver, VerifyFailure};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use super::layout::*;
use super::{test_proving_key, tokens_factor, CircuitConstants, CommitmentCircuit, Grid};
use crate::envelope::ProofEnvelope;
use crate::error::VerifyError;
use crate::poseidon::schedule::{Fault, Trace};
use crate::poseidon::{self, mat_vec, PoseidonParams};
use crate::statement::Instance;
use crate::CircuitVersion;

/// A witness grid with the instance column it claims.
struct Forgery {
    name: String,
    grid: Grid,
    instances: [Fr; instance::COUNT],
}

/// The chain id and token count of the statement.
const CHAIN_ID: u64 = 84532;
const TOKENS: u64 = 1234;

/// The public inputs and limbs of the statement (inputs 0..10; input 10,
/// the host_id, is filled in), and our secret. Input 0 packs the chain id
/// and the token count.
fn statement() -> ([Fr; 11], Fr) {
    let mut inputs = [Fr::ZERO; 11];
    inputs[instance::CHAIN_ID] = Fr::from(CHAIN_ID) + Fr::from(TOKENS) * tokens_factor();
    inputs[instance::MARKETPLACE] = Fr::from_u128(0x1111_2222_3333_4444_5555_6666_7777);
    inputs[instance::JOB_HI] = Fr::from_u128(7u128 << 100);
    inputs[instance::JOB_LO] = Fr::from(42);
    for (k, i) in COMMITMENT_PRIVATE_INPUTS.into_iter().enumerate() {
        // 128-bit limbs of made-up digests.
        inputs[i - 1] = Fr::from_u128(u128::MAX - 977 * k as u128);
    }
    (inputs, Fr::from(0x1234_5678_9abc_def0u64))
}

/// The grid and instances for host_id's permutation run on `host_initial`
/// and the commitment over `inputs` with `host_id` as its last input, each
/// with an optional fault; the instances claim the faulted outputs.
fn forge(
    name: String,
    host_initial: [Fr; 2],
    host_fault: Option<Fault>,
    commitment_fault: Option<Fault>,
) -> Forgery {
    let constants = CircuitConstants::get();
    let (mut inputs, _) = statement();
    let host = constants.host_id.trace_from(&host_initial, host_fault);
    inputs[10] = host.output;
    let commitment = commitment_trace(&inputs, commitment_fault);
    let grid = Grid::from_traces(&commitment, &host);
    Forgery {
        name,
        grid,
        instances: instances(&inputs, commitment.output),
    }
}

fn commitment_trace(inputs: &[Fr; 11], fault: Option<Fault>) -> Trace {
    let initial: Vec<Fr> = std::iter::once(Fr::ZERO).chain(*inputs).collect();
    CircuitConstants::get()
        .commitment
        .trace_from(&initial, fault)
}

fn instances(inputs: &[Fr; 11], commitment: Fr) -> [Fr; instance::COUNT] {
    [
        Fr::from(CHAIN_ID),
        inputs[instance::MARKETPLACE],
        inputs[instance::JOB_HI],
        inputs[instance::JOB_LO],
        inputs[10],
        commitment,
        Fr::from(TOKENS),
    ]
}

/// Our secret's honest host_id round-0 state.
fn honest_host() -> [Fr; 2] {
    [Fr::ZERO, statement().1]
}

fn honest() -> Forgery {
    forge("honest witness".into(), honest_host(), None, None)
}

/// Whether S-box `n` (evaluation order) of round 0 outputs a free cell.
fn is_free_sbox(width: usize, n: usize) -> bool {
    if width == poseidon::HOST_ID_WIDTH {
        n == HOST_ID_SECRET_ELEMENT
    } else {
        COMMITMENT_PRIVATE_INPUTS.contains(&n)
    }
}

/// The S-boxes whose square is faulted: one for each square constraint of
/// the circuit (they differ by gate, element and partial round): round 0's
/// public inputs, every S-box of full round 1, the first partial-round group.
fn faulted_squares(width: usize, group: usize) -> Vec<usize> {
    let bound: Vec<usize> = if width == poseidon::COMMITMENT_WIDTH {
        COMMITMENT_BOUND_INPUTS.iter().map(|b| b.0).collect()
    } else {
        Vec::new() // round 0 of host_id has no squares
    };
    let half = poseidon::FULL_ROUNDS / 2;
    let round_1 = width..2 * width;
    let first_group = half * width..half * width + group;
    bound
        .into_iter()
        .chain(round_1)
        .chain(first_group)
        .collect()
}

/// Every single-constraint forgery of the battery but (i) and (ii).
fn single_constraint_forgeries() -> Vec<Forgery> {
    let constants = CircuitConstants::get();
    let mut out = Vec::new();
    for (which, schedule) in [
        ("host_id", &constants.host_id),
        ("commitment", &constants.commitment),
    ] {
        let fault = |f: Fault| -> (Option<Fault>, Option<Fault>) {
            if which == "host_id" {
                (Some(f), None)
            } else {
                (None, Some(f))
            }
        };
        let t = schedule.width;
        for n in (0..schedule.sbox_count()).filter(|n| !is_free_sbox(t, *n)) {
            let (h, c) = fault(Fault::Output(n));
            out.push(forge(
                format!("{which} S-box {n} output"),
                honest_host(),
                h,
                c,
            ));
        }
        for n in faulted_squares(t, schedule.group) {
            let (h, c) = fault(Fault::Square(n));
            out.push(forge(
                format!("{which} S-box {n} square"),
                honest_host(),
                h,
                c,
            ));
        }
        // Each state element, after one group (a different group for each).
        let groups = schedule.partial_constants.len() / schedule.group;
        for element in 0..t {
            let group = (element * 5 + 1) % groups;
            let (h, c) = fault(Fault::GroupState { group, element });
            out.push(forge(
                format!("{which} group {group} state element {element}"),
                honest_host(),
                h,
                c,
            ));
        }
    }
    // The commitment cell (and instance) one more than the final state gives.
    let mut cell = honest();
    cell.name = "commitment cell".into();
    let (row, column) = COMMITMENT_OUTPUT_CELL;
    let value = cell.grid.get(row, column) + Fr::ONE;
    cell.grid.set(row, column, value);
    cell.instances[instance::COMMITMENT] = value;
    out.push(cell);
    // The commitment instance alone.
    let mut claimed = honest();
    claimed.name = "commitment instance".into();
    claimed.instances[instance::COMMITMENT] += Fr::ONE;
    out.push(claimed);
    out.push(tokens_instance_forgery());
    out
}

/// A proof for one token count claimed for another: the tokens instance one
/// more, with the auxiliary square of the first input's S-box recomputed to
/// fit, so that only its `y = a^2 * x` constraint breaks.
fn tokens_instance_forgery() -> Forgery {
    let mut forgery = honest();
    forgery.name = "tokens instance".into();
    forgery.instances[instance::TOKENS] += Fr::ONE;
    let (element, _, aux_rotation, aux_column) = COMMITMENT_BOUND_INPUTS[0];
    let x = forgery.instances[instance::CHAIN_ID]
        + forgery.instances[instance::TOKENS] * tokens_factor()
        + CircuitConstants::get().commitment.full_constants[0][element];
    let row = (last_row_of_block(COMMITMENT_INPUT_BLOCK) as i32 + aux_rotation) as usize;
    forgery.grid.set(row, aux_column, x.square());
    forgery
}

/// (i) Our secret's host_id permutation, but the commitment over, and the
/// instances claiming, another host's `host_id`.
fn another_hosts_commitment() -> Forgery {
    let (mut inputs, _) = statement();
    let other = poseidon::hash1(Fr::from(999u64));
    inputs[10] = other;
    let host = CircuitConstants::get().host_id.trace(&[statement().1]);
    let commitment = commitment_trace(&inputs, None);
    Forgery {
        name: "commitment for another host's host_id".into(),
        grid: Grid::from_traces(&commitment, &host),
        instances: instances(&inputs, commitment.output),
    }
}

/// `x^(1/5)`: `x^d` with `5 d = 1 mod (r - 1)` (x^5 is a bijection of the field).
fn fifth_root(x: Fr) -> Fr {
    // r - 1 as little-endian 64-bit limbs.
    let hex = Fr::MODULUS.trim_start_matches("0x");
    let mut limbs = [0u64; 4];
    for (i, chunk) in hex.as_bytes().rchunks(16).enumerate() {
        limbs[i] = u64::from_str_radix(std::str::from_utf8(chunk).unwrap(), 16).unwrap();
    }
    limbs[0] -= 1; // r is odd
    for k in 1..5u128 {
        // d = (k (r - 1) + 1) / 5 if that divides.
        let mut n = [0u64; 4];
        let mut carry = 1u128;
        for (out, limb) in n.iter_mut().zip(limbs) {
            let v = u128::from(limb) * k + carry;
            *out = v as u64;
            carry = v >> 64;
        }
        assert_eq!(carry, 0);
        let mut d = [0u64; 4];
        let mut remainder = 0u128;
        for i in (0..4).rev() {
            let v = (remainder << 64) | u128::from(n[i]);
            d[i] = (v / 5) as u64;
            remainder = v % 5;
        }
        if remainder == 0 {
            let root = x.pow_vartime(d);
            assert_eq!(poseidon::pow5(root), x);
            return root;
        }
    }
    unreachable!("5 is prime to r - 1")
}

/// The inverse of a square matrix (Gauss–Jordan).
fn invert(m: &[Vec<Fr>]) -> Vec<Vec<Fr>> {
    let n = m.len();
    let mut a: Vec<Vec<Fr>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { Fr::ONE } else { Fr::ZERO }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .find(|r| !bool::from(a[*r][col].is_zero()))
            .unwrap();
        a.swap(col, pivot);
        let inverse = a[col][col].invert().unwrap();
        a[col].iter_mut().for_each(|v| *v *= inverse);
        for r in 0..n {
            if r != col {
                let factor = a[r][col];
                let pivot_row = a[col].clone();
                for (v, p) in a[r].iter_mut().zip(pivot_row) {
                    *v -= factor * p;
                }
            }
        }
    }
    a.into_iter().map(|r| r[n..].to_vec()).collect()
}

/// The reference permutation run backwards from `state`.
fn permute_backwards(params: &PoseidonParams, state: &mut [Fr]) {
    let inverse = invert(&params.mds);
    for r in (0..params.rounds()).rev() {
        let unmixed = mat_vec(&inverse, state);
        state.copy_from_slice(&unmixed);
        if params.is_full_round(r) {
            state.iter_mut().for_each(|s| *s = fifth_root(*s));
        } else {
            state[0] = fifth_root(state[0]);
        }
        for (s, c) in state.iter_mut().zip(&params.round_constants[r]) {
            *s -= c;
        }
    }
}

/// (ii) The auditor's attack: another host's `host_id` without its secret.
/// From a final state whose element 0 is that `host_id`, the permutation run
/// backwards gives a round-0 state `[capacity, x]` that hashes to it; only
/// its capacity differs from the honest `0`.
fn backwards_from_another_host_id() -> Forgery {
    let target = poseidon::hash1(Fr::from(999u64));
    let mut state = [target, Fr::from(31337u64)];
    permute_backwards(poseidon::host_id_params(), &mut state);
    assert_ne!(state[0], Fr::ZERO, "found a preimage: the capacity is zero");
    let mut check = state;
    poseidon::host_id_params().permute(&mut check);
    assert_eq!(check[0], target);
    let forgery = forge(
        "host_id run backwards from another host's id".into(),
        state,
        None,
        None,
    );
    assert_eq!(forgery.instances[instance::HOST_ID], target);
    forgery
}

/// Proves each forgery with the real prover and verifies it with the real
/// verifying key, in parallel; returns the names of those that verified.
/// (Failures are collected and reported on the test's thread, where the
/// test harness shows them.)
fn accepted(forgeries: &[Forgery]) -> Vec<String> {
    let pk = test_proving_key();
    let vk = pk.verifying_key();
    let outcomes: Vec<Result<bool, String>> = forgeries
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let rng = ChaCha20Rng::seed_from_u64(i as u64);
            let proof = crate::proof::prove_grid(pk, f.grid.clone(), &f.instances, rng)
                .map_err(|e| format!("{}: the prover failed: {e}", f.name))?;
            let instance = Instance::from_field_elements(&f.instances)
                .map_err(|e| format!("{}: {e}", f.name))?;
            let envelope = ProofEnvelope {
                vk_id: pk.vk_id(),
                instance,
                proof,
            };
            match envelope.verify(vk, &instance) {
                Ok(()) => Ok(true),
                Err(VerifyError::Invalid) => Ok(false),
                Err(e) => Err(format!("{}: refused before the pairing check: {e}", f.name)),
            }
        })
        .collect();
    forgeries
        .iter()
        .zip(outcomes)
        .filter_map(|(f, outcome)| match outcome {
            Ok(verified) => verified.then(|| f.name.clone()),
            Err(e) => panic!("{e}"),
        })
        .collect()
}

/// The honest witness, proved from its grid, verifies (so a rejection below
/// is the forgery's doing).
#[track_caller]
fn assert_honest_witness_verifies() {
    assert!(
        accepted(&[honest()]) == ["honest witness"],
        "the honest witness proved from its grid does not verify"
    );
}

#[test]
fn every_single_constraint_forgery_is_rejected_by_the_real_verifier() {
    assert_honest_witness_verifies();
    let forgeries = single_constraint_forgeries();
    // 150 + 71 outputs, 5 + 12 + 4 + 2 + 2 squares, 12 + 2 group states,
    // 2 bindings, the tokens instance.
    assert_eq!(forgeries.len(), 221 + 25 + 14 + 2 + 1);
    let start = std::time::Instant::now();
    let accepted = accepted(&forgeries);
    println!(
        "{} forgeries proved and verified in {:?}",
        forgeries.len(),
        start.elapsed()
    );
    assert!(accepted.is_empty(), "forgeries accepted: {accepted:?}");
}

#[test]
fn commitment_for_another_hosts_id_is_rejected_by_the_real_verifier() {
    assert_honest_witness_verifies();
    let accepted = accepted(&[another_hosts_commitment()]);
    assert!(accepted.is_empty(), "forgeries accepted: {accepted:?}");
}

#[test]
fn host_id_run_backwards_without_the_secret_is_rejected_by_the_real_verifier() {
    assert_honest_witness_verifies();
    let accepted = accepted(&[backwards_from_another_host_id()]);
    assert!(accepted.is_empty(), "forgeries accepted: {accepted:?}");
}

/// The (gate, constraint, row) of each unsatisfied constraint under
/// MockProver; `Err` for any other kind of failure.
fn broken_constraints(f: &Forgery) -> Result<Vec<(String, String, usize)>, String> {
    let circuit = CommitmentCircuit::with_grid(f.grid.clone(), CircuitVersion::CURRENT);
    let failures = match MockProver::run(K, &circuit, vec![f.instances.to_vec()])
        .map_err(|e| format!("{}: MockProver failed: {e}", f.name))?
        .verify()
    {
        Ok(()) => return Ok(Vec::new()),
        Err(failures) => failures,
    };
    failures
        .iter()
        .map(|failure| match failure {
            VerifyFailure::ConstraintNotSatisfied {
                constraint,
                location,
                ..
            } => {
                // Display: "Constraint N ('name') in gate M ('gate name')".
                let text = constraint.to_string();
                let parts: Vec<&str> = text.split('\'').collect();
                let row = match location {
                    halo2_axiom::dev::FailureLocation::InRegion { offset, .. } => *offset,
                    halo2_axiom::dev::FailureLocation::OutsideRegion { row } => *row,
                };
                Ok((parts[3].to_string(), parts[1].to_string(), row))
            }
            other => Err(format!(
                "{}: expected only constraint failures, got {other}",
                f.name
            )),
        })
        .collect()
}

/// Each forgery breaks exactly one constraint at one row (everything else
/// was recomputed to fit), and every gate polynomial of the circuit is the
/// one broken by some forgery: so if any polynomial were removed, a forgery
/// would satisfy every remaining constraint, and verify.
#[test]
fn each_forgery_breaks_exactly_one_constraint_and_all_are_covered() {
    let mut forgeries = single_constraint_forgeries();
    forgeries.push(another_hosts_commitment());
    forgeries.push(backwards_from_another_host_id());
    assert_eq!(broken_constraints(&honest()), Ok(vec![]));
    let found: Vec<Result<Vec<_>, String>> = forgeries.par_iter().map(broken_constraints).collect();
    let broken: Vec<(String, String)> = forgeries
        .iter()
        .zip(found)
        .map(|(f, found)| {
            let found = found.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(found.len(), 1, "{}: broke {found:?}", f.name);
            (found[0].0.clone(), found[0].1.clone())
        })
        .collect();
    let analysis = test_proving_key().constraint_analysis().unwrap();
    for (g, p) in analysis.gate_polynomials() {
        let (gate, constraint) = analysis.name(g, p);
        assert!(
            broken.iter().any(|(bg, bc)| bg == gate && bc == constraint),
            "no forgery breaks only '{constraint}' of gate '{gate}'"
        );
    }
    // The auditor's attack is caught by the host_id capacity alone.
    assert_eq!(
        broken.last().unwrap(),
        &("bindings".to_string(), "host_id capacity".to_string())
    );
}

/// The S-box numbering used by the faults matches the circuit's: faulting
/// S-box `n` of round 0 breaks the constraint of element `n`.
#[test]
fn round_0_faults_hit_the_element_they_name() {
    let capacity = forge(
        "capacity".into(),
        honest_host(),
        None,
        Some(Fault::Output(0)),
    );
    assert_eq!(
        broken_constraints(&capacity).unwrap(),
        [(
            "commitment round 0".into(),
            "capacity".into(),
            last_row_of_block(COMMITMENT_INPUT_BLOCK)
        )]
    );
    let host_id_input = forge(
        "element 11".into(),
        honest_host(),
        None,
        Some(Fault::Output(11)),
    );
    assert_eq!(
        broken_constraints(&host_id_input).unwrap(),
        [(
            "commitment round 0".into(),
            "public input 11: y = a^2 * x".into(),
            last_row_of_block(COMMITMENT_INPUT_BLOCK)
        )]
    );
    let host_capacity = forge(
        "host capacity".into(),
        honest_host(),
        Some(Fault::Output(0)),
        None,
    );
    assert_eq!(
        broken_constraints(&host_capacity).unwrap(),
        [(
            "bindings".into(),
            "host_id capacity".into(),
            HOST_ID_FIRST_ROW
        )]
    );
}

/// Changing only the tokens instance breaks exactly the round-0 S-box of
/// the commitment's first input (which reads chain id and tokens).
#[test]
fn the_tokens_instance_is_bound_by_round_0() {
    let forgery = tokens_instance_forgery();
    assert_eq!(
        broken_constraints(&forgery).unwrap(),
        [(
            "commitment round 0".into(),
            "public input 1: y = a^2 * x".into(),
            last_row_of_block(COMMITMENT_INPUT_BLOCK)
        )]
    );
}

/// The packing `chain_id + 2^64 * tokens` is a field sum: the circuit alone
/// accepts another split of the same element (chain id + 2^64, tokens - 1).
/// Such a split has a value >= 2^64, which `Instance::from_field_elements`
/// (the envelope parser) refuses, naming the field; both directions.
#[test]
fn another_split_of_the_packed_input_satisfies_the_circuit_but_is_refused() {
    for (chain, tokens, field) in [
        (
            Fr::from(CHAIN_ID) + tokens_factor(),
            Fr::from(TOKENS - 1),
            "chain id",
        ),
        (
            Fr::from(CHAIN_ID) - tokens_factor(),
            Fr::from(TOKENS + 1),
            "chain id",
        ),
    ] {
        let mut forgery = honest();
        forgery.instances[instance::CHAIN_ID] = chain;
        forgery.instances[instance::TOKENS] = tokens;
        assert_eq!(broken_constraints(&forgery).unwrap(), vec![]);
        match Instance::from_field_elements(&forgery.instances) {
            Err(crate::error::InputError::InstanceRange { what, .. }) => assert_eq!(what, field),
            other => panic!("expected a range error, got {other:?}"),
        }
    }
    // Tokens that carry into 2^64 the other way: tokens + 2^64 with the
    // chain id the same element minus 2^128 is out of range too.
    let mut forgery = honest();
    forgery.instances[instance::TOKENS] += tokens_factor();
    forgery.instances[instance::CHAIN_ID] -= tokens_factor() * tokens_factor();
    assert_eq!(broken_constraints(&forgery).unwrap(), vec![]);
    assert!(matches!(
        Instance::from_field_elements(&forgery.instances),
        Err(crate::error::InputError::InstanceRange { .. })
    ));
}
