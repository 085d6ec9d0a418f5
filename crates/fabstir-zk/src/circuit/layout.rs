//! Where every value of the circuit lives: rows, columns and rotations.
//!
//! Eight advice columns, 2^7 rows. The width-12 permutation (the commitment)
//! occupies "blocks" of three rows: columns 0..4 hold the twelve state
//! elements (element `i` at row `i / 4`, column `i % 4` of its block) and
//! columns 4..8 hold auxiliary squares of S-box inputs (degree-4 S-box gates).
//! The width-2 permutation (host_id) follows, one row per step.
//!
//! ```text
//! rows   0..3    block 0      commitment round 0 (inputs bound to instances)
//! rows   3..12   blocks 1-3   commitment full rounds 1..3
//! rows  12..57   blocks 4-18  commitment partial rounds, 4 per block
//! rows  57..69   blocks 19-22 commitment full rounds 4..7
//! row   69       host_id round 0 (element 0 is a constant, element 1 is
//!                secret); column 7 holds the commitment (element 0 of the
//!                final state, computed from block 22)
//! rows  70..73   host_id full rounds 1..3
//! rows  73..101  host_id partial rounds, 2 per row
//! rows 101..105  host_id full rounds 4..7; row 104 holds the final state
//! ```
//!
//! Both outputs are bound to their instances by gates anchored at the
//! instance rows (4 and 5) that reach down to the output cells. Circuit
//! version 2 adds `tokens` at instance row 6, read by the round-0 gate
//! (anchored at row 2, so at rotation 4) together with `chain_id`. The verifier
//! evaluates one Lagrange basis polynomial per row between the lowest and the
//! highest instance rotation, so keeping every instance query near row 0
//! (rather than binding at rows 68 and 104) saves it ~200 field
//! exponentiations per proof. Version 1 spans rotations -2..=2 over 6 rows
//! (10 Lagrange evaluations); version 2, rotations -2..=4 over 7 rows (13).
//! Rows 0..=5 keep their version 1 meaning, so `tokens` cannot sit closer
//! to the anchor than row 6.

/// log2 of the number of rows.
pub const K: u32 = 7;

/// Maximum gate degree (selector included). Pinned in the constraint system so
/// that halo2's `MAX_DEGREE` environment variable cannot change it.
pub const DEGREE: usize = 4;

/// Number of advice columns.
pub const ADVICE_COLUMNS: usize = 8;

/// Rows per block of the width-12 permutation.
pub const BLOCK_ROWS: usize = 3;

/// Columns holding state elements of the width-12 permutation.
pub const STATE_COLUMNS: usize = 4;

/// Partial rounds of the width-12 permutation evaluated per block.
pub const COMMITMENT_GROUP: usize = 4;

/// Partial rounds of the width-2 permutation evaluated per row.
pub const HOST_ID_GROUP: usize = 2;

/// Block of the commitment's round 0.
pub const COMMITMENT_INPUT_BLOCK: usize = 0;

/// Blocks of the commitment's full rounds 1..3 and 4..7.
pub const COMMITMENT_FULL_BLOCKS: [usize; 7] = [1, 2, 3, 19, 20, 21, 22];

/// First block of the commitment's partial-round groups (15 blocks).
pub const COMMITMENT_FIRST_GROUP_BLOCK: usize = 4;

/// Number of partial-round groups of the commitment.
pub const COMMITMENT_GROUPS: usize = 15;

/// Last block of the commitment permutation.
pub const COMMITMENT_LAST_BLOCK: usize = 22;

/// Row of the host_id permutation's round 0.
pub const HOST_ID_FIRST_ROW: usize = 69;

/// Number of partial-round rows of the host_id permutation.
pub const HOST_ID_GROUPS: usize = 28;

/// Rows of the host_id permutation's full rounds 1..3 and 4..7.
pub fn host_id_full_rows() -> impl Iterator<Item = usize> {
    (HOST_ID_FIRST_ROW + 1..HOST_ID_FIRST_ROW + 4)
        .chain(host_id_group_row(HOST_ID_GROUPS)..host_id_group_row(HOST_ID_GROUPS) + 4)
}

/// Row of the host_id permutation's partial-round group `g`.
pub const fn host_id_group_row(g: usize) -> usize {
    HOST_ID_FIRST_ROW + 4 + g
}

/// Row holding the final state of the host_id permutation.
pub const HOST_ID_OUTPUT_ROW: usize = host_id_group_row(HOST_ID_GROUPS) + 3;

/// Cell (row, column) holding the commitment, next to the host_id round 0.
pub const COMMITMENT_OUTPUT_CELL: (usize, usize) = (HOST_ID_FIRST_ROW, ADVICE_COLUMNS - 1);

/// Number of rows the layout uses.
pub const USED_ROWS: usize = HOST_ID_OUTPUT_ROW + 1;

/// First row of block `b`.
pub const fn block_row(b: usize) -> usize {
    b * BLOCK_ROWS
}

/// Last row of block `b`, where block-wide gates are anchored.
pub const fn last_row_of_block(b: usize) -> usize {
    b * BLOCK_ROWS + BLOCK_ROWS - 1
}

/// (row within block, column) of state element `i` of a width-12 block.
pub const fn state_cell(i: usize) -> (usize, usize) {
    (i / STATE_COLUMNS, i % STATE_COLUMNS)
}

pub use crate::version::instance;

/// `tokens` is packed with `chain_id` into the commitment's first input as
/// `chain_id + 2^TOKENS_SHIFT * tokens` (circuit version 2). Both are below
/// 2^64 (checked natively by every verifier), so the packing is injective.
pub const TOKENS_SHIFT: u32 = 64;

/// Commitment elements bound to public inputs in round 0, with their instance
/// row and the (rotation from the anchor row, column) of their auxiliary cell.
/// In circuit version 2 element 1 also reads [`instance::TOKENS`]
/// (see [`TOKENS_SHIFT`]). Element 0 (the capacity, always zero) is a constant; elements 5..=10 are the
/// private hash limbs and stay free.
pub const COMMITMENT_BOUND_INPUTS: [(usize, usize, i32, usize); 5] = [
    (1, instance::CHAIN_ID, -1, 4),
    (2, instance::MARKETPLACE, -1, 5),
    (3, instance::JOB_HI, -1, 6),
    (4, instance::JOB_LO, -1, 7),
    (11, instance::HOST_ID, 0, 4),
];

/// Commitment elements holding the private hash limbs (model, input, output,
/// high then low). Their round-0 S-box outputs are free cells of block 0:
/// nothing in the circuit computes them, the next round consumes them.
pub const COMMITMENT_PRIVATE_INPUTS: [usize; 6] = [5, 6, 7, 8, 9, 10];

/// Element of the host_id state holding the secret: its round-0 S-box output
/// `(sk + c)^5` is a free cell at row [`HOST_ID_FIRST_ROW`].
pub const HOST_ID_SECRET_ELEMENT: usize = 1;

pub use crate::cell::Cell;

/// The cells a prover chooses freely in circuit `version`: the public inputs
/// other than the two outputs (instance rows 0..=3: chain id, marketplace,
/// job limbs; and row 6, tokens, in version 2), the six private limbs
/// (round-0 S-box outputs in block 0) and the secret's S-box output (round 0
/// of host_id). The constraints must determine every other cell they read
/// from these, `host_id` and `commitment` (instance rows 4 and 5) included;
/// `circuit::uniqueness` checks it.
pub fn free_cells(version: crate::CircuitVersion) -> Vec<Cell> {
    let tokens = version.binds_tokens().then_some(instance::TOKENS);
    let public = [
        instance::CHAIN_ID,
        instance::MARKETPLACE,
        instance::JOB_HI,
        instance::JOB_LO,
    ]
    .into_iter()
    .chain(tokens)
    .map(|row| Cell::Instance { row });
    let limbs = COMMITMENT_PRIVATE_INPUTS.map(|i| {
        let (row, column) = state_cell(i);
        Cell::Advice {
            column,
            row: block_row(COMMITMENT_INPUT_BLOCK) + row,
        }
    });
    let secret = Cell::Advice {
        column: HOST_ID_SECRET_ELEMENT,
        row: HOST_ID_FIRST_ROW,
    };
    public.chain(limbs).chain(std::iter::once(secret)).collect()
}
