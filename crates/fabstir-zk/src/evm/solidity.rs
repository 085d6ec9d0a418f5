//! The Solidity source of a verifier for one verifying key.
//!
//! The contract's text is the template `templates/FabstirVerifier.sol.tmpl`
//! (see `template.rs`); this module fills in the key's figures and
//! memory layout, and generates the straight-line Yul of the verification
//! steps from the [`Plan`].
//!
//! The contract follows [`super::native`] step by step (that module is its
//! specification and its test oracle). Design, for gas and for EIP-170's
//! 24,576-byte limit on runtime code:
//! - everything is straight-line inline assembly generated from the
//!   [`Plan`]: no loops over the constraint system, no generic MSM; the
//!   public inputs are the exception in [`Mode::Loops`] (keys with more than
//!   [`UNROLL_LIMIT`] of them), where they are checked, and their Lagrange
//!   denominators computed, inverted and summed, in loops, so that the code
//!   does not grow with their number;
//! - the gates' ~350 distinct constants live in a second contract, deployed
//!   by the verifier's constructor, and are copied into memory once per call
//!   (`extcodecopy`): in code they would cost 33 bytes per use;
//! - every input is checked before any precompile sees it (exact length,
//!   canonical scalars and coordinates, points on the curve, public inputs
//!   within their bounds), so an invalid proof returns `false` early and no
//!   precompile fails and burns the gas it was given;
//! - batches weight each proof's KZG pair by powers of one challenge and
//!   check them with one pairing; the fixed commitments' and the
//!   generator's scalars are summed across the batch first.

use std::collections::HashMap;
use std::fmt::Write as _;

use halo2_axiom::halo2curves::bn256::{Fq, Fr, G1Affine, G2Affine};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};

use super::native::be;
use super::plan::{Commitment, Eval, Node, Plan};
use super::template;

/// Largest constant written inline rather than loaded from the constants
/// contract (a `PUSH` of up to 4 bytes).
const SMALL: u64 = 1 << 32;

/// Offset of the Lagrange array ([`Mode::Loops`]) in the transcript buffer:
/// after the modexp precompile's six input words.
const LAGRANGE_AT: usize = 0xc0;

/// Instance queries evaluated in one pass over the public inputs
/// ([`Mode::Loops`]): one stack accumulator each.
const ROTATIONS_PER_PASS: usize = 6;

/// Lagrange denominators per iteration of `inverses()`'s loops
/// ([`Mode::Loops`]).
const UNROLL: usize = 4;

/// Public inputs per iteration of `instanceEvals()`'s passes
/// ([`Mode::Loops`]); the code adds this many products before reducing.
const INPUTS_PER_ITERATION: usize = 4;

/// Nesting depth at which an expression is stored to memory, so that the
/// modulus (a stack variable) stays within reach of `DUP16`.
const MAX_INLINE_HEIGHT: usize = 4;

/// Keys with more public inputs than this get [`Mode::Loops`].
pub const UNROLL_LIMIT: usize = 16;

/// How the generated contract handles the public inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `FabstirVerifier` (`IFabstirVerifier`): `verify(uint256[N], bytes)`;
    /// the public inputs' checks and Lagrange evaluations are unrolled, one
    /// line per public input (and per query): the cheapest code for a few
    /// public inputs.
    Unrolled,
    /// `FabstirBatchVerifier` (`IFabstirBatchVerifier`):
    /// `verify(uint256[], bytes)`; the public inputs are checked in one loop
    /// per run of equal bounds, the Lagrange denominators are computed and
    /// inverted in loops, and the instance queries are evaluated in one pass
    /// over the public inputs: code size independent of their number.
    Loops,
}

impl Mode {
    /// The mode of `plan`'s verifier: [`Mode::Loops`] for more than
    /// [`UNROLL_LIMIT`] public inputs.
    pub fn for_plan(plan: &Plan) -> Self {
        if plan.num_instances() > UNROLL_LIMIT {
            Self::Loops
        } else {
            Self::Unrolled
        }
    }

    /// The name of the generated contract (and of its `.sol` file).
    pub fn contract_name(self) -> &'static str {
        match self {
            Self::Unrolled => "FabstirVerifier",
            Self::Loops => "FabstirBatchVerifier",
        }
    }
}

/// The generated files.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Solidity source of the contract ([`Mode::contract_name`]).
    pub source: String,
    /// Number of constants held by the constants contract.
    pub constants: usize,
    /// The mode it was generated in.
    pub mode: Mode,
}

/// Generates the verifier contract for `plan`, in [`Mode::for_plan`].
pub fn generate(plan: &Plan) -> Verifier {
    generate_with(plan, Mode::for_plan(plan))
}

/// Generates the verifier contract for `plan` in `mode` (any key can have
/// either; the tests force [`Mode::Loops`] on the development key).
pub fn generate_with(plan: &Plan, mode: Mode) -> Verifier {
    let mut g = Gen::new(plan, mode);
    g.gates();
    let source = g.contract();
    Verifier {
        source,
        constants: g.consts.len(),
        mode,
    }
}

fn hex_fr(f: &Fr) -> String {
    format!("0x{}", hex::encode(be(f)))
}

fn hex_fq(f: &Fq) -> String {
    let mut b = f.to_repr();
    b.as_mut().reverse();
    format!("0x{}", hex::encode(b.as_ref()))
}

fn small(f: &Fr) -> Option<u64> {
    let b = be(f);
    if b[..24].iter().any(|x| *x != 0) {
        return None;
    }
    let v = u64::from_be_bytes(b[24..].try_into().unwrap_or([0xff; 8]));
    (v < SMALL).then_some(v)
}

/// Memory slots, allocated once per contract.
struct Memory {
    next: usize,
    named: HashMap<String, usize>,
}

impl Memory {
    fn alloc(&mut self, name: &str, words: usize) -> usize {
        let at = self.next;
        self.next += 32 * words;
        self.named.insert(name.to_string(), at);
        at
    }

    fn get(&self, name: &str) -> usize {
        self.named[name]
    }
}

struct Gen<'a> {
    plan: &'a Plan,
    mode: Mode,
    mem: Memory,
    /// Distinct large constants, in data-contract order.
    consts: Vec<Fr>,
    const_index: HashMap<[u8; 32], usize>,
    /// Expression of each graph node, and its nesting height.
    exprs: Vec<(String, usize)>,
    rotations: Vec<i32>,
    lagrange: Vec<i32>,
    /// Values to invert, in batch order: their memory slots.
    inverses: Vec<(String, usize)>,
    /// The gates' code.
    gate_lines: Vec<String>,
    /// Memory words the gates store intermediate values in.
    spill_words: usize,
}

impl<'a> Gen<'a> {
    fn new(plan: &'a Plan, mode: Mode) -> Self {
        let mut mem = Memory {
            next: 0x80,
            named: HashMap::new(),
        };
        let mut consts = Vec::new();
        let mut const_index = HashMap::new();
        for node in &plan.nodes {
            if let Node::Const(c) = node {
                if small(c).is_none() && !const_index.contains_key(&be(c)) {
                    const_index.insert(be(c), consts.len());
                    consts.push(*c);
                }
            }
        }
        mem.alloc("CONSTS", consts.len());
        for name in [
            "PROOF", "INST", "WEIGHT", "Y", "X", "SY", "V", "U", "XN", "HEVAL", "ROUTER",
        ] {
            mem.alloc(name, 1);
        }
        let rotations = plan.all_rotations();
        for (j, _) in rotations.iter().enumerate() {
            mem.alloc(&format!("D{j}"), 1);
        }
        for (s, _) in plan.sets.iter().enumerate() {
            mem.alloc(&format!("ZDIFF{s}"), 1);
        }
        mem.alloc("Z0", 1);
        let lagrange: Vec<i32> = plan.lagrange_indices().collect();
        let mut inverses = vec![
            ("xn - 1".to_string(), mem.alloc("INV_XN1", 1)),
            ("x".to_string(), mem.alloc("INV_X", 1)),
            ("z_diff_0".to_string(), mem.alloc("INV_ZDIFF0", 1)),
        ];
        if mode == Mode::Unrolled {
            for i in &lagrange {
                let name = format!("INV_L{}", i - lagrange[0]);
                inverses.push((format!("x - w^{i}"), mem.alloc(&name, 1)));
            }
        }
        mem.alloc("PREFIX", inverses.len());
        mem.alloc("VPOW", 1);
        let max_points = plan
            .sets
            .iter()
            .map(|s| s.rotations.len())
            .max()
            .unwrap_or(1);
        for t in 0..max_points {
            mem.alloc(&format!("BASIS{t}"), 1);
        }
        for (q, _) in plan.instance_rotations.iter().enumerate() {
            mem.alloc(&format!("IE{q}"), 1);
        }
        let evals = plan.advice_queries.len() + plan.fixed_queries.len() + 1;
        mem.alloc("EV", evals);
        mem.alloc("FACC", plan.fixed_commitments.len());
        mem.alloc("GACC", 1);
        mem.alloc("RIGHT", 2);
        mem.alloc("LEFT", 2);
        mem.alloc("EC", 4);
        Self {
            plan,
            mode,
            mem,
            consts,
            const_index,
            exprs: Vec::new(),
            rotations,
            lagrange,
            inverses,
            gate_lines: Vec::new(),
            spill_words: 0,
        }
    }

    fn m(&self, name: &str) -> String {
        format!("0x{:x}", self.mem.get(name))
    }

    /// Memory address of evaluation `e` (advice, fixed or random) in `EV`.
    fn eval_addr(&self, e: Eval) -> String {
        let ev = self.mem.get("EV");
        let n_adv = self.plan.advice_queries.len();
        let n_fix = self.plan.fixed_queries.len();
        match e {
            Eval::Advice(i) => format!("mload(0x{:x})", ev + 32 * i),
            Eval::Fixed(i) => format!("mload(0x{:x})", ev + 32 * (n_adv + i)),
            Eval::Random => format!("mload(0x{:x})", ev + 32 * (n_adv + n_fix)),
            Eval::Quotient => format!("mload({})", self.m("HEVAL")),
        }
    }

    /// The contract: [`template::VERIFIER`] filled with the key's figures,
    /// the memory layout and the generated Yul.
    fn contract(&mut self) -> String {
        let plan = self.plan;
        let n = plan.num_instances();
        let constants: String = self.consts.iter().map(|c| hex::encode(be(c))).collect();
        let helpers = self.helpers();
        let steps = self.accumulate_steps();
        let finish = self.finish_lines();
        let hex = |v: usize| format!("0x{v:x}");
        let values = [
            ("VK_ID", format!("0x{}", hex::encode(plan.vk_id.0))),
            ("CIRCUIT_VERSION", plan.circuit_version.to_string()),
            ("N", n.to_string()),
            ("PROOF_LENGTH", plan.layout().len.to_string()),
            (
                "CONSTANTS_CODE_LENGTH",
                (32 * self.consts.len() + 1).to_string(),
            ),
            ("CONSTANTS", constants),
            ("INSTANCES_BYTES", (32 * n).to_string()),
            ("CHAIN_PROOF_OFFSET", (32 + 32 * n).to_string()),
            ("BUFFER", hex(self.tb())),
            ("MEMORY_END", hex(self.spill_base() + 32 * self.spill_words)),
            ("CONSTANTS_AT", self.m("CONSTS")),
            ("CONSTANTS_BYTES", (32 * self.consts.len()).to_string()),
            ("SUMS_AT", self.m("FACC")),
            (
                "SUMS_BYTES",
                (self.mem.get("EC") - self.mem.get("FACC")).to_string(),
            ),
            ("YUL_HELPERS", helpers),
            ("STEPS", steps),
            ("PROOF_SLOT", self.m("PROOF")),
            ("INSTANCES_SLOT", self.m("INST")),
            ("WEIGHT_SLOT", self.m("WEIGHT")),
            ("INVERSES_AT", hex(self.inverses[0].1)),
            ("PREFIX_AT", hex(self.mem.get("PREFIX"))),
            ("INVERSES", self.inverses.len().to_string()),
            ("FINISH", finish),
        ];
        let (template, unused): (&str, &[&str]) = match self.mode {
            Mode::Unrolled => (template::VERIFIER, &[]),
            // The loops' inversion is generated (`inverses()`).
            Mode::Loops => (
                template::BATCH_VERIFIER,
                &["INVERSES_AT", "PREFIX_AT", "INVERSES"],
            ),
        };
        let values: Vec<(&str, &str)> = values
            .iter()
            .filter(|(k, _)| !unused.contains(k))
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        template::fill(template, &values)
    }

    /// Where the gates' spilled values start: after the transcript buffer
    /// and, in [`Mode::Loops`], after the Lagrange array (which reuses the
    /// buffer once the transcript is done).
    fn spill_base(&self) -> usize {
        match self.mode {
            Mode::Unrolled => self.tb() + self.tb_len(),
            Mode::Loops => self.tb() + self.tb_len().max(LAGRANGE_AT + 32 * self.lagrange.len()),
        }
    }

    /// In [`Mode::Loops`], the array of `d_i = w^i / (x - w^i)`, one word per
    /// index of [`Plan::lagrange_indices`]: in the transcript buffer, after
    /// the modexp precompile's input.
    fn lagrange_at(&self) -> usize {
        self.tb() + LAGRANGE_AT
    }

    /// Start of the transcript buffer (after every named slot).
    fn tb(&self) -> usize {
        self.mem.next
    }

    fn tb_len(&self) -> usize {
        let plan = self.plan;
        let l = plan.layout();
        [
            32 + 32 * plan.num_instances() + 64 * plan.num_advice,
            32 + 64 * plan.quotient_pieces,
            32 + (l.w - l.advice_evals),
            384,
        ]
        .into_iter()
        .max()
        .unwrap_or(384)
    }

    /// Yul helpers shared by both assembly blocks ([`template::YUL_HELPERS`]).
    fn helpers(&self) -> String {
        let selector = hex::encode(super::calldata::selector("PrecompileFailed()"));
        let precompile_failed = format!("0x{selector:0<64}");
        let ec = self.m("EC");
        let values = [
            ("EC", ec.as_str()),
            ("PRECOMPILE_FAILED", &precompile_failed),
        ];
        let mut out = template::fill(template::YUL_HELPERS, &values);
        out.truncate(out.trim_end_matches('\n').len());
        out
    }

    /// The Yul functions of `_accumulate`, one per step of verification:
    /// `checks`, `transcript`, `points`, `instanceEvals`, `gates`, `shplonk`.
    fn accumulate_steps(&mut self) -> String {
        let plan = self.plan;
        let l = plan.layout();
        let n = plan.num_instances();
        let tb = self.tb();
        let p = |off: usize| format!("add(mload({}), 0x{:x})", self.m("PROOF"), off);
        let mut f = Funcs::default();

        // 1. Encoding checks.
        f.open("checks(len) -> good");
        f.line(format!("if iszero(eq(len, {})) {{ leave }}", l.len));
        match self.mode {
            Mode::Unrolled => {
                for (i, bits) in plan.instance_bits.iter().enumerate() {
                    let word = format!(
                        "calldataload(add(mload({}), 0x{:x}))",
                        self.m("INST"),
                        32 * i
                    );
                    if *bits < 254 {
                        f.line(format!("if shr({bits}, {word}) {{ leave }}"));
                    } else {
                        f.line(format!("if iszero(lt({word}, r)) {{ leave }}"));
                    }
                }
            }
            Mode::Loops => self.instance_checks(&mut f),
        }
        let points: Vec<usize> = (0..plan.num_advice)
            .map(|i| l.advice + 64 * i)
            .chain([l.random])
            .chain((0..plan.quotient_pieces).map(|i| l.quotient + 64 * i))
            .chain([l.w, l.w_prime])
            .collect();
        for at in &points {
            f.line(format!("if iszero(pointOk({})) {{ leave }}", p(*at)));
        }
        f.line(format!(
            "for {{ let e := {} }} lt(e, {}) {{ e := add(e, 0x20) }} {{ if iszero(lt(calldataload(e), r)) {{ leave }} }}",
            p(l.advice_evals),
            p(l.w)
        ));
        f.line("good := 1".into());
        f.close();

        // 2. Transcript.
        f.open("transcript()");
        f.line(format!(
            "mstore(0x{tb:x}, {})",
            hex_fr(&plan.transcript_repr)
        ));
        f.line(format!(
            "calldatacopy(0x{:x}, mload({}), 0x{:x})",
            tb + 32,
            self.m("INST"),
            32 * n
        ));
        let adv_len = l.random - l.advice;
        f.line(format!(
            "calldatacopy(0x{:x}, {}, 0x{:x})",
            tb + 32 + 32 * n,
            p(l.advice),
            adv_len
        ));
        f.line(format!(
            "mstore(0x{tb:x}, keccak256(0x{tb:x}, 0x{:x})) // theta",
            32 + 32 * n + adv_len
        ));
        for name in ["beta", "gamma"] {
            f.line(format!("mstore8(0x{:x}, 1)", tb + 32));
            f.line(format!(
                "mstore(0x{tb:x}, keccak256(0x{tb:x}, 0x21)) // {name}"
            ));
        }
        let squeeze_after = |f: &mut Funcs, from: usize, to: usize, slot: &str| {
            f.line(format!(
                "calldatacopy(0x{:x}, {}, 0x{:x})",
                tb + 32,
                p(from),
                to - from
            ));
            f.line(format!(
                "mstore(0x{tb:x}, keccak256(0x{tb:x}, 0x{:x}))",
                32 + to - from
            ));
            f.line(format!("mstore({}, mod(mload(0x{tb:x}), R))", self.m(slot)));
        };
        squeeze_after(&mut f, l.random, l.quotient, "Y");
        squeeze_after(&mut f, l.quotient, l.advice_evals, "X");
        squeeze_after(&mut f, l.advice_evals, l.w, "SY");
        f.line(format!(
            "calldatacopy({}, {}, 0x{:x})",
            self.m("EV"),
            p(l.advice_evals),
            l.w - l.advice_evals
        ));
        f.line(format!("mstore8(0x{:x}, 1)", tb + 32));
        f.line(format!("mstore(0x{tb:x}, keccak256(0x{tb:x}, 0x21))"));
        f.line(format!("mstore({}, mod(mload(0x{tb:x}), R))", self.m("V")));
        squeeze_after(&mut f, l.w, l.w_prime, "U");
        f.close();

        // 3. x^n, the points' distances to u, the vanishing products, and
        //    the values to invert.
        f.open("points()");
        f.line(format!("let x := mload({})", self.m("X")));
        f.line("let t := x".into());
        for _ in 0..plan.k {
            f.line("t := mulmod(t, t, r)".into());
        }
        f.line(format!("mstore({}, t)", self.m("XN")));
        f.line(format!(
            "mstore({}, addmod(t, sub(r, 1), r))",
            self.m("INV_XN1")
        ));
        f.line(format!("mstore({}, x)", self.m("INV_X")));
        f.line(format!("let u := mload({})", self.m("U")));
        for (j, rot) in self.rotations.iter().enumerate() {
            let pt = if *rot == 0 {
                "x".to_string()
            } else {
                format!("mulmod(x, {}, r)", hex_fr(&plan.omega_pow(*rot)))
            };
            f.line(format!(
                "mstore({}, addmod(u, sub(r, {pt}), r))",
                self.m(&format!("D{j}"))
            ));
        }
        let d = |r: &i32| {
            self.m(&format!(
                "D{}",
                self.rotations.iter().position(|x| x == r).unwrap_or(0)
            ))
        };
        for (s, set) in plan.sets.iter().enumerate() {
            f.line("t := 1".into());
            for r in self.rotations.iter().filter(|r| !set.rotations.contains(r)) {
                f.line(format!("t := mulmod(t, mload({}), r)", d(r)));
            }
            f.line(format!("mstore({}, t)", self.m(&format!("ZDIFF{s}"))));
            if s == 0 {
                f.line(format!("mstore({}, t)", self.m("INV_ZDIFF0")));
            }
        }
        f.line("t := 1".into());
        for r in &plan.sets[0].rotations {
            f.line(format!("t := mulmod(t, mload({}), r)", d(r)));
        }
        f.line(format!("mstore({}, t)", self.m("Z0")));
        if self.mode == Mode::Unrolled {
            for (idx, i) in self.lagrange.iter().enumerate() {
                f.line(format!(
                    "mstore({}, addmod(x, sub(r, {}), r))",
                    self.m(&format!("INV_L{idx}")),
                    hex_fr(&plan.omega_pow(*i))
                ));
            }
        }
        f.close();
        if self.mode == Mode::Loops {
            self.inverses(&mut f);
        }

        // 4. Instance evaluations: sum_j inst_j * L_{j - rot}(x), with
        //    L_i(x) = (w^i / n) * (x^n - 1) / (x - w^i).
        match self.mode {
            Mode::Unrolled => {
                f.open("instanceEvals()");
                f.line(format!(
                    "let xn1 := addmod(mload({}), sub(r, 1), r)",
                    self.m("XN")
                ));
                f.line("let t := 0".into());
                let n_inv = Fr::from(plan.n()).invert().unwrap_or(Fr::ZERO);
                for (q, rot) in plan.instance_rotations.iter().enumerate() {
                    f.line("t := 0".into());
                    for j in 0..n {
                        let i = j as i32 - rot;
                        let idx = (i - self.lagrange[0]) as usize;
                        let c = plan.omega_pow(i) * n_inv;
                        f.line(format!(
                            "t := addmod(t, mulmod(mulmod(calldataload(add(mload({}), 0x{:x})), {}, r), mload({}), r), r)",
                            self.m("INST"),
                            32 * j,
                            hex_fr(&c),
                            self.m(&format!("INV_L{idx}"))
                        ));
                    }
                    f.line(format!(
                        "mstore({}, mulmod(t, xn1, r))",
                        self.m(&format!("IE{q}"))
                    ));
                }
                f.close();
            }
            Mode::Loops => self.instance_evals(&mut f),
        }

        // 5. Gates.
        f.open("gates()");
        for line in self.gate_lines.clone() {
            f.line(line);
        }
        f.close();

        // 6. SHPLONK: each commitment's scalar, r_outer, the per-proof MSM.
        f.open("shplonk()");
        f.line(format!("let xinv := mload({})", self.m("INV_X")));
        f.line(format!("let wt := mload({})", self.m("WEIGHT")));
        f.line(format!("let sy := mload({})", self.m("SY")));
        f.line("let scale := 0".into());
        f.line("let ypow := 0".into());
        f.line("let rinner := 0".into());
        f.line("let t := 0".into());
        f.line("let re := 0".into());
        f.line(format!("mstore({}, 1)", self.m("VPOW")));
        f.line(format!("mstore({}, 0)", self.m("ROUTER")));
        let vpow = self.m("VPOW");
        for (s, set) in plan.sets.iter().enumerate() {
            f.line(format!("// set {s}: rotations {:?}", set.rotations));
            if s == 0 {
                f.line(format!("scale := mload({vpow})"));
            } else {
                f.line(format!(
                    "scale := mulmod(mload({vpow}), mulmod(mload({}), mload({}), r), r)",
                    self.m(&format!("ZDIFF{s}")),
                    self.m("INV_ZDIFF0")
                ));
            }
            let m = set.rotations.len();
            // x^{-(m-1)}
            f.line("t := 1".into());
            for _ in 1..m {
                f.line("t := mulmod(t, xinv, r)".into());
            }
            for tt in 0..m {
                f.line(format!(
                    "re := mulmod(t, {}, r)",
                    hex_fr(&plan.set_denominator(s, tt).invert().unwrap_or(Fr::ZERO))
                ));
                for j in (0..m).filter(|j| *j != tt) {
                    f.line(format!(
                        "re := mulmod(re, mload({}), r)",
                        d(&set.rotations[j])
                    ));
                }
                f.line(format!("mstore({}, re)", self.m(&format!("BASIS{tt}"))));
            }
            f.line("ypow := 1".into());
            f.line("rinner := 0".into());
            for (commitment, evals) in &set.commitments {
                f.line("re := 0".into());
                for (tt, e) in evals.iter().enumerate() {
                    f.line(format!(
                        "re := addmod(re, mulmod({}, mload({}), r), r)",
                        self.eval_addr(*e),
                        self.m(&format!("BASIS{tt}"))
                    ));
                }
                f.line("rinner := addmod(rinner, mulmod(ypow, re, r), r)".into());
                f.line("t := mulmod(mulmod(scale, ypow, r), wt, r)".into());
                let first = s == 0 && std::ptr::eq(commitment, &set.commitments[0].0);
                for line in self.msm_term(*commitment, &p) {
                    // The first commitment's scalar is 1 for a single proof:
                    // an addition instead of a multiplication.
                    match line.strip_prefix("ecmulAdd(").and_then(|rest| rest.rsplit_once(", t, ")) {
                        Some((point, acc)) if first => f.line(format!(
                            "switch eq(t, 1) case 1 {{ ecAddTo({point}, {acc} }} default {{ {line} }}"
                        )),
                        _ => f.line(line),
                    }
                }
                f.line("ypow := mulmod(ypow, sy, r)".into());
            }
            f.line(format!(
                "mstore({r}, addmod(mload({r}), mulmod(scale, rinner, r), r))",
                r = self.m("ROUTER")
            ));
            f.line(format!(
                "mstore({vpow}, mulmod(mload({vpow}), mload({}), r))",
                self.m("V")
            ));
        }
        f.line(format!(
            "mstore({g}, addmod(mload({g}), mulmod(sub(r, mload({})), wt, r), r))",
            self.m("ROUTER"),
            g = self.m("GACC")
        ));
        f.line(format!(
            "ecmulAdd(calldataload({}), calldataload({}), mulmod(sub(r, mload({})), wt, r), {})",
            p(l.w),
            p(l.w + 32),
            self.m("Z0"),
            self.m("RIGHT")
        ));
        f.line(format!(
            "ecmulAdd(calldataload({}), calldataload({}), mulmod(mload({}), wt, r), {})",
            p(l.w_prime),
            p(l.w_prime + 32),
            self.m("U"),
            self.m("RIGHT")
        ));
        f.line(format!(
            "switch eq(wt, 1) case 1 {{ ecAddTo(calldataload({a}), calldataload({b}), {left}) }} default {{ ecmulAdd(calldataload({a}), calldataload({b}), wt, {left}) }}",
            a = p(l.w_prime),
            b = p(l.w_prime + 32),
            left = self.m("LEFT")
        ));
        f.close();

        let mut out = f.out;
        out.truncate(out.trim_end_matches('\n').len());
        out
    }

    /// [`Mode::Loops`]: the public inputs' bounds, one check (or one loop)
    /// per run of consecutive inputs with the same bound. Bounded inputs of
    /// a run are OR-ed together (four per iteration) and checked once.
    fn instance_checks(&self, f: &mut Funcs) {
        let bits = &self.plan.instance_bits;
        f.line(format!("let inst := mload({})", self.m("INST")));
        let mut start = 0;
        while start < bits.len() {
            let b = bits[start];
            let end = start + bits[start..].iter().take_while(|x| **x == b).count();
            let from = format!("add(inst, 0x{:x})", 32 * start);
            if end - start == 1 {
                let word = format!("calldataload({from})");
                if b < 254 {
                    f.line(format!("if shr({b}, {word}) {{ leave }}"));
                } else {
                    f.line(format!("if iszero(lt({word}, r)) {{ leave }}"));
                }
            } else {
                f.line(format!("// public inputs {start}..{end}: below 2^{b}"));
                f.line("{".into());
                if b < 254 {
                    // Four words per iteration, the remainder straight-line.
                    let body_end = start + (end - start) / 4 * 4;
                    f.line(format!("    let end := add(inst, 0x{:x})", 32 * body_end));
                    f.line("    let acc := 0".into());
                    f.line(format!(
                        "    for {{ let p := {from} }} lt(p, end) {{ p := add(p, 0x80) }} {{ acc := or(acc, or(or(calldataload(p), calldataload(add(p, 0x20))), or(calldataload(add(p, 0x40)), calldataload(add(p, 0x60))))) }}"
                    ));
                    for i in body_end..end {
                        f.line(format!(
                            "    acc := or(acc, calldataload(add(inst, 0x{:x})))",
                            32 * i
                        ));
                    }
                    f.line(format!("    if shr({b}, acc) {{ leave }}"));
                } else {
                    f.line(format!("    let end := add(inst, 0x{:x})", 32 * end));
                    f.line(format!(
                        "    for {{ let p := {from} }} lt(p, end) {{ p := add(p, 0x20) }} {{ if iszero(lt(calldataload(p), r)) {{ leave }} }}"
                    ));
                }
                f.line("}".into());
            }
            start = end;
        }
    }

    /// [`Mode::Loops`]: `inverses()`, one batch inversion (prefix products,
    /// one modexp) of the fixed values to invert (`x^n - 1`, `x`,
    /// SHPLONK's first `z_diff`) and of the Lagrange denominators
    /// `x w^{-i} - 1` for `i` in [`Plan::lagrange_indices`], whose inverses
    /// are `d_i = w^i / (x - w^i)`. The denominators are computed from
    /// `x w^{-first}` by multiplying with `w^{-1}` (forwards) and again by
    /// multiplying with `w` (backwards), so only the prefix products are
    /// stored, in the array that then holds the `d_i`. False if a value is
    /// zero.
    ///
    /// `x w^{-i} - 1` is `sub(xw, 1)`, without reduction: `xw` is not zero
    /// unless `x` is, and then the product of all values is zero (`x` is
    /// one of them) and verification fails whatever the other factors are.
    /// The loops do [`UNROLL`] elements per iteration; the remainder is
    /// straight-line.
    fn inverses(&self, f: &mut Funcs) {
        let plan = self.plan;
        let first = self.lagrange.first().copied().unwrap_or(0);
        let len = self.lagrange.len();
        let lag = self.lagrange_at();
        let body_end = lag + 32 * (len - len % UNROLL);
        let lag_end = lag + 32 * len;
        let prefix = self.mem.get("PREFIX");
        f.open("inverses() -> good");
        f.line("let acc := 1".into());
        for (k, (what, slot)) in self.inverses.iter().enumerate() {
            f.line(format!(
                "mstore(0x{:x}, acc) acc := mulmod(acc, mload(0x{slot:x}), r) // {what}",
                prefix + 32 * k
            ));
        }
        f.line(format!(
            "let xw := mulmod(mload({}), {}, r) // x w^{}",
            self.m("X"),
            hex_fr(&plan.omega_pow(-first)),
            -first
        ));
        let forward = "acc := mulmod(acc, sub(xw, 1), r) xw := mulmod(xw, winv, r)";
        f.line("{".into());
        f.line(format!("    let winv := {}", hex_fr(&plan.omega_pow(-1))));
        f.line(format!(
            "    for {{ let p := 0x{lag:x} }} lt(p, 0x{body_end:x}) {{ p := add(p, 0x{:x}) }} {{",
            32 * UNROLL
        ));
        for u in 0..UNROLL {
            let at = if u == 0 {
                "p".to_string()
            } else {
                format!("add(p, 0x{:x})", 32 * u)
            };
            f.line(format!("        mstore({at}, acc) {forward}"));
        }
        f.line("    }".into());
        for at in (body_end..lag_end).step_by(32) {
            f.line(format!("    mstore(0x{at:x}, acc) {forward}"));
        }
        f.line("}".into());
        f.line("if iszero(acc) { leave }".into());
        f.line("let inv := invert(acc)".into());
        let backward = |at: &str| {
            format!(
                "xw := mulmod(xw, om, r) mstore({at}, mulmod(inv, mload({at}), r)) inv := mulmod(inv, sub(xw, 1), r)"
            )
        };
        f.line("{".into());
        f.line(format!("    let om := {}", hex_fr(&plan.omega_pow(1))));
        for at in (body_end..lag_end).step_by(32).rev() {
            f.line(format!("    {}", backward(&format!("0x{at:x}"))));
        }
        f.line(format!(
            "    for {{ let p := 0x{body_end:x} }} gt(p, 0x{lag:x}) {{ }} {{"
        ));
        f.line(format!("        p := sub(p, 0x{:x})", 32 * UNROLL));
        for u in (0..UNROLL).rev() {
            let at = if u == 0 {
                "p".to_string()
            } else {
                format!("add(p, 0x{:x})", 32 * u)
            };
            f.line(format!("        {}", backward(&at)));
        }
        f.line("    }".into());
        f.line("}".into());
        f.line("let v := 0".into());
        for (k, (_, slot)) in self.inverses.iter().enumerate().rev() {
            f.line(format!(
                "v := mload(0x{slot:x}) mstore(0x{slot:x}, mulmod(inv, mload(0x{:x}), r)) inv := mulmod(inv, v, r)",
                prefix + 32 * k
            ));
        }
        f.line("good := 1".into());
        f.close();
    }

    /// [`Mode::Loops`]: `instanceEvals()`. For each instance query at
    /// rotation `rot`, `(x^n - 1) / n * sum_j inst_j * d_{j - rot}`; up to
    /// [`ROTATIONS_PER_PASS`] queries share one pass over the public inputs
    /// (each read from calldata once per pass), with one accumulator each.
    /// A pass takes [`INPUTS_PER_ITERATION`] public inputs per iteration:
    /// their products (each below `r`, four below `2^256`) are added without
    /// reduction before one `addmod`; the remainder is straight-line.
    fn instance_evals(&self, f: &mut Funcs) {
        let plan = self.plan;
        let n = plan.num_instances();
        let first = self.lagrange.first().copied().unwrap_or(0);
        let lag = self.lagrange_at();
        let n_inv = Fr::from(plan.n()).invert().unwrap_or(Fr::ZERO);
        f.open("instanceEvals()");
        let queries: Vec<(usize, i32)> = plan
            .instance_rotations
            .iter()
            .copied()
            .enumerate()
            .collect();
        // d_{j - rot} for public input j is at `d + base(rot)`, `d` = 32 j.
        let base = |rot: i32| lag as i64 + 32 * (-(rot as i64) - first as i64);
        for pass in queries.chunks(ROTATIONS_PER_PASS) {
            let rots: Vec<i32> = pass.iter().map(|(_, r)| *r).collect();
            f.line(format!("// rotations {rots:?}"));
            f.line("{".into());
            for (q, _) in pass {
                f.line(format!("    let t{q} := 0"));
            }
            let body = 32 * (n - n % INPUTS_PER_ITERATION);
            f.line(format!("    let p := mload({})", self.m("INST")));
            f.line(format!(
                "    for {{ let d := 0 }} lt(d, 0x{body:x}) {{ d := add(d, 0x{:x}) }} {{",
                32 * INPUTS_PER_ITERATION
            ));
            f.line("        let q := add(p, d)".into());
            for u in 0..INPUTS_PER_ITERATION {
                let at = if u == 0 {
                    "q".to_string()
                } else {
                    format!("add(q, 0x{:x})", 32 * u)
                };
                f.line(format!("        let v{u} := calldataload({at})"));
            }
            for (q, rot) in pass {
                let term = |u: usize| {
                    format!(
                        "mulmod(v{u}, mload(add(d, 0x{:x})), r)",
                        base(*rot) + 32 * u as i64
                    )
                };
                f.line(format!(
                    "        t{q} := addmod(t{q}, add(add({}, {}), add({}, {})), r)",
                    term(0),
                    term(1),
                    term(2),
                    term(3)
                ));
            }
            f.line("    }".into());
            for j in n - n % INPUTS_PER_ITERATION..n {
                f.line(format!(
                    "    let w{j} := calldataload(add(p, 0x{:x}))",
                    32 * j
                ));
                for (q, rot) in pass {
                    f.line(format!(
                        "    t{q} := addmod(t{q}, mulmod(w{j}, mload(0x{:x}), r), r)",
                        base(*rot) + 32 * j as i64
                    ));
                }
            }
            for (q, _) in pass {
                f.line(format!("    mstore({}, t{q})", self.m(&format!("IE{q}"))));
            }
            f.line("}".into());
        }
        f.line(format!(
            "let scale := mulmod(addmod(mload({}), sub(r, 1), r), {}, r) // (x^n - 1) / n",
            self.m("XN"),
            hex_fr(&n_inv)
        ));
        for (q, _) in plan.instance_rotations.iter().enumerate() {
            let ie = self.m(&format!("IE{q}"));
            f.line(format!("mstore({ie}, mulmod(mload({ie}), scale, r))"));
        }
        f.close();
    }

    /// Adds `t * commitment` to the sums (fixed commitments: to their scalar).
    fn msm_term(&self, c: Commitment, p: &dyn Fn(usize) -> String) -> Vec<String> {
        let l = self.plan.layout();
        let right = self.m("RIGHT");
        let point = |at: usize| format!("calldataload({}), calldataload({})", p(at), p(at + 32));
        match c {
            Commitment::Advice(i) => vec![format!(
                "ecmulAdd({}, t, {right})",
                point(l.advice + 64 * i)
            )],
            Commitment::Random => vec![format!("ecmulAdd({}, t, {right})", point(l.random))],
            Commitment::Fixed(i) => {
                let slot = self.mem.get("FACC") + 32 * i;
                vec![format!(
                    "mstore(0x{slot:x}, addmod(mload(0x{slot:x}), t, r))"
                )]
            }
            Commitment::Quotient => {
                let mut out = Vec::new();
                for piece in 0..self.plan.quotient_pieces {
                    if piece > 0 {
                        out.push(format!("t := mulmod(t, mload({}), r)", self.m("XN")));
                    }
                    out.push(format!(
                        "ecmulAdd({}, t, {right})",
                        point(l.quotient + 64 * piece)
                    ));
                }
                out
            }
        }
    }

    /// Straight-line code for the gates: `HEVAL = fold(acc * y + g) / (x^n - 1)`.
    /// Subexpressions used twice, or nested deeper than
    /// [`MAX_INLINE_HEIGHT`], are stored in memory after the transcript buffer.
    fn gates(&mut self) {
        let plan = self.plan;
        let mut uses = vec![0usize; plan.nodes.len()];
        for node in &plan.nodes {
            match *node {
                Node::Neg(a) => uses[a] += 1,
                Node::Add(a, c) | Node::Mul(a, c) => {
                    uses[a] += 1;
                    uses[c] += 1;
                }
                _ => {}
            }
        }
        let mut lines = Vec::new();
        let mut spill_slot = 0usize;
        let ev = self.mem.get("EV");
        let n_adv = plan.advice_queries.len();
        self.exprs.clear();
        for (i, node) in plan.nodes.iter().enumerate() {
            let (e, h) = match *node {
                Node::Const(c) => match small(&c) {
                    Some(v) => (format!("{v}"), 0),
                    None => (
                        format!(
                            "mload(0x{:x})",
                            self.mem.get("CONSTS") + 32 * self.const_index[&be(&c)]
                        ),
                        0,
                    ),
                },
                Node::Advice(q) => (format!("mload(0x{:x})", ev + 32 * q), 0),
                Node::Fixed(q) => (format!("mload(0x{:x})", ev + 32 * (n_adv + q)), 0),
                Node::Instance(q) => (format!("mload({})", self.m(&format!("IE{q}"))), 0),
                Node::Neg(a) => {
                    let (ea, ha) = &self.exprs[a];
                    (format!("sub(r, {ea})"), ha + 1)
                }
                Node::Add(a, c) => {
                    let ((ea, ha), (ec, hc)) = (&self.exprs[a], &self.exprs[c]);
                    (format!("addmod({ea}, {ec}, r)"), ha.max(hc) + 1)
                }
                Node::Mul(a, c) => {
                    let ((ea, ha), (ec, hc)) = (&self.exprs[a], &self.exprs[c]);
                    (format!("mulmod({ea}, {ec}, r)"), ha.max(hc) + 1)
                }
            };
            let leaf = h == 0;
            if !leaf && (uses[i] > 1 || h >= MAX_INLINE_HEIGHT) {
                let slot = self.spill_base() + 32 * spill_slot;
                spill_slot += 1;
                lines.push(format!("mstore(0x{slot:x}, {e})"));
                self.exprs.push((format!("mload(0x{slot:x})"), 0));
            } else {
                self.exprs.push((e, h));
            }
        }
        lines.push(format!("let y := mload({})", self.m("Y")));
        lines.push("let t := 0".into());
        for root in &plan.gate_roots {
            lines.push(format!(
                "t := addmod(mulmod(t, y, r), {}, r)",
                self.exprs[*root].0
            ));
        }
        lines.push(format!(
            "mstore({}, mulmod(t, mload({}), r))",
            self.m("HEVAL"),
            self.m("INV_XN1")
        ));
        self.spill_words = spill_slot;
        self.gate_lines = lines;
    }

    /// The body of `_finish`: the fixed commitments and the generator with
    /// their summed scalars, then the pairing's input, e(LEFT, [s]_2) and
    /// e(RIGHT, -[1]_2), in the transcript buffer.
    fn finish_lines(&self) -> String {
        let plan = self.plan;
        let right = self.m("RIGHT");
        let left = self.m("LEFT");
        let mut lines = Vec::new();
        for (i, c) in plan.fixed_commitments.iter().enumerate() {
            let (x, y) = xy(c);
            let slot = self.mem.get("FACC") + 32 * i;
            lines.push(format!("ecmulAdd({x}, {y}, mload(0x{slot:x}), {right})"));
        }
        let (gx, gy) = xy(&plan.g1);
        lines.push(format!(
            "ecmulAdd({gx}, {gy}, mload({}), {right})",
            self.m("GACC")
        ));
        let words = [
            format!("mload({left})"),
            format!("mload(add({left}, 0x20))"),
        ]
        .into_iter()
        .chain(g2_words(&plan.s_g2))
        .chain([
            format!("mload({right})"),
            format!("mload(add({right}, 0x20))"),
        ])
        .chain(g2_words(&-plan.g2));
        let tb = self.tb();
        for (k, word) in words.enumerate() {
            lines.push(format!("mstore(0x{:x}, {word})", tb + 32 * k));
        }
        lines
            .iter()
            .map(|line| format!("            {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Yul functions being written: one open at a time, its body indented.
#[derive(Default)]
struct Funcs {
    out: String,
}

impl Funcs {
    fn open(&mut self, signature: &str) {
        let _ = writeln!(self.out, "            function {signature} {{");
        self.line("let r := R".into());
    }

    fn line(&mut self, line: String) {
        let _ = writeln!(self.out, "                {line}");
    }

    fn close(&mut self) {
        self.out.push_str("            }\n");
    }
}

/// A point's coordinates as hex words.
fn xy(p: &G1Affine) -> (String, String) {
    (hex_fq(&p.x), hex_fq(&p.y))
}

/// A G2 point as the pairing precompile's four words: x.c1, x.c0, y.c1, y.c0.
fn g2_words(p: &G2Affine) -> [String; 4] {
    [
        hex_fq(&p.x.c1),
        hex_fq(&p.x.c0),
        hex_fq(&p.y.c1),
        hex_fq(&p.y.c0),
    ]
}
