//! The statement a proof is about, and its encoding into field elements.
//!
//! Every 32-byte value is split into two 128-bit big-endian halves `(hi, lo)`,
//! each a field element: about 81 % of SHA-256 digests exceed the BN254 scalar
//! modulus, so a 32-byte value is never reduced into one element.

use std::fmt;
use std::str::FromStr;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::PrimeField;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::circuit::layout::{instance, TOKENS_SHIFT};
use crate::error::InputError;
use crate::poseidon;
use crate::CircuitVersion;

/// A 32-byte big-endian value as `(hi, lo)` field elements.
pub fn limbs(bytes: &[u8; 32]) -> (Fr, Fr) {
    (be_to_field(&bytes[..16]), be_to_field(&bytes[16..]))
}

/// A big-endian integer of at most 31 bytes as a field element.
fn be_to_field(be: &[u8]) -> Fr {
    debug_assert!(be.len() < 32);
    let mut le = [0u8; 32];
    for (dst, src) in le.iter_mut().zip(be.iter().rev()) {
        *dst = *src;
    }
    // Fewer than 32 bytes is always below the modulus.
    Option::from(Fr::from_repr(le)).unwrap_or_default()
}

/// A field element as 32 big-endian bytes.
pub fn field_to_be(x: &Fr) -> [u8; 32] {
    let mut be = x.to_repr();
    be.reverse();
    be
}

/// 32 big-endian bytes as a field element, if canonical (below the modulus).
pub fn field_from_be(be: &[u8; 32]) -> Option<Fr> {
    let mut le = *be;
    le.reverse();
    Option::from(Fr::from_repr(le))
}

/// `0x`-prefixed lowercase hex.
fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Parses `0x` followed by exactly `2 * N` hex digits.
fn parse_fixed_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], InputError> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or(InputError::MissingHexPrefix { what })?;
    if digits.len() != 2 * N {
        return Err(InputError::HexLength {
            what,
            expected: 2 * N,
            found: digits.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| InputError::InvalidHex { what })?;
    Ok(out)
}

/// The on-chain job id: a uint256, stored big-endian.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 32]);

impl JobId {
    /// Parses a decimal number or `0x`-prefixed hex (1 to 64 digits).
    pub fn parse(s: &str) -> Result<Self, InputError> {
        let s = s.trim();
        if let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            if digits.is_empty() || digits.len() > 64 {
                return Err(InputError::JobId("hex job id must have 1 to 64 digits"));
            }
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(InputError::JobId("job id has a non-hex digit"));
            }
            let padded = format!("{digits:0>64}");
            let mut out = [0u8; 32];
            hex::decode_to_slice(padded, &mut out)
                .map_err(|_| InputError::JobId("job id has a non-hex digit"))?;
            return Ok(Self(out));
        }
        if s.is_empty() {
            return Err(InputError::JobId("job id is empty"));
        }
        let mut out = [0u8; 32];
        for b in s.bytes() {
            if !b.is_ascii_digit() {
                return Err(InputError::JobId(
                    "job id must be decimal digits or 0x-prefixed hex",
                ));
            }
            // out = out * 10 + digit, big-endian, with overflow detection.
            let mut carry = u32::from(b - b'0');
            for byte in out.iter_mut().rev() {
                let v = u32::from(*byte) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            if carry != 0 {
                return Err(InputError::JobId("job id exceeds 2^256 - 1"));
            }
        }
        Ok(Self(out))
    }

    /// Whether the id lies in the domain reserved for host registrations
    /// (it starts with [`REGISTRATION_DOMAIN`]; see `crate::registration`):
    /// no result may name such a job.
    pub fn is_reserved(&self) -> bool {
        self.0[..REGISTRATION_DOMAIN.len()] == REGISTRATION_DOMAIN
    }

    /// From a u64.
    pub fn from_u64(v: u64) -> Self {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&v.to_be_bytes());
        Self(out)
    }

    /// Decimal representation.
    pub fn to_decimal(&self) -> String {
        let mut digits = Vec::new();
        let mut n = self.0;
        while n.iter().any(|b| *b != 0) {
            let mut remainder = 0u32;
            for byte in n.iter_mut() {
                let v = (remainder << 8) | u32::from(*byte);
                *byte = (v / 10) as u8;
                remainder = v % 10;
            }
            digits.push(b'0' + remainder as u8);
        }
        if digits.is_empty() {
            return "0".to_string();
        }
        digits.reverse();
        String::from_utf8(digits).unwrap_or_default()
    }

    /// The id as people read it, for log lines and messages: decimal when
    /// it is below 2^64 (on-chain job ids are counters, and clients give
    /// them in decimal), else `0x` and hex without leading zeros. `Display`
    /// stays `0x` and 64 hex digits: that form is the stored and serialized
    /// one.
    pub fn short(&self) -> ShortJobId {
        ShortJobId(*self)
    }
}

/// A [`JobId`] written for people ([`JobId::short`]): `42`, or
/// `0x1000000000000000000` for ids of 2^64 and above.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortJobId(JobId);

impl fmt::Display for ShortJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = &(self.0).0;
        if bytes[..24].iter().all(|b| *b == 0) {
            let mut low = [0u8; 8];
            low.copy_from_slice(&bytes[24..]);
            return write!(f, "{}", u64::from_be_bytes(low));
        }
        let digits = hex::encode(bytes);
        write!(f, "0x{}", digits.trim_start_matches('0'))
    }
}

impl fmt::Debug for ShortJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for JobId {
    /// `0x` and 64 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl FromStr for JobId {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for JobId {
    /// Accepts a JSON string (decimal or hex) or a non-negative JSON integer
    /// below 2^64; anything else is refused with a message naming the
    /// accepted forms.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JobIdVisitor;

        const EXPECTED: &str = "a job id: a string of decimal digits or 0x-prefixed hex (up to 2^256 - 1), or a non-negative JSON integer below 2^64";

        impl serde::de::Visitor<'_> for JobIdVisitor {
            type Value = JobId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<JobId, E> {
                Ok(JobId::from_u64(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<JobId, E> {
                u64::try_from(n)
                    .map(JobId::from_u64)
                    .map_err(|_| E::custom(format!("job id {n} is negative; expected {EXPECTED}")))
            }

            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<JobId, E> {
                Err(E::custom(format!(
                    "job id {n} is not an integer below 2^64 (large numbers lose precision in JSON): give it as a string; expected {EXPECTED}"
                )))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<JobId, E> {
                JobId::parse(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(JobIdVisitor)
    }
}

/// A 20-byte contract address (the marketplace): alloy's, the one address
/// type of the workspace. Its `Display` is the EIP-55 checksummed form.
pub use alloy_primitives::Address;

/// Parses a marketplace address: `0x` and 40 hex digits. Mixed-case input
/// must carry a valid EIP-55 checksum (a mistyped address is refused rather
/// than accepted); all-lowercase and all-uppercase input carries none.
pub fn parse_address(s: &str) -> Result<Address, InputError> {
    let s = s.trim();
    let address = Address::from(parse_fixed_hex::<20>("marketplace address", s)?);
    let digits = &s[2..];
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    if has_upper && has_lower && digits != &address.to_checksum(None)[2..] {
        return Err(InputError::AddressChecksum);
    }
    Ok(address)
}

/// Serde of an [`Address`] in this crate's JSON forms, as they have always
/// been: written EIP-55 checksummed, read with [`parse_address`] (alloy's own
/// serde writes lowercase and reads a wrong checksum without complaint).
/// For `#[serde(with = "fabstir_zk::statement::checksummed")]`.
pub mod checksummed {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{parse_address, Address};

    /// Writes the checksummed form.
    pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_checksum(None))
    }

    /// Reads with [`parse_address`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse_address(&s).map_err(serde::de::Error::custom)
    }
}

/// A 32-byte digest (SHA-256), shown as `0x` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Parses `0x` and 64 hex digits.
    pub fn parse(what: &'static str, s: &str) -> Result<Self, InputError> {
        parse_fixed_hex::<32>(what, s.trim()).map(Self)
    }
}

impl fmt::Display for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest32({self})")
    }
}

impl Serialize for Digest32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Digest32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse("digest", &s).map_err(serde::de::Error::custom)
    }
}

/// A field element shown as `0x` and 64 big-endian hex digits (host ids,
/// commitments); parsing rejects values at or above the modulus.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FieldHex(pub Fr);

impl FieldHex {
    /// Parses `0x` and 64 hex digits of a canonical field element.
    pub fn parse(what: &'static str, s: &str) -> Result<Self, InputError> {
        let be = parse_fixed_hex::<32>(what, s.trim())?;
        field_from_be(&be)
            .map(Self)
            .ok_or(InputError::NotCanonical { what })
    }
}

impl fmt::Display for FieldHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&field_to_be(&self.0)))
    }
}

impl fmt::Debug for FieldHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A host identity: `Poseidon(sk)` of the host's secret key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HostId(pub Fr);

impl HostId {
    /// Parses `0x` and 64 hex digits.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        FieldHex::parse("host id", s).map(|f| Self(f.0))
    }

    /// 32 big-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        field_to_be(&self.0)
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FieldHex(self.0).fmt(f)
    }
}

impl fmt::Debug for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostId({self})")
    }
}

impl FromStr for HostId {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for HostId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HostId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How the model is identified in a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// A model name; its SHA-256 is committed. Binds less than a file hash:
    /// two different files published under one name are indistinguishable.
    Name(String),
    /// The SHA-256 of the model file, as recorded by the model registry.
    Hash(Digest32),
}

impl ModelRef {
    /// The model from the two optional JSON fields: exactly one must be given
    /// (and a name must not be empty).
    pub fn from_parts(
        model: Option<String>,
        model_hash: Option<Digest32>,
    ) -> Result<Self, InputError> {
        match (model, model_hash) {
            (Some(_), Some(_)) => Err(InputError::ModelAmbiguous),
            (None, None) => Err(InputError::ModelMissing),
            (Some(name), None) if name.is_empty() => Err(InputError::ModelMissing),
            (Some(name), None) => Ok(Self::Name(name)),
            (None, Some(hash)) => Ok(Self::Hash(hash)),
        }
    }

    /// The committed model hash.
    pub fn hash(&self) -> Digest32 {
        match self {
            Self::Name(name) => Digest32::sha256(name.as_bytes()),
            Self::Hash(hash) => *hash,
        }
    }
}

/// The first 12 bytes of every registration job id (`crate::registration`).
pub const REGISTRATION_DOMAIN: [u8; 12] = *b"fabstir:host";

/// Why a result naming a job id of the registration domain is refused.
pub const RESERVED_JOB_ID: &str =
    "job ids starting with the bytes \"fabstir:host\" are reserved for host registrations";

/// An inference result as a host reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InferenceResult {
    /// The on-chain job.
    pub job_id: JobId,
    /// The chain the marketplace contract lives on.
    pub chain_id: u64,
    /// The marketplace contract.
    pub marketplace: Address,
    /// The model that produced the response.
    pub model: ModelRef,
    /// The prompt, as bytes hashed with SHA-256 (UTF-8 for JSON input).
    pub prompt: String,
    /// The response, likewise.
    pub response: String,
    /// The job's cumulative token count this result covers (JSON
    /// `tokens_used`); a version 2 proof binds it as `tokens`.
    pub tokens_used: u64,
}

/// JSON form of [`InferenceResult`]: `model` or `model_hash`, exactly one.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferenceResultJson {
    job_id: JobId,
    chain_id: u64,
    #[serde(with = "checksummed")]
    marketplace: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_hash: Option<Digest32>,
    prompt: String,
    response: String,
    tokens_used: u64,
}

impl InferenceResult {
    /// Parses the JSON form, with a typed error naming the offending field.
    /// A key repeated anywhere in the document is refused.
    pub fn from_json(json: &[u8]) -> Result<Self, InputError> {
        let raw: InferenceResultJson =
            crate::json::from_slice(json).map_err(|e| InputError::Json(e.to_string()))?;
        let model = ModelRef::from_parts(raw.model, raw.model_hash)?;
        if raw.job_id.is_reserved() {
            return Err(InputError::JobId(RESERVED_JOB_ID));
        }
        Ok(Self {
            job_id: raw.job_id,
            chain_id: raw.chain_id,
            marketplace: raw.marketplace,
            model,
            prompt: raw.prompt,
            response: raw.response,
            tokens_used: raw.tokens_used,
        })
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let (model, model_hash) = match &self.model {
            ModelRef::Name(name) => (Some(name.clone()), None),
            ModelRef::Hash(hash) => (None, Some(*hash)),
        };
        let raw = InferenceResultJson {
            job_id: self.job_id,
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            model,
            model_hash,
            prompt: self.prompt.clone(),
            response: self.response.clone(),
            tokens_used: self.tokens_used,
        };
        serde_json::to_string_pretty(&raw).unwrap_or_default()
    }

    /// The statement this result makes for `host_id`.
    pub fn statement(&self, host_id: HostId) -> Statement {
        Statement {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            job_id: self.job_id,
            model_hash: self.model.hash(),
            input_hash: Digest32::sha256(self.prompt.as_bytes()),
            output_hash: Digest32::sha256(self.response.as_bytes()),
            host_id,
            tokens: self.tokens_used,
        }
    }
}

/// Everything the commitment covers, in hashed form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Chain id.
    pub chain_id: u64,
    /// Marketplace contract.
    #[serde(with = "checksummed")]
    pub marketplace: Address,
    /// Job id.
    pub job_id: JobId,
    /// SHA-256 of the model file (or of its name).
    pub model_hash: Digest32,
    /// SHA-256 of the prompt bytes.
    pub input_hash: Digest32,
    /// SHA-256 of the response bytes.
    pub output_hash: Digest32,
    /// The host that claims the work.
    pub host_id: HostId,
    /// The job's cumulative token count (bound from circuit version 2 on).
    pub tokens: u64,
}

/// The first commitment input of circuit version 2: `chain_id + 2^64 *
/// tokens`. Injective on pairs of u64 (the sum is below 2^128, far below the
/// field modulus, and its low 64 bits are `chain_id`).
pub fn pack_chain_and_tokens(chain_id: u64, tokens: u64) -> Fr {
    Fr::from_u128(u128::from(chain_id) | (u128::from(tokens) << TOKENS_SHIFT))
}

impl Statement {
    /// Whether this is a registration statement (its job id lies in the
    /// reserved domain, see `crate::registration`).
    pub fn is_registration(&self) -> bool {
        self.job_id.is_reserved()
    }

    /// The eleven commitment inputs of the current circuit version, in
    /// circuit order.
    pub fn commitment_inputs(&self) -> [Fr; 11] {
        self.commitment_inputs_for(CircuitVersion::CURRENT)
    }

    /// The eleven commitment inputs of circuit `version`: the first is
    /// `chain_id` (version 1) or `chain_id + 2^64 * tokens` (version 2).
    pub fn commitment_inputs_for(&self, version: CircuitVersion) -> [Fr; 11] {
        let (job_hi, job_lo) = limbs(&self.job_id.0);
        let (model_hi, model_lo) = limbs(&self.model_hash.0);
        let (input_hi, input_lo) = limbs(&self.input_hash.0);
        let (output_hi, output_lo) = limbs(&self.output_hash.0);
        let first = if version.binds_tokens() {
            pack_chain_and_tokens(self.chain_id, self.tokens)
        } else {
            Fr::from(self.chain_id)
        };
        [
            first,
            be_to_field(self.marketplace.as_slice()),
            job_hi,
            job_lo,
            model_hi,
            model_lo,
            input_hi,
            input_lo,
            output_hi,
            output_lo,
            self.host_id.0,
        ]
    }

    /// `Poseidon(chain_id + 2^64 * tokens, marketplace, job.hi, job.lo,
    /// model.hi, model.lo, input.hi, input.lo, output.hi, output.lo,
    /// host_id)` (the current circuit version's commitment).
    pub fn commitment(&self) -> Fr {
        self.commitment_for(CircuitVersion::CURRENT)
    }

    /// The commitment of circuit `version` (see
    /// [`Statement::commitment_inputs_for`]).
    pub fn commitment_for(&self, version: CircuitVersion) -> Fr {
        poseidon::hash11(&self.commitment_inputs_for(version))
    }

    /// The public inputs a new proof of this statement is verified against
    /// (the current circuit version).
    pub fn instance(&self) -> Instance {
        self.instance_for(CircuitVersion::CURRENT)
    }

    /// The public inputs of circuit `version`: a verifier checking a proof
    /// computes them for the proof's own version
    /// ([`crate::ProofEnvelope::version`]). Version 1 has no `tokens`.
    pub fn instance_for(&self, version: CircuitVersion) -> Instance {
        Instance {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            job_id: self.job_id,
            tokens: version.binds_tokens().then_some(self.tokens),
            host_id: self.host_id,
            commitment: FieldHex(self.commitment_for(version)),
        }
    }
}

/// The public inputs of a proof: what a verifier (and later a contract) sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Chain id.
    pub chain_id: u64,
    /// Marketplace contract.
    #[serde(with = "checksummed")]
    pub marketplace: Address,
    /// Job id.
    pub job_id: JobId,
    /// The job's cumulative token count: `Some` in circuit version 2, `None`
    /// in version 1 (which binds no token count). Absent from the JSON of a
    /// version 1 instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Host identity.
    pub host_id: HostId,
    /// The commitment.
    #[serde(serialize_with = "ser_field", deserialize_with = "de_field")]
    pub commitment: FieldHex,
}

fn ser_field<S: Serializer>(v: &FieldHex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn de_field<'de, D: Deserializer<'de>>(d: D) -> Result<FieldHex, D::Error> {
    let s = String::deserialize(d)?;
    FieldHex::parse("commitment", &s).map_err(serde::de::Error::custom)
}

impl Instance {
    /// The circuit version these public inputs belong to: 2 with `tokens`,
    /// 1 without.
    pub fn version(&self) -> CircuitVersion {
        if self.tokens.is_some() {
            CircuitVersion::V2
        } else {
            CircuitVersion::V1
        }
    }

    /// The names of the public inputs in which `self` differs from `other`,
    /// in this order: `chain_id`, `marketplace`, `job_id`, `tokens` (also
    /// when one instance has it and the other, of version 1, does not),
    /// `host_id`, `commitment` (the one comparison every verifier uses).
    pub fn differences(&self, other: &Instance) -> Vec<&'static str> {
        [
            ("chain_id", self.chain_id != other.chain_id),
            ("marketplace", self.marketplace != other.marketplace),
            ("job_id", self.job_id != other.job_id),
            ("tokens", self.tokens != other.tokens),
            ("host_id", self.host_id != other.host_id),
            ("commitment", self.commitment != other.commitment),
        ]
        .into_iter()
        .filter_map(|(field, differs)| differs.then_some(field))
        .collect()
    }

    /// The instance column, in circuit order: 6 elements in version 1,
    /// 7 (`tokens` last) in version 2.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        let (job_hi, job_lo) = limbs(&self.job_id.0);
        let mut elements = vec![
            Fr::from(self.chain_id),
            be_to_field(self.marketplace.as_slice()),
            job_hi,
            job_lo,
            self.host_id.0,
            self.commitment.0,
        ];
        elements.extend(self.tokens.map(Fr::from));
        elements
    }

    /// Rebuilds an instance from its field elements (6 for circuit version
    /// 1, 7 for version 2), checking that each lies in its range (chain id
    /// and tokens below 2^64, address below 2^160, job limbs below 2^128):
    /// the commitment packs `chain_id + 2^64 * tokens`, which is injective
    /// only for values below 2^64.
    pub fn from_field_elements(elements: &[Fr]) -> Result<Self, InputError> {
        let version = match elements.len() {
            instance::COUNT_V1 => CircuitVersion::V1,
            instance::COUNT => CircuitVersion::V2,
            found => return Err(InputError::InstanceCount { found }),
        };
        let be: Vec<[u8; 32]> = elements.iter().map(field_to_be).collect();
        let fits = |bytes: &[u8; 32], len: usize| bytes[..32 - len].iter().all(|b| *b == 0);
        let tokens = version
            .binds_tokens()
            .then_some((instance::TOKENS, 8, "tokens"));
        for (index, len, what) in [
            (instance::CHAIN_ID, 8, "chain id"),
            (instance::MARKETPLACE, 20, "marketplace"),
            (instance::JOB_HI, 16, "job id high limb"),
            (instance::JOB_LO, 16, "job id low limb"),
        ]
        .into_iter()
        .chain(tokens)
        {
            if !fits(&be[index], len) {
                return Err(InputError::InstanceRange { index, what });
            }
        }
        let u64_at = |index: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&be[index][24..]);
            u64::from_be_bytes(bytes)
        };
        let mut marketplace = [0u8; 20];
        marketplace.copy_from_slice(&be[instance::MARKETPLACE][12..]);
        let mut job = [0u8; 32];
        job[..16].copy_from_slice(&be[instance::JOB_HI][16..]);
        job[16..].copy_from_slice(&be[instance::JOB_LO][16..]);
        Ok(Self {
            chain_id: u64_at(instance::CHAIN_ID),
            marketplace: Address::from(marketplace),
            job_id: JobId(job),
            tokens: version.binds_tokens().then(|| u64_at(instance::TOKENS)),
            host_id: HostId(elements[instance::HOST_ID]),
            commitment: FieldHex(elements[instance::COMMITMENT]),
        })
    }
}
