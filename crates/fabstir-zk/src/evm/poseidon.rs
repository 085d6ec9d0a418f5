//! Poseidon in Solidity.
//!
//! [`solidity`] writes the library `Poseidon` (`contracts/src/Poseidon.sol`):
//! `hash1(uint256)` (width 2, the host-id derivation) and
//! `hash11(uint256[11])` (width 12, the commitment), computed from the same
//! parameters as [`crate::poseidon`] (circomlib's, derived by our Grain
//! LFSR). Its forge test, `contracts/test/Poseidon.t.sol`, reads the client
//! test vectors (`docs/test-vectors.json`) with `vm.parseJson*` and checks
//! every Poseidon vector and every statement vector on the EVM.
//!
//! Design (correctness first, then size, then gas):
//! - one permutation loop per width, in inline assembly: add the round
//!   constants, S-box (`x^5`), multiply by the dense MDS matrix (each row
//!   written out, the state in memory);
//! - constants of the partial rounds are folded forward as in the circuit's
//!   [`Schedule`]: a partial round adds one constant (to the S-box element),
//!   and the first full round after them carries the rest. This cuts the
//!   constants of width 12 from 816 to 156 words. circomlib's sparse-matrix
//!   form of the partial rounds would save gas but store `2t - 1` words per
//!   partial round (1,380 for width 12), which EIP-170 does not leave room
//!   for;
//! - the constants and the MDS matrix are one `bytes` constant per width,
//!   copied into memory once per call: 32 bytes a word instead of a 33-byte
//!   `PUSH32` for each use;
//! - inputs must be field elements (below the BN254 scalar modulus), else the
//!   call reverts with `InputNotInField(index, value)`.
//!
//! The library is checked in; a test in this module fails when it differs
//! from what the generator writes now. After an intended change, regenerate
//! it with `FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon`
//! (the convention of `tests/it/vectors.rs`).

use std::fmt::Write as _;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::PrimeField;

use super::template;
use crate::poseidon::schedule::Schedule;
use crate::poseidon::{self as native, PoseidonParams};
use crate::statement::field_to_be;

/// Path of the generated library, relative to the workspace root.
pub const LIBRARY_PATH: &str = "contracts/src/Poseidon.sol";

/// The constants of one width in the order the Solidity loop reads them.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// State width `t`.
    pub width: usize,
    /// Full rounds `R_F` (half before, half after the partial rounds).
    pub full_rounds: usize,
    /// Partial rounds `R_P`.
    pub partial_rounds: usize,
    /// The MDS matrix, row by row.
    pub mds: Vec<Vec<Fr>>,
    /// Round constants as consumed: `t` per full round, one per partial
    /// round (folded forward, see the module documentation).
    pub constants: Vec<Fr>,
}

impl Layout {
    /// The layout of `params`.
    pub fn new(params: &PoseidonParams) -> Self {
        let schedule = Schedule::new(params, 1);
        let half = params.full_rounds / 2;
        let constants = schedule.full_constants[..half]
            .iter()
            .flatten()
            .chain(&schedule.partial_constants)
            .chain(schedule.full_constants[half..].iter().flatten())
            .copied()
            .collect();
        Self {
            width: params.width,
            full_rounds: params.full_rounds,
            partial_rounds: params.partial_rounds,
            mds: schedule.mds,
            constants,
        }
    }

    /// Total number of rounds.
    fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// The words of the `bytes` constant: the round constants (the MDS
    /// matrix is written into the code).
    fn words(&self) -> impl Iterator<Item = &Fr> {
        self.constants.iter()
    }

    /// The permutation exactly as the Solidity loop computes it, on
    /// `[0, inputs...]`; returns element 0. Tests check it against the
    /// reference [`PoseidonParams::hash`].
    #[cfg(test)]
    pub fn hash(&self, inputs: &[Fr]) -> Fr {
        let t = self.width;
        assert_eq!(inputs.len() + 1, t);
        use halo2_axiom::halo2curves::ff::Field;
        let mut state: Vec<Fr> = std::iter::once(Fr::ZERO)
            .chain(inputs.iter().copied())
            .collect();
        let mut k = self.constants.iter();
        let half = self.full_rounds / 2;
        for r in 0..self.rounds() {
            let partial = r >= half && r < half + self.partial_rounds;
            let sboxes = if partial { 1 } else { t };
            for s in &mut state[..sboxes] {
                *s = native::pow5(*s + k.next().expect("enough constants"));
            }
            state = native::mat_vec(&self.mds, &state);
        }
        assert!(k.next().is_none(), "every constant is used");
        state[0]
    }
}

/// `0x` and 64 hex digits.
fn hex_word(x: &Fr) -> String {
    format!("0x{}", hex::encode(field_to_be(x)))
}

/// The BN254 scalar modulus as `0x` and 64 hex digits.
fn modulus_hex() -> String {
    let digits = Fr::MODULUS.trim_start_matches("0x");
    format!("0x{digits:0>64}")
}

/// The words of a width's `bytes` constant, one 32-byte word a line.
fn constants_words(layout: &Layout) -> String {
    layout
        .words()
        .map(|word| format!("        hex\"{}\"", &hex_word(word)[2..]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The inline-assembly permutation of one width: `state` points at `t`
/// words in memory holding `[0, inputs...]`, `consts` at the `bytes`
/// constant (the round constants) in memory; leaves element 0 in `h`.
///
/// The loop runs over rounds; a round's body is written out: its S-boxes,
/// then the MDS product with the matrix entries as literals. A row sums up
/// to three products with `add` before an `addmod` (each product is below
/// `Q`, and `4 Q < 2^256`).
fn permutation_assembly(layout: &Layout) -> String {
    let t = layout.width;
    let t32 = t * 32;
    let half = layout.full_rounds / 2;
    let at = |base: &str, off: usize| {
        if off == 0 {
            base.to_string()
        } else {
            format!("add({base}, {off:#x})")
        }
    };
    let sbox = |out: &mut String, indent: &str, off: usize| {
        let _ = writeln!(
            out,
            "{indent}let v := addmod(mload({}), mload({}), q)",
            at("s", off),
            at("k", off)
        );
        let _ = writeln!(out, "{indent}let v2 := mulmod(v, v, q)");
        let _ = writeln!(
            out,
            "{indent}mstore({}, mulmod(mulmod(v2, v2, q), v, q))",
            at("s", off)
        );
    };
    let mut out = String::new();
    out.push_str("        assembly (\"memory-safe\") {\n");
    out.push_str(
        "            // s: the state; n: the next state (scratch at the free memory pointer,\n            \
         // not allocated); k: the next round constant.\n",
    );
    out.push_str("            let q := Q\n            let s := state\n");
    out.push_str("            let n := mload(0x40)\n            let k := add(consts, 0x20)\n");
    let _ = writeln!(
        out,
        "            for {{ let r := 0 }} lt(r, {}) {{ r := add(r, 1) }} {{",
        layout.rounds()
    );
    let _ = writeln!(
        out,
        "                switch and(iszero(lt(r, {half})), lt(r, {}))",
        half + layout.partial_rounds
    );
    out.push_str("                case 0 {\n                    // Full round: every element.\n");
    for i in 0..t {
        out.push_str("                    {\n");
        sbox(&mut out, "                        ", i * 32);
        out.push_str("                    }\n");
    }
    let _ = writeln!(out, "                    k := add(k, {t32:#x})");
    out.push_str("                }\n                default {\n");
    out.push_str("                    // Partial round: element 0 only, one (folded) constant.\n");
    sbox(&mut out, "                    ", 0);
    out.push_str("                    k := add(k, 0x20)\n                }\n");
    out.push_str("                // n = MDS * s.\n");
    for (i, row) in layout.mds.iter().enumerate() {
        out.push_str("                {\n");
        for (j, m) in row.iter().enumerate() {
            let term = format!("mulmod({}, mload({}), q)", hex_word(m), at("s", j * 32));
            let line = if j == 0 {
                format!("let a := {term}")
            } else if j % 4 == 3 || j + 1 == t {
                format!("a := addmod(a, {term}, q)")
            } else {
                format!("a := add(a, {term})")
            };
            let _ = writeln!(out, "                    {line}");
        }
        let _ = writeln!(out, "                    mstore({}, a)", at("n", i * 32));
        out.push_str("                }\n");
    }
    out.push_str(
        "                let swap := s\n                s := n\n                n := swap\n",
    );
    out.push_str("            }\n            h := mload(s)\n        }\n");
    out
}

/// Solidity source of the library `Poseidon` (`contracts/src/Poseidon.sol`),
/// from [`native::host_id_params`] and [`native::commitment_params`]: the
/// template `templates/Poseidon.sol.tmpl` filled with the permutations and
/// round constants of both widths.
pub fn solidity() -> String {
    let l2 = Layout::new(native::host_id_params());
    let l12 = Layout::new(native::commitment_params());
    let trim = |s: String| s.trim_end_matches('\n').to_string();
    let values = [
        ("FULL_ROUNDS", l2.full_rounds.to_string()),
        ("PARTIAL_ROUNDS_T2", l2.partial_rounds.to_string()),
        ("PARTIAL_ROUNDS_T12", l12.partial_rounds.to_string()),
        ("Q", modulus_hex()),
        ("PERMUTATION_T2", trim(permutation_assembly(&l2))),
        ("PERMUTATION_T12", trim(permutation_assembly(&l12))),
        ("CONSTANTS_T2", constants_words(&l2)),
        ("CONSTANTS_T12", constants_words(&l12)),
    ];
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    template::fill(template::POSEIDON, &values)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use halo2_axiom::halo2curves::ff::Field;
    use rand::SeedableRng;

    use super::*;

    /// The workspace root.
    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Compares a generated file with the checked-in one, or writes it when
    /// `FABSTIR_REGENERATE_VECTORS` is set.
    fn pinned(relative: &str, actual: &str) {
        let path = root().join(relative);
        if std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some() {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{relative}: {e}: regenerate with FABSTIR_REGENERATE_VECTORS=1 cargo test -p \
                 fabstir-zk --lib evm::poseidon"
            )
        });
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            panic!(
                "{relative} differs from its generator (first at line {}): regenerate with \
                 FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon",
                line + 1
            );
        }
    }

    #[test]
    fn folded_layout_computes_the_reference_permutation() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for params in [native::host_id_params(), native::commitment_params()] {
            let layout = Layout::new(params);
            let t = params.width;
            assert_eq!(
                layout.constants.len(),
                params.full_rounds * t + params.partial_rounds
            );
            for case in 0..8 {
                let inputs: Vec<Fr> = match case {
                    0 => vec![Fr::ZERO; t - 1],
                    1 => vec![-Fr::ONE; t - 1],
                    _ => (0..t - 1).map(|_| Fr::random(&mut rng)).collect(),
                };
                assert_eq!(layout.hash(&inputs), params.hash(&inputs), "width {t}");
            }
        }
    }

    #[test]
    fn library_holds_every_constant_once() {
        let source = solidity();
        for params in [native::host_id_params(), native::commitment_params()] {
            let layout = Layout::new(params);
            let words = layout.words().count();
            assert_eq!(words, layout.constants.len());
            for m in layout.mds.iter().flatten() {
                assert!(source.contains(&format!("mulmod({}, ", hex_word(m))));
            }
        }
        assert_eq!(source.matches("hex\"").count(), (16 + 56) + (96 + 60));
        assert!(source.contains(&modulus_hex()));
    }

    #[test]
    fn library_matches_the_checked_in_file() {
        pinned(LIBRARY_PATH, &solidity());
    }
}
