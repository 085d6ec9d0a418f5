//! The halo2 circuit: `host_id = Poseidon(sk)` and
//! `commitment = Poseidon(chain_id + 2^64 * tokens, marketplace, job.hi,
//! job.lo, model.hi, model.lo, input.hi, input.lo, output.hi, output.lo,
//! host_id)`, with the public inputs and both outputs constrained to the
//! instance column. Circuit version 1 (still verified, see
//! [`CircuitVersion`]) has no `tokens`: its first input is `chain_id` alone.
//!
//! Every gate is a dedicated Poseidon step (no generic arithmetic): a full
//! round produces four S-box outputs per row, a partial-round gate evaluates
//! four partial rounds of the width-12 permutation (or two of the width-2 one)
//! at once. S-boxes are split as `a = x^2`, `y = a^2 * x` so that every gate
//! has degree at most 4, which keeps the extended domain at 4n. The layout is
//! described in [`layout`]; the algebra in [`crate::poseidon::schedule`].
//!
//! Round constants are fixed-column values. For each gate the constant of
//! the first S-box doubles as the gate's selector (round constants are never
//! zero; [`CircuitConstants::new`] checks it), which saves one fixed column per
//! gate.

#[cfg(test)]
mod forgery_tests;
pub mod layout;
#[cfg(test)]
pub(crate) mod tests;
pub mod uniqueness;
mod witness;

use std::sync::OnceLock;

use halo2_axiom::circuit::{Layouter, SimpleFloorPlanner, Value};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::plonk::{
    Advice, Circuit, Column, ConstraintSystem, Constraints, Error as PlonkError, Expression, Fixed,
    Instance, VirtualCells,
};
use halo2_axiom::poly::Rotation;

use crate::poseidon::schedule::Schedule;
use crate::poseidon::{self, pow5};
use crate::CircuitVersion;
use layout::*;

pub(crate) use witness::Grid;

/// Derived constants of both permutations, computed once.
#[derive(Debug)]
pub(crate) struct CircuitConstants {
    pub commitment: Schedule,
    pub host_id: Schedule,
}

impl CircuitConstants {
    fn new() -> Self {
        let constants = Self {
            commitment: Schedule::new(poseidon::commitment_params(), COMMITMENT_GROUP),
            host_id: Schedule::new(poseidon::host_id_params(), HOST_ID_GROUP),
        };
        // Values used as selectors must be non-zero, or the gate would be off.
        // This holds for the circomlib constants (checked here once, and in tests).
        for schedule in [&constants.commitment, &constants.host_id] {
            let selector_values = schedule
                .full_constants
                .iter()
                .flat_map(|c| c.iter().step_by(STATE_COLUMNS))
                .chain(schedule.partial_constants.iter().step_by(schedule.group));
            for value in selector_values {
                assert!(
                    bool::from(!value.is_zero()),
                    "a round constant used as selector is zero"
                );
            }
        }
        constants
    }

    /// The constants, derived on first use.
    pub fn get() -> &'static Self {
        static CONSTANTS: OnceLock<CircuitConstants> = OnceLock::new();
        CONSTANTS.get_or_init(Self::new)
    }
}

/// Columns of the circuit.
#[derive(Debug, Clone)]
pub struct CommitmentConfig {
    pub(crate) advice: [Column<Advice>; ADVICE_COLUMNS],
    /// Selector-and-constant of the commitment's full rounds, one per row of a block.
    pub(crate) full_round: [Column<Fixed>; BLOCK_ROWS],
    /// Round constants of the second to fourth S-box of a row.
    pub(crate) constants: [Column<Fixed>; STATE_COLUMNS - 1],
    /// Selector-and-constant of the commitment's partial-round groups.
    pub(crate) partial_group: Column<Fixed>,
    /// Selector of the commitment's round 0 (inputs bound to instances).
    pub(crate) input: Column<Fixed>,
    /// Selector-and-constant of the host_id full rounds.
    pub(crate) host_full_round: Column<Fixed>,
    /// Selector-and-constant of the host_id partial-round groups.
    pub(crate) host_partial_group: Column<Fixed>,
    /// Compressed selector of the linear bindings (values 1, 2, 3).
    pub(crate) binding: Column<Fixed>,
    pub(crate) instance: Column<Instance>,
}

impl CommitmentConfig {
    /// Allocates the columns, in the order every circuit of this crate
    /// allocates them (the column indices are part of the verifying key).
    pub(crate) fn new(meta: &mut ConstraintSystem<Fr>) -> Self {
        Self {
            advice: std::array::from_fn(|_| meta.advice_column()),
            full_round: std::array::from_fn(|_| meta.fixed_column()),
            constants: std::array::from_fn(|_| meta.fixed_column()),
            partial_group: meta.fixed_column(),
            input: meta.fixed_column(),
            host_full_round: meta.fixed_column(),
            host_partial_group: meta.fixed_column(),
            binding: meta.fixed_column(),
            instance: meta.instance_column(),
        }
    }

    /// The same columns with the advice columns permuted: advice `j` of the
    /// result is advice `columns[j]` of `self`. The gate builders address
    /// advice columns by index, so this moves a gate to other columns.
    pub(crate) fn with_advice_order(&self, columns: [usize; ADVICE_COLUMNS]) -> Self {
        Self {
            advice: columns.map(|c| self.advice[c]),
            ..self.clone()
        }
    }
}

/// Values of the compressed `binding` selector.
pub(crate) mod binding {
    pub const COMMITMENT_OUTPUT: u64 = 1;
    pub const HOST_ID_OUTPUT: u64 = 2;
    pub const HOST_ID_ROUND0: u64 = 3;
    pub const ALL: [u64; 3] = [COMMITMENT_OUTPUT, HOST_ID_OUTPUT, HOST_ID_ROUND0];
}

/// The circuit of one [`CircuitVersion`] (its `Circuit::Params`). Without a
/// witness it describes the constraint system only (key generation); with
/// one it assigns every cell (MockProver). The versions differ only in the
/// round-0 binding of the first commitment input (see [`layout::TOKENS_SHIFT`]).
#[derive(Debug, Clone, Default)]
pub struct CommitmentCircuit {
    grid: Option<Grid>,
    version: CircuitVersion,
}

impl CommitmentCircuit {
    /// The circuit of `version`, without a witness (key generation).
    pub fn for_version(version: CircuitVersion) -> Self {
        Self {
            grid: None,
            version,
        }
    }

    /// The version this circuit proves.
    pub fn version(&self) -> CircuitVersion {
        self.version
    }

    /// A circuit of `version` with its witness grid.
    #[cfg(test)]
    pub(crate) fn with_grid(grid: Grid, version: CircuitVersion) -> Self {
        Self {
            grid: Some(grid),
            version,
        }
    }
}

/// `2^TOKENS_SHIFT`, the factor of `tokens` in the first commitment input.
pub(crate) fn tokens_factor() -> Fr {
    Fr::from_u128(1u128 << TOKENS_SHIFT)
}

/// `sum coefficients[j] * terms[j] + constant`, skipping zero coefficients.
pub(crate) fn linear(
    coefficients: &[Fr],
    terms: &[Expression<Fr>],
    constant: Expression<Fr>,
) -> Expression<Fr> {
    coefficients
        .iter()
        .zip(terms)
        .filter(|(c, _)| bool::from(!c.is_zero()))
        .fold(constant, |acc, (c, term)| {
            acc + term.clone() * Expression::Constant(*c)
        })
}

/// The two constraints of an S-box `y = x^5` with auxiliary `a = x^2`.
pub(crate) fn sbox_constraints(
    name: &str,
    x: Expression<Fr>,
    a: Expression<Fr>,
    y: Expression<Fr>,
) -> [(String, Expression<Fr>); 2] {
    [
        (format!("{name}: a = x^2"), a.clone() - x.clone().square()),
        (format!("{name}: y = a^2 * x"), y - a.square() * x),
    ]
}

/// The Lagrange selector that is 1 where `column == value` and 0 where it
/// holds any other value of `binding::ALL` or zero.
pub(crate) fn binding_selector(column: Expression<Fr>, value: u64) -> Expression<Fr> {
    let mut numerator = Expression::Constant(Fr::ONE);
    let mut denominator = Fr::ONE;
    for other in std::iter::once(0).chain(binding::ALL) {
        if other != value {
            numerator = numerator * (column.clone() - Expression::Constant(Fr::from(other)));
            denominator *= Fr::from(value) - Fr::from(other);
        }
    }
    numerator * Expression::Constant(denominator.invert().unwrap_or(Fr::ZERO))
}

impl Circuit<Fr> for CommitmentCircuit {
    type Config = CommitmentConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = CircuitVersion;

    fn without_witnesses(&self) -> Self {
        Self::for_version(self.version)
    }

    fn params(&self) -> CircuitVersion {
        self.version
    }

    /// The current version's constraint system.
    fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
        Self::configure_with_params(meta, CircuitVersion::CURRENT)
    }

    fn configure_with_params(
        meta: &mut ConstraintSystem<Fr>,
        version: CircuitVersion,
    ) -> Self::Config {
        let config = CommitmentConfig::new(meta);
        meta.set_minimum_degree(DEGREE);
        let constants = CircuitConstants::get();
        configure_commitment_full_rounds(meta, &config, &constants.commitment, 1);
        configure_commitment_partial_groups(meta, &config, &constants.commitment, 1);
        // The public inputs sit at their own rows, read from the round-0 anchor.
        let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK) as i32;
        configure_commitment_input(meta, &config, version, 1, &|row| row as i32 - anchor);
        configure_host_id_full_rounds(meta, &config, &constants.host_id);
        configure_host_id_partial_groups(meta, &config, &constants.host_id);
        configure_bindings(meta, &config, constants);
        config
    }

    fn synthesize(
        &self,
        config: Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), PlonkError> {
        let constants = CircuitConstants::get();
        layouter.assign_region(
            || "poseidon",
            |mut region| {
                // Row 0 holds no fixed value; assigning its (zero) binding
                // selector anchors the region at row 0, so that MockProver
                // reports absolute rows.
                region.assign_fixed(config.binding, 0, Fr::ZERO);
                for (column, row, value) in fixed_assignments(&config, constants) {
                    region.assign_fixed(column, row, value);
                }
                if let Some(grid) = &self.grid {
                    for (c, column) in config.advice.iter().enumerate() {
                        for row in 0..USED_ROWS {
                            region.assign_advice(*column, row, Value::known(grid.get(row, c)));
                        }
                    }
                }
                Ok(())
            },
        )
    }
}

/// The constants of a row's S-boxes: the first is the gate's own selector
/// column (selector and constant at once), the others come from the shared
/// constant columns.
pub(crate) fn row_constants(
    meta: &mut VirtualCells<'_, Fr>,
    config: &CommitmentConfig,
    selector: &Expression<Fr>,
    count: usize,
) -> Vec<Expression<Fr>> {
    std::iter::once(selector.clone())
        .chain(
            config.constants[..count - 1]
                .iter()
                .map(|c| meta.query_fixed(*c, Rotation::cur())),
        )
        .collect()
}

/// Constraints of full-round S-boxes: for each `(i, a, y)`, `y = (M_i . previous + c)^5`
/// through `a = x^2`, with the row's constants in order.
pub(crate) fn full_round_constraints(
    mds: &[Vec<Fr>],
    previous: &[Expression<Fr>],
    constants: Vec<Expression<Fr>>,
    outputs: impl IntoIterator<Item = (usize, Expression<Fr>, Expression<Fr>)>,
) -> Vec<(String, Expression<Fr>)> {
    outputs
        .into_iter()
        .zip(constants)
        .flat_map(|((i, a, y), constant)| {
            let x = linear(&mds[i], previous, constant);
            sbox_constraints(&format!("element {i}"), x, a, y)
        })
        .collect()
}

/// Constraints of one group of partial rounds (see `Schedule`): each S-box
/// input is a fixed combination of the input state and the earlier S-box
/// outputs `ys`, and the output state is a fixed combination of both.
pub(crate) fn partial_group_constraints(
    schedule: &Schedule,
    input: &[Expression<Fr>],
    output: Vec<Expression<Fr>>,
    ys: &[Expression<Fr>],
    squares: Vec<Expression<Fr>>,
    constants: Vec<Expression<Fr>>,
) -> Vec<(String, Expression<Fr>)> {
    let mut constraints = Vec::new();
    for (q, (a, constant)) in squares.into_iter().zip(constants).enumerate() {
        let x = linear(&schedule.group_alpha[q], input, constant);
        let x = linear(&schedule.group_beta[q], &ys[..q], x);
        constraints.extend(sbox_constraints(
            &format!("partial round {q}"),
            x,
            a,
            ys[q].clone(),
        ));
    }
    for (i, out) in output.into_iter().enumerate() {
        let expected = linear(
            &schedule.group_gamma[i],
            input,
            Expression::Constant(Fr::ZERO),
        );
        let expected = linear(&schedule.group_delta[i], ys, expected);
        constraints.push((format!("state element {i}"), out - expected));
    }
    constraints
}

/// The twelve state elements of a commitment block whose first row is at
/// `offset` rows of the permutation (each `stride` rows of the table: 1 in
/// the single circuit, the batch size in the batch circuit).
pub(crate) fn block_state(
    meta: &mut VirtualCells<'_, Fr>,
    config: &CommitmentConfig,
    offset: i32,
    stride: i32,
) -> Vec<Expression<Fr>> {
    (0..STATE_COLUMNS * BLOCK_ROWS)
        .map(|j| {
            let (row, col) = state_cell(j);
            meta.query_advice(config.advice[col], Rotation((row as i32 + offset) * stride))
        })
        .collect()
}

/// Full rounds of the commitment: the gate anchored at row `p` of a block
/// computes elements `4p..4p+4` from the twelve elements of the previous block.
/// Every rotation is multiplied by `stride` (1 in the single circuit).
pub(crate) fn configure_commitment_full_rounds(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    schedule: &Schedule,
    stride: i32,
) {
    for p in 0..BLOCK_ROWS {
        meta.create_gate(format!("commitment full round, block row {p}"), |meta| {
            let selector = meta.query_fixed(config.full_round[p], Rotation::cur());
            let previous = block_state(meta, config, -(BLOCK_ROWS as i32) - p as i32, stride);
            let constants = row_constants(meta, config, &selector, STATE_COLUMNS);
            let outputs: Vec<_> = (0..STATE_COLUMNS)
                .map(|k| {
                    let a = meta.query_advice(config.advice[STATE_COLUMNS + k], Rotation::cur());
                    let y = meta.query_advice(config.advice[k], Rotation::cur());
                    (p * STATE_COLUMNS + k, a, y)
                })
                .collect();
            Constraints::with_selector(
                selector,
                full_round_constraints(&schedule.mds, &previous, constants, outputs),
            )
        });
    }
}

/// Partial rounds of the commitment, four per block: S-box outputs on the
/// middle row of columns 4..8, their squares on the last row, and the state
/// after the four rounds in the block's state cells. Every rotation is
/// multiplied by `stride`.
pub(crate) fn configure_commitment_partial_groups(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    schedule: &Schedule,
    stride: i32,
) {
    meta.create_gate("commitment partial rounds", |meta| {
        let selector = meta.query_fixed(config.partial_group, Rotation::cur());
        let block = BLOCK_ROWS as i32;
        let input = block_state(meta, config, 1 - 2 * block, stride);
        let output = block_state(meta, config, 1 - block, stride);
        let in_columns = |meta: &mut VirtualCells<'_, Fr>, rotation: i32| -> Vec<Expression<Fr>> {
            (0..schedule.group)
                .map(|q| {
                    meta.query_advice(
                        config.advice[STATE_COLUMNS + q],
                        Rotation(rotation * stride),
                    )
                })
                .collect()
        };
        let ys = in_columns(meta, -1);
        let squares = in_columns(meta, 0);
        let constants = row_constants(meta, config, &selector, schedule.group);
        Constraints::with_selector(
            selector,
            partial_group_constraints(schedule, &input, output, &ys, squares, constants),
        )
    });
}

/// Round 0 of the commitment: the state is `[0, inputs...]`, so element 0 is
/// a constant and the public elements are S-boxes of their instances. In
/// version 2 element 1's input is `chain_id + 2^64 * tokens`.
///
/// Advice rotations are multiplied by `stride`; `instance_rotation` gives
/// the rotation at which the public input of single-circuit instance row
/// `row` ([`instance`]) is read.
pub(crate) fn configure_commitment_input(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    version: CircuitVersion,
    stride: i32,
    instance_rotation: &dyn Fn(usize) -> i32,
) {
    let constants = &CircuitConstants::get().commitment.full_constants[0];
    meta.create_gate("commitment round 0", |meta| {
        let selector = meta.query_fixed(config.input, Rotation::cur());
        let state = block_state(meta, config, 1 - BLOCK_ROWS as i32, stride);
        let mut constraints = vec![(
            "capacity".to_string(),
            state[0].clone() - Expression::Constant(pow5(constants[0])),
        )];
        for (i, instance_row, aux_rotation, aux_column) in COMMITMENT_BOUND_INPUTS {
            let mut public =
                meta.query_instance(config.instance, Rotation(instance_rotation(instance_row)));
            if version.binds_tokens() && instance_row == instance::CHAIN_ID {
                let tokens = meta.query_instance(
                    config.instance,
                    Rotation(instance_rotation(instance::TOKENS)),
                );
                public = public + tokens * Expression::Constant(tokens_factor());
            }
            let x = public + Expression::Constant(constants[i]);
            let a = meta.query_advice(config.advice[aux_column], Rotation(aux_rotation * stride));
            constraints.extend(sbox_constraints(
                &format!("public input {i}"),
                x,
                a,
                state[i].clone(),
            ));
        }
        Constraints::with_selector(selector, constraints)
    });
}

/// The `count` cells of columns `first..first + count` at `rotation`.
pub(crate) fn row_cells(
    meta: &mut VirtualCells<'_, Fr>,
    config: &CommitmentConfig,
    first: usize,
    count: usize,
    rotation: Rotation,
) -> Vec<Expression<Fr>> {
    (first..first + count)
        .map(|c| meta.query_advice(config.advice[c], rotation))
        .collect()
}

/// Full rounds of the host_id permutation, one per row: state in columns
/// 0..2, squares of the S-box inputs in 2..4.
pub(crate) fn configure_host_id_full_rounds(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    schedule: &Schedule,
) {
    meta.create_gate("host_id full round", |meta| {
        let selector = meta.query_fixed(config.host_full_round, Rotation::cur());
        let t = schedule.width;
        let previous = row_cells(meta, config, 0, t, Rotation::prev());
        let squares = row_cells(meta, config, t, t, Rotation::cur());
        let ys = row_cells(meta, config, 0, t, Rotation::cur());
        let constants = row_constants(meta, config, &selector, t);
        let outputs = squares
            .into_iter()
            .zip(ys)
            .enumerate()
            .map(|(i, (a, y))| (i, a, y));
        Constraints::with_selector(
            selector,
            full_round_constraints(&schedule.mds, &previous, constants, outputs),
        )
    });
}

/// Partial rounds of the host_id permutation, two per row: state in columns
/// 0..2, S-box outputs in 2..4, their squares in 4..6.
pub(crate) fn configure_host_id_partial_groups(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    schedule: &Schedule,
) {
    meta.create_gate("host_id partial rounds", |meta| {
        let selector = meta.query_fixed(config.host_partial_group, Rotation::cur());
        let (t, g) = (schedule.width, schedule.group);
        let input = row_cells(meta, config, 0, t, Rotation::prev());
        let output = row_cells(meta, config, 0, t, Rotation::cur());
        let ys = row_cells(meta, config, t, g, Rotation::cur());
        let squares = row_cells(meta, config, t + g, g, Rotation::cur());
        let constants = row_constants(meta, config, &selector, g);
        Constraints::with_selector(
            selector,
            partial_group_constraints(schedule, &input, output, &ys, squares, constants),
        )
    });
}

/// Linear bindings under one compressed selector: at the instance rows, both
/// outputs equal their instances; at the host_id round 0, the capacity
/// element is its constant and the commitment cell is element 0 of the
/// commitment's final state.
fn configure_bindings(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    constants: &CircuitConstants,
) {
    meta.create_gate("bindings", |meta| {
        let column = meta.query_fixed(config.binding, Rotation::cur());
        let instance_here = meta.query_instance(config.instance, Rotation::cur());
        let (out_row, out_col) = COMMITMENT_OUTPUT_CELL;

        // At row instance::COMMITMENT: the commitment cell, far below.
        let commitment_cell = meta.query_advice(
            config.advice[out_col],
            Rotation(out_row as i32 - instance::COMMITMENT as i32),
        );
        // At row instance::HOST_ID: the host_id final state, far below.
        let reach = HOST_ID_OUTPUT_ROW as i32 - instance::HOST_ID as i32;
        let host_final: Vec<Expression<Fr>> = (0..constants.host_id.width)
            .map(|j| meta.query_advice(config.advice[j], Rotation(reach)))
            .collect();
        let host_id = linear(
            &constants.host_id.mds[0],
            &host_final,
            Expression::Constant(Fr::ZERO),
        );

        // At the host_id round 0 row: the last commitment block, just above.
        let last_block = block_row(COMMITMENT_LAST_BLOCK) as i32 - out_row as i32;
        let commitment_state = block_state(meta, config, last_block, 1);
        let commitment = linear(
            &constants.commitment.mds[0],
            &commitment_state,
            Expression::Constant(Fr::ZERO),
        );
        let here = |meta: &mut VirtualCells<'_, Fr>, col: usize| {
            meta.query_advice(config.advice[col], Rotation::cur())
        };
        let capacity = Expression::Constant(pow5(constants.host_id.full_constants[0][0]));
        let at_round0 = binding_selector(column.clone(), binding::HOST_ID_ROUND0);
        vec![
            (
                "commitment output = instance",
                binding_selector(column.clone(), binding::COMMITMENT_OUTPUT)
                    * (commitment_cell - instance_here.clone()),
            ),
            (
                "host_id output = instance",
                binding_selector(column, binding::HOST_ID_OUTPUT) * (host_id - instance_here),
            ),
            (
                "host_id capacity",
                at_round0.clone() * (here(meta, 0) - capacity),
            ),
            (
                "commitment cell = final state element 0",
                at_round0 * (here(meta, out_col) - commitment),
            ),
        ]
    });
}

/// A fixed-column value: (column, row, value).
pub(crate) type FixedCell = (Column<Fixed>, usize, Fr);

/// The constants of one row of S-boxes at every row of `rows`: the first in
/// the gate's own `selector` column, the others in the shared constant
/// columns.
fn put_constants(
    config: &CommitmentConfig,
    cells: &mut Vec<FixedCell>,
    rows: std::ops::Range<usize>,
    selector: Column<Fixed>,
    values: &[Fr],
) {
    for row in rows {
        cells.push((selector, row, values[0]));
        for (column, value) in config.constants.iter().zip(&values[1..]) {
            cells.push((*column, row, *value));
        }
    }
}

/// The fixed values of the commitment permutation (round constants and the
/// round-0 selector); the values of permutation row `r` are written at every
/// table row of `rows(r)` (`r..r + 1` in the single circuit; in the batch
/// circuit the rows of all entries).
pub(crate) fn commitment_fixed_cells(
    config: &CommitmentConfig,
    constants: &CircuitConstants,
    rows: &dyn Fn(usize) -> std::ops::Range<usize>,
) -> Vec<FixedCell> {
    let mut cells = Vec::new();
    let commitment = &constants.commitment;
    for (round, block) in (1..).zip(COMMITMENT_FULL_BLOCKS) {
        for p in 0..BLOCK_ROWS {
            let values =
                &commitment.full_constants[round][p * STATE_COLUMNS..(p + 1) * STATE_COLUMNS];
            put_constants(
                config,
                &mut cells,
                rows(block_row(block) + p),
                config.full_round[p],
                values,
            );
        }
    }
    for (g, values) in commitment
        .partial_constants
        .chunks(commitment.group)
        .enumerate()
    {
        put_constants(
            config,
            &mut cells,
            rows(last_row_of_block(COMMITMENT_FIRST_GROUP_BLOCK + g)),
            config.partial_group,
            values,
        );
    }
    for row in rows(last_row_of_block(COMMITMENT_INPUT_BLOCK)) {
        cells.push((config.input, row, Fr::ONE));
    }
    cells
}

/// The round constants of the host_id permutation, its rows moved down by
/// `shift` (0 in the single circuit).
pub(crate) fn host_id_fixed_cells(
    config: &CommitmentConfig,
    constants: &CircuitConstants,
    shift: usize,
) -> Vec<FixedCell> {
    let mut cells = Vec::new();
    let host = &constants.host_id;
    for (round, row) in (1..).zip(host_id_full_rows()) {
        put_constants(
            config,
            &mut cells,
            row + shift..row + shift + 1,
            config.host_full_round,
            &host.full_constants[round],
        );
    }
    for (g, values) in host.partial_constants.chunks(host.group).enumerate() {
        let row = host_id_group_row(g) + shift;
        put_constants(
            config,
            &mut cells,
            row..row + 1,
            config.host_partial_group,
            values,
        );
    }
    cells
}

/// Every fixed-column value of the circuit: (column, row, value).
fn fixed_assignments(config: &CommitmentConfig, constants: &CircuitConstants) -> Vec<FixedCell> {
    let mut cells = commitment_fixed_cells(config, constants, &|row| row..row + 1);
    cells.extend(host_id_fixed_cells(config, constants, 0));
    cells.push((
        config.binding,
        instance::COMMITMENT,
        Fr::from(binding::COMMITMENT_OUTPUT),
    ));
    cells.push((
        config.binding,
        instance::HOST_ID,
        Fr::from(binding::HOST_ID_OUTPUT),
    ));
    cells.push((
        config.binding,
        HOST_ID_FIRST_ROW,
        Fr::from(binding::HOST_ID_ROUND0),
    ));
    cells
}

/// The proving key under the development SRS, built once for the tests.
#[cfg(test)]
pub(crate) fn test_proving_key() -> &'static crate::keys::ProvingKey {
    test_proving_key_of(CircuitVersion::CURRENT)
}

/// The proving key of `version` under the development SRS, built once.
#[cfg(test)]
pub(crate) fn test_proving_key_of(version: CircuitVersion) -> &'static crate::keys::ProvingKey {
    static PKS: OnceLock<Vec<crate::keys::ProvingKey>> = OnceLock::new();
    let pks = PKS.get_or_init(|| {
        let srs = std::sync::Arc::new(crate::srs::Srs::insecure_dev());
        CircuitVersion::ALL
            .into_iter()
            .map(|v| {
                crate::keys::ProvingKey::build_version(srs.clone(), v).expect("key generation")
            })
            .collect()
    });
    &pks[CircuitVersion::ALL
        .iter()
        .position(|v| *v == version)
        .unwrap_or_default()]
}

/// The circuit's fixed columns (index order), as key generation assigns them
/// (the same for every version).
pub(crate) fn expected_fixed_columns(version: CircuitVersion) -> Vec<Vec<Fr>> {
    let mut cs = ConstraintSystem::<Fr>::default();
    let config = CommitmentCircuit::configure_with_params(&mut cs, version);
    let mut columns = vec![vec![Fr::ZERO; 1 << K]; cs.num_fixed_columns()];
    for (column, row, value) in fixed_assignments(&config, CircuitConstants::get()) {
        columns[column.index()][row] = value;
    }
    columns
}
