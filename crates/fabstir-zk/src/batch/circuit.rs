//! The batch circuit: the single circuit's gates in the stride layout of
//! [`super::layout`], plus its own bindings.

use halo2_axiom::circuit::{Layouter, SimpleFloorPlanner, Value};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::plonk::{Circuit, ConstraintSystem, Error as PlonkError, Expression};
use halo2_axiom::poly::Rotation;

use super::layout::*;
use crate::circuit::layout::{
    last_row_of_block, ADVICE_COLUMNS, COMMITMENT_INPUT_BLOCK, COMMITMENT_LAST_BLOCK, DEGREE,
};
use crate::circuit::{
    binding_selector, block_state, commitment_fixed_cells, configure_commitment_full_rounds,
    configure_commitment_input, configure_commitment_partial_groups, configure_host_id_full_rounds,
    configure_host_id_partial_groups, host_id_fixed_cells, linear, CircuitConstants,
    CommitmentConfig, FixedCell, Grid,
};
use crate::poseidon::pow5;
use crate::CircuitVersion;

/// The batch circuit for one [`BatchSize`] (its `Circuit::Params`). Without
/// a witness it describes the constraint system (key generation); with one
/// it assigns every cell (MockProver).
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchCircuit {
    size: BatchSize,
    grid: Option<Grid>,
}

impl BatchCircuit {
    /// The circuit of `size`, without a witness.
    pub fn new(size: BatchSize) -> Self {
        Self { size, grid: None }
    }

    /// The circuit of `size` with its witness grid.
    #[cfg(test)]
    pub fn with_grid(size: BatchSize, grid: Grid) -> Self {
        Self {
            size,
            grid: Some(grid),
        }
    }
}

impl Circuit<Fr> for BatchCircuit {
    type Config = CommitmentConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = BatchSize;

    fn without_witnesses(&self) -> Self {
        Self::new(self.size)
    }

    fn params(&self) -> BatchSize {
        self.size
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
        Self::configure_with_params(meta, BatchSize::default())
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, size: BatchSize) -> Self::Config {
        let config = CommitmentConfig::new(meta);
        meta.set_minimum_degree(DEGREE);
        let constants = CircuitConstants::get();
        let n = size.get() as i32;
        configure_commitment_full_rounds(meta, &config, &constants.commitment, n);
        configure_commitment_partial_groups(meta, &config, &constants.commitment, n);
        // Entry i's round 0 is anchored at row 2N + i; band b is at b*N + i.
        let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK) as i32;
        configure_commitment_input(meta, &config, CircuitVersion::V2, n, &|row| {
            (band_of(row) as i32 - anchor) * n
        });
        let host = config.with_advice_order(HOST_ID_COLUMNS);
        configure_host_id_full_rounds(meta, &host, &constants.host_id);
        configure_host_id_partial_groups(meta, &host, &constants.host_id);
        configure_bindings(meta, &config, constants, size);
        config
    }

    fn synthesize(
        &self,
        config: Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), PlonkError> {
        let size = self.size;
        layouter.assign_region(
            || "batch",
            |mut region| {
                // Row 0 holds the binding selector of entry 0's commitment,
                // assigned first: it anchors the region at row 0.
                for (column, row, value) in fixed_assignments(&config, size) {
                    region.assign_fixed(column, row, value);
                }
                if let Some(grid) = &self.grid {
                    for (c, column) in config.advice.iter().enumerate() {
                        for row in 0..size.used_rows() {
                            region.assign_advice(*column, row, Value::known(grid.get(row, c)));
                        }
                    }
                }
                Ok(())
            },
        )
    }
}

/// The batch bindings under the compressed selector (see
/// [`super::layout`]).
fn configure_bindings(
    meta: &mut ConstraintSystem<Fr>,
    config: &CommitmentConfig,
    constants: &CircuitConstants,
    size: BatchSize,
) {
    let n = size.get() as i32;
    meta.create_gate("batch bindings", |meta| {
        let column = meta.query_fixed(config.binding, Rotation::cur());
        let instance_here = meta.query_instance(config.instance, Rotation::cur());
        let (cell_row, cell_column) = COMMITMENT_CELL;
        // In the commitment band: the commitment cell of the same row.
        let cell_here = meta.query_advice(config.advice[cell_column], Rotation::cur());

        // At the last stride row: the commitment cell far above, and the
        // last block just above.
        let anchor = COMMITMENT_CELL_ANCHOR as i32;
        let cell_above = meta.query_advice(
            config.advice[cell_column],
            Rotation((cell_row as i32 - anchor) * n),
        );
        let last_block = crate::circuit::layout::block_row(COMMITMENT_LAST_BLOCK) as i32 - anchor;
        let commitment = linear(
            &constants.commitment.mds[0],
            &block_state(meta, config, last_block, n),
            Expression::Constant(Fr::ZERO),
        );

        // At entry 0's host_id copy: the host_id final state and round 0,
        // far below.
        let at = host_id_binding_row(size) as i32;
        let host_columns: Vec<usize> = HOST_ID_COLUMNS[..constants.host_id.width].to_vec();
        let reach = host_id_output_row(size) as i32 - at;
        let host_final: Vec<Expression<Fr>> = host_columns
            .iter()
            .map(|c| meta.query_advice(config.advice[*c], Rotation(reach)))
            .collect();
        let host_id = linear(
            &constants.host_id.mds[0],
            &host_final,
            Expression::Constant(Fr::ZERO),
        );
        let capacity_cell = meta.query_advice(
            config.advice[host_columns[0]],
            Rotation(host_id_first_row(size) as i32 - at),
        );
        let capacity = Expression::Constant(pow5(constants.host_id.full_constants[0][0]));

        let at_host = binding_selector(column.clone(), binding::HOST_ID);
        vec![
            (
                "commitment output = instance",
                binding_selector(column.clone(), binding::COMMITMENT_OUTPUT)
                    * (cell_here - instance_here.clone()),
            ),
            (
                "commitment cell = final state element 0",
                binding_selector(column, binding::COMMITMENT_CELL) * (cell_above - commitment),
            ),
            (
                "host_id output = instance",
                at_host.clone() * (host_id - instance_here),
            ),
            ("host_id capacity", at_host * (capacity_cell - capacity)),
        ]
    });
}

/// Every fixed-column value of the batch circuit of `size`.
pub(crate) fn fixed_assignments(config: &CommitmentConfig, size: BatchSize) -> Vec<FixedCell> {
    let constants = CircuitConstants::get();
    let n = size.get();
    let mut cells = vec![];
    for i in 0..n {
        cells.push((
            config.binding,
            entry_row(size, COMMITMENT_CELL.0, i),
            Fr::from(binding::COMMITMENT_OUTPUT),
        ));
    }
    cells.extend(commitment_fixed_cells(config, constants, &|row| {
        row * n..(row + 1) * n
    }));
    cells.extend(host_id_fixed_cells(config, constants, host_id_shift(size)));
    for i in 0..n {
        cells.push((
            config.binding,
            entry_row(size, COMMITMENT_CELL_ANCHOR, i),
            Fr::from(binding::COMMITMENT_CELL),
        ));
    }
    cells.push((
        config.binding,
        host_id_binding_row(size),
        Fr::from(binding::HOST_ID),
    ));
    cells
}

/// The batch circuit's fixed columns (index order), as key generation
/// assigns them.
#[cfg(test)]
pub(crate) fn expected_fixed_columns(size: BatchSize) -> Vec<Vec<Fr>> {
    let mut cs = ConstraintSystem::<Fr>::default();
    let config = BatchCircuit::configure_with_params(&mut cs, size);
    let mut columns = vec![vec![Fr::ZERO; 1 << size.k()]; cs.num_fixed_columns()];
    for (column, row, value) in fixed_assignments(&config, size) {
        columns[column.index()][row] = value;
    }
    columns
}

// The host_id columns must be a permutation of the advice columns.
const _: () = {
    let mut seen = [false; ADVICE_COLUMNS];
    let mut j = 0;
    while j < ADVICE_COLUMNS {
        assert!(!seen[HOST_ID_COLUMNS[j]]);
        seen[HOST_ID_COLUMNS[j]] = true;
        j += 1;
    }
};
