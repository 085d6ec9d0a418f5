//! Where every value of the batch circuit lives: the layout contract.
//!
//! A batch of `N` entries ([`BatchSize`]) uses the single circuit's columns
//! (8 advice, 11 fixed, 1 instance) and its gates, in a *stride* layout:
//!
//! - **Entries.** Entry `i`'s copy of the commitment permutation occupies the
//!   single circuit's rows `0..69` (see [`crate::circuit::layout`]) with row
//!   `r` moved to table row `r * N + i`. So the gates of the commitment are the
//!   single circuit's gates with every rotation multiplied by `N`, and every
//!   round-constant (selector) column holds the same value on the `N` rows
//!   `r * N .. r * N + N`. Rows `0 .. 69 * N` hold the entries.
//! - **Commitment cells.** The single circuit keeps the commitment in a cell
//!   of row 69. Here entry `i`'s commitment sits at stride row 0, column 7
//!   ([`COMMITMENT_CELL`]), a cell the permutation leaves free; the binding
//!   "commitment cell = final state element 0" is anchored at stride row 68
//!   (the last row of the last block) and reaches up to it.
//! - **host_id.** `host_id = Poseidon(sk)` is computed once, not strided, on
//!   the 36 rows after the entries ([`host_id_first_row`]), with the single
//!   circuit's host_id gates (rotations -1 and 0). Its columns are moved
//!   ([`HOST_ID_COLUMNS`]: state in columns 4 and 5) so that no advice column
//!   is queried at more than 6 rotations: the blinding rows halo2 reserves
//!   grow with that number, and 6 keeps them at [`UNUSABLE_ROWS`] = 9.
//!
//! ```text
//! rows 0 .. 69N           entries: permutation row r of entry i at r*N + i
//! rows 69N .. 69N + 36    host_id round 0 .. final state (row 69N + 35)
//! rows 69N + 36 .. 2^k    unused; the last 9 are halo2's blinding rows
//! ```
//!
//! **Public inputs** are laid out in *bands* of `N` rows: band `b` holds one
//! kind of value, entry `i`'s at instance row `b * N + i` ([`instance_row`]).
//! Seven bands ([`band`]), so `7 * N` public inputs, dense (no zero gaps).
//! Entry `i`'s round-0 gate (at row `2N + i`) reads bands 1 to 6 at rotations
//! `-N, 0, N, 2N, 3N, 4N`, the same for every entry; the commitment binding
//! is anchored at the commitment band (rotation 0) and reads the commitment
//! cell of the same row. The shared values (`chain_id`, `marketplace`,
//! `host_id`) are repeated in their bands, one copy per entry; the one
//! host_id permutation is bound to entry 0's copy (instance row `5N`), so a
//! verifier must supply the same `host_id` in every copy (as it supplies the
//! same chain and marketplace): [`super::BatchPublic::to_field_elements`]
//! does. Six distinct instance rotations; halo2 evaluates Lagrange
//! polynomials from `-4N` to `8N - 1` (`12 N` of them).
//!
//! Bindings, under the compressed selector column of the single circuit
//! (values [`binding::COMMITMENT_OUTPUT`], [`binding::COMMITMENT_CELL`],
//! [`binding::HOST_ID`]):
//!
//! - rows `0..N` (the commitment band): commitment cell = instance;
//! - rows `68N..69N`: commitment cell (at rotation `-68N`) = element 0 of the
//!   final state (block 22, rotations `-2N..0`);
//! - row `5N` (entry 0's host_id copy): `host_id` output (the final state,
//!   at rotation [`host_id_output_row`]` - 5N`) = instance, and the capacity
//!   cell of host_id round 0 (at rotation [`host_id_first_row`]` - 5N`) is
//!   its constant.

use crate::circuit::layout::{self as single, instance, ADVICE_COLUMNS};
use crate::error::BatchError;

/// Rows of one entry's commitment permutation (stride rows).
pub const ENTRY_ROWS: usize = single::HOST_ID_FIRST_ROW;

/// Rows of the host_id permutation.
pub const HOST_ID_ROWS: usize = single::HOST_ID_OUTPUT_ROW + 1 - single::HOST_ID_FIRST_ROW;

/// Rows at the end of the table that halo2 reserves (`blinding_factors + 1`;
/// the batch circuit queries no advice column at more than 6 rotations, so
/// halo2 blinds with 8 rows, plus one).
pub const UNUSABLE_ROWS: usize = 9;

/// The largest `k` a batch uses (bounds key generation).
pub const MAX_K: u32 = 14;

/// Number of public-input bands.
pub const BANDS: usize = 7;

/// The bands of the instance column: band `b` holds entry `i`'s value at
/// instance row `b * N + i`.
pub mod band {
    /// The entry's commitment (an output of the circuit).
    pub const COMMITMENT: usize = 0;
    /// `chain_id`, the same in every entry.
    pub const CHAIN_ID: usize = 1;
    /// `marketplace`, the same in every entry.
    pub const MARKETPLACE: usize = 2;
    /// High 128 bits of the entry's `job_id`.
    pub const JOB_HI: usize = 3;
    /// Low 128 bits of the entry's `job_id`.
    pub const JOB_LO: usize = 4;
    /// `host_id`, the same in every entry; entry 0's copy is bound to
    /// `Poseidon(sk)`.
    pub const HOST_ID: usize = 5;
    /// The entry's cumulative `tokens`.
    pub const TOKENS: usize = 6;
    /// Size bound of each band's values in bits, in band order (254: any
    /// field element), as [`crate::circuit::layout::instance::BITS`].
    pub const BITS: [u32; super::BANDS] = [254, 64, 160, 128, 128, 254, 64];
    /// Names of the bands, for errors.
    pub const NAMES: [&str; super::BANDS] = [
        "commitment",
        "chain_id",
        "marketplace",
        "job_id high limb",
        "job_id low limb",
        "host_id",
        "tokens",
    ];
}

/// The band holding the value the single circuit has at instance row `row`.
pub const fn band_of(row: usize) -> usize {
    match row {
        instance::CHAIN_ID => band::CHAIN_ID,
        instance::MARKETPLACE => band::MARKETPLACE,
        instance::JOB_HI => band::JOB_HI,
        instance::JOB_LO => band::JOB_LO,
        instance::HOST_ID => band::HOST_ID,
        instance::COMMITMENT => band::COMMITMENT,
        _ => band::TOKENS,
    }
}

/// Values of the compressed binding selector (the single circuit's
/// `binding` column, same values, other meanings).
pub mod binding {
    /// Commitment band: commitment cell = instance.
    pub const COMMITMENT_OUTPUT: u64 = 1;
    /// Last stride row: commitment cell = element 0 of the final state.
    pub const COMMITMENT_CELL: u64 = 2;
    /// Entry 0's host_id copy: host_id output = instance, and the host_id
    /// capacity constant.
    pub const HOST_ID: u64 = 3;
}

/// (stride row, column) of an entry's commitment cell: a cell of block 0
/// that the permutation leaves free, on the row of the commitment band.
pub const COMMITMENT_CELL: (usize, usize) = (0, ADVICE_COLUMNS - 1);

/// Stride row at which the "commitment cell" binding is anchored: the last
/// row of the last block.
pub const COMMITMENT_CELL_ANCHOR: usize = single::last_row_of_block(single::COMMITMENT_LAST_BLOCK);

/// Advice column of each host_id column of the single circuit: the host_id
/// state in columns 4 and 5, S-box squares of full rounds and outputs of
/// partial rounds in 6 and 7, squares of partial rounds in 0 and 1.
pub const HOST_ID_COLUMNS: [usize; ADVICE_COLUMNS] = [4, 5, 6, 7, 0, 1, 2, 3];

/// The number of entries of a batch circuit: `1..=`[`BatchSize::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchSize(usize);

impl Default for BatchSize {
    fn default() -> Self {
        Self(1)
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl BatchSize {
    /// The largest batch: what fits `2^`[`MAX_K`] rows.
    pub const MAX: usize = ((1 << MAX_K) - UNUSABLE_ROWS - HOST_ID_ROWS) / ENTRY_ROWS;

    /// A batch of `entries` entries, if supported.
    pub fn new(entries: usize) -> Result<Self, BatchError> {
        if (1..=Self::MAX).contains(&entries) {
            Ok(Self(entries))
        } else {
            Err(BatchError::Size {
                found: entries,
                max: Self::MAX,
            })
        }
    }

    /// Number of entries.
    pub const fn get(self) -> usize {
        self.0
    }

    /// Rows the layout uses: `69 N + 36`.
    pub const fn used_rows(self) -> usize {
        ENTRY_ROWS * self.0 + HOST_ID_ROWS
    }

    /// log2 of the table's rows: the smallest `k` with
    /// `2^k - UNUSABLE_ROWS >= used_rows`.
    pub const fn k(self) -> u32 {
        let mut k = 1;
        while (1usize << k) < self.used_rows() + UNUSABLE_ROWS {
            k += 1;
        }
        k
    }

    /// Number of public inputs, `7 N`.
    pub const fn instance_count(self) -> usize {
        BANDS * self.0
    }
}

/// Instance row of entry `entry`'s value in band `band`.
pub const fn instance_row(size: BatchSize, band: usize, entry: usize) -> usize {
    band * size.get() + entry
}

/// Table row of entry `entry`'s permutation row `row`.
pub const fn entry_row(size: BatchSize, row: usize, entry: usize) -> usize {
    row * size.get() + entry
}

/// First row of the host_id permutation (its round 0).
pub const fn host_id_first_row(size: BatchSize) -> usize {
    ENTRY_ROWS * size.get()
}

/// How far the host_id rows are moved down from the single circuit's.
pub const fn host_id_shift(size: BatchSize) -> usize {
    host_id_first_row(size) - single::HOST_ID_FIRST_ROW
}

/// Row of the host_id permutation's final state.
pub const fn host_id_output_row(size: BatchSize) -> usize {
    single::HOST_ID_OUTPUT_ROW + host_id_shift(size)
}

/// Row at which host_id is bound: entry 0's copy of the host_id band.
pub const fn host_id_binding_row(size: BatchSize) -> usize {
    instance_row(size, band::HOST_ID, 0)
}

pub use crate::cell::Cell;

/// The cells a prover chooses freely: every public input but the outputs
/// (each entry's commitment, and entry 0's host_id copy, which the host_id
/// permutation determines; the other host_id copies are inputs the verifier
/// supplies, like the chain and marketplace copies), each entry's six
/// private limbs (round-0 S-box outputs) and the secret's S-box output. The
/// constraints must determine every other cell they read;
/// `batch::tests` checks it with [`crate::circuit::uniqueness`].
pub fn free_cells(size: BatchSize) -> Vec<Cell> {
    let n = size.get();
    let mut cells = Vec::new();
    for b in [
        band::CHAIN_ID,
        band::MARKETPLACE,
        band::JOB_HI,
        band::JOB_LO,
        band::HOST_ID,
        band::TOKENS,
    ] {
        for i in 0..n {
            if (b, i) != (band::HOST_ID, 0) {
                cells.push(Cell::Instance {
                    row: instance_row(size, b, i),
                });
            }
        }
    }
    for i in 0..n {
        for limb in single::COMMITMENT_PRIVATE_INPUTS {
            let (row, column) = single::state_cell(limb);
            cells.push(Cell::Advice {
                column,
                row: entry_row(
                    size,
                    single::block_row(single::COMMITMENT_INPUT_BLOCK) + row,
                    i,
                ),
            });
        }
    }
    cells.push(Cell::Advice {
        column: HOST_ID_COLUMNS[single::HOST_ID_SECRET_ELEMENT],
        row: host_id_first_row(size),
    });
    cells
}
