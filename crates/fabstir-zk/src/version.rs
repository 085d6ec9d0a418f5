//! Circuit (statement) versions: which public inputs a proof binds.

use std::fmt;

/// Version of the statement and circuit, carried in key files, key
/// manifests and proof envelopes. New proofs are always
/// [`CircuitVersion::CURRENT`]; proofs of every listed version verify,
/// against the verifying key of their own version (selected by `vk_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CircuitVersion {
    /// Version 1: six public inputs (`chain_id, marketplace, job_hi, job_lo,
    /// host_id, commitment`); the commitment binds no token count.
    V1 = 1,
    /// Version 2: a seventh public input `tokens` (instance row 6), packed
    /// with `chain_id` into the commitment's first input as
    /// `chain_id + 2^64 * tokens`.
    #[default]
    V2 = 2,
}

impl CircuitVersion {
    /// The version new keys and proofs are made for.
    pub const CURRENT: Self = Self::V2;

    /// Every version this library verifies, oldest first.
    pub const ALL: [Self; 2] = [Self::V1, Self::V2];

    /// The version with this number, if this library knows it.
    pub fn from_u8(version: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_u8() == version)
    }

    /// The version number (as in headers and manifests).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether the statement binds a token count (`tokens`).
    pub const fn binds_tokens(self) -> bool {
        matches!(self, Self::V2)
    }

    /// Number of public inputs (rows of the instance column).
    pub const fn instance_count(self) -> usize {
        match self {
            Self::V1 => instance::COUNT_V1,
            Self::V2 => instance::COUNT,
        }
    }
}

impl fmt::Display for CircuitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// Instance column rows of the public inputs, in order.
pub mod instance {
    /// `chain_id`.
    pub const CHAIN_ID: usize = 0;
    /// `marketplace` address.
    pub const MARKETPLACE: usize = 1;
    /// High 128 bits of `job_id`.
    pub const JOB_HI: usize = 2;
    /// Low 128 bits of `job_id`.
    pub const JOB_LO: usize = 3;
    /// `host_id`.
    pub const HOST_ID: usize = 4;
    /// `commitment`.
    pub const COMMITMENT: usize = 5;
    /// `tokens` (circuit version 2): after the v1 rows, which keep their
    /// meaning, so that a version 1 instance is a prefix of a version 2 one.
    pub const TOKENS: usize = 6;
    /// Number of public inputs (circuit version 2).
    pub const COUNT: usize = 7;
    /// Number of public inputs of circuit version 1 (no `tokens`).
    pub const COUNT_V1: usize = 6;
    /// Size bound of each public input, in bits (the value is below
    /// `2^bits`; 254 means any canonical field element), in row order.
    /// Verifiers check these natively before verifying; version 1 has the
    /// first [`COUNT_V1`].
    pub const BITS: [u32; COUNT] = [64, 160, 128, 128, 254, 254, 64];
}
