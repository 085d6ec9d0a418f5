//! The generated contract's algorithm, in Rust: the reference the Solidity
//! verifier is tested against, and the specification a client port follows.
//!
//! It takes the same inputs as the contract (public inputs as 32-byte
//! big-endian words, proof bytes), checks them the same way (exact length,
//! canonical scalars and coordinates, points on the curve and not at
//! infinity, public inputs within their bounds) and computes the same values
//! in the same order. Its verdict must equal halo2's on every input; the
//! tests check that over valid proofs and every kind of mutation.
//!
//! Batches: each proof `k` reduces to a KZG pair (`left_k`, `right_k`) with
//! `e(left_k, [s]_2) = e(right_k, [1]_2)`. The batch checks
//! `sum_k r^k left_k` against `sum_k r^k right_k` with one pairing, where
//! `r` is the last of the hash chain `h_0 = vk_id`,
//! `h_{k+1} = keccak256(h_k || instances_k || proof_k)`, reduced mod the
//! scalar field: the pairs are functions of those bytes, so `r` is fixed
//! after them. The fixed
//! commitments and the generator appear in every `right_k`; their weighted
//! scalars are summed first, so each costs one multiplication per batch.

use alloy_primitives::{keccak256, Keccak256};
use halo2_axiom::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine, G2Prepared, G1};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::halo2curves::group::{Curve, Group};
use halo2_axiom::halo2curves::pairing::{MillerLoopResult, MultiMillerLoop};
use halo2_axiom::halo2curves::CurveAffine;

use super::plan::{Commitment, Eval, Node, Plan};

/// One proof with its public inputs, as a contract receives them.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Public inputs, 32-byte big-endian words.
    pub instances: &'a [[u8; 32]],
    /// halo2 proof bytes.
    pub proof: &'a [u8],
}

/// Verifies one proof exactly as the contract does.
pub fn verify(plan: &Plan, instances: &[[u8; 32]], proof: &[u8]) -> bool {
    verify_batch(plan, &[Item { instances, proof }])
}

/// Verifies a batch with one pairing, exactly as the contract's
/// `verifyBatch` does. An empty batch is refused.
pub fn verify_batch(plan: &Plan, items: &[Item<'_>]) -> bool {
    if items.is_empty() {
        return false;
    }
    let weight = batch_challenge(plan, items);
    let mut acc = Accumulator::new(plan);
    let mut w = Fr::ONE;
    for item in items {
        if !accumulate(plan, item, w, &mut acc) {
            return false;
        }
        w *= weight;
    }
    acc.check(plan)
}

/// The batch weight `r`; 1 for a single proof (no hashing needed).
pub fn batch_challenge(plan: &Plan, items: &[Item<'_>]) -> Fr {
    if items.len() == 1 {
        return Fr::ONE;
    }
    let mut chain: [u8; 32] = plan.vk_id.0;
    for item in items {
        let mut h = Keccak256::new();
        h.update(chain);
        for word in item.instances {
            h.update(word);
        }
        h.update(item.proof);
        chain = h.finalize().0;
    }
    fr_from_hash(chain)
}

/// Running sums of a batch.
struct Accumulator {
    left: G1,
    right: G1,
    fixed: Vec<Fr>,
    g1: Fr,
}

impl Accumulator {
    fn new(plan: &Plan) -> Self {
        Self {
            left: G1::identity(),
            right: G1::identity(),
            fixed: vec![Fr::ZERO; plan.fixed_commitments.len()],
            g1: Fr::ZERO,
        }
    }

    fn check(mut self, plan: &Plan) -> bool {
        for (s, c) in self.fixed.iter().zip(&plan.fixed_commitments) {
            self.right += *c * s;
        }
        self.right += plan.g1 * self.g1;
        let left = self.left.to_affine();
        let right = self.right.to_affine();
        let s_g2 = G2Prepared::from(plan.s_g2);
        let minus_g2 = G2Prepared::from(-plan.g2);
        bool::from(
            Bn256::multi_miller_loop(&[(&left, &s_g2), (&right, &minus_g2)])
                .final_exponentiation()
                .is_identity(),
        )
    }
}

/// `keccak` output to a challenge: the 256-bit big-endian value mod r.
fn fr_from_hash(hash: [u8; 32]) -> Fr {
    // value = hi * 2^128 + lo, reduced in the field.
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 16];
    hi.copy_from_slice(&hash[..16]);
    lo.copy_from_slice(&hash[16..]);
    let two_128 = Fr::from_u128(u128::MAX) + Fr::ONE;
    Fr::from_u128(u128::from_be_bytes(hi)) * two_128 + Fr::from_u128(u128::from_be_bytes(lo))
}

/// A canonical scalar from 32 big-endian bytes.
fn scalar(be: &[u8]) -> Option<Fr> {
    let mut repr = [0u8; 32];
    repr.copy_from_slice(be);
    repr.reverse();
    Option::from(Fr::from_repr(repr))
}

/// A point from 64 big-endian bytes: canonical coordinates, on the curve,
/// not the point at infinity (which the transcript cannot absorb).
fn point(be: &[u8]) -> Option<G1Affine> {
    let coord = |b: &[u8]| -> Option<Fq> {
        let mut repr = [0u8; 32];
        repr.copy_from_slice(b);
        repr.reverse();
        Option::from(Fq::from_repr(repr))
    };
    let (x, y) = (coord(&be[..32])?, coord(&be[32..64])?);
    if bool::from(x.is_zero() & y.is_zero()) {
        return None;
    }
    Option::from(G1Affine::from_xy(x, y))
}

/// A public input within its bound (`bits` < 254), or any canonical
/// field element.
pub(crate) fn instance(word: &[u8; 32], bits: u32) -> Option<Fr> {
    if bits < 254 {
        let zero_bytes = (256 - bits as usize) / 8;
        let top_bits = (256 - bits as usize) % 8;
        if word[..zero_bytes].iter().any(|b| *b != 0) {
            return None;
        }
        if top_bits != 0 && word[zero_bytes] >> (8 - top_bits) != 0 {
            return None;
        }
    }
    scalar(word)
}

/// Snark-verifier's EVM transcript: absorbed bytes are hashed with
/// keccak256 when a challenge is squeezed, and the hash replaces them; a
/// squeeze right after a squeeze hashes the previous hash and a byte 1.
struct Transcript {
    buf: Vec<u8>,
}

impl Transcript {
    fn absorb(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn squeeze(&mut self) -> Fr {
        if self.buf.len() == 32 {
            self.buf.push(1);
        }
        let hash: [u8; 32] = keccak256(&self.buf).0;
        self.buf = hash.to_vec();
        fr_from_hash(hash)
    }
}

/// Checks one proof's encoding, replays its transcript and adds its KZG
/// pair, weighted by `w`, to the accumulator. False on any malformed input.
fn accumulate(plan: &Plan, item: &Item<'_>, w: Fr, acc: &mut Accumulator) -> bool {
    let layout = plan.layout();
    let proof = item.proof;
    if proof.len() != layout.len || item.instances.len() != plan.num_instances() {
        return false;
    }
    let Some(instances) = item
        .instances
        .iter()
        .zip(&plan.instance_bits)
        .map(|(word, bits)| instance(word, *bits))
        .collect::<Option<Vec<Fr>>>()
    else {
        return false;
    };
    let points = |at: usize, count: usize| -> Option<Vec<G1Affine>> {
        (0..count)
            .map(|i| point(&proof[at + 64 * i..at + 64 * i + 64]))
            .collect()
    };
    let scalars = |at: usize, count: usize| -> Option<Vec<Fr>> {
        (0..count)
            .map(|i| scalar(&proof[at + 32 * i..at + 32 * i + 32]))
            .collect()
    };
    let (Some(advice), Some(random), Some(quotient), Some(w1), Some(w2)) = (
        points(layout.advice, plan.num_advice),
        points(layout.random, 1),
        points(layout.quotient, plan.quotient_pieces),
        points(layout.w, 1),
        points(layout.w_prime, 1),
    ) else {
        return false;
    };
    let (Some(advice_evals), Some(fixed_evals), Some(random_eval)) = (
        scalars(layout.advice_evals, plan.advice_queries.len()),
        scalars(layout.fixed_evals, plan.fixed_queries.len()),
        scalars(layout.random_eval, 1),
    ) else {
        return false;
    };
    let (random, random_eval, w1, w2) = (random[0], random_eval[0], w1[0], w2[0]);

    // Transcript, in halo2's order.
    let mut t = Transcript { buf: Vec::new() };
    t.absorb(&be(&plan.transcript_repr));
    for word in item.instances {
        t.absorb(word);
    }
    t.absorb(&proof[layout.advice..layout.random]);
    let _theta = t.squeeze();
    let _beta = t.squeeze();
    let _gamma = t.squeeze();
    t.absorb(&proof[layout.random..layout.quotient]);
    let y = t.squeeze();
    t.absorb(&proof[layout.quotient..layout.advice_evals]);
    let x = t.squeeze();
    t.absorb(&proof[layout.advice_evals..layout.w]);
    let shplonk_y = t.squeeze();
    let v = t.squeeze();
    t.absorb(&proof[layout.w..layout.w_prime]);
    let u = t.squeeze();

    // Vanishing and Lagrange values at x.
    let n = plan.n();
    let xn = x.pow_vartime([n]);
    let Some(xn_minus_one_inv) = Option::<Fr>::from((xn - Fr::ONE).invert()) else {
        return false;
    };
    let Some(instance_evals) = instance_evals(plan, &instances, x, xn) else {
        return false;
    };

    // Gates, folded with powers of y, divided by x^n - 1.
    let mut values: Vec<Fr> = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        let value = match *node {
            Node::Const(c) => c,
            Node::Advice(i) => advice_evals[i],
            Node::Fixed(i) => fixed_evals[i],
            Node::Instance(i) => instance_evals[i],
            Node::Neg(a) => -values[a],
            Node::Add(a, b) => values[a] + values[b],
            Node::Mul(a, b) => values[a] * values[b],
        };
        values.push(value);
    }
    let h_eval = plan
        .gate_roots
        .iter()
        .fold(Fr::ZERO, |acc, root| acc * y + values[*root])
        * xn_minus_one_inv;

    // SHPLONK.
    let rotations = plan.all_rotations();
    let diff = |rot: i32| u - x * plan.omega_pow(rot);
    let z_diff = |s: usize| -> Fr {
        rotations
            .iter()
            .filter(|r| !plan.sets[s].rotations.contains(r))
            .fold(Fr::ONE, |acc, r| acc * diff(*r))
    };
    let z_0: Fr = plan.sets[0]
        .rotations
        .iter()
        .fold(Fr::ONE, |acc, r| acc * diff(*r));
    let Some(z_diff_0_inv) = Option::<Fr>::from(z_diff(0).invert()) else {
        return false;
    };
    let Some(x_inv) = Option::<Fr>::from(x.invert()) else {
        return false;
    };
    let mut right = G1::identity();
    let mut r_outer = Fr::ZERO;
    let mut v_pow = Fr::ONE;
    for (s, set) in plan.sets.iter().enumerate() {
        let scale = if s == 0 {
            v_pow
        } else {
            v_pow * z_diff(s) * z_diff_0_inv
        };
        let m = set.rotations.len();
        let x_pow_inv = x_inv.pow_vartime([m as u64 - 1]);
        let basis: Vec<Fr> = (0..m)
            .map(|t| {
                let num = (0..m)
                    .filter(|j| *j != t)
                    .fold(Fr::ONE, |acc, j| acc * diff(set.rotations[j]));
                num * x_pow_inv * plan.set_denominator(s, t).invert().unwrap_or(Fr::ZERO)
            })
            .collect();
        let mut y_pow = Fr::ONE;
        let mut r_inner = Fr::ZERO;
        for (commitment, evals) in &set.commitments {
            let r_eval = evals.iter().zip(&basis).fold(Fr::ZERO, |acc, (e, l)| {
                let e = match *e {
                    Eval::Advice(i) => advice_evals[i],
                    Eval::Fixed(i) => fixed_evals[i],
                    Eval::Quotient => h_eval,
                    Eval::Random => random_eval,
                };
                acc + e * l
            });
            r_inner += y_pow * r_eval;
            let k = scale * y_pow * w;
            match *commitment {
                Commitment::Advice(c) => right += advice[c] * k,
                Commitment::Fixed(c) => acc.fixed[c] += k,
                Commitment::Random => right += random * k,
                Commitment::Quotient => {
                    let mut kp = k;
                    for piece in &quotient {
                        right += *piece * kp;
                        kp *= xn;
                    }
                }
            }
            y_pow *= shplonk_y;
        }
        r_outer += scale * r_inner;
        v_pow *= v;
    }
    acc.g1 -= r_outer * w;
    right += w1 * (-z_0 * w);
    right += w2 * (u * w);
    acc.right += right;
    acc.left += w2 * w;
    true
}

/// The instance queries' evaluations at `x`, as the contract computes
/// them: instance row `j` at rotation `r` contributes `inst_j * L_{j-r}(x)`,
/// with `L_i(x) = w^i (x^n - 1) / (n (x - w^i))` (halo2's Lagrange basis).
/// For the contiguous range of indices `i` ([`Plan::lagrange_indices`]),
/// `d_i = w^i / (x - w^i) = 1 / (x w^{-i} - 1)`: the denominators come from
/// `x w^{-first}` by repeated multiplication with `w^{-1}` and are inverted
/// together (prefix products, one inversion); each query's sum
/// `sum_j inst_j d_{j-r}` is then multiplied by `(x^n - 1) / n`. None if a
/// denominator is zero (then `x^n = 1`, which the quotient's division
/// refuses anyway).
fn instance_evals(plan: &Plan, instances: &[Fr], x: Fr, xn: Fr) -> Option<Vec<Fr>> {
    let range = plan.lagrange_indices();
    let first = *range.start();
    let omega_inv = plan.omega_pow(-1);
    let mut xw = x * plan.omega_pow(-first);
    let mut prefix = Vec::with_capacity(range.clone().count());
    let mut acc = Fr::ONE;
    for _ in range {
        prefix.push(acc);
        acc *= xw - Fr::ONE;
        xw *= omega_inv;
    }
    let mut inv = Option::<Fr>::from(acc.invert())?;
    let omega = plan.omega_pow(1);
    // Backwards: `xw` steps back to `x w^{-i}`; `inv` is the inverse of the
    // product of the denominators up to and including `i`.
    let mut d = prefix;
    for slot in d.iter_mut().rev() {
        xw *= omega;
        let value = *slot * inv;
        inv *= xw - Fr::ONE;
        *slot = value;
    }
    let n_inv = Fr::from(plan.n()).invert().unwrap_or(Fr::ZERO);
    let factor = (xn - Fr::ONE) * n_inv;
    Some(
        plan.instance_rotations
            .iter()
            .map(|&rot| {
                let sum = instances
                    .iter()
                    .enumerate()
                    .fold(Fr::ZERO, |sum, (j, value)| {
                        sum + *value * d[(j as i32 - rot - first) as usize]
                    });
                sum * factor
            })
            .collect(),
    )
}

/// A field element as 32 big-endian bytes.
pub(crate) fn be(f: &Fr) -> [u8; 32] {
    let mut out = f.to_repr();
    out.reverse();
    out
}
