//! Poseidon over the BN254 scalar field with the circomlib parameters
//! (x^5 S-box, 8 full rounds, partial rounds by width), natively.
//!
//! Any client can recompute a commitment with standard tools (circomlibjs,
//! poseidon-lite, `light-poseidon`, poseidon-solidity). The in-circuit version
//! lives in [`crate::circuit`]; it evaluates the same permutation in an
//! algebraically equivalent form whose constants are derived in [`schedule`].

mod grain;
pub(crate) mod schedule;

use std::sync::OnceLock;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;

/// Number of full rounds for every width (circomlib `N_ROUNDS_F`).
pub const FULL_ROUNDS: usize = 8;

/// circomlib `N_ROUNDS_P`, indexed by `t - 2` for widths 2..=17.
const PARTIAL_ROUNDS_BY_WIDTH: [usize; 16] = [
    56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68,
];

/// The width used for `host_id = Poseidon(sk)` (one input).
pub const HOST_ID_WIDTH: usize = 2;

/// The width used for the 11-input commitment.
pub const COMMITMENT_WIDTH: usize = 12;

/// Round constants and MDS matrix of one Poseidon instance.
#[derive(Debug, Clone)]
pub struct PoseidonParams {
    /// State width `t` (number of inputs + 1).
    pub width: usize,
    /// Number of full rounds `R_F`.
    pub full_rounds: usize,
    /// Number of partial rounds `R_P`.
    pub partial_rounds: usize,
    /// `round_constants[r][i]` is added to state element `i` in round `r`.
    pub round_constants: Vec<Vec<Fr>>,
    /// `mds[i][j]`: new state `i` = sum over `j` of `mds[i][j] * state[j]`.
    pub mds: Vec<Vec<Fr>>,
}

impl PoseidonParams {
    fn generate(width: usize) -> Self {
        let partial_rounds = PARTIAL_ROUNDS_BY_WIDTH[width - 2];
        let (round_constants, mds) = grain::generate(width, FULL_ROUNDS, partial_rounds);
        Self {
            width,
            full_rounds: FULL_ROUNDS,
            partial_rounds,
            round_constants,
            mds,
        }
    }

    /// Total number of rounds.
    pub fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// Whether round `r` applies the S-box to every state element.
    pub fn is_full_round(&self, r: usize) -> bool {
        let half = self.full_rounds / 2;
        r < half || r >= half + self.partial_rounds
    }

    /// The Poseidon permutation, written as the reference algorithm
    /// (add constants, S-box layer, MDS) without any optimisation, so that it
    /// serves as the specification the circuit is tested against.
    pub fn permute(&self, state: &mut [Fr]) {
        assert_eq!(
            state.len(),
            self.width,
            "state width must match the parameters"
        );
        for r in 0..self.rounds() {
            for (s, c) in state.iter_mut().zip(&self.round_constants[r]) {
                *s += c;
            }
            if self.is_full_round(r) {
                state.iter_mut().for_each(|s| *s = pow5(*s));
            } else {
                state[0] = pow5(state[0]);
            }
            let mixed = mat_vec(&self.mds, state);
            state.copy_from_slice(&mixed);
        }
    }

    /// circomlib `Poseidon(n)`: state `[0, inputs...]`, output element 0.
    pub fn hash(&self, inputs: &[Fr]) -> Fr {
        assert_eq!(
            inputs.len() + 1,
            self.width,
            "input count must be width - 1"
        );
        let mut state = Vec::with_capacity(self.width);
        state.push(Fr::ZERO);
        state.extend_from_slice(inputs);
        self.permute(&mut state);
        state[0]
    }
}

/// Parameters for width 2 (one input), generated once.
pub fn host_id_params() -> &'static PoseidonParams {
    static PARAMS: OnceLock<PoseidonParams> = OnceLock::new();
    PARAMS.get_or_init(|| PoseidonParams::generate(HOST_ID_WIDTH))
}

/// Parameters for width 12 (eleven inputs), generated once.
pub fn commitment_params() -> &'static PoseidonParams {
    static PARAMS: OnceLock<PoseidonParams> = OnceLock::new();
    PARAMS.get_or_init(|| PoseidonParams::generate(COMMITMENT_WIDTH))
}

/// `Poseidon(x)` with one input (width 2).
pub fn hash1(x: Fr) -> Fr {
    host_id_params().hash(&[x])
}

/// `Poseidon(inputs)` with eleven inputs (width 12).
pub fn hash11(inputs: &[Fr; 11]) -> Fr {
    commitment_params().hash(inputs)
}

/// The S-box x^5.
pub(crate) fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

/// Matrix-vector product `m * v`.
pub(crate) fn mat_vec(m: &[Vec<Fr>], v: &[Fr]) -> Vec<Fr> {
    m.iter().map(|row| dot(row, v)).collect()
}

/// Inner product of two equally long vectors.
pub(crate) fn dot(a: &[Fr], b: &[Fr]) -> Fr {
    a.iter().zip(b).fold(Fr::ZERO, |acc, (x, y)| acc + *x * y)
}
