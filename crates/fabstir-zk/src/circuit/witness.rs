//! The witness: every advice cell of the circuit, computed natively.

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;

use super::layout::*;
use super::CircuitConstants;
use crate::poseidon::schedule::Trace;

/// Advice values, `ADVICE_COLUMNS` columns of `2^k` rows (`k` = [`K`] in
/// the single circuit; rows past the layout's used rows stay zero, the
/// prover overwrites the blinding rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grid {
    k: u32,
    columns: Vec<Vec<Fr>>,
    /// Whether the layout assigns each cell, indexed `column * 2^k + row`.
    used: Vec<bool>,
}

impl Default for Grid {
    fn default() -> Self {
        Self::with_k(K)
    }
}

/// The advice columns in their own order (the single circuit's host_id).
pub(crate) const IDENTITY_COLUMNS: [usize; ADVICE_COLUMNS] = [0, 1, 2, 3, 4, 5, 6, 7];

impl Grid {
    /// An empty grid of `2^k` rows.
    pub fn with_k(k: u32) -> Self {
        Self {
            k,
            columns: vec![vec![Fr::ZERO; 1 << k]; ADVICE_COLUMNS],
            used: vec![false; ADVICE_COLUMNS << k],
        }
    }

    /// Value at (row, column).
    pub fn get(&self, row: usize, column: usize) -> Fr {
        self.columns[column][row]
    }

    /// Sets the value at (row, column).
    pub fn set(&mut self, row: usize, column: usize, value: Fr) {
        self.columns[column][row] = value;
        self.used[(column << self.k) + row] = true;
    }

    /// Cells the layout assigns, as (row, column).
    #[cfg(test)]
    pub fn used_cells(&self) -> Vec<(usize, usize)> {
        (0..ADVICE_COLUMNS << self.k)
            .filter(|i| self.used[*i])
            .map(|i| (i & ((1 << self.k) - 1), i >> self.k))
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

    fn place_block_state(&mut self, block: usize, state: &[Fr], at: &dyn Fn(usize) -> usize) {
        for (i, value) in state.iter().enumerate() {
            let (row, col) = state_cell(i);
            self.set(at(block_row(block) + row), col, *value);
        }
    }

    fn place_commitment(&mut self, trace: &Trace) {
        let (row, col) = COMMITMENT_OUTPUT_CELL;
        self.set(row, col, trace.output);
        self.place_commitment_rounds(trace, &|row| row);
    }

    /// Places every round of the commitment permutation (not its output
    /// cell), permutation row `r` at table row `at(r)`.
    pub fn place_commitment_rounds(&mut self, trace: &Trace, at: &dyn Fn(usize) -> usize) {
        let round0 = &trace.full[0];
        self.place_block_state(COMMITMENT_INPUT_BLOCK, &round0.outputs, at);
        let anchor = last_row_of_block(COMMITMENT_INPUT_BLOCK);
        for (i, _, aux_rotation, aux_column) in COMMITMENT_BOUND_INPUTS {
            let row = (anchor as i32 + aux_rotation) as usize;
            self.set(at(row), aux_column, round0.squares[i]);
        }
        for (round, block) in trace.full[1..].iter().zip(COMMITMENT_FULL_BLOCKS) {
            self.place_block_state(block, &round.outputs, at);
            for (i, square) in round.squares.iter().enumerate() {
                let (row, col) = state_cell(i);
                self.set(at(block_row(block) + row), STATE_COLUMNS + col, *square);
            }
        }
        for (g, group) in trace.groups.iter().enumerate() {
            let block = COMMITMENT_FIRST_GROUP_BLOCK + g;
            self.place_block_state(block, &group.state, at);
            let anchor = last_row_of_block(block);
            for (q, (square, y)) in group.squares.iter().zip(&group.outputs).enumerate() {
                self.set(at(anchor - 1), STATE_COLUMNS + q, *y);
                self.set(at(anchor), STATE_COLUMNS + q, *square);
            }
        }
    }

    fn place_host_id(&mut self, trace: &Trace) {
        self.place_host_id_at(trace, 0, &IDENTITY_COLUMNS);
    }

    /// Places the host_id permutation with its rows moved down by `shift`
    /// and its column `j` in advice column `columns[j]`.
    pub fn place_host_id_at(
        &mut self,
        trace: &Trace,
        shift: usize,
        columns: &[usize; ADVICE_COLUMNS],
    ) {
        let t = trace.full[0].outputs.len();
        let mut set =
            |row: usize, col: usize, value: Fr| self.set(row + shift, columns[col], value);
        for (col, value) in trace.full[0].outputs.iter().enumerate() {
            set(HOST_ID_FIRST_ROW, col, *value);
        }
        for (round, row) in trace.full[1..].iter().zip(host_id_full_rows()) {
            for (i, (square, y)) in round.squares.iter().zip(&round.outputs).enumerate() {
                set(row, i, *y);
                set(row, t + i, *square);
            }
        }
        for (g, group) in trace.groups.iter().enumerate() {
            let row = host_id_group_row(g);
            for (i, value) in group.state.iter().enumerate() {
                set(row, i, *value);
            }
            let width = group.outputs.len();
            for (q, (square, y)) in group.squares.iter().zip(&group.outputs).enumerate() {
                set(row, t + q, *y);
                set(row, t + width + q, *square);
            }
        }
    }
}
