//! MockProver soundness tests: the honest witness passes, and every
//! deviation (any advice cell, any public input, another host's secret) is
//! caught by a named constraint.

use halo2_axiom::dev::{FailureLocation, MockProver, VerifyFailure};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::plonk::{Circuit, ConstraintSystem};

use super::layout::*;
use super::{tokens_factor, CircuitConstants, CommitmentCircuit, Grid};
use crate::error::InputError;
use crate::poseidon;
use crate::statement::Instance;
use crate::CircuitVersion;

/// Commitment inputs (with `host_id` last), the secret, the instance column
/// and the circuit version.
struct Fixture {
    inputs: [Fr; 11],
    sk: Fr,
    instances: Vec<Fr>,
    version: CircuitVersion,
}

/// A current-version (2) fixture.
fn fixture(seed: u64) -> Fixture {
    fixture_of(seed, CircuitVersion::CURRENT)
}

/// A fixture of `version`: in version 2 input 0 packs the chain id and the
/// token count, which are public inputs 0 and 6.
fn fixture_of(seed: u64, version: CircuitVersion) -> Fixture {
    let sk = Fr::from(seed) * Fr::from(0x9e37_79b9_7f4a_7c15u64) + Fr::from(3);
    let host_id = poseidon::hash1(sk);
    let mut inputs: [Fr; 11] =
        std::array::from_fn(|i| Fr::from(seed * 1000 + i as u64 * 77 + 5).square());
    let chain_id = Fr::from(seed * 31 + 84532);
    let tokens = Fr::from(seed * 1_000_003 + 7);
    inputs[0] = if version.binds_tokens() {
        chain_id + tokens * tokens_factor()
    } else {
        chain_id
    };
    inputs[10] = host_id;
    let commitment = poseidon::hash11(&inputs);
    let mut instances = vec![
        chain_id, inputs[1], inputs[2], inputs[3], host_id, commitment,
    ];
    if version.binds_tokens() {
        instances.push(tokens);
    }
    Fixture {
        inputs,
        sk,
        instances,
        version,
    }
}

fn run(grid: Grid, instances: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    run_version(grid, instances, CircuitVersion::CURRENT)
}

fn run_version(
    grid: Grid,
    instances: &[Fr],
    version: CircuitVersion,
) -> Result<(), Vec<VerifyFailure>> {
    let circuit = CommitmentCircuit::with_grid(grid, version);
    MockProver::run(K, &circuit, vec![instances.to_vec()])
        .expect("mock prover runs")
        .verify()
}

/// The (gate name, constraint name, row) of each unsatisfied constraint.
pub(crate) fn failed_constraints(failures: &[VerifyFailure]) -> Vec<(String, String, usize)> {
    failures
        .iter()
        .map(|failure| match failure {
            VerifyFailure::ConstraintNotSatisfied {
                constraint,
                location,
                ..
            } => {
                let text = constraint.to_string();
                let row = match location {
                    FailureLocation::InRegion { offset, .. } => *offset,
                    FailureLocation::OutsideRegion { row } => *row,
                };
                (text, String::new(), row)
            }
            other => panic!("expected only constraint failures, got {other}"),
        })
        .map(|(text, _, row)| {
            // Display: "Constraint N ('name') in gate M ('gate name')".
            let parts: Vec<&str> = text.split('\'').collect();
            (
                parts.get(3).copied().unwrap_or_default().to_string(),
                parts.get(1).copied().unwrap_or_default().to_string(),
                row,
            )
        })
        .collect()
}

pub(crate) fn assert_fails_with(
    failures: &[VerifyFailure],
    gate: &str,
    constraint: &str,
    row: usize,
) {
    let found = failed_constraints(failures);
    assert!(
        found
            .iter()
            .any(|(g, c, r)| g == gate && c == constraint && *r == row),
        "expected '{constraint}' in gate '{gate}' at row {row}; failures: {found:?}"
    );
}

#[test]
fn honest_witness_satisfies_every_constraint() {
    for version in CircuitVersion::ALL {
        for seed in 0..3 {
            let f = fixture_of(seed, version);
            run_version(Grid::build(&f.inputs, f.sk), &f.instances, f.version)
                .unwrap_or_else(|e| panic!("version {version}, seed {seed}: {e:?}"));
        }
    }
}

#[test]
fn a_witness_of_one_version_fails_the_other() {
    for (made, checked) in [
        (CircuitVersion::V1, CircuitVersion::V2),
        (CircuitVersion::V2, CircuitVersion::V1),
    ] {
        let f = fixture_of(5, made);
        let mut instances = f.instances.clone();
        // A version 2 circuit reads tokens (zero if absent); the grid of a
        // version 1 statement then still fits only if tokens are 0, so
        // claim a non-zero count.
        instances.resize(CircuitVersion::V2.instance_count(), Fr::from(9));
        let failures = run_version(Grid::build(&f.inputs, f.sk), &instances, checked).unwrap_err();
        assert_fails_with(
            &failures,
            "commitment round 0",
            "public input 1: y = a^2 * x",
            last_row_of_block(COMMITMENT_INPUT_BLOCK),
        );
    }
}

#[test]
fn changing_tokens_fails_and_names_the_first_input() {
    let f = fixture(6);
    let grid = Grid::build(&f.inputs, f.sk);
    for delta in [Fr::ONE, -Fr::ONE, tokens_factor()] {
        let mut instances = f.instances.clone();
        instances[instance::TOKENS] += delta;
        assert_fails_with(
            &run(grid.clone(), &instances).unwrap_err(),
            "commitment round 0",
            "public input 1: y = a^2 * x",
            last_row_of_block(COMMITMENT_INPUT_BLOCK),
        );
    }
}

#[test]
fn tokens_at_or_above_2_64_are_refused_by_the_instance_parser() {
    let f = fixture(7);
    for tokens in [tokens_factor(), tokens_factor() + Fr::ONE, -Fr::ONE] {
        let mut instances = f.instances.clone();
        instances[instance::TOKENS] = tokens;
        assert_eq!(
            Instance::from_field_elements(&instances),
            Err(InputError::InstanceRange {
                index: instance::TOKENS,
                what: "tokens"
            })
        );
    }
    let mut instances = f.instances.clone();
    instances[instance::TOKENS] = Fr::from(u64::MAX);
    let parsed = Instance::from_field_elements(&instances).unwrap();
    assert_eq!(parsed.tokens, Some(u64::MAX));
    assert_eq!(parsed.to_field_elements(), instances);
}

#[test]
fn every_assigned_advice_cell_is_constrained() {
    let f = fixture(1);
    let grid = Grid::build(&f.inputs, f.sk);
    let used = grid.used_cells();
    // Every row the layout claims holds something, and nothing beyond.
    assert!(used.iter().all(|(row, _)| *row < USED_ROWS));
    assert!(used.iter().any(|(row, _)| *row == USED_ROWS - 1));
    assert!(used.len() > 600, "layout assigns {} cells", used.len());
    for &(row, column) in &used {
        for delta in [Fr::ONE, -grid.get(row, column)] {
            if delta == Fr::ZERO {
                continue;
            }
            let mut bad = grid.clone();
            bad.set(row, column, grid.get(row, column) + delta);
            let failures = run(bad, &f.instances)
                .expect_err(&format!("changing cell ({row}, {column}) must fail"));
            // Only constraint failures, never e.g. an unassigned-cell complaint.
            failed_constraints(&failures);
        }
    }
}

#[test]
fn every_public_input_is_bound() {
    for version in CircuitVersion::ALL {
        let f = fixture_of(2, version);
        let grid = Grid::build(&f.inputs, f.sk);
        for index in 0..version.instance_count() {
            for delta in [Fr::ONE, -Fr::ONE, Fr::from(1u64 << 40)] {
                let mut instances = f.instances.clone();
                instances[index] += delta;
                assert!(
                    run_version(grid.clone(), &instances, version).is_err(),
                    "version {version}: instance {index} + {delta:?} accepted"
                );
            }
        }
    }
}

#[test]
fn another_hosts_secret_fails_for_this_host_id() {
    let f = fixture(3);
    let other_sk = f.sk + Fr::ONE;
    let failures = run(Grid::build(&f.inputs, other_sk), &f.instances).unwrap_err();
    assert_fails_with(
        &failures,
        "bindings",
        "host_id output = instance",
        instance::HOST_ID,
    );
    // The other host's own id does verify with its own secret.
    let mut inputs = f.inputs;
    inputs[10] = poseidon::hash1(other_sk);
    let commitment = poseidon::hash11(&inputs);
    let mut instances = f.instances.clone();
    instances[instance::HOST_ID] = inputs[10];
    instances[instance::COMMITMENT] = commitment;
    run(Grid::build(&inputs, other_sk), &instances).unwrap();
}

#[test]
fn failures_name_the_constraint_that_caught_them() {
    let f = fixture(4);
    let grid = Grid::build(&f.inputs, f.sk);
    let mutate = |row: usize, column: usize| {
        let mut bad = grid.clone();
        bad.set(row, column, grid.get(row, column) + Fr::ONE);
        run(bad, &f.instances).unwrap_err()
    };
    // A full-round S-box output and its auxiliary square.
    let block = COMMITMENT_FULL_BLOCKS[0];
    assert_fails_with(
        &mutate(block_row(block) + 1, 2),
        "commitment full round, block row 1",
        "element 6: y = a^2 * x",
        block_row(block) + 1,
    );
    assert_fails_with(
        &mutate(block_row(block), STATE_COLUMNS + 3),
        "commitment full round, block row 0",
        "element 3: a = x^2",
        block_row(block),
    );
    // A partial-round group: state element, S-box output, square.
    let group = last_row_of_block(COMMITMENT_FIRST_GROUP_BLOCK + 5);
    assert_fails_with(
        &mutate(group - 1, 1),
        "commitment partial rounds",
        "state element 5",
        group,
    );
    assert_fails_with(
        &mutate(group - 1, STATE_COLUMNS + 2),
        "commitment partial rounds",
        "partial round 2: y = a^2 * x",
        group,
    );
    assert_fails_with(
        &mutate(group, STATE_COLUMNS),
        "commitment partial rounds",
        "partial round 0: a = x^2",
        group,
    );
    // Round 0: a public input's S-box and the capacity constant.
    let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK);
    assert_fails_with(
        &mutate(0, 1),
        "commitment round 0",
        "public input 1: y = a^2 * x",
        anchor,
    );
    assert_fails_with(&mutate(0, 0), "commitment round 0", "capacity", anchor);
    // A private input is caught by the next round, which consumes it.
    let failures = mutate(1, 1);
    assert!(failed_constraints(&failures)
        .iter()
        .all(|(g, _, _)| g.starts_with("commitment full round")));
    // The commitment output and the host_id permutation.
    let last = last_row_of_block(COMMITMENT_LAST_BLOCK);
    assert_fails_with(
        &mutate(last, 0),
        "bindings",
        "commitment cell = final state element 0",
        COMMITMENT_OUTPUT_CELL.0,
    );
    assert_fails_with(
        &mutate(COMMITMENT_OUTPUT_CELL.0, COMMITMENT_OUTPUT_CELL.1),
        "bindings",
        "commitment output = instance",
        instance::COMMITMENT,
    );
    assert_fails_with(
        &mutate(HOST_ID_OUTPUT_ROW, 1),
        "bindings",
        "host_id output = instance",
        instance::HOST_ID,
    );
    let row = host_id_group_row(10);
    assert_fails_with(
        &mutate(row, 0),
        "host_id partial rounds",
        "state element 0",
        row,
    );
    assert_fails_with(
        &mutate(HOST_ID_FIRST_ROW, 0),
        "bindings",
        "host_id capacity",
        HOST_ID_FIRST_ROW,
    );
    let row = HOST_ID_FIRST_ROW + 2;
    assert_fails_with(
        &mutate(row, 3),
        "host_id full round",
        "element 1: a = x^2",
        row,
    );
    // The commitment instance itself.
    let mut instances = f.instances.clone();
    instances[instance::COMMITMENT] += Fr::ONE;
    let failures = run(grid.clone(), &instances).unwrap_err();
    assert_fails_with(
        &failures,
        "bindings",
        "commitment output = instance",
        instance::COMMITMENT,
    );
}

#[test]
fn constraint_system_has_the_pinned_shape() {
    for version in CircuitVersion::ALL {
        check_shape(version);
    }
}

fn check_shape(version: CircuitVersion) {
    let mut cs = ConstraintSystem::<Fr>::default();
    CommitmentCircuit::configure_with_params(&mut cs, version);
    assert_eq!(cs.degree(), DEGREE);
    let max_gate_degree = cs
        .gates()
        .iter()
        .flat_map(|g| g.polynomials())
        .map(|p| p.degree())
        .max()
        .unwrap();
    assert!(
        max_gate_degree <= DEGREE,
        "a gate has degree {max_gate_degree}"
    );
    assert_eq!(cs.num_advice_columns(), ADVICE_COLUMNS);
    assert_eq!(cs.num_instance_columns(), 1);
    assert!(
        cs.permutation().get_columns().is_empty(),
        "no copy constraints: wiring is by rotation"
    );
    assert!(cs.lookups().is_empty());
    let usable_rows = (1usize << K) - (cs.blinding_factors() + 1);
    assert!(
        USED_ROWS <= usable_rows,
        "layout uses {USED_ROWS} rows, {usable_rows} usable"
    );
    // Instance queries stay near the instance rows (see layout docs): the
    // v1 rows at rotations -2..=2 of the round-0 anchor and the bindings;
    // tokens (row 6, version 2) at rotation 4 from the anchor at row 2.
    let mut rotations: Vec<i32> = cs.instance_queries().iter().map(|(_, r)| r.0).collect();
    rotations.sort();
    let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK) as i32;
    let mut expected: Vec<i32> = (-2..=2).collect();
    if version.binds_tokens() {
        expected.push(instance::TOKENS as i32 - anchor);
    }
    assert_eq!(rotations, expected, "version {version} instance rotations");
}

#[test]
fn constants_used_as_selectors_are_nonzero() {
    let constants = CircuitConstants::get();
    for schedule in [&constants.commitment, &constants.host_id] {
        assert!(schedule
            .full_constants
            .iter()
            .flatten()
            .all(|c| !bool::from(c.is_zero())));
        assert!(schedule
            .partial_constants
            .iter()
            .all(|c| !bool::from(c.is_zero())));
    }
}

#[test]
fn schedule_reproduces_the_reference_permutation() {
    let constants = CircuitConstants::get();
    for seed in 0..5u64 {
        let f = fixture(seed);
        assert_eq!(
            constants.commitment.trace(&f.inputs).output,
            poseidon::hash11(&f.inputs)
        );
        assert_eq!(
            constants.host_id.trace(&[f.sk]).output,
            poseidon::hash1(f.sk)
        );
    }
}
