//! The Poseidon permutation rewritten in the form the circuit evaluates.
//!
//! The circuit stores S-box *outputs* (the state after the S-box layer and
//! before the MDS), so that every full-round S-box input is an affine function
//! of the previous round's stored cells: `Y'_i = (M_i . Y + c_i)^5`.
//!
//! Partial rounds are evaluated `group` at a time. Constants of the linear
//! elements are folded forward (they pass through partial rounds linearly), so
//! each partial round keeps one constant, and the linear part of a whole group
//! is a fixed matrix: the same gate serves every group. All of this is a
//! change of representation only; [`Schedule::trace`] is tested against the
//! reference permutation in [`super::PoseidonParams::permute`].

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;

use super::{dot, mat_vec, pow5, PoseidonParams};

/// Constants and matrices for evaluating one Poseidon width in the circuit.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// State width `t`.
    pub width: usize,
    /// Partial rounds per group.
    pub group: usize,
    /// The MDS matrix.
    pub mds: Vec<Vec<Fr>>,
    /// Constants of the full rounds in order (first half, then second half);
    /// the first round after the partial rounds carries the folded constants.
    pub full_constants: Vec<Vec<Fr>>,
    /// The single (folded) constant of each partial round.
    pub partial_constants: Vec<Fr>,
    /// `group_alpha[q]`: coefficients of the group's input state in S-box input `q`.
    pub group_alpha: Vec<Vec<Fr>>,
    /// `group_beta[q][p]`: coefficient of S-box output `p < q` in S-box input `q`.
    pub group_beta: Vec<Vec<Fr>>,
    /// `group_gamma[i]`: coefficients of the input state in output state element `i`.
    pub group_gamma: Vec<Vec<Fr>>,
    /// `group_delta[i][q]`: coefficient of S-box output `q` in output state element `i`.
    pub group_delta: Vec<Vec<Fr>>,
}

/// One full round of a trace: the squares of the S-box inputs (the
/// circuit's auxiliary cells) and the S-box outputs of every element.
#[derive(Debug, Clone)]
pub(crate) struct FullRoundTrace {
    pub squares: Vec<Fr>,
    pub outputs: Vec<Fr>,
}

/// One group of partial rounds: squares of the S-box inputs, S-box outputs,
/// and the state after.
#[derive(Debug, Clone)]
pub(crate) struct GroupTrace {
    pub squares: Vec<Fr>,
    pub outputs: Vec<Fr>,
    pub state: Vec<Fr>,
}

/// One wrong value in a trace, with everything after it recomputed from it,
/// so that the trace breaks exactly one constraint of the circuit. S-boxes
/// are numbered in evaluation order: round 0 (element by element), the
/// first full rounds, the partial rounds, the last full rounds.
///
/// Only the soundness tests build faults: they prove such traces with the
/// real prover and require the verifier to reject them.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// S-box `n` outputs `x^5 + 1` (its square `x^2` stays right).
    Output(usize),
    /// S-box `n` has the square `x^2 + 1` and outputs `square^2 * x`.
    Square(usize),
    /// State element `element` after partial-round group `group` is one more
    /// than the group's linear map gives.
    GroupState { group: usize, element: usize },
}

/// Evaluates S-boxes in order, applying a fault to the one it names.
struct Sboxes {
    next: usize,
    fault: Option<Fault>,
}

impl Sboxes {
    /// `(x^2, x^5)` for the next S-box, faulted if it is the one.
    fn apply(&mut self, x: Fr) -> (Fr, Fr) {
        let n = self.next;
        self.next += 1;
        let mut square = x.square();
        if self.fault == Some(Fault::Square(n)) {
            square += Fr::ONE;
        }
        let mut y = square.square() * x;
        if self.fault == Some(Fault::Output(n)) {
            y += Fr::ONE;
        }
        (square, y)
    }
}

/// Every value the circuit stores for one permutation.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    /// The first half of the full rounds, then the second half.
    pub full: Vec<FullRoundTrace>,
    pub groups: Vec<GroupTrace>,
    /// Element 0 of the final state: the hash output.
    pub output: Fr,
}

impl Schedule {
    /// Derives the schedule for `params` with `group` partial rounds per group.
    pub fn new(params: &PoseidonParams, group: usize) -> Self {
        let t = params.width;
        assert_eq!(
            params.partial_rounds % group,
            0,
            "groups must tile the partial rounds"
        );
        let half = params.full_rounds / 2;
        let mds = params.mds.clone();

        // Fold the constants of the linear elements through the partial rounds.
        let mut carry = vec![Fr::ZERO; t];
        let mut partial_constants = Vec::with_capacity(params.partial_rounds);
        for r in half..half + params.partial_rounds {
            let c = &params.round_constants[r];
            partial_constants.push(c[0] + dot(&mds[0], &carry));
            let mut next = vec![Fr::ZERO; t];
            for i in 1..t {
                next[i] = dot(&mds[i], &carry) + c[i];
            }
            carry = next;
        }
        let mut full_constants: Vec<Vec<Fr>> = (0..params.rounds())
            .filter(|&r| params.is_full_round(r))
            .map(|r| params.round_constants[r].clone())
            .collect();
        for (i, c) in full_constants[half].iter_mut().enumerate() {
            *c += dot(&mds[i], &carry);
        }

        // N: the linear map of a partial round on the stored state (row 0 is
        // replaced by the S-box output, so it is zero here).
        let mut n = mds.clone();
        n[0] = vec![Fr::ZERO; t];
        let e0: Vec<Fr> = (0..t)
            .map(|i| if i == 0 { Fr::ONE } else { Fr::ZERO })
            .collect();

        // Symbolic state after q rounds of a group: a * Z + sum_p b[p] * y_p.
        let mut a: Vec<Vec<Fr>> = (0..t)
            .map(|i| {
                (0..t)
                    .map(|j| if i == j { Fr::ONE } else { Fr::ZERO })
                    .collect()
            })
            .collect();
        let mut b: Vec<Vec<Fr>> = Vec::new(); // b[p] is a column vector of length t
        let mut group_alpha = Vec::with_capacity(group);
        let mut group_beta = Vec::with_capacity(group);
        for _ in 0..group {
            group_alpha.push(row_times_matrix(&mds[0], &a));
            group_beta.push(b.iter().map(|column| dot(&mds[0], column)).collect());
            a = mat_mul(&n, &a);
            b = b.iter().map(|column| mat_vec(&n, column)).collect();
            b.push(e0.clone());
        }
        let group_delta = (0..t)
            .map(|i| b.iter().map(|column| column[i]).collect())
            .collect();
        Self {
            width: t,
            group,
            mds,
            full_constants,
            partial_constants,
            group_alpha,
            group_beta,
            group_gamma: a,
            group_delta,
        }
    }

    /// Evaluates the permutation on `[0, inputs...]` in the stored form.
    pub fn trace(&self, inputs: &[Fr]) -> Trace {
        assert_eq!(
            inputs.len() + 1,
            self.width,
            "input count must be width - 1"
        );
        let initial: Vec<Fr> = std::iter::once(Fr::ZERO)
            .chain(inputs.iter().copied())
            .collect();
        self.trace_from(&initial, None)
    }

    /// Number of S-boxes of the permutation (the range of [`Fault`] numbers).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn sbox_count(&self) -> usize {
        self.full_constants.len() * self.width + self.partial_constants.len()
    }

    /// Evaluates the permutation on any initial state (the capacity element
    /// included), with an optional fault, in the stored form.
    pub fn trace_from(&self, initial: &[Fr], fault: Option<Fault>) -> Trace {
        let t = self.width;
        assert_eq!(
            initial.len(),
            t,
            "the initial state has the permutation's width"
        );
        let half = self.full_constants.len() / 2;
        let mut sboxes = Sboxes { next: 0, fault };
        let mut full = Vec::with_capacity(self.full_constants.len());

        // The first round has no MDS before it.
        let x: Vec<Fr> = initial
            .iter()
            .zip(&self.full_constants[0])
            .map(|(s, c)| *s + c)
            .collect();
        let mut state = Self::sbox_layer(&x, &mut sboxes, &mut full);
        for constants in &self.full_constants[1..half] {
            state = self.full_round(&state, constants, &mut sboxes, &mut full);
        }

        let mut groups = Vec::with_capacity(self.partial_constants.len() / self.group);
        for (g, constants) in self.partial_constants.chunks(self.group).enumerate() {
            let mut group = GroupTrace {
                squares: Vec::new(),
                outputs: Vec::new(),
                state: Vec::new(),
            };
            for c in constants {
                let x = dot(&self.mds[0], &state) + c;
                let (square, y) = sboxes.apply(x);
                let mut next = vec![Fr::ZERO; t];
                next[0] = y;
                for (i, value) in next.iter_mut().enumerate().skip(1) {
                    *value = dot(&self.mds[i], &state);
                }
                state = next;
                group.squares.push(square);
                group.outputs.push(y);
            }
            if let Some(Fault::GroupState { group, element }) = fault {
                if group == g {
                    state[element] += Fr::ONE;
                }
            }
            group.state = state.clone();
            groups.push(group);
        }

        for constants in &self.full_constants[half..] {
            state = self.full_round(&state, constants, &mut sboxes, &mut full);
        }
        debug_assert_eq!(sboxes.next, self.sbox_count());
        let output = dot(&self.mds[0], &state);
        Trace {
            full,
            groups,
            output,
        }
    }

    /// The S-boxes of a full round on inputs `x`; returns the outputs.
    fn sbox_layer(x: &[Fr], sboxes: &mut Sboxes, full: &mut Vec<FullRoundTrace>) -> Vec<Fr> {
        let (squares, outputs): (Vec<Fr>, Vec<Fr>) = x.iter().map(|v| sboxes.apply(*v)).unzip();
        debug_assert!(sboxes.fault.is_some() || outputs.iter().zip(x).all(|(y, v)| *y == pow5(*v)));
        full.push(FullRoundTrace {
            squares,
            outputs: outputs.clone(),
        });
        outputs
    }

    fn full_round(
        &self,
        state: &[Fr],
        constants: &[Fr],
        sboxes: &mut Sboxes,
        full: &mut Vec<FullRoundTrace>,
    ) -> Vec<Fr> {
        let x: Vec<Fr> = mat_vec(&self.mds, state)
            .iter()
            .zip(constants)
            .map(|(v, c)| *v + c)
            .collect();
        Self::sbox_layer(&x, sboxes, full)
    }
}

/// `row * m` for a row vector and a square matrix.
fn row_times_matrix(row: &[Fr], m: &[Vec<Fr>]) -> Vec<Fr> {
    (0..m[0].len())
        .map(|j| {
            row.iter()
                .zip(m)
                .fold(Fr::ZERO, |acc, (r, m_row)| acc + *r * m_row[j])
        })
        .collect()
}

fn mat_mul(a: &[Vec<Fr>], b: &[Vec<Fr>]) -> Vec<Vec<Fr>> {
    a.iter().map(|row| row_times_matrix(row, b)).collect()
}
