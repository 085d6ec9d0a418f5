//! Typed errors. Each message says what is wrong and, where it helps, what to do.

use std::path::PathBuf;
use std::time::Duration;

/// Input from outside that does not have the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The JSON did not parse or did not match the schema.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A hex value lacks its `0x` prefix.
    #[error("{what} must start with 0x")]
    MissingHexPrefix {
        /// Which value.
        what: &'static str,
    },
    /// A hex value has the wrong number of digits.
    #[error("{what} must have {expected} hex digits after 0x, found {found}")]
    HexLength {
        /// Which value.
        what: &'static str,
        /// Expected digits.
        expected: usize,
        /// Digits found.
        found: usize,
    },
    /// A hex value has a non-hex character.
    #[error("{what} contains a character that is not a hex digit")]
    InvalidHex {
        /// Which value.
        what: &'static str,
    },
    /// A field element encoding is not below the BN254 scalar modulus.
    #[error("{what} is not a canonical BN254 scalar (it is not below the field modulus)")]
    NotCanonical {
        /// Which value.
        what: &'static str,
    },
    /// The job id is malformed.
    #[error("invalid job_id: {0}")]
    JobId(&'static str),
    /// A mixed-case address whose EIP-55 checksum does not match.
    #[error("marketplace address has an invalid EIP-55 checksum (check for a typo, or write it in lower case)")]
    AddressChecksum,
    /// Both `model` and `model_hash` were given.
    #[error("give either \"model\" or \"model_hash\", not both")]
    ModelAmbiguous,
    /// Neither `model` nor `model_hash` was given (or `model` is empty).
    #[error(
        "missing model: give \"model\" (a non-empty name) or \"model_hash\" (0x + 64 hex digits)"
    )]
    ModelMissing,
    /// A public input lies outside its range.
    #[error("public input {what} (index {index}) is out of range")]
    InstanceRange {
        /// Index in the instance column.
        index: usize,
        /// Which input.
        what: &'static str,
    },
    /// The instance column has a length no circuit version has.
    #[error("{found} public inputs: circuit version 1 has 6, version 2 has 7")]
    InstanceCount {
        /// Number of elements given.
        found: usize,
    },
}

/// A proof envelope that cannot be parsed. No allocation depends on a length
/// read from the input before that length has been checked against a bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// No bytes at all.
    #[error("proof envelope is empty")]
    Empty,
    /// The input ends before the envelope does.
    #[error("proof envelope is truncated: {needed} bytes needed, {found} present")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// Bytes follow the end of the envelope.
    #[error("proof envelope has {extra} trailing bytes")]
    TrailingBytes {
        /// Extra bytes.
        extra: usize,
    },
    /// The input exceeds the largest envelope accepted.
    #[error("proof envelope is {found} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Bytes present.
        found: usize,
        /// Limit.
        limit: usize,
    },
    /// Not a proof envelope.
    #[error("not a fabstir proof envelope (bad magic)")]
    BadMagic,
    /// A format version this library does not read.
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    /// A circuit version this library does not verify.
    #[error("unsupported circuit version {0}")]
    UnsupportedCircuit(u8),
    /// The public inputs are not those of the envelope's circuit version
    /// (version 2 has `tokens`, version 1 does not).
    #[error("a circuit version {circuit} envelope needs {expected} public inputs, its instance has {found}")]
    InstanceVersion {
        /// The envelope's circuit version.
        circuit: u8,
        /// Public inputs the instance has.
        found: usize,
        /// Public inputs the version has.
        expected: usize,
    },
    /// Reserved header bits are set.
    #[error("reserved envelope flags are set: {0:#04x}")]
    ReservedFlags(u8),
    /// The declared proof length is not the circuit's proof length.
    #[error("proof is {found} bytes, expected {expected} for this circuit")]
    ProofLength {
        /// Expected length.
        expected: usize,
        /// Declared or found length.
        found: usize,
    },
    /// A public input is not a canonical field element or out of its range.
    #[error("public input {index} is malformed: {reason}")]
    Instance {
        /// Index in the instance column.
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// A scalar in the proof is not below the field modulus.
    #[error("proof scalar at byte {offset} is not canonical")]
    NonCanonicalScalar {
        /// Offset within the proof bytes.
        offset: usize,
    },
    /// A point coordinate in the proof is not below the base field modulus.
    #[error("proof point at byte {offset} has a non-canonical coordinate")]
    NonCanonicalPoint {
        /// Offset within the proof bytes.
        offset: usize,
    },
    /// A point in the proof is not on the curve.
    #[error("proof point at byte {offset} is not on the BN254 curve")]
    PointNotOnCurve {
        /// Offset within the proof bytes.
        offset: usize,
    },
    /// A point in the proof is the point at infinity, which an honest prover never sends.
    #[error("proof point at byte {offset} is the point at infinity")]
    IdentityPoint {
        /// Offset within the proof bytes.
        offset: usize,
    },
    /// The JSON form does not parse.
    #[error("invalid proof JSON: {0}")]
    Json(String),
}

/// Why a proof was not accepted for a statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The envelope is malformed.
    #[error(transparent)]
    Malformed(#[from] EnvelopeError),
    /// The proof was made with another verifying key.
    #[error("proof was made for verifying key {found}, this verifier holds {expected}")]
    UnknownVerifyingKey {
        /// The verifier's key id.
        expected: String,
        /// The envelope's key id.
        found: String,
    },
    /// The envelope's public inputs differ from those recomputed from the result.
    #[error("the proof's public {field} does not match the result being verified")]
    InstanceMismatch {
        /// Which public input differs.
        field: &'static str,
    },
    /// The proof does not verify for these public inputs.
    #[error("the proof does not verify for this statement")]
    Invalid,
    /// The proof's public inputs are of another circuit version than the
    /// verifying key.
    #[error("the proof has circuit version {proof} public inputs, the verifying key is for version {key}")]
    CircuitVersion {
        /// The verifying key's circuit version.
        key: u8,
        /// The version of the proof's public inputs.
        proof: u8,
    },
}

/// Failure to create a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError {
    /// The host key does not belong to the statement's host.
    #[error("the host key does not match the statement's host_id")]
    WrongHostKey,
    /// The statement's job id lies in the domain reserved for host
    /// registrations (see `registration`): no result is proved for it.
    #[error("job ids starting with the bytes \"fabstir:host\" are reserved for host registrations; no result is proved for one")]
    ReservedJobId,
    /// Proving took longer than allowed.
    #[error("proving did not finish within {0:?}")]
    Timeout(Duration),
    /// The proving backend failed (an internal error; report it).
    #[error("the proving backend failed: {0}")]
    Backend(String),
}

/// Failure to create, load or store keys and parameters.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file exists where a new one would be created.
    #[error("{path} already exists; refusing to overwrite key material (move it away first)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A secret file is readable by others.
    #[error("{path} has mode {mode:04o}; secret files must not be readable by group or others (chmod 0400 it)")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A file is larger than any file of its kind (probably the wrong path).
    #[error("{path}: is {len} bytes, more than the {limit} expected")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The largest size accepted.
        limit: u64,
    },
    /// A path that must name a regular file names a directory, device or pipe.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file is not the expected kind of file or is damaged.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The parameters file does not have the pinned SHA-256.
    #[error("SRS file {path} has SHA-256 {found}, but {expected} is pinned; refusing to use it")]
    SrsPin {
        /// The file.
        path: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        found: String,
    },
    /// The parameters do not support this circuit.
    #[error("SRS supports 2^{found} rows; the circuit needs 2^{needed}")]
    SrsTooSmall {
        /// The SRS's k.
        found: u32,
        /// The circuit's k.
        needed: u32,
    },
    /// The key directory's SRS has too few rows for a batch size's
    /// verifying key, and is not the development SRS (whose larger sizes
    /// can be rebuilt).
    #[error("a batch of {entries} entries needs an SRS of 2^{needed} rows to derive its verifying key, the key directory's SRS has 2^{found}: key directories store a ceremony SRS cut to the single circuit's size, so a batch of this size needs the ceremony parameters file the keys were made from")]
    BatchSrs {
        /// The batch size.
        entries: usize,
        /// The rows (log2) the batch circuit needs.
        needed: u32,
        /// The rows (log2) of the stored SRS.
        found: u32,
    },
    /// Keys do not belong to these parameters and this circuit.
    #[error("keys do not pair: {0}")]
    Pairing(String),
    /// The environment sets halo2's MAX_DEGREE to a value it cannot parse.
    #[error("environment variable MAX_DEGREE={0:?} is not a number; unset it (the circuit pins its own degree)")]
    Environment(String),
    /// Key generation failed in the backend.
    #[error("key generation failed: {0}")]
    Backend(String),
}

/// A constraint at one row: which gate, which of its constraints, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintAt {
    /// Gate name.
    pub gate: String,
    /// Constraint (polynomial) name within the gate.
    pub constraint: String,
    /// Row the gate is evaluated at.
    pub row: usize,
}

impl std::fmt::Display for ConstraintAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' of gate '{}' at row {}",
            self.constraint, self.gate, self.row
        )
    }
}

/// A cell the constraints read (or a public input) that they do not
/// determine, with its readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeterminedCell {
    /// The cell.
    pub cell: crate::cell::Cell,
    /// Whether some active constraint could determine it (it then waits for
    /// another undetermined cell); if not, this is where a constraint or a
    /// free input is missing.
    pub determinable: bool,
    /// The active constraints that read it.
    pub read_by: Vec<ConstraintAt>,
}

/// Lists at most a few items, then how many more there are.
fn some_of<T: std::fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 6;
    let mut out: Vec<String> = items.iter().take(SHOWN).map(T::to_string).collect();
    if items.len() > SHOWN {
        out.push(format!("and {} more", items.len() - SHOWN));
    }
    out.join("; ")
}

impl std::fmt::Display for UndeterminedCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let determined_by = if self.determinable {
            "waits for other cells"
        } else {
            "no constraint determines it"
        };
        if self.read_by.is_empty() {
            write!(f, "{} ({determined_by}; read by no constraint)", self.cell)
        } else {
            write!(
                f,
                "{} ({determined_by}; read by {})",
                self.cell,
                some_of(&self.read_by)
            )
        }
    }
}

/// Why the circuit's constraints do not determine its witness from the free
/// inputs (see `circuit::uniqueness`): a missing or redundant constraint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UniquenessError {
    /// The constraint system uses a construct the check does not model.
    #[error("constraint '{constraint}' of gate '{gate}' uses {what}, which the uniqueness check does not model (it handles fixed, advice and instance queries only)")]
    Unsupported {
        /// Gate name.
        gate: String,
        /// Constraint name.
        constraint: String,
        /// The construct.
        what: &'static str,
    },
    /// The fixed columns given do not match the constraint system.
    #[error("the constraint system has {expected} fixed columns of {rows} rows, but {found} columns were given or one has another length")]
    FixedColumns {
        /// Fixed columns of the constraint system.
        expected: usize,
        /// Columns given.
        found: usize,
        /// Rows expected.
        rows: usize,
    },
    /// Some read cells are not determined, some active constraints determine
    /// no cell, or some free cells are read by no constraint.
    #[error("the constraints do not determine the witness from the free inputs: {} undetermined cells [{}]; {} constraints that determine no cell [{}]; {} free cells that no constraint reads [{}]", .undetermined.len(), some_of(.undetermined), .redundant.len(), some_of(.redundant), .unread_free.len(), some_of(.unread_free))]
    NotDetermined {
        /// Cells read by an active constraint, and public inputs, that are
        /// neither free nor determined (a constraint is missing, or a free
        /// input is not listed); those no constraint could determine first.
        undetermined: Vec<UndeterminedCell>,
        /// Active constraints whose cells were all determined before they
        /// could determine one (redundant, or unsatisfiable for some inputs).
        redundant: Vec<ConstraintAt>,
        /// Free cells that no active constraint reads (an input that is not
        /// bound to anything).
        unread_free: Vec<crate::cell::Cell>,
    },
}

/// Why an EVM verifier or its calldata cannot be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvmError {
    /// The verifying key uses a feature the generated verifier does not implement.
    #[error("the EVM verifier does not support {0} (supported: one advice phase, one instance column, no permutation argument, no lookups)")]
    Unsupported(String),
    /// The proof does not have the length the verifying key implies.
    #[error("proof is {actual} bytes; the verifying key's proofs are {expected} bytes")]
    ProofLength {
        /// Length the key implies.
        expected: usize,
        /// Length given.
        actual: usize,
    },
}

/// Why a batch statement, batch public inputs or a batch proof is refused
/// (see [`crate::batch`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// No batch circuit has this many entries.
    #[error("a batch of {found} entries is not supported: a batch has 1 to {max} entries")]
    Size {
        /// Entries asked for.
        found: usize,
        /// The largest batch.
        max: usize,
    },
    /// A batch without entries.
    #[error("the batch has no entries")]
    Empty,
    /// The batch does not have the key's number of entries.
    #[error("the batch has {found} entries, the key is for batches of {expected} (pad it with BatchEntry::padding)")]
    EntryCount {
        /// The key's batch size.
        expected: usize,
        /// Entries given.
        found: usize,
    },
    /// A statement of the batch has another chain, marketplace or host than
    /// the first.
    #[error("statement {entry}: {field} differs from statement 0's (a batch has one chain, one marketplace and one host)")]
    Shared {
        /// Index of the statement.
        entry: usize,
        /// The field.
        field: &'static str,
    },
    /// The instance column does not have `7 * N` elements.
    #[error("{found} public inputs: a batch of {entries} has {expected}")]
    InstanceCount {
        /// The batch size.
        entries: usize,
        /// Public inputs expected.
        expected: usize,
        /// Public inputs given.
        found: usize,
    },
    /// A public input lies outside its range.
    #[error("public input {index} (entry {entry}'s {field}) is out of range")]
    InstanceRange {
        /// Index in the instance column.
        index: usize,
        /// The entry.
        entry: usize,
        /// Which value.
        field: &'static str,
    },
    /// A copy of a shared public input differs from entry 0's.
    #[error("public input {index} (entry {entry}'s {field}) differs from entry 0's: every entry carries the same {field}")]
    InstanceShared {
        /// Index in the instance column.
        index: usize,
        /// The entry.
        entry: usize,
        /// Which value.
        field: &'static str,
    },
    /// The host key does not belong to the batch's host.
    #[error("the host key does not match the batch's host_id")]
    WrongHostKey,
    /// Batch proof bytes that do not parse (see `batch::encoding`).
    #[error("malformed batch proof: {0}")]
    Encoding(&'static str),
    /// The proof is for another batch size than the verifying key.
    #[error("the proof is for batches of {proof} entries, the verifying key for batches of {key}")]
    KeySize {
        /// The key's batch size.
        key: usize,
        /// The proof's batch size.
        proof: usize,
    },
    /// The proof was made with another verifying key.
    #[error("proof was made for batch verifying key {found}, this verifier holds {expected}")]
    UnknownVerifyingKey {
        /// The verifier's key id.
        expected: String,
        /// The proof's key id.
        found: String,
    },
    /// The proof's public inputs differ from those the verifier computed.
    #[error("the proof's public {field} does not match the batch being verified")]
    PublicMismatch {
        /// Which value (`chain_id`, `marketplace`, `host_id`, or
        /// `entries[i].job_id`, `.tokens`, `.commitment`).
        field: String,
    },
    /// The proof bytes are malformed (length, points, scalars).
    #[error(transparent)]
    Malformed(#[from] EnvelopeError),
    /// The proof does not verify for these public inputs.
    #[error("the batch proof does not verify for this batch")]
    Invalid,
    /// Proving failed in the backend (an internal error; report it).
    #[error("the proving backend failed: {0}")]
    Backend(String),
}

/// Why a client's checkpoint is not confirmed by a batch proof (see
/// [`crate::batch::check`]). Each variant names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The batch proof's bytes or shape are malformed.
    #[error(transparent)]
    Malformed(BatchError),
    /// The proof is for another batch size than the verifying key (or for
    /// none this verifier supports).
    #[error("the batch proof has {proof} entries, the batch verifying key is for batches of {key}: use the key of the proof's size")]
    UnsupportedSize {
        /// The proof's batch size.
        proof: usize,
        /// The key's batch size.
        key: usize,
    },
    /// The proof was made with another verifying key.
    #[error(
        "the batch proof was made for batch verifying key {found}, this verifier holds {expected}"
    )]
    UnknownVerifyingKey {
        /// The verifier's key id.
        expected: String,
        /// The proof's key id.
        found: String,
    },
    /// The batch is for another chain than the result.
    #[error("the batch's chain_id is {found}, the result's is {expected}: the batch is for another chain")]
    WrongChain {
        /// The result's chain.
        expected: u64,
        /// The batch's chain.
        found: u64,
    },
    /// The batch is for another marketplace than the result.
    #[error("the batch's marketplace is {found}, the result's is {expected}: the batch is for another marketplace contract")]
    WrongMarketplace {
        /// The result's marketplace.
        expected: String,
        /// The batch's marketplace.
        found: String,
    },
    /// The batch is another host's.
    #[error("the batch's host_id is {found}, the expected host is {expected}: the batch is another host's")]
    WrongHost {
        /// The host the client expects.
        expected: String,
        /// The batch's host.
        found: String,
    },
    /// The result's job is 0, which marks padding entries.
    #[error(
        "job_id 0 marks padding entries: a result with job_id 0 never matches an entry of a batch"
    )]
    PaddingJob,
    /// No entry has the result's job at the checkpoint's token count.
    #[error("no entry of the batch has job_id {job_id} at tokens {tokens} ({seen}): check the job and the checkpoint's cumulative tokens")]
    NotInBatch {
        /// The result's job.
        job_id: String,
        /// The checkpoint's cumulative tokens.
        tokens: u64,
        /// The token counts the batch has for the job, or that it has none.
        seen: String,
    },
    /// The entry of the job and tokens commits to another result.
    #[error("entry {entry} has the job and tokens but commitment {found}, the result's is {expected}: the batch binds another model, prompt or response to this checkpoint")]
    CommitmentDiffers {
        /// The entry.
        entry: usize,
        /// The commitment recomputed from the result.
        expected: String,
        /// The batch's commitment.
        found: String,
    },
    /// The entry matches but the proof does not verify.
    #[error("the entry matches but the batch proof does not verify: {0}")]
    Invalid(BatchError),
}
