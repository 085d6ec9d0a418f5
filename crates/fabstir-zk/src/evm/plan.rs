//! What an EVM verifier computes for one verifying key, derived from it.
//!
//! halo2's verifier is generic: it walks the constraint system, builds the
//! queries and lets SHPLONK group them. A contract cannot afford that walk,
//! so the walk is done here, once, when the verifier is generated: the
//! [`Plan`] lists the proof's layout, the gate polynomials as one shared
//! expression graph (each distinct subexpression once), and the SHPLONK
//! rotation sets in exactly the order halo2 builds them. The Solidity
//! generator ([`super::solidity`]) and the reference implementation
//! ([`super::native`]) both follow the plan step by step, so a contract and
//! Rust compute the same values in the same order.
//!
//! Supported circuits: one advice phase, no permutation argument, no
//! lookups, no challenges, one instance column (the shape of this crate's
//! circuit); [`Plan::new`] refuses anything else.

use std::collections::HashMap;

use halo2_axiom::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::plonk::Expression;
use halo2_axiom::poly::commitment::ParamsProver as _;
use halo2_axiom::poly::kzg::commitment::ParamsKZG;

use crate::error::EvmError;
use crate::keys::{VerifyingKey, VkId};

/// A polynomial commitment the verifier opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Commitment {
    /// Advice column `c` (read from the proof).
    Advice(usize),
    /// Fixed column `c` (part of the verifying key).
    Fixed(usize),
    /// The quotient `h_0 + x^n h_1 + x^{2n} h_2 + ...` (pieces read from the proof).
    Quotient,
    /// The vanishing argument's random polynomial (read from the proof).
    Random,
}

/// Where the claimed evaluation of a commitment at one point comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// Advice query `i`: the proof's `i`-th advice evaluation.
    Advice(usize),
    /// Fixed query `i`: the proof's `i`-th fixed evaluation.
    Fixed(usize),
    /// The quotient's evaluation, computed from the gates.
    Quotient,
    /// The random polynomial's evaluation (read from the proof).
    Random,
}

/// Commitments opened at the same set of points, in halo2's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSet {
    /// The points, as rotations of the challenge `x` (`x * omega^r`).
    pub rotations: Vec<i32>,
    /// Each commitment with its evaluations, one per rotation.
    pub commitments: Vec<(Commitment, Vec<Eval>)>,
}

/// A node of the gates' expression graph. Children precede parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant.
    Const(Fr),
    /// Advice query `i`.
    Advice(usize),
    /// Fixed query `i`.
    Fixed(usize),
    /// Instance query `i` (computed by the verifier from the public inputs).
    Instance(usize),
    /// `-a`.
    Neg(usize),
    /// `a + b`.
    Add(usize, usize),
    /// `a * b`.
    Mul(usize, usize),
}

/// Everything an EVM verifier needs, in the order it needs it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Identity of the verifying key.
    pub vk_id: VkId,
    /// Circuit version of the key.
    pub circuit_version: u8,
    /// log2 of the number of rows.
    pub k: u32,
    /// Generator of the evaluation domain.
    pub omega: Fr,
    /// The key's transcript representation, the transcript's first scalar.
    pub transcript_repr: Fr,
    /// Upper bound (exclusive, in bits) of each public input; 254 means any
    /// canonical field element.
    pub instance_bits: Vec<u32>,
    /// Rotation of each instance query.
    pub instance_rotations: Vec<i32>,
    /// (column, rotation) of each advice query, in halo2's order.
    pub advice_queries: Vec<(usize, i32)>,
    /// (column, rotation) of each fixed query, in halo2's order.
    pub fixed_queries: Vec<(usize, i32)>,
    /// Number of advice columns (commitments at the start of the proof).
    pub num_advice: usize,
    /// Number of quotient pieces.
    pub quotient_pieces: usize,
    /// The gates' expression graph.
    pub nodes: Vec<Node>,
    /// The graph node of each gate polynomial, in halo2's order.
    pub gate_roots: Vec<usize>,
    /// SHPLONK rotation sets, in halo2's order.
    pub sets: Vec<RotationSet>,
    /// Commitments to the fixed columns.
    pub fixed_commitments: Vec<G1Affine>,
    /// `[1]_1`, the generator the SRS starts with.
    pub g1: G1Affine,
    /// `[1]_2`.
    pub g2: G2Affine,
    /// `[s]_2`.
    pub s_g2: G2Affine,
}

/// Byte offsets of the parts of a halo2 proof under [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofLayout {
    /// Advice commitments (64 bytes each).
    pub advice: usize,
    /// The random polynomial's commitment.
    pub random: usize,
    /// The quotient pieces.
    pub quotient: usize,
    /// Advice evaluations (32 bytes each).
    pub advice_evals: usize,
    /// Fixed evaluations.
    pub fixed_evals: usize,
    /// The random polynomial's evaluation.
    pub random_eval: usize,
    /// SHPLONK's first opening point `W`.
    pub w: usize,
    /// SHPLONK's second opening point `W'`.
    pub w_prime: usize,
    /// Total length.
    pub len: usize,
}

impl Plan {
    /// Derives the plan from a verifying key.
    pub fn new(vk: &VerifyingKey) -> Result<Self, EvmError> {
        Self::from_halo2(
            &vk.vk,
            vk.srs.params(),
            vk.id(),
            vk.version().as_u8(),
            crate::circuit::layout::instance::BITS[..vk.version().instance_count()].to_vec(),
        )
    }

    /// The plan of a batch verifying key: the version-2 gates in the batch
    /// layout, each band of `N` public inputs with its bound (one run of
    /// equal bounds per band, so the loops verifier's code does not grow
    /// with `N`).
    pub fn for_batch(vk: &crate::batch::BatchVerifyingKey) -> Result<Self, EvmError> {
        let n = vk.size().get();
        let bits = crate::batch::layout::band::BITS
            .iter()
            .flat_map(|bits| std::iter::repeat_n(*bits, n))
            .collect();
        Self::from_halo2(
            vk.halo2(),
            vk.srs().params(),
            vk.id(),
            crate::CircuitVersion::V2.as_u8(),
            bits,
        )
    }

    /// Derives the plan from a halo2 verifying key and its parameters, for
    /// a circuit of the supported shape (one instance column, no
    /// permutation, lookups or challenges) other than this crate's
    /// commitment circuit: `instance_bits` gives each public input's bound
    /// (exclusive, in bits; 254 or more means any canonical field element),
    /// `vk_id` and `circuit_version` are what the contract reports.
    pub fn from_halo2(
        halo2: &halo2_axiom::plonk::VerifyingKey<G1Affine>,
        params: &ParamsKZG<Bn256>,
        vk_id: VkId,
        circuit_version: u8,
        instance_bits: Vec<u32>,
    ) -> Result<Self, EvmError> {
        let cs = halo2.cs();
        let unsupported = |what: &str| Err(EvmError::Unsupported(what.to_string()));
        if cs.num_instance_columns() != 1 {
            return unsupported("more than one instance column");
        }
        if cs.num_challenges() != 0 {
            return unsupported("challenges");
        }
        if !cs.permutation().get_columns().is_empty() {
            return unsupported("a permutation argument");
        }
        if !cs.lookups().is_empty() {
            return unsupported("lookup arguments");
        }
        let advice_queries: Vec<(usize, i32)> = cs
            .advice_queries()
            .iter()
            .map(|(c, r)| (c.index(), r.0))
            .collect();
        let fixed_queries: Vec<(usize, i32)> = cs
            .fixed_queries()
            .iter()
            .map(|(c, r)| (c.index(), r.0))
            .collect();
        let instance_rotations: Vec<i32> = cs.instance_queries().iter().map(|(_, r)| r.0).collect();

        let mut graph = Graph::default();
        let mut gate_roots = Vec::new();
        for gate in cs.gates() {
            for poly in gate.polynomials() {
                gate_roots.push(graph.add(
                    poly,
                    &advice_queries,
                    &fixed_queries,
                    &instance_rotations,
                )?);
            }
        }

        let domain = halo2.get_domain();
        Ok(Self {
            vk_id,
            circuit_version,
            k: domain.k(),
            omega: domain.get_omega(),
            transcript_repr: halo2.transcript_repr(),
            instance_bits: instance_bits.into_iter().map(|b| b.min(254)).collect(),
            sets: rotation_sets(&advice_queries, &fixed_queries),
            advice_queries,
            fixed_queries,
            instance_rotations,
            num_advice: cs.num_advice_columns(),
            quotient_pieces: domain.get_quotient_poly_degree(),
            nodes: graph.nodes,
            gate_roots,
            fixed_commitments: halo2.fixed_commitments().clone(),
            g1: params.get_g()[0],
            g2: params.g2(),
            s_g2: params.s_g2(),
        })
    }

    /// Number of rows, `2^k`.
    pub fn n(&self) -> u64 {
        1 << self.k
    }

    /// Number of public inputs.
    pub fn num_instances(&self) -> usize {
        self.instance_bits.len()
    }

    /// Byte layout of a proof.
    pub fn layout(&self) -> ProofLayout {
        let advice = 0;
        let random = advice + 64 * self.num_advice;
        let quotient = random + 64;
        let advice_evals = quotient + 64 * self.quotient_pieces;
        let fixed_evals = advice_evals + 32 * self.advice_queries.len();
        let random_eval = fixed_evals + 32 * self.fixed_queries.len();
        let w = random_eval + 32;
        let w_prime = w + 64;
        ProofLayout {
            advice,
            random,
            quotient,
            advice_evals,
            fixed_evals,
            random_eval,
            w,
            w_prime,
            len: w_prime + 64,
        }
    }

    /// `omega^r` for a rotation `r` (negative rotations wrap around).
    pub fn omega_pow(&self, rotation: i32) -> Fr {
        let n = self.n() as i64;
        let e = (rotation as i64).rem_euclid(n) as u64;
        self.omega.pow_vartime([e])
    }

    /// Every rotation SHPLONK opens at, in first-use order.
    pub fn all_rotations(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for set in &self.sets {
            for r in &set.rotations {
                if !out.contains(r) {
                    out.push(*r);
                }
            }
        }
        out
    }

    /// Indices `i` of the Lagrange polynomials `L_i(x)` the instance
    /// evaluations need: instance row `j` queried at rotation `r` is
    /// `L_{j - r}(x)`.
    pub fn lagrange_indices(&self) -> std::ops::RangeInclusive<i32> {
        let max_rot = self.instance_rotations.iter().copied().max().unwrap_or(0);
        let min_rot = self.instance_rotations.iter().copied().min().unwrap_or(0);
        -max_rot..=(self.num_instances() as i32 - 1 - min_rot)
    }

    /// For rotation set `s` and its point `t`, `prod_{j != t} (w^{r_t} - w^{r_j})`:
    /// the Lagrange denominator at `x = 1`, a constant (at `x` it is this
    /// times `x^{m-1}`).
    pub fn set_denominator(&self, s: usize, t: usize) -> Fr {
        let rots = &self.sets[s].rotations;
        let wt = self.omega_pow(rots[t]);
        rots.iter()
            .enumerate()
            .filter(|(j, _)| *j != t)
            .fold(Fr::ONE, |acc, (_, r)| acc * (wt - self.omega_pow(*r)))
    }
}

/// The gates' expressions with common subexpressions shared.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    index: HashMap<NodeKey, usize>,
}

/// Hashable form of a node (field elements by their representation).
#[derive(PartialEq, Eq, Hash)]
enum NodeKey {
    Const([u8; 32]),
    Other(NodeShape),
}

#[derive(PartialEq, Eq, Hash)]
enum NodeShape {
    Advice(usize),
    Fixed(usize),
    Instance(usize),
    Neg(usize),
    Add(usize, usize),
    Mul(usize, usize),
}

impl Graph {
    fn push(&mut self, node: Node) -> usize {
        let key = match node {
            Node::Const(c) => NodeKey::Const(c.to_repr()),
            Node::Advice(i) => NodeKey::Other(NodeShape::Advice(i)),
            Node::Fixed(i) => NodeKey::Other(NodeShape::Fixed(i)),
            Node::Instance(i) => NodeKey::Other(NodeShape::Instance(i)),
            Node::Neg(a) => NodeKey::Other(NodeShape::Neg(a)),
            // Sums and products are commutative: one key for both orders.
            Node::Add(a, b) => NodeKey::Other(NodeShape::Add(a.min(b), a.max(b))),
            Node::Mul(a, b) => NodeKey::Other(NodeShape::Mul(a.min(b), a.max(b))),
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.nodes.push(node);
        self.index.insert(key, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    fn add(
        &mut self,
        e: &Expression<Fr>,
        advice: &[(usize, i32)],
        fixed: &[(usize, i32)],
        instance: &[i32],
    ) -> Result<usize, EvmError> {
        let find = |queries: &[(usize, i32)], c: usize, r: i32, what: &str| {
            queries
                .iter()
                .position(|q| *q == (c, r))
                .ok_or_else(|| EvmError::Unsupported(format!("{what} query not in the key")))
        };
        Ok(match e {
            Expression::Constant(c) => self.push(Node::Const(*c)),
            Expression::Selector(_) => {
                return Err(EvmError::Unsupported("virtual selectors".into()));
            }
            Expression::Challenge(_) => return Err(EvmError::Unsupported("challenges".into())),
            Expression::Fixed(q) => {
                let i = find(fixed, q.column_index(), q.rotation().0, "fixed")?;
                self.push(Node::Fixed(i))
            }
            Expression::Advice(q) => {
                let i = find(advice, q.column_index(), q.rotation().0, "advice")?;
                self.push(Node::Advice(i))
            }
            Expression::Instance(q) => {
                let i = instance
                    .iter()
                    .position(|r| *r == q.rotation().0)
                    .ok_or_else(|| EvmError::Unsupported("instance query not in the key".into()))?;
                self.push(Node::Instance(i))
            }
            Expression::Negated(a) => {
                let a = self.add(a, advice, fixed, instance)?;
                self.push(Node::Neg(a))
            }
            Expression::Sum(a, b) => {
                let a = self.add(a, advice, fixed, instance)?;
                let b = self.add(b, advice, fixed, instance)?;
                self.push(Node::Add(a, b))
            }
            Expression::Product(a, b) => {
                let a = self.add(a, advice, fixed, instance)?;
                let b = self.add(b, advice, fixed, instance)?;
                self.push(Node::Mul(a, b))
            }
            Expression::Scaled(a, c) => {
                let a = self.add(a, advice, fixed, instance)?;
                let c = self.push(Node::Const(*c));
                self.push(Node::Mul(a, c))
            }
        })
    }
}

/// halo2's SHPLONK grouping (`construct_intermediate_sets`): queries in the
/// verifier's order (advice, fixed, quotient, random); commitments in order
/// of first query; commitments with the same set of points share a set, in
/// order of their first commitment.
fn rotation_sets(advice: &[(usize, i32)], fixed: &[(usize, i32)]) -> Vec<RotationSet> {
    let queries: Vec<(Commitment, i32, Eval)> = advice
        .iter()
        .enumerate()
        .map(|(i, &(c, r))| (Commitment::Advice(c), r, Eval::Advice(i)))
        .chain(
            fixed
                .iter()
                .enumerate()
                .map(|(i, &(c, r))| (Commitment::Fixed(c), r, Eval::Fixed(i))),
        )
        .chain([
            (Commitment::Quotient, 0, Eval::Quotient),
            (Commitment::Random, 0, Eval::Random),
        ])
        .collect();
    // Each commitment's points, in first-query order.
    let mut per_commitment: Vec<(Commitment, Vec<(i32, Eval)>)> = Vec::new();
    for (c, r, e) in queries {
        match per_commitment.iter_mut().find(|(pc, _)| *pc == c) {
            Some((_, points)) => points.push((r, e)),
            None => per_commitment.push((c, vec![(r, e)])),
        }
    }
    let mut sets: Vec<RotationSet> = Vec::new();
    for (c, mut points) in per_commitment {
        points.sort_by_key(|(r, _)| *r);
        let rotations: Vec<i32> = points.iter().map(|(r, _)| *r).collect();
        let evals: Vec<Eval> = points.iter().map(|(_, e)| *e).collect();
        match sets.iter_mut().find(|s| s.rotations == rotations) {
            Some(set) => set.commitments.push((c, evals)),
            None => sets.push(RotationSet {
                rotations,
                commitments: vec![(c, evals)],
            }),
        }
    }
    sets
}
