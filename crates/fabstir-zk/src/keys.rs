//! Proving and verifying keys, their identity (`vk_id`) and their files.
//!
//! A key file is a fixed header followed by the halo2 key bytes:
//!
//! ```text
//! magic           8 bytes   "FZK-PK\0\0" or "FZK-VK\0\0"
//! format version  u16 BE    1
//! circuit version u16 BE    the key's circuit version (CIRCUIT_VERSION for
//!                           keys this build makes; 1 in older files)
//! k               u32 BE    log2 of the circuit's rows
//! vk_id           32 bytes  SHA-256 identity of the verifying key
//! body length     u64 BE
//! body SHA-256    32 bytes
//! body            halo2 key bytes
//! ```
//!
//! A verifying key of any version this library verifies (see
//! [`CircuitVersion`]) loads; it is re-derived for its header's version.
//! Loading checks every header field, the body digest, and that the keys pair
//! with the parameters and the circuit: a verifying key is re-derived from the
//! SRS and the circuit and must have the same id; a proving key must embed
//! that verifying key, hold the circuit's fixed columns, and its fixed
//! commitments must open to them under the SRS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use halo2_axiom::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::halo2curves::group::{Curve, Group};
use halo2_axiom::plonk::{self, keygen_pk, keygen_vk};
use halo2_axiom::poly::commitment::{Blind, Params};
use halo2_axiom::SerdeFormat;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::circuit::layout::{self, K};
use crate::circuit::uniqueness::{ConstraintAnalysis, UniquenessReport};
use crate::circuit::{expected_fixed_columns, CommitmentCircuit};
use crate::error::{InputError, KeyError, UniquenessError};
use crate::srs::Srs;
use crate::statement::Digest32;
use crate::CircuitVersion;

/// Key file format version.
pub const KEY_FORMAT_VERSION: u16 = 1;
const PK_MAGIC: &[u8; 8] = b"FZK-PK\0\0";
const VK_MAGIC: &[u8; 8] = b"FZK-VK\0\0";
const HEADER_LEN: usize = 8 + 2 + 2 + 4 + 32 + 8 + 32;
/// Upper bound on a key body, checked before reading it.
const MAX_BODY_LEN: u64 = 64 << 20;

/// Identity of a verifying key: SHA-256 over the circuit version, the
/// verifying key bytes and its transcript representation (which covers the
/// constraint system) and, from circuit version 2, the verifier's SRS points
/// (`[1]_1`, `[1]_2`, `[s]_2`): an EVM verifier embeds them, so the id it
/// reports names everything it checks against. Proofs name the key they were
/// made for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VkId(pub [u8; 32]);

impl VkId {
    fn of(vk: &plonk::VerifyingKey<G1Affine>, version: CircuitVersion, srs: &Srs) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"fabstir-zk verifying key");
        hasher.update([version.as_u8()]);
        hash_key(&mut hasher, vk);
        if version != CircuitVersion::V1 {
            hash_verifier_points(&mut hasher, srs);
        }
        Self(hasher.finalize().into())
    }

    /// The identity of a batch circuit's verifying key for `entries`
    /// checkpoints: as for a single key, under its own domain tag and with
    /// the batch size (so no batch key shares an id with a single key).
    pub(crate) fn of_batch(vk: &plonk::VerifyingKey<G1Affine>, entries: usize, srs: &Srs) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"fabstir-zk batch verifying key");
        hasher.update((entries as u64).to_be_bytes());
        hash_key(&mut hasher, vk);
        hash_verifier_points(&mut hasher, srs);
        Self(hasher.finalize().into())
    }

    /// Parses `0x` and 64 hex digits.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        Digest32::parse("vk_id", s).map(|d| Self(d.0))
    }
}

impl fmt::Display for VkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Digest32(self.0).fmt(f)
    }
}

impl fmt::Debug for VkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VkId({self})")
    }
}

impl Serialize for VkId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for VkId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Hashes the verifying key bytes and its transcript representation.
fn hash_key(hasher: &mut Sha256, vk: &plonk::VerifyingKey<G1Affine>) {
    hasher.update(vk.to_bytes(SerdeFormat::Processed));
    hasher.update(vk.transcript_repr().to_repr());
}

/// Hashes the SRS points a verifier checks against (`[1]_1`, `[1]_2`, `[s]_2`).
fn hash_verifier_points(hasher: &mut Sha256, srs: &Srs) {
    use halo2_axiom::halo2curves::group::GroupEncoding;
    use halo2_axiom::poly::commitment::ParamsProver as _;
    let params = srs.params();
    hasher.update(params.get_g()[0].to_bytes());
    hasher.update(params.g2().to_bytes());
    hasher.update(params.s_g2().to_bytes());
}

/// Refuses an unparsable `MAX_DEGREE`, which halo2 would otherwise panic on.
pub(crate) fn check_environment() -> Result<(), KeyError> {
    match std::env::var("MAX_DEGREE") {
        Ok(v) if v.parse::<usize>().is_err() => Err(KeyError::Environment(v)),
        _ => Ok(()),
    }
}

/// The verifying key, with the parameters verification needs.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) vk: plonk::VerifyingKey<G1Affine>,
    pub(crate) srs: Arc<Srs>,
    id: VkId,
    version: CircuitVersion,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("vk_id", &self.id)
            .field("circuit_version", &self.version)
            .field("srs", &self.srs)
            .finish()
    }
}

impl VerifyingKey {
    /// Derives the verifying key of the current circuit version from the
    /// parameters and the circuit.
    pub fn derive(srs: Arc<Srs>) -> Result<Self, KeyError> {
        Self::derive_version(srs, CircuitVersion::CURRENT)
    }

    /// Derives the verifying key of circuit `version` (cheap at k = 7: a
    /// node derives the version 1 key from its SRS to verify old proofs).
    pub fn derive_version(srs: Arc<Srs>, version: CircuitVersion) -> Result<Self, KeyError> {
        check_environment()?;
        let vk = keygen_vk(srs.params(), &CommitmentCircuit::for_version(version))
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        let id = VkId::of(&vk, version, &srs);
        Ok(Self {
            vk,
            srs,
            id,
            version,
        })
    }

    /// A key from its parts (for tools that read any key of this crate's
    /// shape, such as the EVM plan).
    #[cfg(test)]
    pub(crate) fn from_parts(
        vk: plonk::VerifyingKey<G1Affine>,
        srs: Arc<Srs>,
        id: VkId,
        version: CircuitVersion,
    ) -> Self {
        Self {
            vk,
            srs,
            id,
            version,
        }
    }

    /// The circuit version this key verifies.
    pub fn version(&self) -> CircuitVersion {
        self.version
    }

    /// The verifying keys of the circuit versions older than this key's,
    /// derived from the same SRS (for a version 2 key: the version 1 key).
    pub fn older_versions(&self) -> Result<Vec<VerifyingKey>, KeyError> {
        CircuitVersion::ALL
            .into_iter()
            .filter(|v| *v < self.version)
            .map(|v| Self::derive_version(self.srs.clone(), v))
            .collect()
    }

    /// The key's identity.
    pub fn id(&self) -> VkId {
        self.id
    }

    /// The parameters this key verifies with.
    pub fn srs(&self) -> &Arc<Srs> {
        &self.srs
    }

    /// halo2's own description of the verifying key (`vk.pinned()`, pretty
    /// debug form): the domain, the full constraint system with every gate
    /// polynomial and its coefficients, and the fixed commitments. Checked in
    /// like orchard's, so that any changed coefficient shows as a diff.
    pub fn pinned(&self) -> String {
        format!("{:#?}\n", self.vk.pinned())
    }

    /// A readable description of the verifying key: shape of the constraint
    /// system, every query, every gate, the fixed commitments, and halo2's
    /// transcript representation (a hash of the full pinned key, gate
    /// polynomials included). Checked into the repository so that any change
    /// of circuit fails a test with a reviewable diff.
    pub fn description(&self) -> String {
        describe(
            &self.vk,
            &format!("fabstir-zk verifying key, circuit version {}", self.version),
            self.id,
        )
    }

    /// The key file bytes.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        file_bytes(
            VK_MAGIC,
            self.version,
            self.id,
            &self.vk.to_bytes(SerdeFormat::Processed),
        )
    }

    /// Writes the key file (mode 0444, never overwriting).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        crate::fsutil::write_new(path, &self.to_file_bytes(), 0o444)
    }

    /// Loads a key file and checks it against the key re-derived from `srs`.
    pub fn load(path: &Path, srs: Arc<Srs>) -> Result<Self, KeyError> {
        let bytes = crate::fsutil::read_bounded(path, HEADER_LEN as u64 + MAX_BODY_LEN)?;
        Self::from_file_bytes(path, &bytes, srs)
    }

    /// Parses key file bytes (`path` names them in errors). The key is
    /// re-derived from `srs` and the circuit of the header's version, and the
    /// file must hold exactly that key: untrusted bytes never reach halo2's
    /// parser.
    pub fn from_file_bytes(path: &Path, bytes: &[u8], srs: Arc<Srs>) -> Result<Self, KeyError> {
        check_environment()?;
        let (version, header_id, body) = parse_file(path, bytes, VK_MAGIC)?;
        let derived = Self::derive_version(srs, version)?;
        let body_matches = body == derived.vk.to_bytes(SerdeFormat::Processed).as_slice();
        match (body_matches, header_id == derived.id) {
            (true, true) => Ok(derived),
            (true, false) => Err(corrupt(
                path,
                format!(
                    "header names vk_id {header_id} but the key inside has {}",
                    derived.id
                ),
            )),
            (false, true) => Err(corrupt(
                path,
                format!("body is not the verifying key {header_id} its header names"),
            )),
            (false, false) => Err(KeyError::Pairing(format!(
                "{} holds vk_id {header_id}, but these parameters and this circuit give {}",
                path.display(),
                derived.id
            ))),
        }
    }
}

/// The readable description of a verifying key ([`VerifyingKey::description`]),
/// under the first line `title`.
pub(crate) fn describe(vk: &plonk::VerifyingKey<G1Affine>, title: &str, id: VkId) -> String {
    use std::fmt::Write;
    let cs = vk.cs();
    let mut out = String::new();
    let point = |p: &G1Affine| -> String {
        let coordinates = halo2_axiom::halo2curves::CurveAffine::coordinates(p).unwrap();
        let be = |x: &halo2_axiom::halo2curves::bn256::Fq| {
            let mut bytes = x.to_repr();
            bytes.reverse();
            hex::encode(bytes)
        };
        format!("0x{} 0x{}", be(coordinates.x()), be(coordinates.y()))
    };
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "k {} (extended {}), degree {}, blinding factors {}",
        vk.get_domain().k(),
        vk.get_domain().extended_k(),
        cs.degree(),
        cs.blinding_factors()
    );
    let _ = writeln!(
        out,
        "columns: advice {}, fixed {}, instance {}",
        cs.num_advice_columns(),
        cs.num_fixed_columns(),
        cs.num_instance_columns()
    );
    let _ = writeln!(
        out,
        "permutation columns {}, lookups {}",
        cs.permutation().get_columns().len(),
        cs.lookups().len()
    );
    let queries = |q: Vec<(usize, i32)>| {
        q.iter()
            .map(|(c, r)| format!("{c}@{r}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        out,
        "advice queries: {}",
        queries(
            cs.advice_queries()
                .iter()
                .map(|(c, r)| (c.index(), r.0))
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "fixed queries: {}",
        queries(
            cs.fixed_queries()
                .iter()
                .map(|(c, r)| (c.index(), r.0))
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "instance queries: {}",
        queries(
            cs.instance_queries()
                .iter()
                .map(|(c, r)| (c.index(), r.0))
                .collect()
        )
    );
    let _ = writeln!(out, "gates:");
    for gate in cs.gates() {
        let degree = gate
            .polynomials()
            .iter()
            .map(|p| p.degree())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "  {}: {} constraints, degree {}",
            gate.name(),
            gate.polynomials().len(),
            degree
        );
        for (i, poly) in gate.polynomials().iter().enumerate() {
            let _ = writeln!(
                out,
                "    {} (degree {})",
                gate.constraint_name(i),
                poly.degree()
            );
        }
    }
    let _ = writeln!(out, "fixed commitments:");
    for (i, c) in vk.fixed_commitments().iter().enumerate() {
        let _ = writeln!(out, "  {i}: {}", point(c));
    }
    let mut repr = vk.transcript_repr().to_repr();
    repr.reverse();
    let _ = writeln!(out, "transcript repr: 0x{}", hex::encode(repr));
    let _ = writeln!(out, "vk_id: {}", id);
    out
}

/// The proving key, with the parameters proving needs.
pub struct ProvingKey {
    pub(crate) pk: plonk::ProvingKey<G1Affine>,
    vk: VerifyingKey,
}

impl fmt::Debug for ProvingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvingKey")
            .field("vk_id", &self.vk.id)
            .finish_non_exhaustive()
    }
}

impl ProvingKey {
    /// The constraint system and fixed columns of this key, analysed
    /// ([`crate::circuit::uniqueness`]).
    pub fn constraint_analysis(&self) -> Result<ConstraintAnalysis, UniquenessError> {
        let fixed: Vec<&[Fr]> = self.pk.fixed_values().iter().map(|p| &p[..]).collect();
        ConstraintAnalysis::of_constraint_system(
            self.pk.get_vk().cs(),
            &fixed,
            1 << K,
            self.version().instance_count(),
        )
    }

    /// Checks that this key's constraints determine every cell they read
    /// from the circuit's free cells ([`layout::free_cells`]).
    pub fn check_unique_witness(&self) -> Result<UniquenessReport, UniquenessError> {
        self.constraint_analysis()?
            .propagate(&layout::free_cells(self.version()))
    }

    /// Generates the proving key for the current circuit version under `srs`.
    pub fn build(srs: Arc<Srs>) -> Result<Self, KeyError> {
        Self::build_version(srs, CircuitVersion::CURRENT)
    }

    /// Generates the proving key of circuit `version`. Nodes only make
    /// current-version proofs; older versions are for tests and tools that
    /// need an old proof.
    pub fn build_version(srs: Arc<Srs>, version: CircuitVersion) -> Result<Self, KeyError> {
        let vk = VerifyingKey::derive_version(srs, version)?;
        let pk = keygen_pk(
            vk.srs.params(),
            vk.vk.clone(),
            &CommitmentCircuit::for_version(version),
        )
        .map_err(|e| KeyError::Backend(e.to_string()))?;
        Ok(Self { pk, vk })
    }

    /// The circuit version this key proves.
    pub fn version(&self) -> CircuitVersion {
        self.vk.version
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.vk
    }

    /// The verifying key's identity.
    pub fn vk_id(&self) -> VkId {
        self.vk.id
    }

    /// The key file bytes.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        file_bytes(
            PK_MAGIC,
            self.vk.version,
            self.vk.id,
            &self.pk.to_bytes(SerdeFormat::RawBytes),
        )
    }

    /// Writes the key file (mode 0400, never overwriting).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        crate::fsutil::write_new(path, &self.to_file_bytes(), 0o400)
    }

    /// Loads a key file and checks that it pairs with `srs` and the circuit.
    pub fn load(path: &Path, srs: Arc<Srs>) -> Result<Self, KeyError> {
        crate::fsutil::check_secret_permissions(path)?;
        let bytes = crate::fsutil::read_bounded(path, HEADER_LEN as u64 + MAX_BODY_LEN)?;
        Self::from_file_bytes(path, &bytes, srs)
    }

    /// Parses key file bytes (`path` names them in errors).
    pub fn from_file_bytes(path: &Path, bytes: &[u8], srs: Arc<Srs>) -> Result<Self, KeyError> {
        check_environment()?;
        let (version, header_id, body) = parse_file(path, bytes, PK_MAGIC)?;
        // halo2's reader trusts its input (it panics on short bodies and sizes
        // its domain from the embedded k), so check the embedded version and
        // k first and contain any panic; the body digest already excludes
        // accidental damage.
        if body.len() < 5 || body[0] != 0x02 || body[1..5] != K.to_le_bytes() {
            return Err(corrupt(
                path,
                format!("body does not start with a halo2 key for k = {K}"),
            ));
        }
        let parsed = std::panic::catch_unwind(|| {
            plonk::ProvingKey::<G1Affine>::from_bytes::<CommitmentCircuit>(
                body,
                SerdeFormat::RawBytes,
                version,
            )
        });
        let pk = match parsed {
            Ok(Ok(pk)) => pk,
            Ok(Err(e)) => return Err(corrupt(path, format!("invalid proving key: {e}"))),
            Err(_) => return Err(corrupt(path, "proving key body is malformed".into())),
        };
        // Pairing first: the id covers the SRS's points, so a key made with
        // another SRS would otherwise be reported as a header mismatch.
        check_pairing(path, &pk, &srs, version)?;
        let id = VkId::of(pk.get_vk(), version, &srs);
        if id != header_id {
            return Err(corrupt(
                path,
                format!("header names vk_id {header_id} but the key inside has {id}"),
            ));
        }
        let vk = VerifyingKey {
            vk: pk.get_vk().clone(),
            srs,
            id,
            version,
        };
        Ok(Self { pk, vk })
    }
}

/// Checks that the proving key holds this circuit's fixed columns and that
/// its fixed commitments open to them under `srs` (one random linear
/// combination: two small MSMs instead of one per column).
fn check_pairing(
    path: &Path,
    pk: &plonk::ProvingKey<G1Affine>,
    srs: &Srs,
    version: CircuitVersion,
) -> Result<(), KeyError> {
    let expected = expected_fixed_columns(version);
    let values = pk.fixed_values();
    let commitments = &pk.get_vk().fixed_commitments();
    if values.len() != expected.len() || commitments.len() != expected.len() {
        return Err(KeyError::Pairing(format!(
            "{} has a different number of fixed columns than the circuit",
            path.display()
        )));
    }
    for (column, (have, want)) in values.iter().zip(&expected).enumerate() {
        if have.iter().ne(want.iter()) {
            return Err(KeyError::Pairing(format!(
                "{}: fixed column {column} differs from the circuit's",
                path.display()
            )));
        }
    }
    if srs.params().k() != K {
        return Err(KeyError::SrsTooSmall {
            found: srs.params().k(),
            needed: K,
        });
    }
    let r = Fr::random(rand::rngs::OsRng);
    let mut combined = vec![Fr::ZERO; 1 << K];
    let mut combined_commitment = G1::identity();
    let mut power = Fr::ONE;
    for (column, commitment) in expected.iter().zip(commitments.iter()) {
        for (acc, v) in combined.iter_mut().zip(column) {
            *acc += power * v;
        }
        combined_commitment += commitment * power;
        power *= r;
    }
    let poly = pk.get_vk().get_domain().lagrange_from_vec(combined);
    let opened = srs.params().commit_lagrange(&poly, Blind::default());
    if opened.to_affine() != combined_commitment.to_affine() {
        return Err(KeyError::Pairing(format!(
            "{}: fixed commitments do not match the parameters (keys made with another SRS?)",
            path.display()
        )));
    }
    Ok(())
}

fn corrupt(path: &Path, reason: String) -> KeyError {
    KeyError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

fn file_bytes(magic: &[u8; 8], version: CircuitVersion, id: VkId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&KEY_FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&u16::from(version.as_u8()).to_be_bytes());
    out.extend_from_slice(&K.to_be_bytes());
    out.extend_from_slice(&id.0);
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

/// Checks a key file header; returns the header's circuit version, its
/// vk_id and the body.
fn parse_file<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: &[u8; 8],
) -> Result<(CircuitVersion, VkId, &'a [u8]), KeyError> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            path,
            format!("is {} bytes, shorter than a key file header", bytes.len()),
        ));
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    if &header[..8] != magic {
        let other = if magic == PK_MAGIC {
            VK_MAGIC
        } else {
            PK_MAGIC
        };
        let reason = if &header[..8] == other {
            "is the other kind of key (proving vs verifying)"
        } else {
            "is not a fabstir key file (bad magic)"
        };
        return Err(corrupt(path, reason.into()));
    }
    let be16 = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    if be16(8) != KEY_FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "key format version {} is not supported (expected {KEY_FORMAT_VERSION})",
                be16(8)
            ),
        ));
    }
    let Some(version) = u8::try_from(be16(10))
        .ok()
        .and_then(CircuitVersion::from_u8)
    else {
        return Err(corrupt(
            path,
            format!(
                "made for circuit version {}, this build knows versions 1 to {}",
                be16(10),
                CircuitVersion::CURRENT
            ),
        ));
    };
    let k = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if k != K {
        return Err(corrupt(
            path,
            format!("made for k = {k}, the circuit has k = {K}"),
        ));
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&header[16..48]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[48..56]);
    let len = u64::from_be_bytes(len);
    if len != body.len() as u64 {
        return Err(corrupt(
            path,
            format!(
                "header declares a {len}-byte body, {} bytes follow",
                body.len()
            ),
        ));
    }
    if Sha256::digest(body).as_slice() != &header[56..88] {
        return Err(corrupt(
            path,
            "body does not match its SHA-256 (file damaged)".into(),
        ));
    }
    Ok((version, VkId(id), body))
}
