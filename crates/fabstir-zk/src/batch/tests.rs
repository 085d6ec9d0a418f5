//! The batch circuit's soundness tests: MockProver (honest witness, every
//! advice cell, every public input, entries moved, another host), the
//! uniqueness check (the witness is determined, and deleting any gate
//! polynomial is noticed), the constraint system's shape and the EVM plan,
//! and real proofs against raw instance columns.

use std::sync::{Arc, OnceLock};

use halo2_axiom::dev::{MockProver, VerifyFailure};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::plonk::{Circuit, ConstraintSystem};

use super::circuit::{expected_fixed_columns, BatchCircuit};
use super::layout::*;
use super::*;
use crate::circuit::layout::{self as single, DEGREE};
use crate::circuit::tests::{assert_fails_with, failed_constraints};
use crate::circuit::Grid;
use crate::error::UniquenessError;
use crate::statement::parse_address;

fn size(n: usize) -> BatchSize {
    BatchSize::new(n).unwrap()
}

/// The host key of `seed`.
fn host(seed: u64) -> HostKey {
    HostKey::from_secret(Fr::from(seed) * Fr::from(0x9e37_79b9_7f4a_7c15u64) + Fr::from(3))
}

/// A batch of `n` distinct entries of `host(seed)`, then `padding` padding
/// entries.
fn statement(n: usize, padding: usize, seed: u64) -> BatchStatement {
    let digest = |tag: &str, i: usize| Digest32::sha256(format!("{tag} {seed} {i}").as_bytes());
    let entries = (0..n)
        .map(|i| BatchEntry {
            job_id: JobId::from_u64(1000 * seed + i as u64 + 1),
            tokens: 17 * i as u64 + seed + 5,
            model_hash: digest("model", i),
            input_hash: digest("input", i),
            output_hash: digest("output", i),
        })
        .collect();
    let mut statement = BatchStatement {
        chain_id: 84532 + seed,
        marketplace: parse_address("0x5fbdb2315678afecb367f032d93f642f64180aa3").unwrap(),
        host_id: host(seed).host_id(),
        entries,
    };
    statement
        .entries
        .extend(std::iter::repeat_n(BatchEntry::padding(), padding));
    statement
}

fn inputs(statement: &BatchStatement) -> Vec<[Fr; 11]> {
    statement
        .statements()
        .map(|s| s.commitment_inputs())
        .collect()
}

fn grid(statement: &BatchStatement, sk: Fr) -> Grid {
    let size = size(statement.entries.len());
    witness::build(size, &inputs(statement), sk)
}

fn run(grid: Grid, instances: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    let size = size(instances.len() / BANDS);
    let circuit = BatchCircuit::with_grid(size, grid);
    MockProver::run(size.k(), &circuit, vec![instances.to_vec()])
        .expect("mock prover runs")
        .verify()
}

/// The honest witness and instance column of `statement` for `host(seed)`.
fn honest(statement: &BatchStatement, seed: u64) -> (Grid, Vec<Fr>) {
    (
        grid(statement, host(seed).secret()),
        statement.public().to_field_elements(),
    )
}

#[test]
fn honest_witness_satisfies_every_constraint() {
    for (n, padding) in [(1, 0), (2, 0), (1, 1), (3, 0), (2, 2)] {
        let s = statement(n, padding, 1);
        let (grid, instances) = honest(&s, 1);
        run(grid, &instances).unwrap_or_else(|e| panic!("{n} + {padding} padding: {e:?}"));
    }
}

/// Each entry's commitment is the version 2 commitment of its statement,
/// and its public inputs are the version 2 instance in the entry's bands.
#[test]
fn entries_carry_the_single_circuits_commitment_and_instance() {
    let s = statement(3, 1, 2);
    let public = s.public();
    let elements = public.to_field_elements();
    let size = size(4);
    for i in 0..4 {
        let single = s.entry_statement(i).unwrap();
        assert_eq!(public.entries[i].commitment.0, single.commitment());
        let instance = single.instance();
        assert_eq!(public.entry_instance(i), Some(instance));
        for (row, value) in instance.to_field_elements().into_iter().enumerate() {
            assert_eq!(elements[instance_row(size, band_of(row), i)], value);
        }
    }
    assert!(s.entries[3].is_padding() && !s.entries[2].is_padding());
    assert_eq!(
        BatchPublic::from_field_elements(size, &elements),
        Ok(public)
    );
}

#[test]
fn every_assigned_advice_cell_is_constrained() {
    let s = statement(2, 0, 3);
    let (grid, instances) = honest(&s, 3);
    let used = grid.used_cells();
    let size = size(2);
    assert!(used.iter().all(|(row, _)| *row < size.used_rows()));
    assert!(used.iter().any(|(row, _)| *row == size.used_rows() - 1));
    assert!(used.len() > 1100, "layout assigns {} cells", used.len());
    for &(row, column) in &used {
        let mut bad = grid.clone();
        bad.set(row, column, grid.get(row, column) + Fr::ONE);
        let failures =
            run(bad, &instances).expect_err(&format!("changing cell ({row}, {column}) must fail"));
        // Only constraint failures, never e.g. an unassigned-cell complaint.
        failed_constraints(&failures);
    }
}

#[test]
fn every_public_input_is_bound() {
    let s = statement(1, 1, 4);
    let (grid, instances) = honest(&s, 4);
    for index in 0..instances.len() {
        for delta in [Fr::ONE, -Fr::ONE, Fr::from(1u64 << 40)] {
            let mut changed = instances.clone();
            changed[index] += delta;
            assert!(
                run(grid.clone(), &changed).is_err(),
                "instance {index} + {delta:?} accepted"
            );
        }
    }
}

#[test]
fn entries_swapped_or_moved_in_the_public_inputs_fail() {
    let s = statement(3, 0, 5);
    let (grid, _) = honest(&s, 5);
    let public = s.public();
    let mut swapped = public.clone();
    swapped.entries.swap(0, 1);
    let mut rotated = public.clone();
    rotated.entries.rotate_left(1);
    let mut commitments_swapped = public.clone();
    let c = commitments_swapped.entries[0].commitment;
    commitments_swapped.entries[0].commitment = commitments_swapped.entries[2].commitment;
    commitments_swapped.entries[2].commitment = c;
    let mut tokens_swapped = public.clone();
    let t = tokens_swapped.entries[1].tokens;
    tokens_swapped.entries[1].tokens = tokens_swapped.entries[2].tokens;
    tokens_swapped.entries[2].tokens = t;
    for (what, moved) in [
        ("swapped", swapped),
        ("rotated", rotated),
        ("commitments swapped", commitments_swapped),
        ("tokens swapped", tokens_swapped),
    ] {
        let failures = run(grid.clone(), &moved.to_field_elements())
            .expect_err(&format!("entries {what} accepted"));
        assert!(!failed_constraints(&failures).is_empty());
    }
    // A proof of the entries in the other order is its own valid batch.
    let mut reordered = s.clone();
    reordered.entries.swap(0, 1);
    let (grid, instances) = honest(&reordered, 5);
    run(grid, &instances).unwrap();
}

#[test]
fn another_hosts_secret_fails_for_this_host_id() {
    let s = statement(2, 0, 6);
    let size = size(2);
    let instances = s.public().to_field_elements();
    let other = host(7);
    let failures = run(grid(&s, other.secret()), &instances).unwrap_err();
    assert_fails_with(
        &failures,
        "batch bindings",
        "host_id output = instance",
        host_id_binding_row(size),
    );
    // The other host's own batch (its host_id in every entry) verifies.
    let mut theirs = s.clone();
    theirs.host_id = other.host_id();
    run(
        grid(&theirs, other.secret()),
        &theirs.public().to_field_elements(),
    )
    .unwrap();
    // Its host_id in entry 1's copy only: entry 1's commitment then reads
    // another host_id than the one proved.
    let mut instances_mixed = instances.clone();
    instances_mixed[instance_row(size, band::HOST_ID, 1)] = other.host_id().0;
    let failures = run(grid(&s, host(6).secret()), &instances_mixed).unwrap_err();
    assert_fails_with(
        &failures,
        "commitment round 0",
        "public input 11: y = a^2 * x",
        entry_row(size, single::last_row_of_block(0), 1),
    );
}

#[test]
fn failures_name_the_constraint_that_caught_them() {
    let s = statement(3, 0, 8);
    let size = size(3);
    let (grid, instances) = honest(&s, 8);
    let mutate = |row: usize, column: usize| {
        let mut bad = grid.clone();
        bad.set(row, column, grid.get(row, column) + Fr::ONE);
        run(bad, &instances).unwrap_err()
    };
    let at = |row: usize, entry: usize| entry_row(size, row, entry);
    // Entry 1's full round and partial round, at their stride rows.
    let block = single::COMMITMENT_FULL_BLOCKS[0];
    assert_fails_with(
        &mutate(at(single::block_row(block) + 1, 1), 2),
        "commitment full round, block row 1",
        "element 6: y = a^2 * x",
        at(single::block_row(block) + 1, 1),
    );
    let group = single::last_row_of_block(single::COMMITMENT_FIRST_GROUP_BLOCK + 5);
    assert_fails_with(
        &mutate(at(group - 1, 2), 1),
        "commitment partial rounds",
        "state element 5",
        at(group, 2),
    );
    assert_fails_with(
        &mutate(at(group, 0), single::STATE_COLUMNS),
        "commitment partial rounds",
        "partial round 0: a = x^2",
        at(group, 0),
    );
    // Round 0 of entry 2.
    let anchor = single::last_row_of_block(single::COMMITMENT_INPUT_BLOCK);
    assert_fails_with(
        &mutate(at(0, 2), 1),
        "commitment round 0",
        "public input 1: y = a^2 * x",
        at(anchor, 2),
    );
    assert_fails_with(
        &mutate(at(0, 2), 0),
        "commitment round 0",
        "capacity",
        at(anchor, 2),
    );
    // Entry 1's commitment cell: bound to its instance and to its state.
    let (cell_row, cell_column) = COMMITMENT_CELL;
    let failures = mutate(at(cell_row, 1), cell_column);
    assert_fails_with(
        &failures,
        "batch bindings",
        "commitment output = instance",
        instance_row(size, band::COMMITMENT, 1),
    );
    assert_fails_with(
        &failures,
        "batch bindings",
        "commitment cell = final state element 0",
        at(COMMITMENT_CELL_ANCHOR, 1),
    );
    // The last block of entry 0.
    assert_fails_with(
        &mutate(
            at(single::last_row_of_block(single::COMMITMENT_LAST_BLOCK), 0),
            0,
        ),
        "batch bindings",
        "commitment cell = final state element 0",
        at(COMMITMENT_CELL_ANCHOR, 0),
    );
    // host_id: its output, a partial round, its capacity.
    let host_column = |j: usize| HOST_ID_COLUMNS[j];
    assert_fails_with(
        &mutate(host_id_output_row(size), host_column(1)),
        "batch bindings",
        "host_id output = instance",
        host_id_binding_row(size),
    );
    let row = single::host_id_group_row(10) + host_id_shift(size);
    assert_fails_with(
        &mutate(row, host_column(0)),
        "host_id partial rounds",
        "state element 0",
        row,
    );
    assert_fails_with(
        &mutate(host_id_first_row(size), host_column(0)),
        "batch bindings",
        "host_id capacity",
        host_id_binding_row(size),
    );
    // Public inputs: entry 1's commitment and tokens.
    let mut changed = instances.clone();
    changed[instance_row(size, band::COMMITMENT, 1)] += Fr::ONE;
    assert_fails_with(
        &run(grid.clone(), &changed).unwrap_err(),
        "batch bindings",
        "commitment output = instance",
        instance_row(size, band::COMMITMENT, 1),
    );
    let mut changed = instances.clone();
    changed[instance_row(size, band::TOKENS, 1)] += Fr::ONE;
    assert_fails_with(
        &run(grid.clone(), &changed).unwrap_err(),
        "commitment round 0",
        "public input 1: y = a^2 * x",
        at(anchor, 1),
    );
}

fn constraint_system(size: BatchSize) -> ConstraintSystem<Fr> {
    let mut cs = ConstraintSystem::<Fr>::default();
    BatchCircuit::configure_with_params(&mut cs, size);
    cs
}

#[test]
fn constraint_system_has_the_required_shape() {
    for n in [1, 2, 3, 8, 16, 29, 32, 58, 64, BatchSize::MAX] {
        let size = size(n);
        let cs = constraint_system(size);
        assert_eq!(cs.degree(), DEGREE);
        assert!(cs
            .gates()
            .iter()
            .flat_map(|g| g.polynomials())
            .all(|p| p.degree() <= DEGREE));
        assert_eq!(cs.num_advice_columns(), single::ADVICE_COLUMNS);
        assert_eq!(cs.num_fixed_columns(), 11);
        assert_eq!(cs.num_instance_columns(), 1);
        assert!(cs.permutation().get_columns().is_empty());
        assert!(cs.lookups().is_empty());
        assert_eq!(cs.num_challenges(), 0);
        assert_eq!(cs.blinding_factors() + 1, UNUSABLE_ROWS, "N = {n}");
        let usable = (1usize << size.k()) - UNUSABLE_ROWS;
        assert!(size.used_rows() <= usable, "N = {n}");
        // k is the smallest that fits.
        assert!(size.used_rows() > (1usize << (size.k() - 1)) - UNUSABLE_ROWS);
        let mut rotations: Vec<i32> = cs.instance_queries().iter().map(|(_, r)| r.0).collect();
        rotations.sort();
        let n = n as i32;
        assert_eq!(rotations, [-n, 0, n, 2 * n, 3 * n, 4 * n], "N = {n}");
    }
    let k = |n| size(n).k();
    assert_eq!(
        [
            k(1),
            k(2),
            k(8),
            k(16),
            k(29),
            k(30),
            k(32),
            k(58),
            k(59),
            k(64)
        ],
        [7, 8, 10, 11, 11, 12, 12, 12, 13, 13]
    );
    assert_eq!(BatchSize::MAX, 236);
    assert_eq!(size(BatchSize::MAX).k(), 14);
    assert_eq!(
        BatchSize::new(0),
        Err(BatchError::Size { found: 0, max: 236 })
    );
    assert!(BatchSize::new(BatchSize::MAX + 1).is_err());
}

/// The gates of the commitment and host_id permutations are the single
/// circuit's: same names and constraints; the bindings are the batch's own.
#[test]
fn gates_are_the_single_circuits_with_stride() {
    let mut single_cs = ConstraintSystem::<Fr>::default();
    crate::circuit::CommitmentCircuit::configure(&mut single_cs);
    let names = |cs: &ConstraintSystem<Fr>| -> Vec<(String, Vec<String>)> {
        cs.gates()
            .iter()
            .map(|g| {
                (
                    g.name().to_string(),
                    (0..g.polynomials().len())
                        .map(|i| g.constraint_name(i).to_string())
                        .collect(),
                )
            })
            .collect()
    };
    let batch = names(&constraint_system(size(2)));
    let single = names(&single_cs);
    assert_eq!(batch[..batch.len() - 1], single[..single.len() - 1]);
    assert_eq!(batch.last().unwrap().0, "batch bindings");
}

pub(super) fn dev_key(n: usize) -> &'static BatchProvingKey {
    static KEYS: OnceLock<std::sync::Mutex<Vec<&'static BatchProvingKey>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let mut keys = keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(pk) = keys.iter().find(|pk| pk.size().get() == n) {
        return pk;
    }
    let size = size(n);
    let srs = Arc::new(Srs::insecure_dev_at(size.k()).unwrap());
    let pk: &'static BatchProvingKey =
        Box::leak(Box::new(BatchProvingKey::build(srs, size).unwrap()));
    keys.push(pk);
    pk
}

#[test]
fn key_holds_the_layouts_fixed_columns() {
    let pk = dev_key(2);
    let expected = expected_fixed_columns(pk.size());
    let values = pk.pk.fixed_values();
    assert_eq!(values.len(), expected.len());
    for (have, want) in values.iter().zip(&expected) {
        assert!(have.iter().eq(want.iter()));
    }
}

#[test]
fn batch_key_determines_its_witness() {
    let pk = dev_key(2);
    let report = pk.check_unique_witness().unwrap_or_else(|e| panic!("{e}"));
    let free = free_cells(pk.size());
    // Per entry: chain, marketplace, job limbs, tokens, six limbs, and the
    // host_id copy but entry 0's; the secret once.
    assert_eq!(report.free_cells, free.len());
    assert_eq!(free.len(), 2 * (6 + 6) - 1 + 1);
    // One cell per active constraint: every assigned advice cell but the
    // free ones, and the outputs (two commitments, one host_id).
    let s = statement(2, 0, 9);
    let cells = grid(&s, Fr::ONE).used_cells().len();
    assert_eq!(report.determined_cells, report.active_constraints);
    assert_eq!(report.determined_cells, cells - (2 * 6 + 1) + 3);
}

#[test]
fn removing_any_gate_polynomial_is_noticed() {
    let pk = dev_key(2);
    crate::circuit::uniqueness::tests::assert_every_gate_polynomial_is_needed(
        &pk.constraint_analysis().unwrap(),
        &free_cells(pk.size()),
        60,
    );
}

#[test]
fn free_cells_are_exactly_the_inputs() {
    let pk = dev_key(2);
    let analysis = pk.constraint_analysis().unwrap();
    let free = free_cells(pk.size());
    for (i, missing) in free.iter().enumerate() {
        let mut fewer = free.clone();
        fewer.remove(i);
        match analysis.propagate(&fewer) {
            Err(UniquenessError::NotDetermined { undetermined, .. }) => assert!(
                undetermined.iter().any(|u| u.cell == *missing),
                "without free cell {missing}"
            ),
            other => panic!("without free cell {missing}: {other:?}"),
        }
    }
    // Entry 0's host_id copy is an output: listed as free, one constraint
    // has nothing left to determine.
    let mut more = free.clone();
    more.push(Cell::Instance {
        row: host_id_binding_row(pk.size()),
    });
    assert!(matches!(
        analysis.propagate(&more),
        Err(UniquenessError::NotDetermined { redundant, .. }) if redundant.len() == 1
    ));
}

#[test]
fn evm_plan_accepts_the_batch_key() {
    let vk = dev_key(2).verifying_key();
    let plan = crate::evm::plan::Plan::new(&vk.as_single_key()).expect("plan");
    assert_eq!(plan.k, 8);
    assert_eq!(plan.layout().len, vk.proof_len());
    let mut rotations = plan.instance_rotations.clone();
    rotations.sort();
    assert_eq!(rotations, [-2, 0, 2, 4, 6, 8]);
    println!(
        "batch of 2: {} advice queries, {} fixed queries, {} rotation sets, proof {} bytes",
        plan.advice_queries.len(),
        plan.fixed_queries.len(),
        plan.sets.len(),
        plan.layout().len
    );
}

/// Real proofs against raw instance columns: each element changed, and
/// another size's key.
#[test]
fn real_proof_binds_every_public_input_and_its_size() {
    let pk = dev_key(2);
    let vk = pk.verifying_key();
    let s = statement(1, 1, 10);
    let proof = BatchProof::create(pk, &s, &host(10), rand::rngs::OsRng).unwrap();
    let instances = s.public().to_field_elements();
    assert!(vk.verify_raw(&instances, &proof.proof));
    for index in 0..instances.len() {
        let mut changed = instances.clone();
        changed[index] += Fr::ONE;
        assert!(
            !vk.verify_raw(&changed, &proof.proof),
            "instance {index} changed accepted"
        );
    }
    // Under the key of 3 entries, with the public inputs of this batch
    // padded to 3 (or cut to its own 14 elements), the proof fails.
    let other = dev_key(3).verifying_key();
    let padded = s.clone().padded(size(3)).unwrap().public();
    assert!(!other.verify_raw(&padded.to_field_elements(), &proof.proof));
    assert!(!other.verify_raw(&instances, &proof.proof));
    assert_eq!(
        proof.verify(other, &padded),
        Err(BatchError::KeySize { key: 3, proof: 2 })
    );
    let mut relabelled = proof.clone();
    relabelled.size = size(3);
    relabelled.vk_id = other.id();
    relabelled.public = padded.clone();
    assert!(matches!(
        relabelled.verify(other, &padded),
        Err(BatchError::Malformed(_) | BatchError::Invalid)
    ));
}

/// A key built from larger parameters is the key of its own size (the
/// parameters are cut down); smaller parameters are refused.
#[test]
fn parameters_are_cut_to_the_keys_size() {
    let size = size(2);
    let larger = Arc::new(Srs::insecure_dev_at(size.k() + 1).unwrap());
    let vk = BatchVerifyingKey::derive(larger, size).unwrap();
    assert_eq!(vk.id(), dev_key(2).vk_id());
    assert_eq!(vk.srs().k(), size.k());
    let smaller = Arc::new(Srs::insecure_dev_at(size.k() - 1).unwrap());
    assert!(matches!(
        BatchVerifyingKey::derive(smaller, size),
        Err(crate::error::KeyError::SrsTooSmall {
            found: 7,
            needed: 8
        })
    ));
}

/// Witnesses that break one constraint, proved with the real prover (which
/// does not check constraints): the real verifier rejects every one.
#[test]
fn real_proofs_of_tampered_witnesses_are_rejected() {
    let pk = dev_key(2);
    let vk = pk.verifying_key();
    let size = pk.size();
    let s = statement(2, 0, 11);
    let (grid, instances) = honest(&s, 11);
    let prove = |grid: Grid, instances: &[Fr]| {
        crate::proof::prove_with(
            vk.srs.params(),
            &pk.pk,
            grid.into_columns(),
            instances,
            rand::rngs::OsRng,
        )
        .unwrap()
    };
    assert!(vk.verify_raw(&instances, &prove(grid.clone(), &instances)));
    let (cell_row, cell_column) = COMMITMENT_CELL;
    let commitment_cell = (entry_row(size, cell_row, 1), cell_column);
    for (what, (row, column)) in [
        ("entry 1's commitment cell", commitment_cell),
        ("a private limb of entry 0", (entry_row(size, 1, 0), 1)),
        (
            "a partial-round state of entry 1",
            (entry_row(size, 20, 1), 0),
        ),
        (
            "a full-round square of entry 0",
            (entry_row(size, 60, 0), 5),
        ),
        (
            "the host_id capacity",
            (host_id_first_row(size), HOST_ID_COLUMNS[0]),
        ),
        (
            "the host_id final state",
            (host_id_output_row(size), HOST_ID_COLUMNS[1]),
        ),
    ] {
        let mut bad = grid.clone();
        bad.set(row, column, grid.get(row, column) + Fr::ONE);
        assert!(
            !vk.verify_raw(&instances, &prove(bad, &instances)),
            "{what} changed: accepted"
        );
    }
    // The commitment cell and its instance changed together: the binding to
    // the permutation's final state still catches it.
    let mut bad = grid.clone();
    let (row, column) = commitment_cell;
    bad.set(row, column, grid.get(row, column) + Fr::ONE);
    let mut changed = instances.clone();
    changed[instance_row(size, band::COMMITMENT, 1)] += Fr::ONE;
    assert!(!vk.verify_raw(&changed, &prove(bad, &changed)));
}
