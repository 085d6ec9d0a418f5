//! A check that the constraints determine the witness.
//!
//! The prover chooses the free inputs ([`super::layout::free_cells`]): the public
//! inputs other than the two outputs, the private limbs and the secret.
//! Everything else must follow from them, or a prover could fill some cell
//! with a value of its choice, as when the "host_id capacity" constraint is
//! missing: the round-0 state of host_id is then free, and the width-2
//! permutation can be run backwards from another host's `host_id` without
//! its secret.
//!
//! The check reads the proving key's own constraint system and fixed
//! columns, not the circuit's source, so it checks what halo2 enforces:
//!
//! 1. [`ConstraintAnalysis`] (the expensive part) substitutes the fixed
//!    values into every gate polynomial at every row. Gates are enforced on
//!    all `2^k` rows, with rotations wrapping around; instance rows past the
//!    public inputs are zero. A polynomial that is not identically zero there
//!    is an *active constraint*; it *reads* the advice and instance cells it
//!    actually depends on, and it *can determine* a cell it is affine in with
//!    a non-zero constant coefficient (then the cell's value follows from the
//!    others'). Dependence, affinity and constancy are decided by evaluation
//!    at random points (Schwartz–Zippel: a wrong answer has probability about
//!    `degree / 2^254` per test).
//! 2. [`ConstraintAnalysis::propagate`] (cheap) starts from the free cells and
//!    repeatedly takes an active constraint with exactly one undetermined cell
//!    that it can determine, and marks that cell determined. The witness is
//!    determined if every active constraint determined exactly one cell and
//!    every read cell is determined. A constraint whose cells were all
//!    determined by others first is reported too: the circuit then has one
//!    constraint too many for some cell and one too few for another, or an
//!    equation that fails for some inputs.
//!
//! Success means that for any free inputs at most one witness satisfies the
//! constraints (together with the tests that the honest witness satisfies
//! them, exactly one). It says nothing about *which* function of the inputs
//! the circuit computes; the Poseidon test vectors do.

use std::collections::HashMap;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::plonk::{ConstraintSystem, Expression};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::layout::Cell;
use crate::error::{ConstraintAt, UndeterminedCell, UniquenessError};

/// Outcome of a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniquenessReport {
    /// Active (gate polynomial, row) constraints; each determined one cell.
    pub active_constraints: usize,
    /// Free cells the propagation started from.
    pub free_cells: usize,
    /// Cells determined from them.
    pub determined_cells: usize,
}

/// A gate polynomial at one row, where it is not identically zero.
#[derive(Debug, Clone)]
struct Active {
    gate: usize,
    polynomial: usize,
    row: usize,
    /// Cells the polynomial depends on.
    reads: Vec<Cell>,
    /// Cells among `reads` it is affine in, with a non-zero constant coefficient.
    determines: Vec<Cell>,
}

/// Every active constraint of a constraint system with its fixed values,
/// with the cells it reads and those it can determine (the expensive part of
/// the check; [`ConstraintAnalysis::propagate`] is the cheap one).
#[derive(Debug, Clone)]
pub struct ConstraintAnalysis {
    /// `names[gate]` = (gate name, constraint names).
    names: Vec<(String, Vec<String>)>,
    active: Vec<Active>,
    /// Instance rows holding public inputs: each must be free or determined.
    public_instance_rows: usize,
}

/// A gate polynomial with the fixed values of one row substituted and
/// constants folded; variables index the cells of the row's instance.
#[derive(Debug, Clone)]
enum Node {
    Constant(Fr),
    Variable(usize),
    Negated(Box<Node>),
    Sum(Box<Node>, Box<Node>),
    Product(Box<Node>, Box<Node>),
    Scaled(Box<Node>, Fr),
}

impl Node {
    fn evaluate(&self, values: &[Fr]) -> Fr {
        match self {
            Node::Constant(c) => *c,
            Node::Variable(i) => values[*i],
            Node::Negated(a) => -a.evaluate(values),
            Node::Sum(a, b) => a.evaluate(values) + b.evaluate(values),
            Node::Product(a, b) => a.evaluate(values) * b.evaluate(values),
            Node::Scaled(a, f) => a.evaluate(values) * f,
        }
    }

    fn is_zero(&self) -> bool {
        matches!(self, Node::Constant(c) if bool::from(c.is_zero()))
    }
}

/// What a polynomial is compiled against: one row of a constraint system.
struct Row<'a> {
    fixed: &'a [&'a [Fr]],
    n: usize,
    row: usize,
    public_instance_rows: usize,
    /// The cells met so far, in variable order.
    cells: Vec<Cell>,
}

impl Row<'_> {
    fn at(&self, rotation: i32) -> usize {
        (self.row as i64 + i64::from(rotation)).rem_euclid(self.n as i64) as usize
    }

    fn variable(&mut self, cell: Cell) -> Node {
        let index = match self.cells.iter().position(|c| *c == cell) {
            Some(i) => i,
            None => {
                self.cells.push(cell);
                self.cells.len() - 1
            }
        };
        Node::Variable(index)
    }

    /// Compiles `e` at this row, folding constants; `Err` names an
    /// unsupported construct.
    fn compile(&mut self, e: &Expression<Fr>) -> Result<Node, &'static str> {
        Ok(match e {
            Expression::Constant(c) => Node::Constant(*c),
            Expression::Selector(_) => return Err("a selector"),
            Expression::Challenge(_) => return Err("a challenge"),
            Expression::Fixed(q) => {
                let column = self
                    .fixed
                    .get(q.column_index())
                    .ok_or("a missing fixed column")?;
                Node::Constant(column[self.at(q.rotation().0)])
            }
            Expression::Advice(q) => {
                let row = self.at(q.rotation().0);
                self.variable(Cell::Advice {
                    column: q.column_index(),
                    row,
                })
            }
            Expression::Instance(q) => {
                if q.column_index() != 0 {
                    return Err("a second instance column");
                }
                let row = self.at(q.rotation().0);
                if row < self.public_instance_rows {
                    self.variable(Cell::Instance { row })
                } else {
                    // The verifier pads the instance column with zeros.
                    Node::Constant(Fr::ZERO)
                }
            }
            Expression::Negated(a) => match self.compile(a)? {
                Node::Constant(c) => Node::Constant(-c),
                a => Node::Negated(Box::new(a)),
            },
            Expression::Sum(a, b) => match (self.compile(a)?, self.compile(b)?) {
                (Node::Constant(x), Node::Constant(y)) => Node::Constant(x + y),
                (a, b) if a.is_zero() => b,
                (a, b) if b.is_zero() => a,
                (a, b) => Node::Sum(Box::new(a), Box::new(b)),
            },
            Expression::Product(a, b) => {
                let a = self.compile(a)?;
                if a.is_zero() {
                    // Zero whatever the other factor: the gate is off here.
                    return Ok(a);
                }
                match (a, self.compile(b)?) {
                    (Node::Constant(x), Node::Constant(y)) => Node::Constant(x * y),
                    (_, b) if b.is_zero() => b,
                    (Node::Constant(x), b) => Node::Scaled(Box::new(b), x),
                    (a, Node::Constant(y)) => Node::Scaled(Box::new(a), y),
                    (a, b) => Node::Product(Box::new(a), Box::new(b)),
                }
            }
            Expression::Scaled(a, f) => match self.compile(a)? {
                Node::Constant(c) => Node::Constant(c * f),
                _ if bool::from(f.is_zero()) => Node::Constant(Fr::ZERO),
                a => Node::Scaled(Box::new(a), *f),
            },
        })
    }
}

/// A random non-zero field element.
fn nonzero(rng: &mut ChaCha20Rng) -> Fr {
    loop {
        let x = Fr::random(&mut *rng);
        if !bool::from(x.is_zero()) {
            return x;
        }
    }
}

/// Which of `cells` the compiled polynomial depends on, and which of those
/// it can determine (affine in the cell, with a constant non-zero slope).
/// `None` if the polynomial is identically zero.
fn classify(node: &Node, cells: &[Cell], rng: &mut ChaCha20Rng) -> Option<(Vec<Cell>, Vec<Cell>)> {
    let random = |rng: &mut ChaCha20Rng| -> Vec<Fr> {
        cells.iter().map(|_| Fr::random(&mut *rng)).collect()
    };
    let a = random(rng);
    let b = random(rng);
    let fa = node.evaluate(&a);
    let fb = node.evaluate(&b);
    if cells.is_empty() || (bool::from(fa.is_zero()) && bool::from(fb.is_zero())) {
        // A constant: zero (inactive) or not (always violated, reads nothing).
        return (!node.is_zero() && !bool::from(fa.is_zero())).then(|| (vec![], vec![]));
    }
    let mut reads = Vec::new();
    let mut determines = Vec::new();
    let (mut shifted_a, mut shifted_b) = (a.clone(), b.clone());
    for (i, cell) in cells.iter().enumerate() {
        let d = nonzero(rng);
        shifted_a[i] = a[i] + d;
        let f1 = node.evaluate(&shifted_a);
        if f1 == fa {
            shifted_a[i] = a[i];
            continue;
        }
        reads.push(*cell);
        shifted_a[i] = a[i] + d + d;
        let f2 = node.evaluate(&shifted_a);
        shifted_a[i] = a[i];
        // Collinear at x, x + d, x + 2d: affine in this cell (w.h.p.).
        if f2 - f1 - f1 + fa != Fr::ZERO {
            continue;
        }
        // The same slope with every other cell changed: a constant slope.
        shifted_b[i] = b[i] + d;
        let g1 = node.evaluate(&shifted_b);
        shifted_b[i] = b[i];
        if g1 - fb == f1 - fa {
            determines.push(*cell);
        }
    }
    Some((reads, determines))
}

impl ConstraintAnalysis {
    /// Analyses any constraint system over `rows` rows with the given fixed
    /// columns; instance rows from `public_instance_rows` on are zero.
    pub fn of_constraint_system(
        cs: &ConstraintSystem<Fr>,
        fixed: &[&[Fr]],
        rows: usize,
        public_instance_rows: usize,
    ) -> Result<Self, UniquenessError> {
        if fixed.len() != cs.num_fixed_columns() || fixed.iter().any(|c| c.len() != rows) {
            return Err(UniquenessError::FixedColumns {
                expected: cs.num_fixed_columns(),
                found: fixed.len(),
                rows,
            });
        }
        let mut rng = ChaCha20Rng::seed_from_u64(0x756e_6971_7565);
        let mut names = Vec::new();
        let mut active = Vec::new();
        for (g, gate) in cs.gates().iter().enumerate() {
            let constraint_names: Vec<String> = (0..gate.polynomials().len())
                .map(|p| gate.constraint_name(p).to_string())
                .collect();
            for (p, polynomial) in gate.polynomials().iter().enumerate() {
                for row in 0..rows {
                    let mut at = Row {
                        fixed,
                        n: rows,
                        row,
                        public_instance_rows,
                        cells: Vec::new(),
                    };
                    let node =
                        at.compile(polynomial)
                            .map_err(|what| UniquenessError::Unsupported {
                                gate: gate.name().to_string(),
                                constraint: constraint_names[p].clone(),
                                what,
                            })?;
                    if node.is_zero() {
                        continue;
                    }
                    if let Some((reads, determines)) = classify(&node, &at.cells, &mut rng) {
                        active.push(Active {
                            gate: g,
                            polynomial: p,
                            row,
                            reads,
                            determines,
                        });
                    }
                }
            }
            names.push((gate.name().to_string(), constraint_names));
        }
        Ok(Self {
            names,
            active,
            public_instance_rows,
        })
    }

    /// Every (gate, polynomial) index pair of the constraint system.
    pub fn gate_polynomials(&self) -> Vec<(usize, usize)> {
        self.names
            .iter()
            .enumerate()
            .flat_map(|(g, (_, constraints))| (0..constraints.len()).map(move |p| (g, p)))
            .collect()
    }

    /// (gate name, constraint name) of a (gate, polynomial) pair.
    pub fn name(&self, gate: usize, polynomial: usize) -> (&str, &str) {
        let (gate_name, constraints) = &self.names[gate];
        (gate_name, &constraints[polynomial])
    }

    /// Number of active constraints.
    pub fn active_constraints(&self) -> usize {
        self.active.len()
    }

    /// Number of rows at which a gate polynomial is active.
    pub fn active_rows(&self, gate: usize, polynomial: usize) -> usize {
        self.active
            .iter()
            .filter(|a| a.gate == gate && a.polynomial == polynomial)
            .count()
    }

    /// The analysis with one gate polynomial removed at every row (to check
    /// that the check notices a missing constraint).
    pub fn without(&self, gate: usize, polynomial: usize) -> Self {
        Self {
            names: self.names.clone(),
            active: self
                .active
                .iter()
                .filter(|a| (a.gate, a.polynomial) != (gate, polynomial))
                .cloned()
                .collect(),
            public_instance_rows: self.public_instance_rows,
        }
    }

    fn at(&self, a: &Active) -> ConstraintAt {
        let (gate, constraint) = self.name(a.gate, a.polynomial);
        ConstraintAt {
            gate: gate.to_string(),
            constraint: constraint.to_string(),
            row: a.row,
        }
    }

    /// Propagates determination from the `free` cells (see the module docs).
    /// Every cell an active constraint reads, and every public instance row,
    /// must end up free or determined.
    pub fn propagate(&self, free: &[Cell]) -> Result<UniquenessReport, UniquenessError> {
        // Dense ids for the public instance rows and the cells read.
        let mut ids: HashMap<Cell, usize> = HashMap::new();
        let mut cells: Vec<Cell> = Vec::new();
        let mut id = |cell: Cell| -> usize {
            *ids.entry(cell).or_insert_with(|| {
                cells.push(cell);
                cells.len() - 1
            })
        };
        for row in 0..self.public_instance_rows {
            id(Cell::Instance { row });
        }
        let reads: Vec<Vec<usize>> = self
            .active
            .iter()
            .map(|a| a.reads.iter().map(|cell| id(*cell)).collect())
            .collect();
        let mut readers = vec![Vec::new(); cells.len()];
        for (i, r) in reads.iter().enumerate() {
            for &c in r {
                readers[c].push(i);
            }
        }
        let mut determined = vec![false; cells.len()];
        let mut unread_free = Vec::new();
        for cell in free {
            match ids.get(cell) {
                Some(&c) if !readers[c].is_empty() => determined[c] = true,
                _ => unread_free.push(*cell),
            }
        }
        let mut pending: Vec<usize> = reads
            .iter()
            .map(|r| r.iter().filter(|c| !determined[**c]).count())
            .collect();
        let mut used = vec![false; self.active.len()];
        let mut queue: Vec<usize> = (0..self.active.len())
            .filter(|i| pending[*i] == 1)
            .collect();
        let mut count = 0;
        while let Some(i) = queue.pop() {
            if used[i] || pending[i] != 1 {
                continue;
            }
            let Some(&c) = reads[i].iter().find(|c| !determined[**c]) else {
                continue;
            };
            if !self.active[i].determines.contains(&cells[c]) {
                continue;
            }
            used[i] = true;
            determined[c] = true;
            count += 1;
            for &j in &readers[c] {
                pending[j] -= 1;
                if pending[j] == 1 {
                    queue.push(j);
                }
            }
        }

        let redundant: Vec<ConstraintAt> = (0..self.active.len())
            .filter(|i| !used[*i] && pending[*i] == 0)
            .map(|i| self.at(&self.active[i]))
            .collect();
        // Cells no active constraint could determine come first: they are
        // where a constraint (or a free input) is missing; the others depend
        // on them.
        let determinable: std::collections::HashSet<Cell> = self
            .active
            .iter()
            .flat_map(|a| a.determines.iter().copied())
            .collect();
        let mut undetermined: Vec<UndeterminedCell> = (0..cells.len())
            .filter(|c| !determined[*c] && !free.contains(&cells[*c]))
            .map(|c| UndeterminedCell {
                cell: cells[c],
                determinable: determinable.contains(&cells[c]),
                read_by: readers[c]
                    .iter()
                    .map(|i| self.at(&self.active[*i]))
                    .collect(),
            })
            .collect();
        undetermined.sort_by_key(|u| (u.determinable, u.cell));
        if redundant.is_empty() && undetermined.is_empty() && unread_free.is_empty() {
            Ok(UniquenessReport {
                active_constraints: self.active.len(),
                free_cells: free.len(),
                determined_cells: count,
            })
        } else {
            Err(UniquenessError::NotDetermined {
                undetermined,
                redundant,
                unread_free,
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use halo2_axiom::plonk::{Column, Fixed};
    use halo2_axiom::poly::Rotation;

    use super::*;
    use crate::circuit::layout::{self, instance};

    fn analysis() -> &'static ConstraintAnalysis {
        static ANALYSIS: std::sync::OnceLock<ConstraintAnalysis> = std::sync::OnceLock::new();
        ANALYSIS.get_or_init(|| {
            crate::circuit::test_proving_key()
                .constraint_analysis()
                .unwrap()
        })
    }

    #[track_caller]
    fn not_determined(
        result: Result<UniquenessReport, UniquenessError>,
    ) -> (Vec<UndeterminedCell>, Vec<ConstraintAt>, Vec<Cell>) {
        match result {
            Err(UniquenessError::NotDetermined {
                undetermined,
                redundant,
                unread_free,
            }) => (undetermined, redundant, unread_free),
            other => panic!("expected NotDetermined, got {other:?}"),
        }
    }

    #[test]
    fn dev_proving_key_determines_its_witness() {
        let pk = crate::circuit::test_proving_key();
        let start = std::time::Instant::now();
        let report = pk.check_unique_witness().unwrap_or_else(|e| panic!("{e}"));
        println!("uniqueness check: {:?} ({report:?})", start.elapsed());
        assert_eq!(
            report.free_cells,
            layout::free_cells(crate::CircuitVersion::CURRENT).len()
        );
        // Chain id, marketplace, job limbs and tokens; six limbs; the secret.
        assert_eq!(report.free_cells, 5 + 6 + 1);
        // One cell per active constraint: every assigned advice cell but the
        // free ones, and the two output instances.
        let grid_cells = super::super::Grid::build(&[Fr::ONE; 11], Fr::ONE)
            .used_cells()
            .len();
        assert_eq!(report.determined_cells, report.active_constraints);
        assert_eq!(report.determined_cells, grid_cells - (6 + 1) + 2);
    }

    /// The version 1 circuit (still verified) determines its witness from
    /// its own free cells, which do not include tokens.
    #[test]
    fn v1_proving_key_determines_its_witness() {
        let pk = crate::circuit::test_proving_key_of(crate::CircuitVersion::V1);
        let report = pk.check_unique_witness().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.free_cells, 4 + 6 + 1);
        let tokens = Cell::Instance {
            row: instance::TOKENS,
        };
        assert!(!layout::free_cells(crate::CircuitVersion::V1).contains(&tokens));
        assert!(layout::free_cells(crate::CircuitVersion::V2).contains(&tokens));
    }

    /// The generic deletion test of a circuit (this one's and the batch
    /// circuit's): every gate polynomial of `analysis` (more than
    /// `at_least`) is active somewhere, and without it, starting from
    /// `free`, some cell is left undetermined.
    pub(crate) fn assert_every_gate_polynomial_is_needed(
        analysis: &ConstraintAnalysis,
        free: &[Cell],
        at_least: usize,
    ) {
        let polynomials = analysis.gate_polynomials();
        assert!(
            polynomials.len() > at_least,
            "{} polynomials",
            polynomials.len()
        );
        for (g, p) in polynomials {
            let (gate, constraint) = analysis.name(g, p);
            assert!(
                analysis.active_rows(g, p) > 0,
                "'{constraint}' of '{gate}' is active nowhere"
            );
            let reduced = analysis.without(g, p);
            assert!(reduced.active_constraints() < analysis.active_constraints());
            let (undetermined, _, _) = not_determined(reduced.propagate(free));
            assert!(
                !undetermined.is_empty(),
                "without '{constraint}' of '{gate}', every cell is still determined"
            );
        }
    }

    /// The check notices any one missing gate polynomial: each is active
    /// somewhere, and without it some cell is left undetermined.
    #[test]
    fn removing_any_gate_polynomial_is_noticed() {
        assert_every_gate_polynomial_is_needed(
            analysis(),
            &layout::free_cells(crate::CircuitVersion::CURRENT),
            60,
        );
    }

    /// The auditor's deletion: without "host_id capacity", the capacity cell
    /// of host_id round 0 is named, with the full round that reads it.
    #[test]
    fn missing_host_id_capacity_names_the_capacity_cell() {
        let analysis = analysis();
        let (g, p) = analysis
            .gate_polynomials()
            .into_iter()
            .find(|(g, p)| analysis.name(*g, *p) == ("bindings", "host_id capacity"))
            .unwrap();
        let (undetermined, _, _) = not_determined(
            analysis
                .without(g, p)
                .propagate(&layout::free_cells(crate::CircuitVersion::CURRENT)),
        );
        let capacity = Cell::Advice {
            column: 0,
            row: layout::HOST_ID_FIRST_ROW,
        };
        // The capacity cell is the one no constraint can determine; the
        // rest of host_id, host_id itself and the commitment wait for it.
        let roots: Vec<&UndeterminedCell> =
            undetermined.iter().filter(|u| !u.determinable).collect();
        assert_eq!(roots.len(), 1, "{roots:?}");
        assert_eq!(roots[0].cell, capacity);
        assert_eq!(undetermined[0].cell, capacity);
        assert!(roots[0]
            .read_by
            .iter()
            .all(|c| c.gate == "host_id full round" && c.row == layout::HOST_ID_FIRST_ROW + 1));
        assert!(undetermined.iter().any(|u| u.cell
            == Cell::Instance {
                row: instance::HOST_ID
            }));
        assert!(undetermined.iter().any(|u| u.cell
            == Cell::Instance {
                row: instance::COMMITMENT
            }));
    }

    /// The free cells are exactly what the constraints need: without any of
    /// them something is undetermined; the outputs (instance rows 4 and 5)
    /// are determined, so listing them as free leaves a binding with nothing
    /// to determine.
    #[test]
    fn free_cells_are_exactly_the_inputs() {
        let analysis = analysis();
        let free = layout::free_cells(crate::CircuitVersion::CURRENT);
        for (i, missing) in free.iter().enumerate() {
            let mut fewer = free.clone();
            fewer.remove(i);
            let (undetermined, _, _) = not_determined(analysis.propagate(&fewer));
            assert!(
                undetermined.iter().any(|u| u.cell == *missing),
                "without free cell {missing}: {undetermined:?}"
            );
        }
        for row in [instance::HOST_ID, instance::COMMITMENT] {
            // One constraint too many: the binding, or the constraint it
            // beat to the cell both could determine.
            let mut more = free.clone();
            more.push(Cell::Instance { row });
            let (undetermined, redundant, _) = not_determined(analysis.propagate(&more));
            assert!(undetermined.is_empty(), "{undetermined:?}");
            assert_eq!(redundant.len(), 1, "{redundant:?}");
        }
        let mut unread = free.clone();
        unread.push(Cell::Advice {
            column: 0,
            row: 120,
        });
        let (_, _, unread_free) = not_determined(analysis.propagate(&unread));
        assert_eq!(
            unread_free,
            [Cell::Advice {
                column: 0,
                row: 120
            }]
        );
    }

    /// A hand-made system on 8 rows: `a[r] = a[r-1]^3 + c_r` for rows 1..=3
    /// (the constant doubling as selector), and instance row 0 = `a[3]`
    /// (bound at row 0). `a[0]` is the only free cell.
    struct Tiny {
        cs: ConstraintSystem<Fr>,
        fixed: Vec<Vec<Fr>>,
    }

    /// `step` builds the step constraint from (selector, previous, current).
    fn tiny(step: fn(Expression<Fr>, Expression<Fr>, Expression<Fr>) -> Expression<Fr>) -> Tiny {
        let mut cs = ConstraintSystem::<Fr>::default();
        let a = cs.advice_column();
        let s: Column<Fixed> = cs.fixed_column();
        let t: Column<Fixed> = cs.fixed_column();
        let column = cs.instance_column();
        cs.create_gate("step", |meta| {
            let s = meta.query_fixed(s, Rotation::cur());
            let previous = meta.query_advice(a, Rotation::prev());
            let current = meta.query_advice(a, Rotation::cur());
            vec![("a[r] = a[r-1]^3 + c", step(s, previous, current))]
        });
        cs.create_gate("output", |meta| {
            let t = meta.query_fixed(t, Rotation::cur());
            let out = meta.query_advice(a, Rotation(3));
            let value = meta.query_instance(column, Rotation::cur());
            vec![("instance = a[3]", t * (value - out))]
        });
        let mut selector = vec![Fr::ZERO; 8];
        for (row, c) in [(1, 5u64), (2, 6), (3, 7)] {
            selector[row] = Fr::from(c);
        }
        let mut output = vec![Fr::ZERO; 8];
        output[0] = Fr::ONE;
        Tiny {
            cs,
            fixed: vec![selector, output],
        }
    }

    impl Tiny {
        fn propagate(&self, free: &[Cell]) -> Result<UniquenessReport, UniquenessError> {
            let fixed: Vec<&[Fr]> = self.fixed.iter().map(|c| &c[..]).collect();
            ConstraintAnalysis::of_constraint_system(&self.cs, &fixed, 8, 1)?.propagate(free)
        }
    }

    fn a(row: usize) -> Cell {
        Cell::Advice { column: 0, row }
    }

    fn forward(
        s: Expression<Fr>,
        previous: Expression<Fr>,
        current: Expression<Fr>,
    ) -> Expression<Fr> {
        s.clone() * (current - previous.clone() * previous.clone() * previous - s)
    }

    #[test]
    fn tiny_system_is_determined_from_its_free_cell() {
        let report = tiny(forward).propagate(&[a(0)]).unwrap();
        assert_eq!(
            report,
            UniquenessReport {
                active_constraints: 4,
                free_cells: 1,
                determined_cells: 4,
            }
        );
    }

    #[test]
    fn tiny_system_without_its_free_cell_names_it() {
        let (undetermined, redundant, _) = not_determined(tiny(forward).propagate(&[]));
        assert!(redundant.is_empty());
        let cells: Vec<Cell> = undetermined.iter().map(|u| u.cell).collect();
        assert_eq!(cells, [a(0), a(1), a(2), a(3), Cell::Instance { row: 0 }]);
        assert_eq!(
            undetermined[0].read_by,
            [ConstraintAt {
                gate: "step".into(),
                constraint: "a[r] = a[r-1]^3 + c".into(),
                row: 1,
            }]
        );
        let message = UniquenessError::NotDetermined {
            undetermined,
            redundant: vec![],
            unread_free: vec![],
        }
        .to_string();
        assert!(
            message.contains(
                "advice column 0, row 0 (no constraint determines it; \
                 read by 'a[r] = a[r-1]^3 + c' of gate 'step' at row 1)"
            ),
            "{message}"
        );
    }

    #[test]
    fn tiny_system_with_an_output_listed_as_free_has_a_redundant_binding() {
        let (undetermined, redundant, _) =
            not_determined(tiny(forward).propagate(&[a(0), Cell::Instance { row: 0 }]));
        assert!(undetermined.is_empty());
        // Either the binding or the step it beat to a[3].
        assert_eq!(redundant.len(), 1, "{redundant:?}");
        assert!(
            redundant[0].gate == "output" || redundant[0].row == 3,
            "{redundant:?}"
        );
    }

    /// A cell that appears only squared or cubed, or with a coefficient that
    /// depends on another cell, is not determined by its constraint.
    #[test]
    fn tiny_system_needs_a_constant_linear_coefficient() {
        fn backward(
            s: Expression<Fr>,
            previous: Expression<Fr>,
            current: Expression<Fr>,
        ) -> Expression<Fr> {
            s.clone() * (previous - current.clone() * current.clone() * current - s)
        }
        fn scaled(
            s: Expression<Fr>,
            previous: Expression<Fr>,
            current: Expression<Fr>,
        ) -> Expression<Fr> {
            s.clone() * (previous * current - s)
        }
        for step in [backward as fn(_, _, _) -> _, scaled] {
            let (undetermined, _, _) = not_determined(tiny(step).propagate(&[a(0)]));
            assert_eq!(undetermined[0].cell, a(1), "{undetermined:?}");
        }
    }

    #[test]
    fn fixed_columns_must_match_the_constraint_system() {
        let t = tiny(forward);
        let short: Vec<&[Fr]> = t.fixed.iter().map(|c| &c[..4]).collect();
        assert!(matches!(
            ConstraintAnalysis::of_constraint_system(&t.cs, &short, 8, 1),
            Err(UniquenessError::FixedColumns { .. })
        ));
        assert!(matches!(
            ConstraintAnalysis::of_constraint_system(&t.cs, &[], 8, 1),
            Err(UniquenessError::FixedColumns { .. })
        ));
    }
}
