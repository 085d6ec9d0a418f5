//! A position in the circuit's table, named by the circuit layout
//! ([`crate::circuit::layout`]) and by the errors of its uniqueness check
//! ([`crate::error::UniquenessError`]). Its own module so that `error` needs
//! nothing of `circuit`, which uses `error`.

/// A cell that constraints read: an advice cell, or a row of the instance
/// column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cell {
    /// Advice column `column` at `row`.
    Advice {
        /// Advice column index.
        column: usize,
        /// Row.
        row: usize,
    },
    /// The instance column at `row`.
    Instance {
        /// Row (see [`crate::circuit::layout::instance`]).
        row: usize,
    },
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Advice { column, row } => write!(f, "advice column {column}, row {row}"),
            Self::Instance { row } => write!(f, "instance row {row}"),
        }
    }
}
