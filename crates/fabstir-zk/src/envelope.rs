//! The proof envelope: the wire and storage format of a proof.
//!
//! Binary form (all integers big-endian):
//!
//! ```text
//! magic            4 bytes   "FZKP"
//! format version   u8        1
//! circuit version  u8        2 (CIRCUIT_VERSION); 1 for older proofs
//! flags            u8        0 (reserved)
//! reserved         u8        0
//! vk_id            32 bytes
//! public inputs    n x 32    chain_id, marketplace, job.hi, job.lo, host_id,
//!                            commitment, and in version 2 tokens (n = 7;
//!                            n = 6 in version 1)
//! proof length     u32       must equal the circuit's proof length (the same
//!                            for both versions)
//! proof            halo2 proof bytes (Keccak/EVM transcript)
//! ```
//!
//! Parsing is strict and bounded: every length is checked against a constant
//! before anything is allocated, trailing bytes are refused (halo2's verifier
//! never checks for end of input), and the proof bytes are walked point by
//! point and scalar by scalar so that non-canonical or off-curve encodings are
//! typed errors rather than verification failures.

use std::sync::OnceLock;

use halo2_axiom::halo2curves::bn256::{Fq, Fr, G1Affine};
use halo2_axiom::halo2curves::ff::PrimeField;
use halo2_axiom::halo2curves::CurveAffine;
use halo2_axiom::plonk::{Circuit, ConstraintSystem};
use serde::{Deserialize, Serialize};

use crate::circuit::CommitmentCircuit;
use crate::error::{EnvelopeError, InputError};
use crate::keys::VkId;
use crate::statement::{field_from_be, field_to_be, Instance};
use crate::CircuitVersion;

/// Envelope format version.
pub const ENVELOPE_FORMAT_VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"FZKP";
/// Bytes before the proof of a current-version envelope.
pub const HEADER_LEN: usize = header_len(CircuitVersion::CURRENT);

/// Bytes before the proof of an envelope of circuit `version`.
pub const fn header_len(version: CircuitVersion) -> usize {
    4 + 4 + 32 + 32 * version.instance_count() + 4
}
/// Largest JSON envelope accepted (checked before parsing).
pub const MAX_JSON_LEN: usize = 64 * 1024;
/// Largest binary input examined; longer input is refused outright.
pub const MAX_BINARY_LEN: usize = 64 * 1024;
const POINT_LEN: usize = 64;
const SCALAR_LEN: usize = 32;

/// The sequence of points and scalars in a proof of this circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofLayout {
    /// Commitments before the evaluations: advice, vanishing random
    /// polynomial, quotient pieces.
    pub leading_points: usize,
    /// Evaluations: advice queries, fixed queries, the random polynomial.
    pub scalars: usize,
    /// SHPLONK opening commitments.
    pub trailing_points: usize,
}

impl ProofLayout {
    /// The layout for this circuit, derived from its constraint system (the
    /// same for every circuit version: the versions differ in instance
    /// queries only, which add nothing to a KZG proof).
    pub fn get() -> Self {
        static LAYOUT: OnceLock<ProofLayout> = OnceLock::new();
        *LAYOUT.get_or_init(|| {
            let mut cs = ConstraintSystem::<Fr>::default();
            CommitmentCircuit::configure(&mut cs);
            Self::of(&cs)
        })
    }

    /// The layout of proofs of a constraint system without permutation
    /// argument and lookups (every circuit of this crate; their proof parts
    /// are absent).
    pub(crate) fn of(cs: &ConstraintSystem<Fr>) -> Self {
        Self {
            leading_points: cs.num_advice_columns() + 1 + (cs.degree() - 1),
            scalars: cs.advice_queries().len() + cs.fixed_queries().len() + 1,
            trailing_points: 2,
        }
    }

    /// Proof length in bytes.
    pub fn proof_len(&self) -> usize {
        (self.leading_points + self.trailing_points) * POINT_LEN + self.scalars * SCALAR_LEN
    }

    /// Length of a binary envelope of the current circuit version.
    pub fn envelope_len(&self) -> usize {
        HEADER_LEN + self.proof_len()
    }

    /// Checks every element of `proof`: points canonical, on the curve and not
    /// the identity; scalars canonical.
    pub fn validate(&self, proof: &[u8]) -> Result<(), EnvelopeError> {
        if proof.len() != self.proof_len() {
            return Err(EnvelopeError::ProofLength {
                expected: self.proof_len(),
                found: proof.len(),
            });
        }
        let scalars_start = self.leading_points * POINT_LEN;
        let trailing_start = scalars_start + self.scalars * SCALAR_LEN;
        for offset in (0..scalars_start)
            .step_by(POINT_LEN)
            .chain((trailing_start..proof.len()).step_by(POINT_LEN))
        {
            check_point(&proof[offset..offset + POINT_LEN], offset)?;
        }
        for offset in (scalars_start..trailing_start).step_by(SCALAR_LEN) {
            let mut be = [0u8; 32];
            be.copy_from_slice(&proof[offset..offset + SCALAR_LEN]);
            if field_from_be(&be).is_none() {
                return Err(EnvelopeError::NonCanonicalScalar { offset });
            }
        }
        Ok(())
    }
}

fn check_point(bytes: &[u8], offset: usize) -> Result<(), EnvelopeError> {
    let coordinate = |be: &[u8]| -> Option<Fq> {
        let mut le = [0u8; 32];
        le.copy_from_slice(be);
        le.reverse();
        Option::from(Fq::from_repr(le))
    };
    let (Some(x), Some(y)) = (coordinate(&bytes[..32]), coordinate(&bytes[32..])) else {
        return Err(EnvelopeError::NonCanonicalPoint { offset });
    };
    if bytes.iter().all(|b| *b == 0) {
        return Err(EnvelopeError::IdentityPoint { offset });
    }
    if Option::<G1Affine>::from(G1Affine::from_xy(x, y)).is_none() {
        return Err(EnvelopeError::PointNotOnCurve { offset });
    }
    Ok(())
}

/// A proof with everything needed to check it: the key it was made for, its
/// public inputs and the halo2 proof bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ProofEnvelope {
    /// The verifying key the proof was made for.
    pub vk_id: VkId,
    /// The public inputs the proof was made for; their version (with or
    /// without `tokens`) is the envelope's circuit version.
    pub instance: Instance,
    /// The halo2 proof.
    pub proof: Vec<u8>,
}

impl std::fmt::Debug for ProofEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofEnvelope")
            .field("vk_id", &self.vk_id)
            .field("instance", &self.instance)
            .field("proof_len", &self.proof.len())
            .finish()
    }
}

/// JSON form of the envelope.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeJson {
    format: u8,
    circuit: u8,
    vk_id: VkId,
    instance: Instance,
    proof: String,
}

impl ProofEnvelope {
    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let version = self.instance.version();
        let mut out = Vec::with_capacity(header_len(version) + self.proof.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[ENVELOPE_FORMAT_VERSION, version.as_u8(), 0, 0]);
        out.extend_from_slice(&self.vk_id.0);
        for element in self.instance.to_field_elements() {
            out.extend_from_slice(&field_to_be(&element));
        }
        out.extend_from_slice(&(self.proof.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.proof);
        out
    }

    /// Parses the binary form. See the module documentation for the checks.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let layout = ProofLayout::get();
        if bytes.is_empty() {
            return Err(EnvelopeError::Empty);
        }
        if bytes.len() > MAX_BINARY_LEN {
            return Err(EnvelopeError::TooLarge {
                found: bytes.len(),
                limit: MAX_BINARY_LEN,
            });
        }
        // Whatever prefix is present must be the magic; then the versions are
        // checked as soon as they are present, so that a newer envelope is
        // reported as such even when its header is shorter than this one.
        let prefix = bytes.len().min(MAGIC.len());
        if bytes[..prefix] != MAGIC[..prefix] {
            return Err(EnvelopeError::BadMagic);
        }
        if let Some(&version) = bytes.get(4) {
            if version != ENVELOPE_FORMAT_VERSION {
                return Err(EnvelopeError::UnsupportedVersion(version));
            }
        }
        let version = match bytes.get(5) {
            Some(&circuit) => CircuitVersion::from_u8(circuit)
                .ok_or(EnvelopeError::UnsupportedCircuit(circuit))?,
            None => CircuitVersion::CURRENT,
        };
        let header_len = header_len(version);
        if bytes.len() < header_len {
            return Err(EnvelopeError::Truncated {
                needed: header_len,
                found: bytes.len(),
            });
        }
        let (flags, reserved) = (bytes[6], bytes[7]);
        if flags != 0 || reserved != 0 {
            return Err(EnvelopeError::ReservedFlags(flags | reserved));
        }
        let mut vk_id = [0u8; 32];
        vk_id.copy_from_slice(&bytes[8..40]);
        let instance = parse_instance(&bytes[40..header_len - 4])?;
        let length_at = header_len - 4;
        let declared = u32::from_be_bytes([
            bytes[length_at],
            bytes[length_at + 1],
            bytes[length_at + 2],
            bytes[length_at + 3],
        ]) as usize;
        if declared != layout.proof_len() {
            return Err(EnvelopeError::ProofLength {
                expected: layout.proof_len(),
                found: declared,
            });
        }
        let body = &bytes[header_len..];
        if body.len() < declared {
            return Err(EnvelopeError::Truncated {
                needed: header_len + declared,
                found: bytes.len(),
            });
        }
        if body.len() > declared {
            return Err(EnvelopeError::TrailingBytes {
                extra: body.len() - declared,
            });
        }
        layout.validate(body)?;
        Ok(Self {
            vk_id: VkId(vk_id),
            instance,
            proof: body.to_vec(),
        })
    }

    /// The JSON form (proof as `0x` hex).
    pub fn to_json(&self) -> String {
        let json = EnvelopeJson {
            format: ENVELOPE_FORMAT_VERSION,
            circuit: self.instance.version().as_u8(),
            vk_id: self.vk_id,
            instance: self.instance,
            proof: format!("0x{}", hex::encode(&self.proof)),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Parses the JSON form with the same checks as the binary form; a key
    /// repeated anywhere in the document is refused.
    pub fn from_json(json: &[u8]) -> Result<Self, EnvelopeError> {
        if json.len() > MAX_JSON_LEN {
            return Err(EnvelopeError::TooLarge {
                found: json.len(),
                limit: MAX_JSON_LEN,
            });
        }
        let raw: EnvelopeJson =
            crate::json::from_slice(json).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        if raw.format != ENVELOPE_FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(raw.format));
        }
        let version = CircuitVersion::from_u8(raw.circuit)
            .ok_or(EnvelopeError::UnsupportedCircuit(raw.circuit))?;
        if raw.instance.version() != version {
            return Err(EnvelopeError::InstanceVersion {
                circuit: raw.circuit,
                found: raw.instance.version().instance_count(),
                expected: version.instance_count(),
            });
        }
        let digits = raw
            .proof
            .strip_prefix("0x")
            .or_else(|| raw.proof.strip_prefix("0X"))
            .ok_or_else(|| EnvelopeError::Json("proof must be 0x-prefixed hex".into()))?;
        if digits.len() % 2 != 0 {
            return Err(EnvelopeError::Json(
                "proof has an odd number of hex digits".into(),
            ));
        }
        let layout = ProofLayout::get();
        if digits.len() != 2 * layout.proof_len() {
            return Err(EnvelopeError::ProofLength {
                expected: layout.proof_len(),
                found: digits.len() / 2,
            });
        }
        let proof = hex::decode(digits)
            .map_err(|_| EnvelopeError::Json("proof is not valid hex".into()))?;
        layout.validate(&proof)?;
        Ok(Self {
            vk_id: raw.vk_id,
            instance: raw.instance,
            proof,
        })
    }
}

fn parse_instance(bytes: &[u8]) -> Result<Instance, EnvelopeError> {
    let mut elements = Vec::with_capacity(bytes.len() / 32);
    for (index, chunk) in bytes.chunks_exact(32).enumerate() {
        let mut be = [0u8; 32];
        be.copy_from_slice(chunk);
        elements.push(field_from_be(&be).ok_or(EnvelopeError::Instance {
            index,
            reason: "not a canonical field element",
        })?);
    }
    Instance::from_field_elements(&elements).map_err(|e| match e {
        InputError::InstanceRange { index, .. } => EnvelopeError::Instance {
            index,
            reason: "out of range",
        },
        _ => EnvelopeError::Instance {
            index: 0,
            reason: "malformed",
        },
    })
}
