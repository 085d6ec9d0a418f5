//! The witness: every advice cell of the circuit, computed natively.

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;

use super::layout::*;
use super::CircuitConstants;
use crate::poseidon::schedule::Trace;

/// Advice values, `ADVICE_COLUMNS` columns of `2^K` rows (rows past
/// [`USED_ROWS`] stay zero; the prover overwrites the blinding rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grid {
    columns: Vec<Vec<Fr>>,
    /// Whether the layout assigns each cell, indexed `column * 2^K + row`.
    used: Vec<bool>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            columns: vec![vec![Fr::ZERO; 1 << K]; ADVICE_COLUMNS],
            used: vec![false; ADVICE_COLUMNS << K],
        }
    }
}

impl Grid {
    /// Value at (row, column).
    pub fn get(&self, row: usize, column: usize) -> Fr {
        self.columns[column][row]
    }

    /// Sets the value at (row, column).
    pub fn set(&mut self, row: usize, column: usize, value: Fr) {
        self.columns[column][row] = value;
        self.used[(column << K) + row] = true;
    }

    /// Cells the layout assigns, as (row, column).
    #[cfg(test)]
    pub fn used_cells(&self) -> Vec<(usize, usize)> {
        (0..ADVICE_COLUMNS << K)
            .filter(|i| self.used[*i])
            .map(|i| (i & ((1 << K) - 1), i >> K))
            .collect()
    }

    /// The columns, as the prover takes them.
    pub fn into_columns(self) -> Vec<Vec<Fr>> {
        self.columns
    }

    /// Computes every cell from the inputs of both permutations.
    pub fn build(commitment_inputs: &[Fr; 11], sk: Fr) -> Self {
        let constants = CircuitConstants::get();
        Self::from_traces(
            &constants.commitment.trace(commitment_inputs),
            &constants.host_id.trace(&[sk]),
        )
    }

    /// Places the traces of both permutations, as they are (the soundness
    /// tests pass faulted traces).
    pub fn from_traces(commitment: &Trace, host_id: &Trace) -> Self {
        let mut grid = Self::default();
        grid.place_commitment(commitment);
        grid.place_host_id(host_id);
        grid
    }

    fn place_block_state(&mut self, block: usize, state: &[Fr]) {
        for (i, value) in state.iter().enumerate() {
            let (row, col) = state_cell(i);
            self.set(block_row(block) + row, col, *value);
        }
    }

    fn place_commitment(&mut self, trace: &Trace) {
        let (row, col) = COMMITMENT_OUTPUT_CELL;
        self.set(row, col, trace.output);
        let round0 = &trace.full[0];
        self.place_block_state(COMMITMENT_INPUT_BLOCK, &round0.outputs);
        let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK);
        for (i, _, aux_rotation, aux_column) in COMMITMENT_BOUND_INPUTS {
            let row = (anchor as i32 + aux_rotation) as usize;
            self.set(row, aux_column, round0.squares[i]);
        }
        for (round, block) in trace.full[1..].iter().zip(COMMITMENT_FULL_BLOCKS) {
            self.place_block_state(block, &round.outputs);
            for (i, square) in round.squares.iter().enumerate() {
                let (row, col) = state_cell(i);
                self.set(block_row(block) + row, STATE_COLUMNS + col, *square);
            }
        }
        for (g, group) in trace.groups.iter().enumerate() {
            let block = COMMITMENT_FIRST_GROUP_BLOCK + g;
            self.place_block_state(block, &group.state);
            let anchor = last_row_of_block(block);
            for (q, (square, y)) in group.squares.iter().zip(&group.outputs).enumerate() {
                self.set(anchor - 1, STATE_COLUMNS + q, *y);
                self.set(anchor, STATE_COLUMNS + q, *square);
            }
        }
    }

    fn place_host_id(&mut self, trace: &Trace) {
        let t = trace.full[0].outputs.len();
        for (col, value) in trace.full[0].outputs.iter().enumerate() {
            self.set(HOST_ID_FIRST_ROW, col, *value);
        }
        for (round, row) in trace.full[1..].iter().zip(host_id_full_rows()) {
            for (i, (square, y)) in round.squares.iter().zip(&round.outputs).enumerate() {
                self.set(row, i, *y);
                self.set(row, t + i, *square);
            }
        }
        for (g, group) in trace.groups.iter().enumerate() {
            let row = host_id_group_row(g);
            for (i, value) in group.state.iter().enumerate() {
                self.set(row, i, *value);
            }
            let width = group.outputs.len();
            for (q, (square, y)) in group.squares.iter().zip(&group.outputs).enumerate() {
                self.set(row, t + q, *y);
                self.set(row, t + width + q, *square);
            }
        }
    }
}
