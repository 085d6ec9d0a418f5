//! The batch witness: every entry's commitment permutation in the stride
//! layout, and the host_id permutation once.

use halo2_axiom::halo2curves::bn256::Fr;

use super::layout::*;
use crate::circuit::{CircuitConstants, Grid};
use crate::poseidon::schedule::Trace;

/// The grid of a batch: `inputs[i]` are entry `i`'s eleven commitment
/// inputs (host_id last), `sk` the host's secret.
pub(crate) fn build(size: BatchSize, inputs: &[[Fr; 11]], sk: Fr) -> Grid {
    let constants = CircuitConstants::get();
    let traces: Vec<Trace> = inputs
        .iter()
        .map(|inputs| constants.commitment.trace(inputs))
        .collect();
    from_traces(size, &traces, &constants.host_id.trace(&[sk]))
}

/// Places the traces as they are (tests pass faulted ones).
pub(crate) fn from_traces(size: BatchSize, commitments: &[Trace], host_id: &Trace) -> Grid {
    let mut grid = Grid::with_k(size.k());
    let (cell_row, cell_column) = COMMITMENT_CELL;
    for (i, trace) in commitments.iter().enumerate() {
        grid.place_commitment_rounds(trace, &|row| entry_row(size, row, i));
        grid.set(entry_row(size, cell_row, i), cell_column, trace.output);
    }
    grid.place_host_id_at(host_id, host_id_shift(size), &HOST_ID_COLUMNS);
    grid
}
